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
    p->words = (sources + 1 + 31) / 32;
    p->enable = calloc(nc * PL_WORDS, sizeof(uint32_t));
    p->threshold = calloc(nc, 1);
    p->enable_reg = calloc(nc * (size_t)p->words, sizeof(uint32_t));
    p->threshold_reg = calloc(nc, sizeof(uint32_t));
    p->claim_reg = calloc(nc, sizeof(uint32_t));
    if (!p->enable || !p->threshold || !p->enable_reg || !p->threshold_reg || !p->claim_reg) {
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
    free(p->enable_reg);
    free(p->threshold_reg);
    free(p->claim_reg);
    p->enable = NULL;
    p->threshold = NULL;
    p->enable_reg = p->threshold_reg = p->claim_reg = NULL;
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
    size_t nc = (size_t)(p->contexts > 0 ? p->contexts : 1);
    memset(p->prio_reg, 0, sizeof p->prio_reg);
    memset(p->enable_reg, 0, nc * (size_t)p->words * sizeof(uint32_t));
    memset(p->threshold_reg, 0, nc * sizeof(uint32_t));
    memset(p->claim_reg, 0, nc * sizeof(uint32_t));
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

#define PENDING_BASE 0x1000u
#define ENABLE_BASE 0x2000u
#define ENABLE_STRIDE 0x80u
#define CONTEXT_BASE 0x200000u
#define CONTEXT_STRIDE 0x1000u

int dh_plic_decode(const dh_plic *p, uint32_t offset, int *i, int *w, unsigned *shift)
{
    uint32_t a = offset & ~3u;
    *shift = offset & 3u;
    *i = *w = 0;
    if (a >= 4 && a <= 4u * (uint32_t)p->sources) {
        *i = (int)(a / 4);
        return PLR_PRIORITY;
    }
    if (a >= PENDING_BASE && a < PENDING_BASE + 4u * (uint32_t)p->words) {
        *i = (int)((a - PENDING_BASE) / 4);
        return PLR_PENDING;
    }
    if (a >= ENABLE_BASE && a < ENABLE_BASE + ENABLE_STRIDE * (uint32_t)p->contexts) {
        uint32_t k = (a - ENABLE_BASE) % ENABLE_STRIDE;
        if (k < 4u * (uint32_t)p->words) {
            *i = (int)((a - ENABLE_BASE) / ENABLE_STRIDE);
            *w = (int)(k / 4);
            return PLR_ENABLE;
        }
        return PLR_NONE;
    }
    if (a >= CONTEXT_BASE && a < CONTEXT_BASE + CONTEXT_STRIDE * (uint32_t)p->contexts) {
        uint32_t k = (a - CONTEXT_BASE) % CONTEXT_STRIDE;
        *i = (int)((a - CONTEXT_BASE) / CONTEXT_STRIDE);
        if (k == 0)
            return PLR_THRESHOLD;
        if (k == 4)
            return PLR_CLAIM;
    }
    return PLR_NONE;
}

uint32_t *dh_plic_reg(dh_plic *p, int reg, int i, int w)
{
    switch (reg) {
    case PLR_PRIORITY:
        return &p->prio_reg[i];
    case PLR_ENABLE:
        return &p->enable_reg[i * p->words + w];
    case PLR_THRESHOLD:
        return &p->threshold_reg[i];
    case PLR_CLAIM:
        return &p->claim_reg[i];
    }
    return NULL;
}

uint32_t dh_plic_pending_word(const dh_plic *p, int w)
{
    return p->pending[w];
}
