/* Event heap of the native scheduler: entries ordered by (time_ps, seq).
 *
 * Plain C, no Python: the payload is an opaque pointer. The sift algorithm is the one Python's
 * heapq uses (push: sift the new leaf up; pop: move the last leaf to the root, sift it down to a
 * leaf along the smaller children, then back up), so that even two entries with equal keys come
 * out in the order the Python scheduler's heap gives them.
 */
#ifndef DUOHIL_EVHEAP_H
#define DUOHIL_EVHEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t t;          /* virtual time, picoseconds */
    int64_t seq;        /* scheduling order: breaks ties between same-time entries */
    void *item;
} dh_entry;

typedef struct {
    dh_entry *v;
    size_t n;
    size_t cap;
} dh_heap;

/* 0 on success, -1 when memory ran out (the heap is left as it was). */
int dh_push(dh_heap *h, int64_t t, int64_t seq, void *item);
/* Removes and returns the smallest entry; the heap must not be empty. */
dh_entry dh_pop(dh_heap *h);
void dh_free(dh_heap *h);
/* Restores the heap order of v[0..n) as heapq.heapify does (the same layout, not just an order). */
void dh_heapify(dh_heap *h);

static inline const dh_entry *dh_top(const dh_heap *h) { return h->n ? &h->v[0] : NULL; }

/* Push n pseudo-random keys and pop them all, checking the order; returns 0 when the order held.
 * For the benchmark's per-operation figure and a self-test. */
int dh_selftest(size_t n, uint64_t seed);

#endif
