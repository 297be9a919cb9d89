/*
 * A mark-sweep heap with Go-style (GOGC) pacing: the allocation model of the peer's garbage-collected
 * behaviour layer. Hardware-free, so the host unit tests compile it as is (tests/test_esp32_host.py).
 *
 * Heap: one arena of 8-byte-aligned blocks, each an 8-byte header followed by the object. A block's
 * size is gc_block_size(n) = round_up(8 + n, 8); the accounting below is always in block bytes.
 * Allocation is next-fit with forward coalescing; objects are zeroed (Go's mallocgc does the same).
 *
 * Pacing (README.md "GC model" is the spec):
 *   live      = block bytes marked by the previous cycle (0 before the first cycle)
 *   trigger   = max(live * GOGC / 100, min_trigger)
 *   A cycle runs *before* an allocation of b bytes when alloc_since + b > trigger, where alloc_since
 *   counts block bytes allocated since the previous cycle. GOGC < 0 turns pacing off. A cycle also runs
 *   when an allocation does not fit (counted as forced); if it still does not fit, gc_alloc returns
 *   NULL (counted as oom).
 *
 * Pause (stop-the-world; the caller sends nothing meanwhile):
 *   model_cycles = fixed_cycles + floor(mark_cycles_per_kib * live_after / 1024)
 *   The mark phase visits every root and pinned object, reads each of its words and charges the
 *   per-KiB cost through the burn hook object by object; sweep frees unmarked blocks and coalesces.
 *   The fixed part is charged last as a pad: burn(model_cycles - elapsed), elapsed read from the
 *   clock (cycles_per_tick CPU cycles per clock tick), so the walk, the sweep and the interrupts
 *   served inside the pause do not lengthen it; the pause lasts model_cycles of CPU time (or the work
 *   actually done, if that was longer, e.g. a harness stall). Measured with the clock around it all.
 */
#ifndef PEER_GCHEAP_H
#define PEER_GCHEAP_H

#include <stdint.h>

#define GC_HDR_SIZE     8u
#define GC_ALIGN        8u
#define GC_MAX_PINS     8u

#define GC_REASON_PACER 0u   /* allocation crossed the GOGC trigger */
#define GC_REASON_FULL  1u   /* allocation did not fit */

typedef struct {
    int32_t  gogc;                /* percent; < 0 = pacing off (collect only when full) */
    uint32_t min_trigger;         /* bytes: lower bound of the trigger (Go's minimum heap) */
    uint32_t mark_cycles_per_kib; /* CPU cycles charged per KiB of live heap */
    uint32_t fixed_cycles;        /* CPU cycles charged per cycle regardless of the heap */
} gc_params_t;

/* The port: burn CPU cycles for real (target) or in virtual time (host); read a monotonic clock. */
typedef void (*gc_burn_fn)(void *ctx, uint32_t cycles);
typedef uint64_t (*gc_clock_fn)(void *ctx);
/* Optional: told when a stop-the-world phase begins (1) and ends (0). */
typedef void (*gc_phase_fn)(void *ctx, int begin);

typedef struct {
    uint32_t count;            /* completed cycles */
    uint32_t forced;           /* of which GC_REASON_FULL */
    uint32_t oom;              /* allocations that failed after a cycle */
    uint32_t last_reason;
    uint32_t last_alloc_since; /* alloc_since when the last cycle started */
    uint32_t last_live;        /* block bytes marked by the last cycle */
    uint32_t last_freed;       /* block bytes freed by the last cycle */
    uint32_t last_cycles;      /* model_cycles of the last cycle */
    uint64_t last_start;       /* clock at the start / end of the last cycle */
    uint64_t last_end;
    uint64_t total_cycles;     /* sum of model_cycles */
    uint32_t mark_checksum;    /* sum of every word the mark phase read */
} gc_stats_t;

typedef struct {
    uint8_t    *base;
    uint32_t    size;          /* arena bytes, multiple of GC_ALIGN */
    uint32_t    rover;         /* next-fit start (block offset) */
    uint32_t    in_use;        /* block bytes in allocated blocks */
    uint32_t    live;          /* block bytes marked by the previous cycle */
    uint32_t    alloc_since;   /* block bytes allocated since the previous cycle */
    uint32_t    alloc_total;   /* block bytes allocated since init */
    gc_params_t p;
    void      **roots;         /* root table owned by the caller; NULL entries are skipped */
    uint32_t    nroots;
    void       *pins[GC_MAX_PINS];  /* temporaries kept alive (a goroutine stack's pointers) */
    uint32_t    npins;
    gc_burn_fn  burn;
    gc_clock_fn clock;
    gc_phase_fn phase;         /* optional, set after gc_init */
    uint32_t    cycles_per_tick; /* CPU cycles per clock tick (gc_init sets 1; target: 160/16 = 10) */
    void       *port_ctx;
    gc_stats_t  st;
} gc_heap_t;

uint32_t gc_block_size(uint32_t nbytes);
uint32_t gc_trigger(const gc_heap_t *h);
uint32_t gc_pause_cycles(const gc_params_t *p, uint32_t live_bytes);

void  gc_init(gc_heap_t *h, void *arena, uint32_t size, const gc_params_t *p,
              gc_burn_fn burn, gc_clock_fn clock, void *port_ctx);
void  gc_set_roots(gc_heap_t *h, void **roots, uint32_t nroots);
/* Allocate a zeroed object of nbytes; may run a cycle first. NULL when out of memory. */
void *gc_alloc(gc_heap_t *h, uint32_t nbytes);
/* Keep obj alive until gc_unpin_all (like a pointer on the goroutine's stack). 0 on success. */
int   gc_pin(gc_heap_t *h, void *obj);
void  gc_unpin_all(gc_heap_t *h);
void  gc_collect(gc_heap_t *h, uint32_t reason);

#endif
