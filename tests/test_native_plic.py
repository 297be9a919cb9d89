"""Specification tests of the PLIC (native/plic.c, the one copy; plic.py's map).

What is checked is what the RISC-V PLIC spec 1.0 says, with plic.py's documented choices:
- gateway (level-sensitive): an input going high makes its source pending unless it is already
  pending or in flight; lowering the input leaves a pending request (a pulse latches one); a
  completion ends the flight and, if the input is still high, the source is pending again;
- a claim returns the enabled pending source of the highest priority above the context's
  threshold, the lowest id on ties, or 0; it clears that source's pending bit and puts it in
  flight; priority 0 never interrupts;
- completing an id that is not in flight (or out of range) changes nothing but
  ``bad_completions``;
- each context's output is high exactly while it has a source a claim would return;
- priorities and thresholds are 3 bits (priority writes ignored with ``prioritiesEnabled:
  false``); enable bit 0 and bits above the last source read 0; the pending array is read-only;
- reset: priorities 1, enables and thresholds 0, nothing in flight, the inputs still high pending;
- a byte or halfword read returns the byte lanes of the word (a byte read of the claim register
  claims), a byte or halfword write merges into the register's last written word; other offsets
  are counted as unmodelled.

40 sources over two enable words, two contexts. Hypothesis starts with several lines high and whole
enable words set so that claims compete, then runs a program of line changes and pulses, priority,
enable and threshold writes, claims, good and bad completions, reads and resets, and accesses of
every size at every byte through the machine's (C) bus. Each step is checked against the rule above
from the state read before it, and the invariants after every step.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.plic import (
    CONTEXT_BASE,
    CONTEXT_STRIDE,
    ENABLE_BASE,
    ENABLE_STRIDE,
    PENDING_BASE,
)
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController as Plic
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

SOURCES, CONTEXTS = 40, 2
BASE = 0x0C00_0000
VALID = ((1 << (SOURCES + 1)) - 1) & ~1


class Outputs:
    def __init__(self) -> None:
        self.edges: list[tuple[int, bool]] = []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((line, level))


def board(prio_enabled: bool):
    """A PLIC alone in a machine (its C bus)."""
    m = Machine("peer", Scheduler(1_000_000), platform=__file__)
    p = Plic(m, "plic", BASE, props={"numberOfSources": SOURCES, "numberOfContexts": CONTEXTS,
                                     "prioritiesEnabled": prio_enabled})
    m.add_peripheral(p)
    assert m._bus.target(BASE + CONTEXT_BASE + 4) == (p, True)        # served by the C register map
    out = Outputs()
    for c in range(CONTEXTS):
        p.output(c).connect(out, c)
    p.reset()
    return p, out


def prio_off(i: int) -> int:
    return 4 * i


def enable_off(c: int, w: int) -> int:
    return ENABLE_BASE + ENABLE_STRIDE * c + 4 * w


def threshold_off(c: int) -> int:
    return CONTEXT_BASE + CONTEXT_STRIDE * c


def claim_off(c: int) -> int:
    return CONTEXT_BASE + CONTEXT_STRIDE * c + 4


REG_OFFSETS = ([prio_off(i) for i in range(1, SOURCES + 1)] + [PENDING_BASE, PENDING_BASE + 4]
               + [enable_off(c, w) for c in range(CONTEXTS) for w in range(2)]
               + [threshold_off(c) for c in range(CONTEXTS)])
CLAIMS = [claim_off(c) for c in range(CONTEXTS)]
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
    st.tuples(st.just("complete_claimed"), CTX, st.integers(0, 7)),     # the k-th id in flight
    st.tuples(st.just("read"),),
    st.tuples(st.just("reset"),),
    # through the bus, any size at any byte of a register, or where nothing is modelled
    st.tuples(st.just("bw"), st.sampled_from(REG_OFFSETS + CLAIMS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4)), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("br"), st.sampled_from(REG_OFFSETS + CLAIMS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4))),
)


def snapshot(p) -> dict:
    return {"level": p.level, "pending": p.pending, "in_flight": p.in_flight, "bad": p.bad_completions,
            "priority": p.priority, "enable": p.enable, "threshold": p.threshold}


def best(s: dict, c: int) -> int:
    """The spec's claim: the highest priority above the threshold, the lowest id on ties."""
    cands = [i for i in range(1, SOURCES + 1)
             if (s["pending"] & s["enable"][c]) >> i & 1 and s["priority"][i] > s["threshold"][c]]
    return min(cands, key=lambda i: (-s["priority"][i], i), default=0)


def gateway_high(s: dict, line: int) -> None:
    bit = 1 << line
    if 1 <= line <= SOURCES:
        s["level"] |= bit
        if not (s["pending"] | s["in_flight"]) & bit:
            s["pending"] |= bit


def claim(s: dict, c: int) -> int:
    i = best(s, c)
    if i:
        s["pending"] &= ~(1 << i)
        s["in_flight"] |= 1 << i
    return i


def complete(s: dict, value: int) -> None:
    bit = 1 << value if 1 <= value <= SOURCES else 0
    if not bit & s["in_flight"]:
        s["bad"] += 1
        return
    s["in_flight"] &= ~bit
    if s["level"] & bit:
        s["pending"] |= bit


def reset(s: dict) -> None:
    s.update(pending=s["level"] & VALID, in_flight=0, priority=[1] * (SOURCES + 1),
             enable=[0] * CONTEXTS, threshold=[0] * CONTEXTS)


def write_word(s: dict, written: dict, off: int, size: int, value: int, prio_enabled: bool) -> None:
    """A register write's effect (after the merge into the register's last written word)."""
    w, sh = off & ~3, off & 3
    if w in (PENDING_BASE, PENDING_BASE + 4) or (w not in REG_OFFSETS and w not in CLAIMS):
        return                                           # read-only, or not modelled
    mask = (((1 << (8 * size)) - 1) << (8 * sh)) & 0xFFFF_FFFF
    v = written[w] = (written.get(w, 0) & ~mask) | ((value << (8 * sh)) & mask)
    if 4 <= w <= 4 * SOURCES:
        if prio_enabled:
            s["priority"][w // 4] = v & 7
    elif w in CLAIMS:
        complete(s, v)
    elif w >= CONTEXT_BASE:
        s["threshold"][(w - CONTEXT_BASE) // CONTEXT_STRIDE] = v & 7
    else:
        c, word = divmod(w - ENABLE_BASE, ENABLE_STRIDE)
        sh_w = 32 * (word // 4)
        e = (s["enable"][c] & ~(0xFFFF_FFFF << sh_w)) | (v << sh_w)
        s["enable"][c] = e & VALID


def word_of(s: dict, off: int) -> int:
    w = off & ~3
    if 4 <= w <= 4 * SOURCES:
        return s["priority"][w // 4]
    if w in (PENDING_BASE, PENDING_BASE + 4):
        return s["pending"] >> (8 * (w - PENDING_BASE)) & 0xFFFF_FFFF
    if w in CLAIMS:
        raise AssertionError("a claim is not a plain read")
    if w >= CONTEXT_BASE:
        return s["threshold"][(w - CONTEXT_BASE) // CONTEXT_STRIDE]
    c, word = divmod(w - ENABLE_BASE, ENABLE_STRIDE)
    return s["enable"][c] >> (8 * word) & 0xFFFF_FFFF


def invariants(p, out: Outputs, where: str) -> None:
    s = snapshot(p)
    assert not s["pending"] & s["in_flight"], f"{where}: pending and in flight at once"
    assert not (s["pending"] | s["in_flight"]) & ~VALID, f"{where}: a source that does not exist"
    assert all(not e & ~VALID for e in s["enable"]), f"{where}: enable bit 0 or past the last source"
    assert all(0 <= v <= 7 for v in s["priority"] + s["threshold"]), f"{where}: more than 3 bits"
    for c in range(CONTEXTS):
        assert p.output(c).level == (best(s, c) != 0), f"{where}: context {c}'s output"
        levels = [lv for k, lv in out.edges if k == c]
        assert all(a != b for a, b in zip(levels, levels[1:])), f"{where}: context {c} repeated an edge"
    assert [p.read(off, 4) for off in REG_OFFSETS] == [word_of(s, off) for off in REG_OFFSETS], where


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prio_enabled=st.booleans(),
       high=st.sets(st.integers(1, SOURCES), max_size=8),
       enabled=st.lists(st.sampled_from((0, 0xFFFF_FFFF, 0x0F0F_0F0F)), min_size=4, max_size=4),
       ops=st.lists(OP, min_size=1, max_size=30))
def test_the_plic_does_what_the_spec_says(prio_enabled, high, enabled, ops) -> None:
    p, out = board(prio_enabled)
    written: dict[int, int] = {}
    for c in range(CONTEXTS):
        for w in range(2):
            p.write(enable_off(c, w), 4, enabled[2 * c + w])
            written[enable_off(c, w)] = enabled[2 * c + w]
    for n in sorted(high):
        p.set_input(n, True)
    s = snapshot(p)
    assert s["level"] == s["pending"] == sum(1 << n for n in high) and s["in_flight"] == 0
    assert s["priority"] == [1] * (SOURCES + 1) and s["threshold"] == [0] * CONTEXTS
    invariants(p, out, "start")
    for i, op in enumerate(ops):
        kind, where = op[0], f"step {i} {op}"
        want = snapshot(p)
        got = None
        if kind == "line":
            p.set_input(op[1], op[2])
            if op[2]:
                gateway_high(want, op[1])
            elif 1 <= op[1] <= SOURCES:
                want["level"] &= ~(1 << op[1])
        elif kind == "pulse":
            p.set_input(op[1], True)
            p.set_input(op[1], False)
            gateway_high(want, op[1])
            want["level"] &= ~(1 << op[1])
        elif kind == "prio":
            p.write(prio_off(op[1]), 4, op[2])
            write_word(want, written, prio_off(op[1]), 4, op[2], prio_enabled)
        elif kind == "enable":
            p.write(enable_off(op[1], op[2]), 4, op[3])
            write_word(want, written, enable_off(op[1], op[2]), 4, op[3], prio_enabled)
        elif kind == "threshold":
            p.write(threshold_off(op[1]), 4, op[2])
            write_word(want, written, threshold_off(op[1]), 4, op[2], prio_enabled)
        elif kind == "claim":
            got, spec = p.read(claim_off(op[1]), 4), claim(want, op[1])
            assert got == spec, f"{where}: claimed {got}, the spec says {spec}"
        elif kind == "complete":
            p.write(claim_off(op[1]), 4, op[2])
            write_word(want, written, claim_off(op[1]), 4, op[2], prio_enabled)
        elif kind == "complete_claimed":
            ids = [n for n in range(1, SOURCES + 1) if want["in_flight"] >> n & 1]
            value = ids[op[2] % len(ids)] if ids else op[2]
            p.write(claim_off(op[1]), 4, value)
            write_word(want, written, claim_off(op[1]), 4, value, prio_enabled)
        elif kind == "read":
            assert [p.read(off, 4) for off in REG_OFFSETS] == [word_of(want, off) for off in REG_OFFSETS]
        elif kind == "reset":
            p.reset()
            reset(want)
            written.clear()
        elif kind == "bw":
            _, off, byte, size, value = op
            value &= (1 << (8 * size)) - 1
            before = sum(p.regs.unmodeled.values())
            p.machine.bus_write(BASE + off + byte, size, value)
            write_word(want, written, off + byte, size, value, prio_enabled)
            modelled = (off + byte) & ~3 in REG_OFFSETS + CLAIMS
            assert sum(p.regs.unmodeled.values()) == before + (not modelled), where
        elif kind == "br":
            _, off, byte, size = op
            a = off + byte
            before = sum(p.regs.unmodeled.values())
            got = p.machine.bus_read(BASE + a, size)
            lanes = (1 << (8 * size)) - 1
            if a & ~3 in CLAIMS:
                word = claim(want, (a - CONTEXT_BASE) // CONTEXT_STRIDE)
            elif a & ~3 in REG_OFFSETS:
                word = word_of(want, a)
            else:
                word = 0
                assert sum(p.regs.unmodeled.values()) == before + 1, where
            assert got == (word >> (8 * (a & 3))) & lanes, where
        assert snapshot(p) == want, f"{where}: state"
        invariants(p, out, where)


def test_claim_complete_and_the_gateway_by_hand() -> None:
    """A UART line at priority 3 above threshold 2 is claimed, completed while still high and
    pends again; a pulse latches one request; equal priorities go to the lower id; a completion
    of an id not in flight only counts."""
    p, out = board(True)
    p.write(prio_off(21), 4, 3)
    p.write(threshold_off(0), 4, 2)
    p.write(enable_off(0, 0), 4, 1 << 21 | 1 << 22 | 1 << 5)
    p.set_input(21, True)
    assert out.edges == [(0, True)] and p.pending == 1 << 21
    assert p.read(claim_off(0), 4) == 21 and p.in_flight == 1 << 21 and out.edges[-1] == (0, False)
    p.set_input(21, True)                                           # in flight: no second request
    assert p.pending == 0 and p.read(claim_off(0), 4) == 0
    p.write(claim_off(0), 4, 21)
    assert p.pending == 1 << 21 and p.in_flight == 0 and out.edges[-1] == (0, True)
    p.write(claim_off(0), 4, 5)
    assert p.bad_completions == 1 and p.pending == 1 << 21
    p.write(prio_off(22), 4, 3)
    p.set_input(22, True)
    p.set_input(22, False)                                          # a pulse: latched
    p.set_input(21, False)
    assert p.read(claim_off(0), 4) == 21 and p.read(claim_off(0), 4) == 22   # a tie: lower id first
    p.write(claim_off(0), 4, 21)
    p.write(claim_off(0), 4, 22)
    assert p.pending == 0 and p.in_flight == 0 and not p.output(0).level
    p.set_input(5, True)                                            # priority 1 <= threshold 2
    assert p.pending == 1 << 5 and not p.output(0).level and p.read(claim_off(0), 4) == 0
    assert p.read(claim_off(0) + 0, 1) == 0 and p.read(PENDING_BASE, 1) == 1 << 5


def test_the_state_is_in_c_only() -> None:
    """One source of truth: no Python copy of the state."""
    p, _out = board(True)
    assert type(p._c) is native.core().Plic
    assert not {"pending", "priority", "level", "in_flight"} & set(vars(p))
