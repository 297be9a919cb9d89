"""Specification tests of the CLINT (native/clint.c, the one copy; clint.py's map).

What is checked is what the RISC-V privileged spec (machine timer registers) and SiFive's CLINT
layout say, with clint.py's documented choices: mtime counts ``frequency / divider`` ticks per
second of virtual time from the value last written to it (0 at reset), each 32-bit half readable
and writable; MTIP of hart n is ``mtime >= mtimecmp[n]`` at every instant (a level, raised at the
first picosecond where it holds, lowered at once by a compare or mtime write that makes it false);
MSIP of hart n is bit 0 of its msip word (bits 31:1 read 0); mtimecmp reads back as written, all
ones at reset; a byte or halfword write merges into the register's last written word; offsets
outside the map are counted as unmodelled. Compares further than 2**40 ticks ahead get no event
(they are never reached in a run).

Hypothesis picks the clock (down to 3 Hz, dividers 1..3: ticks that straddle picoseconds) and a
program of register writes (raw, or the RV32 way: high word all ones first, a compare a few
ticks behind or ahead), reads, advances of virtual time, resets and accesses of every size at
every byte through the machine's (C) bus. The test keeps what the spec needs to predict -- the
value mtime was set to and the tick it was set at, the compares, the last written words -- and
checks every read, every line level, every edge's picosecond and every pending MTIP event
against it.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_S
from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

MSIP0, CMP_LO, CMP_HI, MTIME_LO, MTIME_HI = 0x0, 0x4000, 0x4004, 0xBFF8, 0xBFFC
HARTS = 2
REGS = (MSIP0, 0x4, CMP_LO, CMP_HI, 0x4008, 0x400C, MTIME_LO, MTIME_HI)
BASE = 0x0200_0000
UNMODELLED = (0x8, 0x4010, 0xBFF0, 0xC000)
MASK64 = (1 << 64) - 1
FAR_TICKS = 1 << 40


class Lines:
    """The CPU side of the wires: every edge with its time."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched, self.edges = sched, []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, line, level))


class Spec:
    """What the spec needs to predict the CLINT: mtime's value and the tick it was set at, each
    hart's compare, the last written word of each register."""

    def __init__(self, freq: int, div: int) -> None:
        self.freq, self.div = freq, div
        self.reset(0)

    def ticks(self, t: int) -> int:
        return t * self.freq // (self.div * PS_PER_S)

    def first_ps_of_tick(self, tick: int) -> int:
        return -(-tick * self.div * PS_PER_S // self.freq)

    def reset(self, now: int) -> None:
        self.base, self.base_tick = 0, self.ticks(now)     # mtime = base + ticks since base_tick
        self.cmp = [MASK64] * HARTS
        self.written = {off: 0 for off in REGS}

    def mtime_unwrapped(self, t: int) -> int:
        return self.base + self.ticks(t) - self.base_tick

    def mtime(self, t: int) -> int:
        return self.mtime_unwrapped(t) & MASK64

    def mtip(self, n: int, t: int) -> bool:
        return self.mtime_unwrapped(t) >= self.cmp[n]

    def due_ps(self, n: int, now: int) -> int | None:
        """The first picosecond MTIP of hart n holds, if an event should wait for it."""
        due_tick = self.cmp[n] - self.base + self.base_tick
        if due_tick - self.ticks(now) > FAR_TICKS:
            return None
        t = self.first_ps_of_tick(due_tick)
        return t if t < 1 << 63 else None

    def word(self, off: int, t: int) -> int:
        w = off & ~3
        if w in (MSIP0, 0x4):
            return self.written[w] & 1                       # bits 31:1 read 0
        if CMP_LO <= w < CMP_LO + 8 * HARTS:
            n, hi = (w - CMP_LO) // 8, w & 4
            return (self.cmp[n] >> (32 if hi else 0)) & 0xFFFF_FFFF
        if w in (MTIME_LO, MTIME_HI):
            return (self.mtime(t) >> (32 if w == MTIME_HI else 0)) & 0xFFFF_FFFF
        return 0                                             # not modelled: reads 0

    def write(self, off: int, size: int, value: int, t: int) -> None:
        w, sh = off & ~3, off & 3
        if w not in self.written:
            return
        mask = (((1 << (8 * size)) - 1) << (8 * sh)) & 0xFFFF_FFFF
        word = self.written[w] = (self.written[w] & ~mask) | ((value << (8 * sh)) & mask)
        if CMP_LO <= w < CMP_LO + 8 * HARTS:
            n, shift = (w - CMP_LO) // 8, 32 if w & 4 else 0
            self.cmp[n] = (self.cmp[n] & ~(0xFFFF_FFFF << shift)) | (word << shift)
        elif w in (MTIME_LO, MTIME_HI):
            shift = 32 if w == MTIME_HI else 0
            cur = self.mtime(t)
            self.base = (cur & ~(0xFFFF_FFFF << shift) & MASK64) | (word << shift)
            self.base_tick = self.ticks(t)


def board(freq: int, div: int):
    """A CLINT with two harts alone in a machine (its C bus)."""
    sched = Scheduler(1_000_000)
    m = Machine("peer", sched, platform=__file__)
    c = CoreLevelInterruptor(m, "clint", BASE,
                             props={"frequency": freq, "divider": div, "numberOfTargets": HARTS})
    m.add_peripheral(c)
    assert m._bus.target(BASE + MTIME_LO) == (c, True)              # served by the C register map
    lines = Lines(sched)
    for k in range(2 * HARTS):
        c.output(k).connect(lines, k)
    c.reset()
    return sched, c, lines


u32 = st.integers(0, 0xFFFF_FFFF)
OP = st.one_of(
    st.tuples(st.just("w"), st.sampled_from(REGS), u32),
    st.tuples(st.just("cmp_in"), st.integers(0, HARTS - 1), st.integers(-3, 40)),   # the RV32 way
    st.tuples(st.just("r"),),
    st.tuples(st.just("adv"), st.integers(0, 3_000_000)),                           # up to 3 us
    st.tuples(st.just("reset"),),
    # through the bus, any size at any byte of a register, or where nothing is modelled
    st.tuples(st.just("bw"), st.sampled_from(REGS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4)), u32),
    st.tuples(st.just("br"), st.sampled_from(REGS + UNMODELLED), st.integers(0, 3),
              st.sampled_from((1, 2, 4))),
)


def check(sched: Scheduler, c, lines: Lines, spec: Spec, where: str) -> None:
    """The state at this instant: mtime, every register, the lines, the pending MTIP events."""
    now = sched.now
    assert c.mtime() == spec.mtime(now), f"{where}: mtime"
    for off in REGS:
        assert c.read(off, 4) == spec.word(off, now), f"{where}: register {off:#x}"
    for n in range(HARTS):
        assert c.compare(n) == spec.cmp[n], f"{where}: mtimecmp{n}"
        assert c.output(2 * n).level == bool(spec.written[4 * n] & 1), f"{where}: MSIP{n}"
        mtip = spec.mtip(n, now)
        assert c.output(2 * n + 1).level == mtip, f"{where}: MTIP{n} is mtime >= mtimecmp"
        ev = c._events[n]
        due = None if mtip else spec.due_ps(n, now)
        if mtip:
            assert ev is None, f"{where}: MTIP{n} high with an event pending"
        elif due is not None:
            assert ev is not None and (ev.time, ev.name) == (due, f"clint.mtip{n}"), \
                f"{where}: MTIP{n} event not at the first picosecond of the compare"
        else:          # too far to schedule: at most an earlier event, which re-checks when it fires
            assert ev is None or ev.time >= now, f"{where}: MTIP{n} event in the past"
    for line in range(2 * HARTS):                     # edges alternate: a line only moves
        levels = [lv for _t, li, lv in lines.edges if li == line]
        assert all(a != b for a, b in zip(levels, levels[1:])), f"{where}: line {line} repeated"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(freq=st.sampled_from((16_000_000, 32_768, 40_000_000, 3)), div=st.integers(1, 3),
       start=st.integers(0, 5_000_000), ops=st.lists(OP, min_size=1, max_size=20))
def test_the_clint_does_what_the_spec_says(freq, div, start, ops) -> None:
    sched, c, lines = board(freq, div)
    spec = Spec(freq, div)
    sched.run_until(start)
    c.reset()
    spec.reset(sched.now)
    check(sched, c, lines, spec, "reset")
    for i, op in enumerate(ops):
        kind, where, now = op[0], f"step {i} {op}", sched.now
        if kind == "w":
            c.write(op[1], 4, op[2])
            spec.write(op[1], 4, op[2], now)
        elif kind == "cmp_in":
            _, n, delta = op
            target = (spec.mtime(now) + delta) & MASK64
            for off, v in ((4, 0xFFFF_FFFF), (0, target & 0xFFFF_FFFF), (4, target >> 32)):
                c.write(CMP_LO + 8 * n + off, 4, v)
                spec.write(CMP_LO + 8 * n + off, 4, v, now)
                check(sched, c, lines, spec, f"{where} word {off}")
        elif kind == "r":
            assert [c.read(off, 4) for off in REGS] == [spec.word(off, now) for off in REGS], where
        elif kind == "adv":
            before = len(lines.edges)
            low = [n for n in range(HARTS) if not spec.mtip(n, now)]
            sched.run_until(now + op[1])
            # a line rises during an advance only at the first picosecond its compare is reached
            want = sorted((t, 2 * n + 1, True) for n in low
                          if (t := spec.first_ps_of_tick(spec.cmp[n] - spec.base + spec.base_tick))
                          <= now + op[1] and spec.due_ps(n, now) is not None)
            assert sorted(lines.edges[before:]) == want, where
        elif kind == "reset":
            c.reset()
            spec.reset(now)
        elif kind == "bw":
            _, off, byte, size, value = op
            value &= (1 << (8 * size)) - 1
            unmodelled = dict(c.regs.unmodeled)
            c.machine.bus_write(BASE + off + byte, size, value)
            spec.write(off + byte, size, value, now)
            if (off + byte) & ~3 not in REGS:
                assert sum(c.regs.unmodeled.values()) == sum(unmodelled.values()) + 1, where
        elif kind == "br":
            _, off, byte, size = op
            got = c.machine.bus_read(BASE + off + byte, size)
            assert got == (spec.word(off + byte, now) >> (8 * byte)) & ((1 << (8 * size)) - 1), where
        check(sched, c, lines, spec, where)


def test_a_compare_16_ticks_ahead_raises_mtip_1us_later_at_16mhz() -> None:
    """Hand-computed: at 16 MHz one tick is 62 500 ps; the RV32 sequence (high word all ones, low,
    high) to mtime + 16 raises MTIP exactly 1 us later, not a picosecond before; mtime jumping
    2**32 ticks keeps it; a compare back in the future lowers it at once."""
    sched, c, lines = board(16_000_000, 1)
    sched.run_until(3 * 62_500)
    assert c.mtime() == 3 and c._c.offset == 0
    for off, v in ((CMP_HI, 0xFFFF_FFFF), (CMP_LO, 19), (CMP_HI, 0)):
        c.write(off, 4, v)
    assert c.compare(0) == 19 and not c.output(1).level
    sched.run_until(3 * 62_500 + 1_000_000 - 1)
    assert not c.output(1).level and c.mtime() == 18
    sched.run_until(3 * 62_500 + 1_000_000)
    assert c.output(1).level and lines.edges[-1] == (1_187_500, 1, True) and c.mtime() == 19
    c.write(MTIME_HI, 4, 1)                                         # mtime += 2**32 ticks
    assert c.mtime() == (1 << 32) + 19 and c.output(1).level
    c.write(CMP_HI, 4, 2)                                           # compare ahead again: lowered
    assert not c.output(1).level and lines.edges[-1] == (1_187_500, 1, False)
    assert c.read(MTIME_HI, 4) == 1 and c.read(CMP_HI, 4) == 2 and c.read(CMP_LO, 4) == 19


def test_the_state_is_in_c_only() -> None:
    """One source of truth: no Python copy of the timer state."""
    _sched, c, _lines = board(16_000_000, 1)
    assert type(c._c) is native.core().Clint
    assert not {"offset", "mtimecmp"} & set(vars(c))
