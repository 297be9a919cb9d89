"""Differential tests: the CLINT's timer state and MTIP decision in C (native/clint.c) against the
Python reference (clint.py's offset/mtimecmp and _update_mtip).

Two CLINTs, one per DUOHIL_MODELS value, each alone in a machine with its own scheduler, their
MSIP/MTIP outputs recorded with the time of every edge. Hypothesis picks the clock (frequency and
divider, with rounding at tick boundaries) and a program of register writes (mtimecmp halves
written raw or the RV32 way, high word all ones first, to a compare a few ticks behind or ahead;
mtime halves; msip), reads of every register, advances of virtual time (the MTIP events fire) and
resets. After every step both read the same registers, raised and lowered the same lines at the
same picoseconds, hold the same pending MTIP events (time and name) and the same event log.

Register accesses also go through each machine's bus (``bus_read``/``bus_write``): the Python
bus (``bus_target`` -> the register bank) for the reference, the C bus (``_core.Bus`` -> the
model's ``_native_mmio`` port) for the native one, with byte, halfword and word accesses at every
byte of a register and at offsets the map does not model (counted in ``regs.unmodeled`` by both).
"""
from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin.cpus.rv32 import clint as clint_mod
from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

MSIP0, CMP_LO, CMP_HI, MTIME_LO, MTIME_HI = 0x0, 0x4000, 0x4004, 0xBFF8, 0xBFFC
REGS = (MSIP0, CMP_LO, CMP_HI, 0x4 * 1, 0x4008, 0x400C, MTIME_LO, MTIME_HI)   # two harts
BASE = 0x0200_0000
UNMODELLED = (0x8, 0x4010, 0xBFF0, 0xC000)


class Lines:
    """The CPU side of the wires: every edge with its time."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched, self.edges = sched, []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, line, level))


def board(models: str, freq: int, div: int):
    with native.using(models):
        sched = Scheduler(1_000_000)
        m = Machine("peer", sched, platform=__file__)
        c = CoreLevelInterruptor(m, "clint", BASE,
                                 props={"frequency": freq, "divider": div, "numberOfTargets": 2})
        m.add_peripheral(c)
    assert (c._c is not None) == (models == "native")
    assert (m.bus_target(BASE) is not None) and (type(m).__name__ == "MachineNative") == (models == "native")
    if models == "native":
        assert m._bus.target(BASE + MTIME_LO) == (c, True)         # served by the C register map
    lines = Lines(sched)
    for k in range(4):
        c.output(k).connect(lines, k)
    c.reset()
    return sched, c, lines


u32 = st.integers(0, 0xFFFF_FFFF)
OP = st.one_of(
    st.tuples(st.just("w"), st.sampled_from(REGS), u32),
    st.tuples(st.just("cmp_in"), st.integers(0, 1), st.integers(-3, 40)),   # the RV32 way
    st.tuples(st.just("r"),),
    st.tuples(st.just("adv"), st.integers(0, 3_000_000)),                    # up to 3 us
    st.tuples(st.just("reset"),),
    # through the bus, any size at any byte of a register, or where nothing is modelled
    st.tuples(st.just("bw"), st.sampled_from(REGS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4)), u32),
    st.tuples(st.just("br"), st.sampled_from(REGS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4))),
)


def apply(b, op) -> list[int] | None:
    sched, c, _lines = b
    kind = op[0]
    if kind == "w":
        c.write(op[1], 4, op[2])
    elif kind == "cmp_in":
        _, n, delta = op
        target = (c.mtime() + delta) & ((1 << 64) - 1)
        base = 0x4000 + 8 * n
        c.write(base + 4, 4, 0xFFFF_FFFF)
        c.write(base, 4, target & 0xFFFF_FFFF)
        c.write(base + 4, 4, target >> 32)
    elif kind == "r":
        return [c.read(off, 4) for off in REGS]
    elif kind == "adv":
        sched.run_until(sched.now + op[1])
    elif kind == "reset":
        c.reset()
    elif kind == "bw":
        _, off, byte, size, value = op
        c.machine.bus_write(BASE + off + byte, size, value & ((1 << (8 * size)) - 1))
    elif kind == "br":
        _, off, byte, size = op
        return [c.machine.bus_read(BASE + off + byte, size)]
    return None


def state(b) -> dict:
    sched, c, lines = b
    return {
        "regs": [c.read(off, 4) for off in REGS],
        "mtime": c.mtime(),
        "compare": [c.compare(n) for n in range(2)],
        "edges": list(lines.edges),
        "events": [None if e is None else (e.time, e.name) for e in c._events],
        "next": sched.next_event_time(),
        "log": list(sched.log),
        "unmodeled": dict(c.regs.unmodeled),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(freq=st.sampled_from((16_000_000, 32_768, 40_000_000, 3)), div=st.integers(1, 3),
       start=st.integers(0, 5_000_000), ops=st.lists(OP, min_size=1, max_size=20))
def test_clint_state_in_c_equals_the_python_reference(freq, div, start, ops) -> None:
    py, nat = board("python", freq, div), board("native", freq, div)
    for b in (py, nat):
        b[0].run_until(start)
        b[1].reset()
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        ra, rc = apply(py, op), apply(nat, op)
        assert ra == rc, f"step {i} {op}: reads differ"
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def test_the_native_clint_keeps_its_state_in_c_only() -> None:
    """One source of truth: the native model has no Python copy of offset/mtimecmp, and its C
    state does what the map says (a compare 16 ticks ahead raises MTIP 1 us later at 16 MHz)."""
    sched, c, lines = board("native", 16_000_000, 1)
    assert not hasattr(c, "mtimecmp") and not hasattr(c, "offset")
    assert (clint_mod.CL_LOWER, clint_mod.CL_CANCEL, clint_mod.CL_RAISE, clint_mod.CL_SCHEDULE) == \
        (native.core().CL_LOWER, native.core().CL_CANCEL, native.core().CL_RAISE, native.core().CL_SCHEDULE)
    apply((sched, c, lines), ("cmp_in", 0, 16))
    assert c.compare(0) == 16 and c._c.offset == 0
    sched.run_until(1_000_000 - 1)
    assert (0, 1, True) not in [(n, li, lv) for n, li, lv in lines.edges] and not c.output(1).level
    sched.run_until(1_000_000)
    assert c.output(1).level and lines.edges[-1] == (1_000_000, 1, True)
    c.write(MTIME_HI, 4, 1)                             # mtime jumps 2**32 ticks: still past cmp
    assert c.mtime() >> 32 == 1 and c.output(1).level
