/* fuzz_decoder.c - binary driver of rl_proto.c's stream decoder for fuzzing
 * (benchmarks/protocol_fuzz.py, tests/test_protocol_fuzz.py), built with
 * -fsanitize=address,undefined so any out-of-bounds access or undefined behaviour aborts.
 *
 * stdin: records, each  n:u32 (little-endian) then n bytes  (a random or mutated frame).
 * All records go through ONE decoder, in order; after each record the driver pushes a
 * 0x00 (flush) and a good sentinel frame (RESET seq 0xABCD), so every record is judged on
 * its own and the decoder must resynchronize after it.
 * stdout: per record 4 bytes: frames accepted from the record (u8, capped at 255),
 * chunks rejected (u8, capped), the reason of the last reject (0 none, 1..5 rl_status),
 * sentinel recovered (0/1). Then one line of totals on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_proto.h"

#define MAX_RECORD (1u << 16)

static uint8_t rec[MAX_RECORD];
static uint8_t sentinel[16];
static size_t sentinel_n;
static rl_decoder dec;

static int read_exact(uint8_t *dst, size_t n)
{
    return fread(dst, 1, n, stdin) == n;
}

int main(void)
{
    uint8_t hdr[4], res[4];
    unsigned long records = 0, frames = 0, rejected = 0, sentinels = 0;
    unsigned long by_reason[6] = {0};
    rl_frame f;

    rl_decoder_init(&dec);
    sentinel_n = rl_frame_pack(RL_RESET, 0xABCDu, NULL, 0, sentinel, sizeof sentinel);
    while (read_exact(hdr, 4)) {
        uint32_t n = (uint32_t)hdr[0] | ((uint32_t)hdr[1] << 8) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 24);
        unsigned acc = 0, rej = 0, last = 0, sent = 0;
        size_t i;
        if (n > MAX_RECORD || !read_exact(rec, n)) {
            fprintf(stderr, "bad record\n");
            return 2;
        }
        for (i = 0; i <= n + sentinel_n; ++i) {
            /* the record, then the flush byte, then the sentinel frame */
            uint8_t b = i < n ? rec[i] : (i == n ? 0u : sentinel[i - n - 1]);
            int r = rl_decoder_push(&dec, b, &f);
            if (r > 0) {
                if (i > n && f.type == RL_RESET && f.seq == 0xABCDu && f.len == 0) {
                    sent = 1;
                } else {
                    acc++;
                    /* touch every payload byte: ASan checks the pointer and the length */
                    volatile uint8_t sink = 0;
                    uint16_t k;
                    for (k = 0; k < f.len; ++k) sink ^= f.payload[k];
                    (void)sink;
                }
            } else if (r < 0) {
                rej++;
                last = (unsigned)(-r);
                if (last <= 5u) by_reason[last]++;
            }
        }
        res[0] = (uint8_t)(acc > 255u ? 255u : acc);
        res[1] = (uint8_t)(rej > 255u ? 255u : rej);
        res[2] = (uint8_t)last;
        res[3] = (uint8_t)sent;
        fwrite(res, 1, 4, stdout);
        records++;
        frames += acc;
        rejected += rej;
        sentinels += sent;
    }
    fprintf(stderr, "records %lu frames %lu rejected %lu sentinels %lu overflow %lu cobs %lu short %lu crc %lu length %lu\n",
            records, frames, rejected, sentinels, by_reason[1], by_reason[2], by_reason[3], by_reason[4],
            by_reason[5]);
    return 0;
}
