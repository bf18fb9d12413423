/* test_proto.c - line-oriented driver of rl_proto.c for tests/test_protocol_c.py.
 *
 * One command per stdin line, one answer line per command (stream: several). Byte
 * strings are lower-case hex, "-" for empty. Reasons are the names of protocol.py.
 *   crc HEX              -> CRC as decimal
 *   cobs_enc HEX         -> HEX
 *   cobs_dec HEX         -> HEX | REJ reason
 *   frame HEX            -> OK type seq HEX | REJ reason   (one wire frame, like decode_frame)
 *   pack TYPE SEQ HEX    -> HEX (wire bytes)
 *   stream HEX           -> F type seq HEX ... then END rejected overflow cobs short crc length pending
 *                           (fed byte by byte through one fresh rl_decoder)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_proto.h"

#define MAX_BYTES (1u << 20)

static char line[2 * MAX_BYTES + 64];
static uint8_t in[MAX_BYTES], out[MAX_BYTES];
static rl_decoder dec;

static const char *reason_name(int st)
{
    switch (st) {
    case RL_REJ_OVERFLOW: return "overflow";
    case RL_REJ_COBS: return "cobs";
    case RL_REJ_SHORT: return "short";
    case RL_REJ_CRC: return "crc";
    case RL_REJ_LENGTH: return "length";
    default: return "?";
    }
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t unhex(const char *s, uint8_t *dst)
{
    size_t n = 0;
    if (s == NULL || strcmp(s, "-") == 0) return 0;
    while (s[0] && s[1] && n < MAX_BYTES) {
        int hi = nibble(s[0]), lo = nibble(s[1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "bad hex\n");
            exit(2);
        }
        dst[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return n;
}

static void put_hex(const uint8_t *p, size_t n)
{
    size_t i;
    if (n == 0) fputc('-', stdout);
    for (i = 0; i < n; ++i) printf("%02x", p[i]);
}

static void decode_one(const uint8_t *w, size_t n)
{
    rl_frame f;
    size_t i, m;
    rl_status st;
    if (n > 0 && w[n - 1] == 0) --n; /* a trailing delimiter is allowed */
    if (n == 0) { puts("REJ short"); return; }
    if (n > RL_MAX_WIRE) { puts("REJ overflow"); return; }
    for (i = 0; i < n; ++i) {
        if (w[i] == 0) { puts("REJ cobs"); return; }
    }
    memcpy(out, w, n);
    st = rl_cobs_decode(out, n, out, &m); /* in place, as the stream decoder does */
    if (st == RL_OK) st = rl_parse_body(out, m, &f);
    if (st != RL_OK) { printf("REJ %s\n", reason_name(st)); return; }
    printf("OK %u %u ", f.type, f.seq);
    put_hex(f.payload, f.len);
    fputc('\n', stdout);
}

int main(void)
{
    while (fgets(line, sizeof line, stdin)) {
        char *cmd = strtok(line, " \r\n");
        char *a = strtok(NULL, " \r\n");
        size_t n, m;
        if (cmd == NULL) continue;
        if (strcmp(cmd, "crc") == 0) {
            n = unhex(a, in);
            printf("%u\n", rl_crc16(in, n));
        } else if (strcmp(cmd, "cobs_enc") == 0) {
            n = unhex(a, in);
            put_hex(out, rl_cobs_encode(in, n, out));
            fputc('\n', stdout);
        } else if (strcmp(cmd, "cobs_dec") == 0) {
            n = unhex(a, in);
            if (rl_cobs_decode(in, n, out, &m) != RL_OK) {
                puts("REJ cobs");
            } else {
                put_hex(out, m);
                fputc('\n', stdout);
            }
        } else if (strcmp(cmd, "frame") == 0) {
            n = unhex(a, in);
            decode_one(in, n);
        } else if (strcmp(cmd, "pack") == 0) {
            unsigned type = (unsigned)strtoul(a, NULL, 0);
            unsigned seq = (unsigned)strtoul(strtok(NULL, " \r\n"), NULL, 0);
            n = unhex(strtok(NULL, " \r\n"), in);
            m = rl_frame_pack((uint8_t)type, (uint16_t)seq, in, (uint16_t)n, out, sizeof out);
            put_hex(out, m);
            fputc('\n', stdout);
        } else if (strcmp(cmd, "stream") == 0) {
            unsigned counts[6] = {0, 0, 0, 0, 0, 0}, rejected = 0;
            size_t i;
            rl_frame f;
            n = unhex(a, in);
            rl_decoder_init(&dec);
            for (i = 0; i < n; ++i) {
                int r = rl_decoder_push(&dec, in[i], &f);
                if (r > 0) {
                    printf("F %u %u ", f.type, f.seq);
                    put_hex(f.payload, f.len);
                    fputc('\n', stdout);
                } else if (r < 0) {
                    ++rejected;
                    ++counts[-r];
                }
            }
            printf("END %u %u %u %u %u %u %u\n", rejected, counts[RL_REJ_OVERFLOW], counts[RL_REJ_COBS],
                   counts[RL_REJ_SHORT], counts[RL_REJ_CRC], counts[RL_REJ_LENGTH], (unsigned)dec.n);
        } else {
            fprintf(stderr, "unknown command %s\n", cmd);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
