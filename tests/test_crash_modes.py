"""Every crash mode, both ways: each scenario in scenarios/ reproduces its crash on `buggy`, holds
on `fixed`, and reproduces again on `fixed-no-<fix>` (so each patch is necessary and sufficient).

One test per (scenario, variant), through the duohil pytest plugin: the `duohil` marker starts the
`duo` fixture from the scenario file with its fault plan; a failure carries the outcome, evidence,
decoded crash record and the run's timeline. A crash mode without a scenario file is a failing
test naming what is missing, never an empty collection.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from duohil import scenario as scmod
from duohil.duo import crash_mode_scenarios, scenarios_dir

SCENARIOS = scenarios_dir()             # $DUOHIL_SCENARIOS or scenarios/


@dataclass(frozen=True)
class Case:
    mode: str
    variant: str
    path: Path | None = None
    problem: str | None = None

    @property
    def claim(self) -> str:
        if self.variant == "fixed":
            return "holds"
        return "reproduces"


def _cases() -> list:
    by_mode = crash_mode_scenarios(SCENARIOS)
    params = []
    for mode, fix in scmod.CRASH_MODES.items():
        files = by_mode.get(mode, [])
        if not files:
            problem = (f"no scenario for {mode} ({fix}) in {SCENARIOS}: every crash mode needs a "
                       f"scenarios/*.yaml with `crash_mode: {mode}` (CRASH_MODES.md)")
            params.append(pytest.param(Case(mode, "-", problem=problem), id=f"{mode}-missing"))
            continue
        for path in files:
            try:
                sc = scmod.load(path)
            except scmod.ConfigError as exc:
                params.append(pytest.param(Case(mode, "-", path, problem=str(exc)),
                                           id=f"{mode}-{path.stem}-invalid"))
                continue
            for variant in sc.ab_variants():
                case = Case(mode, variant, path)
                params.append(pytest.param(
                    case, id=f"{mode}-{sc.name}-{variant}-{case.claim}",
                    marks=pytest.mark.duohil(scenario=str(path), variant=variant)))
    for path in by_mode.get("nominal", []):
        params.append(pytest.param(Case("nominal", "fixed", path), id=f"nominal-{path.stem}-fixed",
                                   marks=pytest.mark.duohil(scenario=str(path), variant="fixed")))
    return params


@pytest.mark.parametrize("case", _cases())
def test_crash_mode(case: Case, request: pytest.FixtureRequest) -> None:
    if case.problem:
        pytest.fail(case.problem, pytrace=False)
    duo = request.getfixturevalue("duo")
    duo.run_to_end()
    result = duo.should_match()                  # the scenario's `expect` for this variant
    if case.variant == "fixed":
        assert result.outcomes == ["ok"] or result.matches, result.headline()
    else:
        assert result.outcomes != ["ok"], f"{result.headline()}: the crash did not reproduce"
