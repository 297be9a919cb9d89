/* The Cortex-M7 SysTick, the one copy (nvic.py's Nvic builds it).
 *
 * Plain C, no Python: one dh_systick per SCS, owned by _core.c's SysTick binding. Its own unit
 * rather than a section of nvic.c: it needs only the NVIC's public C API (the SysTick pending
 * bit, dh_nvic_set_pending, the st_waiting flag the NVIC's activate/clear_pending report), and
 * the exception state stays free of time, events and clocks.
 *
 * The model (specified by tests/test_native_systick.py, from the ARMv7-M ARM): the counter is computed from virtual time in
 * the SysTick clock's ticks (ticks = t * hz // 10**12, the time of tick k = ceil(k * 10**12 /
 * hz), 128-bit so that nothing overflows); `zero` is the tick
 * of the next wrap to 0; COUNTFLAG is accounted lazily (update); the wrap event is scheduled only
 * while ENABLE and TICKINT, and wraps while SysTick is still pending are coalesced (the NVIC's
 * st_waiting: no event until it is taken or cleared, then resume). RVR = 0 stops the counter at
 * its next wrap, a CVR write clears it and COUNTFLAG, CLKSOURCE and core-clock changes keep the
 * current value and count on at the new rate. The source rate: the core clock pushed by the RCC
 * (set_core_clock), else systickFrequency, else the CPU's hz (host), /8 when CLKSOURCE = 0; and
 * a cache of that rate (keyed on CLKSOURCE; only filled with a CPU or a fixed
 * frequency; dropped by a core-clock or CLKSOURCE change under a running counter).
 *
 * Registers: index 0..3 = SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB, with regs.py's bus
 * semantics (COUNTFLAG read-only, CALIB read-only, byte/halfword accesses through a byte mask).
 * Every host callback and every function that returns int: 0 = done, -1 = the host's error is
 * set (the state changed up to that point).
 */
#ifndef DUOHIL_SYSTICK_H
#define DUOHIL_SYSTICK_H

#include <stdint.h>

#include "nvic.h"

typedef __int128 dh_i128;      /* the same typedef as usart.h's (C11 allows the repetition) */

#define DH_ST_PS_PER_S 1000000000000LL
#define DH_ST_CALIB (0x40000000u | 4799999u)   /* NOREF=0, SKEW=1, TENMS: 10 ms at 480 MHz */

enum { DH_ST_CSR, DH_ST_RVR, DH_ST_CVR, DH_ST_CALIB_REG, DH_ST_NREG };

typedef struct {
    /* machine.now() */
    int (*now)(void *host, int64_t *out);
    /* the Nvic's CPU: *has = 0 when it has none; its hz in *hz when `need` (else left alone) */
    int (*cpu_hz)(void *host, int need, int *has, int64_t *hz);
    /* push the wrap event at t and hold it (the model has cancelled the one held before) */
    int (*schedule)(void *host, dh_i128 t);
    /* cancel the held wrap event, if any, and forget it */
    int (*cancel)(void *host);
    /* forget the held event without cancelling it (it is firing) */
    void (*forget)(void *host);
    /* a CSR read that finds COUNTFLAG clear: no change before `wake` (the CPU may park) */
    int (*poll_hint)(void *host, dh_i128 wake);
    /* SysTick became pending and is enabled: the Nvic's _kick (stop a running slice) */
    int (*kick)(void *host);
    /* a division by a SysTick rate of 0 (no clock at all): Python's ZeroDivisionError */
    int (*zero_hz)(void *host);
} dh_systick_host;

typedef struct {
    uint32_t reg[DH_ST_NREG];        /* raw words as the register bank holds them */
    int running;                     /* _st_running */
    int countflag;                   /* _countflag */
    dh_i128 zero;                    /* _st_zero: SysTick-clock tick of the next wrap to 0 */
    dh_i128 val;                     /* _st_val: the value while stopped */
    int64_t core_hz;                 /* _st_core_hz, 0 = none pushed */
    int64_t fixed_hz;                /* systickFrequency, 0 = none */
    int hz_cached;                   /* _st_hz_cache is not None */
    int64_t hz_cache;
    uint32_t hz_csr;                 /* _st_hz_csr: the CLKSOURCE bit the cache is for */
    dh_nvic *nvic;
    const dh_systick_host *host;
    void *hctx;
} dh_systick;

void dh_systick_init(dh_systick *s, dh_nvic *nvic, int64_t fixed_hz, const dh_systick_host *host,
                     void *hctx);
/* _init_state's SysTick part and the bank's reset: CSR = CLKSOURCE, the event cancelled; the
 * pushed core clock and the rate cache are kept) */
int dh_systick_reset(dh_systick *s);

/* The bank's bus_read of register idx (with its side effects), and bus_write of `data` under
 * `byte_mask` (the bytes written). */
int dh_systick_read_reg(dh_systick *s, int idx, uint32_t *value);
int dh_systick_write_reg(dh_systick *s, int idx, uint32_t data, uint32_t byte_mask);
/* RegisterBank.read/write at `offset` relative to SYST_CSR (0..15), size 1, 2, 4 or 8 */
int dh_systick_read(dh_systick *s, uint32_t offset, unsigned size, uint64_t *value);
int dh_systick_write(dh_systick *s, uint32_t offset, unsigned size, uint64_t value);

/* the wrap event (_st_wrap) */
int dh_systick_wrap(dh_systick *s);
/* _st_resume: SysTick's pending bit was cleared after coalesced wraps */
int dh_systick_resume(dh_systick *s);
/* set_core_clock(hz) */
int dh_systick_set_core_clock(dh_systick *s, int64_t hz);
/* _st_hz(): the rate for the present CLKSOURCE (fills the cache) */
int dh_systick_hz(dh_systick *s, int64_t *hz);

#endif
