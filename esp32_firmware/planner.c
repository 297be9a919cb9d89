/* Trapezoidal motion planner: see planner.h for the profile and its guarantees. */
#include "planner.h"

static uint32_t isqrt64(uint64_t x)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > x) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

static uint32_t div_ceil64(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1u) / b); }

void planner_init(planner_t *pl, const planner_params_t *p)
{
    pl->p = *p;
    uint32_t a = (uint32_t)p->accel, v = (uint32_t)p->vmax;
    uint32_t d = p->stroke < 0 ? (uint32_t)(-(int64_t)p->stroke) : (uint32_t)p->stroke;
    pl->dist = d;
    /* Quantize the cruise limit to whole counts per period first: then the profile's per-period
     * displacement never exceeds dmax and the cap below never builds up a carry. */
    pl->dmax = (uint32_t)((uint64_t)v * p->dt_ms / 1000u);
    if (pl->dmax == 0) {
        pl->dmax = 1;                        /* below one count per period: raised to it */
    }
    v = pl->dmax * (1000u / p->dt_ms);
    uint32_t vp = v;
    if ((uint64_t)v * v > (uint64_t)a * d) {
        vp = isqrt64((uint64_t)a * d);      /* triangle: the move is too short to reach vmax */
        if (vp == 0) {
            vp = 1;
        }
    }
    pl->vpeak = vp;
    pl->ta_ms = div_ceil64((uint64_t)vp * 1000u, a);
    if (pl->ta_ms == 0) {
        pl->ta_ms = 1;
    }
    uint32_t t = pl->ta_ms + div_ceil64((uint64_t)d * 1000u, vp);
    pl->t_move_ms = t > 2u * pl->ta_ms ? t : 2u * pl->ta_ms;
    pl->phase = PLAN_PHASE_MOVE;
    pl->t_ms = 0;
    pl->emitted = 0;
    pl->dir = p->stroke < 0 ? -1 : 1;
    pl->position = p->start;
    pl->velocity = 0;
    pl->moves = 0;
}

uint32_t planner_profile_pos(const planner_t *pl, uint32_t t_ms)
{
    uint64_t ta = pl->ta_ms, T = pl->t_move_ms, t = t_ms;
    if (t >= T) {
        return pl->dist;
    }
    uint64_t n = t * t;
    if (t > ta) {
        n -= (t - ta) * (t - ta);
    }
    if (t > T - ta) {
        n -= (t - (T - ta)) * (t - (T - ta));
    }
    return (uint32_t)(((uint64_t)pl->dist * n) / (2u * ta * (T - ta)));
}

int32_t planner_step(planner_t *pl)
{
    uint32_t dt = pl->p.dt_ms;
    int32_t v = 0;

    if (pl->phase == PLAN_PHASE_MOVE) {
        pl->t_ms += dt;
        uint32_t target = planner_profile_pos(pl, pl->t_ms);
        uint32_t step = target > pl->emitted ? target - pl->emitted : 0u;
        if (step > pl->dmax) {
            step = pl->dmax;             /* carry any excess: never command more than Vq */
        }
        pl->emitted += step;
        v = pl->dir * (int32_t)(step * (1000u / dt));
        pl->position += pl->dir * (int32_t)step;
        if (pl->t_ms >= pl->t_move_ms && pl->emitted == pl->dist) {
            pl->moves++;
            pl->t_ms = 0;
            if (pl->p.dwell_ms != 0u) {
                pl->phase = PLAN_PHASE_DWELL;
            } else {
                pl->emitted = 0;
                pl->dir = -pl->dir;
            }
        }
    } else {
        pl->t_ms += dt;
        if (pl->t_ms >= pl->p.dwell_ms) {
            pl->phase = PLAN_PHASE_MOVE;
            pl->t_ms = 0;
            pl->emitted = 0;
            pl->dir = -pl->dir;
        }
    }
    pl->velocity = v;
    return v;
}
