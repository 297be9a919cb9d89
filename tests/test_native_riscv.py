"""RV32 machine-mode trap entry (native/riscv.c, _core.c's RiscV; the decisions in riscv.py).

One implementation; these tests state what it must do, from the RISC-V privileged spec. A
hand-built peer (tests/rv_helpers.build_peer) gets a synthetic core state (privilege M or U,
mstatus MIE/MPIE/MPP, mie, mtvec direct or vectored, registers) and a code strip Hypothesis picks
(nop, ECALL, EBREAK, C.EBREAK, illegal words, ``csrr time``/0x7E2, CSR writes that unmask or mask,
WFI, a store to the CLINT's msip, a load from an unmapped hole) with a handler area of ``mret``.
Hypothesis drives it with interrupt-line changes (MSIP/MTIP/MEIP), interrupt takes between slices,
trap entries from inside a slice and between slices, and slices of real execution. Every entry is
checked against the spec: mstatus MPIE <- MIE, MIE <- 0, MPP <- privilege; mepc, mcause, mtval;
M-mode; pc <- mtvec base (+ 4 * cause for a vectored interrupt); MEI > MSI > MTI; taken only when
pending in mie and (below M, or mstatus.MIE); the event log's ``cpu_trap`` for faults. Each kind of
instruction that traps is run alone with its exact CSR values (cause, mepc, mtval).
"""
from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rv_helpers import build_peer
from unicorn import riscv_const as rv

from duohil.engines.builtin.cpus.rv32.riscv import MCAUSE_INTERRUPT, TRAP_NAMES

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


def board():
    p = build_peer()
    assert p.cpu._trap_in is p.cpu._rv              # the C register side, the only one
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


def regs(uc) -> list[int]:
    """COMPARED, the CSRs read at M privilege (below M unicorn reads them as garbage)."""
    priv = uc.reg_read(rv.UC_RISCV_REG_PRIV)
    uc.reg_write(rv.UC_RISCV_REG_PRIV, 3)
    out = [uc.reg_read(r) for r in COMPARED]
    uc.reg_write(rv.UC_RISCV_REG_PRIV, priv)
    out[-1] = priv
    return out


def csrs(p) -> dict:
    v = regs(p.cpu.uc)
    return {name: v[COMPARED.index(getattr(rv, f"UC_RISCV_REG_{name.upper()}"))]
            for name in ("pc", "mstatus", "mie", "mepc", "mcause", "mtval", "mtvec", "priv")}


def check_trap(p, before: dict, cause: int, epc: int, tval: int, log0: int, ran_on: bool = False) -> None:
    """The core just entered a trap ``cause`` at ``epc`` (``tval``) from the CSRs ``before``."""
    cpu, now = p.cpu, csrs(p)
    ms = before["mstatus"]
    want_ms = (ms & ~(0x8 | 0x80 | 0x1800)) | (0x80 if ms & 0x8 else 0) | before["priv"] << 11
    assert now["mstatus"] == want_ms, (hex(now["mstatus"]), hex(want_ms))
    assert (now["mepc"], now["mcause"], now["mtval"], now["priv"]) == \
        (epc & 0xFFFF_FFFE, cause, tval & 0xFFFF_FFFF, 3)
    target = before["mtvec"] & ~3
    if before["mtvec"] & 3 == 1 and cause & MCAUSE_INTERRUPT:
        target += 4 * (cause & 0x7FFF_FFFF)
    # the handler's first instruction may run in the same slice (jal at the base)
    assert now["pc"] in ((target, target + 0x100) if ran_on else (target,)), (hex(now["pc"]), hex(target))
    assert cpu.last_trap == (cause, epc & 0xFFFF_FFFE, tval & 0xFFFF_FFFF)
    log = p.scheduler.log[log0:]
    if not cause & MCAUSE_INTERRUPT and cause in TRAP_NAMES:
        assert log[-1][1:] == ("cpu_trap", {"machine": p.machine.name, "cpu": cpu.name, "cause": cause,
                                            "what": TRAP_NAMES[cause], "mepc": epc & 0xFFFF_FFFE,
                                            "mtval": tval & 0xFFFF_FFFF})
    else:
        assert not [e for e in log if e[1] == "cpu_trap"]


def pick(pending: int) -> int:
    for c in (11, 3, 7):                         # MEI > MSI > MTI
        if pending >> c & 1:
            return c
    raise AssertionError(pending)


def apply(p, op) -> None:
    cpu = p.cpu
    kind = op[0]
    before = csrs(p)
    log0 = len(p.scheduler.log)
    taken, excs = cpu.interrupts_taken, cpu.exceptions_taken
    if kind == "input":
        cpu.set_input(op[1], op[2])
        assert cpu.mip >> op[1] & 1 == int(op[2])
        assert csrs(p) == before                     # between slices nothing is taken yet
    elif kind == "take":
        pending = cpu.mip & before["mie"]
        can = bool(pending) and (before["priv"] < 3 or bool(before["mstatus"] & 0x8))
        assert cpu.interrupt_pending() == bool(pending)
        assert cpu.take_interrupts() == can
        if can:
            assert cpu.interrupts_taken == taken + 1
            check_trap(p, before, MCAUSE_INTERRUPT | pick(pending), before["pc"], 0, log0)
            # between slices from M-mode the next slice starts there (from below M: read again)
            assert cpu._next_pc == (csrs(p)["pc"] if before["priv"] == 3 else None)
        else:
            assert csrs(p) == before and cpu.interrupts_taken == taken
    elif kind == "trap":                # an exception entry, from a hook (in a slice) or between
        _, cause, slot, tval, in_slice = op
        cpu.executing = in_slice
        try:
            cpu._enter_trap(cause, CODE + 4 * slot, tval)
        finally:
            cpu.executing = False
        check_trap(p, before, cause, CODE + 4 * slot, tval, log0)
        assert cpu._next_pc == (None if in_slice or before["priv"] != 3 else csrs(p)["pc"])
    elif kind == "run":
        cpu.executing = True
        cpu.slice_start_ps = cpu.now_ps()           # as the slice driver does: machine.now() in it
        try:
            cpu._run_slice(op[1])
        finally:
            cpu.executing = False
        cpu.sleeping = False
        after = csrs(p)
        # every fault the slice took is logged with what the instruction at mepc says it was
        for _t, k, d in p.scheduler.log[log0:]:
            if k != "cpu_trap":
                continue
            insn = int.from_bytes(p.machine.read_memory(d["mepc"], 4), "little")
            if d["cause"] == 3:
                assert insn & 0xFFFF in (0x9002, 0x0073) and d["mtval"] == d["mepc"]
            elif d["cause"] == 2:                   # illegal, or a machine CSR written from U
                assert d["mtval"] == insn
            elif d["cause"] == 5:
                assert insn == INSNS["lw_hole"] and d["mtval"] == 0x7000_0000
        if cpu.exceptions_taken + cpu.interrupts_taken == excs + taken:
            # no trap: mcause/mtval are only ever written by a trap entry (the strip and the
            # handler only read them or write mepc)
            assert (after["mcause"], after["mtval"]) == (before["mcause"], before["mtval"])
        else:
            assert after["mcause"] == cpu.last_trap[0] or after["priv"] == 0   # (mret back to U)
        assert after["priv"] in (0, 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=STATE, ops=st.lists(OP, min_size=1, max_size=14))
def test_traps_are_entered_as_the_privileged_spec_says(s, ops) -> None:
    p = board()
    setup(p, s)
    for op in ops:
        apply(p, op)


@pytest.mark.parametrize("name, priv, cause, tval", [
    ("ecall", 3, 11, None), ("ecall", 0, 8, None),
    ("ebreak", 3, 3, "pc"), ("c.ebreak", 3, 3, "pc"), ("ebreak", 0, 3, "pc"),
    ("illegal", 3, 2, "insn"), ("illegal", 0, 2, "insn"),
    ("csrsi_mie", 0, 2, "insn"),                       # a machine CSR written from U-mode
    ("lw_hole", 3, 5, 0x7000_0000), ("lw_hole", 0, 5, 0x7000_0000),
])
def test_each_trapping_instruction_sets_the_spec_csrs(name, priv, cause, tval) -> None:
    """One instruction run alone: ECALL 8 + privilege (mtval 0), EBREAK/C.EBREAK 3 (mtval = pc),
    illegal 2 (mtval = the instruction), load access fault 5 (mtval = the address); mepc = the
    instruction, MPP = the privilege it came from, MPIE = the MIE it had, M-mode, pc = mtvec."""
    p = board()
    setup(p, {"code": [name, "nop", "nop", "nop"], "priv": priv, "mstatus": 1 << 3, "mie": 0,
              "vectored": False, "a4": 0, "gpr": [0, 0, 0, 0]})
    before = csrs(p)
    log0 = len(p.scheduler.log)
    apply(p, ("run", 1))
    want_tval = {None: 0, "pc": CODE, "insn": INSNS[name] & (0xFFFF if name == "c.ebreak" else
                                                             0xFFFF_FFFF)}.get(tval, tval)
    check_trap(p, before, cause, CODE, want_tval, log0, ran_on=True)
    assert p.cpu.exceptions_taken == 1 and p.cpu.interrupts_taken == 0


@pytest.mark.parametrize("name, reg", [("csrr_time", 10), ("csrr_timeh", 11), ("csrr_pccr", 12)])
def test_time_and_the_c3_cycle_counter_are_emulated_reads(name, reg) -> None:
    """``csrr`` of time/timeh (the CLINT's mtime) and of CSR 0x7E2 (this core's cycles), as of the
    slice start: no trap, the next instruction follows."""
    p = board()
    p.scheduler.run_until(5_000_000)                   # 5 us: mtime and the cycle count move on
    p.machine.bus_write(CLINT_MSIP + 0xBFFC, 4, 7)     # mtime's high word: timeh reads 7
    setup(p, {"code": [name, "nop", "nop", "nop"], "priv": 3, "mstatus": 0, "mie": 0,
              "vectored": False, "a4": 0, "gpr": [0, 0, 0, 0]})
    taken = p.cpu.exceptions_taken                     # (the boot at pc 0 with no image faulted)
    apply(p, ("run", 1))
    got = p.cpu.uc.reg_read(rv.UC_RISCV_REG_X0 + reg)
    want = {"csrr_time": p.clint.mtime() & 0xFFFF_FFFF, "csrr_timeh": p.clint.mtime() >> 32,
            "csrr_pccr": p.cpu.cycles_at(p.machine.now()) & 0xFFFF_FFFF}[name]
    assert p.cpu.exceptions_taken == taken and p.cpu.uc.reg_read(rv.UC_RISCV_REG_PC) == CODE + 4
    assert got == want and want != 0


def test_an_interrupt_from_user_mode_is_entered_and_returned_from() -> None:
    """A vectored MTI from U-mode stacks MIE/MPP, goes to mtvec + 4 * 7, and mret comes back.
    From U-mode, unicorn's register API would read the trap CSRs as garbage and drop their writes
    if the privilege were not raised first."""
    p = board()
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


def test_the_bench_takes_and_returns_every_rv32_interrupt() -> None:
    """`make bench`'s RV32 trap figures come from loops that really enter and return (the bench
    raises when an interrupt was not taken or the mret did not come back to the loop)."""
    from duohil.bench import Report, _rv_for_traps, bench_rv_traps
    costs = bench_rv_traps(Report(), k=100)
    assert set(costs) == {"native"}                 # the difference of two timings: any sign
    cpu = _rv_for_traps()
    cpu.set_input(7, True)
    cpu.executing = True
    assert cpu.take_interrupts()
    assert cpu.pc == 0x4200_0100 and not cpu.take_interrupts()     # in the handler, MIE clear
    cpu._run_slice(1)
    assert cpu.pc == 0x4200_0000 and cpu.take_interrupts()         # mret: back, MIE set again
