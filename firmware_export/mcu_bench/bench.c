/* bench.c - runs robolearn_policy on QEMU so that its executed instructions can be counted.
 *
 * Bare metal, no libc start files: the reset handler enables the FPU, copies .data, zeroes
 * .bss and calls main. main resets the policy, runs BENCH_WARMUP steps, then one step
 * between the calls bench_begin() and bench_end() (noinline markers whose addresses the
 * counter looks for in QEMU's execution trace), and stops QEMU with the semihosting call
 * SYS_EXIT (ARM semihosting specification, operation 0x18). Every step's actions are
 * printed as float32 bit patterns in hex through SYS_WRITE0 (operation 0x04), so the ARM
 * build's results can be compared with the host build the export verified. */
#include "policy.h"

extern unsigned _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void bench_reset(void);
int main(void);

#define SCB_CPACR (*(volatile unsigned *)0xE000ED88u) /* ARMv7-M B3.2.20 */

__attribute__((section(".isr_vector"), used)) static void (*const vectors[2])(void) = {
    (void (*)(void))&_estack, bench_reset};

static volatile float bench_obs[ROBOLEARN_OBS_DIM];
static volatile float bench_act[ROBOLEARN_ACT_DIM];

__attribute__((noinline)) void bench_begin(void) { __asm volatile("" ::: "memory"); }
__attribute__((noinline)) void bench_end(void) { __asm volatile("" ::: "memory"); }

static void semihost_exit(void)
{
    /* AArch32: r1 holds the reason itself, ADP_Stopped_ApplicationExit (exit status 0) */
    register unsigned r0 __asm("r0") = 0x18u;
    register unsigned r1 __asm("r1") = 0x20026u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

static void semihost_write0(const char *text)
{
    register unsigned r0 __asm("r0") = 0x04u;
    register const char *r1 __asm("r1") = text;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory"); /* the call returns in r0 */
}

static void print_actions(const float *act)
{
    static const char hex[] = "0123456789abcdef";
    char line[ROBOLEARN_ACT_DIM * 9 + 4];
    int i, j, n = 0;
    line[n++] = 'A';
    for (i = 0; i < ROBOLEARN_ACT_DIM; ++i) {
        union { float f; unsigned u; } v;
        v.f = act[i];
        line[n++] = ' ';
        for (j = 7; j >= 0; --j) {
            line[n++] = hex[(v.u >> (4 * j)) & 0xfu];
        }
    }
    line[n++] = '\n';
    line[n] = '\0';
    semihost_write0(line);
}

void bench_reset(void)
{
    unsigned *s = &_sidata, *d = &_sdata;
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11 full access: the FPU */
    __asm volatile("dsb\n\tisb");
    while (d < &_edata) {
        *d++ = *s++;
    }
    for (d = &_sbss; d < &_ebss; ++d) {
        *d = 0u;
    }
    (void)main();
    for (;;) {
        semihost_exit();
    }
}

int main(void)
{
    float obs[ROBOLEARN_OBS_DIM], act[ROBOLEARN_ACT_DIM];
    int i, t;
    robolearn_policy_reset();
    for (t = 0; t <= BENCH_WARMUP; ++t) {
        for (i = 0; i < ROBOLEARN_OBS_DIM; ++i) {
            /* a small, non-trivial observation (no saturation of the clip or tanh) */
            obs[i] = bench_obs[i] + 0.25f * (float)((i * 7 + t * 3) % 11 - 5);
        }
        if (t == BENCH_WARMUP) {
            bench_begin();
        }
        robolearn_policy(obs, act);
        if (t == BENCH_WARMUP) {
            bench_end();
        }
        print_actions(act);
    }
    for (i = 0; i < ROBOLEARN_ACT_DIM; ++i) {
        bench_act[i] = act[i];
    }
    return 0;
}
