/* CPU-bound benchmark firmware: CRC-16/CCITT over 128 bytes, forever.
   Symbols: g_loops (passes completed), g_crc (CRC of the last pass). No interrupts. */
#include "m7.h"

volatile uint32_t g_loops;
volatile uint32_t g_crc;
static uint8_t buf[128];

static uint32_t crc16(const uint8_t *p, uint32_t n, uint32_t crc)
{
    while (n--) {
        crc ^= (uint32_t)*p++ << 8;
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xFFFFu : (crc << 1) & 0xFFFFu;
    }
    return crc;
}

int main(void)
{
    for (uint32_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7u + 1u);
    uint32_t crc = 0xFFFFu;
    for (;;) {
        crc = crc16(buf, sizeof buf, crc);
        g_crc = crc;
        g_loops++;
    }
}
