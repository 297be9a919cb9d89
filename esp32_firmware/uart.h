/*
 * ESP32-C3 UART driver: interrupt-driven, non-blocking in steady state.
 *   RX  RXFIFO_FULL and RXFIFO_TOUT interrupts drain the hardware FIFO into a software ring; each
 *       RX timeout (line idle) is queued as a marker at its byte position so the frame decoder sees
 *       the idle at the right place in the stream.
 *   TX  a software ring; uart_write fills the FIFO up to STATUS.TXFIFO_CNT and arms TXFIFO_EMPTY,
 *       whose interrupt refills it. Only boot and trap messages poll (uart_write_polled).
 */
#ifndef PEER_UART_H
#define PEER_UART_H

#include <stdint.h>

#define UART_BAUD            115200u
/* SCLK = APB 80 MHz, SCLK_DIV_NUM = 0: baud = 80e6 / (CLKDIV + FRAG/16) = 80e6 / 694.4375 = 115201 */
#define UART_CLKDIV_115200   694u
#define UART_FRAG_115200     7u
#define UART_RX_FULL_THRHD   64u   /* RXFIFO_FULL when more than this many bytes wait */
#define UART_TX_EMPTY_THRHD  16u   /* TXFIFO_EMPTY when fewer than this many bytes remain */
#define UART_RX_TOUT_BITS    20u   /* RXFIFO_TOUT after 2 idle characters (in bit times) */
#define UART_IDLE_QUEUE      8u

typedef struct {
    uint32_t base;
    uint8_t *tx_buf;
    uint32_t tx_mask;             /* ring size - 1 (power of two) */
    volatile uint32_t tx_head;    /* free-running: written by the main loop */
    volatile uint32_t tx_tail;    /* free-running: written by the ISR / kick */
    uint8_t *rx_buf;
    uint32_t rx_mask;
    volatile uint32_t rx_head;    /* = bytes ever enqueued */
    volatile uint32_t rx_tail;
    volatile uint32_t idle_pos[UART_IDLE_QUEUE];
    volatile uint32_t idle_head, idle_tail;
    /* counters */
    volatile uint32_t rx_overflows;
    volatile uint32_t line_errors;
    uint32_t tx_dropped;
} uart_t;

/* rx_buf may be NULL (TX-only console). Ring sizes must be powers of two. */
void     uart_init(uart_t *u, uint32_t base, uint8_t *tx_buf, uint32_t tx_size,
                   uint8_t *rx_buf, uint32_t rx_size);
/* Queue all n bytes or none (returns 0 and counts tx_dropped when the ring lacks room). */
int      uart_write(uart_t *u, const uint8_t *p, uint32_t n);
/* Busy-wait for FIFO room: boot and trap messages only. Interrupts may be off. */
void     uart_write_polled(uart_t *u, const uint8_t *p, uint32_t n);
/* Wait until the TX ring has been handed to the hardware (used before halting). */
void     uart_flush_polled(uart_t *u);
/* Pop one received byte; returns 0 when the ring is empty. */
int      uart_read(uart_t *u, uint8_t *byte);
/* Bytes consumed so far (rx_tail) and the position of the oldest pending idle marker. */
int      uart_idle_peek(uart_t *u, uint32_t *pos);
void     uart_idle_pop(uart_t *u);
int      uart_rx_pending(const uart_t *u);
void     uart_isr(uart_t *u);

#endif
