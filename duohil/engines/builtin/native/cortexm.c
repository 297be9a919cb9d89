/* Cortex-M7 exception entry and return (see cortexm.h: the one implementation). */
#include "cortexm.h"

#include <string.h>

#include "ucapi.h"

#define XPSR_T (1u << 24)
#define CONTROL_NPRIV 1u
#define CONTROL_SPSEL 2u
#define CONTROL_FPCA 4u
#define CONTROL_SFPA 8u     /* QEMU's v8-M SFPA, kept equal to FPCA (see cortexm.py) */
#define FP_N 17             /* S0-S15, FPSCR */

static const int ENTRY_IDS[CM_ENTRY_N] = {
    UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR,
    UC_ARM_REG_PC, UC_ARM_REG_XPSR, UC_ARM_REG_SP, UC_ARM_REG_CONTROL,
};
static const int RETURN_IDS[CM_RET_N] = {
    UC_ARM_REG_PC, UC_ARM_REG_MSP, UC_ARM_REG_PSP, UC_ARM_REG_CONTROL, UC_ARM_REG_XPSR,
    UC_ARM_REG_PRIMASK, UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK,
};
static const int FRAME_IDS[6] = {
    UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR,
};

/* A sequence of register writes, applied in order by one uc_reg_write_batch. */
typedef struct {
    int ids[48];
    uint32_t vals[48];
    int n;
} regseq;

static void put(regseq *w, int id, uint32_t v)
{
    w->ids[w->n] = id;
    w->vals[w->n] = v;
    w->n++;
}

static int flush(dh_cm *c, regseq *w)
{
    void *ptrs[48];
    for (int i = 0; i < w->n; i++)
        ptrs[i] = &w->vals[i];
    uc_err err = UC.reg_write_batch(c->uc, w->ids, ptrs, w->n);
    if (err != UC_ERR_OK) {
        c->uc_err = err;
        return CM_ERR_UC;
    }
    return 0;
}

static int read_batch(dh_cm *c, const int *ids, uint32_t *out, int n)
{
    void *ptrs[FP_N + 1];
    for (int i = 0; i < n; i++) {
        out[i] = 0;
        ptrs[i] = &out[i];
    }
    uc_err err = UC.reg_read_batch(c->uc, (int *)ids, ptrs, n);
    if (err != UC_ERR_OK) {
        c->uc_err = err;
        return CM_ERR_UC;
    }
    return 0;
}

static void fp_ids(int ids[FP_N])
{
    for (int i = 0; i < 16; i++)
        ids[i] = UC_ARM_REG_S0 + i;
    ids[16] = UC_ARM_REG_FPSCR;
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int dh_cm_read_entry(dh_cm *c, uint32_t out[CM_ENTRY_N])
{
    return read_batch(c, ENTRY_IDS, out, CM_ENTRY_N);
}

int dh_cm_read_return(dh_cm *c, uint32_t out[CM_RET_N])
{
    int rc = read_batch(c, RETURN_IDS, out, CM_RET_N);
    return rc ? rc : dh_cm_fix_masks(c, out[CM_RET_CONTROL], out[CM_RET_XPSR], &out[CM_RET_PRIMASK]);
}

#define IPSR_MASK 0x1FFu

int dh_cm_fix_masks(dh_cm *c, uint32_t control, uint32_t xpsr, uint32_t masks[3])
{
    static const int MASK_IDS[3] = {UC_ARM_REG_PRIMASK, UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK};
    if (!(control & CONTROL_NPRIV) || (xpsr & IPSR_MASK))
        return 0;                        /* privileged: the MRS-style read gave the real values */
    uint32_t handler = 1, thread = 0;
    uc_err err = UC.reg_write(c->uc, UC_ARM_REG_IPSR, &handler);
    int rc = err != UC_ERR_OK ? (c->uc_err = err, CM_ERR_UC) : read_batch(c, MASK_IDS, masks, 3);
    err = UC.reg_write(c->uc, UC_ARM_REG_IPSR, &thread);   /* back, whatever happened */
    if (!rc && err != UC_ERR_OK) {
        c->uc_err = err;
        rc = CM_ERR_UC;
    }
    return rc;
}

int dh_cm_read_masks(dh_cm *c, uint32_t masks[3])
{
    static const int IDS[5] = {UC_ARM_REG_CONTROL, UC_ARM_REG_XPSR, UC_ARM_REG_PRIMASK,
                               UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK};
    uint32_t r[5];
    int rc = read_batch(c, IDS, r, 5);
    if (rc)
        return rc;
    memcpy(masks, r + 2, sizeof(uint32_t) * 3);
    return dh_cm_fix_masks(c, r[0], r[1], masks);
}

static uint32_t frame_size(uint32_t control)
{
    return control & CONTROL_FPCA ? 0x68u : 0x20u;
}

uint32_t dh_cm_frame_sp(const uint32_t regs[CM_ENTRY_N])
{
    return (regs[CM_SP] - frame_size(regs[CM_CONTROL])) & ~7u;
}

int dh_cm_stack(dh_cm *c, const uint32_t regs[CM_ENTRY_N], uint32_t pc)
{
    uint32_t size = frame_size(regs[CM_CONTROL]);
    uint32_t below = regs[CM_SP] - size;
    uint8_t frame[0x68];
    for (int i = 0; i < 6; i++)
        le32(frame + 4 * i, regs[i]);
    le32(frame + 24, pc & ~1u);
    le32(frame + 28, (regs[CM_XPSR] & ~0x200u) | (below & 4u ? 0x200u : 0u));
    if (size == 0x68) {
        int ids[FP_N];
        uint32_t fp[FP_N];
        fp_ids(ids);
        int rc = read_batch(c, ids, fp, FP_N);
        if (rc)
            return rc;
        for (int i = 0; i < FP_N; i++)
            le32(frame + 0x20 + 4 * i, fp[i]);
        le32(frame + 0x64, 0);
    }
    if (UC.mem_write(c->uc, below & ~7u, frame, size) != UC_ERR_OK)
        return CM_ERR_STACK;
    return 0;
}

static int vector(dh_cm *c, uint32_t vtor, uint32_t exc, uint32_t *vec)
{
    uint8_t b[4];
    if (UC.mem_read(c->uc, (uint32_t)(vtor + 4u * exc), b, 4) != UC_ERR_OK)
        return CM_ERR_VECTOR;
    *vec = rd32(b);
    return 0;
}

int dh_cm_enter(dh_cm *c, const uint32_t regs[CM_ENTRY_N], uint32_t exc, uint32_t vtor,
                uint32_t *vec)
{
    uint32_t control = regs[CM_CONTROL], handler = regs[CM_XPSR] & 0x1FFu;
    uint32_t exc_return = handler ? 0xFFFFFFF1u : (control & CONTROL_SPSEL ? 0xFFFFFFFDu : 0xFFFFFFF9u);
    if (control & CONTROL_FPCA)
        exc_return &= ~0x10u;
    int rc = vector(c, vtor, exc, vec);
    if (rc)
        return rc;
    regseq w;
    w.n = 0;
    put(&w, UC_ARM_REG_SP, dh_cm_frame_sp(regs));
    uint32_t lazy = CONTROL_FPCA | CONTROL_SPSEL | CONTROL_SFPA;
    if (!handler && control & CONTROL_NPRIV) {
        /* unprivileged thread: become privileged (IPSR) first; SPSEL stays set (*deviation) */
        put(&w, UC_ARM_REG_XPSR, XPSR_T | exc);
        put(&w, UC_ARM_REG_CONTROL, control & ~(CONTROL_FPCA | CONTROL_SFPA));
    } else if (control & lazy) {
        put(&w, UC_ARM_REG_CONTROL, control & ~lazy);
        put(&w, UC_ARM_REG_XPSR, XPSR_T | exc);
    } else {
        put(&w, UC_ARM_REG_XPSR, XPSR_T | exc);
    }
    put(&w, UC_ARM_REG_LR, exc_return);
    put(&w, UC_ARM_REG_PC, *vec);
    return flush(c, &w);
}

int dh_cm_tail_chain(dh_cm *c, uint32_t exc, uint32_t exc_return, uint32_t vtor,
                     int clear_faultmask, uint32_t *vec)
{
    regseq w;
    w.n = 0;
    if (clear_faultmask) {
        /* part of the return (ExceptionReturn clears it before the tail-chain's entry): done even
         * when the vector read below fails and the core locks up */
        put(&w, UC_ARM_REG_FAULTMASK, 0);
        int rc = flush(c, &w);
        if (rc)
            return rc;
        w.n = 0;
    }
    int rc = vector(c, vtor, exc, vec);
    if (rc)
        return rc;
    put(&w, UC_ARM_REG_XPSR, XPSR_T | exc);
    put(&w, UC_ARM_REG_LR, exc_return);
    put(&w, UC_ARM_REG_PC, *vec);
    return flush(c, &w);
}

int dh_cm_unstack(dh_cm *c, uint32_t sp, uint32_t exc_return, uint32_t control, int clear_faultmask,
                  uint32_t out[CM_UN_N])
{
    int to_thread = (exc_return & 8u) != 0, use_psp = (exc_return & 4u) != 0;
    int fp = !(exc_return & 0x10u);
    uint32_t size = fp ? 0x68u : 0x20u;
    uint8_t data[0x68];
    if (UC.mem_read(c->uc, sp, data, size) != UC_ERR_OK)
        return CM_ERR_UNSTACK;
    uint32_t f[8];
    for (int i = 0; i < 8; i++)
        f[i] = rd32(data + 4 * i);
    uint32_t st_xpsr = f[7];
    /* ExceptionReturn()'s check after PopStack (ARMv7-M ARM B1.5.8; QEMU target/arm/m_helper.c
     * do_v7m_exception_exit, unicorn-engine/unicorn 8c3d5f69): the restored IPSR must be 0 in
     * thread mode and not 0 in handler mode. Refused before anything is written: the caller
     * takes the UsageFault on this frame, which is where PushStack() would put it back. */
    if (!(st_xpsr & 0x1FFu) != !!to_thread)
        return CM_ERR_INVPC;
    uint32_t new_sp = sp + size + (st_xpsr & 0x200u ? 4u : 0u);
    uint32_t want = (control & ~(CONTROL_FPCA | CONTROL_SPSEL | CONTROL_SFPA))
                    | (fp ? CONTROL_FPCA | CONTROL_SFPA : 0u)
                    | (to_thread && use_psp ? CONTROL_SPSEL : 0u);
    uint32_t new_xpsr = st_xpsr & ~0x200u;               /* IPSR checked above */
    regseq w;
    w.n = 0;
    if (clear_faultmask)
        put(&w, UC_ARM_REG_FAULTMASK, 0);
    if (!clear_faultmask && !fp && want == control) {
        /* the common return: basic frame, CONTROL unchanged, FAULTMASK not touched */
        put(&w, UC_ARM_REG_XPSR, new_xpsr);
        put(&w, UC_ARM_REG_SP, new_sp);
    } else {
        uint32_t diff = want ^ control;
        if (diff & CONTROL_FPCA || (to_thread && diff & CONTROL_SPSEL)) {
            if (to_thread) {
                put(&w, UC_ARM_REG_CONTROL, want & ~CONTROL_NPRIV);
                put(&w, UC_ARM_REG_XPSR, new_xpsr);
                put(&w, UC_ARM_REG_CONTROL, want);
            } else {
                put(&w, UC_ARM_REG_CONTROL, want);
                put(&w, UC_ARM_REG_XPSR, new_xpsr);
            }
        } else {
            put(&w, UC_ARM_REG_XPSR, new_xpsr);
        }
        put(&w, UC_ARM_REG_SP, new_sp);
    }
    for (int i = 0; i < 6; i++)
        put(&w, FRAME_IDS[i], f[i]);
    if (fp) {
        int ids[FP_N];
        fp_ids(ids);
        for (int i = 0; i < FP_N; i++)
            put(&w, ids[i], rd32(data + 0x20 + 4 * i));
    }
    put(&w, UC_ARM_REG_PC, f[6] | 1u);
    int rc = flush(c, &w);
    if (rc)
        return rc;
    memcpy(out, f, 7 * sizeof f[0]);
    out[CM_UN_SP] = new_sp;
    out[CM_UN_XPSR] = new_xpsr;
    return 0;
}
