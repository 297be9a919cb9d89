"""Specification tests of the Cortex-M7 SysTick (native/systick.c behind nvic.py's Nvic, the one
copy).

What is checked is what the ARMv7-M ARM says (B3.3, the SysTick timer: SYST_CSR/RVR/CVR/CALIB)
with nvic.py's documented choices:
  - the counter decrements once per SysTick-clock tick; the clock is the core clock (the one the
    RCC pushed with ``set_core_clock``, else systickFrequency, else the CPU's) when
    CSR.CLKSOURCE = 1, a /8 of it when 0; tick k of a rate f is the first picosecond t with
    floor(t * f / 10**12) = k, counted from time 0 (so a rate change keeps the current value
    and counts on at the new rate).
  - when the counter reaches 0 (counting from 1) COUNTFLAG is set and, with CSR.TICKINT, SysTick
    becomes pending at that tick's time; the next tick reloads RVR (a period of RVR+1 ticks).
    A CVR write of any value clears the counter and COUNTFLAG (the next tick reloads RVR).
    Setting ENABLE starts from the current value (0: reload at the next tick); clearing it
    freezes the value. An RVR write while enabled and stopped (RVR was 0) starts counting from
    a reload at the next tick.
  - COUNTFLAG reads 1 once per wrap and is cleared by the CSR read; CSR reads ENABLE, TICKINT,
    CLKSOURCE and COUNTFLAG, other bits 0; COUNTFLAG and CALIB are read-only; RVR keeps 24 bits;
    CVR reads the counter; CALIB reads 0x4000_0000 | 4_799_999 (NOREF=0, SKEW=1, TENMS 10 ms at
    480 MHz). A CSR read that finds COUNTFLAG clear while counting tells the CPU nothing changes
    before the next wrap (the poll hint).
  - the model's simplifications (nvic.py's docstring): RVR = 0 stops the counter at its next
    wrap, without COUNTFLAG or an exception; a wrap that finds SysTick still pending is
    coalesced into it and no wrap pends it again until it is taken (activate) or unpended
    (ICSR.PENDSTCLR), the wraps up to that instant included; CVR reads (ticks to the next wrap)
    mod (RVR+1), which after an RVR write while counting differs from the ARM ARM's count.
  - one wrap event ``nvic.systick`` pending exactly while counting with TICKINT and not
    coalescing, at the next wrap's time, or at the scheduler's now when an access from a slice
    that started behind it finds that wrap already past (``Scheduler.at`` clamps); a system reset
    stops the counter (CSR = CLKSOURCE, RVR = CVR = 0, no event) and keeps the pushed core clock.

Hypothesis picks the CPU's clock and systickFrequency and a program of CSR/RVR/CVR/CALIB writes
and reads of every size, ENABLE/TICKINT/CLKSOURCE toggles, core clock pushes, time advances (to
just before, at and after the next wrap, and over many), ICSR.PENDSTSET/PENDSTCLR, SysTick taken
and returned, accesses by a CPU whose slice started behind the scheduler (then "now" is the
slice start), events fired while the CPU executes (a newly pended SysTick kicks it) and system
resets. After every step the test checks every read value, the register words and fields, the
counter state, the event (time, name), the SysTick pending bit and its edges at the wrap times,
the poll hints and the kicks against ``Spec``.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_MS, PS_PER_S, PS_PER_US
from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.m7.nvic import Nvic
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

SCS = 0xE000_E000
CSR, RVR, CVR, CALIB = 0x10, 0x14, 0x18, 0x1C
ICSR = 0xD04
SYSTICK = 15
CALIB_WORD = 0x4000_0000 | 4_799_999
M32 = 0xFFFF_FFFF


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
    def __init__(self, cpu_hz: int, freq: int | None) -> None:
        self.sched = Scheduler(1_000_000)
        m = self.m = Machine("stm32", self.sched, platform=__file__)
        self.cpu = Cpu(self.sched, cpu_hz)
        m.attach_cpu(self.cpu)
        self.nv = Nvic(m, "nvic", SCS, 0x1000, {"priorityMask": 0xF0, "systickFrequency": freq})
        self.nv.cpu = self.cpu
        m.add_peripheral(self.nv)
        m.finish()
        assert isinstance(self.nv._st, native.core().SysTick)
        assert isinstance(m._bus, native.core().Bus)          # the C bus
        self.fired: list[tuple] = []
        self.sched.on_event(lambda ev: self.fired.append(
            (ev.time, ev.name, self.nv.pending >> SYSTICK & 1)))


class Spec:
    """What the ARMv7-M ARM's SysTick rules (and nvic.py's stated choices) predict."""

    def __init__(self, cpu_hz: int, freq: int | None) -> None:
        self.cpu_hz, self.freq = cpu_hz, freq
        self.core_hz: int | None = None
        self.fired: list[tuple] = []          # (time, "nvic.systick", pending after)
        self.hints: list[tuple] = []
        self.kicks: list[int] = []
        self.pending = 0                      # the NVIC's SysTick pending bit
        self.floor = 0                        # the scheduler's now (Scheduler.at clamps to it)
        self.reset()

    def reset(self) -> None:
        self.csr, self.rvr = 4, 0
        self.running = self.countflag = self.waiting = False
        self.zero = 0                         # tick of the next wrap to 0 (while running)
        self.val = 0                          # the value while stopped
        self.event: int | None = None
        self.pending = 0

    # -- the clock -----------------------------------------------------------------------------
    def rate(self, clksource: int | None = None) -> int:
        f = self.core_hz or self.freq or self.cpu_hz
        return f if (self.csr & 4 if clksource is None else clksource) else f // 8

    def ticks(self, t: int, f: int | None = None) -> int:
        return t * (f or self.rate()) // PS_PER_S

    def time_of(self, k: int) -> int:
        return -(-k * PS_PER_S // self.rate())

    def period(self) -> int:
        return (self.rvr & 0xFFFFFF) + 1

    # -- the counter ---------------------------------------------------------------------------
    def update(self, k: int) -> None:
        """The wraps up to tick k."""
        if self.running and k >= self.zero:
            p = self.period()
            if p == 1:                        # RVR = 0: stops at 0, no COUNTFLAG
                self.running, self.val = False, 0
                return
            self.zero += ((k - self.zero) // p + 1) * p
            self.countflag = True

    def value(self, k: int) -> int:
        return (self.zero - k) % self.period() if self.running else self.val

    def schedule(self) -> None:
        """The next wrap's event; never before the scheduler's now (an access from a slice that
        started behind the scheduler may find that wrap already past: it fires at once)."""
        self.waiting = False
        self.event = max(self.time_of(self.zero), self.floor) if self.running and self.csr & 2 else None

    def pend(self, t: int, executing: bool) -> None:
        if not self.pending:
            self.pending = 1
            if executing:
                self.kicks.append(t)

    def resume(self, now: int) -> None:
        was, self.waiting = self.waiting, False
        if was and self.running:
            self.update(self.ticks(now))
            self.schedule()

    def advance(self, until: int, executing: bool = False) -> None:
        while self.event is not None and self.event <= until:
            t, self.event = self.event, None
            if not self.running:                  # stopped by RVR = 0 since: nothing happens
                self.fired.append((t, "nvic.systick", self.pending))
                continue
            k = self.ticks(t)
            due = k >= self.zero
            self.update(k)
            if due and self.csr & 2:
                if self.pending:
                    self.waiting = True
                    self.fired.append((t, "nvic.systick", 1))
                    continue
                self.pend(t, executing)
            if self.running and self.csr & 2:
                self.event = self.time_of(self.zero)
            self.fired.append((t, "nvic.systick", self.pending))

    # -- register accesses at machine time `now` -----------------------------------------------
    def write(self, off: int, size: int, data: int, now: int) -> None:
        idx, shift = (off >> 2) & 3, 8 * (off & 3)
        mask = ((1 << 8 * size) - 1) << shift & M32
        data = data << shift & mask
        if idx == 0:
            old = self.csr
            self.csr = (old & ~(mask & ~(1 << 16))) | (data & ~(1 << 16))
            if (old ^ self.csr) & 4 and self.running:
                k = self.ticks(now, self.rate(old & 4))
                self.update(k)
                val = self.value(k)
                k = self.ticks(now)
                self.zero = k + (val or self.period())
            else:
                k = self.ticks(now)
                self.update(k)
            if old & 1 and not self.csr & 1:
                self.val, self.running = self.value(k), False
            elif self.csr & 1 and not old & 1:
                self.running = self.period() > 1
                self.zero = k + (self.val or self.period())
            self.schedule()
        elif idx == 1:
            self.rvr = ((self.rvr & ~mask) | data) & 0xFFFFFF
            if self.csr & 1 and not self.running and self.rvr:
                self.running = True
                self.zero = self.ticks(now) + self.rvr + 1
                self.schedule()
        elif idx == 2:
            k = self.ticks(now)
            self.update(k)
            self.countflag, self.val = False, 0
            if self.running:
                self.zero = k + self.period()
                self.schedule()

    def read(self, off: int, size: int, now: int) -> int:
        idx = (off >> 2) & 3
        if idx == 0:
            self.update(self.ticks(now))
            v = self.csr & 7
            if self.countflag:
                v |= 1 << 16
                self.countflag = False
            elif self.running:
                self.hints.append((SCS, self.time_of(self.zero)))
        elif idx == 1:
            v = self.rvr
        elif idx == 2:
            k = self.ticks(now)
            self.update(k)
            v = self.value(k)
        else:
            v = CALIB_WORD
        return v >> 8 * (off & 3) & ((1 << 8 * size) - 1)

    def set_core_clock(self, hz: int, now: int) -> None:
        if hz <= 0 or hz == self.core_hz:
            return
        k = self.ticks(now)
        self.update(k)
        val = self.value(k)
        self.core_hz = hz
        if self.running:
            self.zero = self.ticks(now) + (val or self.period())
            self.schedule()


def apply(b: Board, s: Spec, op, executing: bool = False) -> object:
    """The op on the board and on the spec; returns (board's result, spec's result)."""
    kind, m, sched, nv = op[0], b.m, b.sched, b.nv
    now = m.now()
    s.floor = sched.now
    if kind == "w":
        _, off, size, value = op
        value &= (1 << 8 * size) - 1
        m.bus_write(SCS + off, size, value)
        s.write(off, size, value, now)
    elif kind == "r":
        return m.bus_read(SCS + op[1], op[2]), s.read(op[1], op[2], now)
    elif kind == "flip":                # ENABLE, TICKINT or CLKSOURCE toggled, the rest kept
        word = (s.csr ^ (1 << op[1])) & M32
        m.bus_write(SCS + CSR, 4, word)
        s.write(CSR, 4, word, now)
    elif kind == "clock":
        nv.set_core_clock(op[1])
        s.set_core_clock(op[1], now)
    elif kind == "run":
        sched.run_until(sched.now + op[1])
        s.advance(sched.now)
    elif kind == "wrap":                # to just before / at / after the wrap event
        if s.event is not None and s.event + op[1] >= sched.now:
            sched.run_until(s.event + op[1])
            s.advance(sched.now)
    elif kind == "icsr":
        m.bus_write(SCS + ICSR, 4, op[1])
        if op[1] & 1 << 25:
            s.pending = 0
            s.resume(now)
        if op[1] & 1 << 26:
            s.pend(sched.now, executing)
    elif kind == "take":                # the core takes SysTick and returns from it
        if nv.pending >> SYSTICK & 1:
            nv.activate(SYSTICK)
            s.pending = 0
            s.resume(now)
            if op[1]:
                sched.run_until(sched.now + op[1])
                s.advance(sched.now)
            nv.deactivate(SYSTICK)
    elif kind == "hz":
        return nv._st_hz(), s.rate()
    elif kind == "exec":                # an access by the CPU in a slice that started `lag` ago
        _, lag, inner = op
        b.cpu._start = max(0, sched.now - lag)
        b.cpu.executing = True
        try:
            return apply(b, s, inner, executing=True)
        finally:
            b.cpu.executing = False
    elif kind == "busy":                # events fire while the CPU counts as executing
        b.cpu.follow = b.cpu.executing = True
        try:
            sched.run_until(sched.now + op[1])
        finally:
            b.cpu.follow = b.cpu.executing = False
        s.advance(sched.now, executing=True)
    elif kind == "reset":
        m.system_reset("test")
        s.reset()
    return None


def check(b: Board, s: Spec, where: str) -> None:
    nv, r = b.nv, b.nv.regs
    assert r.SYST_CSR.value & ~(1 << 16) == s.csr and not r.SYST_CSR.value & 1 << 16, where
    assert (r.SYST_CSR.ENABLE, r.SYST_CSR.TICKINT, r.SYST_CSR.CLKSOURCE) == \
        (s.csr & 1, s.csr >> 1 & 1, s.csr >> 2 & 1), where
    assert (r.SYST_RVR.value, r.SYST_RVR.RELOAD, r.SYST_CVR.value, r.SYST_CALIB.value) == \
        (s.rvr, s.rvr, 0, CALIB_WORD), where
    assert nv._st_running == s.running and nv._countflag == s.countflag, where
    if s.running:
        assert nv._st_zero == s.zero, where
    else:
        assert nv._st_val == s.val, where
    assert bool(nv._st_waiting) == s.waiting, where
    assert nv._st_core_hz == s.core_hz, where
    ev = nv._st_event
    assert (None if ev is None else (ev.time, ev.name, ev.cancelled)) == \
        (None if s.event is None else (s.event, "nvic.systick", False)), where
    live = [(t, e.name) for t, _, e in b.sched._heap if not e.cancelled]
    assert live == ([] if s.event is None else [(s.event, "nvic.systick")]), where
    assert nv.pending >> SYSTICK & 1 == s.pending, where
    assert b.fired == s.fired, where
    assert b.cpu.hints == s.hints and b.cpu.kicks == s.kicks, where


def run_program(cpu_hz: int, freq: int | None, program: list) -> tuple[Board, Spec]:
    b, s = Board(cpu_hz, freq), Spec(cpu_hz, freq)
    check(b, s, "built")
    for i, op in enumerate(program):
        got = apply(b, s, op)
        if got is not None:
            assert got[0] == got[1], (i, op, got)
        check(b, s, f"step {i} {op}")
    return b, s


CSR_WORDS = st.one_of(st.integers(0, 7), st.sampled_from([0x10007, 0x10003, 0xFFFF_FFFF, 0x105, 0x3]),
                      st.integers(0, 0xFFFF_FFFF))
RVR_WORDS = st.one_of(st.integers(0, 3), st.integers(4, 4000), st.sampled_from([0xFFFFFF, 0x0100_0010]),
                      st.integers(0, 0xFFFF_FFFF))
OFFS = st.sampled_from([CSR, CSR + 1, CSR + 2, CSR + 3, RVR, RVR + 1, RVR + 2, RVR + 3, CVR, CVR + 2,
                        CALIB, CALIB + 1])
SIZES = st.sampled_from([1, 2, 4])
TIMES = st.one_of(st.integers(0, 3000), st.integers(0, 50 * PS_PER_US), st.integers(0, 3 * PS_PER_MS),
                  st.integers(0, 40 * PS_PER_MS))
BASE_OPS = st.one_of(
    st.tuples(st.just("w"), st.just(CSR), st.just(4), CSR_WORDS),
    st.tuples(st.just("w"), st.just(RVR), st.just(4), RVR_WORDS),
    st.tuples(st.just("flip"), st.sampled_from([0, 1, 2, 2])),
    st.tuples(st.just("w"), st.sampled_from([CVR, CALIB]), st.just(4), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("w"), OFFS, SIZES, st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("r"), st.sampled_from([CSR, CVR, RVR, CALIB]), st.just(4)),
    st.tuples(st.just("r"), OFFS, SIZES),
    st.tuples(st.just("clock"), st.sampled_from([0, -5, 8_000_000, 64_000_000, 128_000_000,
                                                 480_000_000, 1_000_003])),
    st.tuples(st.just("run"), TIMES),
    st.tuples(st.just("run"), TIMES),
    st.tuples(st.just("wrap"), st.sampled_from([-1, 0, 1, 2])),
    st.tuples(st.just("icsr"), st.sampled_from([1 << 25, 1 << 26, (1 << 25) | (1 << 26), 0])),
    st.tuples(st.just("take"), st.sampled_from([0, 0, 500 * PS_PER_US, 3 * PS_PER_MS])),
    st.tuples(st.just("hz")),
    st.tuples(st.just("busy"), TIMES),
    st.tuples(st.just("reset")),
)
OPS = st.one_of(BASE_OPS, st.tuples(st.just("exec"), st.integers(0, 5 * PS_PER_US),
                                    st.sampled_from([("r", CSR, 4), ("r", CVR, 4), ("r", CSR + 2, 2),
                                                     ("w", CSR, 4, 7), ("w", CVR, 4, 0),
                                                     ("w", RVR, 4, 999), ("icsr", 1 << 26)])))
# a start that makes the counter run often: RVR, CVR, then CSR with ENABLE
START = st.tuples(st.sampled_from([1, 2, 239, 4799, 63_999, 0xFFFFFF]), st.sampled_from([3, 7, 5, 1, 2, 6]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cpu_hz=st.sampled_from([480_000_000, 64_000_000, 1_000_003, 800]),
       freq=st.sampled_from([None, None, 480_000_000, 8_000_001, 104]),
       start=st.one_of(st.none(), START),
       ops=st.lists(OPS, max_size=40))
def test_systick_follows_the_armv7m_rules(cpu_hz, freq, start, ops):
    program = [] if start is None else [("w", RVR, 4, start[0]), ("w", CVR, 4, 0),
                                        ("w", CSR, 4, start[1])]
    run_program(cpu_hz, freq, program + ops)


RATE_OPS = st.one_of(
    st.tuples(st.just("run"), st.integers(1, 3 * PS_PER_MS)),
    st.tuples(st.just("flip"), st.sampled_from([2, 2, 2, 0, 1])),
    st.tuples(st.just("clock"), st.sampled_from([8_000_000, 64_000_000, 128_000_000, 1_000_003, 0])),
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
def test_a_running_systick_keeps_its_value_across_rate_changes(cpu_hz, freq, start, ops):
    """A running counter under CLKSOURCE toggles, core clock pushes, reloads and reads: the
    counter keeps its value where the rate changes and wraps at the new rate."""
    run_program(cpu_hz, freq,
                [("w", RVR, 4, start[0]), ("w", CVR, 4, 0), ("w", CSR, 4, start[1] | 1)] + ops)


# -- the ARM ARM's numbers as literals ------------------------------------------------------------

def test_a_millisecond_tick_at_480_mhz():
    """480 MHz, RVR = 479 999 with TICKINT: SysTick pends every 1 ms exactly; a delay loop reads
    COUNTFLAG once per wrap and gets a poll hint to the next one; CVR counts down from RVR."""
    b = Board(480_000_000, None)
    m = b.m
    m.bus_write(SCS + RVR, 4, 479_999)
    m.bus_write(SCS + CVR, 4, 0)
    m.bus_write(SCS + CSR, 4, 7)
    assert m.bus_read(SCS + CALIB, 4) == CALIB_WORD
    for k in range(1, 21):
        b.sched.run_until(k * PS_PER_MS)
        assert b.nv.pending >> SYSTICK & 1
        assert m.bus_read(SCS + CSR, 4) == 0x10007           # COUNTFLAG set by the wrap
        assert m.bus_read(SCS + CSR, 4) == 7                 # cleared by the read: a poll hint
        assert b.cpu.hints[-1] == (SCS, (k + 1) * PS_PER_MS)
        b.sched.run_until(k * PS_PER_MS + 1_000_000)         # 1 us = 480 ticks later
        assert m.bus_read(SCS + CVR, 4) == 479_999 - 479
        b.nv.activate(SYSTICK)
        b.nv.deactivate(SYSTICK)
    wraps = [f[0] for f in b.fired if f[1] == "nvic.systick"]
    assert wraps == [k * PS_PER_MS for k in range(1, 21)]


def test_clksource_0_counts_the_core_clock_over_8():
    b = Board(64_000_000, None)
    m = b.m
    m.bus_write(SCS + RVR, 4, 7_999)                         # 8000 ticks of 8 MHz = 1 ms
    m.bus_write(SCS + CSR, 4, 3)
    b.sched.run_until(PS_PER_MS - 1)
    assert not b.nv.pending >> SYSTICK & 1
    b.sched.run_until(PS_PER_MS)
    assert b.nv.pending >> SYSTICK & 1 and m.bus_read(SCS + CSR, 4) == 0x10003


def test_the_c_bus_serves_the_systick_registers_in_c_and_the_rest_through_the_bank():
    b = Board(480_000_000, None)
    calls: list[tuple] = []
    bank_read = b.nv.regs.read

    def spy(offset: int, size: int = 4) -> int:
        calls.append((offset, size))
        return bank_read(offset, size)

    b.nv._st.set_fallback(spy, b.nv.regs.write)
    assert b.m.bus_read(SCS + CALIB, 4) == CALIB_WORD
    b.m.bus_write(SCS + RVR, 4, 0x1234_5678)
    assert b.m.bus_read(SCS + RVR, 4) == 0x34_5678 and calls == []
    assert b.m.bus_read(SCS + 0xD00, 4) == 0x411FC271 and calls == [(0xD00, 4)]


def test_no_clock_at_all_is_a_zero_division():
    """No pushed clock, no systickFrequency, a CPU at 0 Hz: starting the counter with TICKINT
    needs the time of a tick at rate 0."""
    b = Board(0, None)
    b.m.bus_write(SCS + RVR, 4, 99)
    with pytest.raises(ZeroDivisionError):
        b.m.bus_write(SCS + CSR, 4, 7)
