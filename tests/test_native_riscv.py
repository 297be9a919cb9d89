"""Differential tests: RV32 machine-mode trap entry in C (native/riscv.c) against the Python
reference (riscv.py's _enter_trap and its ctypes register access).

Two hand-built peers (tests/rv_helpers.build_peer), one per DUOHIL_MODELS value, get the same
synthetic core state (privilege M or U, mstatus MIE/MPIE/MPP, mie, mtvec direct or vectored,
registers) and the same code: a strip of instructions Hypothesis picks (nop, ECALL, EBREAK,
C.EBREAK, illegal words, ``csrr time``/0x7E2, CSR writes that unmask or mask, WFI, a store to
the CLINT's msip, a load from an unmapped hole) and a handler area of ``mret``. Hypothesis then
drives both with the same interrupt-line changes (MSIP/MTIP/MEIP), interrupt takes between
slices, trap entries from inside a slice and between slices, and slices of real execution (which
reach the traps through unicorn's hooks and return with ``mret``). After every step both hold the
same registers and CSRs (mstatus, mie, mepc, mcause, mtval, mtvec, priv, pc), the same core state
(mip shadow, trap counts, last trap, sleeping, where the next slice starts) and the same event log.
"""
from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rv_helpers import build_peer
from unicorn import riscv_const as rv

from duohil.engines.builtin import native
from duohil.engines.builtin.riscv import MCAUSE_INTERRUPT

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

CODE = 0x4200_0000
HANDLER = 0x4201_0000            # mtvec's base: see handler()
MRET = 0x3020_0073
CLINT_MSIP = 0x0200_0000
# 32-bit words (16-bit ones padded with a C.NOP so the strip stays word-aligned)
INSNS = {
    "nop": 0x0000_0013,
    "ecall": 0x0000_0073,
    "ebreak": 0x0010_0073,
    "c.ebreak": 0x0001_9002,                  # C.EBREAK, C.NOP
    "illegal": 0xFFFF_FFFF,
    "csrr_time": 0xC010_2573,                 # csrr a0, time
    "csrr_timeh": 0xC810_25F3,                # csrr a1, timeh
    "csrr_pccr": 0x7E20_2673,                 # csrr a2, 0x7E2
    "csrsi_mie": 0x3004_6073,                 # csrsi mstatus, 8
    "csrci_mie": 0x3004_7073,                 # csrci mstatus, 8
    "csrw_mie": 0x3042_9073,                  # csrw mie, t0 (t0 = 0x888)
    "wfi": 0x1050_0073,
    "sw_msip": 0x00E3_2023,                   # sw a4, 0(t1): msip <- a4 (t1 = CLINT base)
    "lw_hole": 0x0003_A783,                   # lw a5, 0(t2): t2 = an unmapped address
}
NAMES = sorted(INSNS)
COMPARED = ([rv.UC_RISCV_REG_X1 + i for i in range(31)] +
            [rv.UC_RISCV_REG_PC, rv.UC_RISCV_REG_MSTATUS, rv.UC_RISCV_REG_MIE, rv.UC_RISCV_REG_MEPC,
             rv.UC_RISCV_REG_MCAUSE, rv.UC_RISCV_REG_MTVAL, rv.UC_RISCV_REG_MTVEC,
             rv.UC_RISCV_REG_PRIV])

u32 = st.integers(0, 0xFFFF_FFFF)
STATE = st.fixed_dictionaries({
    "code": st.lists(st.sampled_from(NAMES), min_size=4, max_size=24),
    "priv": st.sampled_from((3, 3, 0)),
    "mstatus": st.sampled_from((0, 1 << 3, 1 << 7, (1 << 3) | (1 << 7), 3 << 11, (3 << 11) | (1 << 3))),
    "mie": st.sampled_from((0, 1 << 3, 1 << 7, 1 << 11, 0x888)),
    "vectored": st.booleans(),
    "a4": st.integers(0, 1),
    "gpr": st.lists(u32, min_size=4, max_size=4),
})
LINES = st.sampled_from((3, 7, 11))
OP = st.one_of(
    st.tuples(st.just("input"), LINES, st.booleans()),
    st.tuples(st.just("take"),),
    st.tuples(st.just("trap"), st.sampled_from((1, 2, 3, 5, 7, 11, MCAUSE_INTERRUPT | 7)),
              st.integers(0, 23), u32, st.booleans()),
    st.tuples(st.just("run"), st.integers(1, 6)),
)


def _b_type(funct3: int, rs1: int, rs2: int, off: int) -> int:
    return (((off >> 12) & 1) << 31 | ((off >> 5) & 0x3F) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12
            | ((off >> 1) & 0xF) << 8 | ((off >> 11) & 1) << 7 | 0x63)


def _jal0(off: int) -> int:
    return (((off >> 20) & 1) << 31 | ((off >> 1) & 0x3FF) << 21 | ((off >> 11) & 1) << 20
            | ((off >> 12) & 0xFF) << 12 | 0x6F)


def handler() -> bytes:
    """mtvec's area: base + 0 jumps to a common handler that returns from an exception past the
    faulting word (mepc += 4) and from an interrupt to where it was; in vectored mode MSI/MTI/MEI
    land on their own ``mret`` at base + 4 * cause."""
    words = [MRET] * 64
    words[0] = _jal0(0x100)
    common = [0x3420_2E73,                                  # csrr t3, mcause
              _b_type(4, 28, 0, 16),                        # blt t3, x0, +16: an interrupt
              0x3410_2E73,                                  # csrr t3, mepc
              (4 << 20) | (28 << 15) | (28 << 7) | 0x13,    # addi t3, t3, 4
              (0x341 << 20) | (28 << 15) | (1 << 12) | 0x73,  # csrw mepc, t3
              MRET]
    words[0x40:0x40 + len(common)] = common
    return b"".join(w.to_bytes(4, "little") for w in words)


def board(models: str):
    with native.using(models):
        p = build_peer()
    assert (p.cpu._rv is not None) == (models == "native")
    return p


def setup(p, s) -> None:
    cpu, uc = p.cpu, p.cpu.uc
    code = b"".join(INSNS[n].to_bytes(4, "little") for n in s["code"])
    p.machine.write_memory(CODE, code + INSNS["wfi"].to_bytes(4, "little") * 4)
    p.machine.write_memory(HANDLER, handler())
    for i, v in enumerate(s["gpr"]):                        # s0, s1, a6, a7: just data
        uc.reg_write((rv.UC_RISCV_REG_X8, rv.UC_RISCV_REG_X9, rv.UC_RISCV_REG_X16,
                      rv.UC_RISCV_REG_X17)[i], v)
    uc.reg_write(rv.UC_RISCV_REG_X5, 0x888)                 # t0: mie's MSIE/MTIE/MEIE
    uc.reg_write(rv.UC_RISCV_REG_X6, CLINT_MSIP)            # t1
    uc.reg_write(rv.UC_RISCV_REG_X7, 0x7000_0000)           # t2: unmapped
    uc.reg_write(rv.UC_RISCV_REG_X14, s["a4"])              # a4
    uc.reg_write(rv.UC_RISCV_REG_MTVEC, HANDLER | int(s["vectored"]))
    uc.reg_write(rv.UC_RISCV_REG_MIE, s["mie"])
    uc.reg_write(rv.UC_RISCV_REG_MSTATUS, s["mstatus"])
    uc.reg_write(rv.UC_RISCV_REG_PC, CODE)
    uc.reg_write(rv.UC_RISCV_REG_PRIV, s["priv"])
    cpu.registers_changed()


def apply(p, op) -> None:
    cpu = p.cpu
    kind = op[0]
    if kind == "input":
        cpu.set_input(op[1], op[2])
    elif kind == "take":
        cpu.take_interrupts()
    elif kind == "trap":                # an exception entry, from a hook (in a slice) or between
        _, cause, slot, tval, in_slice = op
        cpu.executing = in_slice
        try:
            cpu._enter_trap(cause, CODE + 4 * slot, tval)
        finally:
            cpu.executing = False
    elif kind == "run":
        cpu.executing = True
        try:
            cpu._run_slice(op[1])
        finally:
            cpu.executing = False
        cpu.sleeping = False


def regs(uc) -> list[int]:
    """COMPARED, the CSRs read at M privilege (below M unicorn reads them as garbage)."""
    priv = uc.reg_read(rv.UC_RISCV_REG_PRIV)
    uc.reg_write(rv.UC_RISCV_REG_PRIV, 3)
    out = [uc.reg_read(r) for r in COMPARED]
    uc.reg_write(rv.UC_RISCV_REG_PRIV, priv)
    out[-1] = priv
    return out


def state(p) -> dict:
    cpu, uc = p.cpu, p.cpu.uc
    return {
        "regs": regs(uc),
        "cpu": (cpu.mip, cpu.interrupts_taken, cpu.exceptions_taken, cpu.last_trap, cpu.sleeping,
                cpu._next_pc, cpu._state_cache),
        "clint": (p.clint.read(0, 4),),
        "log": list(p.scheduler.log),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=STATE, ops=st.lists(OP, min_size=1, max_size=14))
def test_trap_entry_in_c_equals_the_python_reference(s, ops) -> None:
    py, nat = board("python"), board("native")
    for p in (py, nat):
        setup(p, s)
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        for p in (py, nat):
            apply(p, op)
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


@pytest.mark.parametrize("models", ["python", "native"])
def test_an_interrupt_from_user_mode_is_entered_and_returned_from(models) -> None:
    """Each path does what the privileged spec says (the native one is the C code, not the Python
    methods by another name): a vectored MTI from U-mode stacks MIE/MPP, goes to mtvec + 4 * 7,
    and mret comes back. From U-mode, unicorn's register API would read the trap CSRs as garbage
    and drop their writes if the privilege were not raised first."""
    p = board(models)
    native_path = type(p.cpu)._enter_trap_native if models == "native" else type(p.cpu)._enter_trap
    assert p.cpu._enter_trap.__func__ is native_path
    setup(p, {"code": ["nop"] * 4, "priv": 0, "mstatus": 1 << 3, "mie": 1 << 7, "vectored": True,
              "a4": 0, "gpr": [0, 0, 0, 0]})
    p.cpu.set_input(7, True)
    assert p.cpu.interrupt_pending()
    assert p.cpu.take_interrupts()
    uc = p.cpu.uc
    assert uc.reg_read(rv.UC_RISCV_REG_PC) == HANDLER + 4 * 7
    assert uc.reg_read(rv.UC_RISCV_REG_MCAUSE) == MCAUSE_INTERRUPT | 7
    assert uc.reg_read(rv.UC_RISCV_REG_MEPC) == CODE
    ms = uc.reg_read(rv.UC_RISCV_REG_MSTATUS)
    assert ms & (1 << 7) and not ms & (1 << 3) and (ms >> 11) & 3 == 0     # MPIE, MIE off, MPP=U
    assert uc.reg_read(rv.UC_RISCV_REG_PRIV) == 3
    p.cpu.set_input(7, False)
    apply(p, ("run", 1))                                        # mret
    assert uc.reg_read(rv.UC_RISCV_REG_PC) == CODE
    assert uc.reg_read(rv.UC_RISCV_REG_PRIV) == 0
    assert regs(uc)[COMPARED.index(rv.UC_RISCV_REG_MSTATUS)] & (1 << 3)     # MIE back from MPIE


def test_the_bench_takes_and_returns_every_rv32_interrupt_under_both_switches() -> None:
    """`make bench`'s RV32 trap figures come from loops that really enter and return (the bench
    raises when an interrupt was not taken or the mret did not come back to the loop)."""
    from duohil.bench import Report, _rv_for_traps, bench_rv_traps
    costs = bench_rv_traps(Report(), k=100)
    assert set(costs) == {"python", "native"}
    cpu = _rv_for_traps("native")
    cpu.set_input(7, True)
    cpu.executing = True
    assert cpu.take_interrupts()
    assert cpu.pc == 0x4200_0100 and not cpu.take_interrupts()     # in the handler, MIE clear
    cpu._run_slice(1)
    assert cpu.pc == 0x4200_0000 and cpu.take_interrupts()         # mret: back, MIE set again
