/* startup.c - reset and exception vectors of the STM32F405 (Cortex-M4F).
 *
 * Vector table layout: ARMv7-M Architecture Reference Manual (DDI 0403E) B1.5.2
 * (16 system entries, entry 0 the initial main stack pointer) followed by the 82
 * STM32F405 interrupt lines (RM0090 rev 19, Table 61). Only SysTick has a handler;
 * every other exception parks in Default_Handler, where a debugger finds it.
 */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u) /* ARMv7-M B3.2.20 */

void Reset_Handler(void)
{
    /* FPU on before any floating-point instruction: CPACR.CP10 and CP11 = 0b11 (full
     * access), ARMv7-M B3.2.20 / Cortex-M4 TRM 7.1.1; then DSB + ISB so the next
     * instruction sees it (ARMv7-M B3.2.20 note on context synchronization). */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
    /* .data from flash, .bss zeroed (the C runtime contract; no crt0 is linked) */
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    main();
    for (;;) {
    }
}

void Default_Handler(void)
{
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define N_IRQ 82

typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used)) const vector vectors[16 + N_IRQ] = {
    (vector)(uintptr_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0, /* reserved */
    SVC_Handler,
    DebugMon_Handler,
    0, /* reserved */
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + N_IRQ - 1] = Default_Handler,
};
