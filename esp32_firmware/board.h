/* Board-level objects shared by main.c and the trap dispatcher. */
#ifndef PEER_BOARD_H
#define PEER_BOARD_H

#include <stdint.h>
#include "uart.h"

extern uart_t g_console_uart;     /* UART0 */
extern uart_t g_link_uart;        /* UART1 */
extern volatile uint32_t g_wake;  /* set by every interrupt: the main loop has something to look at */

/* Trap entry (start.S) calls this with the saved register frame (ra at frame[0]); it returns the
 * pc to resume at (mepc, or past the WFI of cpu_idle). */
uint32_t trap_dispatch(uint32_t mcause, uint32_t mepc, uint32_t mtval, uint32_t *frame);

/* start.S: sleep until an interrupt unless *wake != 0; call with interrupts enabled. */
void cpu_idle(const volatile uint32_t *wake);
extern const uint8_t cpu_idle_wfi[];

/* start.S: exactly 2 instructions (1 cycle each in the emulator) per iteration. */
void gc_burn_loop(uint32_t iterations);

#endif
