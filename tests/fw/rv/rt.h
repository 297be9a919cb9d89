/* Shared bits of the RV32 test firmwares (builtin engine tests only). */
#ifndef TESTFW_RT_H
#define TESTFW_RT_H
#include <stdint.h>
#include "soc.h"

#define TICK_HZ 1000u
#define MTIME_PER_TICK (SOC_MTIME_HZ / TICK_HZ)

static inline uint64_t mtime_read(void)
{
    uint32_t hi, lo;
    do {
        hi = mmio_read(CLINT_MTIME_HI);
        lo = mmio_read(CLINT_MTIME_LO);
    } while (hi != mmio_read(CLINT_MTIME_HI));
    return ((uint64_t)hi << 32) | lo;
}

/* Glitch-free 64-bit compare write on RV32: high word all ones first. */
static inline void mtimecmp_write(uint64_t v)
{
    mmio_write(CLINT_MTIMECMP_HI, 0xFFFFFFFFu);
    mmio_write(CLINT_MTIMECMP_LO, (uint32_t)v);
    mmio_write(CLINT_MTIMECMP_HI, (uint32_t)(v >> 32));
}

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot);
#endif
