/* The Cortex-M7 NVIC's exception state (the one copy; nvic.py's Nvic is its face).
 *
 * Plain C, no Python: one dh_nvic per SCS, owned by _core.c's Nvic binding. Exceptions are
 * numbered as in the ARMv7-M ARM (0..15 system, 16 + n for IRQn); pending, enabled, active and the
 * IRQ input levels are bitmaps of DH_NVIC_WORDS 32-bit words (the H743's 150 IRQs need 166 bits).
 * What stays in nvic.py: the SCS registers (they read and write this state through the binding),
 * the MPU, faults and the event log; SysTick's counter and wrap events are systick.c's (the
 * one copy).
 */
#ifndef DUOHIL_NVIC_H
#define DUOHIL_NVIC_H

#include <stdint.h>

#define DH_NVIC_MAX 256                  /* 16 system exceptions + up to 240 IRQs */
#define DH_NVIC_WORDS (DH_NVIC_MAX / 32)
#define DH_NVIC_SYSTICK 15
#define DH_NVIC_NONE 256                 /* "no priority": thread mode / nothing pending */

typedef struct {
    uint32_t pending[DH_NVIC_WORDS];
    uint32_t enabled[DH_NVIC_WORDS];
    uint32_t active[DH_NVIC_WORDS];
    uint32_t level[DH_NVIC_WORDS];       /* IRQ input lines that are high */
    int32_t prio[DH_NVIC_MAX];           /* priority byte; -3, -2, -1 for Reset, NMI, HardFault */
    int32_t prio_mask;                   /* implemented priority bits (0xF0 on the H743) */
    int32_t group_mask;                  /* AIRCR.PRIGROUP's group-priority bits */
    int32_t *stack;                      /* active exceptions in activation order, innermost last */
    int32_t depth, cap;
    int st_waiting;                      /* a SysTick wrap found it still pending: coalescing */
    uint64_t exceptions_taken;
} dh_nvic;

/* 0, or -1 when out of memory. */
int dh_nvic_init(dh_nvic *v, int32_t prio_mask);
void dh_nvic_free(dh_nvic *v);

static inline int dh_nvic_test(const uint32_t *map, int n)
{
    return (unsigned)n < DH_NVIC_MAX && (map[n >> 5] >> (n & 31)) & 1;
}

/* The group priority of priority byte p (negative priorities are their own group). */
static inline int32_t dh_nvic_group(const dh_nvic *v, int32_t p)
{
    return p < 0 ? p : (p & v->group_mask);
}

/* nvic.py's best_pending(): the pending enabled exception with the lowest priority byte (group,
 * then subpriority), ties to the lowest number; *group its group priority. 0 and 256 if none. */
int dh_nvic_best_pending(const dh_nvic *v, int32_t *group);

/* ARMv7-M ExecutionPriority(): the active exceptions' group priorities, BASEPRI, PRIMASK,
 * FAULTMASK; 256 in thread mode with nothing masked. */
int32_t dh_nvic_execution_priority(const dh_nvic *v, uint32_t primask, uint32_t basepri,
                                   uint32_t faultmask);

/* Take `exc`: no longer pending, active, on the stack. Returns 1 when SysTick's coalesced wraps
 * must resume (the caller schedules the next wrap), 0 otherwise, -1 when out of memory. */
int dh_nvic_activate(dh_nvic *v, int exc);

/* Exception return from `exc`: 0 if it was not active (INVPC), else 1; a line still high pends
 * again. */
int dh_nvic_deactivate(dh_nvic *v, int exc);

/* Pend `exc`; 1 when it became pending and is enabled (the caller may stop the running slice). */
int dh_nvic_set_pending(dh_nvic *v, int exc);

/* Unpend `exc` (a high line stays pending); 1 when SysTick's coalesced wraps must resume. */
int dh_nvic_clear_pending(dh_nvic *v, int exc);

/* Nonzero when some exception is both pending and enabled. */
int dh_nvic_any_pending_enabled(const dh_nvic *v);

#endif
