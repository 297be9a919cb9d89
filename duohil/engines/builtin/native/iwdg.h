/* The STM32H7 independent watchdog IWDG1 (stm32_iwdg.py's STM32_IndependentWatchdog; the one
 * copy).
 *
 * Plain C, no Python: one dh_iwdg per watchdog, owned by _core.c's Iwdg binding. The model is
 * the one stm32_iwdg.py documents (the deleted Python copy's, decision for decision): the
 * register bank's bus semantics (KR write-only trigger, PR/RLR/WINR read/write over all 32 bits
 * but written only while unlocked, SR read-only; byte and halfword accesses; holes read 0), the
 * keys (0xCCCC starts, 0x5555 unlocks, any other key locks, 0xAAAA reloads), the SR busy bits
 * and their event, the window check, and one expiry event per deadline that only moves earlier
 * at a reload and re-arms itself when it fires early (so a reload schedules nothing while the
 * pending event is not later than the new deadline: the firmware's every-pass kick costs no
 * host call but the time).
 *
 * What the model needs from the machine goes through dh_iwdg_host: the time, the scheduler (two
 * events: expiry and SR done, each held by the host), the CPU's poll hint, the event log's
 * window violation and the system reset. Every host callback and every model function that
 * returns int: 0 = done, -1 = error (the host's error is set and the model hands it on at once).
 */
#ifndef DUOHIL_IWDG_H
#define DUOHIL_IWDG_H

#include <stdint.h>

typedef __int128 dh_i128;      /* the same typedef as usart.h's (C11 allows the repetition) */

#define DH_IWDG_KEY_START 0xCCCCu
#define DH_IWDG_KEY_RELOAD 0xAAAAu
#define DH_IWDG_KEY_UNLOCK 0x5555u
#define DH_IWDG_SR_UPDATE_LSI_CYCLES 5    /* PVU/RVU/WVU busy time in LSI periods */
#define DH_IWDG_RLR_MAX 0xFFFu
#define DH_IWDG_PS_PER_S 1000000000000LL

enum { DH_IWDG_EV_EXPIRY, DH_IWDG_EV_SR, DH_IWDG_EV_N };

/* register index = offset / 4 */
enum { DH_IWDG_KR, DH_IWDG_PR, DH_IWDG_RLR, DH_IWDG_SR, DH_IWDG_WINR, DH_IWDG_NREG };

typedef struct {
    /* machine.now() */
    int (*now)(void *host, int64_t *out);
    /* schedule event `which` at t and hold it (the model has cancelled the one held before) */
    int (*schedule)(void *host, int which, dh_i128 t);
    /* cancel the held event `which`, if any, and forget it */
    int (*cancel)(void *host, int which);
    /* forget event `which` without cancelling it (it is firing) */
    void (*forget)(void *host, int which);
    /* 1 and its (scheduled, possibly clamped) time when event `which` is held, 0 when not,
     * -1 on error. Held means scheduled and not yet fired or cancelled by the model, as the
     * Python model's `_ev is not None`. */
    int (*held)(void *host, int which, int64_t *t);
    /* an SR read that cannot change before `wake` (the CPU may park) */
    int (*poll_hint)(void *host, int64_t wake);
    /* machine.record("iwdg_window_violation", counter=counter, winr=winr) */
    int (*window_violation)(void *host, dh_i128 counter, uint32_t winr);
    /* machine.system_reset("iwdg"): resets this model too (dh_iwdg_reset) before it returns */
    int (*system_reset)(void *host);
} dh_iwdg_host;

typedef struct {
    uint32_t reg[DH_IWDG_NREG];     /* raw words; KR keeps the last written word (reads 0) */
    int64_t lsi_hz;                 /* > 0 */
    int64_t prescaler;              /* defaultPrescaler, > 0 */
    int window_option;
    int running, unlocked;
    int64_t reload_ps;              /* time of the last start/reload */
    dh_i128 period_ps;              /* timeout counted from reload_ps */
    int64_t divider;                /* decoded at the last reload whose PR/RLR differed */
    uint32_t reload_value;
    int has_key;                    /* the Python model's _timing_key is not None */
    uint32_t key_pr, key_rlr;
    const dh_iwdg_host *host;
    void *hctx;
} dh_iwdg;

void dh_iwdg_init(dh_iwdg *w, int64_t lsi_hz, int64_t prescaler, int window_option,
                  const dh_iwdg_host *host, void *hctx);
/* The register bank: offset relative to the base, size 1, 2, 4 or 8. *modelled = 0 for a hole. */
int dh_iwdg_read(dh_iwdg *w, uint32_t offset, unsigned size, uint64_t *value, int *modelled);
int dh_iwdg_write(dh_iwdg *w, uint32_t offset, unsigned size, uint64_t value, int *modelled);
/* reset(): both events cancelled, registers and state to reset */
int dh_iwdg_reset(dh_iwdg *w);
/* the events: expiry check (_check) and SR update done (_sr_done) */
int dh_iwdg_check(dh_iwdg *w);
void dh_iwdg_sr_done(dh_iwdg *w);

/* divider(): prescaler x 2^min(PR.PR, 6), from the present PR */
int64_t dh_iwdg_divider(const dh_iwdg *w);
/* timeout_ps(): divider() x (RLR.RL + 1) x 1e12 // lsi_hz, from the present PR and RLR */
dh_i128 dh_iwdg_timeout_ps(const dh_iwdg *w);
/* counter(): the down-counter at `now` (RLR .. 0); RLR_MAX when stopped */
dh_i128 dh_iwdg_counter(const dh_iwdg *w, int64_t now);

#endif
