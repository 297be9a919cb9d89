/* RV32 machine-mode trap entry on unicorn's C API (the hot path of riscv.py).
 *
 * Plain C, no Python: the CPython binding (_core.c's RiscV) owns one dh_rv per core and calls
 * these. Here too: which interrupt is taken and whether it can be (MEI > MSI > MTI, the
 * mie/mstatus/privilege gating; _core.c's RiscV.take_interrupts applies them to the CPU's mip
 * shadow). What stays in Python (riscv.py, by design; no Python copy of what is here): the mip
 * shadow, ECALL/illegal/EBREAK/access-fault decoding, the event log. What is here touches the core: single register
 * reads and writes without ctypes, the batch read of the trap-entry state (mie, priv, mstatus, pc,
 * mtvec) and the trap-entry write sequence (mstatus stacking of MIE/MPIE/MPP, mepc, mcause, mtval,
 * privilege, pc through mtvec, direct or vectored) in riscv.py's order. unicorn runs mret itself
 * (architecturally right, see riscv.py).
 */
#ifndef DUOHIL_RISCV_H
#define DUOHIL_RISCV_H

#include <stdint.h>
#include <unicorn/unicorn.h>

/* trap-entry state, in riscv.py's _trap_in order */
enum { RV_ST_MIE, RV_ST_PRIV, RV_ST_MSTATUS, RV_ST_PC, RV_ST_MTVEC, RV_ST_N };

#define RV_ERR_UC (-4)       /* a register access failed: dh_rv.uc_err says which error */

#define RV_MSTATUS_MIE (1u << 3)
#define RV_MSTATUS_MPIE (1u << 7)
#define RV_MSTATUS_MPP (3u << 11)
#define RV_MCAUSE_INTERRUPT 0x80000000u
#define RV_PRIV_M 3u

typedef struct {
    uc_engine *uc;
    uc_err uc_err;           /* the last unicorn error behind an RV_ERR_UC */
} dh_rv;

/* One register, zero-extended into 64 bits as unicorn leaves it. 0 or RV_ERR_UC. */
int dh_rv_read(dh_rv *r, int reg, uint64_t *out);

/* One register written with the low 32 bits of `value`. 0 or RV_ERR_UC. */
int dh_rv_write(dh_rv *r, int reg, uint64_t value);

/* Read mie, priv, mstatus, pc, mtvec in one batch; below M-mode the CSRs are read at M (the
 * privilege raised, then put back): unicorn 2.1.4's register API reads machine CSRs as garbage
 * and drops their writes below M. 0 or RV_ERR_UC. */
int dh_rv_read_state(dh_rv *r, uint64_t out[RV_ST_N]);

/* mstatus after entry from privilege `priv`: MPIE <- MIE, MIE <- 0, MPP <- priv. */
uint32_t dh_rv_entry_mstatus(uint32_t mstatus, uint32_t priv);

/* Where entry goes: mtvec's base, + 4 * cause for an interrupt when mtvec is vectored (MODE 1). */
uint32_t dh_rv_entry_target(uint32_t cause, uint32_t mtvec);

/* Trap entry with `cause`, `epc`, `tval` from the state (priv, mstatus, mtvec). `in_hook`: the
 * core is executing or not in M-mode, so the pc goes on its own with uc_reg_write (the batch call
 * does not set skip_sync_pc_on_exit, see riscv.py);
 * otherwise mstatus, mepc, mcause, mtval and the pc go in one batch. The privilege is raised
 * first, before the CSR writes (dropped below M). Returns 0 with *target, or
 * RV_ERR_UC. */
int dh_rv_enter(dh_rv *r, uint32_t cause, uint32_t epc, uint32_t tval, uint32_t priv,
                uint32_t mstatus, uint32_t mtvec, int in_hook, uint32_t *target);

/* The interrupt taken among `pending` (pending in mip and enabled in mie; nonzero): the privileged
 * spec's order among the M-mode causes, MEI (11) > MSI (3) > MTI (7), then the highest other set
 * bit (platform causes >= 16 first). */
uint32_t dh_rv_pick_cause(uint64_t pending);

/* Whether `pending` (mip & mie) is taken now: something pending, and below M-mode or
 * mstatus.MIE set (riscv.py's take_interrupts rule). */
int dh_rv_takeable(uint64_t pending, uint64_t priv, uint64_t mstatus);

#endif
