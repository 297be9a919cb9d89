"""What a reader of the matrix report is shown: labels coloured by what they mean for the variant,
addresses in hex, the soft limit and ESTOP on CM1's plot, CM6's setpoints, and identical runs giving
identical files (the host's wall time sits in one JSON field and nowhere in the HTML)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from duohil import report

ROOT = Path(__file__).resolve().parent.parent


def test_label_colours_follow_the_variants_expectation():
    assert report.label_class("estop", ["estop", "runaway"]) == "expected"
    assert report.label_class("stale", ["estop", "runaway"]) == "other"     # another bug's label
    assert report.label_class("ok", ["estop", "runaway"]) == "wrong"        # did not reproduce
    assert report.label_class("ok", ["ok"]) == "expected"
    assert report.label_class("estop", ["ok"]) == "wrong"                   # crash on fixed
    cm7_fixed = {"any": ["hardfault"], "none": ["hang"]}
    assert report.label_class("hardfault", cm7_fixed) == "expected"
    assert report.label_class("hang", cm7_fixed) == "wrong"
    assert report.label_class("estop", None) == "other"


def test_fault_plan_addresses_in_hex_and_times_in_ms():
    text = report._plan_text([{"kind": "bus_fault", "address": 603979776, "at_ms": 150,
                               "t_ps": 150000000000}])
    assert text == "bus_fault(address=0x24000000, at_ms=150) @ 150.000 ms"


def test_downsample_keeps_the_extremes_and_the_end():
    pts = [(float(i), float(i % 97)) for i in range(5000)] + [(5000.0, 9999.0), (5001.0, -5.0)]
    out = report.downsample(pts, 300)
    assert len(out) <= 320
    ys = [p[1] for p in out]
    assert 9999.0 in ys and -5.0 in ys and out[-1] == pts[-1] and out[0] == pts[0]
    assert out == sorted(out)
    assert report.downsample(pts[:10], 300) == pts[:10]


def _matrix(tmp_path: Path, out: str) -> tuple[Path, str]:
    sdir = tmp_path / "scenarios"
    sdir.mkdir(exist_ok=True)
    for name in ("cm1_cmd_timeout.yaml", "cm6_layout.yaml"):
        (sdir / name).write_text((ROOT / "scenarios" / name).read_text())
    r = subprocess.run([sys.executable, "-m", "duohil.cli", "matrix", str(sdir), "--report",
                        str(tmp_path / out), "-j", "1"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp_path / out, r.stdout


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from fw_helpers import require_images
    require_images("stm32/buggy.elf", "stm32/fixed.elf", "esp32/pooled-natural.elf")
    tmp = tmp_path_factory.mktemp("report")
    (a, out), (b, _) = _matrix(tmp, "a"), _matrix(tmp, "b")   # two processes, same scenarios, seeds
    return a, b, out


def test_identical_runs_give_identical_files_but_for_the_wall_time(two_runs):
    a, b, _ = two_runs
    assert (a / "matrix.html").read_bytes() == (b / "matrix.html").read_bytes()
    names = sorted(p.name for p in a.glob("*.json"))
    assert len(names) == 6 and names == sorted(p.name for p in b.glob("*.json"))
    for name in names:
        da, db = (json.loads((d / name).read_text()) for d in (a, b))
        assert set(da["host"]) == {"wall_s"} and isinstance(da["host"]["wall_s"], float)
        assert list(da)[-1] == "host"                          # the one host field, set apart
        da.pop("host"), db.pop("host")
        assert da == db, name
        assert "wall" not in json.dumps(da)
    assert "wall" not in (a / "matrix.html").read_text()


def test_report_shows_limits_estop_setpoints_and_stays_small(two_runs):
    page = (two_runs[0] / "matrix.html").read_text()
    sections = page.split("<section>")[1:]
    assert len(sections) == 6
    cm1_buggy = next(s for s in sections if s.startswith("<h3>cm1_cmd_timeout — buggy"))
    assert "soft limit max 8300" in cm1_buggy and "ESTOP reason=soft_limit" in cm1_buggy
    assert "<span class=expected>estop</span>" in cm1_buggy
    assert "<span class=other>stale</span>" in cm1_buggy      # CM3's bug, also in this build
    cm6_buggy = next(s for s in sections if s.startswith("<h3>cm6_layout — buggy"))
    assert "the axis never moved" in cm6_buggy and "decoded wrong" in cm6_buggy
    cm6_fixed = next(s for s in sections if s.startswith("<h3>cm6_layout — fixed —"))
    assert "the STM32 applied no setpoint" in cm6_fixed
    assert "Label colours" in page and all(f"class={c}>{c}" in page for c in report.LABEL_CLASSES)
    # the plots once embedded every sample and frame at 6 decimals: ~60 KB a run
    assert len(page) < 6 * 30_000, len(page)
    assert not re.search(r"\d\.\d{3,}", "".join(re.findall(r"<svg.*?</svg>", page, re.S)))


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_readme_verdict_table_rows_are_what_matrix_prints(two_runs):
    printed = {c[0]: c for c in map(_cells, two_runs[2].splitlines()) if c[0].startswith("cm")}
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("```\nscenario "):]
    rows = {c[0]: c for c in map(_cells, table[4:table.index("```", 4)].splitlines()) if c[0]}
    for name in ("cm1_cmd_timeout", "cm6_layout"):
        assert rows[name] == printed[name], (rows[name], printed[name])


def test_single_failed_run_page_without_timeline(tmp_path):
    # what the pytest plugin writes for a failing run: its own row name, maybe no timeline at all
    # (an engine error); the page still says which label broke the expectation
    from duohil import pytest_plugin
    from duohil.runner import RunResult
    r = RunResult(
        scenario="cm1", scenario_path="", crash_mode="CM1", variant="fixed", seed=1, engine="builtin",
        quantum_us=10, outcomes=["estop"], evidence={"estop": "ESTOP at 5 ms"}, expected=["ok"],
        matches=False, fault_plan=[{"kind": "bus_fault", "address": 0x24000000, "t_ps": 5_000_000_000}],
        crash=None, counters={}, fingerprint="0" * 64, virtual_ms=10.0, wall_s=1.5)
    page = pytest_plugin.write_timeline(r, tmp_path / "one.html").read_text()
    assert "<td><span class=wrong>estop</span></td>" in page and "<td class=bad>FAIL</td>" in page
    assert "NOT as expected" in page and "address=0x24000000" in page and "@ 5.000 ms" in page
    assert "no plant position; the STM32 applied no setpoint" in page and "wall" not in page
