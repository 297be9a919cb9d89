/* Vector table and reset for the M7 test firmwares: 16 system vectors + 48 IRQs. */
#include "m7.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);

void Default_Handler(void) { for (;;) { } }
void Reset_Handler(void);
#define WEAK(n) void n(void) __attribute__((weak, alias("Default_Handler")))
WEAK(NMI_Handler); WEAK(HardFault_Handler); WEAK(MemManage_Handler); WEAK(BusFault_Handler);
WEAK(UsageFault_Handler); WEAK(SVC_Handler); WEAK(DebugMon_Handler); WEAK(PendSV_Handler);
WEAK(SysTick_Handler);
WEAK(IRQ0_Handler); WEAK(IRQ1_Handler); WEAK(IRQ2_Handler); WEAK(IRQ3_Handler);
WEAK(IRQ4_Handler); WEAK(IRQ5_Handler); WEAK(IRQ6_Handler); WEAK(IRQ7_Handler);

typedef void (*vector_t)(void);
__attribute__((section(".isr_vector"), used)) const vector_t g_vectors[16 + 48] = {
    (vector_t)&_estack, Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler,
    BusFault_Handler, UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, DebugMon_Handler, 0,
    PendSV_Handler, SysTick_Handler,
    IRQ0_Handler, IRQ1_Handler, IRQ2_Handler, IRQ3_Handler, IRQ4_Handler, IRQ5_Handler,
    IRQ6_Handler, IRQ7_Handler,
    [24 ... 63] = Default_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; ) *dst++ = 0;
    SCB_CPACR |= 0xFu << 20;          /* CP10/CP11 full access (FPU) */
    dsb_isb();
    main();
    for (;;) { }
}
