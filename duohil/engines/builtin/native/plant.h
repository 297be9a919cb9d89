/* The DC-motor plant's arithmetic (board/plant.py's DcMotorPlant, the one copy).
 *
 * Plain C, no Python: the state, the analytic trajectory, the clamp to the end stops, the drive
 * from a duty and a direction, the end-stop prediction's lower bound, the history ring and the
 * decimated trace. The control flow that reaches the scheduler, the timer, the GPIO port and the
 * event log (advance, the drive change, the sample, the end-stop prediction and hit) is _core.c's
 * Plant binding ([plantc]), which calls these in plant.py's order.
 *
 * Bit-identical to the Python that plant.py's crossing search runs: every expression keeps the
 * documented formulas' evaluation order (IEEE double, no contraction: x86-64 without -mfma has no
 * fused multiply-add), math.exp is libm's exp, and a time in seconds is dh_plant_seconds (Python's
 * `int / int`, correctly rounded). min/max keep their first argument unless a later one is
 * strictly smaller/greater. The end stops are integers of at most 2**53 in magnitude or floats
 * (+-inf: no stop on that side), so they are exact doubles and comparing a position with them is
 * exact; plant.py's MotorParams refuses anything else when it is configured.
 */
#ifndef DUOHIL_PLANT_H
#define DUOHIL_PLANT_H

#include <stddef.h>
#include <stdint.h>

#define DH_PLANT_PS_PER_S 1000000000000LL
#define DH_PLANT_PS_PER_MS 1000000000LL

/* pinned / side / x_lim values */
enum { DH_PLANT_FREE = 0, DH_PLANT_MIN = 1, DH_PLANT_MAX = 2 };

typedef struct {
    double max_speed;            /* counts/s at 100 % duty */
    double tau;                  /* s; <= 0: the speed follows the drive at once */
    double friction;             /* duty that balances the load */
    double lim[3];               /* lim[DH_PLANT_MIN], lim[DH_PLANT_MAX]: the end stops (exact) */
} dh_plant_params;

typedef struct {
    dh_plant_params p;
    int64_t t;                   /* ps of the state */
    double x, v;                 /* counts, counts/s */
    int x_lim;                   /* DH_PLANT_MIN/MAX: plant.py's x is that limit's own object (the
                                    clamp's min/max handed it back), DH_PLANT_FREE: a float */
    int pinned;                  /* DH_PLANT_FREE, or the stop the axis rests against */
    double drive, vt;            /* signed duty and target velocity in effect */
} dh_plant;

/* dt_ps / PS_PER_S as Python computes int / int: the exact quotient rounded once to a double.
 * For |dt_ps| < 2**53 that is (double)dt_ps / 1e12 (both operands exact, one IEEE division). */
double dh_plant_seconds(int64_t dt_ps);

/* _state_after: (x, v) dt_ps after the state under the drive in effect (stops ignored) */
void dh_plant_state_after(const dh_plant *pl, int64_t dt_ps, double *x, double *v);

/* min(max(x, limit_min), limit_max): *x clamped; returns which object Python's x is then
 * (DH_PLANT_FREE: x itself, else that limit) */
int dh_plant_clamp(const dh_plant_params *p, double *x);

/* _read_drive's arithmetic: (sign * duty, sign * max_speed * effective) */
void dh_plant_drive_of(const dh_plant_params *p, double duty, int positive, double *drive, double *vt);

/* _release_if_pulled_away */
void dh_plant_release_if_pulled_away(dh_plant *pl);

/* _hit's side: max when v > 0 or (v == 0 and x >= limit_max), else min */
int dh_plant_hit_side(const dh_plant_params *p, double x, double v);

/* _crossing_lower_bound: 1 and *lb (ps from the state), 0 when there is no useful bound (the
 * search runs at once), -1 when the bound is infinite and -2 when it is beyond int64: no stop can
 * be reached within virtual time (a crawling axis), so nothing is predicted. */
int dh_plant_crossing_lower_bound(const dh_plant *pl, int64_t *lb);

/* math.floor(x) for a finite x within int64 (the plant's x lies between the stops) */
int64_t dh_plant_floor(double x);

/* plant.py's Trace: every sample until cap, then every other one dropped and the stride doubled */
typedef struct {
    int64_t *t;
    double *x;
    size_t n, alloc;
    int64_t cap, stride, offered;
} dh_trace;

void dh_trace_init(dh_trace *tr, int64_t cap);
/* 0, or -1 when memory ran out (nothing changed) */
int dh_trace_append(dh_trace *tr, int64_t t, double x);
void dh_trace_free(dh_trace *tr);

/* deque(maxlen=cap) of Sample(t_ps, position, velocity, drive) */
typedef struct {
    int64_t t;
    double x, v, drive;
    int x_lim;
} dh_sample;

typedef struct {
    dh_sample *v;
    size_t cap, n, head, alloc;  /* the oldest at v[head] (head moves once n == cap) */
} dh_history;

void dh_history_init(dh_history *h, size_t cap);
/* 0, or -1 when memory ran out (nothing changed) */
int dh_history_append(dh_history *h, const dh_sample *s);
/* the i-th oldest sample, i < n */
const dh_sample *dh_history_at(const dh_history *h, size_t i);
void dh_history_free(dh_history *h);

#endif
