"""Differential tests: the PLIC's state and claim/complete in C (native/plic.c) against the Python
reference (plic.py).

Two PLICs, one per DUOHIL_MODELS value, each alone in a machine (40 sources over two enable words,
two contexts, priorities enabled or not), their context outputs recorded edge by edge. Hypothesis
drives both through the same program: input lines raised and lowered (pulses latch, level lines
re-pend after completion), priority, enable and threshold writes through the register map, claims
(reads of the claim register) and completions (writes, including ids not in flight and out of
range), reads of every register, resets. After every step both returned the same values, made the
same output edges and hold the same state (lines, pending, in flight, bad completions).

Register accesses also go through each machine's bus (``bus_read``/``bus_write``): the Python
bus (``bus_target`` -> the register bank) for the reference, the C bus (``_core.Bus`` -> the
model's ``_native_mmio`` port) for the native one, with byte, halfword and word accesses at every
byte of a register (a claim by a byte read claims) and at offsets the map does not model.
"""
from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.cpus.rv32.plic import CONTEXT_BASE, CONTEXT_STRIDE, ENABLE_BASE, ENABLE_STRIDE, PENDING_BASE
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController as Plic
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

SOURCES, CONTEXTS = 40, 2
BASE = 0x0C00_0000


class Outputs:
    def __init__(self) -> None:
        self.edges: list[tuple[int, bool]] = []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((line, level))


def board(models: str, prio_enabled: bool):
    with native.using(models):
        m = Machine("peer", Scheduler(1_000_000), platform=__file__)
        p = Plic(m, "plic", BASE, props={"numberOfSources": SOURCES, "numberOfContexts": CONTEXTS,
                                         "prioritiesEnabled": prio_enabled})
        m.add_peripheral(p)
    assert (p._c is not None) == (models == "native")
    if models == "native":
        assert m._bus.target(BASE + CONTEXT_BASE + 4) == (p, True)    # served by the C register map
    out = Outputs()
    for c in range(CONTEXTS):
        p.output(c).connect(out, c)
    p.reset()
    return p, out


REG_OFFSETS = ([4 * i for i in range(1, SOURCES + 1)] + [PENDING_BASE, PENDING_BASE + 4]
               + [ENABLE_BASE + ENABLE_STRIDE * c + 4 * w for c in range(CONTEXTS) for w in range(2)]
               + [CONTEXT_BASE + CONTEXT_STRIDE * c for c in range(CONTEXTS)])
CLAIMS = [CONTEXT_BASE + CONTEXT_STRIDE * c + 4 for c in range(CONTEXTS)]
UNMODELLED = [0, 4 * (SOURCES + 1), PENDING_BASE + 8, ENABLE_BASE + 8, ENABLE_BASE + ENABLE_STRIDE * CONTEXTS,
              CONTEXT_BASE + 8, CONTEXT_BASE + CONTEXT_STRIDE * CONTEXTS]
LINE = st.integers(0, SOURCES + 1)
CTX = st.integers(0, CONTEXTS - 1)
OP = st.one_of(
    st.tuples(st.just("line"), LINE, st.booleans()),
    st.tuples(st.just("pulse"), LINE),
    st.tuples(st.just("prio"), st.integers(1, SOURCES), st.integers(0, 15)),
    st.tuples(st.just("enable"), CTX, st.integers(0, 1), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("threshold"), CTX, st.integers(0, 9)),
    st.tuples(st.just("claim"), CTX),
    st.tuples(st.just("complete"), CTX, st.integers(0, SOURCES + 3)),
    st.tuples(st.just("read"),),
    st.tuples(st.just("reset"),),
    # through the bus, any size at any byte of a register, or where nothing is modelled
    st.tuples(st.just("bw"), st.sampled_from(REG_OFFSETS + CLAIMS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4)), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("br"), st.sampled_from(REG_OFFSETS + CLAIMS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4))),
)


def apply(b, op):
    p, _out = b
    kind = op[0]
    if kind == "line":
        p.set_input(op[1], op[2])
    elif kind == "pulse":
        p.set_input(op[1], True)
        p.set_input(op[1], False)
    elif kind == "prio":
        p.write(4 * op[1], 4, op[2])
    elif kind == "enable":
        p.write(ENABLE_BASE + ENABLE_STRIDE * op[1] + 4 * op[2], 4, op[3])
    elif kind == "threshold":
        p.write(CONTEXT_BASE + CONTEXT_STRIDE * op[1], 4, op[2])
    elif kind == "claim":
        return p.read(CONTEXT_BASE + CONTEXT_STRIDE * op[1] + 4, 4)
    elif kind == "complete":
        p.write(CONTEXT_BASE + CONTEXT_STRIDE * op[1] + 4, 4, op[2])
    elif kind == "read":
        return [p.read(off, 4) for off in REG_OFFSETS]
    elif kind == "reset":
        p.reset()
    elif kind == "bw":
        _, off, byte, size, value = op
        p.machine.bus_write(BASE + off + byte, size, value & ((1 << (8 * size)) - 1))
    elif kind == "br":
        _, off, byte, size = op
        return p.machine.bus_read(BASE + off + byte, size)
    return None


def state(b) -> dict:
    p, out = b
    return {
        "regs": [p.read(off, 4) for off in REG_OFFSETS],
        "state": (p.level, p.pending, p.in_flight, p.bad_completions, p.priority, p.enable, p.threshold),
        "outputs": [p.output(c).level for c in range(CONTEXTS)],
        "edges": list(out.edges),
        "unmodeled": dict(p.regs.unmodeled),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prio_enabled=st.booleans(), high=st.sets(st.integers(1, SOURCES), max_size=8),
       enabled=st.lists(st.sampled_from((0, 0xFFFF_FFFF, 0x0F0F_0F0F)), min_size=4, max_size=4),
       ops=st.lists(OP, min_size=1, max_size=30))
def test_plic_in_c_equals_the_python_reference(prio_enabled, high, enabled, ops) -> None:
    """A start with several lines high and whole enable words set, so that claims compete."""
    py, nat = board("python", prio_enabled), board("native", prio_enabled)
    start = ([("enable", c, w, enabled[2 * c + w]) for c in range(CONTEXTS) for w in range(2)]
             + [("line", n, True) for n in sorted(high)])
    for op in start:
        for b in (py, nat):
            apply(b, op)
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        ra, rc = apply(py, op), apply(nat, op)
        assert ra == rc, f"step {i} {op}: returned values differ"
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def test_the_native_plic_keeps_its_state_in_c_only() -> None:
    """One source of truth, and the C state does what the map says: a UART line at priority 3
    above threshold 2 is claimed, completed while still high, and pends again."""
    p, out = board("native", True)
    assert "pending" not in p.__dict__ and "priority" not in p.__dict__
    p.write(4 * 21, 4, 3)
    p.write(CONTEXT_BASE, 4, 2)
    p.write(ENABLE_BASE, 4, 1 << 21)
    p.set_input(21, True)
    assert out.edges == [(0, True)] and p.pending == 1 << 21
    assert p.read(CONTEXT_BASE + 4, 4) == 21 and p.in_flight == 1 << 21 and out.edges[-1] == (0, False)
    p.write(CONTEXT_BASE + 4, 4, 21)
    assert p.pending == 1 << 21 and p.in_flight == 0 and out.edges[-1] == (0, True)
    p.write(CONTEXT_BASE + 4, 4, 5)
    assert p.bad_completions == 1
