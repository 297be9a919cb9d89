/* RISC-V PLIC state: see plic.h. */
#include "plic.h"

#include <stdlib.h>
#include <string.h>

#define BIT(n) (1u << ((n) & 31))
#define WORD(n) ((n) >> 5)

int dh_plic_init(dh_plic *p, int sources, int contexts, int priorities_enabled)
{
    memset(p, 0, sizeof *p);
    p->sources = sources;
    p->contexts = contexts;
    p->priorities_enabled = priorities_enabled;
    size_t nc = contexts > 0 ? (size_t)contexts : 1;
    p->enable = calloc(nc * PL_WORDS, sizeof(uint32_t));
    p->threshold = calloc(nc, 1);
    if (!p->enable || !p->threshold) {
        dh_plic_free(p);
        return -1;
    }
    for (int i = 1; i <= sources; i++)
        p->valid[WORD(i)] |= BIT(i);
    dh_plic_reset(p);
    return 0;
}

void dh_plic_free(dh_plic *p)
{
    free(p->enable);
    free(p->threshold);
    p->enable = NULL;
    p->threshold = NULL;
}

void dh_plic_reset(dh_plic *p)
{
    for (int w = 0; w < PL_WORDS; w++) {
        p->pending[w] = p->level[w] & p->valid[w];       /* lines still high re-request */
        p->in_flight[w] = 0;
    }
    memset(p->priority, 1, sizeof p->priority);
    memset(p->enable, 0, (size_t)(p->contexts > 0 ? p->contexts : 1) * PL_WORDS * sizeof(uint32_t));
    memset(p->threshold, 0, (size_t)(p->contexts > 0 ? p->contexts : 1));
}

int dh_plic_set_input(dh_plic *p, int line, int level)
{
    if (line < 1 || line > p->sources)
        return 0;
    int w = WORD(line);
    uint32_t b = BIT(line);
    if (!level) {
        p->level[w] &= ~b;
        return 0;
    }
    p->level[w] |= b;
    if ((p->pending[w] | p->in_flight[w]) & b)
        return 0;
    p->pending[w] |= b;
    return 1;
}

int dh_plic_set_priority(dh_plic *p, int i, uint32_t value)
{
    if (!p->priorities_enabled)
        return 0;
    p->priority[i] = (uint8_t)(value & 7);
    return 1;
}

int dh_plic_set_enable(dh_plic *p, int c, int w, uint32_t value)
{
    p->enable[c * PL_WORDS + w] = value & p->valid[w];
    return 1;
}

int dh_plic_set_threshold(dh_plic *p, int c, uint32_t value)
{
    p->threshold[c] = (uint8_t)(value & 7);
    return 1;
}

int dh_plic_best(const dh_plic *p, int c)
{
    int best = 0, best_prio = p->threshold[c];
    const uint32_t *en = &p->enable[c * PL_WORDS];
    for (int w = 0; w < PL_WORDS; w++) {
        uint32_t cand = p->pending[w] & en[w];
        while (cand) {
            int i = 32 * w + __builtin_ctz(cand);
            if (p->priority[i] > best_prio) {
                best = i;
                best_prio = p->priority[i];
            }
            cand &= cand - 1;
        }
    }
    return best;
}

int dh_plic_claim(dh_plic *p, int c)
{
    int i = dh_plic_best(p, c);
    if (i) {
        p->pending[WORD(i)] &= ~BIT(i);
        p->in_flight[WORD(i)] |= BIT(i);
    }
    return i;
}

int dh_plic_complete(dh_plic *p, uint32_t value)
{
    if (value == 0 || value > (uint32_t)p->sources || !(p->in_flight[WORD(value)] & BIT(value))) {
        p->bad_completions++;
        return 0;
    }
    p->in_flight[WORD(value)] &= ~BIT(value);
    if (p->level[WORD(value)] & BIT(value))
        p->pending[WORD(value)] |= BIT(value);
    return 1;
}
