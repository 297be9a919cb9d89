/* The CPUs' TLB filled by us (unicorn's UC_TLB_VIRTUAL) so that stores to RAM take the fast path.
 *
 * Measured on unicorn 2.1.4 (qemu/accel/tcg/cputlb.c, notdirty_write and tlb_set_page_with_attrs):
 * a TLB entry's write half stays TLB_NOTDIRTY (every store through helper_le_st*_mmu, a memory
 * map lookup and tb_invalidate_phys_page_fast, ~20 ns) unless the entry is not valid for
 * execution (addr_code == -1) and no memory hook covers the page (uc_mem_hook_installed: the
 * UNMAPPED and PROT hooks count). With unicorn's own fill, QEMU's default memory map makes every
 * RAM page executable, so no store ever became fast: a store-heavy Thumb loop ran at 23 MIPS
 * against 100-116 MIPS with this fill.
 *
 * The fill: vaddr = paddr (no MMU on either core); a fetch gets R/W/X, a load or store R/W only,
 * so a page that only holds data becomes dirty after its first store and later stores run inline.
 * A page some fetch has filled is remembered (a bitmap, one bit per target page) and keeps X in
 * every later fill, so stores to a page holding translated code keep invalidating that code
 * (self-modifying code, code copied to RAM); the first fetch of a page flushes the TLB, so no
 * entry filled before it (fast, without X) survives. Page rights (uc_mem_protect: the M7's MPU)
 * are checked by unicorn from the memory region, not from these entries, as before.
 *
 * For the Cortex-M (arm_m), a fetch from a region the ARMv7-M default memory map makes Execute
 * Never (0x40000000-0x5FFFFFFF, 0xA0000000-0xFFFFFFFF; what QEMU's own fill refused with its
 * prefetch abort, intno 3) is refused here: emu_start ends with UC_ERR_EXCEPTION and xn_pending /
 * xn_pc say where, for the core to raise MemManage IACCVIOL as it did for intno 3.
 *
 * The MPU's Execute Never (dh_vtlb_set_xn, the pages nvic.py's Mpu finds entirely inside regions
 * that take away execute rights only: XN=1 with full access) is enforced here too, so that those
 * pages need neither unicorn page rights nor a PROT hook (either keeps every store slow): a fetch
 * there is refused as above (xn_kind DH_XN_MPU, for the core to decide between MemManage IACCVIOL
 * and the MPU's bypass at priority < 0), and no fill of such a page ever gets X, also when a fetch
 * had marked it before (a TLB entry with X would let the next fetch pass without asking us). Such
 * a page's translated code is dropped when it becomes XN (chained blocks would reach it without a
 * lookup; its stores, fast now, would not invalidate it) and its mark cleared: if the MPU lets it
 * execute again, its first fetch marks it anew and translates it afresh. Every dh_vtlb_set_xn
 * flushes the TLB (and with it unicorn's jump cache), so no answer of an earlier fill survives. */
#ifndef DUOHIL_VTLB_H
#define DUOHIL_VTLB_H

#include <stdint.h>
#include <unicorn/unicorn.h>

typedef struct {
    uc_engine *uc;
    uc_hook hook;
    unsigned page_bits;           /* log2 of the target page (ARM 10, RISC-V 12) */
    int arm_m;                    /* the ARMv7-M default map's XN regions refuse fetches */
    uint8_t *exec;                /* one bit per page a fetch has filled; NULL before install */
    int64_t fills, exec_pages, flushes;
    int xn_pending;               /* a fetch was refused (arm_m): at xn_pc, for xn_kind's reason */
    int xn_kind;                  /* DH_XN_DEFAULT_MAP or DH_XN_MPU */
    uint32_t xn_pc;
    uint8_t *mpu_xn;              /* one bit per page the MPU makes Execute Never; NULL: none yet */
    uint32_t (*xn_runs)[2];       /* the same pages as [first, end) page runs, sorted */
    size_t n_xn_runs;
    int64_t xn_sets, code_dropped;    /* dh_vtlb_set_xn calls; pages whose code it dropped */
    int quiet;                    /* inside dh_vtlb_protect: a fetch fill is unicorn's own lookup */
} dh_vtlb;

enum { DH_XN_DEFAULT_MAP = 1, DH_XN_MPU = 2 };

/* Switch `uc` to our fill. 0, or a unicorn error (nothing changed then). */
uc_err dh_vtlb_install(dh_vtlb *t, uc_engine *uc, uint32_t page_size, int arm_m);
/* Forget the fill's memory (the engine is gone or switching back is not needed). */
void dh_vtlb_free(dh_vtlb *t);
/* The pages the MPU makes Execute Never: `n` runs of page numbers [first, end), sorted, not
 * overlapping (they replace the previous ones; n = 0: none). Drops the translated code of pages a
 * fetch had marked, then flushes the TLB. 0, or UC_ERR_ARG (bad runs) / UC_ERR_NOMEM, nothing
 * changed then. */
uc_err dh_vtlb_set_xn(dh_vtlb *t, const uint32_t (*runs)[2], size_t n);
/* uc_mem_protect for the fill's owner. unicorn 2.1.4 splits a memory region to change part of its
 * rights, and unmapping the old region drops its code after looking its first page up as a fetch
 * (memory_unmap -> uc_invalidate_tb -> get_page_addr_code): not a fetch of the guest's. During the
 * call such a fill is granted without marking the page (a data page marked executable would keep
 * slow stores for good: the fixed firmware's stack guard did that to DTCM's first page) nor being
 * refused (a refusal there would end the slice as a spurious fetch fault and keep the code).
 * Rights without X also drop the code translated on the range's marked pages (unicorn checks X
 * when translating only). The TLB is flushed after it. */
uc_err dh_vtlb_protect(dh_vtlb *t, uint64_t address, uint64_t size, uint32_t perms);
/* 1 when a fetch has marked page `page` (its data fills get X). */
int dh_vtlb_marked(const dh_vtlb *t, uint64_t page);
/* 1 when the MPU makes page `page` Execute Never (dh_vtlb_set_xn). */
int dh_vtlb_mpu_xn(const dh_vtlb *t, uint64_t page);
/* 1 when the ARMv7-M default memory map makes `addr` Execute Never. */
int dh_vtlb_default_xn(uint32_t addr);

#endif
