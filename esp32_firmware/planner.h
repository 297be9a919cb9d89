/*
 * Motion planner: a repeating out-and-back trapezoidal profile, sampled as one velocity setpoint per
 * period. Hardware-free (host unit tests compile it as is).
 *
 * One move of stroke D (counts) with acceleration A (counts/s^2) and cruise limit V (counts/s), one
 * setpoint every dt ms (dt divides 1000):
 *   dmax  = max(floor(V * dt / 1000), 1)     counts per period at most
 *   Vq    = dmax * 1000 / dt                 V rounded down to whole counts per period
 *   vp    = Vq, or isqrt(A*D) when Vq^2 > A*D (the move is too short to reach Vq: triangle)
 *   ta    = ceil(1000 * vp / A) ms                    ramp time (so the ramp never exceeds A)
 *   T     = max(ta + ceil(1000 * D / vp), 2 * ta) ms  move time (so the cruise never exceeds vp)
 *   P(t)  = floor(D * N(t) / (2 * ta * (T - ta))),  N(t) = t^2 - (t-ta)+^2 - (t-T+ta)+^2,  t in ms
 * P is the position of a trapezoid with ramps of ta and peak D*1000/(T-ta) <= vp, and P(T) = D exactly.
 * Each period dt the planner emits the displacement P(t+dt) - (emitted so far), capped at dmax with
 * any excess carried to the next period, as velocity = displacement * 1000/dt (a multiple of 1000/dt).
 * So: |v| <= Vq <= V always; consecutive setpoints differ by at most A*dt/1000 + 2*1000/dt; the
 * displacements of a move sum to D exactly. Because Vq is a whole number of counts per period, the
 * profile never asks for more than dmax and no carry builds up: a move is ceil(T/dt) setpoints. After
 * it the axis dwells (v = 0) for ceil(dwell_ms/dt) setpoints, then moves back by -D, and so on; the
 * whole cycle is 2 * (ceil(T/dt) + ceil(dwell/dt)) setpoints.
 *
 * The planner is stepped once per setpoint actually sent (like a Go loop `for range ticker.C`), so a GC
 * pause stretches the plan in time rather than making it jump. It is open loop: the planned position is
 * what the peer believes; telemetry is compared with it (status position_error) but not fed back.
 */
#ifndef PEER_PLANNER_H
#define PEER_PLANNER_H

#include <stdint.h>

typedef struct {
    int32_t  accel;      /* counts/s^2, > 0 */
    int32_t  vmax;       /* counts/s, > 0 */
    int32_t  stroke;     /* counts, != 0; sign = direction of the first move */
    int32_t  start;      /* counts: position at boot */
    uint32_t dwell_ms;
    uint32_t dt_ms;      /* setpoint period; divides 1000 */
} planner_params_t;

#define PLAN_PHASE_MOVE   0u
#define PLAN_PHASE_DWELL  1u

typedef struct {
    planner_params_t p;
    uint32_t ta_ms;      /* ramp time */
    uint32_t t_move_ms;  /* T */
    uint32_t vpeak;      /* vp (before the exact-stroke adjustment) */
    uint32_t dmax;       /* floor(vmax * dt / 1000): displacement cap per period */
    uint32_t dist;       /* |stroke| */
    uint32_t phase;
    uint32_t t_ms;       /* time within the current phase */
    uint32_t emitted;    /* |displacement| emitted in the current move */
    int32_t  dir;        /* +1 / -1: direction of the current move */
    int32_t  position;   /* planned position after the last step */
    int32_t  velocity;   /* last velocity setpoint */
    uint32_t moves;      /* completed moves */
} planner_t;

void     planner_init(planner_t *pl, const planner_params_t *p);
/* Advance one period and return the velocity setpoint for it (counts/s). */
int32_t  planner_step(planner_t *pl);
/* P(t) for the current move geometry (counts, >= 0), exposed for tests. */
uint32_t planner_profile_pos(const planner_t *pl, uint32_t t_ms);

#endif
