/*
 * Link RX ring bookkeeping (pure logic, no registers): where the USART3 RX DMA stream has written
 * to, and how much the main loop has still to parse. The driver (link_uart.c) owns the registers
 * and calls these from its ISRs and from link_poll().
 *
 * Positions are absolute byte counts since boot (mod 2^32): byte k lives at ring[k % SIZE].
 *
 * CM4 (FIX_ATOMIC, CRASH_MODES.md): the main loop needs one consistent "write position" made of the
 * DMA write offset (SIZE - NDTR) and the number of completed laps.
 *   FIX_ATOMIC=0: the TC ISR counts laps in `wraps`; link_rx_snapshot() reads `wraps`, then NDTR, in
 *                 two steps. A lap completing between the two (TC taken there, or a TC held back
 *                 while NDTR already reloaded) gives a position one lap behind: the span the caller
 *                 computes is "negative", i.e. ~4 GB.
 *   FIX_ATOMIC=1: the RX ISRs (HT, TC, IDLE) compute the absolute position under a critical section
 *                 and publish it as one word `head` (store after a DMB); the reader reads that one
 *                 word. A lap is counted when the offset goes backwards, which also covers a TC that
 *                 is still pending (or held back) when another RX ISR publishes. A span longer than
 *                 the ring (lapped) is dropped and counted, never copied.
 */
#ifndef DUOHIL_LINK_RX_H
#define DUOHIL_LINK_RX_H

#include <stdint.h>
#include "fixes.h"

#define LINK_RX_BUF_SIZE   256u          /* ring bytes: power of two, multiple of the 32-byte line */

typedef struct {
    volatile uint32_t wraps;            /* FIX_ATOMIC=0: laps completed, counted by the TC ISR */
    volatile uint32_t head;             /* FIX_ATOMIC=1: absolute write position, ISR-published */
    volatile uint32_t idle_events;      /* USART3 IDLE interrupts (both builds) */
    volatile uint32_t idle_head;        /* absolute write position at the last IDLE */
    uint32_t lap;                       /* ISR-private (FIX_ATOMIC=1) */
    uint32_t last_pos;                  /* ISR-private (FIX_ATOMIC=1): offset at the last publish */
    const volatile uint32_t *ndtr;      /* the RX stream's SxNDTR (a plain variable in host tests) */
    uint32_t rd;                        /* main loop: absolute position parsed up to */
    uint32_t overruns;                  /* spans longer than the ring (FIX_ATOMIC=1 drops them) */
} link_rx_t;

void link_rx_init(link_rx_t *rx, const volatile uint32_t *ndtr);

/* Write offset of the DMA inside the ring, 0..SIZE-1, from NDTR. */
uint32_t link_rx_dma_offset(const link_rx_t *rx);

/* ISR side. on_tc: DMA transfer complete (a lap ended); on_ht: half transfer; on_idle: USART IDLE. */
void link_rx_on_tc(link_rx_t *rx);
void link_rx_on_ht(link_rx_t *rx);
void link_rx_on_idle(link_rx_t *rx);
/* FIX_ATOMIC=1: compute and publish `head` (called by the three ISR hooks above). */
void link_rx_publish(link_rx_t *rx);

/* Main-loop side: the absolute write position, as one snapshot. Not inlined, and the global label
 * `link_rx_snapshot_window` sits between its two reads (FIX_ATOMIC=0) or right after its one read
 * (FIX_ATOMIC=1), so the harness can take the RX DMA interrupt at exactly that PC. */
uint32_t link_rx_snapshot(link_rx_t *rx);

/* Bytes to parse between rd and head. FIX_ATOMIC=0 returns head - rd whatever it is (the field bug:
 * a torn head makes that ~4 GB); FIX_ATOMIC=1 bounds it to the ring and counts an overrun. */
uint32_t link_rx_pending(link_rx_t *rx, uint32_t head);

/* The caller has copied n bytes starting at rd. */
static inline void link_rx_consume(link_rx_t *rx, uint32_t n) { rx->rd += n; }

#endif
