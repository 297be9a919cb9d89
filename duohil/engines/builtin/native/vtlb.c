/* See vtlb.h. */
#include "vtlb.h"

#include <stdlib.h>
#include <string.h>

#include "ucapi.h"

#define ADDR_SPACE_BITS 32

int dh_vtlb_default_xn(uint32_t addr)
{
    return (addr >= 0x40000000u && addr < 0x60000000u) || addr >= 0xA0000000u;
}

static int exec_test(const dh_vtlb *t, uint64_t page)
{
    return (t->exec[page >> 3] >> (page & 7)) & 1;
}

/* unicorn_fill_tlb restores the CPU state to the accessing instruction (cpu_restore_state) before
 * it calls us, also for an access that will not fault. On ARM that writes the instruction's IT
 * state into env->condexec_bits, which QEMU keeps at 0 while a TB runs (its TB start zeroes it,
 * its TB end stores it only if the block is still inside an IT block): a data access that missed
 * the TLB inside an IT block would leave the next TB looked up with a stale IT state (found as a
 * diverging CM3 run: a conditional copy skipped). Put the invariant back. A fault on this access
 * restores the state again (unicorn's PROT and UNMAPPED paths do), so a stacked xPSR keeps its IT
 * bits. */
#define CPSR_IT_BITS 0x0600FC00u

static void it_keep(uc_engine *uc)
{
    uint32_t cpsr;
    if (UC.reg_read(uc, UC_ARM_REG_CPSR, &cpsr) == UC_ERR_OK && (cpsr & CPSR_IT_BITS)) {
        cpsr &= ~CPSR_IT_BITS;
        UC.reg_write(uc, UC_ARM_REG_CPSR, &cpsr);
    }
}

static bool vtlb_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type, uc_tlb_entry *e, void *ud)
{
    dh_vtlb *t = ud;
    uint64_t page = (vaddr & 0xFFFFFFFFull) >> t->page_bits;
    t->fills++;
    e->paddr = vaddr;
    if (type == UC_MEM_FETCH) {
        /* the page of emu_start's `until` (0xFFFFFFFF) is filled after every slice by unicorn
         * itself (resume_all_vcpus invalidates the exit's translation): never refused, as QEMU's
         * fill never refused it (a fetch there is an EXC_RETURN, handled at the branch) */
        if (t->arm_m && dh_vtlb_default_xn((uint32_t)vaddr)
            && (vaddr & 0xFFFFFFFFull) >> t->page_bits != 0xFFFFFFFFull >> t->page_bits) {
            uint32_t pc = (uint32_t)vaddr;
            if (UC.reg_read(uc, UC_ARM_REG_PC, &pc) != UC_ERR_OK)
                pc = (uint32_t)vaddr;
            t->xn_pending = 1;
            t->xn_pc = pc;
            e->perms = UC_PROT_READ | UC_PROT_WRITE;
            return true;                  /* no X: unicorn refuses the fetch (UC_ERR_EXCEPTION) */
        }
        if (!exec_test(t, page)) {
            t->exec[page >> 3] |= (uint8_t)(1u << (page & 7));
            t->exec_pages++;
            /* entries of this page filled before (R/W, possibly dirty) must not outlive it */
            if (UC.ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0)) == UC_ERR_OK)
                t->flushes++;
        }
        e->perms = UC_PROT_ALL;
        return true;
    }
    e->perms = exec_test(t, page) ? UC_PROT_ALL : (UC_PROT_READ | UC_PROT_WRITE);
    if (t->arm_m)
        it_keep(uc);
    return true;
}

uc_err dh_vtlb_install(dh_vtlb *t, uc_engine *uc, uint32_t page_size, int arm_m)
{
    unsigned bits = 0;
    while ((1u << bits) < page_size && bits < 31)
        bits++;
    if (!page_size || (1u << bits) != page_size)
        return UC_ERR_ARG;
    size_t n = ((size_t)1 << (ADDR_SPACE_BITS - bits)) / 8;
    uint8_t *exec = calloc(n, 1);                 /* lazily committed by the OS: ~touched pages */
    if (!exec)
        return UC_ERR_NOMEM;
    uc_hook h;
    uc_err err = UC.ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1), UC_TLB_VIRTUAL);
    if (err == UC_ERR_OK)
        err = UC.hook_add(uc, &h, UC_HOOK_TLB_FILL, (void *)vtlb_fill, t, 1, 0);
    if (err != UC_ERR_OK) {
        UC.ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1), UC_TLB_CPU);
        free(exec);
        return err;
    }
    dh_vtlb_free(t);
    memset(t, 0, sizeof *t);
    t->uc = uc;
    t->hook = h;
    t->page_bits = bits;
    t->arm_m = arm_m;
    t->exec = exec;
    /* the TLB may hold entries of unicorn's own fill (executable RAM): start clean */
    UC.ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0));
    return UC_ERR_OK;
}

void dh_vtlb_free(dh_vtlb *t)
{
    free(t->exec);
    t->exec = NULL;
}
