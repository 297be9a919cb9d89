"""The scheduler (heap, time loop and slice driver in C, native/_core.c; scheduler.py its face).

There is one implementation; these tests state what it must do. Hypothesis draws programs of
schedule / cancel / defer / record / run operations, with event callbacks that schedule and cancel
more events and fake CPUs that run, sleep, park and schedule from inside their slices, and checks
the invariants of the design: events fire in (time, seq) order, each at its own time, exactly once
unless cancelled first; sequence numbers count every scheduling; the past is clamped to now; the
heap array keeps heapq's layout; a deferred event is materialised before anything observes its
time; a CPU is advanced only when it asked for time, never past the next event or its own
deadline, and every CPU is settled when the loop returns. Hand-computed runs pin exact orders.
The slice driver (CpuCore's next_deadline / advance_to / settle, in C) is checked the same way
with scripted CpuCore subclasses that sleep, park, stall, halt, change clock and take interrupts.
"""
from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.cpu import CpuCore
from duohil.engines.builtin.kernel.scheduler import Scheduler, StopRequested

CORE = native.core()
PS_PER_S = 1_000_000_000_000

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


def heap_ok(heap: list) -> bool:
    """heapq's invariant on the (time, seq) keys of the heap array."""
    keys = [(t, q) for t, q, _ev in heap]
    return all(keys[(i - 1) // 2] <= keys[i] for i in range(1, len(keys)))


class FakeCpu:
    """A CPU whose behaviour at each slice follows a script (cycled); it checks, when advanced,
    that the scheduler asked it first and respects its deadline and the next event."""

    def __init__(self, w: "World", name: str, script: list[str]) -> None:
        self.w, self.sched, self.name, self.script = w, w.sched, name, script
        self.i = 0
        self.mode = "run"
        self.until: int | None = None
        self.parked = False
        self.local = 0
        self.asked: tuple[int, int | None] | None = None     # (now, deadline) of the last ask

    def next_deadline(self, now: int, quantum: int) -> int | None:
        if self.mode == "sleep" or (self.parked and self.until is None):
            d = None
        elif self.parked or self.mode == "stall":
            d = self.until
        else:
            d = now + quantum
        self.asked = (now, d)
        return d

    def advance_to(self, t: int) -> None:
        s = self.sched
        now = s.now
        assert self.asked is not None and self.asked[0] == now, "advanced without being asked"
        d = self.asked[1]
        assert d is not None, "advanced although it asked for no time"
        assert now < t, "a step of no time (trap c)"
        assert t <= (d if d > now else now + s.quantum), "advanced past its own deadline"
        if s.steps != self.w.step_seen:                  # the first CPU of this step
            self.w.step_seen = s.steps
            live = [et for et, _q, ev in s._heap if not ev.cancelled]
            assert not live or min(live) >= t, "advanced past the next event"
        self.asked = None
        self.w.trace.append(("adv", self.name, now, t))
        act = self.script[self.i % len(self.script)]
        self.i += 1
        self.mode, self.until = "run", None
        if act == "sleep":
            self.mode = "sleep"
        elif act in ("park", "park_until"):
            self.parked = True
            self.until = t + 7 if act == "park_until" else None
            s.park(self)
        elif act == "stall":
            self.mode, self.until = "stall", t + 13
        elif act == "emit":
            self.w.schedule(self.local + 3, None, name=self.name)
        self.local = t

    def settle(self, t: int) -> None:
        self.w.trace.append(("settle", self.name, t))

    def unpark(self) -> None:
        assert self.parked
        self.w.trace.append(("unpark", self.name, self.sched.now))
        self.parked = False
        self.until = None


class World:
    """A program's run: every event scheduled, in order, with what the spec says about it."""

    def __init__(self, quantum: int) -> None:
        self.sched = Scheduler(quantum)
        self.trace: list = []
        self.events: list = []          # [event, wanted time, fired?, cancelled before firing?]
        self.fired: list = []           # (time, seq, now at firing)
        self.seqs: list[int] = []       # every sequence number handed out, in order
        self.deferred: list = []        # [handle, t_lb, materialised at position, cancelled?]
        self.step_seen = -1
        self.cpus: list[FakeCpu] = []

    def schedule(self, t: int, react, name: str = "", kind: str = "at") -> None:
        """``at(t)``, or ``after(t)`` (t a delay) for kind "after": the past is clamped to now."""
        s = self.sched
        k = len(self.events)
        if kind == "after":
            want = s.now + max(0, t)
            ev = s.after(t, self.fire, k, react, name=name)
        else:
            want = max(t, s.now)
            ev = s.at(t, self.fire, k, react, name=name)
        assert ev.time == want and ev.name == name and not ev.cancelled
        self.seqs.append(ev.seq)
        self.events.append([ev, ev.time, False, False])

    def cancel(self, k: int) -> None:
        e = self.events[k]
        if not e[2]:
            e[3] = True
        e[0].cancel()

    def fire(self, k: int, react) -> None:
        s = self.sched
        e = self.events[k]
        ev = e[0]
        assert not e[2] and not e[3], "fired twice, or fired after being cancelled"
        assert s.now == ev.time, "an event fires at its own time"
        e[2] = True
        self.fired.append((ev.time, ev.seq))
        self.trace.append(("fire", k, s.now))
        for d in self.deferred:                          # nothing at >= t_lb before materialising
            if not d[3] and d[2] is None:
                assert ev.time < d[1], "an event at or after a deferred bound fired first"
        if react is None:
            return
        kind, arg = react
        if kind == "after":
            self.schedule(arg, None, name=f"ev{len(self.events)}", kind="after")
        elif kind == "at_past":
            self.schedule(s.now - arg, None)
        elif kind == "cancel" and self.events:
            self.cancel(arg % len(self.events))
        elif kind == "record":
            s.record("rec", i=k, arg=arg)
        elif kind == "defer":
            self.defer(s.now + arg)
        elif kind == "park" and self.cpus:
            c = self.cpus[arg % len(self.cpus)]
            if not c.parked:
                c.parked = True
                s.park(c)

    def defer(self, t_lb: int) -> None:
        s = self.sched
        seq = s.reserve_seq()
        self.seqs.append(seq)
        d = [None, t_lb, None, False]

        def materialize() -> None:
            assert d[2] is None and not d[3]
            d[2] = len(self.trace)
            self.trace.append(("materialize", t_lb, s.now))
            k = len(self.events)
            ev = s.at_seq(t_lb + 2, seq, self.fire, k, None, name="lazy")
            assert (ev.time, ev.seq) == (t_lb + 2, seq)
            self.events.append([ev, ev.time, False, False])
        d[0] = s.defer(t_lb, materialize)
        self.deferred.append(d)


def run_program(ops: list, scripts: list[list[str]], quantum: int) -> World:
    w = World(quantum)
    s = w.sched
    w.cpus = [FakeCpu(w, f"cpu{i}", sc) for i, sc in enumerate(scripts)]
    for c in w.cpus:
        s.add_cpu(c)
    listened: list = []
    s.on_event(lambda ev: listened.append((ev.time, ev.seq)))
    records = 0
    for op in ops:
        kind = op[0]
        if kind in ("at", "after"):
            w.schedule(op[1], op[2], kind=kind)
        elif kind == "cancel" and w.events:
            w.cancel(op[1] % len(w.events))
        elif kind == "defer":
            w.defer(s.now + op[1])
        elif kind == "cancel_deferred" and w.deferred:
            d = w.deferred[op[1] % len(w.deferred)]
            if d[2] is None:
                d[3] = True
            s.cancel_deferred(d[0])
        elif kind == "record":
            records += 1
            s.record("op", t=s.now + op[1], n=op[1])
            assert s.log[-1] == (s.now + op[1], "op", {"n": op[1]})
        elif kind in ("run_for", "next"):
            before = s.now
            if kind == "run_for":
                s.run_for(op[1])
                assert s.now == before + op[1]
                tail = w.trace[-len(w.cpus):] if w.cpus else []
                assert tail == [("settle", c.name, s.now) for c in w.cpus], "every CPU settled"
            nxt = s.next_event_time()
            live = [e[1] for e in w.events if not e[2] and not e[3]]
            assert nxt == (min(live) if live else None)
            assert all(t > s.now for t in live) or kind == "next"
        assert heap_ok(s._heap)
    s.run_for(400)
    # the spec, over the whole run
    assert w.fired == sorted(w.fired) and len(set(w.fired)) == len(w.fired), "(time, seq) order"
    assert listened == w.fired, "each listener call follows its event"
    assert w.seqs == list(range(1, len(w.seqs) + 1)), "one sequence number per scheduling"
    for ev, t, fired, cancelled in w.events:
        assert fired == (not cancelled and t <= s.now), (ev, t, fired, cancelled, s.now)
    for d in w.deferred:
        if d[3]:
            assert d[2] is None
    assert sum(1 for e in s.log if e[1] in ("op", "rec")) == len(s.log)
    return w


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, max_size=40), scripts=st.lists(CPU_SCRIPT, max_size=3),
       quantum=st.integers(1, 40))
def test_events_fire_in_time_then_sequence_order_and_cpus_keep_to_the_horizon(ops, scripts,
                                                                             quantum) -> None:
    run_program(ops, scripts, quantum)


def test_a_hand_computed_run() -> None:
    """Quantum 10, one CPU that always runs: events at 5, 5 and 3 (in that order), one scheduled
    in the past from an event, a deferred event; every step's horizon is the earliest of t_end,
    the next event and now + quantum."""
    s = Scheduler(10)
    trace: list = []

    class Cpu:
        name = "c"

        def next_deadline(self, now: int, quantum: int) -> int:
            return now + quantum

        def advance_to(self, t: int) -> None:
            trace.append(("adv", s.now, t))

        def settle(self, t: int) -> None:
            trace.append(("settle", t))

    def past() -> None:
        trace.append(("fire", "b", s.now))
        ev = s.at(1, lambda: trace.append(("fire", "late", s.now)))
        trace.append(("clamped", ev.time, ev.seq))

    s.add_cpu(Cpu())
    a = s.at(5, lambda: trace.append(("fire", "a", s.now)))
    b = s.at(5, past)
    c = s.at(3, lambda: trace.append(("fire", "c", s.now)))
    assert [(e.time, e.seq) for e in (a, b, c)] == [(5, 1), (5, 2), (3, 3)]
    seq = s.reserve_seq()
    s.defer(12, lambda: trace.append(("lazy", s.now, s.at_seq(14, seq, lambda: trace.append(
        ("fire", "lazy", s.now))).seq)))
    s.run_until(20)
    assert trace == [
        ("adv", 0, 3), ("fire", "c", 3),
        ("adv", 3, 5), ("fire", "a", 5), ("fire", "b", 5), ("clamped", 5, 5), ("fire", "late", 5),
        ("lazy", 5, 4),                                   # materialised once 12 could be reached
        ("adv", 5, 14), ("fire", "lazy", 14),             # its reserved seq 4, at 14 < 5 + 10
        ("adv", 14, 20), ("settle", 20)]
    assert s.now == 20 and s.steps == 4 and s.next_event_time() is None


def test_many_same_time_events_come_out_in_scheduling_order() -> None:
    s = Scheduler(10)
    out: list[int] = []
    for i in range(500):
        s.at((i * 7919) % 13, out.append, i)
    s.run_until(20)
    assert out == sorted(range(500), key=lambda i: ((i * 7919) % 13, i))


def test_the_heap_alone_pops_in_time_then_sequence_order() -> None:
    assert CORE.heap_selftest(200_000, 12345) is True


def test_an_exception_in_an_event_propagates_and_the_cpus_are_settled() -> None:
    s = Scheduler(10)
    trace: list = []

    class Cpu:
        name = "c"

        def next_deadline(self, now: int, quantum: int) -> int:
            return now + quantum

        def advance_to(self, t: int) -> None:
            trace.append(("adv", t))

        def settle(self, t: int) -> None:
            trace.append(("settle", "c", t))

    s.add_cpu(Cpu())

    def boom() -> None:
        raise KeyError("boom")
    s.at(25, boom)
    with pytest.raises(KeyError, match="boom"):
        s.run_until(100)
    assert s.now == 25 and trace[-1] == ("settle", "c", 25)     # the event set now, then raised
    assert trace[:-1] == [("adv", 10), ("adv", 20), ("adv", 25)]


def test_event_objects() -> None:
    s = Scheduler(10)
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


def test_bad_quantum_is_refused() -> None:
    with pytest.raises(ValueError, match="quantum must be a positive number of picoseconds, got 0"):
        Scheduler(0)




# -- the slice driver: CpuCore's next_deadline / advance_to / settle, in C -------------------------------

SLICE_ACT = st.sampled_from(["none", "none", "wfi", "park", "park_for", "stall", "halt", "irq_later",
                             "raise", "clock"])


class _Machine:
    def __init__(self, sched) -> None:
        self.scheduler = sched

    def record(self, kind: str, t: int | None = None, **details) -> None:
        self.scheduler.record(kind, t=t, machine="m", **details)


def cycles_at(t: int, hz: int) -> int:
    return -((-t * hz) // PS_PER_S)


class ScriptedCpu(CpuCore):
    """CpuCore's own time methods around a scripted architecture: no unicorn, slices follow a
    script. Each slice checks what the slice driver promised before calling it."""

    def __init__(self, sched, name: str, hz: int, script: list[str], trace: list) -> None:
        self.machine, self.name, self.hz = _Machine(sched), name, hz
        self.cycles = self.slices = self.instructions = self.slice_start_ps = 0
        self.sleeping = self.halted = self.parked = self.executing = False
        self.stall_until = self.park_until = None
        self._poll_addr, self._poll_count = None, 0
        self.hz_cap, self._pending_hz = None, None
        self.script, self.trace, self.i, self.pending = script, trace, 0, False
        self.counted = 0                       # instructions the slices were given
        self.woken = True                      # an interrupt was raised since the last WFI
        self.stalls: list[int] = []
        self.clock_changes: list[tuple[int, int]] = []

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
        self.woken = True
        self.trace.append(("raise", self.name, self.machine.scheduler.now))

    def _run_slice(self, count: int) -> None:
        sched = self.machine.scheduler
        assert self.executing and not self.sleeping and not self.parked and not self.halted
        assert self.stall_until is None and self.woken
        assert self._poll_addr is None and self._poll_count == 0
        assert self.slice_start_ps == self.cycles * PS_PER_S // self.hz
        assert count > 0 and self.cycles + count <= cycles_at(sched.now + sched.quantum, self.hz)
        self.counted += count
        act = self.script[self.i % len(self.script)]
        self.i += 1
        self.trace.append(("slice", self.name, count, self.cycles, self.slice_start_ps, act))
        if act == "wfi":
            self.sleeping = True
            self.woken = self.pending
        elif act in ("park", "park_for"):
            self.parked = True
            self.park_until = self.slice_start_ps + 5_000 if act == "park_for" else None
            sched.park(self)
        elif act == "stall":
            self.stalls.append(self.slice_start_ps + 20_000)
            self.stall(self.slice_start_ps + 20_000)
        elif act == "halt" and self.i > 6:
            self.halted = True
        elif act == "irq_later":
            sched.at(self.slice_start_ps + 3_000, self.raise_irq, name="irq")
        elif act == "raise":
            self.pending = self.woken = True
        elif act == "clock":                  # the RCC switches the core clock inside the slice
            new = self.hz * 3 if self.hz < 100_000_000 else self.hz // 2
            self.clock_changes.append((self.hz, new))
            self.set_core_clock(new)
            assert self.hz != new and self._pending_hz == new     # applied at the slice's end


def run_cpus(sched, scripts: list[list[str]], hzs: list[int], kicks: list[int], until: int) -> list:
    trace: list = []
    cpus = [ScriptedCpu(sched, f"c{i}", hz, s, trace) for i, (s, hz) in enumerate(zip(scripts, hzs))]
    for c in cpus:
        sched.add_cpu(c)
    assert all(CORE.drives_natively(c) for c in cpus)
    for k, t in enumerate(kicks):                     # outside interrupts, wake-ups of parked CPUs
        if cpus:
            sched.at(t, cpus[k % len(cpus)].raise_irq, name="kick")
    last = [0] * len(cpus)
    for step in range(1, 5):
        sched.run_until(until * step // 4)
        for i, c in enumerate(cpus):
            # every CPU is at the scheduler's time (settled or advanced): never behind, and ahead
            # only by the rounding of a clock change (the old rate's instant, in new-rate cycles)
            assert c.cycles >= cycles_at(sched.now, c.hz), (c.name, c.cycles, c.hz, sched.now)
            if not c.clock_changes:
                assert c.cycles == cycles_at(sched.now, c.hz), (c.name, c.cycles, c.hz, sched.now)
            assert c.cycles >= last[i] or c.clock_changes
            last[i] = c.cycles
            assert not c.executing and c._pending_hz is None
    for c in cpus:
        assert c.instructions == c.counted and c.slices == sum(1 for e in trace if e[0] == "slice"
                                                                 and e[1] == c.name)
        if c.clock_changes:
            assert c.hz == c.clock_changes[-1][1]
    for t, kind, d in sched.log:                     # a stall ends at its time, rounded up to a cycle
        if kind == "stall_end":
            c = cpus[int(d["cpu"][1:])]
            assert any(u <= t for u in c.stalls)
    return trace


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(st.lists(SLICE_ACT, min_size=1, max_size=8), min_size=1, max_size=2),
       hzs=st.lists(st.sampled_from([1_000_000, 64_000_000, 160_000_000, 480_000_000, 7_000_003]),
                    min_size=2, max_size=2),
       kicks=st.lists(st.integers(0, 200_000), max_size=6),
       quantum=st.sampled_from([1_000, 10_000, 33_333]))
def test_the_slice_driver_keeps_every_cpu_on_time(scripts, hzs, kicks, quantum) -> None:
    run_cpus(Scheduler(quantum), scripts, hzs, kicks, 200_000)


def test_slices_of_a_running_core_by_hand() -> None:
    """1 GHz, quantum 10 ns: slices of 10 instructions, the last one cut by t_end; a WFI sleeps
    (no slices, no time asked) until an interrupt raised at 47 ns wakes the core there."""
    s = Scheduler(10_000)
    trace: list = []
    c = ScriptedCpu(s, "c0", 1_000_000_000, ["none", "none", "none", "none"], trace)
    s.add_cpu(c)
    s.run_until(35_000)
    assert [e for e in trace if e[0] == "slice"] == [
        ("slice", "c0", 10, 0, 0, "none"), ("slice", "c0", 10, 10, 10_000, "none"),
        ("slice", "c0", 10, 20, 20_000, "none"), ("slice", "c0", 5, 30, 30_000, "none")]
    assert (c.cycles, c.slices, c.instructions, s.steps) == (35, 4, 35, 4)
    s = Scheduler(10_000)
    trace = []
    c = ScriptedCpu(s, "c0", 1_000_000_000, ["none", "wfi", "none"], trace)
    s.add_cpu(c)
    s.at(47_000, c.raise_irq, name="kick")
    s.run_until(100_000)
    slices = [e[2:5] for e in trace if e[0] == "slice"]
    # asleep from 20 ns: no slice until the kick at 47 ns, taken there (take, irq), then slices
    assert slices[:4] == [(10, 0, 0), (10, 10, 10_000), (10, 47, 47_000), (10, 57, 57_000)]
    assert trace.index(("raise", "c0", 47_000)) < trace.index(("irq", "c0", 47))
    assert c.cycles == 100 and c.instructions == 10 * len(slices) - (0 if slices[-1][0] == 10 else 10 -
                                                                    slices[-1][0])


def test_a_stall_and_a_park_by_hand() -> None:
    """A stall from 0 to 20 ns ends at 20 ns (logged), a park with no wake time lasts until the
    next event unparks it."""
    s = Scheduler(10_000)
    trace: list = []
    c = ScriptedCpu(s, "c0", 1_000_000_000, ["stall", "park", "none"], trace)
    s.add_cpu(c)
    s.at(33_000, lambda: None, name="wake")
    s.run_until(50_000)
    slices = [e[2:6] for e in trace if e[0] == "slice"]
    assert slices[0] == (10, 0, 0, "stall")
    assert ("stall_begin" in [k for _t, k, _d in s.log])
    assert [(t, k) for t, k, _d in s.log if k == "stall_end"] == [(20_000, "stall_end")]
    assert slices[1] == (10, 20, 20_000, "park")           # parked from 30 ns until the event at 33
    assert ("unpark", "c0", 30) in trace
    assert slices[2][1:3] == (33, 33_000) and c.cycles == 50


def test_only_cpus_that_keep_cpucores_time_methods_are_driven_in_c() -> None:
    s = Scheduler(10)
    plain = ScriptedCpu(s, "a", 1_000_000, ["none"], [])

    class Own(ScriptedCpu):
        def advance_to(self, t: int) -> None:
            super().advance_to(t)
    own = Own(s, "b", 1_000_000, ["none"], [])
    shadow = ScriptedCpu(s, "c", 1_000_000, ["none"], [])
    shadow.settle = lambda t: None
    assert [CORE.drives_natively(c) for c in (plain, own, shadow)] == [True, False, False]
    # a wrapping subclass reaches the same C through CpuCore's methods
    s.add_cpu(own)
    s.run_until(5_000_000)
    assert own.cycles == cycles_at(5_000_000, own.hz) == 5 and own.slices == own.instructions == 5
    assert own.next_deadline(s.now, 7) == s.now + 7
    own.halted = True
    assert own.next_deadline(s.now, 7) is None
    own.settle(9_000_000)
    assert own.cycles == 9


def test_an_exception_in_a_slice_clears_executing_and_propagates() -> None:
    s = Scheduler(1_000)
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
def test_cancelled_events_are_compacted(n: int, keep_every: int, seed: int) -> None:
    """Once the heap outgrows its bound, cancelled events are dropped and the rest re-heapified
    (the heap cannot grow without end from re-armed far events); the firing order is unchanged."""
    s = Scheduler(10)
    fired: list[tuple[int, int]] = []
    want = []
    for i in range(n):
        t = (i * 7919 + seed) % 5000
        ev = s.at(t, lambda i=i: fired.append((s.now, i)), name="e")
        if i % keep_every:
            ev.cancel()
        else:
            want.append((t, ev.seq, i))
    heap = s._heap
    assert heap_ok(heap) and len(heap) < n
    assert {q for _t, q, ev in heap if not ev.cancelled} == {q for _t, q, _i in want}
    s.run_until(10_000)
    assert fired == [(t, i) for t, _q, i in sorted(want)] and len(s._heap) == 0


def test_a_stop_request_stops_the_run_at_its_next_step(monkeypatch) -> None:
    monkeypatch.setattr(Scheduler, "stop_request", None)     # and back to None at teardown
    s = Scheduler(10)
    s.at(5, lambda: setattr(Scheduler, "stop_request", "wall-clock budget spent"), name="stop")
    s.at(50, lambda: pytest.fail("an event after the stop request fired"), name="late")
    with pytest.raises(StopRequested, match="wall-clock budget spent"):
        s.run_until(100)
    assert s.now < 50
    Scheduler.stop_request = None
