"""duohil/duo.py: the one test-facing API, and the runner built on it (one implementation)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import runner
from duohil import scenario as scmod
from duohil.duo import Block, CapabilityMissing, Duo, explain
from duohil.engines.builtin.session import BuiltinEngine
from duohil.errors import ConfigError

TINY = """\
name: tiny_cm2
crash_mode: CM2
duration_ms: 30
seed: 5
faults:
  - kind: link
    action: flip
    direction: peer->stm32
    frame: 1
    field: LEN
    bit: {randint: [0, 7]}
expect:
  buggy: desync
  fixed: ok
  fixed-no-resync: desync
"""


def test_runner_run_is_duo_from_scenario(tmp_path: Path) -> None:
    """runner.run = Duo.from_scenario + run_to_end + result: same fingerprint, same result."""
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    sc = scmod.load(path)
    r = runner.run(sc, "fixed", json_path=tmp_path / "r.json")
    with Duo.from_scenario(sc, "fixed") as duo:
        assert [f["kind"] for f in duo.fault_plan] == ["link"]
        assert isinstance(duo.fault_plan[0]["bit"], int)          # the distribution was drawn
        duo.run_to_end()
        d = duo.result()
    assert d.fingerprint == r.fingerprint
    assert (d.outcomes, d.evidence, d.fault_plan, d.counters) == \
        (r.outcomes, r.evidence, r.fault_plan, r.counters)
    assert r.virtual_ms == 30 and r.scenario == "tiny_cm2" and r.expected == ["ok"]
    kept = json.loads((tmp_path / "r.json").read_text())
    assert kept["fingerprint"] == r.fingerprint and kept["variant"] == "fixed"


def test_missing_image_names_the_build_step() -> None:
    with pytest.raises(ConfigError, match=r"no-such-variant\.elf for the stm32 is missing.*make firmware"):
        Duo.start("no-such-variant")
    with pytest.raises(ConfigError, match="unknown peer image 'gc-bogus'"):
        Duo.start("fixed", "gc-bogus")
    with pytest.raises(ConfigError, match="config for unknown machine 'esp32'"):
        Duo.start("fixed", config={"esp32": {"x": 1}})


def test_capabilities_are_checked_before_booting() -> None:
    class NoCache(BuiltinEngine):
        capabilities = BuiltinEngine.capabilities - {"dcache"}

    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    with pytest.raises(CapabilityMissing, match="engine builtin lacks capability dcache"):
        Duo.start(engine=NoCache(), requires=["dcache", "peer_stall"])


def test_block_snapshot_reads_like_attributes() -> None:
    b = Block("stm32", "g_status", {"estops": 0, "frames_ok": 12})
    assert b.estops == 0 and b["frames_ok"] == 12 and "estops" in b
    with pytest.raises(AttributeError, match="g_status has no field 'estop_count'.*estops, frames_ok"):
        _ = b.estop_count
    with pytest.raises(AttributeError, match="read-only"):
        b.estops = 3


def test_explain_says_what_happened() -> None:
    r = runner.RunResult(
        scenario="cm1", scenario_path="", crash_mode="CM1", variant="fixed-no-cmd_timeout", seed=1,
        engine="builtin", quantum_us=10, outcomes=["ok"], evidence={}, expected=["runaway", "estop"],
        matches=False, fault_plan=[{"kind": "peer_stall", "at_ms": 20, "duration_ms": 30}],
        crash=None, counters={}, fingerprint="", virtual_ms=300.0, wall_s=0.0,
        console={"stm32": ["   3.320 BOOT fw=stm32"]})
    text = explain(r)
    assert text.startswith("cm1 [fixed-no-cmd_timeout] should reproduce runaway or estop but the "
                           "run was ok: the crash did not happen")
    assert "peer_stall(at_ms=20, duration_ms=30)" in text and "BOOT fw=stm32" in text


@pytest.mark.duohil(variant="fixed", requires=["crash_record"])
def test_fixed_fault_handler_records_the_crash_and_recovers(duo: Duo) -> None:
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    duo.stm32.wait_for_line("LINK up", timeout_ms=100)
    fault = duo.bus_fault()
    assert fault["kind"] == "bus_fault" and fault["at_ms"] == pytest.approx(duo.now_ms)
    duo.stm32.wait_for_line("HARDFAULT", timeout_ms=20)
    duo.stm32.wait_for_line("BOOT", timeout_ms=100)
    crash = duo.crash()
    assert crash is not None and crash["source"] == "crash_record", crash
    assert crash["pc_function"] == "main" and crash["exception"] == "BusFault"
    assert "hang" not in duo.outcomes().labels
    assert duo.stm32.crash_record.count >= 1


@pytest.mark.parametrize("q", [0, -5, 1e-9])
def test_a_quantum_that_is_not_positive_is_bad_input_not_a_silent_default(q: float) -> None:
    with pytest.raises(ConfigError, match="quantum_us"):
        Duo.start(quantum_us=q)
    sc = scmod.load(scmod.REPO / "scenarios" / "nominal.yaml")
    with pytest.raises(ConfigError, match="quantum_us"):          # 0 used to mean "the scenario's"
        Duo.from_scenario(sc, "fixed", quantum_us=q)
