/*
 * Trap dispatch (mtvec direct mode, entry in start.S): machine timer and PLIC interrupts are served;
 * any exception is unexpected and ends in the crash record, a TRAP console line and a WFI halt.
 */
#include "board.h"
#include "console.h"
#include "plic.h"
#include "soc.h"
#include "status.h"
#include "tick.h"

/* Survives a reset (not zeroed by start.S); valid when magic == PEER_CRASH_MAGIC. */
__attribute__((section(".noinit")))
peer_crash_t g_peer_crash;

#define TRAP_FRAME_BYTES 64u     /* start.S saves 16 registers */

static void external_interrupt(void)
{
    uint32_t src;
    while ((src = plic_claim()) != 0u) {
        if (src == IRQ_SRC_UART1) {
            uart_isr(&g_link_uart);
        } else if (src == IRQ_SRC_UART0) {
            uart_isr(&g_console_uart);
        }
        plic_complete(src);
    }
}

static __attribute__((noreturn)) void fatal_exception(uint32_t mcause, uint32_t mepc, uint32_t mtval,
                                                      const uint32_t *frame)
{
    peer_crash_t *c = &g_peer_crash;
    uint32_t count = c->magic == PEER_CRASH_MAGIC ? c->count + 1u : 1u;
    c->magic = 0;
    c->version = PEER_CRASH_VERSION;
    c->size = sizeof *c;
    c->mcause = mcause;
    c->mepc = mepc;
    c->mtval = mtval;
    c->mstatus = csr_read(mstatus);
    c->ra = frame[0];
    c->sp = (uint32_t)(uintptr_t)frame + TRAP_FRAME_BYTES;
    c->uptime_ms = tick_ms();
    c->count = count;
    c->magic = PEER_CRASH_MAGIC;            /* last: the record is complete */
    g_peer_status.state = PEER_STATE_TRAP;

    line_t l;
    line_start(&l, "TRAP");
    line_kv_hex(&l, "mcause", mcause);
    line_kv_hex(&l, "mepc", mepc);
    line_kv_hex(&l, "mtval", mtval);
    console_line_polled(&l);
    csr_write(mie, 0u);
    for (;;) {
        cpu_wfi();
    }
}

uint32_t trap_dispatch(uint32_t mcause, uint32_t mepc, uint32_t mtval, uint32_t *frame)
{
    if (mcause & MCAUSE_INTERRUPT) {
        switch (mcause & MCAUSE_CODE_MASK) {
        case IRQ_M_TIMER:
            tick_isr();
            break;
        case IRQ_M_EXT:
            external_interrupt();
            break;
        default:
            break;
        }
        g_wake = 1u;
        /* taken just before cpu_idle's WFI: skip it, the main loop has work (g_wake) */
        if (mepc == (uint32_t)(uintptr_t)cpu_idle_wfi) {
            mepc += 4u;                     /* wfi is always a 32-bit instruction */
        }
        return mepc;
    }
    fatal_exception(mcause, mepc, mtval, frame);
}
