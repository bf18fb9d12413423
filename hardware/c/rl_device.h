/* rl_device.h - device side of the robolearn serial protocol (see hardware/PROTOCOL.md).
 *
 * rl_device.c is written against four platform hooks; a platform (the STM32F405
 * firmware in hardware/firmware/board.c, or hardware/c/host_platform.c on a
 * pseudo-terminal) provides them and calls rl_device_run().
 */
#ifndef RL_DEVICE_H
#define RL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

/* Next received byte (blocking), or -1 when the link is gone (rl_device_run returns). */
int rl_platform_getc(void);
/* Send n bytes (blocking until queued). */
void rl_platform_write(const uint8_t *data, size_t n);
/* Free-running counter, wrapping at 2^32, counting at rl_platform_cpu_hz() Hz. */
uint32_t rl_platform_cycles(void);
/* Frequency of rl_platform_cycles(), announced in HELLO_ACK (cpu_hz). */
uint32_t rl_platform_cpu_hz(void);

/* Forget any partial frame and the handshake (as after a reboot). */
void rl_device_init(void);
/* Process one received byte; replies go out through rl_platform_write. */
void rl_device_feed(uint8_t byte);
/* rl_device_init(), then feed bytes until rl_platform_getc() returns -1. */
void rl_device_run(void);

#endif /* RL_DEVICE_H */
