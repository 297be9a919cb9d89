/* The MMIO bus of one machine: which register block answers an address (machine.py's bus_target).
 *
 * Plain C, no Python: a sorted table of non-overlapping ranges [base, end), each with the block's
 * target. A target is either a native model (its dh_mmio_ops from ports.h and its C state) or
 * opaque references the CPython glue (_core.c's Bus) owns and calls (a Python model's read and
 * write). The offset handed to a target is relative to its range's base, as bus_target's is.
 */
#ifndef DUOHIL_BUS_H
#define DUOHIL_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "ports.h"

typedef struct {
    uint64_t base, end;
    const dh_mmio_ops *ops;     /* native model: its operations and state; NULL: a glue target */
    void *self;
    void *rd, *wr, *owner;      /* glue target (owned by the glue): read, write, the model */
} dh_bus_range;

typedef struct {
    dh_bus_range *r;            /* sorted by base */
    size_t n, cap;
    size_t last;                /* the range of the previous hit (a loop polls one block) */
} dh_bus_table;

void dh_bus_init(dh_bus_table *t);
void dh_bus_free(dh_bus_table *t);

/* Insert a range in order. 0; -1 when it overlaps one already there or memory runs out (*why
 * says which: 1 overlap, 2 memory). */
int dh_bus_add(dh_bus_table *t, const dh_bus_range *range, int *why);

/* Drop every range (the glue releases its references first). */
void dh_bus_clear(dh_bus_table *t);

/* The range holding `address`, or NULL (a hole). */
const dh_bus_range *dh_bus_find(dh_bus_table *t, uint64_t address);

#endif
