/* Wild Cortex-M7 images for tests/test_wild.py: what users' firmware sometimes does, on purpose.

   The `.config` word g_test selects the behaviour (patched by the test before reset); every case
   runs forever, so the harness has to bound it (virtual duration, storm limits, hang detection).
   g_count counts what the case repeats (handler entries, boots...); g_out[] holds what a handler
   saw (CFSR, MMFAR...). */
#include "m7.h"

enum {
    W_MASKED_SPIN = 1,    /* cpsid i; for (;;): nothing can ever interrupt it */
    W_RESET_STORM,        /* SYSRESETREQ right at the start of main, every boot */
    W_UNMAPPED_LOOP,      /* load from a hole of the memory map in a loop; the fault handler skips it */
    W_ALL_PENDING,        /* every NVIC line enabled and pending, each handler pends itself again */
    W_SYSTICK_1,          /* SysTick at its smallest reload (1) with its interrupt */
    W_XN_FETCH,           /* branch into the XN region 0xA0000000: MemManage IACCVIOL expected */
    W_BUSFAULT_LOOP,      /* HardFault handler returns to the faulting load: a fault storm */
    W_WFI_MASKED,         /* cpsid i; wfi with no interrupt enabled: can never wake */
};

#define NIRQ 150
#define HOLE 0x40013000u             /* APB2 hole: no RM0433 block, no model */

__attribute__((section(".config"), used)) volatile const uint32_t g_test = 0;

volatile uint32_t g_count;
volatile uint32_t g_out[8];
__attribute__((section(".noinit"))) volatile uint32_t g_boots;

typedef void (*vector_t)(void);
extern const vector_t g_vectors[];
static vector_t g_ram_vectors[16 + NIRQ] __attribute__((aligned(1024)));

static uint32_t ipsr(void) { uint32_t v; __asm volatile("mrs %0, ipsr" : "=r"(v)); return v; }

static void storm_irq(void)
{
    uint32_t n = ipsr() - 16u;
    g_count++;
    NVIC_ISPR(n / 32u) = 1u << (n % 32u);           /* pend myself again */
}

void SysTick_Handler(void) { g_count++; }

/* A fault handler that skips the faulting 32-bit load (W_UNMAPPED_LOOP) or returns to it
   (W_BUSFAULT_LOOP); W_XN_FETCH records CFSR/MMFAR and parks. */
void fault_c(uint32_t *frame)
{
    g_count++;
    g_out[0] = SCB_CFSR;
    g_out[1] = SCB_MMFAR;
    g_out[2] = SCB_HFSR;
    g_out[3] = ipsr();
    g_out[4] = frame[6];
    if (g_test == W_XN_FETCH) {
        for (;;) { }
    }
    SCB_CFSR = SCB_CFSR;                               /* write-one-to-clear */
    if (g_test == W_UNMAPPED_LOOP)
        frame[6] += 4;                                 /* ldr.w: skip it */
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b fault_c");
}
__attribute__((naked)) void MemManage_Handler(void)
{
    __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b fault_c");
}

static uint32_t load_w(uint32_t addr)
{
    uint32_t v;
    __asm volatile("ldr.w %0, [%1]" : "=r"(v) : "r"(addr) : "memory");
    return v;
}

int main(void)
{
    switch (g_test) {
    case W_MASKED_SPIN:
        irq_disable();
        for (;;) { g_count++; }
    case W_RESET_STORM:
        g_boots++;
        SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
        for (;;) { }
    case W_UNMAPPED_LOOP:
    case W_BUSFAULT_LOOP:
        for (;;) { g_out[5] += load_w(HOLE); }
    case W_ALL_PENDING:
        for (uint32_t i = 0; i < 16u + NIRQ; i++)
            g_ram_vectors[i] = i < 16u ? g_vectors[i] : storm_irq;
        SCB_VTOR = (uint32_t)g_ram_vectors;
        dsb_isb();
        for (uint32_t w = 0; w < (NIRQ + 31u) / 32u; w++) {
            NVIC_ISER(w) = 0xFFFFFFFFu;
            NVIC_ISPR(w) = 0xFFFFFFFFu;
        }
        for (;;) { }
    case W_SYSTICK_1:
        SYST_RVR = 1;
        SYST_CVR = 0;
        SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
        for (;;) { }
    case W_XN_FETCH:
        SCB_SHCSR |= SHCSR_MEMFAULTENA;
        dsb_isb();
        ((void (*)(void))0xA0000001u)();
        for (;;) { }
    case W_WFI_MASKED:
        irq_disable();
        for (;;) { wfi(); }
    default:
        for (;;) { }
    }
}
