"""The bounded YAML loader: hostile files are refused quickly and cheaply, honest ones still load."""
from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from duohil import safeyaml, scenario
from duohil.errors import ConfigError

BAD = Path(__file__).parent / "data" / "bad_scenarios"


def laughs(levels: int = 12, width: int = 10) -> str:
    """10^12 'lol's once expanded, in under 1 KiB."""
    return "l0: &l0 lol\n" + "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]\n" for i in range(1, levels + 1))


@pytest.mark.parametrize("name", ["billion_laughs_in_distribution.yaml",
                                  "billion_laughs_in_expect_label.yaml"])
def test_billion_laughs_is_refused_fast_and_small(name):
    """Refused before anything expands: well under a second and a few MB (it used to take
    2.5 GB in 45 s, expanding the aliases to print the error)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="expands to more than") as info:
            scenario.load(BAD / name)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0, elapsed
    assert peak < 8 * 2**20, peak
    assert len(str(info.value)) < 300


def test_a_bigger_laugh_in_any_field_is_refused_too():
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="aliases"):
            safeyaml.loads(laughs(), "x.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak


def test_honest_aliases_and_merge_keys_still_load():
    doc = safeyaml.loads("base: &b {at_ms: 10, duration_ms: 20}\n"
                         "a: {<<: *b, at_ms: 30}\n"
                         "both: [*b, *b]\n", "x.yaml")
    assert doc["a"] == {"at_ms": 30, "duration_ms": 20}
    assert doc["both"] == [doc["base"], doc["base"]]


def test_nesting_right_at_the_bound_loads_and_one_more_does_not():
    ok = "[" * (safeyaml.MAX_DEPTH - 1) + "]" * (safeyaml.MAX_DEPTH - 1)
    assert safeyaml.loads(f"a: {ok}\n", "x.yaml") is not None
    with pytest.raises(ConfigError, match="nested more than"):
        safeyaml.loads("a: " + "[" * 5000 + "]" * 5000 + "\n", "x.yaml")     # no RecursionError


def test_duplicate_key_names_the_key_its_path_and_line():
    with pytest.raises(ConfigError) as info:
        safeyaml.loads("faults:\n  - kind: link\n    frame: 1\n    frame: 2\n", "x.yaml")
    err = info.value
    assert err.field == "faults[0].frame" and err.line == 4 and "duplicate key 'frame'" in str(err)


def test_oversized_file_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (safeyaml.MAX_BYTES + 10) + b"\n")
    with pytest.raises(ConfigError, match="larger than") as info:
        scenario.load(big)
    assert str(big) in str(info.value) and "\n" not in str(info.value)


def test_a_directory_or_device_is_not_a_scenario(tmp_path):
    d = tmp_path / "dir.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        scenario.load(d)
    if Path("/dev/zero").exists():                       # would never end if it were read
        with pytest.raises(ConfigError, match="not a regular file"):
            scenario.load("/dev/zero")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_one_error(tmp_path):
    f = tmp_path / "secret.yaml"
    f.write_text("name: x\n")
    f.chmod(0)
    try:
        with pytest.raises(ConfigError, match="cannot read it") as info:
            scenario.load(f)
    finally:
        f.chmod(0o600)
    assert str(f) in str(info.value)


def test_unreadable_file_as_root_via_an_os_error(tmp_path, monkeypatch):
    """The same path, where chmod cannot stop root: the OSError of open() becomes one line."""
    f = tmp_path / "secret.yaml"
    f.write_text("name: x\n")

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(ConfigError, match="cannot read it: Permission denied") as info:
        scenario.load(f)
    assert str(f) in str(info.value)


def test_short_never_expands_a_shared_structure():
    x: list = ["lol"] * 10
    for _ in range(30):                                  # 10^30 leaves if printed whole
        x = [x] * 10
    t0 = time.perf_counter()
    text = safeyaml.short(x)
    assert time.perf_counter() - t0 < 0.1 and len(text) < 200
    assert len(safeyaml.short("a" * 10_000)) < 60


def test_shipped_scenarios_still_load():
    paths = sorted((scenario.REPO / "scenarios").glob("*.yaml"))
    assert len(paths) >= 8
    for p in paths:
        assert scenario.load(p).name == p.stem            # each shipped name is its file's


def test_crash_mode_discovery_survives_the_bad_corpus():
    """The crash-mode suites sort $DUOHIL_SCENARIOS by crash_mode before loading anything: that
    pass reads hostile files too (a non-UTF-8 file or a laugh in crash_mode was a traceback)."""
    from duohil import duo
    found = duo.crash_mode_scenarios(BAD)
    assert sum(len(v) for v in found.values()) == len(list(BAD.glob("*.yaml")))
    assert all(isinstance(k, str) and len(k) < 20 for k in found)
    assert BAD / "non_utf8_byte.yaml" in found["None"]
