/* The Cortex-M7 SysTick: see systick.h (specified by tests/test_native_systick.py). */
#include "systick.h"

#include <string.h>

/* Python's // and % on integers (floor), for the operands that can be negative */
static dh_i128 st_fdiv(dh_i128 a, dh_i128 b)
{
    dh_i128 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static dh_i128 st_fmod(dh_i128 a, dh_i128 b)
{
    dh_i128 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

void dh_systick_init(dh_systick *s, dh_nvic *nvic, int64_t fixed_hz, const dh_systick_host *host,
                     void *hctx)
{
    memset(s, 0, sizeof(*s));
    s->nvic = nvic;
    s->fixed_hz = fixed_hz;
    s->host = host;
    s->hctx = hctx;
    s->reg[DH_ST_CSR] = 4;                        /* CLKSOURCE resets to 1 */
    s->reg[DH_ST_CALIB_REG] = DH_ST_CALIB;
}

int dh_systick_reset(dh_systick *s)
{
    s->reg[DH_ST_CSR] = 4;
    s->reg[DH_ST_RVR] = 0;
    s->reg[DH_ST_CVR] = 0;
    s->reg[DH_ST_CALIB_REG] = DH_ST_CALIB;
    s->running = 0;
    s->zero = 0;
    s->val = 0;
    s->countflag = 0;
    int rc = s->host->cancel(s->hctx);
    s->nvic->st_waiting = 0;
    return rc;
}

/* _st_source_hz(clksource): the core clock, else systickFrequency, else the CPU's hz; /8 at 0 */
static int st_source_hz(dh_systick *s, uint32_t clksource, int64_t *out, int *has_cpu)
{
    int64_t f = s->core_hz ? s->core_hz : s->fixed_hz, cpu_hz = 0;
    if (s->host->cpu_hz(s->hctx, !f, has_cpu, &cpu_hz) < 0)
        return -1;
    if (!f)
        f = cpu_hz;
    *out = clksource ? f : st_fdiv(f, 8);
    return 0;
}

int dh_systick_hz(dh_systick *s, int64_t *hz)
{
    uint32_t clk = s->reg[DH_ST_CSR] & 4;
    if (s->hz_cached && s->hz_csr == clk) {
        *hz = s->hz_cache;
        return 0;
    }
    int has_cpu;
    if (st_source_hz(s, clk, hz, &has_cpu) < 0)
        return -1;
    if (has_cpu || s->fixed_hz) {
        s->hz_cached = 1;
        s->hz_cache = *hz;
        s->hz_csr = clk;
    }
    return 0;
}

static int st_ticks(dh_systick *s, int64_t t, dh_i128 *k)
{
    int64_t hz;
    if (dh_systick_hz(s, &hz) < 0)
        return -1;
    *k = st_fdiv((dh_i128)t * hz, DH_ST_PS_PER_S);
    return 0;
}

/* _st_time(tick): the first time at which the tick count reaches `tick` (ceiling) */
static int st_time_at(dh_systick *s, int64_t hz, dh_i128 tick, dh_i128 *t)
{
    if (hz == 0)
        return s->host->zero_hz(s->hctx);
    *t = -st_fdiv(-tick * DH_ST_PS_PER_S, hz);
    return 0;
}

static int st_time(dh_systick *s, dh_i128 tick, dh_i128 *t)
{
    int64_t hz;
    if (dh_systick_hz(s, &hz) < 0)
        return -1;
    return st_time_at(s, hz, tick, t);
}

static dh_i128 st_period(const dh_systick *s)
{
    return (dh_i128)(s->reg[DH_ST_RVR] & 0xFFFFFF) + 1;
}

/* _st_update(k): the wraps up to tick k (COUNTFLAG, the next zero) */
static void st_update(dh_systick *s, dh_i128 k)
{
    if (s->running && k >= s->zero) {
        dh_i128 p = st_period(s);
        if (p <= 1) {
            s->running = 0;
            s->val = 0;
            return;
        }
        s->zero += (st_fdiv(k - s->zero, p) + 1) * p;
        s->countflag = 1;
    }
}

static dh_i128 st_value(const dh_systick *s, dh_i128 k)
{
    if (!s->running)
        return s->val;
    return st_fmod(s->zero - k, st_period(s));
}

/* _st_schedule: the next wrap's event while running with TICKINT */
static int st_schedule(dh_systick *s)
{
    s->nvic->st_waiting = 0;
    if (s->host->cancel(s->hctx) < 0)
        return -1;
    if (s->running && s->reg[DH_ST_CSR] & 2) {
        dh_i128 t = 0;
        if (st_time(s, s->zero, &t) < 0)
            return -1;
        return s->host->schedule(s->hctx, t);
    }
    return 0;
}

static int st_now_ticks(dh_systick *s, dh_i128 *k)
{
    int64_t now;
    if (s->host->now(s->hctx, &now) < 0)
        return -1;
    return st_ticks(s, now, k);
}

int dh_systick_resume(dh_systick *s)
{
    s->nvic->st_waiting = 0;
    if (!s->running)
        return 0;
    dh_i128 k;
    if (st_now_ticks(s, &k) < 0)
        return -1;
    st_update(s, k);
    return st_schedule(s);
}

int dh_systick_wrap(dh_systick *s)
{
    s->host->forget(s->hctx);
    if (!s->running)
        return 0;
    int was_pending = dh_nvic_test(s->nvic->pending, DH_NVIC_SYSTICK);
    int64_t hz, now;
    if (dh_systick_hz(s, &hz) < 0 || s->host->now(s->hctx, &now) < 0)
        return -1;
    dh_i128 k = st_fdiv((dh_i128)now * hz, DH_ST_PS_PER_S);
    dh_i128 zero = s->zero;
    int due = k >= zero;
    if (due) {
        dh_i128 p = st_period(s);
        if (p <= 1) {
            s->running = 0;
            s->val = 0;
        } else {
            s->zero = zero = zero + (st_fdiv(k - zero, p) + 1) * p;
            s->countflag = 1;
        }
    }
    uint32_t tickint = s->reg[DH_ST_CSR] & 2;
    if (due && tickint) {
        if (was_pending) {
            /* coalesce: nothing until the pending bit is taken or cleared (resume) */
            s->nvic->st_waiting = 1;
            return 0;
        }
        if (dh_nvic_set_pending(s->nvic, DH_NVIC_SYSTICK) && s->host->kick(s->hctx) < 0)
            return -1;
    }
    if (s->running && tickint) {
        dh_i128 t = 0;
        if (st_time_at(s, hz, zero, &t) < 0)
            return -1;
        return s->host->schedule(s->hctx, t);
    }
    return 0;
}

int dh_systick_set_core_clock(dh_systick *s, int64_t hz)
{
    if (hz <= 0 || hz == s->core_hz)
        return 0;
    int64_t now;
    dh_i128 k;
    if (s->host->now(s->hctx, &now) < 0 || st_ticks(s, now, &k) < 0)
        return -1;
    st_update(s, k);
    dh_i128 val = st_value(s, k);
    s->core_hz = hz;
    s->hz_cached = 0;
    if (s->running) {
        if (st_ticks(s, now, &k) < 0)
            return -1;
        s->zero = k + (val ? val : st_period(s));
        return st_schedule(s);
    }
    return 0;
}

/* _csr_write: the register already holds the new word, `old` the previous one */
static int st_csr_write(dh_systick *s, uint32_t old)
{
    uint32_t csr = s->reg[DH_ST_CSR];
    int64_t now;
    dh_i128 k;
    if (s->host->now(s->hctx, &now) < 0)
        return -1;
    if ((old ^ csr) & 4 && s->running) {
        /* CLKSOURCE changed under a running counter: wraps and value at the old rate, then
         * count on from that value at the new one */
        int64_t old_hz;
        int has_cpu;
        if (st_source_hz(s, old & 4, &old_hz, &has_cpu) < 0)
            return -1;
        k = st_fdiv((dh_i128)now * old_hz, DH_ST_PS_PER_S);
        st_update(s, k);
        dh_i128 val = st_value(s, k);
        s->hz_cached = 0;
        if (st_ticks(s, now, &k) < 0)
            return -1;
        s->zero = k + (val ? val : st_period(s));
    } else {
        if (st_ticks(s, now, &k) < 0)
            return -1;
        st_update(s, k);
    }
    int was = old & 1, on = csr & 1;
    if (was && !on) {
        s->val = st_value(s, k);
        s->running = 0;
    } else if (on && !was) {
        dh_i128 p = st_period(s);
        s->running = p > 1;
        s->zero = k + (s->val ? s->val : p);
    }
    return st_schedule(s);
}

static int st_csr_read(dh_systick *s, uint32_t *v)
{
    dh_i128 k;
    if (st_now_ticks(s, &k) < 0)
        return -1;
    st_update(s, k);
    *v = s->reg[DH_ST_CSR] & 7;
    if (s->countflag) {
        *v |= 1u << 16;
        s->countflag = 0;
    } else if (s->running) {
        dh_i128 t = 0;
        if (st_time(s, s->zero, &t) < 0 || s->host->poll_hint(s->hctx, t) < 0)
            return -1;
    }
    return 0;
}

static int st_rvr_write(dh_systick *s)
{
    s->reg[DH_ST_RVR] &= 0xFFFFFF;
    if (s->reg[DH_ST_CSR] & 1 && !s->running && s->reg[DH_ST_RVR]) {
        dh_i128 k;
        s->running = 1;
        if (st_now_ticks(s, &k) < 0)
            return -1;
        s->zero = k + s->reg[DH_ST_RVR] + 1;
        return st_schedule(s);
    }
    return 0;
}

static int st_cvr_write(dh_systick *s)
{
    dh_i128 k;
    s->reg[DH_ST_CVR] = 0;
    if (st_now_ticks(s, &k) < 0)
        return -1;
    st_update(s, k);
    s->countflag = 0;
    s->val = 0;
    if (s->running) {
        s->zero = k + st_period(s);
        return st_schedule(s);
    }
    return 0;
}

int dh_systick_read_reg(dh_systick *s, int idx, uint32_t *value)
{
    switch (idx) {
    case DH_ST_CSR:
        return st_csr_read(s, value);
    case DH_ST_CVR: {
        dh_i128 k;
        if (st_now_ticks(s, &k) < 0)
            return -1;
        st_update(s, k);
        *value = (uint32_t)st_value(s, k);
        return 0;
    }
    default:
        *value = s->reg[idx];
        return 0;
    }
}

int dh_systick_write_reg(dh_systick *s, int idx, uint32_t data, uint32_t byte_mask)
{
    /* regs.py's bus_write: COUNTFLAG and the whole of CALIB are read-only */
    static const uint32_t writable[DH_ST_NREG] = {~(1u << 16), 0xFFFFFFFFu, 0xFFFFFFFFu, 0};
    uint32_t old = s->reg[idx], rw = writable[idx] & byte_mask;
    s->reg[idx] = (old & ~rw) | (data & rw);
    switch (idx) {
    case DH_ST_CSR:
        return st_csr_write(s, old);
    case DH_ST_RVR:
        return st_rvr_write(s);
    case DH_ST_CVR:
        return st_cvr_write(s);
    default:
        return 0;
    }
}

int dh_systick_read(dh_systick *s, uint32_t offset, unsigned size, uint64_t *value)
{
    uint32_t v;
    if (dh_systick_read_reg(s, (int)(offset >> 2) & 3, &v) < 0)
        return -1;
    uint64_t x = (uint64_t)v >> (8 * (offset & 3));
    *value = size >= 8 ? x : x & ((1ull << (8 * size)) - 1);
    return 0;
}

int dh_systick_write(dh_systick *s, uint32_t offset, unsigned size, uint64_t value)
{
    unsigned bits = 8 * (offset & 3);
    uint64_t lanes = size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    uint32_t mask = (uint32_t)((lanes << bits) & 0xFFFFFFFFu);
    return dh_systick_write_reg(s, (int)(offset >> 2) & 3, (uint32_t)((value << bits) & mask), mask);
}
