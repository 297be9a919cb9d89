"""A campaign trial stops once the crash it counts is certain (Duo.run_to_first): the stopped
run is the full run cut short, and a run that never crashes is exactly the full run."""
from __future__ import annotations

from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import oracle, runner
from duohil import scenario as scmod
from duohil.duo import Duo
from duohil.engines.base import PS_PER_MS

ROOT = Path(__file__).resolve().parent.parent
CM1 = ROOT / "scenarios" / "cm1_cmd_timeout.yaml"
LABELS = ("estop", "runaway")


@pytest.fixture(scope="module")
def cm1():
    require_images("stm32/fixed.elf", "stm32/buggy.elf", "esp32/pooled-packed.elf")
    return scmod.load(CM1)


def test_a_run_that_never_crashes_is_the_full_run(cm1):
    full = runner.run(cm1, "fixed", seed=5)
    watched = runner.run(cm1, "fixed", seed=5, stop_on=LABELS, timeline=False)
    assert watched.stopped is None and watched.outcomes == full.outcomes == ["ok"]
    assert watched.fingerprint == full.fingerprint
    assert watched.virtual_ms == full.virtual_ms


def test_a_crashing_run_stops_at_its_crash_and_is_the_full_run_cut_short(cm1):
    full = runner.run(cm1, "buggy")                      # the scenario's seed: ESTOP at ~849 ms
    stopped = runner.run(cm1, "buggy", stop_on=LABELS, timeline=False)
    assert "estop" in full.outcomes and "estop" in stopped.outcomes
    t_ms = stopped.stopped["virtual_ms"]
    assert stopped.stopped["label"] == "estop" and t_ms < cm1.duration_ps / PS_PER_MS
    assert stopped.virtual_ms == t_ms
    # the same scenario run plainly to that time is the same state
    with Duo.from_scenario(cm1, "buggy") as duo:
        duo.run_until(t_ms)
        assert duo.session.fingerprint() == stopped.fingerprint
    # and the crash was seen in the chunk that ended there
    estop_ms = float(stopped.evidence["estop"].rsplit(" at ", 1)[1].split()[0])
    assert t_ms - 10 < estop_ms <= t_ms


def test_only_monotone_oracles_can_stop_a_run():
    assert set(oracle.MONOTONE) <= set(oracle.ORACLES)
    assert "hang" not in oracle.MONOTONE and "stale" not in oracle.MONOTONE
    assert oracle.seen_monotone(["estop"], [], []) is None
