/* idle.elf: a 1 kHz mtimecmp tick and WFI, nothing else (the idle-cost benchmark). */
#include "rt.h"

struct idle_status { uint32_t ticks; uint32_t wakeups; uint32_t bad_traps; };
volatile struct idle_status g_idle;
static uint64_t next_tick;

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot)
{
    (void)mepc; (void)slot;
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        next_tick += MTIME_PER_TICK;
        mtimecmp_write(next_tick);
        g_idle.ticks++;
    } else {
        g_idle.bad_traps++;
        for (;;) { }
    }
}

int main(void)
{
    next_tick = mtime_read() + MTIME_PER_TICK;
    mtimecmp_write(next_tick);
    csr_set(mie, MIE_MTIE);
    irq_enable();
    for (;;) {
        cpu_wfi();
        g_idle.wakeups++;
    }
}
