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
The Execute Never fetch of the default memory map is tests/test_wild.py's
test_xn_fetch_is_memmanage_iaccviol; every scenario fingerprint is unchanged by the fill."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
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
