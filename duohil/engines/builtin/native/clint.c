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
    return floordiv((i128)t_ps * c->frequency, (i128)c->divider * PS_PER_S);
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
    c->harts = harts;
    c->offset = 0;
    c->mtimecmp = calloc(harts > 0 ? (size_t)harts : 1, sizeof(uint64_t));
    if (!c->mtimecmp)
        return -1;
    for (int n = 0; n < harts; n++)
        c->mtimecmp[n] = UINT64_MAX;
    return 0;
}

void dh_clint_free(dh_clint *c)
{
    free(c->mtimecmp);
    c->mtimecmp = NULL;
}

uint64_t dh_clint_mtime(const dh_clint *c, int64_t now)
{
    return (uint64_t)((c->offset + ticks(c, now)) & MASK64);
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
    for (int n = 0; n < c->harts; n++)
        c->mtimecmp[n] = UINT64_MAX;
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
