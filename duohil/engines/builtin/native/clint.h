/* RISC-V CLINT timer state: mtime derived from virtual time, mtimecmp per hart, and the MTIP
 * decision (clint.py's CoreLevelInterruptor builds it: the one copy).
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
    uint64_t f_red, d_red;       /* frequency / (divider * 1e12), reduced: ticks in 64 bits */
    int64_t t_max;               /* ... for 0 <= t_ps <= t_max (-1: never) */
    int harts;
    __int128 offset;             /* mtime = offset + ticks(t) (mod 2**64) */
    uint64_t *mtimecmp;          /* harts entries */
    /* the register map (clint.py's RegisterBank under python): what the bus last wrote to each
     * register, which a byte or halfword write merges with (reset 0) */
    uint32_t *msip_reg;          /* harts */
    uint32_t *cmp_reg;           /* 2 * harts: low, high */
    uint32_t mtime_reg[2];
    /* ticks(t) for the last t asked (a polling loop reads mtime many times at one slice's time:
     * one 64-bit division per slice, not per read) */
    int64_t tk_t;
    __int128 tk_v;
    int tk_set;
} dh_clint;

/* the registers of the map (dh_clint_decode) */
enum { CLR_NONE, CLR_MSIP, CLR_CMP_LO, CLR_CMP_HI, CLR_MTIME_LO, CLR_MTIME_HI };

/* what clint.py must do after dh_clint_update, in this order */
#define CL_LOWER 1               /* MTIP low */
#define CL_CANCEL 2              /* cancel the hart's pending MTIP event */
#define CL_RAISE 4               /* MTIP high */
#define CL_SCHEDULE 8            /* schedule the hart's MTIP event at *t */

/* 0, or -1 when the compare array cannot be allocated. Reset state: offset 0, mtimecmp all ones. */
int dh_clint_init(dh_clint *c, int64_t frequency, int64_t divider, int harts);
void dh_clint_free(dh_clint *c);

uint64_t dh_clint_mtime(dh_clint *c, int64_t now);

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

/* The register holding byte `offset` (all are 32-bit words): CLR_* with *n the hart, *shift the
 * byte offset inside the word; CLR_NONE for an offset the map does not model. */
int dh_clint_decode(const dh_clint *c, uint32_t offset, int *n, unsigned *shift);

/* What a bus read of that register returns before the byte shift (mtime at `now`). */
uint32_t dh_clint_reg_read(dh_clint *c, int reg, int n, int64_t now);

/* The 32-bit value a write of `size` bytes at byte `shift` leaves in register value `old`
 * (RegisterBank.write for a plain read/write register). */
uint32_t dh_reg_merge(uint32_t old, unsigned shift, unsigned size, uint64_t value);

/* What a read of `size` bytes at byte `shift` of a register reading `v` returns. */
uint64_t dh_reg_extract(uint32_t v, unsigned shift, unsigned size);

#endif
