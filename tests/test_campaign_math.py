"""Campaign statistics and sharding: pure functions, no engine."""
from __future__ import annotations

import json

import pytest

from duohil import campaign
from duohil.errors import ConfigError


def test_wilson_interval_known_values():
    lo, hi = campaign.wilson(0, 200)
    assert lo == 0.0 and 0.018 < hi < 0.019            # "zero crashes in 200" still bounds the rate
    lo, hi = campaign.wilson(184, 200)                  # the field report's 92 %
    assert 0.874 < lo < 0.876 and 0.949 < hi < 0.951
    assert campaign.wilson(0, 0) == (0.0, 1.0)


def test_shards_partition_the_trials():
    parts = [campaign.shard_trials(10, (k, 3)) for k in (1, 2, 3)]
    assert sorted(i for p in parts for i in p) == list(range(10))
    assert parts[0] == [0, 3, 6, 9]


@pytest.mark.parametrize("bad", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shard(bad):
    with pytest.raises(ConfigError, match="bad shard"):
        campaign.parse_shard(bad)


def test_trial_seeds_differ_and_are_stable():
    seeds = [campaign.trial_seed(7, i) for i in range(100)]
    assert len(set(seeds)) == 100 and seeds == [campaign.trial_seed(7, i) for i in range(100)]


def fake_trial(i: int, crashed_buggy: bool) -> dict:
    def v(c: bool) -> dict:
        return {"outcomes": ["runaway"] if c else ["ok"], "crashed": c, "fingerprint": f"f{i}{c}",
                "fault_plan": [{"kind": "peer_stall", "duration_ms": i}], "wall_s": 0.5 + i}
    return {"trial": i, "seed": campaign.trial_seed(1, i), "buggy": v(crashed_buggy), "fixed": v(False)}


def test_merge_equals_unsharded(tmp_path):
    trials = [fake_trial(i, i % 4 != 0) for i in range(12)]
    whole = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 12, (1, 1), trials).to_json()
    files = []
    for k in (1, 2, 3):
        part = [t for t in trials if t["trial"] in campaign.shard_trials(12, (k, 3))]
        doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 12, (k, 3), part).to_json()
        f = tmp_path / f"shard{k}.json"
        f.write_text(json.dumps(doc))
        files.append(f)
    assert campaign.merge(files) == whole
    assert whole["summary"]["buggy"]["crashes"] == 9 and whole["summary"]["fixed"]["crashes"] == 0
    assert "wall_s" not in json.dumps(whole)            # no wall time: merge can be exact
    with pytest.raises(ConfigError, match="trials missing"):
        campaign.merge(files[:2])


def test_campaign_html_shows_rates_and_every_trial(tmp_path):
    from duohil import report
    trials = [fake_trial(i, i % 4 != 0) for i in range(8)]
    doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 8, (1, 1), trials).to_json()
    page = report.write_campaign(doc, tmp_path / "c.html").read_text()
    assert "<td>buggy</td><td>8</td><td>6</td><td>75.0%</td>" in page
    assert "<td>fixed</td><td>8</td><td>0</td><td>0.0%</td>" in page
    assert page.count("kind=peer_stall") == 8


def test_merge_refuses_shards_run_with_and_without_full(tmp_path):
    trials = [fake_trial(i, True) for i in range(4)]
    files = []
    for k, full in ((1, False), (2, True)):
        part = [t for t in trials if t["trial"] in campaign.shard_trials(4, (k, 2))]
        doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 4, (k, 2), part, full).to_json()
        f = tmp_path / f"shard{k}.json"
        f.write_text(json.dumps(doc))
        files.append(f)
    with pytest.raises(ConfigError, match="full differs"):
        campaign.merge(files)


def test_jobs_must_be_a_number_of_workers():
    from pathlib import Path
    cm1 = Path(__file__).resolve().parent.parent / "scenarios" / "cm1_cmd_timeout.yaml"
    with pytest.raises(ConfigError, match="jobs must be >= 1"):
        campaign.run_campaign(str(cm1), 2, jobs=0)


def test_check_holds_when_fixed_never_crashes_and_buggy_reproduces():
    trials = [fake_trial(i, i % 4 != 0) for i in range(8)]
    doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 8, (1, 1), trials).to_json()
    assert campaign.check(doc) == []


def test_check_names_fixed_crashes_with_a_replay_command_and_a_toothless_distribution():
    trials = [fake_trial(i, False) for i in range(6)]
    trials[4]["fixed"]["crashed"] = True
    doc = campaign.CampaignResult("cm1", "s.yaml", "builtin", 1, 6, (1, 1), trials).to_json()
    problems = campaign.check(doc)
    assert len(problems) == 2
    assert problems[0].startswith("fixed crashed in 1/6 trials (16.7%")
    assert f"duohil run s.yaml --variant fixed --seed {campaign.trial_seed(1, 4)}" in problems[0]
    assert problems[1] == "buggy did not crash in any of 6 trials: the fault distribution no " \
                          "longer reproduces cm1"


def test_nominal_counts_every_label_but_ok_and_claims_no_buggy_crash(tmp_path):
    from duohil import scenario
    nominal = scenario.load(scenario.REPO / "scenarios" / "nominal.yaml")
    labels = campaign.crash_labels(nominal)
    assert "ok" not in labels and {"stale", "runaway", "estop", "hardfault"} <= set(labels)
    cm1 = scenario.load(scenario.REPO / "scenarios" / "cm1_cmd_timeout.yaml")
    assert campaign.crash_labels(cm1) == ["estop", "runaway"]
    trials = [fake_trial(i, False) for i in range(4)]
    doc = campaign.CampaignResult("nominal", "n.yaml", "builtin", 1, 4, (1, 1), trials,
                                  crash_mode="nominal", crash_labels=labels).to_json()
    assert campaign.check(doc) == [] and doc["crash_labels"] == labels
    from duohil import report
    assert "stale" in report.write_campaign(doc, tmp_path / "n.html").read_text()


@pytest.mark.parametrize("content, words", [
    (None, "campaign result not found"),
    ("{bad", "not JSON"),
    ('{"a": 1}', "not a campaign result"),
    ("[1, 2]", "not a campaign result"),
])
def test_merge_of_a_file_that_is_not_a_campaign_result_is_a_clear_error(tmp_path, content, words):
    f = tmp_path / "shard.json"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ConfigError, match=words) as info:
        campaign.merge([f])
    assert str(f) in str(info.value) and "duohil campaign --json" in str(info.value)


def test_merge_refuses_shards_of_two_scenario_files_that_share_a_name(tmp_path):
    """Same name, different content: the shards describe different experiments."""
    trials = [fake_trial(i, True) for i in range(4)]
    files = []
    for k, sha in ((1, "a" * 64), (2, "b" * 64)):
        part = [t for t in trials if t["trial"] in campaign.shard_trials(4, (k, 2))]
        doc = campaign.CampaignResult("cm1", f"dir{k}/s.yaml", "builtin", 1, 4, (k, 2), part,
                                      scenario_sha256=sha).to_json()
        f = tmp_path / f"shard{k}.json"
        f.write_text(json.dumps(doc))
        files.append(f)
    with pytest.raises(ConfigError, match="scenario's content differs") as info:
        campaign.merge(files)
    assert info.value.field == "scenario_sha256" and info.value.file == str(files[1])


def test_content_hash_follows_what_the_run_does_not_the_file(tmp_path):
    from duohil import scenario
    src = (scenario.REPO / "scenarios" / "cm1_cmd_timeout.yaml").read_text()
    a, b, c, d = (tmp_path / n for n in ("a.yaml", "b.yaml", "c.yaml", "d.yaml"))
    a.write_text(src)
    b.write_text(src.replace("title: A GC pause", "title: Another words for a GC pause"))
    c.write_text(src.replace("duration_ms: {uniform: [2, 50]}", "duration_ms: {uniform: [2, 51]}"))
    d.write_text(src.replace("seed: 19", "seed: 20"))
    h = {p.name: scenario.content_hash(scenario.load(p)) for p in (a, b, c, d)}
    assert h["a.yaml"] == h["b.yaml"]                       # title and path do not matter
    assert len({h["a.yaml"], h["c.yaml"], h["d.yaml"]}) == 3   # a fault range, a seed do
    assert scenario.load(c).name == scenario.load(a).name     # ... though the names agree


def test_a_worker_loads_its_scenario_once_and_sees_a_changed_file(tmp_path, monkeypatch):
    """_one_trial's scenario comes from a per-worker copy while the file's bytes are unchanged;
    a rewritten file (same size too) is loaded again, and each trial has its own Scenario."""
    from pathlib import Path

    from duohil import scenario as scmod
    src = Path(__file__).resolve().parent.parent / "scenarios" / "cm1_cmd_timeout.yaml"
    path = tmp_path / "cm1.yaml"
    text = src.read_text()
    path.write_text(text)
    a = campaign._load_scenario(str(path))
    monkeypatch.setattr(scmod, "load", None)                  # unchanged: not parsed again
    b = campaign._load_scenario(str(path))
    assert a is not b and a.duration_ms == b.duration_ms and a.faults == b.faults
    b.expect.clear()                                           # one trial's copy is its own
    assert campaign._load_scenario(str(path)).expect == a.expect
    monkeypatch.undo()
    assert "\nduration_ms: 1100\n" in text and a.duration_ms == 1100
    path.write_text(text.replace("\nduration_ms: 1100\n", "\nduration_ms: 1101\n"))   # same size
    assert campaign._load_scenario(str(path)).duration_ms == 1101
