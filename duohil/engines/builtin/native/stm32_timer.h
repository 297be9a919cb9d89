/* The STM32H7 general-purpose, advanced and basic timers: the one copy of the model (every
 * stm32_timer.py STM32_Timer, whatever DUOHIL_MODELS says; stm32_timer.py's docstring states
 * the rules and the simplifications, tests/test_native_timer.py checks them).
 *
 * Plain C, no Python: one dh_tim per TIMx instance, owned by _core.c's Timer binding (the base
 * class of stm32_timer.py's Stm32TimerNative): the register bank's bus semantics (byte/halfword accesses,
 * EGR write-only trigger, SR rc_w0), the counter anchored to a kernel-clock cycle and derived
 * from virtual time, PSC/ARR/CCRx preloads, the update event (one scheduler event per update,
 * its argument the kernel cycle it is due at), the lazy mode (updates nobody can observe are
 * skipped and applied on the next register access and before the counter is computed), CNT
 * holding its value from a CEN write to the first count, one-pulse mode, down-counting, encoder
 * mode (SMS 1/2/3) with set_encoder_count, UIF and the update interrupt, UG, the PWM duty views.
 *
 * Integers are Python's: cycles, anchors, the counter and encoder positions are 128-bit and
 * every division is floored (fdiv/fmod in stm32_timer.c), as the rules in Python ints say.
 *
 * What the model needs from the rest of the machine goes through dh_tim_host (the binding's
 * callbacks): the time, the scheduler (one event: the update), the IRQ line, the listeners, the
 * plant's encoder source and the CPU's poll hint. Every host callback and every model function
 * that returns int: 0 = done, -1 = error (the host's error is set and the model hands it on at
 * once, as the Python model's exception would).
 */
#ifndef DUOHIL_STM32_TIMER_H
#define DUOHIL_STM32_TIMER_H

#include <stdint.h>

typedef __int128 dh_tim_i128;

/* register index = offset / 4 (0x50 is a hole; nothing past TISEL at 0x68) */
enum {
    DH_TIM_CR1, DH_TIM_CR2, DH_TIM_SMCR, DH_TIM_DIER, DH_TIM_SR, DH_TIM_EGR, DH_TIM_CCMR1,
    DH_TIM_CCMR2, DH_TIM_CCER, DH_TIM_CNT, DH_TIM_PSC, DH_TIM_ARR, DH_TIM_RCR, DH_TIM_CCR1,
    DH_TIM_CCR2, DH_TIM_CCR3, DH_TIM_CCR4, DH_TIM_BDTR, DH_TIM_DCR, DH_TIM_DMAR, DH_TIM_HOLE,
    DH_TIM_CCMR3, DH_TIM_CCR5, DH_TIM_CCR6, DH_TIM_AF1, DH_TIM_AF2, DH_TIM_TISEL, DH_TIM_NREG
};

typedef struct {
    int (*now)(void *host, int64_t *out);
    /* schedule the update event at t, its argument `cycle` (the model cancelled the last one) */
    int (*schedule)(void *host, dh_tim_i128 t, dh_tim_i128 cycle);
    /* cancel the update event held and forget it */
    int (*cancel)(void *host);
    /* forget the update event without cancelling it (it is firing) */
    void (*forget)(void *host);
    /* the held event's time (the scheduler's: clamped to now when it was due earlier) */
    int (*event_time)(void *host, int64_t *t);
    /* drive the update interrupt line (a Signal: a set to its own level is no edge) */
    int (*irq)(void *host, int level);
    /* every listener fn(timer), in the order they were added (a copy of the list) */
    int (*notify)(void *host);
    /* the plant's position now: 1 and *pos, 0 when no encoder_source is set, -1 on error */
    int (*encoder_source)(void *host, dh_tim_i128 *pos);
    /* SR read that cannot change before wake */
    int (*poll_hint)(void *host, dh_tim_i128 wake);
} dh_tim_host;

typedef struct {
    uint32_t reg[DH_TIM_NREG];
    uint32_t width_mask;                 /* 0xFFFF, or 0xFFFFFFFF when initialLimit > 0xFFFF */
    uint32_t arr_reset;                  /* initialLimit & width_mask */
    int advanced;                        /* TIM1/TIM8: outputs need BDTR.MOE */
    int64_t repl_hz, hz;
    int64_t epoch_ps;
    int running;                         /* counting kernel-clock ticks */
    int lazy;                            /* update events skipped: nobody can observe them */
    int ev_held;                         /* the host holds an update event (Python: not None) */
    dh_tim_i128 cnt;                     /* CNT when not running; CNT at the anchor when running */
    dh_tim_i128 anchor;                  /* kernel cycle of the anchor (prescaler phase 0) */
    uint32_t psc_active, arr_active, ccr_active[4];
    int enc_valid;                       /* enc_pos is set (Python: not None) */
    dh_tim_i128 enc_pos;                 /* last plant position (quadrature edges) */
    int64_t updates;                     /* update events so far (reports and tests) */
    uint64_t unmodeled;                  /* accesses to offsets with no register */
    const dh_tim_host *host;
    void *hctx;
} dh_tim;

/* The state of a freshly built timer (registers at reset, not counting); epoch_ps = now. */
void dh_tim_init(dh_tim *t, int64_t initial_limit, int64_t repl_hz, int advanced, int64_t now,
                 const dh_tim_host *host, void *hctx);
/* The register bank: offset relative to the base, size 1..8. */
int dh_tim_read(dh_tim *t, uint32_t offset, unsigned size, uint64_t *value);
int dh_tim_write(dh_tim *t, uint32_t offset, unsigned size, uint64_t value);
/* reset(): the event cancelled, registers and state to reset, the clock to the repl frequency,
 * the IRQ line set from SR/DIER, listeners told (updates, listeners, encoder_source stay). */
int dh_tim_reset(dh_tim *t);
/* the update event's function: due at kernel cycle `cycle` */
int dh_tim_on_update(dh_tim *t, dh_tim_i128 cycle);
/* timer_hz = hz (the RCC model); hz <= 0 or unchanged is ignored */
int dh_tim_set_hz(dh_tim *t, int64_t hz);
int dh_tim_set_encoder_count(dh_tim *t, dh_tim_i128 position);
/* counter(): CNT now, as the firmware would read it */
int dh_tim_counter(dh_tim *t, dh_tim_i128 *out);
int dh_tim_encoder_mode(const dh_tim *t);
/* ch 1..4 */
int dh_tim_output_enabled(const dh_tim *t, int ch);
double dh_tim_channel_duty(const dh_tim *t, int ch);
/* (PSC+1)(ARR+1) kernel cycles in ps, rounded down */
dh_tim_i128 dh_tim_update_period_ps(const dh_tim *t);

#endif
