/*
 * Vector table and reset entry. Reset_Handler turns the FPU on (before any C that might use it),
 * paints the main stack, then reset_c() copies .data, zeroes .bss (not .noinit: the crash record
 * survives a reset), lays the stack canary and calls main().
 */
#include <stdint.h>
#include "system.h"
#include "../regs/stm32h743.h"

int main(void);
void reset_c(void);

void Reset_Handler(void);
void NMI_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void TIM6_DAC_IRQHandler(void);
void DMA1_Stream0_IRQHandler(void);
void DMA1_Stream1_IRQHandler(void);
void USART1_IRQHandler(void);
void USART3_IRQHandler(void);

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];

typedef void (*vector_t)(void);
typedef struct {
    uint32_t *initial_sp;
    vector_t  handlers[16u + IRQ_COUNT - 1u];   /* exceptions 1..15, then IRQ 0..149 */
} vector_table_t;

#define EXC(n)  ((n) - 1u)
#define IRQ(n)  (15u + (n))

/* 1 KB aligned (166 entries): VTOR = 0x08000000, the start of flash. Every slot defaults to
 * Default_Handler and the used ones are overridden by index (hence the local -Woverride-init). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".isr_vector"), used)) const vector_table_t g_vector_table = {
    .initial_sp = _estack,
    .handlers = {
        [0 ... 16u + IRQ_COUNT - 2u] = Default_Handler,
        [EXC(1)] = Reset_Handler,
        [EXC(2)] = NMI_Handler,
        [EXC(3)] = HardFault_Handler,
        [EXC(4)] = MemManage_Handler,
        [EXC(5)] = BusFault_Handler,
        [EXC(6)] = UsageFault_Handler,
        [EXC(15)] = SysTick_Handler,
        [IRQ(IRQ_DMA1_STREAM0)] = DMA1_Stream0_IRQHandler,
        [IRQ(IRQ_DMA1_STREAM1)] = DMA1_Stream1_IRQHandler,
        [IRQ(IRQ_USART1)] = USART1_IRQHandler,
        [IRQ(IRQ_USART3)] = USART3_IRQHandler,
        [IRQ(IRQ_TIM6_DAC)] = TIM6_DAC_IRQHandler,
    },
};
#pragma GCC diagnostic pop

__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm__ volatile(
        /* CPACR: CP10/CP11 full access (FPU on), before any code that may touch s/d registers */
        "   ldr   r0, =0xE000ED88\n"
        "   ldr   r1, [r0]\n"
        "   orr   r1, r1, #(0xF << 20)\n"
        "   str   r1, [r0]\n"
        "   dsb\n"
        "   isb\n"
        /* paint the main stack [_sstack, sp) so stack_high_water() can measure it */
        "   ldr   r0, =_sstack\n"
        "   mov   r1, sp\n"
        "   ldr   r2, =0xA5A5A5A5\n"
        "1: cmp   r0, r1\n"
        "   bhs   2f\n"
        "   str   r2, [r0], #4\n"
        "   b     1b\n"
        "2: b     reset_c\n"
        ".ltorg\n");
}

_Static_assert(STACK_PAINT == 0xA5A5A5A5u, "Reset_Handler paints with this literal");

__attribute__((noreturn, used)) void reset_c(void)
{
    for (uint32_t *src = _sidata, *dst = _sdata; dst < _edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = _sbss; dst < _ebss;) {
        *dst++ = 0u;
    }
    _sstack[0] = STACK_CANARY;
    SCB->VTOR = (uint32_t)(uintptr_t)&g_vector_table;
    cpu_dsb();
    (void)main();
    for (;;) {
        cpu_wfi();
    }
}
