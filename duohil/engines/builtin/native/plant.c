/* The DC-motor plant's arithmetic: plant.py's documented formulas in their order (see plant.h). */
#include "plant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int clz128(unsigned __int128 q)
{
    uint64_t hi = (uint64_t)(q >> 64), lo = (uint64_t)q;
    return hi ? __builtin_clzll(hi) : 64 + (lo ? __builtin_clzll(lo) : 64);
}

double dh_plant_seconds(int64_t dt_ps)
{
    const int64_t exact = (int64_t)1 << 53;
    if (dt_ps > -exact && dt_ps < exact)
        return (double)dt_ps / 1e12;               /* both exact: one correctly rounded division */
    /* |dt_ps| >= 2**53: q = |dt_ps| * 2**42 / 10**12 has at least 55 bits; keep its top 53 and
     * round half to even on the bits dropped and the remainder, as CPython's long true division */
    int neg = dt_ps < 0;
    unsigned __int128 a = neg ? (unsigned __int128)(-(dt_ps + 1)) + 1 : (unsigned __int128)dt_ps;
    const unsigned __int128 d = (unsigned __int128)DH_PLANT_PS_PER_S;
    unsigned __int128 num = a << 42, q = num / d, r = num % d;
    int drop = (128 - clz128(q)) - 53;
    unsigned __int128 m = q >> drop, rest = q & (((unsigned __int128)1 << drop) - 1);
    unsigned __int128 half = (unsigned __int128)1 << (drop - 1);
    if (rest > half || (rest == half && (r != 0 || (m & 1))))
        m += 1;                                    /* m <= 2**53: exact as a double */
    double res = ldexp((double)(uint64_t)m, drop - 42);
    return neg ? -res : res;
}

void dh_plant_state_after(const dh_plant *pl, int64_t dt_ps, double *x, double *v)
{
    double dt = dh_plant_seconds(dt_ps);
    double vt = pl->vt, tau = pl->p.tau;
    if (tau <= 0) {
        *x = pl->x + vt * dt;
        *v = vt;
        return;
    }
    double e = exp(-dt / tau);
    *x = pl->x + vt * dt + (pl->v - vt) * tau * (1.0 - e);
    *v = vt + (pl->v - vt) * e;
}

int dh_plant_clamp(const dh_plant_params *p, double *x)
{
    int which = DH_PLANT_FREE;
    double r = *x;
    if (p->lim[DH_PLANT_MIN] > r) {                /* max(x, limit_min) */
        r = p->lim[DH_PLANT_MIN];
        which = DH_PLANT_MIN;
    }
    if (p->lim[DH_PLANT_MAX] < r) {                /* min(..., limit_max) */
        r = p->lim[DH_PLANT_MAX];
        which = DH_PLANT_MAX;
    }
    *x = r;
    return which;
}

void dh_plant_drive_of(const dh_plant_params *p, double duty, int positive, double *drive, double *vt)
{
    double sign = positive ? 1.0 : -1.0;
    double d = duty - p->friction;
    double effective = (d > 0.0 ? d : 0.0) / (1.0 - p->friction);     /* max(0.0, d) / (1 - f) */
    *drive = sign * duty;
    *vt = sign * p->max_speed * effective;
}

void dh_plant_release_if_pulled_away(dh_plant *pl)
{
    if ((pl->pinned == DH_PLANT_MAX && pl->vt < 0) || (pl->pinned == DH_PLANT_MIN && pl->vt > 0))
        pl->pinned = DH_PLANT_FREE;
}

int dh_plant_hit_side(const dh_plant_params *p, double x, double v)
{
    return v > 0 || (v == 0 && x >= p->lim[DH_PLANT_MAX]) ? DH_PLANT_MAX : DH_PLANT_MIN;
}

int dh_plant_crossing_lower_bound(const dh_plant *pl, int64_t *lb)
{
    const dh_plant_params *p = &pl->p;
    double av = fabs(pl->v), avt = fabs(pl->vt);
    double speed = avt > av ? avt : av;                          /* max(abs(v), abs(vt)) */
    if (!(0 < speed && speed < INFINITY))
        return 0;
    double up = p->lim[DH_PLANT_MAX] - pl->x, down = pl->x - p->lim[DH_PLANT_MIN];
    double room = down < up ? down : up;                         /* min(max - x, x - min) */
    if (!(0 < room && room < INFINITY))
        return 0;
    double val = (room * 0.999 - 1e-6 * (fabs(pl->x) + 1.0)) / speed * 1e12;
    if (isinf(val))
        return -1;                                               /* int(inf) */
    if (val <= -0x1p63)
        return 0;                                                /* far below PS_PER_MS */
    if (val >= 0x1p63)
        return -2;
    int64_t b = (int64_t)val - DH_PLANT_PS_PER_MS;                /* int(): towards zero */
    if (b <= DH_PLANT_PS_PER_MS)
        return 0;
    *lb = b;
    return 1;
}

int64_t dh_plant_floor(double x)
{
    return (int64_t)floor(x);
}

/* -- the trace ---------------------------------------------------------------------------------- */

void dh_trace_init(dh_trace *tr, int64_t cap)
{
    memset(tr, 0, sizeof *tr);
    tr->cap = cap < 2 ? 2 : cap;
    tr->stride = 1;
}

int dh_trace_append(dh_trace *tr, int64_t t, double x)
{
    int64_t n = tr->offered;
    if (n % tr->stride) {
        tr->offered = n + 1;
        return 0;
    }
    if ((int64_t)tr->n >= tr->cap) {
        size_t k = 0;
        for (size_t i = 0; i < tr->n; i += 2, k++) {              /* t[::2], x[::2] */
            tr->t[k] = tr->t[i];
            tr->x[k] = tr->x[i];
        }
        tr->n = k;
        tr->stride *= 2;
        if (n % tr->stride) {
            tr->offered = n + 1;
            return 0;
        }
    }
    if (tr->n == tr->alloc) {
        size_t na = tr->alloc ? tr->alloc * 2 : 256;
        int64_t *nt = realloc(tr->t, na * sizeof *nt);
        if (!nt)
            return -1;
        tr->t = nt;
        double *nx = realloc(tr->x, na * sizeof *nx);
        if (!nx)
            return -1;
        tr->x = nx;
        tr->alloc = na;
    }
    tr->t[tr->n] = t;
    tr->x[tr->n] = x;
    tr->n++;
    tr->offered = n + 1;
    return 0;
}

void dh_trace_free(dh_trace *tr)
{
    free(tr->t);
    free(tr->x);
    tr->t = NULL;
    tr->x = NULL;
    tr->n = tr->alloc = 0;
}

/* -- the history ring ------------------------------------------------------------------------------ */

void dh_history_init(dh_history *h, size_t cap)
{
    memset(h, 0, sizeof *h);
    h->cap = cap ? cap : 1;
}

int dh_history_append(dh_history *h, const dh_sample *s)
{
    if (h->n < h->cap) {                             /* filling: v[0..n), grown on demand */
        if (h->n == h->alloc) {
            size_t na = h->alloc ? h->alloc * 2 : 64;
            if (na > h->cap)
                na = h->cap;
            dh_sample *nv = realloc(h->v, na * sizeof *nv);
            if (!nv)
                return -1;
            h->v = nv;
            h->alloc = na;
        }
        h->v[h->n++] = *s;
        return 0;
    }
    h->v[h->head] = *s;                              /* full (alloc == cap): the oldest goes */
    h->head = (h->head + 1) % h->cap;
    return 0;
}

const dh_sample *dh_history_at(const dh_history *h, size_t i)
{
    return &h->v[(h->head + i) % h->cap];
}

void dh_history_free(dh_history *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->alloc = h->head = 0;
}
