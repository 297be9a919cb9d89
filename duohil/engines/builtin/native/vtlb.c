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

int dh_vtlb_mpu_xn(const dh_vtlb *t, uint64_t page)
{
    return t->mpu_xn && (t->mpu_xn[page >> 3] >> (page & 7)) & 1;
}

/* bits [first, end) of `map` set to `on` */
static void bits_put(uint8_t *map, uint64_t first, uint64_t end, int on)
{
    while (first < end && (first & 7)) {
        map[first >> 3] = on ? map[first >> 3] | (uint8_t)(1u << (first & 7))
                             : map[first >> 3] & (uint8_t)~(1u << (first & 7));
        first++;
    }
    if (end - first >= 8) {
        memset(map + (first >> 3), on ? 0xFF : 0, (end - first) >> 3);
        first += (end - first) & ~(uint64_t)7;
    }
    for (; first < end; first++)
        map[first >> 3] = on ? map[first >> 3] | (uint8_t)(1u << (first & 7))
                             : map[first >> 3] & (uint8_t)~(1u << (first & 7));
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
    if (type == UC_MEM_FETCH && t->quiet) {
        e->perms = UC_PROT_ALL;           /* unicorn's own lookup (dh_vtlb_protect): no mark */
        return true;
    }
    if (type == UC_MEM_FETCH) {
        /* the page of emu_start's `until` (0xFFFFFFFF) is filled after every slice by unicorn
         * itself (resume_all_vcpus invalidates the exit's translation): never refused, as QEMU's
         * fill never refused it (a fetch there is an EXC_RETURN, handled at the branch) */
        int kind = 0;
        if (page != 0xFFFFFFFFull >> t->page_bits)
            kind = t->arm_m && dh_vtlb_default_xn((uint32_t)vaddr) ? DH_XN_DEFAULT_MAP
                 : dh_vtlb_mpu_xn(t, page)                          ? DH_XN_MPU : 0;
        if (kind) {
            /* the PC of the block being looked up or translated: unicorn ends a block before an
             * instruction that would cross into another page, so it is the fetching instruction */
            uint32_t pc = (uint32_t)vaddr;
            if (UC.reg_read(uc, UC_ARM_REG_PC, &pc) != UC_ERR_OK)
                pc = (uint32_t)vaddr;
            t->xn_pending = 1;
            t->xn_kind = kind;
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
    /* an MPU-XN page never gets X, or a later fetch would hit the entry without asking us */
    e->perms = exec_test(t, page) && !dh_vtlb_mpu_xn(t, page) ? UC_PROT_ALL
                                                               : (UC_PROT_READ | UC_PROT_WRITE);
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

uc_err dh_vtlb_set_xn(dh_vtlb *t, const uint32_t (*runs)[2], size_t n)
{
    if (!t->exec)
        return UC_ERR_ARG;
    uint64_t pages = (uint64_t)1 << (ADDR_SPACE_BITS - t->page_bits);
    for (size_t i = 0; i < n; i++)
        if (runs[i][0] >= runs[i][1] || runs[i][1] > pages || (i && runs[i][0] < runs[i - 1][1]))
            return UC_ERR_ARG;
    uint32_t (*copy)[2] = NULL;
    if (n) {
        if (!t->mpu_xn && !(t->mpu_xn = calloc((size_t)(pages / 8), 1)))   /* lazily committed */
            return UC_ERR_NOMEM;
        if (!(copy = malloc(n * sizeof *copy)))
            return UC_ERR_NOMEM;
        memcpy(copy, runs, n * sizeof *copy);
    }
    for (size_t i = 0; i < t->n_xn_runs; i++)
        bits_put(t->mpu_xn, t->xn_runs[i][0], t->xn_runs[i][1], 0);
    free(t->xn_runs);
    t->xn_runs = copy;
    t->n_xn_runs = n;
    /* code translated on a page that becomes XN goes now, before its bit is set: unicorn removes it
     * after looking the page up with a fetch (uc_invalidate_tb: get_page_addr_code), which the fill
     * must grant (the page is marked, so no flush happens inside) */
    for (size_t i = 0; i < n; i++)
        for (uint64_t pg = copy[i][0]; pg < copy[i][1]; pg++) {
            if (!(pg & 7) && pg + 8 <= copy[i][1] && !t->exec[pg >> 3]) {
                pg += 7;
                continue;
            }
            if (!exec_test(t, pg))
                continue;
            UC.ctl(t->uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), (uint64_t)(pg << t->page_bits),
                   (uint64_t)((pg + 1) << t->page_bits));
            t->exec[pg >> 3] &= (uint8_t)~(1u << (pg & 7));
            t->code_dropped++;
        }
    for (size_t i = 0; i < n; i++)
        bits_put(t->mpu_xn, copy[i][0], copy[i][1], 1);
    t->xn_sets++;
    /* no entry filled under the old rights may survive (nor unicorn's jump cache, flushed with it) */
    UC.ctl(t->uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0));
    t->flushes++;
    return UC_ERR_OK;
}

uc_err dh_vtlb_protect(dh_vtlb *t, uint64_t address, uint64_t size, uint32_t perms)
{
    if (!t->exec)
        return UC_ERR_ARG;
    t->quiet++;
    uc_err err = UC.mem_protect(t->uc, address, size, perms);
    /* unicorn checks a page's execute right when it translates, not when it runs a translation:
     * code translated while the page could execute (the MPU bypassed at priority < 0, or not yet
     * restricting it) would keep running from its cache and its chains */
    if (err == UC_ERR_OK && !(perms & UC_PROT_EXEC))
        for (uint64_t pg = address >> t->page_bits; pg < (address + size) >> t->page_bits; pg++)
            if (exec_test(t, pg))
                UC.ctl(t->uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), (uint64_t)(pg << t->page_bits),
                       (uint64_t)((pg + 1) << t->page_bits));
    t->quiet--;
    /* entries granted X by a quiet fill must not serve a later access */
    UC.ctl(t->uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0));
    t->flushes++;
    return err;
}

int dh_vtlb_marked(const dh_vtlb *t, uint64_t page)
{
    return t->exec && exec_test(t, page);
}

void dh_vtlb_free(dh_vtlb *t)
{
    free(t->exec);
    t->exec = NULL;
    free(t->mpu_xn);
    t->mpu_xn = NULL;
    free(t->xn_runs);
    t->xn_runs = NULL;
    t->n_xn_runs = 0;
}
