"""RV32 interrupt entry between slices in C (issue 13: RiscV.take_interrupts, native/_core.c
[rvtake], the rule in native/riscv.c): the C slice driver asks ``cpu.take_interrupts`` ~1 400 times
per virtual second of nominal traffic, and no Python runs for it now.

From the RISC-V privileged spec: an interrupt is taken when pending in mip and enabled in mie, and
below M-mode or with mstatus.MIE set; among the M-mode causes MEI (11) > MSI (3) > MTI (7), then
the platform causes (>= 16), highest first; mcause = interrupt bit | cause, mepc = the pc the next
slice would have started at, MPIE <- MIE, MIE <- 0, MPP <- privilege, M-mode, pc <- mtvec base (+ 4
* cause when vectored). duohil's own contract on top: interrupts_taken + 1, last_trap, the next
slice's pc known (from M-mode), the end-of-slice state (_state_cache) used while it holds and kept
when read, no ``cpu_trap`` event-log record (that is for synchronous traps).
"""
from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_native_riscv import CODE, HANDLER, board, csrs, setup

MIE_BIT, MPIE, MPP_M = 1 << 3, 1 << 7, 3 << 11
INT = 0x8000_0000


def nops(priv: int = 3, mstatus: int = MIE_BIT, mie: int = 0x888, vectored: bool = False) -> dict:
    return {"code": ["nop"] * 8, "priv": priv, "mstatus": mstatus, "mie": mie, "vectored": vectored,
            "a4": 0, "gpr": [0, 0, 0, 0]}


def run(p, count: int) -> None:
    cpu = p.cpu
    cpu.executing = True
    try:
        cpu._run_slice(count)
    finally:
        cpu.executing = False


def python_calls(fn) -> tuple[object, list[str]]:
    """fn()'s result and the Python functions it called (sys.setprofile sees every Python frame)."""
    seen: list[str] = []

    def prof(frame, event, _arg):
        if event == "call":
            seen.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
    sys.setprofile(prof)
    try:
        out = fn()
    finally:
        sys.setprofile(None)
    return out, seen


def spec_cause(pending: int) -> int:
    """The privileged spec's order, written out: MEI, MSI, MTI, then the highest platform bit."""
    if pending & (1 << 11):
        return 11
    if pending & (1 << 3):
        return 3
    if pending & (1 << 7):
        return 7
    return max(b for b in range(32) if pending >> b & 1)


def test_an_interrupt_taken_between_slices_is_entered_in_c() -> None:
    p = board()
    cpu = p.cpu
    setup(p, nops())
    run(p, 2)                                        # a slice: its end leaves the state batch
    assert cpu._state_cache is not None and cpu._state_cache[3] == CODE + 8
    cpu.set_input(7, True)                           # MTIP, between slices
    log0 = len(p.scheduler.log)
    assert cpu.take_interrupts == cpu._rv.take_interrupts          # the C method, attached
    took, called = python_calls(cpu.take_interrupts)
    assert took is True and called == []             # no Python frame at all
    c = csrs(p)
    assert (c["mcause"], c["mepc"], c["mtval"], c["priv"]) == (INT | 7, CODE + 8, 0, 3)
    assert c["mstatus"] == MPIE | MPP_M              # MIE stacked into MPIE, cleared, MPP = M
    assert c["pc"] == HANDLER
    assert cpu.interrupts_taken == 1 and cpu.exceptions_taken == 0
    assert cpu.last_trap == (INT | 7, CODE + 8, 0)
    assert cpu._next_pc == HANDLER and cpu._state_cache is None
    assert not [e for e in p.scheduler.log[log0:] if e[1] == "cpu_trap"]
    # in the handler MIE is clear: nothing more is taken, and the next slice starts at mtvec
    assert cpu.take_interrupts() is False and cpu.interrupts_taken == 1
    run(p, 1)                                        # jal to the common handler
    assert csrs(p)["pc"] == HANDLER + 0x100


def test_from_user_mode_vectored_the_next_pc_is_read_again() -> None:
    p = board()
    cpu = p.cpu
    setup(p, nops(priv=0, mstatus=0, vectored=True))  # below M, mstatus.MIE does not matter
    cpu.set_input(11, True)
    cpu.set_input(3, True)
    assert cpu.take_interrupts() is True
    c = csrs(p)
    assert (c["mcause"], c["mepc"], c["pc"], c["priv"]) == (INT | 11, CODE, HANDLER + 4 * 11, 3)
    assert c["mstatus"] == 0                         # MPIE <- MIE (0), MPP <- U (0)
    assert cpu._next_pc is None and cpu.last_trap == (INT | 11, CODE, 0)


def test_the_end_of_slice_state_is_used_while_it_holds_and_kept_when_read() -> None:
    p = board()
    cpu = p.cpu
    setup(p, nops(mstatus=0))                        # M-mode, MIE clear: not takeable
    cpu.set_input(7, True)
    assert cpu._state_cache is None
    assert cpu.take_interrupts() is False
    assert cpu._state_cache == cpu._rv.read()        # read once, kept for the next asks
    # while it holds it is what counts (nothing ran or was written since): a copy that says
    # MIE set and pc = CODE + 12 is entered from, whatever the core's registers say
    cpu._state_cache = [1 << 7, 3, MIE_BIT, CODE + 12, HANDLER]
    assert cpu.take_interrupts() is True
    c = csrs(p)
    assert (c["mepc"], c["mcause"], c["mstatus"], c["pc"]) == (CODE + 12, INT | 7, MPIE | MPP_M, HANDLER)


@pytest.mark.parametrize("bits, cause", [
    ((3, 7, 11), 11), ((3, 11), 11), ((7, 11), 11), ((3, 7), 3), ((7,), 7), ((11,), 11), ((3,), 3),
    ((1, 5, 9), 9), ((7, 9, 10), 7), ((3, 10), 3), ((1, 5), 5), ((11, 10, 9), 11)])
def test_priority_order_of_causes(bits, cause) -> None:
    """MEI > MSI > MTI over everything; without them, the highest pending bit."""
    p = board()
    cpu = p.cpu
    setup(p, nops(mie=0xFFFF_FFFF, vectored=True))
    cpu.mip = sum(1 << b for b in bits)
    assert cpu.take_interrupts() is True
    c = csrs(p)
    assert (c["mcause"], c["pc"]) == (INT | cause, HANDLER + 4 * cause)
    assert cpu.last_trap == (INT | cause, CODE, 0) and cpu.interrupts_taken == 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mip=st.integers(0, 0xFFFF_FFFF), mie=st.sampled_from((0xFFFF_FFFF, 0x888, 0x80, 0xFFFF_0000,
                                                            0xFFFF_F7FF, 0x0000_0088, 0)),
       priv=st.sampled_from((3, 0)), ms=st.sampled_from((0, MIE_BIT)), data=st.data())
def test_which_interrupt_and_whether(mip, mie, priv, ms, data) -> None:
    """Any mip/mie/privilege/mstatus.MIE: taken iff mip & mie and (below M or MIE); the cause by
    the spec's priority; bits only in mip or only in mie never chosen. (mip is the CPU's shadow of
    the input lines, so it can hold platform bits mie does not keep: unicorn's E31 keeps 0xEEE, so
    the "highest other bit" rule is exercised with the S/U-level bits 1, 5, 9, 10.)"""
    if data.draw(st.booleans()):                     # sparse: a few bits, so the order matters
        mip = sum(1 << b for b in data.draw(st.sets(st.sampled_from((1, 3, 5, 7, 9, 10, 11, 16, 31)),
                                                    max_size=3)))
    p = board()
    cpu = p.cpu
    setup(p, nops(priv=priv, mstatus=ms, mie=mie))
    cpu.mip = mip
    pending = mip & csrs(p)["mie"]                   # mie is WARL: the bits the core keeps
    can = bool(pending) and (priv == 0 or bool(ms & MIE_BIT))
    assert cpu.take_interrupts() is can
    assert cpu.interrupts_taken == int(can)
    c = csrs(p)
    if can:
        assert c["mcause"] == INT | spec_cause(pending) and c["mepc"] == CODE and c["pc"] == HANDLER
        assert cpu.last_trap == (c["mcause"], CODE, 0)
    else:
        assert (c["mcause"], c["pc"], c["priv"]) == (0, CODE, priv) and cpu.last_trap is None
