/* Cortex-M7 L1 D-cache line bookkeeping, as far as DMA coherency is concerned: the state and the
 * logic of the model dcache.py's DCache stands for (read its module docstring: CPU view =
 * unicorn's memory, bus view = one buffer per tracked region, stale lines with their `base`
 * copies, residency r(line) drawn per line, allocation times, eviction events, maintenance by
 * address and by set/way bursts, MPU non-cacheable lines, CCR.DC), the one copy of that state
 * (dcache.py's DCache holds it); tests/test_native_dcache.py states its rules.
 *
 * Plain C, no Python: what needs the Python world (the time, the MPU's attributes, the
 * scheduler's events, unicorn's errors) goes through the dc_env callbacks the binding
 * (_core.c's DCache) provides. Every int-returning function: 0 = done, -1 = an error was set by a
 * callback (or by env.nomem / env.uc_error), to be handed on. The CPU view is read and written
 * straight in the host memory unicorn maps (dc_set_layout's views) when an access lies in one,
 * else with uc_mem_read/uc_mem_write.
 *
 * The residency draw is Python's random.Random(residency_key(seed, line)).randint(r_min, r_max),
 * reimplemented exactly (MT19937 seeded by init_by_array with the key's 32-bit words, then
 * _randbelow_with_getrandbits): dc_draw.
 */
#ifndef DUOHIL_DCACHE_H
#define DUOHIL_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ucapi.h"

#define DC_LINE 32u
#define DC_SET_WAY_OPS (128 * 4)     /* SETS * WAYS: one CMSIS set/way loop */

enum { DC_BURST_NONE = 0, DC_BURST_INV = 1, DC_BURST_CLEAN = 2, DC_BURST_CLEANINV = 3 };

typedef struct {
    void *ctx;
    /* the tracked regions looked at: the binding calls dc_set_layout when the machine's
     * memories changed since the last time */
    int (*sync)(void *ctx);
    /* machine.now() */
    int (*now)(void *ctx, int64_t *out);
    /* machine.mpu.attributes(line)[0]; *memo = 0 when there is no MPU (nothing memoised) */
    int (*cacheable)(void *ctx, uint32_t line, int *cacheable, int *memo);
    /* scheduler.at(t, on_evict, la, name="dcache-evict"): a new reference in *ev */
    int (*schedule)(void *ctx, uint32_t la, int64_t t, void **ev);
    /* ev.time and ev.cancelled */
    int (*ev_state)(void *ctx, void *ev, int64_t *t, int *cancelled);
    /* ev.cancel() */
    int (*cancel)(void *ctx, void *ev);
    /* drop the reference */
    void (*drop)(void *ctx, void *ev);
    /* machine.cpu.uc's engine, when the binding has not resolved it yet */
    int (*need_uc)(void *ctx, uc_engine **uc);
    /* set a unicorn error (the binding's UcError(err)) and return -1 */
    int (*uc_error)(void *ctx, int err);
    /* set MemoryError and return -1 */
    int (*nomem)(void *ctx);
} dc_env;

typedef struct {
    uint64_t base, size, end;
    int active;                  /* mapped by the machine's memories (dcache.py's `regions`) */
    size_t nlines;
    uint8_t *bus;                /* the bus (SRAM) view, size bytes */
    uint8_t *stale_base;         /* per stale line: its bytes before the first DMA write */
    uint8_t *stale;              /* per line: 1 when stale */
    uint8_t *nc;                 /* per line: non-cacheable, valid when nc_gen[i] == c->nc_gen */
    uint32_t *nc_gen;
    int64_t *alloc;              /* per line: alloc time, valid when alloc_gen[i] == c->alloc_gen */
    uint32_t *alloc_gen;
    int64_t *r;                  /* per line: r(line), valid when r_gen[i] == c->r_gen */
    uint32_t *r_gen;
    void **ev;                   /* per line: its pending eviction event (a reference) or NULL */
    size_t nstale, nev;
} dc_region;

typedef struct {
    uint64_t base, end;
    uint8_t *ptr;
} dc_view;

typedef struct {
    dc_env env;
    uc_engine *uc;
    dc_view *views;
    size_t nviews;
    dc_region *rg;               /* the wanted regions, in the order given */
    size_t nrg;
    size_t *by_base;             /* region indices by ascending base (sorted(line) iterations) */
    dc_region *last;             /* the last region a DMA access hit */
    int enabled;                 /* CCR.DC */
    uint64_t gen;                /* bumps on anything a set/way burst must see */
    int burst_kind;
    uint64_t burst_gen;
    int burst_calls;
    uint32_t *key;               /* residency_key's 32-bit words, low first: [line, z words...] */
    size_t nz;                   /* the zig-zag seed's words (minimal; 0 for seed 0) */
    int timed;                   /* a residency range is set (not "resident for ever") */
    int64_t r_lo, r_hi;
    int64_t epoch;               /* alloc time of every line without its own */
    uint32_t alloc_gen, r_gen, nc_gen;
    int64_t dma_stale_writes, lines_invalidated, lines_written_back, set_way_ops, set_way_runs,
        stale_evictions, writebacks, fresh_writes;
} dc_cache;

/* regions: n (base, size) pairs, 32-byte aligned, not overlapping (checked: -1 with *why). */
int dc_init(dc_cache *c, const dc_env *env, const uint64_t *bases, const uint64_t *sizes, size_t n,
            const char **why);
void dc_free(dc_cache *c);

/* The machine's memories changed: mems = n (base, size) pairs; views = the host memory behind
 * them (may be empty). Regions become active as dcache.py's `regions` does; one that appears
 * while the cache is on takes the CPU view. The views array is copied. */
int dc_set_layout(dc_cache *c, const uint64_t *mem_base, const uint64_t *mem_size, size_t nmems,
                  const dc_view *views, size_t nviews);

/* seed words of residency_key's zig-zag z (low first, minimal) */
int dc_set_seed(dc_cache *c, const uint32_t *zwords, size_t nz);
/* residency: timed = 0 for "resident for ever" */
int dc_set_residency(dc_cache *c, int timed, int64_t lo, int64_t hi);

/* random.Random(key).randint(lo, hi) for key = words (little-endian 32-bit, minimal, at least one) */
int64_t dc_draw(const uint32_t *key, size_t nkey, int64_t lo, int64_t hi);
/* r(line) (memoised for tracked lines); *none = 1 when resident for ever */
int64_t dc_residency_of(dc_cache *c, uint32_t line, int *none);
int64_t dc_alloc_time(const dc_cache *c, uint32_t line);

/* DmaPort */
int dc_read(dc_cache *c, uint64_t address, uint8_t *out, size_t n);
int dc_write(dc_cache *c, uint64_t address, const uint8_t *data, size_t n);

/* SCB call sites */
int dc_invalidate(dc_cache *c, uint64_t address);
int dc_clean(dc_cache *c, uint64_t address);
int dc_clean_invalidate(dc_cache *c, uint64_t address);
int dc_invalidate_all(dc_cache *c);
int dc_clean_all(dc_cache *c);
int dc_clean_invalidate_all(dc_cache *c);
int dc_set_enabled(dc_cache *c, int on);
int dc_mpu_changed(dc_cache *c);
int dc_on_reset(dc_cache *c);
/* the eviction event of line la fired */
int dc_on_evict(dc_cache *c, uint64_t la);

/* the tracked, active region holding address (list order), or NULL */
dc_region *dc_region_of(dc_cache *c, uint64_t address);
/* the wanted region holding address whether active or not, or NULL (state look-ups) */
dc_region *dc_wanted_of(const dc_cache *c, uint64_t address);

#endif
