/* RV32 machine-mode trap entry on unicorn's C API: see riscv.h. */
#include "riscv.h"

#include <unicorn/riscv.h>

#include "ucapi.h"

static int fail(dh_rv *r, uc_err err)
{
    r->uc_err = err;
    return RV_ERR_UC;
}

int dh_rv_read(dh_rv *r, int reg, uint64_t *out)
{
    uint64_t v = 0;
    uc_err err = UC.reg_read(r->uc, reg, &v);
    if (err != UC_ERR_OK)
        return fail(r, err);
    *out = v;
    return 0;
}

int dh_rv_write(dh_rv *r, int reg, uint64_t value)
{
    uint64_t v = value & 0xFFFFFFFFu;
    uc_err err = UC.reg_write(r->uc, reg, &v);
    return err != UC_ERR_OK ? fail(r, err) : 0;
}

static const int state_regs[RV_ST_N] = {UC_RISCV_REG_MIE, UC_RISCV_REG_PRIV, UC_RISCV_REG_MSTATUS,
                                        UC_RISCV_REG_PC, UC_RISCV_REG_MTVEC};

int dh_rv_read_state(dh_rv *r, uint64_t out[RV_ST_N])
{
    void *ptrs[RV_ST_N];
    for (int i = 0; i < RV_ST_N; i++) {
        out[i] = 0;
        ptrs[i] = &out[i];
    }
    uc_err err = UC.reg_read_batch(r->uc, (int *)state_regs, ptrs, RV_ST_N);
    if (err != UC_ERR_OK)
        return fail(r, err);
    uint64_t priv = out[RV_ST_PRIV];
    if (priv == RV_PRIV_M)
        return 0;
    /* below M the machine CSRs read as garbage: read them at M, then put the privilege back */
    if (dh_rv_write(r, UC_RISCV_REG_PRIV, RV_PRIV_M) < 0)
        return RV_ERR_UC;
    err = UC.reg_read_batch(r->uc, (int *)state_regs, ptrs, RV_ST_N);
    if (err != UC_ERR_OK)
        return fail(r, err);
    out[RV_ST_PRIV] = priv;
    return dh_rv_write(r, UC_RISCV_REG_PRIV, priv);
}

uint32_t dh_rv_entry_mstatus(uint32_t mstatus, uint32_t priv)
{
    uint32_t mpie = (mstatus & RV_MSTATUS_MIE) ? RV_MSTATUS_MPIE : 0;
    return (mstatus & ~(RV_MSTATUS_MIE | RV_MSTATUS_MPIE | RV_MSTATUS_MPP)) | mpie | (priv << 11);
}

uint32_t dh_rv_entry_target(uint32_t cause, uint32_t mtvec)
{
    uint32_t target = mtvec & ~3u;
    if ((mtvec & 3) == 1 && (cause & RV_MCAUSE_INTERRUPT))
        target += 4 * (cause & 0x7FFFFFFFu);
    return target;
}

int dh_rv_enter(dh_rv *r, uint32_t cause, uint32_t epc, uint32_t tval, uint32_t priv,
                uint32_t mstatus, uint32_t mtvec, int in_hook, uint32_t *target)
{
    static const int out_regs[5] = {UC_RISCV_REG_MSTATUS, UC_RISCV_REG_MEPC, UC_RISCV_REG_MCAUSE,
                                    UC_RISCV_REG_MTVAL, UC_RISCV_REG_PC};
    uint32_t t = dh_rv_entry_target(cause, mtvec);
    uint64_t vals[5] = {dh_rv_entry_mstatus(mstatus, priv), epc & 0xFFFFFFFEu, cause, tval, t};
    void *ptrs[5];
    for (int i = 0; i < 5; i++)
        ptrs[i] = &vals[i];
    /* the privilege first: below M the CSR writes would be dropped */
    if (priv != RV_PRIV_M && dh_rv_write(r, UC_RISCV_REG_PRIV, RV_PRIV_M) < 0)
        return RV_ERR_UC;
    uc_err err = UC.reg_write_batch(r->uc, (int *)out_regs, ptrs, in_hook ? 4 : 5);
    if (err != UC_ERR_OK)
        return fail(r, err);
    if (in_hook && dh_rv_write(r, UC_RISCV_REG_PC, t) < 0)
        return RV_ERR_UC;
    *target = t;
    return 0;
}

uint32_t dh_rv_pick_cause(uint64_t pending)
{
    static const uint32_t order[3] = {11, 3, 7};          /* MEI > MSI > MTI */
    for (int i = 0; i < 3; i++)
        if (pending >> order[i] & 1)
            return order[i];
    uint32_t top = 0;
    for (uint32_t b = 0; b < 64; b++)
        if (pending >> b & 1)
            top = b;
    return top;
}

int dh_rv_takeable(uint64_t pending, uint64_t priv, uint64_t mstatus)
{
    return pending != 0 && (priv != RV_PRIV_M || (mstatus & RV_MSTATUS_MIE) != 0);
}
