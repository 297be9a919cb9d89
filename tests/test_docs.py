"""The documents a clone ships say what the code and the scenarios do: no pointer outside the
repository, every path they name exists, each crash mode's page names its scenario and that
scenario's expected labels, and the README's verdict table is one the scenarios accept."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from duohil import oracle

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "stm32_firmware" / "README.md", ROOT / "esp32_firmware" / "README.md",
        ROOT / "docs" / "crash-modes.md"]
SCENARIOS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "scenarios").glob("*.yaml"))}


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_no_pointer_outside_the_repository_and_named_paths_exist(doc):
    text = doc.read_text()
    assert "shared/design" not in text and "../shared" not in text
    base = ROOT if doc.parent.name == "docs" or doc.parent == ROOT else doc.parent
    for path in re.findall(r"`((?:\.\./)?(?:docs|ci|scenarios|tests|robot|duohil|src|protocol)/"
                           r"[\w./-]+\.(?:md|sh|yaml|yml|py|robot|c|h))`", text):
        where = (doc.parent / path) if path.startswith("../") else (base / path)
        if not where.exists() and doc.parent != ROOT:
            where = ROOT / path
        assert where.exists(), f"{doc.name} names {path}, which does not exist"


def _section(text: str, mode: str) -> str:
    start = text.index(f"## {mode} ")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


@pytest.mark.parametrize("name", [n for n, d in SCENARIOS.items() if d["crash_mode"].startswith("CM")])
def test_crash_mode_page_names_scenario_variants_and_expected_labels(name):
    sc = SCENARIOS[name]
    sec = _section((ROOT / "docs" / "crash-modes.md").read_text(), sc["crash_mode"])
    assert f"`scenarios/{name}`" in sec
    for variant, want in sc["expect"].items():
        assert f"`{variant}`" in sec, (name, variant)
        labels = want if isinstance(want, list) else \
            [x for v in want.values() for x in (v if isinstance(v, list) else [v])] \
            if isinstance(want, dict) else [want]
        for lab in labels:
            assert lab in sec, (name, variant, lab)
    for f in sc.get("faults", []):
        assert f"`{f['kind']}`" in sec, (name, f["kind"])
        for key, value in f.items():           # a drawn parameter: its range is stated
            if isinstance(value, dict) and "uniform" in value:
                lo, hi = value["uniform"]
                assert f"{lo}-{hi} ms" in sec or f"{lo}-{hi}" in sec, (name, key, value)


def test_readme_verdict_table_is_one_the_scenarios_accept():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("```\nscenario "):]
    lines = table[4:table.index("```", 4)].strip().splitlines()[1:]
    by_name = {d["name"]: d for d in SCENARIOS.values()}
    seen = set()
    for line in lines:
        name, *cells, verdict = re.split(r"\s{2,}", line.strip())
        seen.add(name)
        exp = by_name[name]["expect"]
        variants = ["buggy", "fixed", next((v for v in exp if v.startswith("fixed-no-")), None)]
        for variant, cell in zip(variants, cells):
            if variant is None or variant not in exp:
                assert cell == "-", (name, variant, cell)
                continue
            want = exp[variant]
            want = [want] if isinstance(want, str) else want
            got = oracle.Verdict(cell.split(", "), {})
            assert oracle.matches(got, want), (name, variant, cell, want)
        assert verdict == "PASS"
    assert seen == set(by_name)


def test_readme_tells_a_minimal_debian_user_to_bootstrap_first():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## The two commands"):readme.index("## What the main job prints")]
    assert block.index("sh ci/bootstrap.sh") < block.index("make demo")
