"""Differential tests: the C scheduler (native/_core.c) against the Python one (scheduler.py).

Hypothesis draws programs of schedule / cancel / defer / record / run operations, with event
callbacks that schedule and cancel more events and fake CPUs that run, sleep, park and schedule
from inside their slices; both schedulers must give the same trace (what fired, when, with which
sequence number), the same log, steps and clock. The slice driver (CpuCore's next_deadline /
advance_to / settle, in C under the C scheduler) is compared the same way with scripted CpuCore
subclasses that sleep, park, stall, halt and take interrupts.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpu import CpuCore
from duohil.engines.builtin.scheduler import PythonScheduler, native_scheduler

CORE = native.core()
NATIVE = native_scheduler() if CORE is not None else None   # C heap + loop, EventLog
pytestmark = pytest.mark.skipif(CORE is None, reason=f"no native core: {native.note()}")

REACT = st.one_of(
    st.none(),
    st.tuples(st.just("after"), st.integers(0, 50)),
    st.tuples(st.just("at_past"), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("record"), st.integers(0, 9)),
    st.tuples(st.just("defer"), st.integers(0, 40)),
    st.tuples(st.just("park"), st.integers(0, 1)),
)
OP = st.one_of(
    st.tuples(st.just("at"), st.integers(-5, 300), REACT),
    st.tuples(st.just("after"), st.integers(-5, 300), REACT),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("defer"), st.integers(0, 300)),
    st.tuples(st.just("cancel_deferred"), st.integers(0, 100)),
    st.tuples(st.just("record"), st.integers(0, 9)),
    st.tuples(st.just("run_for"), st.integers(0, 120)),
    st.tuples(st.just("next")),
)
CPU_SCRIPT = st.lists(st.sampled_from(["run", "run", "sleep", "park", "park_until", "emit", "stall"]),
                      min_size=1, max_size=6)


class FakeCpu:
    """A CPU whose behaviour at each slice follows a script (cycled)."""

    def __init__(self, sched, name: str, script: list[str], trace: list) -> None:
        self.sched, self.name, self.script, self.trace = sched, name, script, trace
        self.i = 0
        self.mode = "run"
        self.until: int | None = None
        self.parked = False
        self.local = 0

    def next_deadline(self, now: int, quantum: int) -> int | None:
        if self.mode == "sleep" or (self.parked and self.until is None):
            return None
        if self.parked or self.mode == "stall":
            return self.until
        return now + quantum

    def advance_to(self, t: int) -> None:
        self.trace.append(("adv", self.name, self.sched.now, t))
        act = self.script[self.i % len(self.script)]
        self.i += 1
        self.mode, self.until = "run", None
        if act == "sleep":
            self.mode = "sleep"
        elif act in ("park", "park_until"):
            self.parked = True
            self.until = t + 7 if act == "park_until" else None
            self.sched.park(self)
        elif act == "stall":
            self.mode, self.until = "stall", t + 13
        elif act == "emit":
            self.sched.at(self.local + 3, self.trace.append, ("emitted", self.name), name=self.name)
        self.local = t

    def settle(self, t: int) -> None:
        self.trace.append(("settle", self.name, t))

    def unpark(self) -> None:
        self.trace.append(("unpark", self.name, self.sched.now))
        self.parked = False
        self.until = None


def run_program(sched, ops: list, scripts: list[list[str]]) -> dict:
    trace: list = []
    events: list = []
    deferred: list = []
    cpus = [FakeCpu(sched, f"cpu{i}", s, trace) for i, s in enumerate(scripts)]
    for c in cpus:
        sched.add_cpu(c)
    sched.on_event(lambda ev: trace.append(("listen", ev.seq, ev.time)))

    def fire(i: int, react) -> None:
        trace.append(("fire", i, sched.now))
        if react is None:
            return
        kind, arg = react
        if kind == "after":
            events.append(sched.after(arg, fire, len(events), None, name=f"ev{len(events)}"))
        elif kind == "at_past":
            events.append(sched.at(sched.now - arg, fire, len(events), None))
        elif kind == "cancel" and events:
            events[arg % len(events)].cancel()
        elif kind == "record":
            sched.record("rec", i=i, arg=arg)
        elif kind == "defer":
            defer(sched.now + arg)
        elif kind == "park" and cpus:
            c = cpus[arg % len(cpus)]
            c.parked = True
            sched.park(c)

    def defer(t_lb: int) -> None:
        seq = sched.reserve_seq()
        k = len(deferred)

        def materialize() -> None:
            trace.append(("materialize", k, sched.now))
            events.append(sched.at_seq(t_lb + 2, seq, fire, len(events), None, name="lazy"))
        deferred.append(sched.defer(t_lb, materialize))

    for op in ops:
        kind = op[0]
        if kind == "at":
            events.append(sched.at(op[1], fire, len(events), op[2]))
        elif kind == "after":
            events.append(sched.after(op[1], fire, len(events), op[2]))
        elif kind == "cancel" and events:
            events[op[1] % len(events)].cancel()
        elif kind == "defer":
            defer(sched.now + op[1])
        elif kind == "cancel_deferred" and deferred:
            sched.cancel_deferred(deferred[op[1] % len(deferred)])
        elif kind == "record":
            sched.record("op", t=sched.now + op[1], n=op[1])
        elif kind == "run_for":
            sched.run_for(op[1])
        elif kind == "next":
            trace.append(("next", sched.next_event_time()))
        # the heap's array itself: same sift algorithm as heapq, entry for entry
        trace.append(("heap", [(t, q) for t, q, _ in sched._heap]))
    sched.run_for(400)
    return {"trace": trace, "seqs": [(e.seq, e.time, e.cancelled, e.name) for e in events],
            "log": sched.log, "steps": sched.steps, "now": sched.now,
            "next": sched.next_event_time()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, max_size=40), scripts=st.lists(CPU_SCRIPT, max_size=3),
       quantum=st.integers(1, 40))
def test_same_firing_order_times_and_log_as_the_python_scheduler(ops, scripts, quantum) -> None:
    want = run_program(PythonScheduler(quantum), ops, scripts)
    got = run_program(NATIVE(quantum), ops, scripts)
    assert got == want


def test_many_same_time_events_come_out_in_scheduling_order() -> None:
    for cls in (PythonScheduler, NATIVE):
        s = cls(10)
        out: list[int] = []
        for i in range(500):
            s.at((i * 7919) % 13, out.append, i)
        s.run_until(20)
        assert out == sorted(range(500), key=lambda i: ((i * 7919) % 13, i))


def test_the_heap_alone_pops_in_time_then_sequence_order() -> None:
    assert CORE.heap_selftest(200_000, 12345) is True


def test_an_exception_in_an_event_propagates_and_the_cpus_are_settled() -> None:
    for cls in (PythonScheduler, NATIVE):
        s = cls(10)
        trace: list = []
        s.add_cpu(FakeCpu(s, "c", ["run"], trace))

        def boom() -> None:
            raise KeyError("boom")
        s.at(25, boom)
        with pytest.raises(KeyError, match="boom"):
            s.run_until(100)
        assert s.now == 25 and trace[-1] == ("settle", "c", 25)     # the event set now, then raised


def test_event_objects_behave_alike() -> None:
    for cls in (PythonScheduler, NATIVE):
        s = cls(10)
        a = s.at(5, print, name="a")
        b = s.at(5, print)
        assert a < b and not b < a and a != b
        assert repr(a) == "Event(a @ 5 ps)" and repr(b) == "Event(print @ 5 ps)"
        b.args = (b,)
        assert b.args == (b,)
        assert (a.time, a.seq, a.cancelled) == (5, 1, False)
        a.cancel()
        assert a.cancelled
        with pytest.raises(TypeError, match="unexpected keyword"):
            s.at(1, print, nmae="x")


SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.mark.parametrize("scenario_name, variant", [("nominal", "fixed"), ("cm1_cmd_timeout", "buggy")])
def test_a_scenario_run_is_the_same_under_both_switches(scenario_name: str, variant: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from duohil import runner, scenario
    from duohil.errors import ConfigError
    sc = scenario.load(SCENARIOS / f"{scenario_name}.yaml")
    try:
        scenario.check_images(sc, [variant])
    except ConfigError as exc:
        pytest.skip(f"firmware not built (make firmware): {exc}")
    runs = {}
    for m in ("python", "native"):
        monkeypatch.setenv(native.ENV, m)
        runs[m] = runner.run(sc, variant)
    assert os.environ[native.ENV] == "native"
    assert runs["python"].fingerprint == runs["native"].fingerprint
    assert runs["python"].outcomes == runs["native"].outcomes


# -- the slice driver: CpuCore's next_deadline / advance_to / settle, in C under the C scheduler --------

SLICE_ACT = st.sampled_from(["none", "none", "wfi", "park", "park_for", "stall", "halt", "irq_later",
                             "raise", "clock"])


class _Machine:
    def __init__(self, sched) -> None:
        self.scheduler = sched

    def record(self, kind: str, t: int | None = None, **details) -> None:
        self.scheduler.record(kind, t=t, machine="m", **details)


class ScriptedCpu(CpuCore):
    """CpuCore's own time methods around a scripted architecture: no unicorn, slices follow a script."""

    def __init__(self, sched, name: str, hz: int, script: list[str], trace: list) -> None:
        self.machine, self.name, self.hz = _Machine(sched), name, hz
        self.cycles = self.slices = self.instructions = self.slice_start_ps = 0
        self.sleeping = self.halted = self.parked = self.executing = False
        self.stall_until = self.park_until = None
        self._poll_addr, self._poll_count = None, 0
        self.hz_cap, self._pending_hz = None, None
        self.script, self.trace, self.i, self.pending = script, trace, 0, False

    def interrupt_pending(self) -> bool:
        return self.pending

    def take_interrupts(self) -> bool:
        self.trace.append(("take", self.name, self.cycles))
        if self.pending and self.i % 3 != 1:        # sometimes masked
            self.pending = False
            self.trace.append(("irq", self.name, self.cycles))
            return True
        return False

    def unpark(self) -> None:
        self.trace.append(("unpark", self.name, self.cycles))
        super().unpark()

    def raise_irq(self) -> None:
        self.pending = True
        self.trace.append(("raise", self.name, self.machine.scheduler.now))

    def _run_slice(self, count: int) -> None:
        sched = self.machine.scheduler
        act = self.script[self.i % len(self.script)]
        self.i += 1
        self.trace.append(("slice", self.name, count, self.cycles, self.slice_start_ps, act))
        if act == "wfi":
            self.sleeping = True
        elif act in ("park", "park_for"):
            self.parked = True
            self.park_until = self.slice_start_ps + 5_000 if act == "park_for" else None
            sched.park(self)
        elif act == "stall":
            self.stall(self.slice_start_ps + 20_000)
        elif act == "halt" and self.i > 6:
            self.halted = True
        elif act == "irq_later":
            sched.at(self.slice_start_ps + 3_000, self.raise_irq, name="irq")
        elif act == "raise":
            self.pending = True
        elif act == "clock":                  # the RCC switches the core clock inside the slice
            self.set_core_clock(self.hz * 3 if self.hz < 100_000_000 else self.hz // 2)


def run_cpus(sched, scripts: list[list[str]], hzs: list[int], kicks: list[int], until: int) -> dict:
    trace: list = []
    cpus = [ScriptedCpu(sched, f"c{i}", hz, s, trace) for i, (s, hz) in enumerate(zip(scripts, hzs))]
    for c in cpus:
        sched.add_cpu(c)
    for k, t in enumerate(kicks):                     # outside interrupts, wake-ups of parked CPUs
        if cpus:
            sched.at(t, cpus[k % len(cpus)].raise_irq, name="kick")
    for step in range(1, 5):
        sched.run_until(until * step // 4)
    state = [(c.hz, c.cycles, c.slices, c.instructions, c.sleeping, c.parked, c.park_until, c.stall_until,
              c.halted, c.executing, c.slice_start_ps, c.pending) for c in cpus]
    return {"trace": trace, "state": state, "log": sched.log, "steps": sched.steps, "now": sched.now}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(st.lists(SLICE_ACT, min_size=1, max_size=8), min_size=1, max_size=2),
       hzs=st.lists(st.sampled_from([1_000_000, 64_000_000, 160_000_000, 480_000_000, 7_000_003]),
                    min_size=2, max_size=2),
       kicks=st.lists(st.integers(0, 200_000), max_size=6),
       quantum=st.sampled_from([1_000, 10_000, 33_333]))
def test_the_c_slice_driver_moves_cpus_like_cpu_py(scripts, hzs, kicks, quantum) -> None:
    want = run_cpus(PythonScheduler(quantum), scripts, hzs, kicks, 200_000)
    s = NATIVE(quantum)
    got = run_cpus(s, scripts, hzs, kicks, 200_000)
    assert all(CORE.drives_natively(c) for c in s.cpus)
    assert got == want


def test_only_cpus_that_keep_cpucores_time_methods_are_driven_in_c() -> None:
    s = NATIVE(10)
    plain = ScriptedCpu(s, "a", 1_000_000, ["none"], [])

    class Own(ScriptedCpu):
        def advance_to(self, t: int) -> None:
            super().advance_to(t)
    own = Own(s, "b", 1_000_000, ["none"], [])
    shadow = ScriptedCpu(s, "c", 1_000_000, ["none"], [])
    shadow.settle = lambda t: None
    assert [CORE.drives_natively(c) for c in (plain, own, shadow)] == [True, False, False]


def test_an_exception_in_a_slice_clears_executing_and_propagates() -> None:
    for cls in (PythonScheduler, NATIVE):
        s = cls(1_000)
        c = ScriptedCpu(s, "a", 1_000_000, ["none"], [])

        def boom(count: int) -> None:
            raise ValueError("slice")
        c._run_slice = boom
        s.add_cpu(c)
        with pytest.raises(ValueError, match="slice"):
            s.run_until(10_000)
        assert c.executing is False and c.cycles == 0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1025, 3000), keep_every=st.integers(2, 9), seed=st.integers(0, 2**16))
def test_cancelled_events_are_compacted_to_the_same_heap(n: int, keep_every: int, seed: int) -> None:
    """Scheduler._compact (drop cancelled events once the heap doubles, heapify the rest) in C gives
    the very heap array the Python one does, and the same firing order after it."""
    runs = []
    for cls in (PythonScheduler, NATIVE):
        s = cls(10)
        fired: list[tuple[int, int]] = []
        evs = []
        for i in range(n):
            t = (i * 7919 + seed) % 5000
            evs.append(s.at(t, lambda i=i: fired.append((s.now, i)), name="e"))
            if i % keep_every:
                evs[-1].cancel()
        heap = [(t, q) for t, q, _ev in s._heap]
        s.run_until(10_000)
        runs.append((heap, fired, len(s._heap)))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) < n
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2] == 0


def test_a_stop_request_stops_both_schedulers_at_their_next_step(monkeypatch) -> None:
    from duohil.engines.builtin.scheduler import Scheduler, StopRequested
    monkeypatch.setattr(Scheduler, "stop_request", None)     # and back to None at teardown
    for cls in (PythonScheduler, NATIVE):
        s = cls(10)
        s.at(5, lambda: setattr(Scheduler, "stop_request", "wall-clock budget spent"), name="stop")
        s.at(50, lambda: pytest.fail("an event after the stop request fired"), name="late")
        with pytest.raises(StopRequested, match="wall-clock budget spent"):
            s.run_until(100)
        assert s.now < 50
        Scheduler.stop_request = None
