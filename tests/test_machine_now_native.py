"""machine.now() as the native units read it (_core.c's machine_now): Machine.now's rule computed in
C for machines whose class keeps Machine.now, the method itself for a class that overrides it."""
from __future__ import annotations

import pytest

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")


class Cpu:
    executing = False
    slice_start_ps = 0


def test_plain_rule_matches_machine_now():
    core = native.core()
    s = Scheduler()
    m = Machine("m", s)
    s.run_until(1_234_567)
    assert core.machine_now(m) == m.now() == 1_234_567           # no CPU
    m.cpu = Cpu()
    assert core.machine_now(m) == m.now() == 1_234_567           # a CPU between slices
    m.cpu.executing, m.cpu.slice_start_ps = True, 1_000_000
    assert core.machine_now(m) == m.now() == 1_000_000           # inside a slice: its start
    m.cpu.executing = False
    s.run_until(2_000_000)
    assert core.machine_now(m) == m.now() == 2_000_000


def test_an_overridden_now_is_asked():
    class Shifted(Machine):
        def now(self) -> int:
            return super().now() + 7

    s = Scheduler()
    m = Shifted("m", s)
    s.run_until(100)
    assert native.core().machine_now(m) == 107


def test_a_now_replaced_after_use_is_asked(monkeypatch):
    """machine_now remembers a type that keeps Machine.now (its clock reads skip the method
    lookup) at that type's version: replacing ``now`` on the class later is seen at once, and
    the class's own rule again once it is restored."""
    class Mine(Machine):
        pass

    core = native.core()
    s = Scheduler()
    m = Mine("m", s)
    s.run_until(5_000)
    assert core.machine_now(m) == 5_000 and core.machine_now(m) == 5_000      # remembered
    monkeypatch.setattr(Mine, "now", lambda self: 42)
    assert core.machine_now(m) == 42
    monkeypatch.undo()
    assert core.machine_now(m) == 5_000
    monkeypatch.setattr(Machine, "now", lambda self: 43)                       # on a base class
    assert core.machine_now(m) == 43 and core.machine_now(Machine("b", s)) == 43
