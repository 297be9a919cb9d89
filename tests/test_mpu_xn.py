"""The MPU's Execute Never over RAM on the whole core: a region that only takes away execute
rights (XN=1, full access: CubeH7's ``MPU_Config`` over DTCM and AXI SRAM) is enforced by the TLB
fill (native/vtlb.h, ``Mpu.apply`` -> ``cpu.set_xn_ranges``), not by unicorn page rights and the
PROT hook, so that the page's loads and stores stay on unicorn's inline path.

A hand-assembled firmware calls a function in AXI SRAM in a loop and counts, on the same XN page,
the loops and the calls that ran; its MemManage handler records CFSR, MMFAR and the stacked PC
and returns past the call; an NMI it can ask for calls the function at priority -2. Checked: the
fetch is MemManage IACCVIOL with the stacked PC at the function and MMFAR untouched, exactly as
the page-rights path (a read-only XN region, ``_on_prot``) reports it, event for event; no hook
and no page right covers the page; MPU off, a region disabled and the MPU's bypass at priority < 0
(HFNMIENA=0) let the function run, and each change takes effect at once (warm TLB entries and
translations notwithstanding); HFNMIENA=1 makes the same fetch lock up, as on the page-rights
path; a 32-bit instruction straddling into the XN page faults at its own address on both paths.
Sub-page XN regions stay unenforced (nvic.py's Mpu).
"""
from __future__ import annotations

import pytest
from builtin_helpers import build_m7
from test_vtlb import assemble

from duohil.engines.base import PS_PER_MS

AXI = 0x2400_0000
FN, DATA, OUT = AXI + 0x400, AXI + 0x800, AXI + 0xC00
MPU_CTRL, MPU_RNR, MPU_RBAR, MPU_RASR = 0xE000ED94, 0xE000ED98, 0xE000ED9C, 0xE000EDA0
IACCVIOL = 1 << 0
ENABLE, HFNMIENA, PRIVDEFENA = 1, 2, 4

FIRMWARE = """
    .syntax unified
    .thumb
    .org 0x000                 @ vectors: SP, reset, NMI, HardFault, MemManage, the rest hang
    .word 0x20010000, 0x08000101, 0x08000301, 0x08000381, 0x08000201
    .rept 11
    .word 0x080003C1
    .endr
    .org 0x100
reset:
    ldr  r4, =0x24000401       @ FN | 1
    ldr  r5, =0x24000800       @ DATA: [0] loops, [1] calls that ran, [2] NMI request
    ldr  r6, =0x24000C00       @ OUT: [0] MemManages, [1] CFSR, [2] MMFAR, [3] stacked PC,
    ldr  r0, =0xE000ED24       @      [4] NMIs, [5] FN() in the NMI
    ldr  r1, [r0]
    orr  r1, r1, #0x10000      @ SHCSR.MEMFAULTENA
    str  r1, [r0]
loop:
    movs r0, #0
    blx  r4                    @ r0 = FN() = 1; 0 when MemManage skipped it
    ldr  r1, [r5, #4]
    add  r1, r1, r0
    str  r1, [r5, #4]
    ldr  r1, [r5]
    adds r1, r1, #1
    str  r1, [r5]
    ldr  r1, [r5, #8]
    cmp  r1, #0
    beq  loop
    movs r1, #0
    str  r1, [r5, #8]
    ldr  r0, =0xE000ED04
    mov  r1, #0x80000000       @ ICSR.NMIPENDSET
    str  r1, [r0]
    b    loop
    .ltorg
    .org 0x200
memmanage:
    ldr  r0, =0xE000ED28
    ldr  r1, [r0]
    str  r1, [r6, #4]
    str  r1, [r0]              @ CFSR: write one to clear
    ldr  r0, =0xE000ED34
    ldr  r1, [r0]
    str  r1, [r6, #8]
    ldr  r1, [sp, #24]         @ the stacked PC
    str  r1, [r6, #12]
    ldr  r1, [sp, #20]         @ resume at the caller's return address (the stacked LR)
    bic  r1, r1, #1
    str  r1, [sp, #24]
    ldr  r1, [r6]
    adds r1, r1, #1
    str  r1, [r6]
    bx   lr
    .ltorg
    .org 0x300
nmi:
    push {r4, lr}
    movs r0, #0
    blx  r4                    @ at priority -2
    str  r0, [r6, #20]
    ldr  r1, [r6, #16]
    adds r1, r1, #1
    str  r1, [r6, #16]
    pop  {r4, pc}
    .org 0x380
hardfault:
1:  b    1b
    .org 0x3C0
hang:
1:  b    1b
"""


@pytest.fixture(scope="module")
def firmware(tmp_path_factory) -> bytes:
    return assemble(FIRMWARE, tmp_path_factory.mktemp("mpuxn"))


def board(firmware: bytes):
    b = build_m7()
    b.machine.write_memory(0x0800_0000, firmware)
    b.machine.write_memory(FN, bytes.fromhex("0120" "7047"))         # movs r0, #1; bx lr
    b.cpu.reset()
    return b


def region(b, n: int, base: int, log2: int, ap: int, xn: int = 1, enable: int = 1) -> None:
    m = b.machine
    m.bus_write(MPU_RNR, 4, n)
    m.bus_write(MPU_RBAR, 4, base)
    m.bus_write(MPU_RASR, 4, xn << 28 | ap << 24 | 1 << 19 | (log2 - 1) << 1 | enable)


def ctrl(b, value: int) -> None:
    b.machine.bus_write(MPU_CTRL, 4, value)


def run(b, ms: float = 1.0) -> None:
    """(a fault ends its slice and that quantum: ~100 faulting calls a virtual ms)"""
    b.scheduler.run_for(int(ms * PS_PER_MS))
    assert not b.cpu.halted, b.cpu.halt_reason


def data(b) -> tuple[int, int]:
    return b.u32(DATA, 0), b.u32(DATA, 1)                 # loops, calls that ran


def out(b) -> list[int]:
    return [b.u32(OUT, i) for i in range(6)]


def faults(b) -> list[tuple[int, dict]]:
    return [(t, d) for t, k, d in b.scheduler.log if k == "cpu_fault"]


def test_xn_region_over_ram_is_iaccviol_with_data_on_the_fast_path(firmware) -> None:
    b = board(firmware)
    run(b)
    loops, calls = data(b)
    assert loops > 100 and abs(calls - loops) <= 1 and out(b)[0] == 0   # MPU off: calls run
    region(b, 0, AXI, 19, ap=3)                           # RW + XN over the 512 KiB AXI SRAM
    ctrl(b, ENABLE | PRIVDEFENA)
    cpu = b.cpu
    assert cpu._vtlb.xn() == [(AXI, AXI + 0x8_0000)]
    # no hook and no page right over the page: its stores stay inline (unicorn's
    # uc_mem_hook_installed; tests/test_vtlb.py times the same store loop both ways)
    assert cpu._prot_hooks == [] and cpu._guard_hooks == [] and b.machine.mpu._protected == {}
    assert all(p == 7 for lo, hi, p in cpu.uc.mem_regions() if lo < AXI + 0x8_0000 and hi >= AXI)
    assert not any(lo <= DATA < hi for lo, hi in cpu._unmapped_ranges)
    run(b)
    loops2, calls2 = data(b)
    assert calls2 == calls, "a call into the XN page ran"
    assert loops2 - loops > 50                            # loads and stores on the XN page work
    o = out(b)
    assert abs(o[0] - (loops2 - loops)) <= 1              # one MemManage per call
    assert o[1:4] == [IACCVIOL, 0, FN]                    # CFSR, MMFAR untouched, stacked PC
    f = faults(b)                                         # (the log folds repeats)
    assert f and all(d["exception"] == 4 and d["taken_as"] == 4 and d["pc"] == FN
                                  and d["cfsr"] == IACCVIOL for _t, d in f)


def _fn_page_fetches(firmware: bytes, ap: int):
    b = board(firmware)
    run(b)
    region(b, 0, FN, 10, ap=ap)                           # FN's 1 KiB page only
    ctrl(b, ENABLE | PRIVDEFENA)
    run(b, 2)
    return b


def test_the_fill_reports_exactly_what_the_page_rights_path_did(firmware) -> None:
    """Read-only + XN keeps page rights and _on_prot (its fetch is what every XN region took
    before); full access + XN goes to the fill. The firmware never writes FN's page, so both runs
    must be the same, fault event for fault event, times included."""
    by_fill, by_rights = _fn_page_fetches(firmware, ap=3), _fn_page_fetches(firmware, ap=6)
    assert by_fill.cpu._vtlb.xn() == [(FN, FN + 0x400)] and by_fill.cpu._prot_hooks == []
    assert by_rights.cpu._vtlb.xn() == [] and len(by_rights.cpu._prot_hooks) == 1
    assert faults(by_fill) == faults(by_rights) and len(faults(by_fill)) > 50
    assert out(by_fill) == out(by_rights) and data(by_fill) == data(by_rights)
    assert out(by_fill)[1:4] == [IACCVIOL, 0, FN]
    assert by_fill.cpu.instructions == by_rights.cpu.instructions


def test_turning_the_mpu_or_the_region_off_and_on_takes_effect_at_once(firmware) -> None:
    b = board(firmware)
    region(b, 0, AXI, 19, ap=3)
    ctrl(b, ENABLE | PRIVDEFENA)
    flushes = b.cpu._vtlb.stats()["flushes"]

    def calls_run() -> bool:
        """True: every call of the next virtual ms ran; False: every one faulted (one call in
        flight at the change may go either way)"""
        loops, calls = data(b)
        mm = out(b)[0]
        run(b)
        n, ran, faulted = data(b)[0] - loops, data(b)[1] - calls, out(b)[0] - mm
        assert n > 50
        if ran >= n - 1 and faulted <= 1:
            return True
        assert ran <= 1 and faulted >= n - 1, (n, ran, faulted)
        return False
    assert not calls_run()
    ctrl(b, 0)                                            # MPU off
    assert calls_run()
    ctrl(b, ENABLE | PRIVDEFENA)
    assert not calls_run()
    region(b, 0, AXI, 19, ap=3, enable=0)                 # the region off
    assert calls_run()
    region(b, 0, AXI, 19, ap=3)
    assert not calls_run()
    region(b, 0, AXI, 19, ap=3, xn=0)                     # XN cleared: full rights
    assert calls_run() and b.cpu._vtlb.xn() == []
    region(b, 1, FN, 10, ap=3)                            # a higher region: FN's page XN again
    assert not calls_run()
    assert b.cpu._vtlb.stats()["flushes"] - flushes >= 7
    # FN ran between XN periods: its page was marked and its code dropped each time it became XN
    assert b.cpu._vtlb.stats()["code_dropped"] >= 3


@pytest.mark.parametrize("ap", [3, 6])
def test_an_instruction_straddling_into_the_xn_page_faults_at_its_own_address(tmp_path, ap) -> None:
    """A 32-bit instruction whose second halfword is the XN page's first: IACCVIOL with the
    stacked PC at the instruction (the page-rights path stacked the page's address, the fetch's,
    until it took the PC as the fill does)."""
    fw = assemble(FIRMWARE.replace("ldr  r4, =0x24000401", "ldr  r4, =0x240003F9"), tmp_path)
    b = build_m7()
    b.machine.write_memory(0x0800_0000, fw)
    # FN - 8: nop; nop; nop; movw r0, #3 (at FN - 2, its second half at FN); bx lr
    b.machine.write_memory(FN - 8, bytes.fromhex("00bf" "00bf" "00bf" "40f20300" "7047"))
    b.cpu.reset()
    run(b, 0.1)
    assert data(b)[1] > 0                                 # it runs while the MPU is off
    calls = data(b)[1]
    region(b, 0, FN, 10, ap=ap)
    ctrl(b, ENABLE | PRIVDEFENA)
    run(b)
    assert data(b)[1] - calls <= 3                       # (it returns 3) one call in flight
    assert out(b)[0] > 50 and out(b)[1:4] == [IACCVIOL, 0, FN - 2]
    assert {d["pc"] for _t, d in faults(b)} == {FN - 2}


@pytest.mark.parametrize("ap", [3, 6])
def test_the_bypass_at_negative_priority_and_hfnmiena(firmware, ap) -> None:
    """HFNMIENA=0: the NMI's call runs (the MPU is off at priority < 0; suspended, re-applied at
    the return), the thread's calls fault again after it. HFNMIENA=1: the NMI's fetch faults at
    priority -2, a lockup. ap=6 (page rights) is the reference the fill (ap=3) must match."""
    b = board(firmware)
    region(b, 0, FN, 10, ap=ap)
    ctrl(b, ENABLE | PRIVDEFENA)
    run(b)
    mm = out(b)[0]
    assert mm > 50
    b.machine.write_memory(DATA + 8, (1).to_bytes(4, "little"))       # ask for an NMI
    run(b)
    o = out(b)
    assert o[4:6] == [1, 1], "the NMI's call must run with HFNMIENA=0"
    assert o[0] > mm + 50 and data(b)[1] == 0            # thread calls still fault after it
    assert not b.machine.mpu.suspended
    if ap == 3:
        assert b.cpu._vtlb.xn() == [(FN, FN + 0x400)]
    ctrl(b, ENABLE | HFNMIENA | PRIVDEFENA)
    b.machine.write_memory(DATA + 8, (1).to_bytes(4, "little"))
    b.scheduler.run_for(PS_PER_MS // 5)
    assert b.cpu.halted and b.cpu.halt_reason == "lockup"
    assert b.cpu.lockup["pc"] == FN and b.cpu.lockup["cfsr"] & IACCVIOL


def test_lockup_and_bypass_match_the_page_rights_path(firmware) -> None:
    logs = []
    for ap in (3, 6):
        b = board(firmware)
        region(b, 0, FN, 10, ap=ap)
        ctrl(b, ENABLE | PRIVDEFENA)
        run(b)
        b.machine.write_memory(DATA + 8, (1).to_bytes(4, "little"))
        run(b)
        ctrl(b, ENABLE | HFNMIENA | PRIVDEFENA)
        b.machine.write_memory(DATA + 8, (1).to_bytes(4, "little"))
        b.scheduler.run_for(PS_PER_MS // 5)
        logs.append(([e for e in b.scheduler.log if e[1] in ("cpu_fault", "lockup")], out(b),
                     data(b), b.cpu.lockup))
    assert logs[0] == logs[1]
