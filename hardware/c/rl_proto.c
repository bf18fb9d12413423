/* rl_proto.c - robolearn serial protocol v1: CRC, COBS, frames, streaming decoder. */
#include "rl_proto.h"

#include <string.h>

uint16_t rl_crc16_update(uint16_t crc, const uint8_t *data, size_t n)
{
    size_t i;
    int b;
    for (i = 0; i < n; ++i) {
        crc ^= (uint16_t)(data[i] << 8); /* MSB first: no reflection */
        for (b = 0; b < 8; ++b) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t rl_crc16(const uint8_t *data, size_t n) { return rl_crc16_update(0xFFFFu, data, n); }

/* ------------------------------------------------------------------------- COBS */
/* Byte-at-a-time COBS encoder, so a frame is encoded straight from its header,
 * payload and CRC without a body buffer. A block that ends full (254 data bytes,
 * code 0xFF) at the very end of the input gets no trailing empty block: the same
 * bytes as the reference encoder used on the Python side (package `cobs`). */
typedef struct {
    uint8_t *out;
    size_t code_pos; /* where the current block's code byte goes */
    size_t o;        /* next output position */
    uint8_t code;    /* 1 + data bytes in the current block */
    uint8_t full;    /* the last byte closed a full block */
} cobs_enc;

static void enc_init(cobs_enc *e, uint8_t *out)
{
    e->out = out;
    e->code_pos = 0;
    e->o = 1;
    e->code = 1;
    e->full = 0;
}

static void enc_byte(cobs_enc *e, uint8_t b)
{
    e->full = 0;
    if (b == 0) {
        e->out[e->code_pos] = e->code;
        e->code_pos = e->o++;
        e->code = 1;
        return;
    }
    e->out[e->o++] = b;
    if (++e->code == 0xFFu) {
        e->out[e->code_pos] = 0xFFu;
        e->code_pos = e->o++;
        e->code = 1;
        e->full = 1;
    }
}

static size_t enc_finish(cobs_enc *e, size_t n_in)
{
    if (e->full && n_in > 0) {
        return e->o - 1; /* drop the reserved code byte of the empty last block */
    }
    e->out[e->code_pos] = e->code;
    return e->o;
}

size_t rl_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    cobs_enc e;
    size_t i;
    enc_init(&e, out);
    for (i = 0; i < n; ++i) {
        enc_byte(&e, in[i]);
    }
    return enc_finish(&e, n);
}

rl_status rl_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *out_n)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        size_t k;
        if (code == 0 || i + (size_t)(code - 1u) > n) {
            return RL_REJ_COBS; /* 0x00 cannot occur in a chunk; else the block runs past the end */
        }
        for (k = 1; k < code; ++k) {
            if (in[i] == 0) {
                return RL_REJ_COBS;
            }
            out[o++] = in[i++]; /* o < i always: in-place decoding is safe */
        }
        if (i < n && code != 0xFFu) {
            out[o++] = 0; /* a block shorter than 254 stood for a zero byte (not at the end) */
        }
    }
    *out_n = o;
    return RL_OK;
}

/* ------------------------------------------------------------------------ frames */
rl_status rl_parse_body(const uint8_t *body, size_t n, rl_frame *f)
{
    uint16_t len;
    if (n < RL_MIN_BODY) {
        return RL_REJ_SHORT;
    }
    if (rl_crc16(body, n - 2u) != rl_get_u16(body + n - 2u)) {
        return RL_REJ_CRC;
    }
    len = rl_get_u16(body + 3);
    if (len > RL_MAX_PAYLOAD || (size_t)len != n - RL_MIN_BODY) {
        return RL_REJ_LENGTH;
    }
    f->type = body[0];
    f->seq = rl_get_u16(body + 1);
    f->len = len;
    f->payload = body + RL_HEADER_SIZE;
    return RL_OK;
}

size_t rl_frame_pack(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len,
                     uint8_t *wire, size_t cap)
{
    uint8_t head[RL_HEADER_SIZE], tail[RL_CRC_SIZE];
    uint16_t crc;
    cobs_enc e;
    size_t i, n_body = RL_MIN_BODY + (size_t)len, n;
    if (len > RL_MAX_PAYLOAD || cap < RL_COBS_MAX(n_body) + 1u) {
        return 0;
    }
    head[0] = type;
    rl_put_u16(head + 1, seq);
    rl_put_u16(head + 3, len);
    crc = rl_crc16_update(rl_crc16(head, sizeof head), payload, len);
    rl_put_u16(tail, crc);
    enc_init(&e, wire);
    for (i = 0; i < sizeof head; ++i) {
        enc_byte(&e, head[i]);
    }
    for (i = 0; i < len; ++i) {
        enc_byte(&e, payload[i]);
    }
    enc_byte(&e, tail[0]);
    enc_byte(&e, tail[1]);
    n = enc_finish(&e, n_body);
    wire[n] = 0; /* delimiter */
    return n + 1u;
}

/* ---------------------------------------------------------------- stream decoder */
void rl_decoder_init(rl_decoder *d)
{
    memset(d, 0, sizeof *d);
}

int rl_decoder_push(rl_decoder *d, uint8_t byte, rl_frame *f)
{
    size_t n;
    rl_status st;
    if (byte != 0) {
        if (d->overflow) {
            return 0;
        }
        if (d->n == RL_MAX_WIRE) {
            d->overflow = 1;
            d->n = 0;
            return -(int)RL_REJ_OVERFLOW;
        }
        d->buf[d->n++] = byte;
        return 0;
    }
    /* delimiter */
    if (d->overflow) {
        d->overflow = 0; /* already counted when the chunk overflowed */
        return 0;
    }
    n = d->n;
    d->n = 0;
    if (n == 0) {
        return 0; /* empty chunk: idle or flush delimiter */
    }
    st = rl_cobs_decode(d->buf, n, d->buf, &n);
    if (st == RL_OK) {
        st = rl_parse_body(d->buf, n, f);
    }
    return st == RL_OK ? 1 : -(int)st;
}

uint8_t rl_reject_error_code(rl_status reason)
{
    return (reason == RL_REJ_COBS || reason == RL_REJ_CRC) ? RL_ERR_CRC : RL_ERR_LENGTH;
}
