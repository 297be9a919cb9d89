/* Fault handlers and the crash record: see fault.h (CM7). */
#include <stddef.h>
#include "fault.h"
#include "blocks.h"
#include "board.h"
#include "console.h"
#include "logfmt.h"
#include "../regs/stm32h743.h"

/* In .noinit: startup neither copies nor zeroes it, so it survives any reset (RAM is kept). */
__attribute__((section(".noinit"), used)) crash_record_t g_crash_record;

void HardFault_Handler(void);
void MemManage_Handler(void) __attribute__((alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((alias("HardFault_Handler")));
void NMI_Handler(void) __attribute__((alias("HardFault_Handler")));
void Default_Handler(void) __attribute__((alias("HardFault_Handler")));   /* unexpected IRQ */

static int record_count_valid(const crash_record_t *r)
{
    return r->magic == CRASH_MAGIC || r->magic == CRASH_MAGIC_REPORTED;
}

int fault_report_previous(void)
{
    crash_record_t *r = &g_crash_record;
    if (r->magic != CRASH_MAGIC || r->version != CRASH_VERSION || r->size != sizeof *r) {
        if (!record_count_valid(r)) {
            /* power-on RAM: start the crash count from zero */
            *r = (crash_record_t){.magic = CRASH_MAGIC_REPORTED, .version = CRASH_VERSION,
                                  .size = (uint16_t)sizeof *r};
        }
        return 0;
    }
    char line[LOG_LINE_MAX];
    uint16_t n = logfmt_crashrec(line, sizeof line, r);
    console_write(line, n);
    r->magic = CRASH_MAGIC_REPORTED;     /* cleared: reported once; the count and fields stay */
    return 1;
}

void fault_init(void)
{
#if FIX_FAULT_HANDLER
    /* CM7 fix: the configurable faults get their own entries (same recorder), at the top priority. */
    scb_set_system_priority(EXC_MEMMANAGE, PRIO_FAULTS);
    scb_set_system_priority(EXC_BUSFAULT, PRIO_FAULTS);
    scb_set_system_priority(EXC_USAGEFAULT, PRIO_FAULTS);
    SCB->SHCSR |= SCB_SHCSR_MEMFAULTENA | SCB_SHCSR_BUSFAULTENA | SCB_SHCSR_USGFAULTENA;
#endif
}

#if FIX_FAULT_HANDLER

static volatile uint8_t s_watchdog_running;
void fault_set_watchdog_running(void) { s_watchdog_running = 1u; }

/* Private stack for the fault path: the main stack may be the thing that overflowed. */
static uint64_t s_fault_stack[96];
uint64_t *const g_fault_stack_top = &s_fault_stack[sizeof s_fault_stack / sizeof s_fault_stack[0]];

__attribute__((noreturn, used)) void fault_record(const uint32_t *frame, uint32_t exc_return, uint32_t ipsr);

/*
 * One entry for every fault (and NMI / unexpected IRQs). Nothing is pushed before SP is moved:
 *   r0 = the stacked frame (MSP or PSP, EXC_RETURN bit 2), r1 = EXC_RETURN, r2 = IPSR.
 */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "   tst   lr, #4\n"
        "   ite   eq\n"
        "   mrseq r0, msp\n"
        "   mrsne r0, psp\n"
        "   mov   r1, lr\n"
        "   mrs   r2, ipsr\n"
        "   ldr   r3, =g_fault_stack_top\n"
        "   ldr   r3, [r3]\n"
        "   mov   sp, r3\n"
        "   b     fault_record\n"
        ".ltorg\n");
}

static int frame_readable(const uint32_t *frame)
{
    uintptr_t a = (uintptr_t)frame;
    /* the frame must lie in DTCM or AXI SRAM, word aligned: reading a wild SP would fault again */
    return (a & 3u) == 0u && ((a >= 0x20000000u && a <= 0x20020000u - 32u) ||
                              (a >= 0x24000000u && a <= 0x24080000u - 32u));
}

static __attribute__((noreturn)) void wait_for_reset(void)
{
    if (!s_watchdog_running) {
        scb_system_reset();              /* the IWDG is not up yet (fault during boot) */
    }
    for (;;) {
        cpu_wfi();                       /* the IWDG bites within IWDG_TIMEOUT_MS of the last kick */
    }
}

void fault_record(const uint32_t *frame, uint32_t exc_return, uint32_t ipsr)
{
    crash_record_t *r = &g_crash_record;
    uint32_t count = record_count_valid(r) ? r->count : 0u;
    r->magic = 0u;                       /* invalid while being written */
    r->version = CRASH_VERSION;
    r->size = (uint16_t)sizeof *r;
    r->count = count + 1u;
    r->exception = ipsr & 0x1FFu;
    r->cfsr = SCB->CFSR;
    r->hfsr = SCB->HFSR;
    r->mmfar = SCB->MMFAR;
    r->bfar = SCB->BFAR;
    r->exc_return = exc_return;
    r->sp = (uint32_t)(uintptr_t)frame;
    if (frame_readable(frame)) {
        r->r0 = frame[0];
        r->r1 = frame[1];
        r->r2 = frame[2];
        r->r3 = frame[3];
        r->r12 = frame[4];
        r->lr = frame[5];
        r->pc = frame[6];
        r->xpsr = frame[7];
    } else {
        r->r0 = r->r1 = r->r2 = r->r3 = r->r12 = r->lr = r->pc = r->xpsr = 0u;
    }
    r->uptime_ms = g_status.uptime_ms;
    r->fix_mask = FIX_MASK;
    cpu_dsb();
    r->magic = CRASH_MAGIC;
    cpu_dsb();

    char line[LOG_LINE_MAX];
    uint16_t n = logfmt_hardfault(line, sizeof line, r);
    console_panic_write(line, n);
    wait_for_reset();
}

void fault_panic(uint32_t reason)
{
    cpu_irq_disable();
    /* A software crash: no exception frame. pc/lr = where fault_panic was called from. */
    uint32_t caller = (uint32_t)(uintptr_t)__builtin_return_address(0);
    crash_record_t *r = &g_crash_record;
    uint32_t count = record_count_valid(r) ? r->count : 0u;
    *r = (crash_record_t){
        .magic = 0u, .version = CRASH_VERSION, .size = (uint16_t)sizeof *r, .count = count + 1u,
        .exception = reason, .lr = caller, .pc = caller, .sp = cpu_get_msp(),
        .uptime_ms = g_status.uptime_ms, .fix_mask = FIX_MASK,
    };
    cpu_dsb();
    r->magic = CRASH_MAGIC;
    cpu_dsb();
    char line[LOG_LINE_MAX];
    uint16_t n = logfmt_hardfault(line, sizeof line, r);
    console_panic_write(line, n);
    wait_for_reset();
}

#else /* !FIX_FAULT_HANDLER */

void fault_set_watchdog_running(void) {}

/* CM7 field bug: the startup file's default handler. The device stops, silently, for good. */
void HardFault_Handler(void)
{
    for (;;) {
    }
}

void fault_panic(uint32_t reason)
{
    (void)reason;
    cpu_irq_disable();
    for (;;) {
    }
}

#endif
