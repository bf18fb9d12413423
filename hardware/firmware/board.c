/* board.c - STM32F405 platform of the robolearn device loop: clocks, USART1, cycle counter.
 *
 * Register addresses and bits: RM0090 rev 19 (STM32F405/415/407/417 reference manual),
 * core registers: ARMv7-M Architecture Reference Manual (DDI 0403E).
 *
 * Clock assumptions (also in firmware_export/README.md):
 *  - Real board: HSE crystal of RL_HSE_HZ (default 8 MHz, the Crazyflie 2.x) -> PLL ->
 *    SYSCLK 168 MHz, AHB 168 MHz, APB1 42 MHz, APB2 84 MHz, flash 5 wait states (RM0090
 *    Table 10, 2.7-3.6 V). If the HSE or the PLL does not come up within a bounded wait
 *    the core stays on the 16 MHz HSI and announces 16 MHz.
 *  - QEMU netduinoplus2 does not model the RCC (its registers read as 0, which no real
 *    part does: RCC_CR resets to 0x0000xx83, RM0090 7.3.1); the board model clocks the
 *    core at a fixed 168 MHz (QEMU hw/arm/netduinoplus2.c), so 168 MHz is announced.
 *  - USART1 (PA9 TX / PA10 RX, AF7), 8N1, RL_BAUD (default 115200). QEMU connects its
 *    first -serial to USART1 (hw/arm/stm32f405_soc.c, usart[0] at 0x40011000).
 *
 * Cycle counter: DWT CYCCNT when it counts (ARMv7-M C1.8.8; real silicon), else a
 * SysTick-based counter on the processor clock. QEMU 7.2 models neither DEMCR nor the
 * DWT (`-d guest_errors` logs "NVIC: Bad read offset 0xdfc" and "Read of unassigned
 * area of PPB: offset 0x1004"; both read as 0), so under QEMU the probe falls back to
 * SysTick, which runs on QEMU's virtual clock (see firmware/README.md for what the
 * count means with -icount).
 */
#include <stdint.h>

#include "rl_device.h"

#ifndef RL_HSE_HZ
#define RL_HSE_HZ 8000000u
#endif
#ifndef RL_BAUD
#define RL_BAUD 115200u
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

/* RCC, RM0090 7.3 (base 0x40023800, 2.3 Table 1) */
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB2ENR REG(0x40023844u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
/* FLASH_ACR, RM0090 3.9.1 */
#define FLASH_ACR REG(0x40023C00u)
/* GPIOA, RM0090 8.4 (base 0x40020000) */
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
/* USART1, RM0090 30.6 (base 0x40011000) */
#define USART1_SR REG(0x40011000u)
#define USART1_DR REG(0x40011004u)
#define USART1_BRR REG(0x40011008u)
#define USART1_CR1 REG(0x4001100Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_SR_ORE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)
/* SysTick, ARMv7-M B3.3.2 */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
/* Debug and DWT, ARMv7-M C1.6.5 (DEMCR) and C1.8.7 (DWT_CTRL), C1.8.8 (DWT_CYCCNT) */
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_NOCYCCNT (1u << 25)

#define WAIT_LIMIT 500000u /* polls of a ready flag before giving up (>= 30 ms at 16 MHz) */

static uint32_t cpu_hz;
static uint32_t pclk2_hz;
static uint8_t use_dwt;
static volatile uint32_t systick_wraps;

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t i;
    for (i = 0; i < WAIT_LIMIT; ++i) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

static void clock_init(void)
{
    if ((RCC_CR & (RCC_CR_HSION | RCC_CR_HSIRDY)) == 0) {
        cpu_hz = pclk2_hz = 168000000u; /* no RCC model: QEMU netduinoplus2 */
        return;
    }
    cpu_hz = pclk2_hz = 16000000u; /* HSI after reset, prescalers 1 */
    RCC_CR |= RCC_CR_HSEON;
    if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        return;
    }
    /* 5 wait states before raising the clock; prefetch, instruction and data caches on */
    FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10);
    /* VCO in = HSE / M = 1 MHz, VCO = 336 MHz, SYSCLK = VCO / 2, USB = VCO / 7 = 48 MHz
     * (RM0090 7.3.2: PLLM[5:0], PLLN[14:6], PLLP[17:16] = 0 for /2, PLLSRC bit 22, PLLQ[27:24]) */
    RCC_PLLCFGR = (RL_HSE_HZ / 1000000u) | (336u << 6) | (0u << 16) | (1u << 22) | (7u << 24);
    /* AHB /1, APB1 /4 (42 MHz, max 42), APB2 /2 (84 MHz, max 84): RM0090 7.3.3 */
    RCC_CFGR = (5u << 10) | (4u << 13);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return;
    }
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u; /* SW = PLL */
    if (!wait_set(&RCC_CFGR, 0xCu, 0x8u)) { /* SWS = PLL */
        return;
    }
    cpu_hz = 168000000u;
    pclk2_hz = 84000000u;
}

static void usart_init(void)
{
    RCC_AHB1ENR |= 1u << 0; /* GPIOAEN */
    RCC_APB2ENR |= 1u << 4; /* USART1EN */
    /* PA9, PA10 alternate function (MODER = 0b10), AF7 = USART1 (RM0090 8.4.1, 8.4.10;
     * DS8626 Table 9 for the mapping) */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);
    /* oversampling by 16: BRR = USARTDIV in 12.4 fixed point = f_pclk / baud (RM0090 30.3.4) */
    USART1_BRR = (pclk2_hz + RL_BAUD / 2u) / RL_BAUD;
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void SysTick_Handler(void) { systick_wraps++; }

static void counter_init(void)
{
    uint32_t a, i;
    DEMCR |= DEMCR_TRCENA;
    if (!(DWT_CTRL & DWT_CTRL_NOCYCCNT)) {
        DWT_CYCCNT = 0;
        DWT_CTRL |= 1u; /* CYCCNTENA */
        a = DWT_CYCCNT;
        for (i = 0; i < 64u; ++i) {
            __asm volatile("nop");
        }
        use_dwt = DWT_CYCCNT != a; /* counts: real silicon */
    }
    if (!use_dwt) {
        /* 24-bit down-counter on the processor clock (CLKSOURCE = 1), wrap interrupt
         * extends it to 32 bits */
        SYST_RVR = 0x00FFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = (1u << 2) | (1u << 1) | 1u;
    }
}

uint32_t rl_platform_cycles(void)
{
    uint32_t hi, lo;
    if (use_dwt) {
        return DWT_CYCCNT;
    }
    do {
        hi = systick_wraps;
        lo = SYST_CVR;
    } while (hi != systick_wraps);
    return (hi << 24) + (0x00FFFFFFu - lo);
}

uint32_t rl_platform_cpu_hz(void) { return cpu_hz; }

int rl_platform_getc(void)
{
    uint32_t sr;
    do {
        sr = USART1_SR;
    } while (!(sr & USART_SR_RXNE));
    return (int)(USART1_DR & 0xFFu); /* reading DR after SR also clears an overrun (ORE) */
}

void rl_platform_write(const uint8_t *data, size_t n)
{
    while (n--) {
        while (!(USART1_SR & USART_SR_TXE)) {
        }
        USART1_DR = *data++;
    }
}

int main(void)
{
    clock_init();
    usart_init();
    counter_init();
    rl_device_run();
    return 0;
}
