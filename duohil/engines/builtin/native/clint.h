/* RISC-V CLINT timer state: mtime derived from virtual time, mtimecmp per hart, and the MTIP
 * decision (the hot path of clint.py under DUOHIL_MODELS=native).
 *
 * Plain C, no Python: the CPython binding (_core.c's Clint) owns one dh_clint per CLINT and the
 * Python model (clint.py) keeps the register map, the output signals and the scheduler events,
 * reading and writing this state (one source of truth). mtime is not a counter: mtime = offset +
 * floor(t_ps * frequency / (divider * 1e12)); MTIP is due at the first picosecond where
 * mtime >= mtimecmp. Arithmetic is in 128 bits, as Python's integers would be for these ranges.
 */
#ifndef DUOHIL_CLINT_H
#define DUOHIL_CLINT_H

#include <stdint.h>

typedef struct {
    int64_t frequency, divider;
    int harts;
    __int128 offset;             /* mtime = offset + ticks(t) (mod 2**64) */
    uint64_t *mtimecmp;          /* harts entries */
} dh_clint;

/* what clint.py must do after dh_clint_update, in this order */
#define CL_LOWER 1               /* MTIP low */
#define CL_CANCEL 2              /* cancel the hart's pending MTIP event */
#define CL_RAISE 4               /* MTIP high */
#define CL_SCHEDULE 8            /* schedule the hart's MTIP event at *t */

/* 0, or -1 when the compare array cannot be allocated. Reset state: offset 0, mtimecmp all ones. */
int dh_clint_init(dh_clint *c, int64_t frequency, int64_t divider, int harts);
void dh_clint_free(dh_clint *c);

uint64_t dh_clint_mtime(const dh_clint *c, int64_t now);

/* A 32-bit half (shift 0 or 32) of mtime written at `now`: the time base moves for every hart. */
void dh_clint_set_mtime(dh_clint *c, uint32_t value, int shift, int64_t now);

/* A 32-bit half (shift 0 or 32) of hart n's mtimecmp written. */
void dh_clint_set_cmp(dh_clint *c, int n, uint32_t value, int shift);

/* Reset at `now`: mtime restarts at 0, every mtimecmp all ones. */
void dh_clint_reset(dh_clint *c, int64_t now);

/* Hart n's MTIP at `now`, given the output's level and its pending event (has_ev, ev_time):
 * CL_* flags, with *t set for CL_SCHEDULE. Compare values more than 2**40 ticks ahead are not
 * scheduled (an RV32 firmware writes the high word all ones first), nor due times past 2**63 - 1
 * ps; an event already scheduled re-checks when it fires. */
int dh_clint_update(const dh_clint *c, int n, int64_t now, int level, int has_ev, int64_t ev_time,
                    int64_t *t);

#endif
