/* The STM32H7 timer model (see stm32_timer.h), the one copy. Functions keep the names of the
 * deleted Python reference's methods (stm32_timer.py before #13's one-copy step); where a
 * register or a field may have changed during a call that runs other code (the IRQ line, the
 * listeners, the encoder source), it is read again. Specified by tests/test_native_timer.py. */
#include "stm32_timer.h"

#include <string.h>

typedef dh_tim_i128 i128;

#define PS_PER_S ((i128)1000000000000LL)

/* CR1 */
#define CR1_CEN (1u << 0)
#define CR1_UDIS (1u << 1)
#define CR1_URS (1u << 2)
#define CR1_OPM (1u << 3)
#define CR1_DIR (1u << 4)
#define CR1_CMS (3u << 5)
#define CR1_ARPE (1u << 7)
#define CR1_UIFREMAP (1u << 11)
#define SR_UIF 1u
#define DIER_UIE_UDE (1u | 1u << 8)

/* OCxM values (4-bit, bit 3 is CCMRx bit 16/24) */
#define OCM_TOGGLE 3
#define OCM_FORCE_ACTIVE 5
#define OCM_PWM1 6
#define OCM_PWM2 7

/* Python's // and % (the divisor is positive wherever the model divides) */
static i128 fdiv(i128 a, i128 b)
{
    i128 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static i128 fmod_(i128 a, i128 b)
{
    i128 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

void dh_tim_init(dh_tim *t, int64_t initial_limit, int64_t repl_hz, int advanced, int64_t now,
                 const dh_tim_host *host, void *hctx)
{
    memset(t, 0, sizeof *t);
    t->width_mask = initial_limit > 0xFFFF ? 0xFFFFFFFFu : 0xFFFFu;
    t->arr_reset = (uint32_t)((uint64_t)initial_limit & t->width_mask);
    t->advanced = advanced;
    t->repl_hz = repl_hz;
    t->reg[DH_TIM_ARR] = t->arr_reset;
    /* _init_state */
    t->hz = repl_hz;
    t->epoch_ps = now;
    t->arr_active = t->arr_reset;
    t->host = host;
    t->hctx = hctx;
}

/* -- public views (STM32_Timer's properties) -------------------------------------------------- */

int dh_tim_encoder_mode(const dh_tim *t)
{
    uint32_t v = t->reg[DH_TIM_SMCR];
    uint32_t sms = (v & 7) | (v >> 16 & 1) << 3;
    return sms >= 1 && sms <= 3;
}

int dh_tim_output_enabled(const dh_tim *t, int ch)
{
    if (!(t->reg[DH_TIM_CR1] & 1) || !(t->reg[DH_TIM_CCER] >> (4 * (ch - 1)) & 1))
        return 0;
    return t->advanced ? (int)(t->reg[DH_TIM_BDTR] >> 15 & 1) : 1;
}

double dh_tim_channel_duty(const dh_tim *t, int ch)
{
    if (!dh_tim_output_enabled(t, ch))
        return 0.0;
    uint32_t ccmr = t->reg[ch <= 2 ? DH_TIM_CCMR1 : DH_TIM_CCMR2];
    int sh = ch & 1 ? 0 : 8;
    int mode = (int)((ccmr >> (4 + sh) & 7) | (ccmr >> (16 + sh) & 1) << 3);
    uint64_t period = (uint64_t)t->arr_active + 1;
    uint64_t ccr = t->ccr_active[ch - 1];
    /* both below 2**53: the division of the doubles is Python's int / int, correctly rounded */
    double raw = (double)(ccr < period ? ccr : period) / (double)period;
    double duty;
    if (mode == OCM_PWM1)
        duty = raw;
    else if (mode == OCM_PWM2)
        duty = 1.0 - raw;
    else if (mode == OCM_FORCE_ACTIVE)
        duty = 1.0;
    else if (mode == OCM_TOGGLE)
        duty = 0.5;
    else
        duty = 0.0;                                   /* force inactive, frozen, others */
    return t->reg[DH_TIM_CCER] >> (4 * (ch - 1) + 1) & 1 ? 1.0 - duty : duty;
}

dh_tim_i128 dh_tim_update_period_ps(const dh_tim *t)
{
    return fdiv(((i128)t->psc_active + 1) * ((i128)t->arr_active + 1) * PS_PER_S, t->hz);
}

/* -- time --------------------------------------------------------------------------------------- */

static i128 cycle_at(const dh_tim *t, int64_t ps)
{
    return fdiv(((i128)ps - t->epoch_ps) * t->hz, PS_PER_S);
}

static i128 cycle_ceil(const dh_tim *t, int64_t ps)
{
    return -fdiv(((i128)t->epoch_ps - ps) * t->hz, PS_PER_S);
}

static i128 time_of_cycle(const dh_tim *t, i128 c)
{
    return (i128)t->epoch_ps - fdiv(-c * PS_PER_S, t->hz);
}

static int ticks(dh_tim *t, i128 *out)
{
    int64_t now;
    if (t->host->now(t->hctx, &now) < 0)
        return -1;
    /* 0 before the anchor: a start off the kernel-cycle grid anchors at the next cycle, and
     * until then CNT holds its value */
    i128 k = fdiv(cycle_at(t, now) - t->anchor, (i128)t->psc_active + 1);
    *out = k > 0 ? k : 0;
    return 0;
}

static int catch_up(dh_tim *t);

/* _current_cnt */
static int current_cnt(dh_tim *t, i128 *out)
{
    if (!t->running) {
        *out = t->cnt;
        return 0;
    }
    if (t->lazy && catch_up(t) < 0)                 /* the skipped updates wrapped the counter */
        return -1;
    /* a read at the very picosecond of an update, before its event has fired, sees the last
     * value of the period */
    i128 k;
    if (ticks(t, &k) < 0)
        return -1;
    if (t->reg[DH_TIM_CR1] & CR1_DIR) {
        i128 v = t->cnt - k;
        *out = v > 0 ? v : 0;
        return 0;
    }
    i128 top = t->cnt <= t->arr_active ? (i128)t->arr_active : (i128)t->width_mask;
    i128 v = t->cnt + k;
    *out = v < top ? v : top;
    return 0;
}

/* _reanchor: move the anchor to the last counter tick (keeps the prescaler phase) */
static int reanchor(dh_tim *t)
{
    i128 k, c;
    /* current_cnt first: in lazy mode it catches up the anchor */
    if (current_cnt(t, &c) < 0 || ticks(t, &k) < 0)
        return -1;
    t->cnt = c;
    t->anchor += k * ((i128)t->psc_active + 1);
    return 0;
}

static i128 ticks_to_update(const dh_tim *t)
{
    if (t->reg[DH_TIM_CR1] & CR1_DIR)
        return t->cnt + 1;
    if (t->cnt <= t->arr_active)
        return (i128)t->arr_active - t->cnt + 1;
    return (i128)t->width_mask - t->cnt + 1;          /* above ARR: runs to the top and wraps */
}

/* _lazy_ok: no update interrupt or DMA request, nothing waiting in a preload register, plain
 * up-counting below ARR */
static int lazy_ok(const dh_tim *t)
{
    if (dh_tim_encoder_mode(t) || t->reg[DH_TIM_DIER] & DIER_UIE_UDE)
        return 0;
    uint32_t cr1 = t->reg[DH_TIM_CR1];
    if (cr1 & (CR1_DIR | CR1_OPM | CR1_UDIS) || cr1 & CR1_CMS)
        return 0;
    uint32_t wm = t->width_mask;
    if ((t->reg[DH_TIM_ARR] & wm) != t->arr_active || (t->reg[DH_TIM_PSC] & 0xFFFF) != t->psc_active)
        return 0;
    if (t->cnt > t->arr_active)
        return 0;
    for (int n = 0; n < 4; n++)
        if ((t->reg[DH_TIM_CCR1 + n] & wm) != t->ccr_active[n])
            return 0;
    return 1;
}

/* _catch_up: apply the update events skipped in lazy mode, up to now */
static int catch_up(dh_tim *t)
{
    if (!(t->lazy && t->running))
        return 0;
    int64_t ps;
    if (t->host->now(t->hctx, &ps) < 0)
        return -1;
    i128 now = cycle_at(t, ps);
    i128 step = (i128)t->psc_active + 1;
    i128 first = t->anchor + step * ticks_to_update(t);
    if (now < first)
        return 0;
    i128 period = step * ((i128)t->arr_active + 1);
    i128 k = 1 + fdiv(now - first, period);
    t->anchor = first + (k - 1) * period;
    t->cnt = 0;
    t->updates += (int64_t)k;
    t->reg[DH_TIM_SR] |= SR_UIF;                    /* UIE is off in lazy mode: no interrupt */
    return 0;
}

static int drop_event(dh_tim *t)
{
    if (!t->ev_held)
        return 0;
    t->ev_held = 0;
    return t->host->cancel(t->hctx);
}

/* _schedule_update */
static int schedule_update(dh_tim *t)
{
    if (drop_event(t) < 0)
        return -1;
    if (lazy_ok(t)) {
        t->lazy = 1;
        return 0;
    }
    t->lazy = 0;
    i128 cycle = t->anchor + ((i128)t->psc_active + 1) * ticks_to_update(t);
    if (t->host->schedule(t->hctx, time_of_cycle(t, cycle), cycle) < 0)
        return -1;
    t->ev_held = 1;
    return 0;
}

/* _start */
static int start(dh_tim *t)
{
    int64_t now;
    if (t->host->now(t->hctx, &now) < 0)
        return -1;
    t->anchor = cycle_ceil(t, now);
    t->running = 1;
    return schedule_update(t);
}

/* _stop */
static int stop(dh_tim *t)
{
    if (t->running) {
        i128 c;
        if (current_cnt(t, &c) < 0)
            return -1;
        t->cnt = c;
    }
    t->running = 0;
    return drop_event(t);
}

/* -- the update event ----------------------------------------------------------------------------- */

static int update_irq(dh_tim *t)
{
    return t->host->irq(t->hctx, (t->reg[DH_TIM_SR] & t->reg[DH_TIM_DIER] & SR_UIF) != 0);
}

static int notify(dh_tim *t)
{
    return t->host->notify(t->hctx);
}

/* _transfer_preloads: 1 when ARR or a CCR changed */
static int transfer_preloads(dh_tim *t)
{
    uint32_t wm = t->width_mask;
    uint32_t arr = t->reg[DH_TIM_ARR] & wm, ccr[4];
    for (int n = 0; n < 4; n++)
        ccr[n] = t->reg[DH_TIM_CCR1 + n] & wm;
    t->psc_active = t->reg[DH_TIM_PSC] & 0xFFFF;
    if (arr == t->arr_active && memcmp(ccr, t->ccr_active, sizeof ccr) == 0)
        return 0;
    t->arr_active = arr;
    memcpy(t->ccr_active, ccr, sizeof ccr);
    return 1;
}

/* _update_event: UEV: preload transfer and UIF (unless UDIS; UIF also not for UG when URS=1) */
static int update_event(dh_tim *t, int software)
{
    uint32_t cr1 = t->reg[DH_TIM_CR1];
    if (cr1 & CR1_UDIS)
        return 0;
    t->updates += 1;
    int changed = transfer_preloads(t);
    if (!(software && cr1 & CR1_URS)) {
        t->reg[DH_TIM_SR] |= SR_UIF;
        if (update_irq(t) < 0)
            return -1;
    }
    return changed ? notify(t) : 0;
}

/* _on_update */
int dh_tim_on_update(dh_tim *t, dh_tim_i128 cycle)
{
    if (t->ev_held) {
        t->ev_held = 0;
        t->host->forget(t->hctx);
    }
    t->anchor = cycle;
    uint32_t down = t->reg[DH_TIM_CR1] & CR1_DIR;
    t->cnt = down ? t->arr_active : 0;
    if (update_event(t, 0) < 0)
        return -1;
    if (t->reg[DH_TIM_CR1] & CR1_OPM) {
        t->reg[DH_TIM_CR1] &= ~CR1_CEN;
        t->running = 0;
        return notify(t);
    }
    if (down)
        t->cnt = t->arr_active;                     /* reload with the (possibly new) ARR */
    return schedule_update(t);
}

/* -- encoder ---------------------------------------------------------------------------------------- */

/* set_encoder_count: the axis is at `position` quadrature edges; count the change since the last
 * call */
int dh_tim_set_encoder_count(dh_tim *t, dh_tim_i128 position)
{
    int had = t->enc_valid;
    i128 last = t->enc_pos;
    t->enc_valid = 1;
    t->enc_pos = position;
    if (!had || !(dh_tim_encoder_mode(t) && t->reg[DH_TIM_CR1] & 1))
        return 0;
    uint32_t sms = t->reg[DH_TIM_SMCR] & 7;
    i128 delta = sms == 3 ? position - last : fdiv(position, 2) - fdiv(last, 2);
    uint32_t ccer = t->reg[DH_TIM_CCER];
    if ((ccer >> 1 & 1) != (ccer >> 5 & 1))          /* CC1P != CC2P */
        delta = -delta;
    if (delta == 0)
        return 0;
    t->reg[DH_TIM_CR1] = (t->reg[DH_TIM_CR1] & ~CR1_DIR) | (delta < 0 ? CR1_DIR : 0);
    i128 modulus = (i128)t->arr_active + 1;
    i128 total = t->cnt + delta;
    i128 wraps = fdiv(total, modulus);
    t->cnt = fmod_(total, modulus);
    if (wraps)
        return update_event(t, 0);
    return 0;
}

/* _encoder_sync */
static int encoder_sync(dh_tim *t, int counting)
{
    i128 pos;
    int r = t->host->encoder_source(t->hctx, &pos);
    if (r <= 0)
        return r;
    if (counting)
        return dh_tim_set_encoder_count(t, pos);
    t->enc_valid = 1;
    t->enc_pos = pos;
    return 0;
}

/* counter() */
int dh_tim_counter(dh_tim *t, dh_tim_i128 *out)
{
    if (dh_tim_encoder_mode(t)) {
        if (encoder_sync(t, 1) < 0)
            return -1;
        *out = t->cnt;
        return 0;
    }
    return current_cnt(t, out);
}

/* -- timer_hz ------------------------------------------------------------------------------------- */

int dh_tim_set_hz(dh_tim *t, int64_t hz)
{
    if (hz <= 0 || hz == t->hz)
        return 0;
    int64_t now;
    if (t->running) {
        /* the counter keeps its value and the prescaler counter its count: p cycles of the
         * current prescaler period are done (negative before the anchor of a start), the next
         * count comes PSC+1-p cycles of the new clock after now, whose cycle 0 is now */
        if (reanchor(t) < 0 || t->host->now(t->hctx, &now) < 0)
            return -1;
        i128 p = cycle_at(t, now) - t->anchor;
        t->hz = hz;
        t->epoch_ps = now;
        t->anchor = -p;
        return schedule_update(t);
    }
    if (t->host->now(t->hctx, &now) < 0)
        return -1;
    t->hz = hz;
    t->epoch_ps = now;
    return 0;
}

/* -- register callbacks --------------------------------------------------------------------------- */

static int cr1_written(dh_tim *t, uint32_t old)
{
    uint32_t old_cen = old & 1, old_dir = old >> 4 & 1;
    uint32_t *cr1 = &t->reg[DH_TIM_CR1];
    if (dh_tim_encoder_mode(t)) {
        *cr1 = (*cr1 & ~CR1_DIR) | old_dir << 4;      /* hardware-driven in encoder mode */
        if (*cr1 & CR1_CEN && !old_cen) {
            if (encoder_sync(t, 0) < 0)               /* start counting from the present position */
                return -1;
        } else if (old_cen && !(*cr1 & CR1_CEN)) {
            *cr1 |= CR1_CEN;
            if (encoder_sync(t, 1) < 0)               /* count what happened before the stop */
                return -1;
            *cr1 &= ~CR1_CEN;
        }
    } else if (*cr1 & CR1_CEN && !old_cen) {
        if (start(t) < 0)
            return -1;
    } else if (old_cen && !(*cr1 & CR1_CEN)) {
        /* frozen at the value reached counting in the old direction (a write of CEN=0 that also
         * flips DIR must not count the elapsed ticks the new way) */
        uint32_t new_dir = *cr1 & CR1_DIR;
        *cr1 = (*cr1 & ~CR1_DIR) | old_dir << 4;
        int r = stop(t);
        *cr1 = (*cr1 & ~CR1_DIR) | new_dir;
        if (r < 0)
            return -1;
    } else if (*cr1 & CR1_CEN && (*cr1 >> 4 & 1) != old_dir && t->running) {
        *cr1 = (*cr1 & ~CR1_DIR) | old_dir << 4;
        if (reanchor(t) < 0)
            return -1;
        *cr1 = (*cr1 & ~CR1_DIR) | (1 - old_dir) << 4;
        if (schedule_update(t) < 0)
            return -1;
    }
    if ((*cr1 & CR1_CEN) != old_cen)
        return notify(t);
    return 0;
}

static int smcr_written(dh_tim *t, uint32_t old)
{
    uint32_t osms = (old & 7) | (old >> 16 & 1) << 3;
    int was_encoder = osms >= 1 && osms <= 3;
    int encoder = dh_tim_encoder_mode(t);
    if (was_encoder == encoder)
        return 0;
    if (encoder) {                                    /* kernel clock -> plant */
        if (stop(t) < 0)
            return -1;
        return encoder_sync(t, 0);
    }
    if (t->reg[DH_TIM_CR1] & CR1_CEN)                 /* plant -> kernel clock */
        return start(t);
    return 0;
}

static int egr_written(dh_tim *t, uint32_t data)
{
    if (!(data & 1))                                  /* only UG is modelled */
        return 0;
    int restart = t->running;
    if (stop(t) < 0 || update_event(t, 1) < 0)        /* preloads first: CNT may reload from ARR */
        return -1;
    t->cnt = t->reg[DH_TIM_CR1] & CR1_DIR ? t->arr_active : 0;
    if (restart && start(t) < 0)
        return -1;
    return notify(t);
}

static int cnt_written(dh_tim *t)
{
    uint32_t value = t->reg[DH_TIM_CNT] & t->width_mask;
    if (dh_tim_encoder_mode(t)) {
        if (encoder_sync(t, 1) < 0)
            return -1;
        t->cnt = value;
    } else if (t->running) {
        if (reanchor(t) < 0)
            return -1;
        t->cnt = value;
        return schedule_update(t);
    } else {
        t->cnt = value;
    }
    return 0;
}

static int arr_written(dh_tim *t)
{
    if (t->reg[DH_TIM_CR1] & CR1_ARPE)
        return 0;
    if (t->running && reanchor(t) < 0)
        return -1;
    t->arr_active = t->reg[DH_TIM_ARR] & t->width_mask;
    if (t->running && schedule_update(t) < 0)
        return -1;
    return notify(t);
}

static int ccr_written(dh_tim *t, int n)              /* n = 1..4 */
{
    uint32_t ccmr = t->reg[n <= 2 ? DH_TIM_CCMR1 : DH_TIM_CCMR2];
    if (!(ccmr >> (n & 1 ? 3 : 11) & 1)) {            /* OCxPE */
        t->ccr_active[n - 1] = t->reg[DH_TIM_CCR1 + n - 1] & t->width_mask;
        return notify(t);
    }
    return 0;
}

static int on_write(dh_tim *t, int idx, uint32_t old, uint32_t data)
{
    switch (idx) {
    case DH_TIM_CR1:
        return cr1_written(t, old);
    case DH_TIM_SMCR:
        return smcr_written(t, old);
    case DH_TIM_DIER:
        return update_irq(t);
    case DH_TIM_SR:
        t->reg[DH_TIM_SR] = old & data;               /* rc_w0 */
        return update_irq(t);
    case DH_TIM_EGR:
        return egr_written(t, data);
    case DH_TIM_CCMR1:
    case DH_TIM_CCMR2:
    case DH_TIM_CCER:
    case DH_TIM_BDTR:
        return notify(t);
    case DH_TIM_CNT:
        return cnt_written(t);
    case DH_TIM_ARR:
        return arr_written(t);
    case DH_TIM_CCR1:
    case DH_TIM_CCR2:
    case DH_TIM_CCR3:
    case DH_TIM_CCR4:
        return ccr_written(t, idx - DH_TIM_CCR1 + 1);
    default:
        return 0;
    }
}

/* -- the register bank ----------------------------------------------------------------------------- */

static int sr_read(dh_tim *t, i128 *v)
{
    if (!(t->reg[DH_TIM_SR] & SR_UIF) && t->running) {
        if (t->ev_held) {
            int64_t when;
            if (t->host->event_time(t->hctx, &when) < 0 || t->host->poll_hint(t->hctx, when) < 0)
                return -1;
        } else if (t->lazy) {
            i128 nxt = t->anchor + ((i128)t->psc_active + 1) * ticks_to_update(t);
            if (t->host->poll_hint(t->hctx, time_of_cycle(t, nxt)) < 0)
                return -1;
        }
    }
    *v = t->reg[DH_TIM_SR];
    return 0;
}

static int cnt_read(dh_tim *t, i128 *v)
{
    i128 cnt;
    if (dh_tim_counter(t, &cnt) < 0)
        return -1;
    if (t->reg[DH_TIM_CR1] & CR1_UIFREMAP && t->width_mask == 0xFFFF)
        cnt |= (i128)(t->reg[DH_TIM_SR] & SR_UIF) << 31;
    *v = cnt;
    return 0;
}

static int defined(uint32_t offset)
{
    return offset < 4 * DH_TIM_NREG && offset >> 2 != DH_TIM_HOLE;
}

int dh_tim_read(dh_tim *t, uint32_t offset, unsigned size, uint64_t *value)
{
    if (t->lazy && catch_up(t) < 0)
        return -1;
    if (!defined(offset)) {
        t->unmodeled++;
        *value = 0;
        return 0;
    }
    int idx = (int)(offset >> 2);
    unsigned shift = offset & 3;
    i128 v;
    if (idx == DH_TIM_SR) {
        if (sr_read(t, &v) < 0)
            return -1;
    } else if (idx == DH_TIM_CNT) {
        if (cnt_read(t, &v) < 0)
            return -1;
    } else if (idx == DH_TIM_EGR) {
        v = 0;                                        /* write-only trigger: reads 0 */
    } else {
        v = t->reg[idx];
    }
    /* regs.py: (value >> 8 * shift) & ((1 << 8 * size) - 1), Python's shift of a negative CNT */
    v >>= 8 * shift;
    *value = size >= 8 ? (uint64_t)v : (uint64_t)v & ((UINT64_C(1) << (8 * size)) - 1);
    return 0;
}

int dh_tim_write(dh_tim *t, uint32_t offset, unsigned size, uint64_t value)
{
    if (t->lazy && catch_up(t) < 0)
        return -1;
    if (!defined(offset)) {
        t->unmodeled++;
    } else {
        int idx = (int)(offset >> 2);
        unsigned bits = 8 * (offset & 3);
        uint64_t ones = size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
        uint32_t mask = (uint32_t)((ones << bits) & 0xFFFFFFFFu);
        uint32_t old = t->reg[idx];
        uint32_t data = (uint32_t)((value << bits) & mask);
        uint32_t now = (old & ~mask) | data;
        t->reg[idx] = now;
        /* on_write sees the written bits and the register's others: the new word */
        if (on_write(t, idx, old, now) < 0)
            return -1;
    }
    if (t->lazy && t->running && !lazy_ok(t))
        return schedule_update(t);                    /* something became observable: events again */
    return 0;
}

int dh_tim_reset(dh_tim *t)
{
    if (t->ev_held) {
        t->ev_held = 0;
        if (t->host->cancel(t->hctx) < 0)
            return -1;
    }
    memset(t->reg, 0, sizeof t->reg);
    t->reg[DH_TIM_ARR] = t->arr_reset;
    int64_t now;
    if (t->host->now(t->hctx, &now) < 0)
        return -1;
    /* _init_state */
    t->hz = t->repl_hz;
    t->epoch_ps = now;
    t->running = 0;
    t->cnt = 0;
    t->anchor = 0;
    t->lazy = 0;
    t->psc_active = 0;
    t->arr_active = t->arr_reset;
    memset(t->ccr_active, 0, sizeof t->ccr_active);
    t->enc_valid = 0;
    t->enc_pos = 0;
    if (update_irq(t) < 0)
        return -1;
    return notify(t);
}
