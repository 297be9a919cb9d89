/* Idle benchmark firmware: SysTick at 1 kHz, WFI loop. It never touches RCC, so the core runs at
   the reset clock (HSI, 64 MHz) on the platform's RCC model, as on silicon; SysTick counts the core
   clock (CLKSOURCE = 1).
   Symbols: g_ticks (SysTick interrupts so far), g_wakeups (WFI returns). */
#include "m7.h"

#define CORE_HZ 64000000u              /* HSI at reset (RM0433 RCC: sys_ck = hsi_ck) */
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
