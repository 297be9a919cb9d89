"""The CPUs' TLB filled by the native core (``_core.Vtlb``, native/vtlb.h).

With unicorn's own fill every store to RAM took unicorn's slow path (QEMU's default map makes
RAM executable, and unicorn only lets a store run inline on a page that is not); our fill gives a
data access read/write only. What that must not change, each checked here on bare unicorn with
and without the fill, with slices of many sizes (a slice boundary is where a stale state shows):
  - an access that misses the TLB inside an IT block (the fill's state restore must not leak the
    IT state into the next translation block);
  - code written by the guest after it ran, on a page it also stores data to (the page keeps
    execute rights in every later fill, so its stores keep invalidating its translations);
  - bounded unmapped-access hooks: the machine's hooks cover exactly the gaps between memories.
And the MPU's Execute Never pages the fill enforces (``Vtlb.set_xn``, what nvic.py's Mpu gives it
for a region that only takes away execute rights): a fetch there is refused, also from a page
that ran code before and even with that code's TLB entries and jump-cache slots warm; the code
translated there is dropped (stores to the page are fast now and would not invalidate it); data
accesses still work and keep the inline store path (timed against page rights plus a PROT hook,
today's mechanism for the other MPU restrictions); ``Vtlb.mem_protect`` keeps unicorn's region
split from marking or refusing a page. The MemManage the core makes of a refused fetch is
tests/test_mpu_xn.py's.
The Execute Never fetch of the default memory map is tests/test_wild.py's
test_xn_fetch_is_memmanage_iaccviol; every scenario fingerprint is unchanged by the fill."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from unicorn import (UC_ARCH_ARM, UC_ERR_EXCEPTION, UC_HOOK_MEM_PROT, UC_MODE_MCLASS, UC_MODE_THUMB,
                     UC_PROT_ALL, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE, Uc, UcError)
from unicorn.arm_const import (UC_ARM_REG_PC, UC_ARM_REG_R0, UC_ARM_REG_R4, UC_ARM_REG_R5,
                               UC_ARM_REG_R7, UC_CPU_ARM_CORTEX_M7)

from duohil.engines.builtin import native

CORE = native.require()
FLASH, RAM = 0x0800_0000, 0x2000_0000

IT_BLOCK = """
    .syntax unified
    .thumb
_start:
    movs r0, #0
    ldr  r2, =0x20000000
    ldr  r6, =0x40000          @ 256 KiB: the same TLB index as r2 (1 KiB pages)
    movs r7, #0
loop:
    mov  r3, r2                @ evict r2's entry: 12 pages of its index
    movs r4, #12
ev: add  r3, r3, r6
    ldr  r5, [r3]
    subs r4, r4, #1
    bne  ev
    ands r1, r0, #1            @ a store and a load inside an IT block, both missing the TLB
    cmp  r1, #0
    itte eq
    streq r0, [r2, #4]
    ldreq r5, [r2, #4]
    addne r7, r7, #100
    adds r7, r7, #1            @ after the IT block: always runs
    adds r0, r0, #1
    cmp  r0, #64
    bne  loop
done:
    b    done
"""

SELF_MODIFYING = """
    .syntax unified
    .thumb
_start:
    ldr  r2, =0x20000500       @ data on the page the code will be on: a fast store first
    movs r1, #7
    str  r1, [r2]
    ldr  r3, =0x20000401       @ the function at 0x20000400 (the host put movs r0,#1; bx lr)
    blx  r3
    mov  r4, r0
    ldr  r2, =0x20000400       @ evict the page's entry (12 pages of its TLB index): the next
    ldr  r6, =0x40000          @ store fills it again as a data access
    mov  r0, r2
    movs r7, #12
ev: add  r0, r0, r6
    ldr  r1, [r0]
    subs r7, r7, #1
    bne  ev
    movs r1, #9                @ a data store first (the refilled entry becomes dirty if it may)
    str  r1, [r2, #0x100]
    ldr  r1, =0x2002           @ then the code: movs r0, #2
    strh r1, [r2]
    blx  r3
    mov  r5, r0
done:
    b    done
"""

# entry points at fixed offsets (emu_start begins at FLASH + offset); FN is a function in RAM
FN = 0x2000_0400
XN_PROGRAMS = """
    .syntax unified
    .thumb
    .org 0x00
call:                          @ r4 = FN()
    ldr  r3, =0x20000401
    movs r0, #0
    blx  r3
    mov  r4, r0
1:  b    1b
    .ltorg
    .org 0x40
patch:                         @ data on FN's page first (its entry becomes dirty if it may), then
    ldr  r2, =0x20000400       @ FN rewritten by a store: movs r0, #2
    ldr  r1, [r2, #0x100]
    adds r1, r1, #1
    str  r1, [r2, #0x100]
    ldr  r1, =0x2002
    strh r1, [r2]
    ldr  r5, [r2, #0x100]
1:  b    1b
    .ltorg
"""
CALL, PATCH = 0x00, 0x40


def assemble(src: str, tmp: Path) -> bytes:
    if not (shutil.which("arm-none-eabi-as") and shutil.which("arm-none-eabi-objcopy")):
        pytest.skip("arm-none-eabi-as not installed (the README's setup installs it)")
    (tmp / "t.s").write_text(src)
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m7", "-mthumb", str(tmp / "t.s"), "-o",
                    str(tmp / "t.o")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(tmp / "t.o"), str(tmp / "t.bin")],
                   check=True)
    return (tmp / "t.bin").read_bytes()


def m7(code: bytes, vtlb: bool):
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M7)
    uc.mem_map(0, 0x1000)                          # ucraw._separate_ram_blocks
    uc.mem_unmap(0, 0x1000)
    uc.mem_map(FLASH, 0x10000)
    uc.mem_map(RAM, 0x40_0000)
    uc.mem_write(FLASH, code)
    return uc, (CORE.Vtlb(uc._uch.value, 1024, True, uc) if vtlb else None)


def run_sliced(uc, count: int, done, limit: int = 200_000) -> None:
    pc = FLASH
    for _ in range(limit):
        uc.emu_start(pc | 1, 0xFFFF_FFFF, 0, count)
        pc = uc.reg_read(UC_ARM_REG_PC)
        if done(uc):
            return
    raise AssertionError("the program did not finish")


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 13, 1000])
def test_it_block_accesses_that_miss_the_tlb_keep_their_semantics(tmp_path, count) -> None:
    code = assemble(IT_BLOCK, tmp_path)
    out = {}
    for vt in (False, True):
        uc, v = m7(code, vt)
        run_sliced(uc, count, lambda u: u.reg_read(UC_ARM_REG_R0) == 64)
        out[vt] = (uc.reg_read(UC_ARM_REG_R7), bytes(uc.mem_read(RAM, 8)))
        if v is not None:
            assert v.stats()["fills"] > 64          # the IT block's accesses did miss and fill
    assert out[True] == out[False]
    assert out[True][0] == 32 * 100 + 64


@pytest.mark.parametrize("count", [1, 4, 1000])
def test_code_rewritten_on_a_page_that_held_data_runs_as_rewritten(tmp_path, count) -> None:
    code = assemble(SELF_MODIFYING, tmp_path)
    for vt in (False, True):
        uc, v = m7(code, vt)
        uc.mem_write(0x2000_0400, bytes.fromhex("0120" "7047"))     # movs r0, #1; bx lr
        run_sliced(uc, count, lambda u: u.reg_read(UC_ARM_REG_R5) != 0)
        assert (uc.reg_read(UC_ARM_REG_R4), uc.reg_read(UC_ARM_REG_R5)) == (1, 2), (vt, count)
        if v is not None:
            assert v.stats()["exec_pages"] >= 2     # the flash page and the RAM page


def test_a_machines_unmapped_hook_covers_exactly_the_gaps_between_memories() -> None:
    """No byte of a memory under the hook (its stores would stay slow), every other byte under it
    (an unmapped access anywhere must still reach the core's bus-fault path), also after a memory
    is added late."""
    from builtin_helpers import build_m7
    b = build_m7()
    m, cpu = b.machine, b.cpu
    assert cpu._vtlb is not None

    def check() -> None:
        ranges = sorted(cpu._unmapped_ranges)
        assert len(ranges) == len(cpu._unmapped_hooks)
        mems = sorted((a, a + n) for _name, a, n in m.memories)
        for lo, hi in ranges:
            assert all(hi <= a or lo >= e for a, e in mems), (hex(lo), hex(hi))
        pieces = sorted(ranges + mems)
        assert pieces[0][0] == 0 and pieces[-1][1] == 1 << 32
        assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))
    check()
    m.add_memory("late", [0x6000_0000], 0x1000)
    check()


def enter(uc, offset: int, count: int = 40) -> None:
    uc.emu_start((FLASH + offset) | 1, 0xFFFF_FFFF, 0, count)


def refused(uc, v, offset: int) -> int | None:
    """The PC of the fetch the fill refused while running ``offset``'s program, or None."""
    try:
        enter(uc, offset)
    except UcError as e:
        assert e.errno == UC_ERR_EXCEPTION, e
        pc = v.take_xn()
        assert pc is not None, "unicorn refused a fetch the fill did not"
        return pc
    assert v.take_xn() is None
    return None


def test_mpu_xn_page_refuses_fetches_keeps_data_and_drops_its_code(tmp_path) -> None:
    uc, v = m7(assemble(XN_PROGRAMS, tmp_path), True)
    uc.mem_write(FN, bytes.fromhex("0120" "7047"))                  # movs r0, #1; bx lr
    enter(uc, CALL)
    assert uc.reg_read(UC_ARM_REG_R4) == 1 and v.marked(FN)         # it ran: its page is marked
    enter(uc, CALL)                                                 # its TB and entries are warm
    v.set_xn([(FN, FN + 0x400)])
    assert v.xn() == [(FN, FN + 0x400)]
    st = v.stats()
    assert st["code_dropped"] == 1 and not v.marked(FN)
    assert refused(uc, v, CALL) == FN                               # the flush reached the TB too
    assert refused(uc, v, PATCH) is None                            # loads and stores there work
    assert uc.reg_read(UC_ARM_REG_R5) == 1
    assert refused(uc, v, CALL) == FN                               # data fills gave no X
    assert not v.marked(FN)
    v.set_xn([])
    enter(uc, CALL)
    # the code the guest wrote while the page was XN (inline stores: no invalidation) runs, not
    # the translation made before
    assert uc.reg_read(UC_ARM_REG_R4) == 2 and v.marked(FN)
    assert refused(uc, v, CALL) is None
    v.set_xn([(FN - 0x400, FN + 0x800)])                            # and again: a wider run
    assert refused(uc, v, CALL) == FN
    assert v.stats()["xn_sets"] == 3


def test_mpu_xn_refuses_a_fetch_on_the_next_block_lookup(tmp_path) -> None:
    """Set from inside a slice (the MPU's registers are MMIO): the lookup after the block that
    made the change is refused, as a slice started after it is."""
    uc, v = m7(assemble(XN_PROGRAMS, tmp_path), True)
    uc.mem_write(FN, bytes.fromhex("0120" "7047"))
    enter(uc, CALL)
    assert uc.reg_read(UC_ARM_REG_R4) == 1
    uc.reg_write(UC_ARM_REG_R4, 0)
    from unicorn import UC_HOOK_CODE
    armed = {}

    def at_blx(uc_, addr, size, _ud) -> None:
        if not armed:
            armed["set"] = True
            v.set_xn([(FN, FN + 0x400)])
    h = uc.hook_add(UC_HOOK_CODE, at_blx, begin=FLASH + 4, end=FLASH + 4)
    uc.ctl_remove_cache(FLASH, FLASH + 0x40)
    assert refused(uc, v, CALL) == FN and armed
    uc.hook_del(h)
    assert uc.reg_read(UC_ARM_REG_R4) == 0


def test_mpu_xn_ranges_are_checked() -> None:
    uc, v = m7(b"\xfe\xe7", True)
    for bad in ([(FN, FN + 0x200)], [(FN + 0x400, FN)], [(FN, FN + 0x800), (FN + 0x400, FN + 0xC00)],
                [(0xFFFF_FC00, 0x1_0000_0400)]):
        with pytest.raises(ValueError):
            v.set_xn(bad)
    with pytest.raises(TypeError):
        v.set_xn([FN])
    assert v.xn() == [] and v.stats()["xn_sets"] == 0


def test_mem_protect_split_neither_marks_nor_is_refused() -> None:
    """unicorn splits a region to protect part of it and looks the old region's first page up as
    a fetch (memory_unmap -> uc_invalidate_tb): with uc.mem_protect that marked a data page for
    good (the fixed firmware's stack guard marked DTCM's first KiB: its stores stayed slow);
    through Vtlb.mem_protect the lookup neither marks the page nor, on an XN page, is refused."""
    uc, v = m7(b"\xfe\xe7", True)
    uc.mem_protect(RAM + 0x1000, 0x400, UC_PROT_NONE)
    assert v.marked(RAM)                                            # unicorn's own lookup did
    uc, v = m7(b"\xfe\xe7", True)
    v.mem_protect(RAM + 0x1000, 0x400, UC_PROT_NONE)
    assert not v.marked(RAM) and not v.marked(RAM + 0x1400)
    v.set_xn([(RAM + 0x1400, RAM + 0x1800)])                       # the next split's first page
    v.mem_protect(RAM + 0x2000, 0x400, UC_PROT_READ)
    assert v.take_xn() is None and not v.marked(RAM + 0x1400)
    v.mem_protect(RAM + 0x2000, 0x400, UC_PROT_ALL)
    assert [r for r in uc.mem_regions() if r[2] != UC_PROT_ALL] == [(RAM + 0x1000, RAM + 0x13FF, 0)]
    with pytest.raises(RuntimeError, match="unicorn"):
        v.mem_protect(RAM + 0x10, 0x400, UC_PROT_READ)              # not page-aligned


STORE_LOOP = bytes.fromhex("0160" "0131" "4160" "fbe7")         # str r1,[r0]; adds; str r1,[r0,#4]; b


def _store_loop(how: str):
    uc, v = m7(STORE_LOOP, True)
    uc.reg_write(UC_ARM_REG_R0, RAM + 0x100)
    if how == "xn":
        v.set_xn([(RAM, RAM + 0x1_0000)])
    elif how == "rights":                  # today's mechanism for the MPU's other restrictions
        v.mem_protect(RAM, 0x1_0000, UC_PROT_READ | UC_PROT_WRITE)
        uc.hook_add(UC_HOOK_MEM_PROT, lambda *a: False, begin=RAM, end=RAM + 0xFFFF)
    return uc, v


def test_stores_to_an_mpu_xn_page_keep_what_the_inline_path_needs() -> None:
    """unicorn's inline store needs a TLB entry without X and no memory hook or page right over
    the page (cputlb.c, uc_mem_hook_installed): an MPU-XN page enforced by the fill keeps both
    (never marked executable, unicorn's region keeps full rights, no hook is added), and the
    stores land. What that is worth is a benchmark, not a test: `make bench` (d), the RAM-store
    loop with an MPU-XN page through the fill and with page rights plus the PROT hook."""
    uc, v = _store_loop("xn")
    pc = FLASH
    for _ in range(20):
        uc.emu_start(pc | 1, 0xFFFF_FFFF, 0, 1000)
        pc = uc.reg_read(UC_ARM_REG_PC)
    n = int.from_bytes(uc.mem_read(RAM + 0x100, 4), "little")
    assert n > 0 and int.from_bytes(uc.mem_read(RAM + 0x104, 4), "little") in (n, n + 1)
    assert not v.marked(RAM + 0x100) and not v.marked(RAM)
    assert all(r[2] == UC_PROT_ALL for r in uc.mem_regions() if r[0] <= RAM + 0x100 <= r[1])
    assert v.take_xn() is None                       # and no fetch was refused
