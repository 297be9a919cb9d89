/*
 * USART3 + DMA link driver. Crash modes living here: CM3 (FIX_DCACHE: cache maintenance and buffer
 * alignment), CM4 (FIX_ATOMIC, through link_rx.c: the snapshot and the span copy in link_poll) and
 * CM5 (FIX_STACK: the link ISRs' locals).
 */
#include <string.h>
#include "link_uart.h"
#include "link_rx.h"
#include "logfmt.h"
#include "console.h"
#include "telemetry.h"
#include "blocks.h"
#include "board.h"
#include "gpio.h"
#include "../regs/stm32h743.h"

#define POLL_LIMIT        100000u
#define RX_STREAM         (&DMA1->S[LINK_RX_STREAM])
#define TX_STREAM         (&DMA1->S[LINK_TX_STREAM])
#define RX_FLAGS(isr)     (((isr) >> 0) & DMA_FLAG_ALL)     /* stream 0 flags in LISR */
#define TX_FLAGS(isr)     (((isr) >> 6) & DMA_FLAG_ALL)     /* stream 1 flags in LISR */
#define ERR_LOG_EVERY     64u                               /* log the 1st, 65th, ... USART error */

/*
 * DMA buffers, AXI SRAM, cacheable (default memory map, write-back).
 * CM3 (FIX_DCACHE): the D-cache works on 32-byte lines.
 *   FIX_DCACHE=0 (field bug): the TX buffer is sized for a telemetry frame (28 bytes) and the RX ring
 *     follows it, so the ring starts mid-line and shares a line with CPU-written TX bytes; nothing is
 *     invalidated after DMA or cleaned before TX.
 *   FIX_DCACHE=1 (fix): both buffers 32-byte aligned and a multiple of 32 bytes; the ring is
 *     invalidated by address before the CPU reads it, the TX bytes cleaned before the DMA reads them.
 */
#if FIX_DCACHE
#define LINK_TX_BUF_SIZE  ((TELEMETRY_FRAME_SIZE + DCACHE_LINE_SIZE - 1u) & ~(DCACHE_LINE_SIZE - 1u))
#define DMA_BUF_ALIGN     __attribute__((aligned(DCACHE_LINE_SIZE)))
#else
#define LINK_TX_BUF_SIZE  TELEMETRY_FRAME_SIZE
#define DMA_BUF_ALIGN
#endif

typedef struct {
    uint8_t tx[LINK_TX_BUF_SIZE] DMA_BUF_ALIGN;
    uint8_t rx[LINK_RX_BUF_SIZE] DMA_BUF_ALIGN;
} link_dma_buffers_t;

__attribute__((section(".dma_buffers"))) static link_dma_buffers_t s_dma DMA_BUF_ALIGN;

#if FIX_DCACHE
_Static_assert(LINK_TX_BUF_SIZE % DCACHE_LINE_SIZE == 0u && LINK_RX_BUF_SIZE % DCACHE_LINE_SIZE == 0u,
               "CM3 fix: DMA buffers must be whole cache lines");
#endif

/* Driver state. Defined first so it sits at the top of .bss, right below the main stack (the map
 * shows the order): in a FIX_STACK=0 stack overflow it is the first thing overwritten. */
static struct {
    link_rx_t         rx;
    frame_decoder_t   dec;
    dispatch_stats_t  dispatch;
    uint32_t          last_idle;
    uint32_t          rx_bytes;
    uint32_t          sof_seen;
    uint32_t          overruns;
    uint32_t          usart_errors;
    uint32_t          dma_errors;
    uint32_t          tx_sent;
    uint32_t          tx_dropped;
    telemetry_t       tx_next;
    volatile uint8_t  tx_queued;
    volatile uint8_t  tx_busy;
    const dispatch_ops_t *ops;
} s_link;

/* Main-loop copy of the span being parsed (DTCM). */
static uint8_t s_work[LINK_RX_BUF_SIZE];

#if FIX_STACK
/* CM5 fix: the link ISRs' scratch buffers live here, not on the (small) main stack. */
static uint8_t s_tx_frame[FRAME_MAX_SIZE];
static uint8_t s_rx_half[LINK_RX_BUF_SIZE / 2u];
static char s_err_line[LOG_LINE_MAX];
#endif


static void on_frame(void *ctx, const uint8_t *payload, uint8_t len)
{
    (void)ctx;
    (void)dispatch_payload(payload, len, s_link.ops, &s_link.dispatch);
}

uint32_t link_init(uint32_t baud, const dispatch_ops_t *ops)
{
    uint32_t flags = 0u;
    s_link.ops = ops;
    frame_decoder_init(&s_link.dec);
    link_rx_init(&s_link.rx, &RX_STREAM->NDTR);

    RCC->AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC->AHB1ENR |= RCC_AHB1ENR_DMA1EN;
    RCC->APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC->APB1LENR;
    gpio_config(GPIOD, 8u, GPIO_MODE_AF, 7u);
    gpio_config(GPIOD, 9u, GPIO_MODE_AF, 7u);

    /* USART3 8N1, no FIFO; RX and TX through DMA; IDLE and error interrupts. */
    USART3->CR1 = 0u;
    USART3->BRR = (PCLK1_HZ + baud / 2u) / baud;
    USART3->CR3 = USART_CR3_DMAR | USART_CR3_DMAT | USART_CR3_EIE;

    /* RX: DMA1 stream 0 <- DMAMUX1 channel 0 = USART3_RX, circular over the ring, HT + TC + TE. */
    DMAMUX1_CCR(LINK_RX_STREAM) = DMAMUX_REQ_USART3_RX;
    RX_STREAM->CR = 0u;
    DMA1->LIFCR = DMA_LISR_S0(DMA_FLAG_ALL);
    RX_STREAM->PAR = (uint32_t)(uintptr_t)&USART3->RDR;
    RX_STREAM->M0AR = (uint32_t)(uintptr_t)s_dma.rx;
    RX_STREAM->NDTR = LINK_RX_BUF_SIZE;
    RX_STREAM->CR = DMA_SxCR_DIR_P2M | DMA_SxCR_MINC | DMA_SxCR_CIRC | DMA_SxCR_PL_HIGH | DMA_SxCR_TRBUFF |
                    DMA_SxCR_HTIE | DMA_SxCR_TCIE | DMA_SxCR_TEIE;
#if FIX_DCACHE
    dcache_invalidate_by_addr(s_dma.rx, (int32_t)sizeof s_dma.rx);   /* no stale lines from before */
#endif
    RX_STREAM->CR |= DMA_SxCR_EN;

    /* TX: DMA1 stream 1 <- DMAMUX1 channel 1 = USART3_TX, normal mode, TC + TE; started per frame. */
    DMAMUX1_CCR(LINK_TX_STREAM) = DMAMUX_REQ_USART3_TX;
    TX_STREAM->CR = 0u;
    DMA1->LIFCR = DMA_LISR_S1(DMA_FLAG_ALL);
    TX_STREAM->PAR = (uint32_t)(uintptr_t)&USART3->TDR;
    TX_STREAM->M0AR = (uint32_t)(uintptr_t)s_dma.tx;
    TX_STREAM->CR = DMA_SxCR_DIR_M2P | DMA_SxCR_MINC | DMA_SxCR_PL_MEDIUM | DMA_SxCR_TRBUFF |
                    DMA_SxCR_TCIE | DMA_SxCR_TEIE;

    USART3->CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_IDLEIE;
    USART3->CR1 |= USART_CR1_UE;
    uint32_t n = 0;
    while ((USART3->ISR & (USART_ISR_TEACK | USART_ISR_REACK)) != (USART_ISR_TEACK | USART_ISR_REACK) &&
           ++n < POLL_LIMIT) {
    }
    if (n >= POLL_LIMIT) {
        flags |= BOOTF_USART_TIMEOUT;
    }
    USART3->ICR = USART_ICR_IDLECF | USART_ICR_ORECF | USART_ICR_FECF | USART_ICR_NECF | USART_ICR_PECF;

    nvic_set_priority(IRQ_DMA1_STREAM0, PRIO_LINK_DMA_RX);
    nvic_set_priority(IRQ_USART3, PRIO_LINK_USART);
    nvic_set_priority(IRQ_DMA1_STREAM1, PRIO_LINK_DMA_TX);
    nvic_enable(IRQ_DMA1_STREAM0);
    nvic_enable(IRQ_USART3);
    nvic_enable(IRQ_DMA1_STREAM1);
    return flags;
}

static void feed(const uint8_t *p, uint32_t n)
{
    if (n != 0u) {
        frame_decoder_feed_buf(&s_link.dec, p, n, on_frame, 0);
    }
}

uint32_t link_poll(void)
{
    uint32_t before = s_link.dec.frames_ok;
    /* the IDLE count and position before the head: an IDLE is never seen before its bytes */
    uint32_t primask = cpu_irq_save();
    uint32_t idle = s_link.rx.idle_events;
    uint32_t idle_at = s_link.rx.idle_head;
    cpu_irq_restore(primask);
    uint32_t rd = s_link.rx.rd;
    uint32_t head = link_rx_snapshot(&s_link.rx);
    uint32_t n = link_rx_pending(&s_link.rx, head);
    if (n != 0u) {
        uint32_t start = rd % LINK_RX_BUF_SIZE;
        uint32_t first = LINK_RX_BUF_SIZE - start;
        if (first > n) {
            first = n;
        }
#if FIX_DCACHE
        /* CM3 fix: drop whatever the D-cache holds for the ring; the CPU never writes it, so
         * invalidating whole lines loses nothing and the copy below reads what the DMA wrote. */
        dcache_invalidate_by_addr(s_dma.rx, (int32_t)sizeof s_dma.rx);
#endif
        /* The span [rd, head) wraps at most once: copy it out in two pieces. CM4: with a torn head
         * (FIX_ATOMIC=0) n is ~4 GB and the second copy runs off the end of s_work through DTCM. */
        memcpy(s_work, &s_dma.rx[start], first);
        memcpy(s_work + first, &s_dma.rx[0], n - first);
        link_rx_consume(&s_link.rx, n);
        s_link.rx_bytes += n;
    }
    /* FIX_RESYNC decoders drop a partial frame on an idle line: give them the IDLE between the
     * bytes that came before it and those after it. */
    uint32_t split = n;
    int idle_new = idle != s_link.last_idle;
    if (idle_new && idle_at - rd <= n) {
        split = idle_at - rd;
    }
    feed(s_work, split);
    if (idle_new) {
        s_link.last_idle = idle;
        frame_decoder_idle(&s_link.dec, on_frame, 0);
    }
    feed(s_work + split, n - split);
    return s_link.dec.frames_ok - before;
}

static void tx_start(const uint8_t *frame, uint32_t n);

void link_send_telemetry(const telemetry_t *t)
{
    uint32_t primask = cpu_irq_save();
    if (!s_link.tx_busy && !(TX_STREAM->CR & DMA_SxCR_EN)) {
        uint8_t frame[TELEMETRY_FRAME_SIZE];
        uint32_t n = (uint32_t)telemetry_encode_frame(frame, sizeof frame, t);
        if (n != 0u) {
            tx_start(frame, n);
        }
    } else {
        if (s_link.tx_queued) {
            s_link.tx_dropped++;                    /* the queued one never started: replace it */
        }
        s_link.tx_next = *t;                        /* the TX-complete ISR starts it */
        s_link.tx_queued = 1u;
    }
    cpu_irq_restore(primask);
}

static void tx_start(const uint8_t *frame, uint32_t n)
{
    memcpy(s_dma.tx, frame, n);
#if FIX_DCACHE
    /* CM3 fix: the DMA reads memory, not the D-cache: write the frame back first (and DSB). */
    dcache_clean_by_addr(s_dma.tx, (int32_t)n);
#endif
    DMA1->LIFCR = DMA_LISR_S1(DMA_FLAG_ALL);
    TX_STREAM->M0AR = (uint32_t)(uintptr_t)s_dma.tx;
    TX_STREAM->NDTR = n;
    TX_STREAM->CR |= DMA_SxCR_EN;
    s_link.tx_busy = 1u;
}

/* DMA1 stream 1: USART3 TX complete (or error); starts the frame queued meanwhile, if any. */
void DMA1_Stream1_IRQHandler(void)
{
#if FIX_STACK
    uint8_t *frame = s_tx_frame;
#else
    uint8_t frame[FRAME_MAX_SIZE];                  /* CM5 field bug: a max-size frame on the ISR stack */
#endif
    uint32_t flags = TX_FLAGS(DMA1->LISR);
    if (flags) {
        DMA1->LIFCR = DMA_LISR_S1(flags);
    }
    if (flags & (DMA_FLAG_TEIF | DMA_FLAG_DMEIF)) {
        s_link.dma_errors++;
        s_link.tx_busy = 0u;                        /* TE cleared EN: the frame is lost */
    }
    if (flags & DMA_FLAG_TCIF) {
        s_link.tx_busy = 0u;
        s_link.tx_sent++;
    }
    if (!s_link.tx_busy && !(TX_STREAM->CR & DMA_SxCR_EN) && s_link.tx_queued) {
        telemetry_t t = s_link.tx_next;
        s_link.tx_queued = 0u;
        uint32_t n = (uint32_t)telemetry_encode_frame(frame, FRAME_MAX_SIZE, &t);
        if (n != 0u) {
            tx_start(frame, n);
        }
    }
}

/* DMA1 stream 0: USART3 RX ring half / full (or an error). */
void DMA1_Stream0_IRQHandler(void)
{
#if FIX_STACK
    uint8_t *half = s_rx_half;
#else
    uint8_t half[LINK_RX_BUF_SIZE / 2u];            /* CM5 field bug: a half-ring copy on the ISR stack */
#endif
    uint32_t flags = RX_FLAGS(DMA1->LISR);
    if (flags) {
        DMA1->LIFCR = DMA_LISR_S0(flags);
    }
    if (flags & (DMA_FLAG_TEIF | DMA_FLAG_DMEIF)) {
        s_link.dma_errors++;
    }
    if (flags & (DMA_FLAG_HTIF | DMA_FLAG_TCIF)) {
        if (flags & DMA_FLAG_TCIF) {
            link_rx_on_tc(&s_link.rx);
        } else {
            link_rx_on_ht(&s_link.rx);
        }
        /* Link-activity statistic: SOF bytes in the half the DMA just finished (copied first: the
         * DMA keeps writing the other half). */
        const uint8_t *src = (flags & DMA_FLAG_TCIF) ? &s_dma.rx[LINK_RX_BUF_SIZE / 2u] : &s_dma.rx[0];
#if FIX_DCACHE
        dcache_invalidate_by_addr(src, (int32_t)(LINK_RX_BUF_SIZE / 2u));
#endif
        memcpy(half, src, LINK_RX_BUF_SIZE / 2u);
        uint32_t sof = 0u;
        for (uint32_t i = 0; i < LINK_RX_BUF_SIZE / 2u; i++) {
            sof += half[i] == FRAME_SOF;
        }
        s_link.sof_seen += sof;
    }
}

/* USART3: IDLE line (end of a burst) and receive errors. */
void USART3_IRQHandler(void)
{
#if FIX_STACK
    char *line = s_err_line;
#else
    char line[LOG_LINE_MAX];                        /* CM5 field bug: the log line on the ISR stack */
#endif
    uint32_t isr = USART3->ISR;
    uint32_t clear = 0u;
    if (isr & USART_ISR_ORE) {
        s_link.overruns++;
        clear |= USART_ICR_ORECF;
    }
    if (isr & (USART_ISR_FE | USART_ISR_NE | USART_ISR_PE)) {
        s_link.usart_errors++;
        clear |= USART_ICR_FECF | USART_ICR_NECF | USART_ICR_PECF;
    }
    if (clear) {
        USART3->ICR = clear;
        uint32_t total = s_link.overruns + s_link.usart_errors;
        if (total % ERR_LOG_EVERY == 1u) {
            line_t l;
            line_init(&l, line, LOG_LINE_MAX);
            line_str(&l, "LINK err");
            line_kv_hex(&l, "isr", isr);
            line_kv_u32(&l, "ore", s_link.overruns);
            line_kv_u32(&l, "err", s_link.usart_errors);
            line_kv_u32(&l, "at", link_rx_dma_offset(&s_link.rx));
            line_end(&l);
            console_write(line, l.len);
        }
    }
    if (isr & USART_ISR_IDLE) {
        USART3->ICR = USART_ICR_IDLECF;
        link_rx_on_idle(&s_link.rx);
    }
}

void link_get_stats(link_stats_t *o)
{
    o->frames_ok = s_link.dec.frames_ok;
    o->crc_errors = s_link.dec.crc_errors;
    o->resyncs = s_link.dec.resyncs;
    o->len_errors = s_link.dec.len_errors;
    o->idle_resets = s_link.dec.idle_resets;
    o->bytes_discarded = s_link.dec.bytes_discarded;
    o->rx_bytes = s_link.rx_bytes;
    o->rx_idle_events = s_link.rx.idle_events;
    o->rx_ring_overruns = s_link.rx.overruns;
    o->rx_sof_seen = s_link.sof_seen;
    o->overruns = s_link.overruns;
    o->usart_errors = s_link.usart_errors;
    o->dma_errors = s_link.dma_errors;
    o->telemetry_sent = s_link.tx_sent;
    o->telemetry_dropped = s_link.tx_dropped;
    o->dispatch = s_link.dispatch;
}
