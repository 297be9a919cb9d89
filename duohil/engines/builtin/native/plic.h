/* RISC-V PLIC state: gateways (level, pending, in flight), priorities, enables, thresholds and the
 * claim/complete protocol (plic.py's PlatformLevelInterruptController builds it: the one copy).
 *
 * Plain C, no Python: the CPython binding (_core.c's Plic) owns one dh_plic per PLIC; plic.py
 * keeps the register map and the output signals (one per context) and sets them from
 * dh_plic_best() after every change this state reports. Semantics are plic.py's: a source whose
 * input is high becomes pending unless pending or in flight; a claim takes the enabled pending
 * source of highest priority above the context's threshold, lowest id on ties; a completion of
 * an id not in flight is counted and ignored; one still high is pending again at once.
 */
#ifndef DUOHIL_PLIC_H
#define DUOHIL_PLIC_H

#include <stdint.h>

#define PL_MAX_SOURCES 1023
#define PL_WORDS 32                     /* bit n = source n, n = 0..1023 */

typedef struct {
    int sources, contexts, priorities_enabled;
    uint32_t level[PL_WORDS], pending[PL_WORDS], in_flight[PL_WORDS], valid[PL_WORDS];
    uint8_t priority[PL_MAX_SOURCES + 1];
    uint32_t *enable;                   /* contexts * PL_WORDS */
    uint8_t *threshold;                 /* contexts */
    int64_t bad_completions;
    /* the register map (plic.py's RegisterBank under python): what the bus last wrote to each
     * read/write register, which a byte or halfword write merges with (reset 0) */
    int words;                          /* enable/pending words: (sources + 1 + 31) / 32 */
    uint32_t prio_reg[PL_MAX_SOURCES + 1];
    uint32_t *enable_reg;               /* contexts * words */
    uint32_t *threshold_reg, *claim_reg;   /* contexts */
} dh_plic;

/* the registers of the map (dh_plic_decode) */
enum { PLR_NONE, PLR_PRIORITY, PLR_PENDING, PLR_ENABLE, PLR_THRESHOLD, PLR_CLAIM };

/* 0, or -1 when the per-context arrays cannot be allocated. Then reset state. */
int dh_plic_init(dh_plic *p, int sources, int contexts, int priorities_enabled);
void dh_plic_free(dh_plic *p);

/* Each returns 1 when the outputs must be re-evaluated (plic.py's _update), else 0. */
int dh_plic_set_input(dh_plic *p, int line, int level);
int dh_plic_set_priority(dh_plic *p, int i, uint32_t value);
int dh_plic_set_enable(dh_plic *p, int c, int w, uint32_t value);
int dh_plic_set_threshold(dh_plic *p, int c, uint32_t value);
/* complete: 0 (and counted) when `value` is not in flight */
int dh_plic_complete(dh_plic *p, uint32_t value);
void dh_plic_reset(dh_plic *p);

/* The source context c would claim now, or 0. */
int dh_plic_best(const dh_plic *p, int c);

/* Claim for context c: the id (pending -> in flight), or 0 (nothing changed). */
int dh_plic_claim(dh_plic *p, int c);

/* The register holding byte `offset` (all are 32-bit words): PLR_* with *i the source (priority),
 * the word (pending) or the context (enable, threshold, claim), *w the enable word, *shift the
 * byte inside the register; PLR_NONE for an offset the map does not model. */
int dh_plic_decode(const dh_plic *p, uint32_t offset, int *i, int *w, unsigned *shift);

/* The read/write register's stored value (NULL for the pending words, which are read-only). */
uint32_t *dh_plic_reg(dh_plic *p, int reg, int i, int w);

/* Pending word w as the register reads it. */
uint32_t dh_plic_pending_word(const dh_plic *p, int w);

#endif
