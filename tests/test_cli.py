"""The `duohil` command as a user meets it: exit codes, one-line errors, determinism of a run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from duohil import faults, runner, scenario

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad_scenarios"


def duohil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duohil.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.yaml")))
def test_malformed_scenario_is_one_line_and_exit_2(name):
    r = duohil("run", str(BAD / name))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duohil: error: ") and name in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_variant_and_missing_image_are_exit_2(tmp_path):
    r = duohil("run", "scenarios/cm2_resync.yaml", "--variant", "fixed-no-dcache")
    assert r.returncode == 2 and "--variant" in r.stderr
    sc = tmp_path / "sc.yaml"
    sc.write_text((ROOT / "scenarios" / "nominal.yaml").read_text()
                  + f"stm32: {{image: {tmp_path / 'missing.elf'}}}\n")
    r = duohil("run", str(sc))
    assert r.returncode == 2 and "missing.elf" in r.stderr and "stm32.image" in r.stderr, r.stderr


def test_engines_lists_both_with_reasons():
    r = duohil("engines")
    assert r.returncode == 0
    assert "builtin  available" in r.stdout
    assert "renode   unavailable: " in r.stdout or "renode   available" in r.stdout


def test_same_scenario_and_seed_same_fingerprint(tmp_path):
    sc = scenario.load(ROOT / "scenarios" / "cm2_resync.yaml")
    a = runner.run(sc, "fixed", seed=3, json_path=tmp_path / "a.json")
    b = runner.run(sc, "fixed", seed=3)
    assert a.fingerprint == b.fingerprint and a.outcomes == b.outcomes
    doc = json.loads((tmp_path / "a.json").read_text())
    for key in ("scenario", "variant", "seed", "engine", "outcomes", "fault_plan", "counters",
                "fingerprint", "virtual_ms", "host", "crash"):
        assert key in doc, key
    assert doc["fault_plan"][0]["kind"] == "link" and "t_ps" in doc["fault_plan"][0]


def test_different_seed_different_realised_plan():
    sc = scenario.load(ROOT / "scenarios" / "cm1_cmd_timeout.yaml")
    plans = {json.dumps(faults.plan_as_json(faults.realise(sc.faults, s))) for s in range(5)}
    assert len(plans) == 5


def test_matrix_runs_every_ab_in_parallel_with_the_serial_results(tmp_path):
    # the README's main command on a small scenario directory: the table, the exit code, the
    # report, one JSON per run; -j 2 gives the runs -j 1 gives (same fingerprints)
    sdir = tmp_path / "scenarios"
    sdir.mkdir()
    for name in ("cm4_atomic.yaml", "cm6_layout.yaml"):
        (sdir / name).write_text((ROOT / "scenarios" / name).read_text())
    fingerprints = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"report-j{jobs}"
        r = duohil("matrix", str(sdir), "--report", str(out), "-j", jobs)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(("cm4", "cm6"))]
        assert [row[0] for row in rows] == ["cm4_atomic", "cm6_layout"]
        assert all(row[-1] == "PASS" for row in rows), r.stdout
        assert (out / "matrix.html").is_file()
        runs = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
        assert len(runs) == 6                             # 2 scenarios x buggy/fixed/fixed-no-<fix>
        fingerprints[jobs] = {k: v["fingerprint"] for k, v in runs.items()}
    assert fingerprints["1"] == fingerprints["2"]


def test_matrix_bad_jobs_is_exit_2():
    r = duohil("matrix", "scenarios", "-j", "0")
    assert r.returncode == 2 and "--jobs" in r.stderr


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_in_a_log_writes_whole_lines_at_each_tenth_with_an_estimate() -> None:
    import io

    from duohil.cli import _progress
    out, clock = io.StringIO(), _Clock()
    show = _progress("campaign", stream=out, clock=clock, tty=False)
    for done in range(201):
        clock.t = 1.5 * done                        # 1.5 s per trial
        show(done, 200)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 11                         # start, 10 %, ..., 90 %, done
    assert lines[0].startswith("campaign [") and lines[0].endswith("0/200 0:00")
    assert lines[5] == "campaign [###############...............] 100/200 2:30, ~2:30 left"
    assert lines[-1] == "campaign [##############################] 200/200 5:00"


def test_progress_on_a_terminal_redraws_one_line() -> None:
    import io

    from duohil.cli import _progress
    out, clock = io.StringIO(), _Clock()
    show = _progress("matrix", stream=out, clock=clock, tty=True)
    for done in range(23):
        clock.t = 2.0 * done
        show(done, 22)
    text = out.getvalue()
    assert text.count("\r") == 23 and text.endswith("22/22 0:44\x1b[K\n") and text.count("\n") == 1
    assert "11/22 0:22, ~0:22 left" in text


def test_campaign_and_merge_check_gate_the_exit_code(tmp_path) -> None:
    from duohil import campaign
    r = duohil("campaign", "scenarios/cm4_atomic.yaml", "--trials", "2", "-j", "1", "--check",
               "--json", str(tmp_path / "c.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check passed: fixed never crashed, buggy reproduced" in r.stdout
    doc = json.loads((tmp_path / "c.json").read_text())
    doc["trials"][1]["fixed"]["crashed"] = True         # as if the fix had regressed in trial 1
    doc["summary"] = campaign.CampaignResult(
        doc["scenario"], doc["scenario_path"], doc["engine"], doc["base_seed"], doc["trials_total"],
        (1, 1), doc["trials"]).summary()
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    r = duohil("merge", str(tmp_path / "bad.json"), "-o", str(tmp_path / "m.json"), "--check")
    assert r.returncode == 1 and "check FAILED: fixed crashed in 1/2 trials" in r.stdout, r.stdout
    r = duohil("merge", str(tmp_path / "bad.json"), "-o", str(tmp_path / "m.json"))
    assert r.returncode == 0                             # without --check: report only


def test_ab_names_what_a_seed_drew_when_the_crash_does_not_reproduce() -> None:
    # seed 3 draws a 2.6 ms GC pause: too short to matter, so buggy shows only another bug's label
    r = duohil("ab", "scenarios/cm1_cmd_timeout.yaml", "--seed", "3")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "[BAD] does NOT reproduce on buggy: expected estop or runaway, saw " in r.stdout
    assert any(ln.startswith("  [ok ] holds on fixed") for ln in lines)
    assert lines[-1].startswith("  faults: peer_stall(at_ms=273.366, duration_ms=2.606")
    assert "t_ps" not in lines[-1]


@pytest.mark.parametrize("args", [
    ["run", "scenarios/cm4_atomic.yaml", "--json", "{blocked}/r.json"],
    ["ab", "scenarios/cm4_atomic.yaml", "--json-dir", "{blocked}/ab"],
    ["matrix", "scenarios", "--report", "{blocked}/m"],
    ["campaign", "scenarios/cm4_atomic.yaml", "--trials", "2", "--json", "{blocked}/c.json"],
    ["run", "scenarios/cm4_atomic.yaml", "--json", "{dir}"],
])
def test_an_output_that_cannot_be_written_is_bad_input_before_anything_runs(tmp_path, args) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    r = duohil(*[a.format(blocked=blocked, dir=tmp_path) for a in args])
    assert r.returncode == 2, r.stdout + r.stderr
    line = r.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("duohil: error: --") and "Traceback" not in r.stderr
    assert "you can write to" in line[0] and r.stdout == ""         # nothing ran


def test_merge_output_that_cannot_be_written(tmp_path) -> None:
    from duohil import campaign
    doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 0, (1, 1), []).to_json()
    (tmp_path / "s.json").write_text(json.dumps(doc))
    (tmp_path / "a-file").write_text("")
    r = duohil("merge", str(tmp_path / "s.json"), "-o", str(tmp_path / "a-file" / "m.json"))
    assert r.returncode == 2 and r.stderr.startswith("duohil: error: --out: cannot create"), r.stderr


def _commands() -> list[str]:
    from duohil import cli
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_every_command_has_working_help():
    """argparse formats help strings with %: a bare '%' in any of them crashed `duohil --help`."""
    r = duohil("--help")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    names = _commands()
    assert {"run", "ab", "matrix", "campaign", "merge", "engines"} <= set(names)
    for name in names:
        assert name in r.stdout
    for name in names:
        h = duohil(name, "--help")
        assert h.returncode == 0 and "Traceback" not in h.stderr, (name, h.stderr)
        assert h.stdout.startswith("usage: duohil " + name), (name, h.stdout)


@pytest.mark.parametrize("args", [
    ["run", "scenarios/nominal.yaml", "--seed", "-1"],
    ["ab", "scenarios/nominal.yaml", "--seed", "-1"],
    ["campaign", "scenarios/nominal.yaml", "--trials", "2", "--seed", "-1"],
    ["run", "scenarios/nominal.yaml", "--seed", "twelve"],
    ["run", "scenarios/nominal.yaml", "--seed", str(2**64)],
    ["campaign", "scenarios/nominal.yaml", "--trials", "2", "--seed", str(2**32)],
    ["campaign", "scenarios/nominal.yaml", "--trials", "0"],
    ["campaign", "scenarios/nominal.yaml", "--trials", "10000000"],
])
def test_cli_seeds_and_trials_are_checked_in_one_line(args) -> None:
    """The schema refuses a negative seed; so does every command (`--seed -1` used to run)."""
    r = duohil(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    option = args[-2]
    assert len(lines) == 1 and lines[0].startswith(f"duohil: error: {option}: "), r.stderr
    assert "an integer" in lines[0] and r.stdout == ""


def _short_nominal(path: Path, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("name: nominal\ncrash_mode: nominal\nduration_ms: 30\n"
                    "expect: {fixed: ok}\n" + extra)
    return path


def test_an_error_found_in_the_image_names_the_scenario_file_and_field(tmp_path) -> None:
    """An unknown config field is found in the ELF's DWARF; the error names the scenario the
    user wrote (and the field in it), and keeps the ELF in the words."""
    sc = _short_nominal(tmp_path / "cfg.yaml", "stm32: {config: {freshnes_ms: 5}}\n")
    r = duohil("run", str(sc))
    assert r.returncode == 2, r.stdout + r.stderr
    line = r.stderr.strip()
    assert line.startswith(f"duohil: error: {sc}: stm32.config.freshnes_ms: stm32 image fixed.elf")
    assert "\n" not in line


def test_matrix_names_the_failing_scenario_file(tmp_path) -> None:
    good = _short_nominal(tmp_path / "m" / "a_good.yaml")
    bad = _short_nominal(tmp_path / "m" / "b_bad.yaml",
                         "faults:\n  - {kind: irq_at, symbol: NoSuchHandler, irq: 11}\n")
    bad.write_text(bad.read_text().replace("name: nominal", "name: other"))
    assert good.exists()
    r = duohil("matrix", str(tmp_path / "m"), "-j", "1", "--report", str(tmp_path / "rep"))
    assert r.returncode == 2, r.stdout + r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"duohil: error: {bad}: faults[0].symbol: "), r.stderr
    assert "NoSuchHandler" in line


def test_merge_check_refuses_shards_of_two_files_that_share_a_name(tmp_path) -> None:
    one = _short_nominal(tmp_path / "one" / "s.yaml")
    two = _short_nominal(tmp_path / "two" / "s.yaml", "oracle: {settle_ms: 10}\n")   # same name
    for k, sc in ((1, one), (2, two)):
        r = duohil("campaign", str(sc), "--trials", "2", "--shard", f"{k}/2", "-j", "1",
                   "--json", str(tmp_path / f"s{k}.json"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert len(json.loads((tmp_path / f"s{k}.json").read_text())["scenario_sha256"]) == 64
    r = duohil("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-o",
               str(tmp_path / "m.json"), "--check")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "scenario_sha256: the scenario's content differs" in r.stderr


def test_a_reader_that_goes_away_is_no_traceback():
    """`duohil engines | head -1`: the pipe closes under the command; it stops without a word."""
    r, w = os.pipe()
    os.close(r)                                  # the reader is gone before the first write
    try:
        p = subprocess.run([sys.executable, "-m", "duohil.cli", "engines"], cwd=ROOT, stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 1 and p.stderr == "", p.stderr


def test_the_console_command_freezes_what_it_leaves_out_of_the_exit_collections(monkeypatch) -> None:
    """`duohil` (console_main) returns main()'s code and then freezes the heap, so the
    interpreter's exit collections do not walk the machines a run left (~0.1 s); main() itself,
    which tests and embedders call, leaves the collector alone."""
    import gc

    from duohil import cli
    calls: list[str] = []
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append("main") or 3)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    assert cli.console_main() == 3
    assert calls == ["main", "freeze"]
