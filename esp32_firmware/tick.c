/* CLINT timer tick (tick.h). */
#include "tick.h"

#include "soc.h"

static volatile uint32_t s_ms;
static uint64_t s_next;           /* mtimecmp of the next tick */

uint64_t tick_mtime(void)
{
    uint32_t hi, lo;
    do {
        hi = mmio_read(CLINT_MTIME_HI);
        lo = mmio_read(CLINT_MTIME_LO);
    } while (hi != mmio_read(CLINT_MTIME_HI));
    return ((uint64_t)hi << 32) | lo;
}

static void set_mtimecmp(uint64_t t)
{
    /* glitch-free on RV32: park the low word at its maximum while the high word changes */
    mmio_write(CLINT_MTIMECMP_LO, 0xFFFFFFFFu);
    mmio_write(CLINT_MTIMECMP_HI, (uint32_t)(t >> 32));
    mmio_write(CLINT_MTIMECMP_LO, (uint32_t)t);
}

void tick_init(void)
{
    s_ms = 0;
    s_next = tick_mtime() + SOC_MTIME_PER_MS;
    set_mtimecmp(s_next);
    csr_set(mie, MIE_MTIE);
}

uint32_t tick_ms(void)
{
    return s_ms;
}

void tick_isr(void)
{
    /* catch up after the CPU was held (a harness stall): the count follows mtime, not interrupts */
    uint64_t now = tick_mtime();
    uint32_t ms = s_ms;
    while (s_next <= now) {
        s_next += SOC_MTIME_PER_MS;
        ms++;
    }
    s_ms = ms;
    set_mtimecmp(s_next);
}
