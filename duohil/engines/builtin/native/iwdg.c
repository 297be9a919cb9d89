/* The STM32H7 independent watchdog in C: stm32_iwdg.py's model (see iwdg.h). */
#include "iwdg.h"

#include <string.h>

/* floor division, as Python's // (the divisor is positive here) */
static dh_i128 floordiv(dh_i128 a, dh_i128 b)
{
    dh_i128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static void init_state(dh_iwdg *w)
{
    w->running = 0;
    w->unlocked = 0;
    w->reload_ps = 0;
    w->period_ps = 0;
    w->divider = 0;
    w->reload_value = DH_IWDG_RLR_MAX;
    w->has_key = 0;
    w->key_pr = w->key_rlr = 0;
}

static void reset_regs(dh_iwdg *w)
{
    memset(w->reg, 0, sizeof w->reg);
    w->reg[DH_IWDG_RLR] = DH_IWDG_RLR_MAX;
    w->reg[DH_IWDG_WINR] = DH_IWDG_RLR_MAX;
}

void dh_iwdg_init(dh_iwdg *w, int64_t lsi_hz, int64_t prescaler, int window_option,
                  const dh_iwdg_host *host, void *hctx)
{
    memset(w, 0, sizeof *w);
    w->lsi_hz = lsi_hz;
    w->prescaler = prescaler;
    w->window_option = window_option;
    w->host = host;
    w->hctx = hctx;
    reset_regs(w);
    init_state(w);
}

int64_t dh_iwdg_divider(const dh_iwdg *w)
{
    unsigned pr = w->reg[DH_IWDG_PR] & 7u;
    return w->prescaler << (pr < 6 ? pr : 6);
}

dh_i128 dh_iwdg_timeout_ps(const dh_iwdg *w)
{
    dh_i128 rl = (dh_i128)(w->reg[DH_IWDG_RLR] & DH_IWDG_RLR_MAX);
    return floordiv((dh_i128)dh_iwdg_divider(w) * (rl + 1) * DH_IWDG_PS_PER_S, w->lsi_hz);
}

dh_i128 dh_iwdg_counter(const dh_iwdg *w, int64_t now)
{
    if (!w->running)
        return DH_IWDG_RLR_MAX;
    dh_i128 ticks = floordiv((dh_i128)(now - (dh_i128)w->reload_ps) * w->lsi_hz,
                             (dh_i128)w->divider * DH_IWDG_PS_PER_S);
    dh_i128 c = (dh_i128)w->reload_value - ticks;
    return c > 0 ? c : 0;
}

/* -- the expiry event ------------------------------------------------------------------------- */

/* _reload: start of a new count from the present PR/RLR (decoded only when they changed); the
 * pending expiry event moves only when the new deadline is earlier than its time. */
static int do_reload(dh_iwdg *w)
{
    const dh_iwdg_host *h = w->host;
    uint32_t pr = w->reg[DH_IWDG_PR], rlr = w->reg[DH_IWDG_RLR];
    if (!w->has_key || pr != w->key_pr || rlr != w->key_rlr) {
        w->has_key = 1;
        w->key_pr = pr;
        w->key_rlr = rlr;
        w->divider = dh_iwdg_divider(w);
        w->reload_value = rlr & DH_IWDG_RLR_MAX;
        w->period_ps = dh_iwdg_timeout_ps(w);
    }
    if (h->now(w->hctx, &w->reload_ps) < 0)
        return -1;
    dh_i128 deadline = (dh_i128)w->reload_ps + w->period_ps;
    int64_t t;
    int held = h->held(w->hctx, DH_IWDG_EV_EXPIRY, &t);
    if (held < 0)
        return -1;
    if (!held || (dh_i128)t > deadline) {
        if (held && h->cancel(w->hctx, DH_IWDG_EV_EXPIRY) < 0)
            return -1;
        return h->schedule(w->hctx, DH_IWDG_EV_EXPIRY, deadline);
    }
    return 0;
}

/* _checked_reload: a reload key while running; too early in the window resets the chip */
static int checked_reload(dh_iwdg *w)
{
    uint32_t win = w->reg[DH_IWDG_WINR] & DH_IWDG_RLR_MAX;
    if (win < DH_IWDG_RLR_MAX && w->window_option) {
        int64_t now;
        if (w->host->now(w->hctx, &now) < 0)
            return -1;
        dh_i128 c = dh_iwdg_counter(w, now);
        if (c > (dh_i128)win) {
            if (w->host->window_violation(w->hctx, c, win) < 0)
                return -1;
            return w->host->system_reset(w->hctx);     /* this model was reset: nothing more */
        }
    }
    return do_reload(w);
}

int dh_iwdg_check(dh_iwdg *w)
{
    const dh_iwdg_host *h = w->host;
    h->forget(w->hctx, DH_IWDG_EV_EXPIRY);
    if (!w->running)
        return 0;
    dh_i128 deadline = (dh_i128)w->reload_ps + w->period_ps;
    int64_t now;
    if (h->now(w->hctx, &now) < 0)
        return -1;
    if ((dh_i128)now < deadline)                        /* reloaded since: re-arm */
        return h->schedule(w->hctx, DH_IWDG_EV_EXPIRY, deadline);
    return h->system_reset(w->hctx);
}

/* -- registers ------------------------------------------------------------------------------- */

static int kr_written(dh_iwdg *w, uint32_t data)
{
    uint32_t key = data & 0xFFFFu;
    w->unlocked = key == DH_IWDG_KEY_UNLOCK;
    if (key == DH_IWDG_KEY_START) {
        if (!w->running) {
            w->running = 1;
            return do_reload(w);
        }
    } else if (key == DH_IWDG_KEY_RELOAD && w->running) {
        return checked_reload(w);
    }
    return 0;
}

static int protected_written(dh_iwdg *w, int r, uint32_t old)
{
    const dh_iwdg_host *h = w->host;
    if (!w->unlocked) {
        w->reg[r] = old;
        return 0;
    }
    int bit = r == DH_IWDG_PR ? 0 : r == DH_IWDG_RLR ? 1 : 2;
    w->reg[DH_IWDG_SR] |= 1u << bit;
    if (h->cancel(w->hctx, DH_IWDG_EV_SR) < 0)
        return -1;
    int64_t now;
    if (h->now(w->hctx, &now) < 0)
        return -1;
    dh_i128 delay = floordiv((dh_i128)DH_IWDG_SR_UPDATE_LSI_CYCLES * DH_IWDG_PS_PER_S, w->lsi_hz);
    if (h->schedule(w->hctx, DH_IWDG_EV_SR, (dh_i128)now + delay) < 0)
        return -1;
    if (r == DH_IWDG_WINR && w->running)
        return do_reload(w);                            /* a WINR write reloads, unchecked */
    return 0;
}

void dh_iwdg_sr_done(dh_iwdg *w)
{
    w->host->forget(w->hctx, DH_IWDG_EV_SR);
    w->reg[DH_IWDG_SR] = 0;
}

/* regs.py's _find for this map: registers at 0x00..0x10, one per word; -1 for a hole */
static int find_reg(uint32_t offset)
{
    uint32_t base = offset & ~3u;
    return base <= 0x10 ? (int)(base >> 2) : -1;
}

int dh_iwdg_read(dh_iwdg *w, uint32_t offset, unsigned size, uint64_t *value, int *modelled)
{
    int r = find_reg(offset);
    *modelled = r >= 0;
    if (r < 0) {
        *value = 0;
        return 0;
    }
    uint64_t v;
    if (r == DH_IWDG_KR) {
        v = 0;                                          /* write-only trigger */
    } else if (r == DH_IWDG_SR) {
        v = w->reg[DH_IWDG_SR];
        int64_t t;
        int held = 0;
        if (v && (held = w->host->held(w->hctx, DH_IWDG_EV_SR, &t)) < 0)
            return -1;
        if (held && w->host->poll_hint(w->hctx, t) < 0)  /* HAL spins on SR == 0 */
            return -1;
    } else {
        v = w->reg[r];
    }
    unsigned shift = 8 * (offset & 3u);
    v >>= shift;
    if (size < 8)
        v &= (1ull << (8 * size)) - 1;
    *value = v;
    return 0;
}

int dh_iwdg_write(dh_iwdg *w, uint32_t offset, unsigned size, uint64_t value, int *modelled)
{
    int r = find_reg(offset);
    *modelled = r >= 0;
    if (r < 0 || r == DH_IWDG_SR)                       /* a hole; SR is read-only */
        return 0;
    unsigned bits = 8 * (offset & 3u);
    uint64_t full = size < 8 ? (1ull << (8 * size)) - 1 : ~0ull;
    uint32_t mask = (uint32_t)((full << bits) & 0xFFFFFFFFu);
    uint32_t data = (uint32_t)((value << bits) & mask);
    uint32_t old = w->reg[r];
    uint32_t new = (old & ~mask) | data;
    w->reg[r] = new;
    /* the handler sees the written bits and the kept ones (regs.py: data & mask | new & ~mask) */
    if (r == DH_IWDG_KR)
        return kr_written(w, new);
    return protected_written(w, r, old);
}

int dh_iwdg_reset(dh_iwdg *w)
{
    const dh_iwdg_host *h = w->host;
    if (h->cancel(w->hctx, DH_IWDG_EV_EXPIRY) < 0 || h->cancel(w->hctx, DH_IWDG_EV_SR) < 0)
        return -1;
    reset_regs(w);
    init_state(w);
    return 0;
}
