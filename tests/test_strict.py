"""A planned fault that never acted is said, by `duohil run` and per variant by `duohil ab`, and
`--strict` fails on it (exit 1); a plan whose every fault acted passes --strict."""
from __future__ import annotations

from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import cli
from duohil.faults import never_acted

SCEN = Path(__file__).resolve().parent.parent / "scenarios"

SCENARIO = """\
name: cm2_idle_faults
crash_mode: CM2
duration_ms: 120
seed: 1
peer: {image: pooled-packed}
faults:
  - {kind: link, action: flip, direction: peer->stm32, frame: 5, field: "payload[200]"}
  - {kind: link, action: flip, direction: peer->stm32, frame: 100000, field: LEN, bit: 7}
  - {kind: peer_stall, after_setpoints: 100000, duration_ms: 10}
  - {kind: link, action: flip, direction: peer->stm32, frame: 3, field: CRC_LO}
expect:
  buggy: desync
  fixed: ok
  fixed-no-resync: desync
"""


def test_never_acted_reads_the_event_log() -> None:
    plan = [{"kind": "link", "action": "flip", "direction": "peer->stm32", "frame": 5,
             "field": "payload[999]"}, {"kind": "peer_stall"}, {"kind": "bus_fault"}]
    events = [(1.0, "fault_not_applied", {"index": 0, "reason": "frame 5 has no payload[999]"}),
              (2.0, "fault", {"index": 2})]
    got = never_acted(plan, events, 120.0)
    assert got == [("fault 0 (link flip peer->stm32 frame 5 payload[999]) never acted: frame 5 "
                    "has no payload[999]"),
                   "fault 1 (peer_stall) never acted: its trigger did not occur in the run (120 ms)"]
    assert never_acted(plan[2:], [(2.0, "fault", {"index": 0})], 1.0) == []


@pytest.fixture
def idle_plan(tmp_path: Path) -> Path:
    require_images("stm32/buggy.elf", "stm32/fixed.elf", "stm32/fixed-no-resync.elf",
                   "esp32/pooled-packed.elf")
    p = tmp_path / "idle.yaml"
    p.write_text(SCENARIO)
    return p


def test_run_says_and_strict_fails(idle_plan: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["run", str(idle_plan), "--variant", "fixed"]) == 0
    out = capsys.readouterr().out
    # payload[200] can exist (the loader refuses >= 252) but a setpoint frame is shorter
    assert "warning: fault 0 (link flip peer->stm32 frame 5 payload[200]) never acted: frame 5 " \
           "has no payload[200]" in out
    assert "warning: fault 1 (link flip peer->stm32 frame 100000 LEN) never acted: its trigger " \
           "did not occur in the run (120 ms)" in out
    assert "warning: fault 2 (peer_stall) never acted" in out
    assert "fault 3" not in out                                    # that one flipped its byte
    assert cli.main(["run", str(idle_plan), "--variant", "fixed", "--strict"]) == 1
    assert "strict: 3 planned fault(s) never acted" in capsys.readouterr().err


def test_ab_says_it_per_variant_and_strict_fails(idle_plan: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    cli.main(["ab", str(idle_plan)])
    out = capsys.readouterr().out
    assert out.count("never acted: its trigger did not occur") == 2 * 3      # per variant
    assert cli.main(["ab", str(idle_plan), "--strict"]) == 1


def test_strict_passes_when_every_fault_acted(capsys: pytest.CaptureFixture) -> None:
    require_images("stm32/buggy.elf", "stm32/fixed.elf", "stm32/fixed-no-atomic.elf",
                   "esp32/pooled-packed.elf")
    assert cli.main(["run", str(SCEN / "cm4_atomic.yaml"), "--variant", "fixed", "--strict"]) == 0
    assert "never acted" not in capsys.readouterr().out
