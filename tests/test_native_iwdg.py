"""Specification tests of the STM32H7 IWDG (native/iwdg.c behind stm32_iwdg.py's
STM32_IndependentWatchdog, the one copy).

What is checked is what RM0433 says (the shared reference's section 8: KR keys, PR/RLR/WINR
access, SR's busy bits, the timeout, the window, the reset cause) with stm32_iwdg.py's documented
choices:
  - 0xCCCC starts the watchdog and only a reset stops it (a second 0xCCCC does not reload);
    0x5555 unlocks PR/RLR/WINR and any other key locks them again; 0xAAAA reloads the counter
    from RLR while running. The key is the low half of KR's word (a byte write merges into the
    last written word, as the register bank does); KR reads 0.
  - PR/RLR/WINR keep a write only while unlocked (the whole word, read back as written); reset
    values PR 0, RLR 0xFFF, WINR 0xFFF. SR is read-only.
  - an accepted write to PR/RLR/WINR sets SR.PVU/RVU/WVU (bits 0/1/2); all set bits clear together
    5 LSI periods after the last such write; an SR read while a bit is set tells the CPU it cannot
    change before then (the poll hint HAL's "SR == 0" loop parks on).
  - timeout = defaultPrescaler * 2^min(PR, 6) * (RLR + 1) / f_LSI, with PR and RLR as they are at
    the start or reload (RM example: PR=3, RLR=999 at 32 kHz -> 1.0 s); the counter is RLR minus
    the prescaled LSI ticks since then, floored at 0; the chip resets with cause "iwdg" at the
    deadline, never earlier, and the RCC then sets RSR.IWDG1RSTF (tests/test_stm32_gpio_iwdg.py).
  - window (windowOption, WINR < 0xFFF): a reload while the counter is above WINR logs
    ``iwdg_window_violation`` (counter, winr) and resets the chip; a WINR write while running
    reloads without that check.
  - one pending expiry event while running, never later than the deadline; one SR event while a
    busy bit is set, at the time the bits clear; nothing pending otherwise.

Hypothesis picks the LSI frequency (down to 7 Hz), the default prescaler and windowOption, and a
program of keys, PR/RLR/WINR writes, raw byte/halfword/word writes and reads anywhere in the
first words and in holes, HAL's init sequence, advances of time (to just before, at and after
the deadline; over the SR update), accesses by a CPU executing a slice that started behind the
scheduler (the model's time is then the slice start) and system resets, through the machine's
(C) bus. The test keeps what the rules need -- the registers, the lock, the start or reload time
with the PR/RLR latched there, when the SR bits clear -- and checks after every step every read,
the registers, flags, deadline, counter, divider and timeout, the pending events, the event log
(resets with their cause and time, window violations with counter and WINR), the poll hints and
the CPU resets against it.
"""
from __future__ import annotations

import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_MS, PS_PER_S
from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_iwdg import STM32_IndependentWatchdog
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x5800_4800
KR, PR, RLR, SR, WINR = 0x00, 0x04, 0x08, 0x0C, 0x10
START, RELOAD, UNLOCK = 0xCCCC, 0xAAAA, 0x5555
FFF = 0xFFF
SR_LSI_PERIODS = 5
M32 = 0xFFFF_FFFF


class Cpu(FakeCpu):
    """FakeCpu that can be inside a slice started at ``slice_start_ps`` and records storms."""

    def __init__(self) -> None:
        super().__init__()
        self.slice_start_ps = 0
        self.storms: list[str] = []

    def storm(self, kind: str, details: dict) -> None:
        self.storms.append(kind)


class Recording:
    """Every machine.record call in order, with its time (the scheduler's log aggregates repeats)."""

    def record(self, kind: str, t: int | None = None, **details) -> None:
        self.records.append((self.now() if t is None else t, kind,
                             {k: v for k, v in details.items() if k != "machine"}))
        super().record(kind, t, **details)


class RecMachine(Recording, Machine):
    pass


class LeadingNow:
    """A machine whose now() is its own (3 us ahead of the scheduler; one behind would make an
    expiry check re-arm at the instant it fires, forever): the C model calls it."""

    def now(self) -> int:
        self.now_calls = getattr(self, "now_calls", 0) + 1
        return self.scheduler.now + 3_000_000


class LeadingMachine(LeadingNow, RecMachine):
    pass


class Spec:
    """What RM0433's rules need to predict the watchdog."""

    def __init__(self, props: dict) -> None:
        self.lsi, self.pre = props["frequency"], props["defaultPrescaler"]
        self.window_option = props["windowOption"]
        self.log: list[tuple] = []
        self.hints: list[tuple] = []
        self.resets = 0
        self.lead_ps = 0                        # machine.now() - scheduler.now outside a slice
        self.reset()

    def reset(self) -> None:
        self.kr, self.pr, self.rlr, self.winr, self.sr = 0, 0, FFF, FFF, 0
        self.running = self.unlocked = False
        self.reload_ps = self.div = self.rl = self.expiry_at = None
        self.sr_at: int | None = None           # when the SR bits clear (the SR event's time)

    def divider(self, pr: int) -> int:
        return self.pre << min(pr & 7, 6)

    def timeout(self, pr: int, rlr: int) -> int:
        return self.divider(pr) * ((rlr & FFF) + 1) * PS_PER_S // self.lsi

    def deadline(self) -> int | None:
        return self.reload_ps + self.div * (self.rl + 1) * PS_PER_S // self.lsi if self.running else None

    def counter(self, t: int) -> int:
        if not self.running:
            return FFF
        return max(self.rl - (t - self.reload_ps) * self.lsi // (self.div * PS_PER_S), 0)

    def system_reset(self, t: int, cause: str) -> None:
        self.log.append((t, "reset", {"cause": cause}))
        self.resets += 1
        self.reset()

    # -- accesses: t = machine.now() (the slice start while the CPU executes), snow = scheduler's
    def reload(self, t: int, snow: int) -> None:
        self.reload_ps, self.div, self.rl = t, self.divider(self.pr), self.rlr & FFF
        self.expiry_at = max(self.deadline(), snow)     # an event in the past fires at once

    def write(self, off: int, size: int, value: int, t: int, snow: int) -> None:
        if (off & ~3) > WINR or (off & ~3) == SR:
            return                                      # a hole; SR is read-only
        shift = 8 * (off & 3)
        mask = ((1 << 8 * size) - 1) << shift & M32
        reg = {KR: "kr", PR: "pr", RLR: "rlr", WINR: "winr"}[off & ~3]
        new = (getattr(self, reg) & ~mask) | (value << shift & mask)
        if reg == "kr":
            self.kr = new
            key = new & 0xFFFF
            self.unlocked = key == UNLOCK
            if key == START and not self.running:
                self.running = True
                self.reload(t, snow)
            elif key == RELOAD and self.running:
                win, c = self.winr & FFF, self.counter(t)
                if self.window_option and win < FFF and c > win:
                    self.log.append((t, "iwdg_window_violation", {"counter": c, "winr": win}))
                    self.system_reset(t, "iwdg")
                else:
                    self.reload(t, snow)
            return
        if not self.unlocked:
            return
        setattr(self, reg, new)
        self.sr |= {"pr": 1, "rlr": 2, "winr": 4}[reg]
        self.sr_at = max(t + SR_LSI_PERIODS * PS_PER_S // self.lsi, snow)
        if reg == "winr" and self.running:
            self.reload(t, snow)                        # no window check

    def read(self, off: int, size: int) -> int:
        word = off & ~3
        if word > WINR or word == KR:
            return 0
        v = {PR: self.pr, RLR: self.rlr, SR: self.sr, WINR: self.winr}[word]
        if word == SR and v:
            self.hints.append((BASE, self.sr_at))
        return v >> 8 * (off & 3) & ((1 << 8 * size) - 1)

    def advance(self, until: int) -> None:
        """The events up to ``until``: the SR bits clear, the deadline passes (reset "iwdg")."""
        while True:
            sr_due = self.sr_at is not None and self.sr_at <= until
            exp_due = self.running and self.expiry_at <= until
            if exp_due and (not sr_due or self.expiry_at <= self.sr_at):
                self.system_reset(self.expiry_at + self.lead_ps, "iwdg")
            elif sr_due:
                self.sr, self.sr_at = 0, None
            else:
                return


class Board:
    def __init__(self, props: dict, leading: bool = False) -> None:
        machine_cls = LeadingMachine if leading else RecMachine
        self.sched = Scheduler(1_000_000)
        m = self.m = machine_cls("stm32", self.sched, platform=__file__)
        m.records = []
        self.cpu = Cpu()
        m.attach_cpu(self.cpu)
        self.w = STM32_IndependentWatchdog(m, "iwdg1", BASE, None, props)
        m.add_peripheral(self.w)
        m.finish()
        assert type(self.w).__name__ == "STM32_IndependentWatchdogNative"
        self.spec = Spec(props)
        self.spec.lead_ps = 3_000_000 if leading else 0
        self.fired: list[str] = []
        self.sched.on_event(lambda ev: self.fired.append(ev.name))

    # every access goes to the watchdog (through the bus) and to the spec at the same time
    def write(self, off: int, size: int, value: int) -> None:
        self.spec.write(off, size, value, self.m.now(), self.sched.now)
        self.m.bus_write(BASE + off, size, value)

    def read(self, off: int, size: int) -> tuple[int, int]:
        return self.m.bus_read(BASE + off, size), self.spec.read(off, size)

    def run_until(self, t: int) -> None:
        self.spec.advance(t)
        self.sched.run_until(t)


def check(b: Board, where: str) -> None:
    w, s, sched = b.w, b.spec, b.sched
    now = b.m.now()
    got = {
        "regs": w.registers(),
        "bus": [b.m.bus_read(BASE + off, 4) for off in (KR, PR, RLR, WINR, 0x14)],
        "flags": (w.running, w.unlocked),
        "deadline": w.deadline_ps,
        "counter": w.counter(),
        "divider": w.divider(),
        "timeout": w.timeout_ps(),
        "log": b.m.records,
        "hints": b.cpu.hints,
        "cpu resets": b.cpu.resets,
    }
    want = {
        "regs": [s.kr, s.pr, s.rlr, s.sr, s.winr],
        "bus": [0, s.pr, s.rlr, s.winr, 0],
        "flags": (s.running, s.unlocked),
        "deadline": s.deadline(),
        "counter": s.counter(now),
        "divider": s.divider(s.pr),
        "timeout": s.timeout(s.pr, s.rlr),
        "log": s.log,
        "hints": s.hints,
        "cpu resets": s.resets,
    }
    for key in want:
        assert got[key] == want[key], f"{where}: {key}"
    live = [(t, ev.name) for t, _seq, ev in sched._heap if not ev.cancelled]
    expiry = [t for t, name in live if name == "iwdg1.expiry"]
    srs = [t for t, name in live if name == "iwdg1.sr"]
    assert len(live) == len(expiry) + len(srs), f"{where}: an event not the watchdog's: {live}"
    if s.running:           # one expiry check, not after the deadline (it re-arms when early)
        assert len(expiry) == 1 and sched.now <= expiry[0] <= s.expiry_at, f"{where}: expiry event"
        assert w._ev is not None and w._ev.time == expiry[0]
    else:
        assert expiry == [] and w._ev is None, f"{where}: an expiry event while stopped"
    assert srs == ([s.sr_at] if s.sr else []), f"{where}: SR event"
    assert (w._sr_ev is None) == (not s.sr)
    assert all(name in ("iwdg1.expiry", "iwdg1.sr") for name in b.fired)


def apply(b: Board, op) -> None:
    kind, sched = op[0], b.sched
    if kind == "key":
        b.write(KR, 4, op[1])
    elif kind == "prot":
        b.write(op[1], 4, op[2])
    elif kind == "w":
        _, off, size, value = op
        b.write(off, size, value & ((1 << 8 * size) - 1))
    elif kind == "r":
        got, want = b.read(op[1], op[2])
        assert got == want, f"read {op[1]:#x}/{op[2]}: {got:#x} != {want:#x}"
    elif kind == "hal":                 # HAL_IWDG_Init: start, unlock, PR, RLR, (WINR), SR == 0, reload
        _, pr, rlr, win = op
        for off, v in ((KR, START), (KR, UNLOCK), (PR, pr), (RLR, rlr)):
            b.write(off, 4, v)
        if win is not None:
            b.write(WINR, 4, win)
        polls = 0
        while polls < 10:
            got, want = b.read(SR, 4)
            assert got == want
            if not got:
                break
            b.run_until(b.spec.sr_at if b.spec.sr_at is not None else sched.now + 1)
            polls += 1
        assert polls <= 1                               # clear at the time the poll hint gave
        b.write(KR, 4, RELOAD)
    elif kind == "run":
        b.run_until(sched.now + op[1])
    elif kind == "deadline":            # to just before / at / after the expiry deadline
        d = b.spec.deadline()
        if d is not None and d + op[1] >= sched.now:
            b.run_until(d + op[1])
    elif kind == "exec":                # an access by the CPU in a slice that started `lag` ago
        _, lag, inner = op
        b.cpu.slice_start_ps = max(0, sched.now - lag)
        b.cpu.executing = True
        try:
            apply(b, inner)
        finally:
            b.cpu.executing = False
    elif kind == "reset":
        b.spec.system_reset(b.m.now(), "test")
        b.m.system_reset("test")


KEYS = st.sampled_from([START, RELOAD, UNLOCK, 0, 0x1234_AAAA, 0xFFFF_5555, 0xCCCD, 0xAAAA_0000])
SMALL = st.one_of(st.integers(0, 40), st.sampled_from([7, 0xFFF, 0x1FFF, 0xFFFF_F00A]))
OFF = st.sampled_from([KR, KR + 1, KR + 2, KR + 3, PR, PR + 1, RLR, RLR + 2, SR, SR + 1, WINR, WINR + 1,
                       WINR + 3, 0x14, 0x18, 0x3FC])
SIZE = st.sampled_from([1, 2, 4])
VALUE = st.one_of(st.integers(0, 0x3F), st.integers(0, 0xFFFF_FFFF), KEYS,
                  st.sampled_from([0xAA, 0x55, 0xCC]))
RUN = st.sampled_from([0, 1, 31_250_000, 125_000_000, PS_PER_MS, 3 * PS_PER_MS, 7 * PS_PER_MS])
INNER = st.one_of(st.tuples(st.just("key"), KEYS), st.tuples(st.just("r"), OFF, SIZE),
                  st.tuples(st.just("w"), OFF, SIZE, VALUE),
                  st.tuples(st.just("prot"), st.sampled_from([PR, RLR, WINR]), SMALL))
OP = st.one_of(
    st.tuples(st.just("key"), KEYS),
    st.tuples(st.just("key"), st.just(RELOAD)),
    st.tuples(st.just("prot"), st.sampled_from([PR, RLR, WINR]), SMALL),
    st.tuples(st.just("hal"), st.integers(0, 2), st.integers(0, 40), st.one_of(st.none(), SMALL)),
    st.tuples(st.just("w"), OFF, SIZE, VALUE),
    st.tuples(st.just("r"), OFF, SIZE),
    st.tuples(st.just("run"), RUN),
    st.tuples(st.just("deadline"), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("exec"), st.sampled_from([0, 1, 2 * PS_PER_MS]), INNER),
    st.tuples(st.just("reset"),),
)
PROPS = st.fixed_dictionaries({
    "frequency": st.sampled_from([32_000, 32_768, 40_000, 7]),
    "defaultPrescaler": st.sampled_from([4, 1, 3]),
    "windowOption": st.booleans(),
})


def run_program(b: Board, ops) -> None:
    check(b, "built")
    for i, op in enumerate(ops):
        apply(b, op)
        check(b, f"step {i} {op}")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(props=PROPS, ops=st.lists(OP, min_size=1, max_size=40))
def test_every_step_of_a_program_follows_the_rm0433_rules(props, ops) -> None:
    run_program(Board(props), ops)


# a program that reaches every rule every time (Hypothesis explores around it)
SCRIPT = [
    ("prot", PR, 3), ("r", PR, 4), ("r", SR, 4),                  # locked: ignored, SR stays 0
    ("hal", 0, 20, None),                                         # /4, 21 ticks of 125 us
    ("run", PS_PER_MS), ("key", RELOAD), ("run", PS_PER_MS), ("exec", 2 * PS_PER_MS, ("key", RELOAD)),
    ("deadline", -1), ("deadline", 0),                            # expiry: system reset "iwdg"
    ("hal", 1, 30, 10),                                           # window 10, counter from 30
    ("run", 125_000_000), ("key", RELOAD),                        # counter ~29 > 10: violation
    ("hal", 0, 30, 25), ("run", 3 * PS_PER_MS), ("key", RELOAD),  # counter ~6 <= 25: fine
    ("key", UNLOCK), ("prot", RLR, 7),                            # SR.RVU busy...
    ("exec", 0, ("r", SR, 4)), ("exec", 0, ("r", SR + 1, 1)),     # ...polled: the hint
    ("run", 31_250_000 * 5), ("r", SR, 4),
    ("w", KR, 2, 0x5555), ("w", WINR + 1, 1, 0x0F), ("w", KR + 1, 1, 0xAA), ("w", KR, 1, 0xAA),
    ("prot", WINR, 40), ("run", 7 * PS_PER_MS), ("r", 0x14, 4), ("w", 0x18, 4, 1), ("reset",),
    ("key", START), ("deadline", 1),
]
PROPS32K = {"frequency": 32_000, "defaultPrescaler": 4, "windowOption": True}


def test_a_scripted_run_touches_every_rule() -> None:
    b = Board(PROPS32K)
    run_program(b, SCRIPT)
    kinds = [(k, d.get("cause")) for _t, k, d in b.m.records]
    assert kinds.count(("reset", "iwdg")) >= 3 and ("reset", "test") in kinds
    assert any(k == "iwdg_window_violation" for k, _ in kinds)
    assert any(addr == BASE and wake is not None for addr, wake in b.cpu.hints)
    assert {"iwdg1.expiry", "iwdg1.sr"} <= set(b.fired)


def test_the_rm0433_timing_examples() -> None:
    """Numbers from the reference, not from the rule the spec class computes: PR=3, RLR=999 at
    32 kHz is 1.0 s; the fixed firmware's /4 and 319 is 40 ms; PR=7 divides as PR=6 (/256); SR's
    bits clear 5 LSI periods (156.25 us) after the last write; the window counter at a kick."""
    b = Board(PROPS32K)
    apply(b, ("hal", 3, 999, None))
    t0 = b.sched.now
    assert b.w.deadline_ps == t0 + PS_PER_S and b.w.timeout_ps() == PS_PER_S and b.w.counter() == 999
    b.run_until(t0 + PS_PER_S - 1)
    assert b.w.running and b.m.records == []
    b.run_until(t0 + PS_PER_S)
    assert b.m.records == [(t0 + PS_PER_S, "reset", {"cause": "iwdg"})] and not b.w.running
    apply(b, ("hal", 0, 319, None))
    assert b.w.deadline_ps - b.sched.now == 40 * PS_PER_MS
    b.write(KR, 4, UNLOCK)
    b.write(PR, 4, 7)
    t1 = b.sched.now
    assert b.w.divider() == 256 and b.w.timeout_ps() == 256 * 320 * PS_PER_S // 32_000
    assert b.w.registers()[3] == 1 and b.w._sr_ev.time == t1 + 156_250_000
    b.run_until(t1 + 156_250_000 - 1)
    assert b.w.registers()[3] == 1
    b.run_until(t1 + 156_250_000)
    assert b.w.registers()[3] == 0
    b.write(KR, 4, RELOAD)              # the new /256 is latched by this reload
    assert b.w.deadline_ps == b.sched.now + 2_560 * PS_PER_MS
    b.write(KR, 4, UNLOCK)
    b.write(WINR, 4, 300)               # a WINR write reloads (no check): counter 319
    t2 = b.sched.now
    assert b.w.counter() == 319
    b.run_until(t2 + 19 * 8 * PS_PER_MS - 1)      # 18 ticks of 8 ms: counter 301 > 300
    assert b.w.counter() == 301
    b.run_until(t2 + 19 * 8 * PS_PER_MS)          # 19 ticks: counter 300, inside the window
    assert b.w.counter() == 300
    b.write(KR, 4, RELOAD)
    assert b.w.running and b.w.counter() == 319 and b.m.records[-1][1] == "reset"   # only the first
    b.write(KR, 4, RELOAD)                        # at once again: counter 319 > 300
    assert b.m.records[-2:] == [(b.sched.now, "iwdg_window_violation", {"counter": 319, "winr": 300}),
                                (b.sched.now, "reset", {"cause": "iwdg"})]
    assert not b.w.running and b.w.registers() == [0, 0, FFF, 0, FFF]


def test_the_iwdg_is_c_and_a_kick_costs_no_python_call() -> None:
    b = Board(PROPS32K)
    w, m = b.w, b.m
    assert isinstance(w, native.core().Iwdg) and isinstance(w, STM32_IndependentWatchdog)
    assert "running" not in w.__dict__ and "_ev" not in w.__dict__ and not list(w.regs)
    assert type(w._native_mmio).__name__ == "PyCapsule"
    assert isinstance(w.read, types.BuiltinMethodType) and isinstance(w.reset, types.BuiltinMethodType)
    assert w.register_name(SR + 2) == "SR" and w.register_name(0x14) is None
    apply(b, ("hal", 0, 319, None))                               # the firmware's 40 ms
    ev, pending = w._ev, b.sched.pending()
    b.run_until(b.sched.now + PS_PER_MS)
    calls: list[str] = []

    def prof(frame, event, arg) -> None:
        if event in ("call", "c_call"):
            calls.append(arg.__name__ if event == "c_call" else frame.f_code.co_name)

    writes = m.mmio_writes
    sys.setprofile(prof)
    try:
        m.bus_write(BASE + KR, 4, RELOAD)          # C bus -> the capsule -> iwdg.c
    finally:
        sys.setprofile(None)
    # Machine.bus_write -> _core.Bus.write; below it no Python call at all: the bus counts
    # the write (mmio_writes: it breaks a CPU's poll) and the watchdog is C
    assert [c for c in calls if c != "setprofile"] == ["bus_write", "write"]
    assert m.mmio_writes == writes + 1
    assert w._ev is ev and b.sched.pending() == pending          # no event moved
    assert w.deadline_ps == b.sched.now + 40 * PS_PER_MS
    with pytest.raises(ValueError, match="defaultPrescaler"):
        Board({**PROPS32K, "defaultPrescaler": 0})
    with pytest.raises(ValueError, match="1 THz"):
        Board({**PROPS32K, "frequency": 2 * PS_PER_S})


def test_a_machine_with_its_own_now_is_asked_for_the_time() -> None:
    b = Board(PROPS32K, leading=True)
    run_program(b, SCRIPT)
    assert b.m.now_calls > 0
    b = Board(PROPS32K, leading=True)
    run_program(b, [("hal", 0, 20, None)])
    assert b.w._reload_ps == b.sched.now + 3_000_000
