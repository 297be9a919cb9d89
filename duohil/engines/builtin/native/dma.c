/* STM32H7 DMA streams: register semantics and transfer engine (see dma.h). */
#include "dma.h"

#include <string.h>

static const unsigned GROUP_SHIFT[4] = {0, 6, 16, 22};
/* DMA1/DMA2 cannot reach ITCM and DTCM: an access there is a transfer error */
static const uint32_t UNREACHABLE[2][2] = {{0x00000000u, 0x00010000u}, {0x20000000u, 0x20020000u}};

#define FCR_RESET 0x21u
#define FCR_RO 0x38u           /* FS */
#define CR_EN 1u
#define CR_DIR(c) (((c) >> 6) & 3u)
#define CR_CIRC(c) (((c) >> 8) & 1u)
#define CR_PINC(c) (((c) >> 9) & 1u)
#define CR_MINC(c) (((c) >> 10) & 1u)
#define CR_PSIZE(c) (((c) >> 11) & 3u)
#define CR_DBM(c) (((c) >> 18) & 1u)
#define CR_CT(c) (((c) >> 19) & 1u)

void dh_dma_init(dh_dma *d, const dh_dma_host *host, void *hctx)
{
    memset(d, 0, sizeof *d);
    d->host = host;
    d->hctx = hctx;
    for (int s = 0; s < DH_DMA_STREAMS; s++)
        d->st[s].fcr = FCR_RESET;
}

void dh_dma_reset(dh_dma *d)
{
    d->lisr = d->hisr = d->lifcr = d->hifcr = 0;
    for (int s = 0; s < DH_DMA_STREAMS; s++) {
        dh_dma_stream *st = &d->st[s];
        int64_t latency = st->latency_ps;
        int request = st->request;
        memset(st, 0, sizeof *st);
        st->fcr = FCR_RESET;
        st->latency_ps = latency;   /* a harness knob, not chip state */
        st->request = request;      /* request lines are wires: the source resets them itself */
    }
}

static uint32_t *flag_reg(dh_dma *d, int s)
{
    return s < 4 ? &d->lisr : &d->hisr;
}

int dh_dma_flag(const dh_dma *d, int s, int flag)
{
    uint32_t r = s < 4 ? d->lisr : d->hisr;
    return (r >> (GROUP_SHIFT[s % 4] + (unsigned)flag)) & 1u;
}

static void set_flag(dh_dma *d, int s, int flag)
{
    *flag_reg(d, s) |= 1u << (GROUP_SHIFT[s % 4] + (unsigned)flag);
}

int dh_dma_irq_level(const dh_dma *d, int s)
{
    uint32_t f = (s < 4 ? d->lisr : d->hisr) >> GROUP_SHIFT[s % 4];
    uint32_t c = d->st[s].cr;
    return ((f >> 5 & 1) && (c >> 4 & 1)) || ((f >> 4 & 1) && (c >> 3 & 1))
        || ((f >> 3 & 1) && (c >> 2 & 1)) || ((f >> 2 & 1) && (c >> 1 & 1))
        || ((f & 1) && (d->st[s].fcr >> 7 & 1));
}

static int update_irq(dh_dma *d, int s)
{
    return d->host->irq(d->hctx, s, dh_dma_irq_level(d, s));
}

/* -- reachability ------------------------------------------------------------------------------ */

static int reachable(dh_dma *d, uint32_t address, int64_t size, int *ok)
{
    int64_t end = (int64_t)address + size;
    for (int i = 0; i < 2; i++) {
        if ((int64_t)address < (int64_t)UNREACHABLE[i][1] && (int64_t)UNREACHABLE[i][0] < end) {
            *ok = 0;
            return 0;
        }
    }
    return d->host->mapped(d->hctx, address, size, ok);
}

/* every item of the programmed transfer is reachable: the per-item check can be skipped */
static int span_ok(dh_dma *d, int s, int *ok)
{
    dh_dma_stream *st = &d->st[s];
    uint32_t c = st->cr;
    int64_t size = 1 << (CR_PSIZE(c) < 2 ? CR_PSIZE(c) : 2);
    int64_t n = st->reload;
    *ok = 0;
    if (n == 0)
        return 0;
    uint32_t mar = (CR_DBM(c) && CR_CT(c)) ? st->m1ar : st->m0ar;
    int64_t pspan = CR_PINC(c) ? n * size : size;
    int64_t mspan = CR_MINC(c) ? n * size : size;
    if (CR_DBM(c)) {
        uint32_t other = CR_CT(c) ? st->m0ar : st->m1ar;
        if (reachable(d, other, mspan, ok) < 0)
            return -1;
        if (!*ok)
            return 0;
    }
    if (reachable(d, st->par, pspan, ok) < 0)
        return -1;
    if (!*ok)
        return 0;
    return reachable(d, mar, mspan, ok);
}

/* -- transfer engine ---------------------------------------------------------------------------- */

static int schedule_service(dh_dma *d, int s)
{
    if (d->st[s].service)
        return 0;
    if (d->host->schedule_service(d->hctx, s) < 0)
        return -1;
    d->st[s].service = 1;
    return 0;
}

static int cancel_service(dh_dma *d, int s)
{
    if (!d->st[s].service)
        return 0;
    d->st[s].service = 0;
    return d->host->cancel_service(d->hctx, s);
}

static int start(dh_dma *d, int s)
{
    dh_dma_stream *st = &d->st[s];
    st->reload = st->ndtr & 0xFFFFu;
    st->gen++;
    st->p_off = st->m_off = 0;
    if (span_ok(d, s, &st->span_ok) < 0)
        return -1;
    if (CR_DIR(st->cr) == DH_DMA_M2M || st->request)
        return schedule_service(d, s);
    return 0;
}

static int stop(dh_dma *d, int s, int software)
{
    if (cancel_service(d, s) < 0)
        return -1;
    if (software && (d->st[s].ndtr & 0xFFFFu) != 0)
        set_flag(d, s, DH_DMA_TCIF);
    return 0;
}

int dh_dma_deliver(dh_dma *d, int s, int flag, int end, uint32_t gen, int from_event)
{
    dh_dma_stream *st = &d->st[s];
    if (from_event && st->pending > 0)
        st->pending--;
    set_flag(d, s, flag);
    if (end && gen == st->gen)
        st->cr &= ~CR_EN;
    return update_irq(d, s);
}

/* HTIF/TCIF (and, for end, EN cleared), now or after the stream's latency */
static int complete(dh_dma *d, int s, int flag, int end)
{
    dh_dma_stream *st = &d->st[s];
    if (st->latency_ps == 0 && !st->pending)
        return dh_dma_deliver(d, s, flag, end, st->gen, 0);
    int64_t now;
    if (d->host->now(d->hctx, &now) < 0)
        return -1;
    int64_t t = now + st->latency_ps;
    if (t < st->last_delivery)
        t = st->last_delivery;
    st->last_delivery = t;
    if (d->host->schedule_delivery(d->hctx, s, flag, end, st->gen, t) < 0)
        return -1;
    st->pending++;
    return 0;
}

static int transfer_error(dh_dma *d, int s)
{
    set_flag(d, s, DH_DMA_TEIF);
    d->st[s].cr &= ~CR_EN;
    if (stop(d, s, 0) < 0 || d->host->transfer_error(d->hctx, s) < 0)
        return -1;
    return update_irq(d, s);
}

/* one item; count NDTR; raise HT/TC. 1 moved, 0 after a transfer error, -1 error */
static int move_one(dh_dma *d, int s)
{
    dh_dma_stream *st = &d->st[s];
    uint32_t c = st->cr;
    unsigned size = 1u << (CR_PSIZE(c) < 2 ? CR_PSIZE(c) : 2);   /* direct mode: MSIZE = PSIZE */
    unsigned dir = CR_DIR(c);
    unsigned dbm = CR_DBM(c);
    uint32_t par = (uint32_t)(st->par + st->p_off);
    uint32_t mbase = (dbm && CR_CT(c)) ? st->m1ar : st->m0ar;
    uint32_t mar = (uint32_t)(mbase + st->m_off);
    uint32_t src, dst;
    if (dir == DH_DMA_P2M) {
        src = par;
        dst = mar;
    } else if (dir == DH_DMA_M2P) {
        src = mar;
        dst = par;
    } else {                                  /* M2M (and the reserved 3): PAR is the source */
        src = par;
        dst = mar;
    }
    if (!st->span_ok) {
        int ok;
        if (reachable(d, src, size, &ok) < 0)
            return -1;
        if (ok && reachable(d, dst, size, &ok) < 0)
            return -1;
        if (!ok)
            return transfer_error(d, s) < 0 ? -1 : 0;
    }
    uint8_t buf[4];
    if (d->host->bus_read(d->hctx, src, size, buf) < 0 || d->host->bus_write(d->hctx, dst, size, buf) < 0)
        return -1;
    st->transfers++;
    if (CR_PINC(c))
        st->p_off += size;
    if (CR_MINC(c))
        st->m_off += size;
    uint32_t ndt = (st->ndtr & 0xFFFFu) - 1;
    st->ndtr = (st->ndtr & ~0xFFFFu) | ndt;
    if (ndt == st->reload / 2 && st->reload >= 2 && complete(d, s, DH_DMA_HTIF, 0) < 0)
        return -1;
    if (ndt == 0) {
        if (CR_CIRC(c) || dbm) {
            st->ndtr = (st->ndtr & ~0xFFFFu) | st->reload;
            st->p_off = st->m_off = 0;
            if (dbm) {
                st->cr ^= 1u << 19;
                if (span_ok(d, s, &st->span_ok) < 0)
                    return -1;
            }
            if (complete(d, s, DH_DMA_TCIF, 0) < 0)
                return -1;
        } else if (complete(d, s, DH_DMA_TCIF, 1) < 0) {
            return -1;
        }
    }
    return 1;
}

static int may_move(const dh_dma_stream *st, int m2m)
{
    return (st->cr & CR_EN) && (st->ndtr & 0xFFFFu) && (m2m || st->request);
}

int dh_dma_service(dh_dma *d, int s)
{
    dh_dma_stream *st = &d->st[s];
    if (cancel_service(d, s) < 0)
        return -1;
    int m2m = CR_DIR(st->cr) == DH_DMA_M2M;
    d->servicing = 1;
    for (int i = 0; i < DH_DMA_MAX_ITEMS_PER_SERVICE; i++) {
        if (!may_move(st, m2m)) {
            d->servicing = 0;
            return 0;
        }
        int r = move_one(d, s);
        if (r <= 0) {
            d->servicing = 0;
            return r;
        }
    }
    d->servicing = 0;
    if (may_move(st, m2m))
        return schedule_service(d, s);
    return 0;
}

int dh_dma_set_input(dh_dma *d, int line, int level)
{
    dh_dma_stream *st = &d->st[line];
    st->request = level != 0;
    if (st->request && (st->cr & CR_EN)) {
        if (d->servicing)
            return schedule_service(d, line);   /* a request raised by our own bus access */
        return dh_dma_service(d, line);         /* at once: one event less per byte */
    }
    return 0;
}

/* -- registers ----------------------------------------------------------------------------------- */

/* the register at offset & ~3: its word, or NULL where none is (-> *stream, *kind) */
enum { K_LISR, K_HISR, K_LIFCR, K_HIFCR, K_CR, K_NDTR, K_PAR, K_M0AR, K_M1AR, K_FCR };

static uint32_t *find(dh_dma *d, uint32_t base, int *s, int *kind)
{
    if (base < 0x10) {
        *s = -1;
        *kind = (int)(base / 4);
        uint32_t *w[4] = {&d->lisr, &d->hisr, &d->lifcr, &d->hifcr};
        return w[base / 4];
    }
    if (base >= DH_DMA_REGS_END)
        return NULL;
    *s = (int)((base - 0x10) / 0x18);
    int k = (int)((base - 0x10) % 0x18) / 4;
    dh_dma_stream *st = &d->st[*s];
    uint32_t *w[6] = {&st->cr, &st->ndtr, &st->par, &st->m0ar, &st->m1ar, &st->fcr};
    *kind = K_CR + k;
    return w[k];
}

uint64_t dh_dma_read(const dh_dma *d, uint32_t offset, unsigned size, int *modelled)
{
    int s, kind;
    uint32_t *w = find((dh_dma *)d, offset & ~3u, &s, &kind);
    *modelled = w != NULL;
    if (!w)
        return 0;
    uint64_t v = (kind == K_LIFCR || kind == K_HIFCR) ? 0 : *w;    /* W1T reads 0 */
    unsigned shift = 8 * (offset & 3u);
    uint64_t mask = size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * size)) - 1);
    return (v >> shift) & mask;
}

int dh_dma_write(dh_dma *d, uint32_t offset, unsigned size, uint64_t value, int *modelled)
{
    int s, kind;
    uint32_t *w = find(d, offset & ~3u, &s, &kind);
    *modelled = w != NULL;
    if (!w)
        return 0;
    unsigned bits = 8 * (offset & 3u);
    uint64_t szmask = size >= 4 ? 0xFFFFFFFFu : (((uint64_t)1 << (8 * size)) - 1);
    uint32_t bm = (uint32_t)((szmask << bits) & 0xFFFFFFFFu);
    uint32_t data = (uint32_t)((value << bits) & bm);
    uint32_t old = *w;
    uint32_t wr;
    switch (kind) {
    case K_LISR:
    case K_HISR:
        return 0;                                 /* read-only, no hook */
    case K_FCR:
        wr = ~FCR_RO;
        break;
    default:
        wr = 0xFFFFFFFFu;
    }
    uint32_t rw = wr & bm;
    uint32_t nv = (old & ~rw) | (data & rw);
    *w = nv;
    if (kind == K_LIFCR || kind == K_HIFCR) {     /* the hook sees the written bytes + the rest */
        uint32_t clear = data | (nv & ~bm);
        int lo = kind == K_LIFCR ? 0 : 4;
        *(kind == K_LIFCR ? &d->lisr : &d->hisr) &= ~clear;
        for (int k = lo; k < lo + 4; k++)
            if (update_irq(d, k) < 0)
                return -1;
        return 0;
    }
    dh_dma_stream *st = &d->st[s];
    if (kind == K_CR) {
        if (old & CR_EN) {
            /* every field is frozen while the stream is enabled; only EN moves */
            st->cr = (old & ~CR_EN) | (nv & CR_EN);
            if (!(st->cr & CR_EN) && stop(d, s, 1) < 0)
                return -1;
        } else if (nv & CR_EN) {
            if (start(d, s) < 0)
                return -1;
        }
        return update_irq(d, s);
    }
    /* NDTR, PAR, M0AR, M1AR and FCR: writable only while EN=0; in DBM the idle memory address
     * register may change on the fly */
    if (st->cr & CR_EN) {
        int idle = CR_CT(st->cr) == 0 ? K_M1AR : K_M0AR;
        if (!(CR_DBM(st->cr) && kind == idle))
            *w = old;
    }
    return 0;
}
