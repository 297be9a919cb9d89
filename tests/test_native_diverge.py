"""The diverge tool: one scenario under both model sets, the first difference named."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil import scenario
from duohil.engines.builtin.native import diverge
from duohil.engines.builtin.kernel.peripheral import Signal
from duohil.errors import ConfigError

CM1 = Path(__file__).resolve().parent.parent / "scenarios" / "cm1_cmd_timeout.yaml"


def _scenario():
    sc = scenario.load(CM1)
    try:
        scenario.check_images(sc, ["buggy"])
    except ConfigError as exc:
        pytest.skip(f"firmware not built (make firmware): {exc}")
    return sc


def test_same_run_under_both_switches_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    _scenario()
    assert diverge.main([str(CM1), "--variant", "buggy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cm1_cmd_timeout buggy: same run under python and native models")


def test_a_native_difference_is_named_at_its_first_event(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = _scenario()

    # a planted divergence in a model still in both languages: the Python output line (the
    # reference under DUOHIL_MODELS=python) drops the first rise of TIM6's update interrupt, so
    # the control loop misses a tick; the native line (_core.Signal) is untouched
    real = Signal.set
    dropped: list[bool] = []

    def drop_first(self, level: bool = True) -> None:
        if level and self.name == "timer6.IRQ" and not dropped:
            dropped.append(True)
            return
        real(self, level)

    monkeypatch.setattr(Signal, "set", drop_first)
    a = diverge.capture(sc, "buggy", None, "python")
    b = diverge.capture(sc, "buggy", None, "native")
    d = diverge.first_divergence(a, b)
    assert dropped and d is not None and a["fingerprint"] != b["fingerprint"], d


def test_memory_and_link_differences_are_located() -> None:
    base = {"error": None, "now": 5, "events": [(1, "k", {})], "link": [1, 2, 3], "console": [],
            "fingerprint": "x", "cpu": {"stm32": (10, 0x800)}, "mem": {("stm32", "ram", 0x2000): b"\0\1\2"}}
    other = dict(base, link=[1, 2, 4])
    assert diverge.first_divergence(base, other) == "link tap entry 2: python 3, native 4"
    other = dict(base, mem={("stm32", "ram", 0x2000): b"\0\1\7"}, fingerprint="y")
    assert diverge.first_divergence(base, other) == \
        "stm32 memory ram: first difference at 0x00002002 (python 0x02, native 0x07)"
    assert diverge.first_divergence(base, dict(base)) is None


def test_bad_scenario_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert diverge.main(["nope.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.yaml" in err
