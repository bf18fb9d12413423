/* host_platform.c - the device loop as a POSIX process on a (pseudo-)terminal.
 *
 *   ./device /dev/pts/N
 *
 * Opens the tty in argv[1], puts it in raw mode (8-bit clean, no echo, no line
 * editing: termios cfmakeraw), and serves the protocol until the other side closes
 * (read returns 0 or fails with EIO). Cycles are CLOCK_MONOTONIC nanoseconds, so
 * cpu_hz is announced as 1e9 and cycles / cpu_hz is the inference time in seconds.
 */
#define _DEFAULT_SOURCE /* cfmakeraw */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "rl_device.h"

static int fd = -1;
static uint8_t rx[512];
static ssize_t rx_n, rx_i;

int rl_platform_getc(void)
{
    while (rx_i >= rx_n) {
        rx_n = read(fd, rx, sizeof rx);
        rx_i = 0;
        if (rx_n < 0 && errno == EINTR) {
            continue;
        }
        if (rx_n <= 0) {
            return -1; /* EOF or EIO: the host closed its side */
        }
    }
    return rx[rx_i++];
}

void rl_platform_write(const uint8_t *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return; /* host gone: the next read ends the loop */
        }
        data += w;
        n -= (size_t)w;
    }
}

uint32_t rl_platform_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

uint32_t rl_platform_cpu_hz(void) { return 1000000000u; }

int main(int argc, char **argv)
{
    struct termios t;
    if (argc != 2) {
        fprintf(stderr, "usage: %s TTY\n", argv[0]);
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_NOCTTY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(fd, TCSANOW, &t);
    }
    rl_device_run();
    close(fd);
    return 0;
}
