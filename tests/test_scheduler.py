"""The virtual-time scheduler: ordering, determinism and the three traps of unicorn.md section 7."""
from __future__ import annotations

import pytest

from duohil.engines.base import PS_PER_MS, PS_PER_US
from duohil.engines.builtin.kernel.scheduler import Scheduler


class FakeCpu:
    """A CPU that runs when awake, sleeps until woken, and records the steps it was given."""

    def __init__(self, name: str, sched: Scheduler) -> None:
        self.name = name
        self.sched = sched
        self.local = 0
        self.sleeping = False
        self.pending = False
        self.steps: list[tuple[int, int]] = []

    def next_deadline(self, now: int, quantum: int) -> int | None:
        if self.sleeping and not self.pending:
            return None
        return now + quantum

    def advance_to(self, t: int) -> None:
        self.steps.append((self.local, t))
        if self.pending:
            self.sleeping = False
            self.pending = False
        self.local = t

    def settle(self, t: int) -> None:
        self.local = max(self.local, t)


def test_events_fire_in_time_then_schedule_order():
    s = Scheduler(quantum_ps=10 * PS_PER_US)
    fired: list[str] = []
    s.at(5 * PS_PER_US, fired.append, "b")
    s.at(2 * PS_PER_US, fired.append, "a")
    s.at(5 * PS_PER_US, fired.append, "c")          # same time as "b": scheduled later, fires later
    s.run_until(10 * PS_PER_US)
    assert fired == ["a", "b", "c"]
    assert s.now == 10 * PS_PER_US


def test_event_sees_its_own_time_and_can_chain():
    s = Scheduler()
    seen: list[int] = []

    def tick() -> None:
        seen.append(s.now)
        if len(seen) < 5:
            s.after(PS_PER_MS, tick)

    s.at(PS_PER_MS, tick)
    s.run_until(10 * PS_PER_MS)
    assert seen == [k * PS_PER_MS for k in range(1, 6)]


def test_cancelled_event_does_not_fire():
    s = Scheduler()
    fired: list[int] = []
    ev = s.at(PS_PER_US, fired.append, 1)
    ev.cancel()
    s.run_until(2 * PS_PER_US)
    assert fired == []


def test_awake_cpu_is_bounded_by_the_quantum():
    q = 10 * PS_PER_US
    s = Scheduler(quantum_ps=q)
    cpu = FakeCpu("m7", s)
    s.add_cpu(cpu)
    s.run_until(100 * PS_PER_US)
    assert len(cpu.steps) == 10
    assert all(b - a == q for a, b in cpu.steps)


def test_sleeping_cpu_jumps_to_the_next_event():
    s = Scheduler(quantum_ps=10 * PS_PER_US)
    cpu = FakeCpu("rv", s)
    cpu.sleeping = True
    s.add_cpu(cpu)

    def wake() -> None:
        cpu.pending = True

    s.at(PS_PER_MS, wake)                                      # the 1 ms tick
    s.run_until(PS_PER_MS)
    # not one quantum step while it sleeps with nothing pending: idle time is skipped (trap
    # (a)); its clock is settled to the tick when the loop returns
    assert cpu.steps == []
    assert cpu.local == PS_PER_MS
    assert s.steps == 1                                        # one jump from 0 to the tick
    s.run_until(PS_PER_MS + 30 * PS_PER_US)
    # woken with an interrupt pending: bounded by the quantum again (trap (b))
    assert cpu.steps[0] == (PS_PER_MS, PS_PER_MS + 10 * PS_PER_US)


def test_deadline_in_the_past_is_not_a_tiny_step():
    s = Scheduler(quantum_ps=10 * PS_PER_US)

    class Late(FakeCpu):
        def next_deadline(self, now: int, quantum: int) -> int | None:
            return now                                       # "due now" (trap (c))

    cpu = Late("x", s)
    s.add_cpu(cpu)
    s.run_until(50 * PS_PER_US)
    assert [b - a for a, b in cpu.steps] == [10 * PS_PER_US] * 5


def test_event_scheduled_in_the_past_is_clamped_to_now():
    s = Scheduler()
    s.run_until(PS_PER_MS)
    seen: list[int] = []
    s.at(0, lambda: seen.append(s.now))
    s.run_until(2 * PS_PER_MS)
    assert seen == [PS_PER_MS]


def test_same_inputs_same_log():
    def run() -> list:
        s = Scheduler(quantum_ps=7 * PS_PER_US)
        cpu = FakeCpu("a", s)
        s.add_cpu(cpu)
        for k in range(20):
            s.at(k * 13 * PS_PER_US, lambda k=k: s.record("tick", k=k))
        s.run_until(PS_PER_MS)
        return [s.log, cpu.steps]

    assert run() == run()


def test_bad_quantum_is_rejected():
    with pytest.raises(ValueError, match="quantum"):
        Scheduler(quantum_ps=0)
