"""The RV32 core's slice and its end (_core.c's RiscV.run_slice, riscv.py's ``# -- running``).

One implementation, in C; these tests pin what it decides at the end of a slice: WFI (the word
before pc, the answer remembered per pc until reset), the WFI hang (asleep with mie = 0, reported
once), a pc no region holds (an instruction access fault without running unicorn), and when the
masked-spin test is asked (M-mode, mstatus.MIE clear, not parked) or its window forgotten.
"""
from __future__ import annotations

from rv_helpers import build_peer
from unicorn import riscv_const as rv

CODE = 0x4200_0000
HANDLER = 0x4201_0000
WFI = 0x1050_0073
NOP = 0x0000_0013                       # addi x0, x0, 0
J_SELF = 0x0000_006F                    # j .
MSTATUS_MIE = 1 << 3


def words(*ws: int) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in ws)


def peer(code: bytes, mie: int = 1 << 7, mstatus: int = MSTATUS_MIE):
    p = build_peer()
    uc = p.cpu.uc
    p.machine.write_memory(CODE, code)
    p.machine.write_memory(HANDLER, words(J_SELF))
    uc.reg_write(rv.UC_RISCV_REG_MTVEC, HANDLER)
    uc.reg_write(rv.UC_RISCV_REG_MIE, mie)
    uc.reg_write(rv.UC_RISCV_REG_MSTATUS, mstatus)
    uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    p.cpu.registers_changed()
    return p


def test_wfi_is_found_from_the_word_before_pc_and_remembered_per_pc() -> None:
    p = peer(words(NOP, WFI, J_SELF))
    cpu = p.cpu
    assert cpu._rv.wfi_after(CODE + 8) is None
    cpu._run_slice(100)
    assert cpu.sleeping and cpu._next_pc == CODE + 8 and cpu._rv.wfi_after(CODE + 8) is True
    assert cpu._state_cache == [1 << 7, 3, MSTATUS_MIE, CODE + 8, HANDLER]
    # a slice that ends by count after a NOP: not asleep, and that answer is remembered too
    cpu.sleeping = False
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    cpu.registers_changed()
    cpu._run_slice(1)
    assert not cpu.sleeping and cpu._next_pc == CODE + 4 and cpu._rv.wfi_after(CODE + 4) is False
    # remembered: a WFI written at CODE afterwards is not looked at again for pc CODE + 4 (the
    # code is taken as static) ...
    p.machine.write_memory(CODE, words(WFI))
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    cpu.registers_changed()
    cpu._run_slice(1)
    assert cpu._next_pc == CODE + 4 and not cpu.sleeping
    # ... until reset, which forgets every answer (the image may have changed)
    cpu.reset()
    assert cpu._rv.wfi_after(CODE + 8) is None and cpu._rv.wfi_after(CODE + 4) is None
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    cpu.registers_changed()
    cpu._run_slice(1)
    assert cpu._next_pc == CODE + 4 and cpu.sleeping and cpu._rv.wfi_after(CODE + 4) is True


def test_wfi_with_no_interrupt_enabled_is_reported_hung_once() -> None:
    p = peer(words(WFI, J_SELF), mie=0)
    cpu = p.cpu
    cpu._run_slice(10)
    cpu.sleeping = False
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    cpu.registers_changed()
    cpu._run_slice(10)
    hung = [d for _t, k, d in p.scheduler.log if k == "cpu_hung"]
    assert cpu.sleeping and len(hung) == 1 and hung[0]["pc"] == CODE
    # with an interrupt enabled in mie, asleep is not a hang
    p = peer(words(WFI, J_SELF))
    p.cpu._run_slice(10)
    assert p.cpu.sleeping and not [k for _t, k, _d in p.scheduler.log if k == "cpu_hung"]


def test_a_pc_in_no_region_faults_without_running_unicorn() -> None:
    p = peer(words(J_SELF))
    cpu = p.cpu
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, 0x7000_0000)
    cpu.registers_changed()
    before = cpu.exceptions_taken
    cpu._run_slice(10)
    assert cpu.exceptions_taken == before + 1
    assert cpu.csr("mcause") == 1 and cpu.csr("mepc") == 0x7000_0000 and cpu.csr("mtval") == 0x7000_0000
    assert cpu.pc == HANDLER and cpu._next_pc == HANDLER
    # the regions' edges: the last word of the IROM runs, the word after it faults
    last = CODE + 0x80_0000 - 4
    p.machine.write_memory(last, words(J_SELF))
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, last)
    cpu.registers_changed()
    cpu._run_slice(1)
    assert cpu.exceptions_taken == before + 1 and cpu.pc == last
    cpu.uc.reg_write(rv.UC_RISCV_REG_PC, last + 4)
    cpu.registers_changed()
    cpu._run_slice(1)
    assert cpu.exceptions_taken == before + 2 and cpu.csr("mepc") == last + 4


def test_masked_spin_is_asked_only_in_m_mode_with_mie_clear_and_not_parked() -> None:
    calls: list[int] = []
    p = peer(words(J_SELF), mstatus=0)
    cpu = p.cpu
    cpu._check_masked_spin = calls.append
    cpu._run_slice(10)
    assert calls == [CODE]
    cpu.parked = True
    cpu._hang_since = 5
    cpu._run_slice(10)
    assert calls == [CODE] and cpu._hang_since is None
    cpu.parked = False
    cpu.uc.reg_write(rv.UC_RISCV_REG_MSTATUS, MSTATUS_MIE)
    cpu.registers_changed()
    cpu._hang_since = 7
    cpu._run_slice(10)
    assert calls == [CODE] and cpu._hang_since is None
