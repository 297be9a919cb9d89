/* The STM32H7 USART model (see usart.h; tests/test_native_usart.py specifies it). */
#include "usart.h"

#include <math.h>
#include <string.h>

#define PS_PER_S ((dh_i128)1000000000000LL)

static const int PRESC_DIV[12] = {1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256};
static const int FIFO_THRESHOLD[6] = {2, 4, 8, 12, 14, 16};
#define BRR_MIN 16
#define LPUART_BRR_MIN 0x300

/* CR1 */
#define UE (1u << 0)
#define RE (1u << 2)
#define TE (1u << 3)
#define PCE (1u << 10)
#define M0 (1u << 12)
#define OVER8 (1u << 15)
#define RTOIE (1u << 26)
#define M1 (1u << 28)
#define FIFOEN (1u << 29)
/* CR2 */
#define RTOEN (1u << 23)
/* CR3 */
#define OVRDIS (1u << 12)
/* ISR */
#define ISR_RESET 0xC0u                   /* TC and TXE */
#define ORE (1u << 3)
#define IDLE (1u << 4)
#define RXNE (1u << 5)
#define TC (1u << 6)
#define TXE (1u << 7)
#define RTOF (1u << 11)

/* ICR clear bit -> the ISR flag it clears (RM0433 USART_ICR) */
static const struct { uint8_t icr, isr; } ICR_CLEARS[] = {
    {0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 23}, {6, 6}, {7, 25}, {8, 8}, {9, 9}, {11, 11},
    {12, 12}, {13, 13}, {17, 17}, {20, 20},
};

void dh_usart_init(dh_usart *u, int low_power, int64_t kernel_hz, const dh_usart_host *host,
                   void *hctx)
{
    memset(u, 0, sizeof *u);
    u->low_power = low_power;
    u->kernel_hz = kernel_hz;
    u->reg[DH_ISR] = ISR_RESET;
    u->host = host;
    u->hctx = hctx;
}

/* -- timing ------------------------------------------------------------------------------------ */

static int data_bits(uint32_t c1)
{
    int m = (int)((c1 >> 28 & 1) << 1 | (c1 >> 12 & 1));
    return m == 1 ? 9 : m == 2 ? 7 : 8;
}

static int compute_bit(const dh_usart *u, dh_i128 *bit)
{
    uint32_t brr = u->reg[DH_BRR] & (u->low_power ? 0xFFFFFu : 0xFFFFu);
    if (u->kernel_hz <= 0)
        return 0;
    unsigned p = u->reg[DH_PRESC] & 0xF;
    dh_i128 presc = PRESC_DIV[p > 11 ? 11 : p];
    dh_i128 hz = u->kernel_hz;
    if (u->low_power) {
        if (brr < LPUART_BRR_MIN)
            return 0;
        *bit = (dh_i128)brr * presc * PS_PER_S / (256 * hz);
        return 1;
    }
    if (brr < BRR_MIN)
        return 0;
    if (u->reg[DH_CR1] & OVER8) {
        uint32_t usartdiv = (brr & 0xFFF0) | ((brr & 0x7) << 1);
        *bit = (dh_i128)usartdiv * presc * PS_PER_S / (2 * hz);
        return 1;
    }
    *bit = (dh_i128)brr * presc * PS_PER_S / hz;
    return 1;
}

void dh_usart_timing_of(const dh_usart *u, dh_usart_timing *t)
{
    static const int stop_half[4] = {2, 1, 4, 3};        /* 1, 0.5, 2, 1.5 stop bits */
    t->data_bits = data_bits(u->reg[DH_CR1]);
    t->frame_half = 2 * (1 + t->data_bits) + stop_half[u->reg[DH_CR2] >> 12 & 3];
    t->bit_ps = 0;
    t->char_ps = 0;
    t->bit_valid = compute_bit(u, &t->bit_ps);
    if (t->bit_valid) {
        if (t->frame_half % 2 == 0)                      /* round(int * int): exact */
            t->char_ps = (dh_i128)(t->frame_half / 2) * t->bit_ps;
        else                                             /* round(float * int): half to even */
            t->char_ps = (dh_i128)rint((t->frame_half / 2.0) * (double)t->bit_ps);
    }
}

int dh_usart_rx_bit_valid(const dh_usart *u, dh_i128 *bit_ps)
{
    if ((u->reg[DH_CR1] & (UE | RE)) != (UE | RE))
        return 0;
    return compute_bit(u, bit_ps);
}

/* -- outputs and FIFO flags -------------------------------------------------------------------- */

static int update(dh_usart *u)
{
    /* ISR.IDLE/RXNE/TC/TXE (bits 4-7) sit where their enables CR1.IDLEIE/RXNEIE/TCIE/TXEIE are */
    uint32_t c1 = u->reg[DH_CR1], c3 = u->reg[DH_CR3], s = u->reg[DH_ISR];
    uint32_t eie = c3 & 1;
    int irq = (s & c1 & 0xF0)
              || ((s & 1) && (c1 >> 8 & 1))                        /* PE & PEIE */
              || ((s >> 11 & 1) && (c1 >> 26 & 1))                 /* RTOF & RTOIE */
              || ((s >> 3 & 1) && ((c1 >> 5 & 1) || eie))          /* ORE & (RXNEIE | EIE) */
              || ((s & 0x6) && eie);                               /* FE/NE & EIE */
    if ((c1 & FIFOEN) && !irq)
        irq = ((s >> 23 & 1) && (c1 >> 30 & 1))                    /* TXFE & TXFEIE */
              || ((s >> 24 & 1) && (c1 >> 31 & 1))                 /* RXFF & RXFFIE */
              || ((s >> 27 & 1) && (c3 >> 23 & 1))                 /* TXFT & TXFTIE */
              || ((s >> 26 & 1) && (c3 >> 28 & 1));                /* RXFT & RXFTIE */
    const dh_usart_host *h = u->host;
    if (h->output(u->hctx, DH_USART_OUT_IRQ, irq) < 0)
        return -1;
    if (h->output(u->hctx, DH_USART_OUT_RXREQ, (c3 >> 6 & 1) && (s >> 5 & 1)) < 0)
        return -1;                                                 /* DMAR & RXNE */
    return h->output(u->hctx, DH_USART_OUT_TXREQ,
                     (c3 >> 7 & 1) && (s >> 7 & 1) && (c1 & 9) == 9);  /* DMAT & TXE & UE & TE */
}

static void fifo_flags(dh_usart *u)
{
    uint32_t c3 = u->reg[DH_CR3];
    int free = DH_USART_FIFO - u->ntx, nrx = u->nrx;
    unsigned txcfg = c3 >> 29 & 7, rxcfg = c3 >> 25 & 7;
    uint32_t s = u->reg[DH_ISR] & ~((1u << 7) | (1u << 23) | (1u << 27) | (1u << 5) | (1u << 24)
                                    | (1u << 26));
    if (free)
        s |= 1u << 7;                                              /* TXFNF */
    if (!u->ntx)
        s |= 1u << 23;                                             /* TXFE */
    if (free >= FIFO_THRESHOLD[txcfg > 5 ? 5 : txcfg])
        s |= 1u << 27;                                             /* TXFT */
    if (nrx)
        s |= 1u << 5;                                              /* RXFNE */
    if (nrx >= DH_USART_FIFO)
        s |= 1u << 24;                                             /* RXFF */
    if (nrx >= FIFO_THRESHOLD[rxcfg > 5 ? 5 : rxcfg])
        s |= 1u << 26;                                             /* RXFT */
    u->reg[DH_ISR] = s;
}

/* -- transmit ---------------------------------------------------------------------------------- */

static int tx_try_start(dh_usart *u)
{
    uint32_t c1 = u->reg[DH_CR1];
    int fifo = (c1 & FIFOEN) != 0;
    if (!((fifo ? u->ntx : u->tdr_full) && (c1 & 9) == 9))       /* UE and TE */
        return 0;
    int64_t t;
    int live = u->host->live(u->hctx, DH_USART_EV_TX, &t);
    if (live)
        return live < 0 ? -1 : 0;             /* shift register busy: tx_done starts it */
    dh_usart_timing tm;
    dh_usart_timing_of(u, &tm);
    if (!tm.bit_valid)
        return 0;                             /* no valid baud rate: the character waits */
    unsigned byte = (fifo ? u->txq[0] : u->reg[DH_TDR]) & 0x1FF & ((1u << tm.data_bits) - 1);
    if (c1 & PCE)
        byte &= (1u << (tm.data_bits - 1)) - 1;                    /* the MSB is the parity bit */
    int64_t t0;
    if (u->host->now(u->hctx, &t0) < 0)
        return -1;
    if (t0 < u->shift_free_at)
        t0 = u->shift_free_at;
    if (fifo) {
        memmove(u->txq, u->txq + 1, (size_t)(u->ntx - 1) * sizeof u->txq[0]);
        u->ntx--;
        fifo_flags(u);
    } else {
        u->tdr_full = 0;
        u->reg[DH_ISR] |= TXE;
    }
    dh_i128 end = (dh_i128)t0 + tm.char_ps;
    u->shift_free_at = (int64_t)end;
    u->tx_count++;
    if (u->host->tx(u->hctx, (int)byte, t0, tm.bit_ps, tm.frame_half) < 0)
        return -1;
    return u->host->schedule(u->hctx, DH_USART_EV_TX, end);
}

int dh_usart_tx_done(dh_usart *u)
{
    int64_t t;
    u->host->forget(u->hctx, DH_USART_EV_TX);
    int waiting = u->reg[DH_CR1] & FIFOEN ? u->ntx : u->tdr_full;
    if (waiting && u->reg[DH_CR1] & TE) {
        if (tx_try_start(u) < 0)
            return -1;
        waiting = u->reg[DH_CR1] & FIFOEN ? u->ntx : u->tdr_full;
    }
    if (!waiting) {
        /* Python: `self._tx_event is None`; only tx_try_start above can have set it again */
        int live = u->host->live(u->hctx, DH_USART_EV_TX, &t);
        if (live < 0)
            return -1;
        if (!live)
            u->reg[DH_ISR] |= TC;
    }
    return update(u);
}

static int tdr_written(dh_usart *u)
{
    uint32_t c1 = u->reg[DH_CR1];
    if (!(c1 & UE))
        return 0;
    if (c1 & FIFOEN) {                                 /* into the TX FIFO (lost when full) */
        if (u->ntx < DH_USART_FIFO)
            u->txq[u->ntx++] = u->reg[DH_TDR] & 0x1FF;
        u->reg[DH_ISR] &= ~TC;
        fifo_flags(u);
        if (tx_try_start(u) < 0)
            return -1;
        return update(u);
    }
    u->tdr_full = 1;                   /* a write with TXE=0 overwrites TDR (data lost) */
    u->reg[DH_ISR] &= ~(TXE | TC);
    if (tx_try_start(u) < 0)
        return -1;
    return update(u);
}

/* -- receive ----------------------------------------------------------------------------------- */

int dh_usart_rx_char(dh_usart *u, unsigned byte9, int framing_error)
{
    const dh_usart_host *h = u->host;
    if ((u->reg[DH_CR1] & (UE | RE)) != (UE | RE)) {
        u->rx_dropped++;
        return 0;
    }
    u->rx_count++;
    dh_usart_timing tm;
    dh_usart_timing_of(u, &tm);
    unsigned keep = byte9 & ((1u << tm.data_bits) - 1) & 0x1FF;
    uint32_t *isr = &u->reg[DH_ISR];
    if (u->reg[DH_CR1] & FIFOEN) {
        if (u->nrx >= DH_USART_FIFO) {
            u->rx_overruns++;
            if (!(u->reg[DH_CR3] & OVRDIS))            /* OVRDIS: dropped without ORE */
                *isr |= ORE;
        } else {
            u->rxq[u->nrx] = (uint16_t)keep;
            u->rxfe[u->nrx] = framing_error != 0;
            u->nrx++;
            if (u->nrx == 1)
                u->reg[DH_RDR] = u->rxq[0];
            if (framing_error) {
                *isr |= 0x02;                            /* FE */
                u->rx_framing_errors++;
            }
        }
        fifo_flags(u);
    } else if ((*isr & RXNE) && !(u->reg[DH_CR3] & OVRDIS)) {
        *isr |= ORE;                      /* RDR keeps its data; this character is lost */
        u->rx_overruns++;
    } else {
        u->reg[DH_RDR] = (u->reg[DH_RDR] & ~0x1FFu) | keep;
        *isr |= RXNE;
        if (framing_error) {
            *isr |= 0x02;
            u->rx_framing_errors++;
        }
    }
    /* IDLE: one timer per character, restarted by the next one, so it fires once per burst */
    int64_t now;
    if (h->now(u->hctx, &now) < 0)
        return -1;
    if (h->cancel(u->hctx, DH_USART_EV_IDLE) < 0)
        return -1;
    dh_i128 d = tm.bit_valid && tm.char_ps > 0 ? tm.char_ps : 0;
    if (h->schedule(u->hctx, DH_USART_EV_IDLE, (dh_i128)now + d) < 0)
        return -1;
    if (h->cancel(u->hctx, DH_USART_EV_RTO) < 0)
        return -1;
    if (u->reg[DH_CR2] & RTOEN) {
        dh_i128 r = (dh_i128)(u->reg[DH_RTOR] & 0xFFFFFF) * (tm.bit_valid ? tm.bit_ps : 0);
        if (h->schedule(u->hctx, DH_USART_EV_RTO, (dh_i128)now + (r > 0 ? r : 0)) < 0)
            return -1;
    }
    return update(u);
}

int dh_usart_idle_elapsed(dh_usart *u)
{
    u->host->forget(u->hctx, DH_USART_EV_IDLE);
    if ((u->reg[DH_CR1] & (UE | RE)) == (UE | RE)) {
        u->reg[DH_ISR] |= IDLE;
        return update(u);
    }
    return 0;
}

int dh_usart_rto_elapsed(dh_usart *u)
{
    u->host->forget(u->hctx, DH_USART_EV_RTO);
    uint32_t c1 = u->reg[DH_CR1];
    if ((u->reg[DH_CR2] & RTOEN) && (c1 & UE) && (c1 & RE)) {
        u->reg[DH_ISR] |= RTOF;
        return update(u);
    }
    return 0;
}

/* -- configuration writes ---------------------------------------------------------------------- */

static int cancel_all(dh_usart *u)
{
    for (int k = 0; k < DH_USART_EV_N; k++)
        if (u->host->cancel(u->hctx, k) < 0)
            return -1;
    return 0;
}

static int disable(dh_usart *u)
{
    /* UE cleared: current operations are discarded, every ISR flag returns to reset */
    if (cancel_all(u) < 0)
        return -1;
    u->tdr_full = 0;
    u->ntx = u->nrx = 0;
    u->reg[DH_ISR] = ISR_RESET;
    return 0;
}

static int cr1_written(dh_usart *u, uint32_t old)
{
    const uint32_t locked = M0 | M1 | OVER8 | FIFOEN;      /* frozen while UE=1 */
    uint32_t was_ue = old & UE;
    if (was_ue)
        u->reg[DH_CR1] = (u->reg[DH_CR1] & ~locked) | (old & locked);
    uint32_t c1 = u->reg[DH_CR1];
    if (!(c1 & UE)) {
        if (was_ue && disable(u) < 0)
            return -1;
    } else {
        uint32_t s = u->reg[DH_ISR] & ~((1u << 21) | (1u << 22));
        s |= (c1 >> 3 & 1) << 21 | (c1 >> 2 & 1) << 22;      /* TEACK = TE, REACK = RE */
        u->reg[DH_ISR] = s;
        if (c1 & FIFOEN)
            fifo_flags(u);
        if ((c1 & TE) && tx_try_start(u) < 0)
            return -1;
    }
    return update(u);
}

static int cr2_written(dh_usart *u)
{
    if (!(u->reg[DH_CR2] & RTOEN) && u->host->cancel(u->hctx, DH_USART_EV_RTO) < 0)
        return -1;
    return update(u);
}

static int cr3_written(dh_usart *u, uint32_t old)
{
    uint32_t rising = u->reg[DH_CR3] & ~old;
    if (rising & (1u << 6) && u->host->dma_rising(u->hctx, DH_USART_OUT_RXREQ) < 0)
        return -1;
    if (rising & (1u << 7) && u->host->dma_rising(u->hctx, DH_USART_OUT_TXREQ) < 0)
        return -1;
    if (u->reg[DH_CR1] & FIFOEN)
        fifo_flags(u);                          /* CR3 thresholds may have changed */
    return update(u);
}

static int rqr_written(dh_usart *u, uint32_t data)
{
    if (u->reg[DH_CR1] & FIFOEN) {              /* FIFO mode: flush the FIFOs */
        if (data & (1u << 3))
            u->nrx = 0;
        if (data & (1u << 4))
            u->ntx = 0;
        fifo_flags(u);
        return update(u);
    }
    if (data & (1u << 3))                       /* RXFRQ: drop RDR, clear RXNE */
        u->reg[DH_ISR] &= ~RXNE;
    if (data & (1u << 4) && u->tdr_full) {      /* TXFRQ: drop the character waiting in TDR */
        u->tdr_full = 0;
        u->reg[DH_ISR] |= TXE;
    }
    return update(u);
}

static int icr_written(dh_usart *u, uint32_t data)
{
    uint32_t clear = 0;
    int any = 0;
    for (size_t k = 0; k < sizeof ICR_CLEARS / sizeof ICR_CLEARS[0]; k++)
        if (data >> ICR_CLEARS[k].icr & 1) {
            clear |= 1u << ICR_CLEARS[k].isr;
            any = 1;
        }
    if (!any)
        return 0;
    u->reg[DH_ISR] &= ~clear;
    return update(u);
}

/* -- status reads ------------------------------------------------------------------------------ */

static int isr_read(dh_usart *u)
{
    uint32_t s = u->reg[DH_ISR], c1 = u->reg[DH_CR1];
    if ((c1 & UE) && (((c1 & TE) && (s & 0xC0) != 0xC0) || ((c1 & RE) && !(s & RXNE)))) {
        /* a firmware spinning here cannot see a change before our next event */
        int has = 0;
        int64_t best = 0;
        for (int k = 0; k < DH_USART_EV_N; k++) {
            int64_t t;
            int live = u->host->live(u->hctx, k, &t);
            if (live < 0)
                return -1;
            if (live && (!has || t < best)) {
                best = t;
                has = 1;
            }
        }
        return u->host->poll_hint(u->hctx, has, best);
    }
    return 0;
}

static int rdr_read(dh_usart *u, uint32_t *v)
{
    /* reading RDR (CPU or DMA) empties it (FIFO mode: pops the RX FIFO's head) */
    if (u->reg[DH_CR1] & FIFOEN) {
        if (!u->nrx) {
            *v = u->reg[DH_RDR];
            return 0;
        }
        uint32_t value = u->rxq[0];
        memmove(u->rxq, u->rxq + 1, (size_t)(u->nrx - 1) * sizeof u->rxq[0]);
        memmove(u->rxfe, u->rxfe + 1, (size_t)(u->nrx - 1) * sizeof u->rxfe[0]);
        u->nrx--;
        u->reg[DH_RDR] = u->nrx ? u->rxq[0] : value;
        fifo_flags(u);
        *v = value;
        return update(u);
    }
    if (u->reg[DH_ISR] & RXNE) {
        u->reg[DH_ISR] &= ~RXNE;
        if (update(u) < 0)
            return -1;
    }
    *v = u->reg[DH_RDR];
    return 0;
}

/* -- the register bank (regs.py's bus semantics for this layout) ------------------------------- */

int dh_usart_read(dh_usart *u, uint32_t offset, unsigned size, uint64_t *value)
{
    uint32_t base = offset & ~3u;
    if (base >= 4 * DH_USART_NREG) {           /* a hole: reads 0 */
        *value = 0;
        return 0;
    }
    int r = (int)(base >> 2);
    unsigned shift = offset - base;
    uint32_t v;
    switch (r) {
    case DH_ISR:
        if (isr_read(u) < 0)
            return -1;
        v = u->reg[DH_ISR];
        break;
    case DH_RDR:
        if (rdr_read(u, &v) < 0)
            return -1;
        break;
    case DH_RQR:
    case DH_ICR:
        v = 0;                                 /* write-only triggers read 0 */
        break;
    default:
        v = u->reg[r];
    }
    uint64_t mask = size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
    *value = ((uint64_t)v >> (8 * shift)) & mask;
    return 0;
}

int dh_usart_write(dh_usart *u, uint32_t offset, unsigned size, uint64_t value)
{
    uint32_t base = offset & ~3u;
    if (base >= 4 * DH_USART_NREG)             /* a hole: ignored */
        return 0;
    int r = (int)(base >> 2);
    if (r == DH_ISR || r == DH_RDR)            /* read-only */
        return 0;
    unsigned bits = 8 * (offset - base);
    uint64_t smask = size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
    uint32_t mask = (uint32_t)((smask << bits) & 0xFFFFFFFFu);
    uint32_t data = (uint32_t)((value << bits) & mask);
    uint32_t old = u->reg[r];
    uint32_t now = (old & ~mask) | data;
    u->reg[r] = now;
    /* the hooks see the written bytes and the register's other bytes: the new value */
    switch (r) {
    case DH_CR1:
        return cr1_written(u, old);
    case DH_CR2:
        return cr2_written(u);
    case DH_CR3:
        return cr3_written(u, old);
    case DH_BRR:
    case DH_PRESC:                             /* writable only while UE=0 */
        if (u->reg[DH_CR1] & UE)
            u->reg[r] = old;
        return 0;
    case DH_RQR:
        return rqr_written(u, now);
    case DH_ICR:
        return icr_written(u, now);
    case DH_TDR:
        return tdr_written(u);
    default:
        return 0;                              /* GTPR, RTOR */
    }
}

int dh_usart_reset(dh_usart *u, int64_t kernel_hz)
{
    if (cancel_all(u) < 0)
        return -1;
    memset(u->reg, 0, sizeof u->reg);
    u->reg[DH_ISR] = ISR_RESET;
    u->kernel_hz = kernel_hz;
    u->tdr_full = 0;
    u->ntx = u->nrx = 0;
    u->shift_free_at = 0;
    return update(u);
}
