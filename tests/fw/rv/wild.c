/* Wild RV32 images for tests/test_wild.py: a peer that never gets going, on purpose.
   g_test (patched by the test before reset) selects:
     1  jump to address 0 (nothing there): instruction access fault; the handler returns to mepc,
        so the core faults again, forever (a trap loop)
     2  mtvec pointed at unmapped memory, then a load from unmapped memory: every trap entry
        faults on its own fetch (a trap loop that never reaches any handler) */
#include "rt.h"

volatile const uint32_t g_test __attribute__((used, section(".rodata.config"))) = 0;
volatile uint32_t g_traps;

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot)
{
    (void)mcause; (void)mepc; (void)slot;
    g_traps++;                        /* and return to mepc: the same fault again */
}

int main(void)
{
    if (g_test == 1) {
        ((void (*)(void))0)();
    } else if (g_test == 2) {
        __asm volatile("csrw mtvec, %0" :: "r"(0x10000000u));
        (void)*(volatile uint32_t *)0x10000100u;
    }
    for (;;) { }
}
