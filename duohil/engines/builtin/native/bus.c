/* The MMIO bus table: see bus.h. */
#include "bus.h"

#include <stdlib.h>
#include <string.h>

void dh_bus_init(dh_bus_table *t)
{
    memset(t, 0, sizeof *t);
}

void dh_bus_free(dh_bus_table *t)
{
    free(t->r);
    memset(t, 0, sizeof *t);
}

void dh_bus_clear(dh_bus_table *t)
{
    t->n = 0;
    t->last = 0;
}

/* the number of ranges whose base is <= address (bisect.bisect_right) */
static size_t upper(const dh_bus_table *t, uint64_t address)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->r[mid].base <= address)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int dh_bus_add(dh_bus_table *t, const dh_bus_range *range, int *why)
{
    size_t i = upper(t, range->base);
    if ((i > 0 && t->r[i - 1].end > range->base) || (i < t->n && t->r[i].base < range->end)) {
        *why = 1;
        return -1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        dh_bus_range *r = realloc(t->r, cap * sizeof *r);
        if (!r) {
            *why = 2;
            return -1;
        }
        t->r = r;
        t->cap = cap;
    }
    memmove(&t->r[i + 1], &t->r[i], (t->n - i) * sizeof *t->r);
    t->r[i] = *range;
    t->n++;
    t->last = 0;
    return 0;
}

const dh_bus_range *dh_bus_find(dh_bus_table *t, uint64_t address)
{
    if (t->last < t->n) {
        const dh_bus_range *r = &t->r[t->last];
        if (r->base <= address && address < r->end)
            return r;
    }
    size_t i = upper(t, address);
    if (i == 0 || address >= t->r[i - 1].end)
        return NULL;
    t->last = i - 1;
    return &t->r[i - 1];
}
