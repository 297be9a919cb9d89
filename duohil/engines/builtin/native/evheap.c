/* Event heap of the native scheduler (see evheap.h). */
#include "evheap.h"

#include <stdlib.h>

static inline int lt(const dh_entry *a, const dh_entry *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

/* heapq's _siftdown: move v[pos] towards the root while it is smaller than its parent. */
static void sift_toward_root(dh_entry *v, size_t start, size_t pos)
{
    dh_entry x = v[pos];
    while (pos > start) {
        size_t parent = (pos - 1) >> 1;
        if (!lt(&x, &v[parent]))
            break;
        v[pos] = v[parent];
        pos = parent;
    }
    v[pos] = x;
}

/* heapq's _siftup: walk the hole at pos down to a leaf along the smaller children, put the
 * entry there and sift it back up. */
static void sift_to_leaf(dh_entry *v, size_t n, size_t pos)
{
    size_t start = pos;
    dh_entry x = v[pos];
    size_t child = 2 * pos + 1;
    while (child < n) {
        size_t right = child + 1;
        if (right < n && !lt(&v[child], &v[right]))
            child = right;
        v[pos] = v[child];
        pos = child;
        child = 2 * pos + 1;
    }
    v[pos] = x;
    sift_toward_root(v, start, pos);
}

int dh_push(dh_heap *h, int64_t t, int64_t seq, void *item)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        dh_entry *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = (dh_entry){t, seq, item};
    sift_toward_root(h->v, 0, h->n);
    h->n++;
    return 0;
}

dh_entry dh_pop(dh_heap *h)
{
    dh_entry last = h->v[--h->n];
    if (h->n == 0)
        return last;
    dh_entry top = h->v[0];
    h->v[0] = last;
    sift_to_leaf(h->v, h->n, 0);
    return top;
}

void dh_heapify(dh_heap *h)
{
    for (size_t i = h->n / 2; i-- > 0;)
        sift_to_leaf(h->v, h->n, i);
}

void dh_free(dh_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

int dh_selftest(size_t n, uint64_t seed)
{
    dh_heap h = {0};
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;       /* an LCG: keys only */
        if (dh_push(&h, (int64_t)(x >> 44), (int64_t)i, NULL) < 0) {
            dh_free(&h);
            return -1;
        }
    }
    dh_entry prev = {INT64_MIN, INT64_MIN, NULL};
    int bad = 0;
    while (h.n) {
        dh_entry e = dh_pop(&h);
        if (lt(&e, &prev))
            bad = 1;
        prev = e;
    }
    dh_free(&h);
    return bad;
}
