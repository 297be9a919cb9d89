/* traps_direct.elf / traps_vectored.elf (-DVECTORED): every trap path of the RV32 core.
 * Each trap appends {mcause, mepc, mtval, slot} to g_rec; the faulting sites carry global labels
 * (site_*) so the test can compare mepc with the ELF. Exceptions resume after the faulting
 * instruction (2 or 4 bytes). Sequence: ecall, 32-bit illegal, 16-bit illegal, ebreak, load and
 * store access faults, csrr time / cycle counters, software interrupt raised by the firmware's own
 * msip write (left pending once: mret re-traps at once), software interrupt unmasked by csrsi
 * mstatus, timer interrupt from WFI, external interrupt (the test pulses PLIC source 5 once g_stage
 * says the firmware waits), then g_done = 0x600D. */
#include "rt.h"

#define UNMAPPED_ADDR 0x20000000u
#define TEST_SRC 5u

struct rec { uint32_t mcause, mepc, mtval, slot, aux; };
volatile struct rec g_rec[16];
volatile uint32_t g_nrec;
volatile uint32_t g_stage;
volatile uint32_t g_msi_seen;
volatile uint32_t g_done;
volatile uint32_t g_time_csr, g_time_csr_hi, g_time_mmio;
volatile uint32_t g_mcycle, g_cycle, g_minstret, g_mcycleh, g_pccr;
volatile uint32_t g_loaded;

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot)
{
    uint32_t n = g_nrec;
    uint32_t aux = 0;
    if (mcause & MCAUSE_INTERRUPT) {
        uint32_t code = mcause & MCAUSE_CODE_MASK;
        if (code == IRQ_M_TIMER) {
            mtimecmp_write(~0ull);
        } else if (code == 3u) {
            if (++g_msi_seen != 1u)             /* the first time, leave it pending: mret re-traps */
                mmio_write(CLINT_MSIP, 0);
        } else if (code == IRQ_M_EXT) {
            aux = mmio_read(PLIC_CLAIM);
            mmio_write(PLIC_CLAIM, aux);
        }
    } else {
        uint16_t lo = *(volatile uint16_t *)mepc;
        csr_write(mepc, mepc + ((lo & 3u) == 3u ? 4u : 2u));
    }
    if (n < 16) {
        g_rec[n].mcause = mcause;
        g_rec[n].mepc = mepc;
        g_rec[n].mtval = csr_read(mtval);
        g_rec[n].slot = slot;
        g_rec[n].aux = aux;
        g_nrec = n + 1;
    }
}

static void wait_records(uint32_t n)
{
    while (g_nrec < n)
        cpu_wfi();
}

int main(void)
{
    __asm__ volatile (".globl site_ecall\nsite_ecall: ecall");
    __asm__ volatile (".globl site_illegal32\nsite_illegal32: .word 0xffffffff");
    __asm__ volatile (".option push\n.option rvc\n.globl site_illegal16\nsite_illegal16: .half 0\n"
                      ".option pop");
    __asm__ volatile (".globl site_ebreak\nsite_ebreak: ebreak");
    uint32_t v = 0x5A5A5A5Au;
    __asm__ volatile (".globl site_load\nsite_load: lw %0, 0(%1)" : "+r"(v) : "r"(UNMAPPED_ADDR) : "memory");
    g_loaded = v;
    __asm__ volatile (".globl site_store\nsite_store: sw zero, 4(%0)" :: "r"(UNMAPPED_ADDR) : "memory");

    g_time_mmio = mmio_read(CLINT_MTIME_LO);
    g_time_csr = csr_read(time);
    g_time_csr_hi = csr_read(timeh);
    g_mcycle = csr_read(mcycle);
    g_cycle = csr_read(cycle);
    g_minstret = csr_read(minstret);
    g_mcycleh = csr_read(mcycleh);
    g_pccr = csr_read(0x7e2);
    g_stage = 1;

    /* software interrupt: raised by our own store, taken right after it */
    csr_set(mie, 1u << 3);
    irq_enable();
    __asm__ volatile (".globl site_msip\nsite_msip: sw %0, 0(%1)\n.globl site_after_msip\n"
                      "site_after_msip: nop" :: "r"(1u), "r"(CLINT_MSIP) : "memory");
    wait_records(8);

    /* a software interrupt raised while masked is taken right after the csrs that unmasks it */
    irq_disable();
    mmio_write(CLINT_MSIP, 1);
    __asm__ volatile (".globl site_unmask\nsite_unmask: csrsi mstatus, 8\n"
                      ".globl site_after_unmask\nsite_after_unmask: nop" ::: "memory");
    wait_records(9);
    g_stage = 2;

    /* timer interrupt, 100 us from now, taken from WFI */
    mtimecmp_write(mtime_read() + 100u * SOC_MTIME_PER_US);
    csr_set(mie, MIE_MTIE);
    wait_records(10);
    g_stage = 3;

    /* external interrupt through the PLIC (the test pulses source 5) */
    mmio_write(PLIC_PRIORITY(TEST_SRC), 1);
    mmio_write(PLIC_ENABLE0, 1u << TEST_SRC);
    mmio_write(PLIC_THRESHOLD, 0);
    csr_set(mie, MIE_MEIE);
    g_stage = 4;
    wait_records(11);
    g_done = 0x600D;
    for (;;)
        cpu_wfi();
}
