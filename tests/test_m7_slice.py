"""The Cortex-M7's slice and its end (_core.c's CortexM.run_slice, cortexm.py's ``# -- slices``).

One implementation, in C; these tests pin what it decides from the core's state at the end of a
slice: WFI (a site found from the T1 or the T2 encoding before PC, remembered until reset; WFE
through its hook), the exception-return ambiguity rule (a slice that ends right where an exception
return landed, after a WFI, sleeps only if a register the return restored has changed since), and
the hang bookkeeping (the WFI hang test asked only when nothing could wake the core, the masked
spin test after a slice that ended with PRIMASK or FAULTMASK set, not parked).
"""
from __future__ import annotations

from builtin_helpers import build_m7
from unicorn import arm_const as A

VTOR = 0x0800_0000
DTCM = 0x2000_0000
CODE = 0x0800_0300
HANDLER = 0x0800_0400
NOP, WFI, WFE, BX_LR = b"\x00\xbf", b"\x30\xbf", b"\x20\xbf", b"\x70\x47"
WFI_W, NOP_W = b"\xaf\xf3\x03\x80", b"\xaf\xf3\x00\x80"       # wfi.w, nop.w
ADDS_R0_1 = b"\x01\x30"                                       # adds r0, #1
CPSID_I = b"\x72\xb6"


def b_to(src: int, dst: int) -> bytes:
    """Thumb T2 unconditional branch ``b dst`` at ``src``."""
    off = (dst - (src + 4)) >> 1
    return (0xE000 | (off & 0x7FF)).to_bytes(2, "little")


def board(code: bytes, irq_enabled: bool = True):
    b = build_m7()
    m, uc = b.machine, b.cpu.uc
    m.write_memory(VTOR + 4 * 16, (HANDLER | 1).to_bytes(4, "little"))
    m.write_memory(HANDLER, BX_LR)
    m.write_memory(CODE, code)
    uc.reg_write(A.UC_ARM_REG_MSP, DTCM + 0x400)
    uc.reg_write(A.UC_ARM_REG_PC, CODE | 1)
    b.cpu.registers_changed()
    if irq_enabled:
        b.nvic.enabled |= 1 << 16
    return b


def spin_here(b, pc: int) -> None:
    b.cpu.uc.reg_write(A.UC_ARM_REG_PC, pc | 1)
    b.cpu.registers_changed()
    b.cpu.sleeping = False


def test_wfi_t1_and_t2_encodings_end_the_slice_asleep_and_are_remembered() -> None:
    code = NOP + WFI + NOP_W + WFI_W + b_to(CODE + 12, CODE)
    b = board(code)
    cpu = b.cpu
    assert cpu._run_slice(100) is None
    assert cpu.sleeping and cpu._pc == CODE + 4 and cpu._cm.wfi_sites() == [CODE + 2]
    cpu.sleeping = False
    cpu._run_slice(100)                                  # nop.w, wfi.w: the 32-bit encoding
    assert cpu.sleeping and cpu._pc == CODE + 12
    assert cpu._cm.wfi_sites() == [CODE + 2, CODE + 8]
    # the end-of-slice batch: PC, the entry registers, the masks (what take() and _enter use)
    regs = cpu._entry_cache
    assert regs is not None and regs[6] == CODE + 12 and regs[8] == DTCM + 0x400
    assert cpu._mask_cache == [0, 0, 0]
    # a known site again (the remembered path)
    spin_here(b, CODE)
    cpu._run_slice(100)
    assert cpu.sleeping and cpu._pc == CODE + 4
    # reset forgets the sites (the image may have changed)
    cpu._do_reset()
    assert cpu._cm.wfi_sites() == []


def test_a_slice_ended_by_count_is_not_a_wfi_and_wfe_sleeps() -> None:
    b = board(NOP * 8 + WFE + b_to(CODE + 18, CODE))
    cpu = b.cpu
    cpu._run_slice(3)                                    # three NOPs: PC after a NOP
    assert not cpu.sleeping and cpu._pc == CODE + 6 and cpu._cm.wfi_sites() == []
    cpu._run_slice(100)                                  # the rest of the NOPs, then WFE
    assert cpu.sleeping and cpu._pc == CODE + 18 and cpu._cm.wfi_sites() == []


def _returned_after_wfi(code: bytes, count: int):
    """Thread code whose WFI at CODE was interrupted (IRQ0 taken with the return address CODE + 2),
    then one slice of ``count`` from the handler's ``bx lr``."""
    b = board(code)
    spin_here(b, CODE + 2)
    b.nvic.set_pending(16)
    assert b.cpu.take_interrupts() and b.cpu._pc == HANDLER
    b.cpu._run_slice(count)
    return b


def test_exception_return_onto_a_wfi_site_is_ambiguous_until_a_restored_register_changes() -> None:
    # wfi; adds r0, #1; b wfi -- the return lands after the WFI
    code = WFI + ADDS_R0_1 + b_to(CODE + 4, CODE)
    # count 1: only the return ran; PC after a WFI, nothing changed since: no sleep (spurious)
    b = _returned_after_wfi(code, 1)
    assert b.cpu._returned_to == CODE + 2 and b.cpu._pc == CODE + 2
    assert not b.cpu.sleeping
    # the loop ran (R0 and the flags changed) and came back through the WFI: asleep
    b = _returned_after_wfi(code, 10)
    assert b.cpu._returned_to == CODE + 2 and b.cpu._pc == CODE + 2
    assert b.cpu.sleeping


def test_each_restored_register_decides_the_ambiguity() -> None:
    """R0-R3, R12, LR, SP or the xPSR flags changed by the thread after the return: the WFI ran."""
    changers = {
        "r0": b"\x01\x30",          # adds r0, #1
        "r1": b"\x01\x31",          # adds r1, #1
        "r2": b"\x01\x32",          # adds r2, #1
        "r3": b"\x01\x33",          # adds r3, #1
        "r12": b"\x0c\xf1\x01\x0c",  # add.w r12, r12, #1
        "lr": b"\x0e\xf1\x01\x0e",  # add.w lr, lr, #1
        "sp": b"\x82\xb0",          # sub sp, #8
        "flags": b"\x00\x28",       # cmp r0, #0 (Z set: R0 is 0 in the frame)
    }
    for name, insn in changers.items():
        n = len(insn) // 2
        code = WFI + insn + b_to(CODE + 2 + len(insn), CODE)
        b = _returned_after_wfi(code, 1 + n + 2)          # return, the change, b, wfi
        assert b.cpu._pc == CODE + 2 and b.cpu._returned_to == CODE + 2, name
        assert b.cpu.sleeping, f"{name} changed after the return: the WFI ran"
    # a thread that changes none of them (a NOP) and comes back: still ambiguous, no sleep
    code = WFI + NOP + b_to(CODE + 4, CODE)
    b = _returned_after_wfi(code, 4)
    assert b.cpu._pc == CODE + 2 and not b.cpu.sleeping


def test_hang_checks_are_asked_only_in_their_case() -> None:
    calls: list[str] = []
    b = board(WFI + b_to(CODE + 2, CODE), irq_enabled=False)
    cpu = b.cpu
    cpu._check_wfi_hang = lambda: calls.append("wfi")
    cpu._check_masked_spin = lambda: calls.append("spin")
    cpu._run_slice(10)
    assert cpu.sleeping and calls == ["wfi"]              # nothing enabled: asked
    b.nvic.enabled |= 1 << 16                             # an IRQ line enabled: it could wake
    spin_here(b, CODE)
    cpu._run_slice(10)
    assert cpu.sleeping and calls == ["wfi"]
    b.nvic.enabled &= ~(1 << 16)
    b.nvic.set_pending(5)                                 # something pending (BusFault, disabled)
    spin_here(b, CODE)
    cpu._run_slice(10)
    assert calls == ["wfi"]
    b.nvic.pending = 0
    cpu._hung_reported = True                             # reported once
    spin_here(b, CODE)
    cpu._run_slice(10)
    assert calls == ["wfi"]

    # masked spin: PRIMASK set at the end of the slice, not parked -> asked; parked or unmasked
    # -> _hang_since forgotten
    b = board(CPSID_I + b_to(CODE + 2, CODE + 2))
    cpu = b.cpu
    cpu._check_masked_spin = lambda: calls.append("spin")
    cpu._run_slice(10)
    assert cpu._mask_cache[0] == 1 and calls[-1] == "spin" and len(calls) == 2
    cpu._hang_since = 123
    cpu.parked = True
    cpu._run_slice(10)
    assert len(calls) == 2 and cpu._hang_since is None
    cpu.parked = False
    cpu.uc.reg_write(A.UC_ARM_REG_PRIMASK, 0)
    cpu.uc.reg_write(A.UC_ARM_REG_FAULTMASK, 1)           # FAULTMASK counts too
    cpu._run_slice(10)
    assert len(calls) == 3
    cpu.uc.reg_write(A.UC_ARM_REG_FAULTMASK, 0)
    cpu._hang_since = 456
    cpu._run_slice(10)
    assert len(calls) == 3 and cpu._hang_since is None and cpu._mask_cache == [0, 0, 0]


def test_masked_spin_is_reported_as_a_hang_through_the_slices() -> None:
    """End to end through the C slice driver: a core spinning with interrupts masked and no
    peripheral access for hang_ps is recorded as hung and halted."""
    b = board(CPSID_I + b_to(CODE + 2, CODE + 2))
    b.cpu.hang_ps = 5_000_000_000                          # 5 ms
    b.scheduler.run_until(20_000_000_000)
    hung = [d for _t, k, d in b.scheduler.log if k == "cpu_hung"]
    assert len(hung) == 1 and hung[0]["pc"] == CODE + 2 and b.cpu.halted
