/* busy.elf: CPU-bound CRC-32 over a RAM buffer forever, with the same 1 kHz tick (benchmark). */
#include "rt.h"

struct busy_status { uint32_t ticks; uint32_t rounds; uint32_t crc; uint32_t bad_traps; };
volatile struct busy_status g_busy;
static uint8_t buf[256];
static uint64_t next_tick;

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot)
{
    (void)mepc; (void)slot;
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        next_tick += MTIME_PER_TICK;
        mtimecmp_write(next_tick);
        g_busy.ticks++;
    } else {
        g_busy.bad_traps++;
        for (;;) { }
    }
}

static uint32_t crc32(const uint8_t *p, uint32_t n, uint32_t crc)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

int main(void)
{
    for (uint32_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7u + 1u);
    next_tick = mtime_read() + MTIME_PER_TICK;
    mtimecmp_write(next_tick);
    csr_set(mie, MIE_MTIE);
    irq_enable();
    uint32_t crc = 0;
    for (;;) {
        crc = crc32(buf, sizeof buf, crc);
        g_busy.crc = crc;
        g_busy.rounds++;
    }
}
