/* Cortex-M7 exception entry and return on unicorn's C API (the hot path of cortexm.py).
 *
 * Plain C, no Python: the CPython binding (_core.c's CortexM) owns one dh_cm per core and calls
 * these. What stays in Python (cortexm.py, by design; no Python copy of what is here): the
 * decisions of the cases that are not plain (storm and hang checks, the MPU's
 * stacking check, fault escalation and lockup, the event log (which exception is taken and
 * when is nvic.c's, driven by _core.c's CortexM.take). What is here is everything that
 * touches the core: reading the registers, building and writing the stack frame (basic and FP
 * extended), reading the vector, and the exact register write sequences of entry, tail-chain and
 * return that cortexm.py documents (QEMU's MSR semantics make their order matter).
 */
#ifndef DUOHIL_CORTEXM_H
#define DUOHIL_CORTEXM_H

#include <stdint.h>
#include <unicorn/unicorn.h>

/* ENTRY registers, in cortexm.py's ENTRY_REGS order */
enum { CM_R0, CM_R1, CM_R2, CM_R3, CM_R12, CM_LR, CM_PC, CM_XPSR, CM_SP, CM_CONTROL, CM_ENTRY_N };
/* RETURN registers, in cortexm.py's RETURN_REGS order */
enum { CM_RET_PC, CM_RET_MSP, CM_RET_PSP, CM_RET_CONTROL, CM_RET_XPSR, CM_RET_PRIMASK,
       CM_RET_BASEPRI, CM_RET_FAULTMASK, CM_RET_N };
/* what unstacking gives back: the 7 stacked words R0-R3, R12, LR, PC, then the new SP and xPSR */
enum { CM_UN_PC = 6, CM_UN_SP = 7, CM_UN_XPSR = 8, CM_UN_N = 9 };

#define CM_ERR_STACK (-1)    /* the frame could not be written (nothing else was done) */
#define CM_ERR_VECTOR (-2)   /* the vector table could not be read (no register written) */
#define CM_ERR_UNSTACK (-3)  /* the frame could not be read (no register written) */
#define CM_ERR_UC (-4)       /* a register access failed: dh_cm.uc_err says which error */
#define CM_ERR_INVPC (-5)    /* the frame's IPSR disagrees with the mode returned to (nothing written) */

typedef struct {
    uc_engine *uc;
    uc_err uc_err;           /* the last unicorn error behind a CM_ERR_UC */
} dh_cm;

/* Read R0-R3, R12, LR, PC, xPSR, SP, CONTROL. Returns 0 or CM_ERR_UC. */
int dh_cm_read_entry(dh_cm *c, uint32_t out[CM_ENTRY_N]);

/* Read PC, MSP, PSP, CONTROL, xPSR, PRIMASK, BASEPRI, FAULTMASK. Returns 0 or CM_ERR_UC. */
int dh_cm_read_return(dh_cm *c, uint32_t out[CM_RET_N]);

/* PRIMASK, BASEPRI, FAULTMASK as the core holds them. unicorn reads them with MRS semantics
 * (QEMU's v7m_mrs), which give 0 to unprivileged thread code; the engine needs the real values
 * (masks set before dropping privilege still mask). dh_cm_fix_masks re-reads `masks` when
 * `control`/`xpsr` say the thread is unprivileged, as a handler would: IPSR set to 1 for the read
 * and back to 0 (QEMU's write_v7m_exception moves SP with the mode and moves it back; nothing else
 * changes). dh_cm_read_masks reads CONTROL, xPSR and the masks and does the same. 0 or CM_ERR_UC. */
int dh_cm_fix_masks(dh_cm *c, uint32_t control, uint32_t xpsr, uint32_t masks[3]);
int dh_cm_read_masks(dh_cm *c, uint32_t masks[3]);

/* Where entry puts the frame for these registers: (SP - size) & ~7, size 0x68 with FPCA. */
uint32_t dh_cm_frame_sp(const uint32_t regs[CM_ENTRY_N]);

/* Write the frame of `regs` (stacked PC = `pc`) below their SP: R0-R3, R12, LR, PC, xPSR with
 * bit 9 saying whether 4 bytes of alignment were added; with CONTROL.FPCA also S0-S15, FPSCR and
 * a reserved word (FP frames are stacked eagerly). Returns 0, CM_ERR_STACK or CM_ERR_UC. */
int dh_cm_stack(dh_cm *c, const uint32_t regs[CM_ENTRY_N], uint32_t pc);

/* Enter exception `exc` from `regs` with the frame at dh_cm_frame_sp(regs): read its vector at
 * vtor + 4 * exc, then write SP, CONTROL/xPSR (in the order QEMU needs), LR = EXC_RETURN and
 * PC = vector. Returns 0 with *vec, CM_ERR_VECTOR or CM_ERR_UC. */
int dh_cm_enter(dh_cm *c, const uint32_t regs[CM_ENTRY_N], uint32_t exc, uint32_t vtor,
                uint32_t *vec);

/* Tail-chain into `exc` at an exception return: the frame stays, the handler gets the same
 * EXC_RETURN; FAULTMASK is cleared first when `clear_faultmask` (even if the vector read then
 * fails: the return itself clears it). 0 with *vec, or an error. */
int dh_cm_tail_chain(dh_cm *c, uint32_t exc, uint32_t exc_return, uint32_t vtor,
                     int clear_faultmask, uint32_t *vec);

/* Return through `exc_return` with the frame at `sp` (the stack it names), CONTROL as read:
 * read the frame (basic or extended), write xPSR/CONTROL, SP, R0-R3, R12, LR, the FP registers
 * and PC in cortexm.py's order. Returns 0 with `out` (CM_UN_N words), CM_ERR_UNSTACK,
 * CM_ERR_INVPC (the integrity check on the stacked xPSR: IPSR 0 for a return to handler mode,
 * not 0 for a return to thread mode; ARMv7-M ARM B1.5.8) or CM_ERR_UC. */
int dh_cm_unstack(dh_cm *c, uint32_t sp, uint32_t exc_return, uint32_t control, int clear_faultmask,
                  uint32_t out[CM_UN_N]);

#endif
