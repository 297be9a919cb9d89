"""Differential tests: the STM32H7 IWDG in C (native/iwdg.c behind stm32_iwdg.py's
STM32_IndependentWatchdogNative) against the Python reference (STM32_IndependentWatchdog).

Two watchdogs, one per DUOHIL_MODELS value, each alone in a machine (the C bus under native) with
its own scheduler and a stand-in CPU that records poll hints, resets and storms and can be
"executing" at a slice start behind the scheduler (machine.now() is then the slice start).
Hypothesis picks the LSI frequency, the default prescaler and windowOption, and a program of
keys (start, reload, unlock, others, keys with high bits), PR/RLR/WINR writes (locked and
unlocked), raw byte/halfword/word writes and reads anywhere in the first words and in holes
(SR's busy bits, with and without a CPU executing: the poll hint), HAL's init sequence, time
advances (to just before, at and after the expiry deadline; over the SR update), kicks from an
executing CPU behind the scheduler, and system resets. After every step both returned the same
values and hold the same registers, flags, deadline, counter, divider, timeout and timing cache,
hold the same two events (time, sequence number, name, callable's name), have the same live
events in the scheduler, fired the same events, wrote the same event log (resets with their
cause, window violations with counter and WINR) and gave the same poll hints and CPU resets.
"""
from __future__ import annotations

import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_MS, PS_PER_S
from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine, MachineNative
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_iwdg import STM32_IndependentWatchdog
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x5800_4800
KR, PR, RLR, SR, WINR = 0x00, 0x04, 0x08, 0x0C, 0x10
START, RELOAD, UNLOCK = 0xCCCC, 0xAAAA, 0x5555


class Cpu(FakeCpu):
    """FakeCpu that can be inside a slice started at ``slice_start_ps`` and records storms."""

    def __init__(self) -> None:
        super().__init__()
        self.slice_start_ps = 0
        self.storms: list[str] = []

    def storm(self, kind: str, details: dict) -> None:
        self.storms.append(kind)


class Board:
    def __init__(self, models: str, props: dict, machine_cls: type = Machine) -> None:
        with native.using(models):
            self.sched = Scheduler(1_000_000)
            m = self.m = machine_cls("stm32", self.sched, platform=__file__)
            self.cpu = Cpu()
            m.attach_cpu(self.cpu)
            self.w = STM32_IndependentWatchdog(m, "iwdg1", BASE, None, props)
            m.add_peripheral(self.w)
            m.finish()
        native_model = type(self.w).__name__ == "STM32_IndependentWatchdogNative"
        assert native_model == (models == "native")
        assert isinstance(m, MachineNative) == (models == "native")
        self.fired: list[tuple] = []
        self.sched.on_event(lambda ev: self.fired.append((ev.time, ev.seq, ev.name, ev.fn.__name__)))


def ev_view(ev) -> tuple | None:
    return None if ev is None else (ev.time, ev.seq, ev.name, ev.fn.__name__, ev.cancelled)


def state(b: Board) -> dict:
    w = b.w
    return {
        "now": b.sched.now,
        "regs": w.registers(),
        "bus": [b.m.bus_read(BASE + off, 4) for off in (KR, PR, RLR, WINR, 0x14)],
        "flags": (w.running, w.unlocked),
        "deadline": w.deadline_ps,
        "counter": w.counter(),
        "divider": w.divider(),
        "timeout": w.timeout_ps(),
        "timing": (w._reload_ps, w._period_ps, w._divider, w._reload_value),
        "events": (ev_view(w._ev), ev_view(w._sr_ev)),
        "pending": sorted((t, seq, ev.name) for t, seq, ev in b.sched._heap if not ev.cancelled),
        "fired": list(b.fired),
        "log": b.sched.events(),
        "hints": list(b.cpu.hints),
        "cpu": (b.cpu.resets, list(b.cpu.storms)),
    }


def apply(b: Board, op) -> object:
    kind, m, sched = op[0], b.m, b.sched
    if kind == "key":
        m.bus_write(BASE + KR, 4, op[1])
    elif kind == "prot":
        m.bus_write(BASE + op[1], 4, op[2])
    elif kind == "w":
        _, off, size, value = op
        m.bus_write(BASE + off, size, value & ((1 << 8 * size) - 1))
    elif kind == "r":
        return m.bus_read(BASE + op[1], op[2])
    elif kind == "hal":                 # HAL_IWDG_Init: start, unlock, PR, RLR, (WINR), SR == 0, reload
        _, pr, rlr, win = op
        for off, v in ((KR, START), (KR, UNLOCK), (PR, pr), (RLR, rlr)):
            m.bus_write(BASE + off, 4, v)
        if win is not None:
            m.bus_write(BASE + WINR, 4, win)
        polls = 0
        while m.bus_read(BASE + SR, 4) and polls < 10:
            sched.run_until(sched.now + (b.w._sr_ev.time - sched.now if b.w._sr_ev else 1))
            polls += 1
        m.bus_write(BASE + KR, 4, RELOAD)
        return polls
    elif kind == "run":
        sched.run_until(sched.now + op[1])
    elif kind == "deadline":            # to just before / at / after the expiry deadline
        d = b.w.deadline_ps
        if d is not None and d + op[1] >= sched.now:
            sched.run_until(d + op[1])
    elif kind == "exec":                # an access by the CPU in a slice that started `lag` ago
        _, lag, inner = op
        b.cpu.slice_start_ps = max(0, sched.now - lag)
        b.cpu.executing = True
        try:
            return apply(b, inner)
        finally:
            b.cpu.executing = False
    elif kind == "reset":
        m.system_reset("test")
    return None


KEYS = st.sampled_from([START, RELOAD, UNLOCK, 0, 0x1234_AAAA, 0xFFFF_5555, 0xCCCD, 0xAAAA_0000])
SMALL = st.one_of(st.integers(0, 40), st.sampled_from([0xFFF, 0x1FFF, 0xFFFF_F00A]))
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


def compare(py: Board, nat: Board, ops) -> None:
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        ra, rc = apply(py, op), apply(nat, op)
        assert ra == rc, f"step {i} {op}: returned values differ"
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(props=PROPS, ops=st.lists(OP, min_size=1, max_size=40))
def test_iwdg_in_c_equals_the_python_reference(props, ops) -> None:
    compare(Board("python", props), Board("native", props), ops)


# a program that reaches every path every time (Hypothesis explores around it)
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


def test_a_scripted_run_touches_every_path_and_matches() -> None:
    props = {"frequency": 32_000, "defaultPrescaler": 4, "windowOption": True}
    py, nat = Board("python", props), Board("native", props)
    compare(py, nat, SCRIPT)
    kinds = [(k, d.get("cause")) for _t, k, d in nat.sched.events()]
    assert kinds.count(("reset", "iwdg")) >= 3 and ("reset", "test") in kinds
    assert any(k == "iwdg_window_violation" for k, _ in kinds)
    assert any(addr == BASE and wake is not None for addr, wake in nat.cpu.hints)
    assert {"iwdg1.expiry", "iwdg1.sr"} <= {name for _t, _s, name, _f in nat.fired}


def test_native_iwdg_state_lives_in_c_and_a_kick_costs_no_python_call() -> None:
    props = {"frequency": 32_000, "defaultPrescaler": 4, "windowOption": True}
    b = Board("native", props)
    w, m = b.w, b.m
    assert "running" not in w.__dict__ and "_ev" not in w.__dict__ and not list(w.regs)
    assert type(w._native_mmio).__name__ == "PyCapsule"
    assert isinstance(w.read, types.BuiltinMethodType) and isinstance(w.reset, types.BuiltinMethodType)
    assert w.register_name(SR + 2) == "SR" and w.register_name(0x14) is None
    apply(b, ("hal", 0, 319, None))                               # the firmware's 40 ms
    ev, pending = w._ev, b.sched.pending()
    b.sched.run_until(b.sched.now + PS_PER_MS)
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
    # MachineNative.bus_write -> _core.Bus.write; below it no Python call at all: the bus counts
    # the write (mmio_writes: it breaks a CPU's poll) and the watchdog is C
    assert [c for c in calls if c != "setprofile"] == ["bus_write", "write"]
    assert m.mmio_writes == writes + 1
    assert w._ev is ev and b.sched.pending() == pending          # no event moved
    assert w.deadline_ps == b.sched.now + 40 * PS_PER_MS
    with pytest.raises(ValueError, match="defaultPrescaler"):
        Board("native", {**props, "defaultPrescaler": 0})
    with pytest.raises(ValueError, match="1 THz"):
        Board("python", {**props, "frequency": 2 * PS_PER_S})


class LeadingNow:
    """A machine whose now() is its own (3 us ahead of the scheduler; one behind would make an
    expiry check re-arm at the instant it fires, forever, in both models): the C model calls it."""

    def now(self) -> int:
        self.now_calls = getattr(self, "now_calls", 0) + 1
        return self.scheduler.now + 3_000_000


class LeadingMachine(LeadingNow, Machine):
    pass


class LeadingMachineNative(LeadingNow, MachineNative):
    pass


def test_a_machine_with_its_own_now_is_asked_for_the_time() -> None:
    props = {"frequency": 32_000, "defaultPrescaler": 4, "windowOption": True}
    py = Board("python", props, LeadingMachine)
    nat = Board("native", props, LeadingMachineNative)
    compare(py, nat, SCRIPT)
    assert nat.m.now_calls > 0          # (fewer than Python: counter() once per window check)
    py, nat = Board("python", props, LeadingMachine), Board("native", props, LeadingMachineNative)
    compare(py, nat, [("hal", 0, 20, None)])
    assert nat.w._reload_ps == nat.sched.now + 3_000_000
