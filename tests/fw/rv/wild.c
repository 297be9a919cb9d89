/* Wild RV32 images for tests/test_wild.py: a peer that never gets going, on purpose.
   g_test (patched by the test before reset) selects:
     1  jump to address 0 (nothing there): instruction access fault; the handler returns to mepc,
        so the core faults again, forever (a trap loop)
     2  mtvec pointed at unmapped memory, then a load from unmapped memory: every trap entry
        faults on its own fetch (a trap loop that never reaches any handler)
     3  a spin with interrupts masked (mstatus.MIE clear) touching no peripheral: hung
     4  WFI with nothing enabled in mie: nothing can ever wake it (hung)
     5  a delay loop with MIE clear (counts down for ~400 ms of virtual time, then sets g_done and
        spins in WFI with the machine timer enabled): computing is not hanging */
#include "rt.h"

volatile const uint32_t g_test __attribute__((used, section(".rodata.config"))) = 0;
volatile uint32_t g_traps;
volatile uint32_t g_done;

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
    } else if (g_test == 3) {
        __asm volatile("csrci mstatus, 8");
        __asm volatile("1: j 1b");
    } else if (g_test == 4) {
        __asm volatile("csrci mstatus, 8");
        __asm volatile("csrw mie, zero");
        for (;;) {
            __asm volatile("wfi");
        }
    } else if (g_test == 5) {
        __asm volatile("csrci mstatus, 8");
        for (volatile uint32_t n = 10000000u; n; n--) { }
        g_done = 1;
        __asm volatile("csrw mie, %0" :: "r"(1u << 7));      /* MTIE: a timer could wake it */
        for (;;) {
            __asm volatile("wfi");
        }
    }
    for (;;) { }
}
