/* RISC-V CLINT timer state: see clint.h. */
#include "clint.h"

#include <stdlib.h>

typedef __int128 i128;

#define PS_PER_S ((i128)1000000000000LL)
#define MASK64 ((i128)UINT64_MAX)
#define FAR_TICKS ((i128)1 << 40)
#define HUGE_TICKS ((i128)1 << 62)

static i128 floordiv(i128 a, i128 b)              /* Python's a // b for b > 0 */
{
    i128 q = a / b;
    if ((a % b) != 0 && a < 0)
        q -= 1;
    return q;
}

static i128 ticks(const dh_clint *c, int64_t t_ps)
{
    /* the same floor in 64 bits when the reduced product fits (always at 16 MHz: f_red 1) */
    if (t_ps >= 0 && t_ps <= c->t_max)
        return (i128)(((uint64_t)t_ps * c->f_red) / c->d_red);
    return floordiv((i128)t_ps * c->frequency, (i128)c->divider * PS_PER_S);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* the first picosecond at which ticks(t) >= tick */
static i128 time_of_tick(const dh_clint *c, i128 tick)
{
    return -floordiv(-tick * c->divider * PS_PER_S, c->frequency);
}

int dh_clint_init(dh_clint *c, int64_t frequency, int64_t divider, int harts)
{
    c->frequency = frequency;
    c->divider = divider;
    {
        i128 d = (i128)divider * PS_PER_S;          /* divider < 2**63 / 1e12 in practice */
        uint64_t g = gcd64((uint64_t)frequency, (uint64_t)(d > (i128)UINT64_MAX ? 1 : d));
        c->f_red = (uint64_t)frequency / g;
        c->d_red = d > (i128)UINT64_MAX ? 0 : (uint64_t)d / g;
        uint64_t tm = c->d_red ? UINT64_MAX / c->f_red : 0;
        c->t_max = !c->d_red ? -1 : tm > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)tm;
    }
    c->harts = harts;
    c->offset = 0;
    c->tk_set = 0;
    size_t nh = harts > 0 ? (size_t)harts : 1;
    c->mtimecmp = calloc(nh, sizeof(uint64_t));
    c->msip_reg = calloc(nh, sizeof(uint32_t));
    c->cmp_reg = calloc(2 * nh, sizeof(uint32_t));
    c->mtime_reg[0] = c->mtime_reg[1] = 0;
    if (!c->mtimecmp || !c->msip_reg || !c->cmp_reg) {
        dh_clint_free(c);
        return -1;
    }
    for (int n = 0; n < harts; n++)
        c->mtimecmp[n] = UINT64_MAX;
    return 0;
}

void dh_clint_free(dh_clint *c)
{
    free(c->mtimecmp);
    free(c->msip_reg);
    free(c->cmp_reg);
    c->mtimecmp = NULL;
    c->msip_reg = c->cmp_reg = NULL;
}

uint64_t dh_clint_mtime(dh_clint *c, int64_t now)
{
    if (!c->tk_set || c->tk_t != now) {
        c->tk_v = ticks(c, now);
        c->tk_t = now;
        c->tk_set = 1;
    }
    return (uint64_t)((c->offset + c->tk_v) & MASK64);
}

void dh_clint_set_mtime(dh_clint *c, uint32_t value, int shift, int64_t now)
{
    uint64_t keep = ~((uint64_t)0xFFFFFFFFu << shift);
    uint64_t v = (dh_clint_mtime(c, now) & keep) | ((uint64_t)value << shift);
    c->offset = (i128)v - ticks(c, now);
}

void dh_clint_set_cmp(dh_clint *c, int n, uint32_t value, int shift)
{
    uint64_t keep = ~((uint64_t)0xFFFFFFFFu << shift);
    c->mtimecmp[n] = (c->mtimecmp[n] & keep) | ((uint64_t)value << shift);
}

void dh_clint_reset(dh_clint *c, int64_t now)
{
    c->offset = -ticks(c, now);
    for (int n = 0; n < c->harts; n++) {
        c->mtimecmp[n] = UINT64_MAX;
        c->msip_reg[n] = c->cmp_reg[2 * n] = c->cmp_reg[2 * n + 1] = 0;
    }
    c->mtime_reg[0] = c->mtime_reg[1] = 0;
}

int dh_clint_update(const dh_clint *c, int n, int64_t now, int level, int has_ev, int64_t ev_time,
                    int64_t *t)
{
    i128 due = (i128)c->mtimecmp[n] - c->offset;
    if (due >= HUGE_TICKS)
        return level ? CL_LOWER : 0;
    i128 now_tick = ticks(c, now);
    if (due <= now_tick)
        return (has_ev ? CL_CANCEL : 0) | CL_RAISE;
    int act = level ? CL_LOWER : 0;
    if (due - now_tick > FAR_TICKS)
        return act;
    i128 when = time_of_tick(c, due);
    if (when > (i128)INT64_MAX)
        return act;              /* never reached by virtual time: as far as FAR_TICKS */
    if (has_ev) {
        if ((i128)ev_time == when)
            return act;
        act |= CL_CANCEL;
    }
    *t = (int64_t)when;
    return act | CL_SCHEDULE;
}

#define MTIMECMP_BASE 0x4000u
#define MTIME_LO 0xBFF8u
#define MTIME_HI 0xBFFCu

int dh_clint_decode(const dh_clint *c, uint32_t offset, int *n, unsigned *shift)
{
    uint32_t w = offset & ~3u;
    *shift = offset & 3u;
    *n = 0;
    if (w == MTIME_LO)
        return CLR_MTIME_LO;
    if (w == MTIME_HI)
        return CLR_MTIME_HI;
    if (w < 4u * (uint32_t)c->harts) {
        *n = (int)(w / 4);
        return CLR_MSIP;
    }
    if (w >= MTIMECMP_BASE && w < MTIMECMP_BASE + 8u * (uint32_t)c->harts) {
        *n = (int)((w - MTIMECMP_BASE) / 8);
        return (w & 4) ? CLR_CMP_HI : CLR_CMP_LO;
    }
    return CLR_NONE;
}

uint32_t dh_clint_reg_read(dh_clint *c, int reg, int n, int64_t now)
{
    switch (reg) {
    case CLR_MSIP:
        return c->msip_reg[n] & 1u;           /* bits 31:1 are hardwired to 0 (SiFive CLINT) */
    case CLR_CMP_LO:
        return (uint32_t)c->mtimecmp[n];
    case CLR_CMP_HI:
        return (uint32_t)(c->mtimecmp[n] >> 32);
    case CLR_MTIME_LO:
        return (uint32_t)dh_clint_mtime(c, now);
    case CLR_MTIME_HI:
        return (uint32_t)(dh_clint_mtime(c, now) >> 32);
    }
    return 0;
}

uint32_t dh_reg_merge(uint32_t old, unsigned shift, unsigned size, uint64_t value)
{
    uint64_t sizemask = size >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * size)) - 1);
    uint32_t mask = (uint32_t)((sizemask << (8 * shift)) & 0xFFFFFFFFu);
    return (old & ~mask) | ((uint32_t)(value << (8 * shift)) & mask);
}

uint64_t dh_reg_extract(uint32_t v, unsigned shift, unsigned size)
{
    uint64_t x = (uint64_t)v >> (8 * shift);
    return size >= 8 ? x : x & (((uint64_t)1 << (8 * size)) - 1);
}
