"""Differential tests: the Cortex-M7 SysTick in C (native/systick.c behind nvic.py's NvicNative)
against the Python reference (nvic.py's Nvic, DUOHIL_MODELS=python).

Two SCS blocks, one per DUOHIL_MODELS value, each alone in a machine (the C bus under native, the
Python bus under python) with its own scheduler and a stand-in CPU that is both the machine's CPU
(poll hints) and the NVIC's core side (hz, executing, kick). Hypothesis picks the CPU's clock and
systickFrequency (none, or one whose /8 rounds), then a program of SYST_CSR writes (ENABLE,
TICKINT, CLKSOURCE combinations, with other bits and COUNTFLAG set; each toggled alone), SYST_RVR
writes (0, 1, small, 24-bit, with high bits), SYST_CVR writes, byte/halfword/word reads and writes
of all four registers, CALIB writes, core clock changes (set_core_clock, the RCC's push: new,
same, <= 0), CPU clock changes, raw register words set from the model side, time advances (to just
before, at and after the next wrap; over many wraps), SysTick unpended by ICSR.PENDSTCLR and
pended by PENDSTSET, the exception taken and returned (activate/deactivate: coalesced wraps
resume), CSR reads while the CPU executes at a slice start behind the scheduler (the poll hint),
events fired while the CPU "executes" (the kick), the rate cache (``_st_hz()``) and system resets.
After every step both gave the same value or exception and hold the same register words, counter
state (running, next zero, stopped value, COUNTFLAG, coalescing, pushed clock, rate cache), wrap
event (time, sequence number, name, callable's name), NVIC pending/active bits, live scheduler
events, fired events with the SysTick pending bit after each (the pending edges and their times),
event log, poll hints and kicks.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_MS, PS_PER_US
from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.m7.nvic import Nvic, NvicNative
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

SCS = 0xE000_E000
CSR, RVR, CVR, CALIB = 0x10, 0x14, 0x18, 0x1C
ICSR = 0xD04
SYSTICK = 15


class Cpu(FakeCpu):
    """FakeCpu as the NVIC's core too: hz, executing at a slice start (or following the
    scheduler's clock, so that events fire while it "executes"), and the kicks it got."""

    def __init__(self, sched: Scheduler, hz: int) -> None:
        super().__init__()
        self.sched = sched
        self.hz = hz
        self.kicks: list[int] = []
        self.follow = False
        self._start = 0

    @property
    def slice_start_ps(self) -> int:
        return self.sched.now if self.follow else self._start

    def kick(self) -> None:
        self.kicks.append(self.sched.now)


class Board:
    def __init__(self, models: str, cpu_hz: int, freq: int | None) -> None:
        with native.using(models):
            self.sched = Scheduler(1_000_000)
            m = self.m = Machine("stm32", self.sched, platform=__file__)
            self.cpu = Cpu(self.sched, cpu_hz)
            m.attach_cpu(self.cpu)
            self.nv = Nvic(m, "nvic", SCS, 0x1000, {"priorityMask": 0xF0, "systickFrequency": freq})
            self.nv.cpu = self.cpu
            m.add_peripheral(self.nv)
            m.finish()
        assert isinstance(self.nv, NvicNative) == (models == "native")
        self.fired: list[tuple] = []
        self.sched.on_event(lambda ev: self.fired.append(
            (ev.time, ev.seq, ev.name, ev.fn.__name__, self.nv.pending >> SYSTICK & 1)))


def ev_view(ev) -> tuple | None:
    return None if ev is None else (ev.time, ev.seq, ev.name, ev.fn.__name__, ev.cancelled)


def state(b: Board) -> dict:
    nv, r = b.nv, b.nv.regs
    return {
        "now": b.sched.now,
        "regs": [r.SYST_CSR.value, r.SYST_RVR.value, r.SYST_CVR.value, r.SYST_CALIB.value],
        "fields": (r.SYST_CSR.ENABLE, r.SYST_CSR.TICKINT, r.SYST_CSR.CLKSOURCE, r.SYST_RVR.RELOAD),
        "st": (nv._st_running, nv._st_zero, nv._st_val, nv._countflag, nv._st_waiting,
               nv._st_core_hz, nv._st_hz_cache, nv._st_hz_csr),
        "event": ev_view(nv._st_event),
        "nvic": (nv.pending, nv.active, nv.stack, nv.exceptions_taken),
        "heap": sorted((t, seq, ev.name) for t, seq, ev in b.sched._heap if not ev.cancelled),
        "fired": list(b.fired),
        "log": b.sched.events(),
        "hints": list(b.cpu.hints),
        "kicks": list(b.cpu.kicks),
    }


def apply(b: Board, op) -> object:
    kind, m, sched, nv = op[0], b.m, b.sched, b.nv
    if kind == "w":
        _, off, size, value = op
        m.bus_write(SCS + off, size, value & ((1 << 8 * size) - 1))
    elif kind == "r":
        return m.bus_read(SCS + op[1], op[2])
    elif kind == "flip":                # ENABLE, TICKINT or CLKSOURCE toggled, the rest kept
        m.bus_write(SCS + CSR, 4, (nv.regs.SYST_CSR.value ^ (1 << op[1])) & 0xFFFF_FFFF)
    elif kind == "clock":
        nv.set_core_clock(op[1])
    elif kind == "cpuhz":
        b.cpu.hz = op[1]
    elif kind == "raw":
        getattr(nv.regs, op[1]).value = op[2]
    elif kind == "run":
        sched.run_until(sched.now + op[1])
    elif kind == "wrap":                # to just before / at / after the wrap event
        ev = nv._st_event
        if ev is not None and ev.time + op[1] >= sched.now:
            sched.run_until(ev.time + op[1])
    elif kind == "icsr":
        m.bus_write(SCS + ICSR, 4, op[1])
    elif kind == "take":                # the core takes SysTick and returns from it
        if nv.pending >> SYSTICK & 1:
            nv.activate(SYSTICK)
            if op[1]:
                sched.run_until(sched.now + op[1])
            nv.deactivate(SYSTICK)
    elif kind == "hz":
        return nv._st_hz()
    elif kind == "exec":                # an access by the CPU in a slice that started `lag` ago
        _, lag, inner = op
        b.cpu._start = max(0, sched.now - lag)
        b.cpu.executing = True
        try:
            return apply(b, inner)
        finally:
            b.cpu.executing = False
    elif kind == "busy":                # events fire while the CPU counts as executing
        b.cpu.follow = b.cpu.executing = True
        try:
            sched.run_until(sched.now + op[1])
        finally:
            b.cpu.follow = b.cpu.executing = False
    elif kind == "reset":
        m.system_reset("test")
    return None


def outcome(b: Board, op) -> tuple:
    try:
        return ("ok", apply(b, op))
    except Exception as exc:          # both must fail alike (a rate of 0: ZeroDivisionError)
        return ("raised", type(exc).__name__)


CSR_WORDS = st.one_of(st.integers(0, 7), st.sampled_from([0x10007, 0x10003, 0xFFFF_FFFF, 0x105, 0x3]),
                      st.integers(0, 0xFFFF_FFFF))
RVR_WORDS = st.one_of(st.integers(0, 3), st.integers(4, 4000), st.sampled_from([0xFFFFFF, 0x0100_0010]),
                      st.integers(0, 0xFFFF_FFFF))
OFFS = st.sampled_from([CSR, CSR + 1, CSR + 2, CSR + 3, RVR, RVR + 1, RVR + 2, RVR + 3, CVR, CVR + 2,
                        CALIB, CALIB + 1])
SIZES = st.sampled_from([1, 2, 4])
TIMES = st.one_of(st.integers(0, 3000), st.integers(0, 50 * PS_PER_US), st.integers(0, 3 * PS_PER_MS),
                  st.integers(0, 40 * PS_PER_MS))


def base_ops():
    return st.one_of(
        st.tuples(st.just("w"), st.just(CSR), st.just(4), CSR_WORDS),
        st.tuples(st.just("w"), st.just(RVR), st.just(4), RVR_WORDS),
        st.tuples(st.just("flip"), st.sampled_from([0, 1, 2, 2])),
        st.tuples(st.just("w"), st.sampled_from([CVR, CALIB]), st.just(4), st.integers(0, 0xFFFF_FFFF)),
        st.tuples(st.just("w"), OFFS, SIZES, st.integers(0, 0xFFFF_FFFF)),
        st.tuples(st.just("r"), st.sampled_from([CSR, CVR, RVR, CALIB]), st.just(4)),
        st.tuples(st.just("r"), OFFS, SIZES),
        st.tuples(st.just("clock"), st.sampled_from([0, -5, 7, 8_000_000, 64_000_000, 128_000_000,
                                                     480_000_000, 1_000_003])),
        st.tuples(st.just("cpuhz"), st.sampled_from([7, 1_000_003, 64_000_000, 480_000_000])),
        st.tuples(st.just("raw"), st.sampled_from(["SYST_CSR", "SYST_RVR", "SYST_CVR"]),
                  st.integers(0, 0xFFFF_FFFF)),
        st.tuples(st.just("run"), TIMES),
        st.tuples(st.just("run"), TIMES),
        st.tuples(st.just("wrap"), st.sampled_from([-1, 0, 1, 2])),
        st.tuples(st.just("icsr"), st.sampled_from([1 << 25, 1 << 26, (1 << 25) | (1 << 26), 0])),
        st.tuples(st.just("take"), st.sampled_from([0, 0, 500 * PS_PER_US, 3 * PS_PER_MS])),
        st.tuples(st.just("hz")),
        st.tuples(st.just("busy"), TIMES),
        st.tuples(st.just("reset")),
    )


OPS = st.one_of(base_ops(), st.tuples(st.just("exec"), st.integers(0, 5 * PS_PER_US),
                                      st.sampled_from([("r", CSR, 4), ("r", CVR, 4), ("r", CSR + 2, 2),
                                                       ("w", CSR, 4, 7), ("w", CVR, 4, 0),
                                                       ("w", RVR, 4, 999), ("icsr", 1 << 26)])))
# a start that makes the counter run often: RVR, CVR, then CSR with ENABLE
START = st.tuples(st.sampled_from([1, 2, 239, 4799, 63_999, 0xFFFFFF]), st.sampled_from([3, 7, 5, 1, 2, 6]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cpu_hz=st.sampled_from([480_000_000, 64_000_000, 1_000_003, 7, 0]),
       freq=st.sampled_from([None, None, 480_000_000, 8_000_001, 13]),
       start=st.one_of(st.none(), START),
       ops=st.lists(OPS, max_size=40))
def test_native_systick_matches_the_python_model(cpu_hz, freq, start, ops):
    py, c = Board("python", cpu_hz, freq), Board("native", cpu_hz, freq)
    program = [] if start is None else [("w", RVR, 4, start[0]), ("w", CVR, 4, 0),
                                        ("w", CSR, 4, start[1])]
    for i, op in enumerate(program + ops):
        a, b = outcome(py, op), outcome(c, op)
        assert a == b, (i, op)
        sa, sb = state(py), state(c)
        assert sa == sb, (i, op, {k: (sa[k], sb[k]) for k in sa if sa[k] != sb[k]})


def test_a_nominal_millisecond_tick_is_the_same_wrap_for_wrap():
    """480 MHz, RVR = 479 999 with TICKINT: 20 wraps, each taken 100 us later; a delay loop reads
    CSR and CVR in between (poll hints). Same wrap times, sequence numbers and state."""
    boards = [Board(models, 480_000_000, None) for models in ("python", "native")]
    for b in boards:
        for op in (("w", RVR, 4, 479_999), ("w", CVR, 4, 0), ("w", CSR, 4, 7)):
            apply(b, op)
        for _ in range(20):
            apply(b, ("wrap", 0))
            apply(b, ("exec", 0, ("r", CSR, 4)))          # COUNTFLAG: set by the wrap
            apply(b, ("exec", 10, ("r", CSR, 4)))         # clear: a poll hint to the next wrap
            apply(b, ("exec", 10, ("r", CVR, 4)))
            apply(b, ("take", 100 * PS_PER_US))
    py, c = (state(b) for b in boards)
    assert py == c
    wraps = [f for f in c["fired"] if f[2] == "nvic.systick"]
    assert [f[0] for f in wraps] == [k * PS_PER_MS for k in range(1, 21)]
    assert all(f[4] == 1 for f in wraps)
    assert c["hints"] == [(SCS, (k + 1) * PS_PER_MS) for k in range(1, 21)]


def test_the_c_bus_serves_the_systick_registers_in_c_and_the_rest_through_the_bank():
    b = Board("native", 480_000_000, None)
    calls: list[tuple] = []
    bank_read = b.nv.regs.read

    def spy(offset: int, size: int = 4) -> int:
        calls.append((offset, size))
        return bank_read(offset, size)

    b.nv._st.set_fallback(spy, b.nv.regs.write)
    assert b.m.bus_read(SCS + CALIB, 4) == 0x4000_0000 | 4_799_999
    b.m.bus_write(SCS + RVR, 4, 0x1234_5678)
    assert b.m.bus_read(SCS + RVR, 4) == 0x34_5678 and calls == []
    assert b.m.bus_read(SCS + 0xD00, 4) == 0x411FC271 and calls == [(0xD00, 4)]


RATE_OPS = st.one_of(
    st.tuples(st.just("run"), st.integers(1, 3 * PS_PER_MS)),
    st.tuples(st.just("flip"), st.sampled_from([2, 2, 2, 0, 1])),
    st.tuples(st.just("clock"), st.sampled_from([8_000_000, 64_000_000, 128_000_000, 1_000_003, 0])),
    st.tuples(st.just("cpuhz"), st.sampled_from([1_000_003, 64_000_000])),
    st.tuples(st.just("r"), st.sampled_from([CSR, CVR]), st.just(4)),
    st.tuples(st.just("wrap"), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("take"), st.sampled_from([0, 200 * PS_PER_US])),
    st.tuples(st.just("w"), st.sampled_from([RVR, CVR]), st.just(4), st.sampled_from([0, 1, 999, 63_999])),
    st.tuples(st.just("hz")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cpu_hz=st.sampled_from([480_000_000, 64_000_000, 1_000_003]),
       freq=st.sampled_from([None, 8_000_001]),
       start=START, ops=st.lists(RATE_OPS, min_size=4, max_size=30))
def test_native_systick_follows_rate_changes_like_the_python_model(cpu_hz, freq, start, ops):
    """A running counter under CLKSOURCE toggles, core and CPU clock changes, reloads and reads:
    the paths where the two rates meet (the counter keeps its value, wraps at the new rate)."""
    py, c = Board("python", cpu_hz, freq), Board("native", cpu_hz, freq)
    program = [("w", RVR, 4, start[0]), ("w", CVR, 4, 0), ("w", CSR, 4, start[1] | 1)] + ops
    for i, op in enumerate(program):
        a, b = outcome(py, op), outcome(c, op)
        assert a == b, (i, op)
        sa, sb = state(py), state(c)
        assert sa == sb, (i, op, {k: (sa[k], sb[k]) for k in sa if sa[k] != sb[k]})
