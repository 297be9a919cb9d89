/* Link RX ring bookkeeping: see link_rx.h (CM4 lives here). */
#include "link_rx.h"
#include "port.h"

/*
 * The harness's handle on CM4: a global label between the two reads of the snapshot. On the target
 * it is an assembler label (its value is the exact PC, no Thumb bit); host tests define the hook as
 * a call that plays an interrupt there.
 */
#ifndef LINK_RX_SNAPSHOT_HOOK
#define LINK_RX_SNAPSHOT_HOOK() \
    __asm__ volatile(".global link_rx_snapshot_window\n\tlink_rx_snapshot_window:" ::: "memory")
#endif

void link_rx_init(link_rx_t *rx, const volatile uint32_t *ndtr)
{
    rx->wraps = 0u;
    rx->head = 0u;
    rx->idle_events = 0u;
    rx->idle_head = 0u;
    rx->lap = 0u;
    rx->last_pos = 0u;
    rx->ndtr = ndtr;
    rx->rd = 0u;
    rx->overruns = 0u;
}

uint32_t link_rx_dma_offset(const link_rx_t *rx)
{
    uint32_t ndtr = *rx->ndtr & 0xFFFFu;
    uint32_t off = LINK_RX_BUF_SIZE - ndtr;
    return off < LINK_RX_BUF_SIZE ? off : 0u;   /* NDTR reads 0 for an instant before the reload */
}

void link_rx_publish(link_rx_t *rx)
{
    /* The RX ISRs may nest (FIX_STACK=0 priorities): one publisher at a time. */
    uint32_t primask = port_irq_save();
    uint32_t off = link_rx_dma_offset(rx);
    if (off < rx->last_pos) {
        rx->lap++;                 /* the offset went backwards: a lap ended, whether or not its TC
                                      has been handled yet (pending or held back) */
    }
    rx->last_pos = off;
    port_dmb();                    /* release: everything above is visible before the new head */
    rx->head = rx->lap * LINK_RX_BUF_SIZE + off;
    port_irq_restore(primask);
}

void link_rx_on_tc(link_rx_t *rx)
{
#if FIX_ATOMIC
    /* CM4 fix: the lap is derived from the offset going backwards inside link_rx_publish(). */
    link_rx_publish(rx);
#else
    /* CM4 field bug: the lap count lives apart from the offset the reader takes from NDTR. */
    rx->wraps = rx->wraps + 1u;
#endif
}

void link_rx_on_ht(link_rx_t *rx)
{
#if FIX_ATOMIC
    link_rx_publish(rx);
#else
    (void)rx;                      /* the reader looks at NDTR itself */
#endif
}

void link_rx_on_idle(link_rx_t *rx)
{
    /* where the line went idle, so the reader can hand the decoder the idle signal right after
     * the bytes that preceded it (not after bytes of the next frame) */
#if FIX_ATOMIC
    link_rx_publish(rx);
    rx->idle_head = rx->head;
#else
    rx->idle_head = rx->wraps * LINK_RX_BUF_SIZE + link_rx_dma_offset(rx);
#endif
    rx->idle_events = rx->idle_events + 1u;
}

__attribute__((noinline, noclone)) uint32_t link_rx_snapshot(link_rx_t *rx)
{
#if FIX_ATOMIC
    /* CM4 fix: one aligned word, written only by the ISRs under a critical section. */
    uint32_t head = rx->head;
    port_dmb();                    /* acquire: ring bytes before head are read after head */
    LINK_RX_SNAPSHOT_HOOK();
    return head;
#else
    /* CM4 field bug: two reads of state that a DMA interrupt updates, without a critical section. */
    uint32_t wraps = rx->wraps;
    LINK_RX_SNAPSHOT_HOOK();
    uint32_t off = link_rx_dma_offset(rx);
    return wraps * LINK_RX_BUF_SIZE + off;
#endif
}

uint32_t link_rx_pending(link_rx_t *rx, uint32_t head)
{
    uint32_t avail = head - rx->rd;
#if FIX_ATOMIC
    /* CM4 fix (defence in depth): a span longer than the ring is never copied. The bytes are gone
     * (the DMA lapped the reader); drop them and let the frame decoder resynchronise. */
    if (avail > LINK_RX_BUF_SIZE) {
        rx->overruns++;
        rx->rd = head;
        return 0u;
    }
#endif
    return avail;
}
