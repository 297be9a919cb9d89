/* The Cortex-M7 NVIC's exception state: see nvic.h. The one copy of it: nvic.py's Nvic reads and
 * writes it through _core.c's binding (tests/test_native_cortexm.py checks the rules). */
#include "nvic.h"

#include <stdlib.h>
#include <string.h>

int dh_nvic_init(dh_nvic *v, int32_t prio_mask)
{
    int32_t *stack = v->stack;
    int32_t cap = v->cap;
    memset(v, 0, sizeof(*v));
    if (!stack) {
        cap = 64;
        stack = malloc(sizeof(int32_t) * cap);
        if (!stack)
            return -1;
    }
    v->stack = stack;
    v->cap = cap;
    v->prio_mask = prio_mask & 0xFF;
    v->group_mask = 0xFE & v->prio_mask;
    v->prio[1] = -3;
    v->prio[2] = -2;
    v->prio[3] = -1;
    return 0;
}

void dh_nvic_free(dh_nvic *v)
{
    free(v->stack);
    v->stack = NULL;
    v->cap = v->depth = 0;
}

int dh_nvic_best_pending(const dh_nvic *v, int32_t *group)
{
    int best = 0;
    int32_t bp = 999;
    for (int w = 0; w < DH_NVIC_WORDS; w++) {
        uint32_t m = v->pending[w] & v->enabled[w];
        while (m) {
            int n = 32 * w + __builtin_ctz(m);
            m &= m - 1;
            if (v->prio[n] < bp) {
                best = n;
                bp = v->prio[n];
            }
        }
    }
    *group = best ? dh_nvic_group(v, bp) : DH_NVIC_NONE;
    return best;
}

int32_t dh_nvic_execution_priority(const dh_nvic *v, uint32_t primask, uint32_t basepri,
                                   uint32_t faultmask)
{
    int32_t prio = DH_NVIC_NONE;
    for (int w = 0; w < DH_NVIC_WORDS; w++) {
        uint32_t a = v->active[w];
        while (a) {
            int n = 32 * w + __builtin_ctz(a);
            a &= a - 1;
            int32_t p = dh_nvic_group(v, v->prio[n]);
            if (p < prio)
                prio = p;
        }
    }
    int32_t bp = (int32_t)(basepri & (uint32_t)v->prio_mask & (uint32_t)v->group_mask);
    if (bp && bp < prio)
        prio = bp;
    if (primask & 1 && prio > 0)
        prio = 0;
    if (faultmask & 1 && prio > -1)
        prio = -1;
    return prio;
}

int dh_nvic_activate(dh_nvic *v, int exc)
{
    if (v->depth == v->cap) {
        int32_t *s = realloc(v->stack, sizeof(int32_t) * 2 * v->cap);
        if (!s)
            return -1;
        v->stack = s;
        v->cap *= 2;
    }
    v->pending[exc >> 5] &= ~(1u << (exc & 31));
    v->active[exc >> 5] |= 1u << (exc & 31);
    v->stack[v->depth++] = exc;
    v->exceptions_taken++;
    return v->st_waiting && exc == DH_NVIC_SYSTICK;
}

int dh_nvic_deactivate(dh_nvic *v, int exc)
{
    uint32_t bit = 1u << (exc & 31);
    int w = exc >> 5;
    if (!(v->active[w] & bit))
        return 0;
    v->active[w] &= ~bit;
    if (v->depth && v->stack[v->depth - 1] == exc) {
        v->depth--;
    } else {
        for (int i = 0; i < v->depth; i++) {          /* the first occurrence, as list.remove */
            if (v->stack[i] == exc) {
                memmove(v->stack + i, v->stack + i + 1, sizeof(int32_t) * (v->depth - i - 1));
                v->depth--;
                break;
            }
        }
    }
    if (v->level[w] & bit)
        v->pending[w] |= bit;                          /* level-sensitive line still high */
    return 1;
}

int dh_nvic_set_pending(dh_nvic *v, int exc)
{
    uint32_t bit = 1u << (exc & 31);
    int w = exc >> 5;
    if (v->pending[w] & bit)
        return 0;
    v->pending[w] |= bit;
    return (v->enabled[w] & bit) != 0;
}

int dh_nvic_clear_pending(dh_nvic *v, int exc)
{
    uint32_t bit = 1u << (exc & 31);
    int w = exc >> 5;
    v->pending[w] &= ~bit;
    v->pending[w] |= v->level[w] & bit;
    return v->st_waiting && exc == DH_NVIC_SYSTICK;
}

int dh_nvic_any_pending_enabled(const dh_nvic *v)
{
    for (int w = 0; w < DH_NVIC_WORDS; w++)
        if (v->pending[w] & v->enabled[w])
            return 1;
    return 0;
}
