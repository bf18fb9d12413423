/* rl_proto.h - robolearn serial protocol v2, C implementation (see hardware/PROTOCOL.md).
 *
 *   wire = COBS(body) 0x00
 *   body = type:u8 seq:u16 len:u16 payload:len bytes crc:u16      (little-endian)
 *
 * No heap, no libc beyond memcpy/memset; all buffers are owned by the caller (the
 * streaming decoder holds one maximal frame, RL_MAX_WIRE bytes, and decodes COBS in
 * place). The decoding rules are those of hardware/protocol.py and are pinned by
 * hardware/test_vectors.json, which tests/test_protocol_c.py runs through this code.
 */
#ifndef RL_PROTO_H
#define RL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RL_VERSION 2u /* 2: STEP carries step:u32 (0 = episode start), HELLO_ACK state_dim:u16 */
#define RL_MAX_PAYLOAD 1024u
#define RL_HEADER_SIZE 5u /* type:u8 seq:u16 len:u16 */
#define RL_CRC_SIZE 2u
#define RL_MIN_BODY (RL_HEADER_SIZE + RL_CRC_SIZE)
#define RL_MAX_BODY (RL_MIN_BODY + RL_MAX_PAYLOAD)
/* Longest COBS encoding of n bytes: one code byte per started block of 254. */
#define RL_COBS_MAX(n) ((n) + (n) / 254u + 1u)
#define RL_MAX_WIRE RL_COBS_MAX(RL_MAX_BODY) /* 1036: longest chunk between delimiters */

/* message types */
#define RL_HELLO 0x01u
#define RL_HELLO_ACK 0x81u
#define RL_STEP 0x02u
#define RL_ACTION 0x82u
#define RL_RESET 0x03u
#define RL_RESET_ACK 0x83u
#define RL_ERROR 0x7Fu

/* ERROR codes */
#define RL_ERR_CRC 1u
#define RL_ERR_LENGTH 2u
#define RL_ERR_TYPE 3u
#define RL_ERR_OBS_SIZE 4u
#define RL_ERR_STATE 5u /* stateful policy: STEP's step index is not the one its state is at */
#define RL_SEQ_UNKNOWN 0xFFFFu

#define RL_HELLO_ACK_SIZE (4u + 2u + 2u + 32u + 4u + 2u)
#define RL_STEP_HEADER_SIZE 4u /* step:u32 before the observation */

/* Reject reasons, in the order the checks run (names as in protocol.py). */
typedef enum {
    RL_OK = 0,
    RL_REJ_OVERFLOW = 1, /* more than RL_MAX_WIRE bytes without a delimiter */
    RL_REJ_COBS = 2,     /* a COBS code byte points past the end of the chunk */
    RL_REJ_SHORT = 3,    /* decoded body shorter than RL_MIN_BODY */
    RL_REJ_CRC = 4,      /* CRC of type..payload differs from the last two bytes */
    RL_REJ_LENGTH = 5    /* len field differs from the payload length, or > RL_MAX_PAYLOAD */
} rl_status;

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the decoder's buffer: valid until the next push */
} rl_frame;

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0. */
uint16_t rl_crc16_update(uint16_t crc, const uint8_t *data, size_t n);
uint16_t rl_crc16(const uint8_t *data, size_t n);

/* COBS (Cheshire & Baker 1999). Encode n bytes into out (capacity RL_COBS_MAX(n)),
 * without the 0x00 delimiter; returns the encoded length. */
size_t rl_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
/* Decode one chunk (no 0x00 inside); out may equal in (decoding never overtakes the
 * input). Returns RL_OK and *out_n, or RL_REJ_COBS. */
rl_status rl_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *out_n);

/* Check and parse a decoded body: RL_OK, RL_REJ_SHORT, RL_REJ_CRC or RL_REJ_LENGTH. */
rl_status rl_parse_body(const uint8_t *body, size_t n, rl_frame *f);

/* Wire bytes of one frame (COBS(body) 0x00) into wire (capacity cap). Returns the
 * number of bytes written, or 0 when len > RL_MAX_PAYLOAD or cap is too small
 * (RL_COBS_MAX(RL_MIN_BODY + len) + 1 always suffices). */
size_t rl_frame_pack(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len,
                     uint8_t *wire, size_t cap);

/* Streaming decoder: feed bytes one at a time. */
typedef struct {
    uint8_t buf[RL_MAX_WIRE];
    size_t n;         /* bytes of the unfinished chunk */
    uint8_t overflow; /* dropping bytes until the next 0x00 */
} rl_decoder;

void rl_decoder_init(rl_decoder *d);

/* Returns 0: nothing completed; 1: a frame in *f; -reason (rl_status): a rejected
 * chunk. An empty chunk (0x00 after 0x00) is ignored; an overflow is reported on the
 * byte that overflows and the rest up to the next 0x00 is dropped. */
int rl_decoder_push(rl_decoder *d, uint8_t byte, rl_frame *f);

/* ERROR code a device answers for a reject reason. */
uint8_t rl_reject_error_code(rl_status reason);

/* little-endian helpers */
static inline uint16_t rl_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rl_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void rl_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void rl_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#endif /* RL_PROTO_H */
