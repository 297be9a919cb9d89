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
 * xn_pc say where, for the core to raise MemManage IACCVIOL as it did for intno 3. */
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
    int xn_pending;               /* a fetch was refused (arm_m): at xn_pc */
    uint32_t xn_pc;
} dh_vtlb;

/* Switch `uc` to our fill. 0, or a unicorn error (nothing changed then). */
uc_err dh_vtlb_install(dh_vtlb *t, uc_engine *uc, uint32_t page_size, int arm_m);
/* Forget the fill's memory (the engine is gone or switching back is not needed). */
void dh_vtlb_free(dh_vtlb *t);
/* 1 when the ARMv7-M default memory map makes `addr` Execute Never. */
int dh_vtlb_default_xn(uint32_t addr);

#endif
