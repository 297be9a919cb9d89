/* Idle benchmark firmware: SysTick at 1 kHz (480 MHz core clock), WFI loop.
   Symbols: g_ticks (SysTick interrupts so far), g_wakeups (WFI returns). */
#include "m7.h"

#define CORE_HZ 480000000u
volatile uint32_t g_ticks;
volatile uint32_t g_wakeups;

void SysTick_Handler(void) { g_ticks++; }

int main(void)
{
    SYST_RVR = CORE_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    for (;;) {
        wfi();
        g_wakeups++;
    }
}
