/* Mark-sweep heap with GOGC pacing: see gcheap.h for the model and README.md "GC model". */
#include "gcheap.h"

#include <stddef.h>
#include <string.h>

/* Block header: size in bytes (multiple of 8, header included) with two flag bits in the low bits. */
#define HDR_ALLOC   1u
#define HDR_MARK    2u
#define HDR_FLAGS   (HDR_ALLOC | HDR_MARK)

typedef struct {
    uint32_t word;      /* size | flags */
    uint32_t tag;       /* allocation sequence number (debug aid; also read by the mark walk) */
} gc_hdr_t;

static gc_hdr_t *hdr_at(const gc_heap_t *h, uint32_t off) { return (gc_hdr_t *)(void *)(h->base + off); }
static uint32_t hdr_size(const gc_hdr_t *b) { return b->word & ~HDR_FLAGS; }
static gc_hdr_t *hdr_of(const gc_heap_t *h, const void *obj)
{
    (void)h;
    return (gc_hdr_t *)(void *)((uint8_t *)(uintptr_t)obj - GC_HDR_SIZE);
}

uint32_t gc_block_size(uint32_t nbytes)
{
    return (GC_HDR_SIZE + nbytes + (GC_ALIGN - 1u)) & ~(GC_ALIGN - 1u);
}

uint32_t gc_trigger(const gc_heap_t *h)
{
    uint32_t t = 0;
    if (h->p.gogc >= 0) {
        /* live <= 64 KiB and gogc <= PEER_GOGC_MAX (config.h) keep this within 32 bits */
        t = h->live * (uint32_t)h->p.gogc / 100u;
    }
    return t > h->p.min_trigger ? t : h->p.min_trigger;
}

uint32_t gc_pause_cycles(const gc_params_t *p, uint32_t live_bytes)
{
    /* floor(k * live / 1024) without a 64-bit product: k*q + floor(k*r/1024), r < 1024 */
    uint32_t q = live_bytes >> 10, r = live_bytes & 1023u;
    return p->fixed_cycles + p->mark_cycles_per_kib * q +
           (uint32_t)(((uint64_t)p->mark_cycles_per_kib * r) >> 10);
}

void gc_init(gc_heap_t *h, void *arena, uint32_t size, const gc_params_t *p,
             gc_burn_fn burn, gc_clock_fn clock, void *port_ctx)
{
    memset(h, 0, sizeof *h);
    h->base = (uint8_t *)arena;
    h->size = size & ~(GC_ALIGN - 1u);
    h->p = *p;
    h->burn = burn;
    h->clock = clock;
    h->port_ctx = port_ctx;
    h->cycles_per_tick = 1;
    gc_hdr_t *b = hdr_at(h, 0);
    b->word = h->size;            /* one free block spanning the arena */
    b->tag = 0;
}

void gc_set_roots(gc_heap_t *h, void **roots, uint32_t nroots)
{
    h->roots = roots;
    h->nroots = nroots;
}

int gc_pin(gc_heap_t *h, void *obj)
{
    if (h->npins >= GC_MAX_PINS) {
        return -1;
    }
    h->pins[h->npins++] = obj;
    return 0;
}

void gc_unpin_all(gc_heap_t *h)
{
    h->npins = 0;
}

/* Merge the free blocks that follow the free block at off into it. */
static void coalesce_forward(gc_heap_t *h, uint32_t off)
{
    gc_hdr_t *b = hdr_at(h, off);
    uint32_t size = hdr_size(b);
    while (off + size < h->size) {
        const gc_hdr_t *n = hdr_at(h, off + size);
        if (n->word & HDR_ALLOC) {
            break;
        }
        if (off + size == h->rover) {
            h->rover = off;       /* never leave the rover inside a merged block */
        }
        size += hdr_size(n);
    }
    b->word = size;
}

/* Next-fit search from `from` to the end of the arena. Returns the block offset or -1. */
static int32_t find_fit(gc_heap_t *h, uint32_t from, uint32_t bs)
{
    uint32_t off = from;
    while (off < h->size) {
        gc_hdr_t *b = hdr_at(h, off);
        if (hdr_size(b) == 0) {
            return -1;            /* corrupted arena: fail the allocation rather than loop */
        }
        if (!(b->word & HDR_ALLOC)) {
            coalesce_forward(h, off);
            if (hdr_size(b) >= bs) {
                return (int32_t)off;
            }
        }
        off += hdr_size(b);
    }
    return -1;
}

static void *take(gc_heap_t *h, uint32_t bs)
{
    int32_t off = find_fit(h, h->rover, bs);
    if (off < 0 && h->rover != 0) {
        off = find_fit(h, 0, bs);
    }
    if (off < 0) {
        return NULL;
    }
    gc_hdr_t *b = hdr_at(h, (uint32_t)off);
    uint32_t rest = hdr_size(b) - bs;
    if (rest != 0) {
        /* the remainder is a multiple of 8, so even a header-only free block is exact */
        gc_hdr_t *r = hdr_at(h, (uint32_t)off + bs);
        r->word = rest;
        r->tag = 0;
    }
    b->word = bs | HDR_ALLOC;
    b->tag = h->st.count;
    h->rover = (uint32_t)off + bs < h->size ? (uint32_t)off + bs : 0;
    void *obj = (uint8_t *)b + GC_HDR_SIZE;
    memset(obj, 0, bs - GC_HDR_SIZE);
    return obj;
}

void *gc_alloc(gc_heap_t *h, uint32_t nbytes)
{
    uint32_t bs = gc_block_size(nbytes);
    if (h->p.gogc >= 0 && h->alloc_since + bs > gc_trigger(h)) {
        gc_collect(h, GC_REASON_PACER);
    }
    void *obj = take(h, bs);
    if (obj == NULL) {
        gc_collect(h, GC_REASON_FULL);
        obj = take(h, bs);
        if (obj == NULL) {
            h->st.oom++;
            return NULL;
        }
    }
    h->alloc_since += bs;
    h->alloc_total += bs;
    h->in_use += bs;
    return obj;
}

/* ---- collection ---- */

typedef struct {
    uint32_t marked;    /* block bytes marked so far */
    uint32_t charged;   /* per-KiB cycles charged so far */
    uint32_t sum;       /* checksum of the words read */
} mark_ctx_t;

static void mark_object(gc_heap_t *h, mark_ctx_t *m, void *obj)
{
    if (obj == NULL) {
        return;
    }
    gc_hdr_t *b = hdr_of(h, obj);
    if ((b->word & (HDR_ALLOC | HDR_MARK)) != HDR_ALLOC) {
        return;           /* already marked (or not an object: ignored, as a conservative GC would) */
    }
    b->word |= HDR_MARK;
    uint32_t size = hdr_size(b);
    /* Scan the whole block, header included, the way a conservative collector reads every word. */
    const volatile uint32_t *w = (const volatile uint32_t *)(void *)b;
    uint32_t sum = m->sum;
    for (uint32_t i = 0; i < size / 4u; i++) {
        sum += w[i];
    }
    m->sum = sum;
    m->marked += size;
    /* Charge the per-KiB cost up to floor(k * marked / 1024): the total is exact, spread per object. */
    gc_params_t per_kib = h->p;
    per_kib.fixed_cycles = 0;
    uint32_t due = gc_pause_cycles(&per_kib, m->marked);
    if (h->burn != NULL && due > m->charged) {
        h->burn(h->port_ctx, due - m->charged);
    }
    m->charged = due;
}

static uint32_t sweep(gc_heap_t *h)
{
    uint32_t freed = 0, off = 0;
    int32_t prev_free = -1;
    while (off < h->size) {
        gc_hdr_t *b = hdr_at(h, off);
        uint32_t size = hdr_size(b);
        if (size == 0) {
            break;                /* corrupted arena */
        }
        if ((b->word & (HDR_ALLOC | HDR_MARK)) == HDR_ALLOC) {
            freed += size;
            b->word = size;               /* now free */
        } else {
            b->word &= ~HDR_MARK;
        }
        if (!(b->word & HDR_ALLOC)) {
            if (prev_free >= 0) {
                gc_hdr_t *p = hdr_at(h, (uint32_t)prev_free);
                p->word = hdr_size(p) + size;
            } else {
                prev_free = (int32_t)off;
            }
        } else {
            prev_free = -1;
        }
        off += size;
    }
    return freed;
}

void gc_collect(gc_heap_t *h, uint32_t reason)
{
    if (h->phase != NULL) {
        h->phase(h->port_ctx, 1);
    }
    uint64_t start = h->clock != NULL ? h->clock(h->port_ctx) : 0;
    mark_ctx_t m = { 0u, 0u, 0u };

    for (uint32_t i = 0; i < h->nroots; i++) {
        mark_object(h, &m, h->roots[i]);
    }
    for (uint32_t i = 0; i < h->npins; i++) {
        mark_object(h, &m, h->pins[i]);
    }
    uint32_t freed = sweep(h);
    uint32_t model = gc_pause_cycles(&h->p, m.marked);
    if (h->burn != NULL) {
        /* pad to the model: the fixed part absorbs the walk, the sweep and interrupt service */
        uint64_t elapsed = h->clock != NULL ? (h->clock(h->port_ctx) - start) * h->cycles_per_tick
                                            : m.charged;
        if (elapsed < model) {
            h->burn(h->port_ctx, (uint32_t)(model - elapsed));
        }
    }

    h->st.last_alloc_since = h->alloc_since;
    h->in_use -= freed;
    h->live = m.marked;
    h->alloc_since = 0;
    h->rover = 0;
    h->st.count++;
    if (reason == GC_REASON_FULL) {
        h->st.forced++;
    }
    h->st.last_reason = reason;
    h->st.last_live = m.marked;
    h->st.last_freed = freed;
    h->st.last_cycles = model;
    h->st.total_cycles += h->st.last_cycles;
    h->st.mark_checksum = m.sum;
    h->st.last_start = start;
    h->st.last_end = h->clock != NULL ? h->clock(h->port_ctx) : 0;
    if (h->phase != NULL) {
        h->phase(h->port_ctx, 0);
    }
}
