"""Monte Carlo campaigns: crash rates on buggy and fixed with 95% confidence intervals.

Trial i of a campaign runs with seed ``trial_seed(base, i)``; its fault parameters are drawn from the
scenario's distributions with that seed. ``--shard K/N`` runs trials i with i % N == K-1, so N
machines can split a campaign and ``merge`` rebuilds exactly the unsharded result (the result holds
no wall times; those are printed, not stored).
"""
from __future__ import annotations

import json
import math
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import runner
from . import scenario as scmod
from .errors import ConfigError
from .safeyaml import short

CAMPAIGN_VARIANTS = ("buggy", "fixed")
MAX_TRIALS = 1_000_000          # trial seeds stay below scenario.MAX_RUN_SEED (trial_seed)


def trial_seed(base: int, i: int) -> int:
    return base * 1_000_003 + i


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials (sane at k=0 and k=n)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (1, 1)
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"bad shard {text!r}", field="--shard", expected="K/N, e.g. 2/8") from None
    if not (n >= 1 and 1 <= k <= n):
        raise ConfigError(f"bad shard {text!r}", field="--shard", expected="K/N with 1 <= K <= N")
    return (k, n)


def shard_trials(trials: int, shard: tuple[int, int]) -> list[int]:
    k, n = shard
    return [i for i in range(trials) if i % n == k - 1]


#: the scenario a worker has loaded: path -> (its bytes, the Scenario pickled). Every trial of
#: a campaign reads the same file (~7 ms of YAML and checks; a copy ~0.04 ms)
_LOADED: dict[str, tuple[bytes, bytes]] = {}


def _load_scenario(path: str) -> "scmod.Scenario":
    """``scenario.load(path)``, parsed once per worker while the file's bytes stay the same; each
    trial gets its own copy."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return scmod.load(path)            # its error names the file
    hit = _LOADED.get(path)
    if hit is not None and hit[0] == data:
        return pickle.loads(hit[1])
    sc = scmod.load(path)
    _LOADED.clear()
    _LOADED[path] = (data, pickle.dumps(sc, pickle.HIGHEST_PROTOCOL))
    return sc


def _one_trial(args: tuple[str, int, int, str, bool]) -> dict[str, Any]:
    path, base_seed, i, engine, full = args
    sc = _load_scenario(path)
    seed = trial_seed(base_seed, i)
    labels = crash_labels(sc)
    out: dict[str, Any] = {"trial": i, "seed": seed}
    for v in CAMPAIGN_VARIANTS:
        # A trial needs one bit per variant: did it crash as this crash mode does. Once one of
        # those labels is certain (a monotone oracle fired) the rest of the run cannot change
        # the bit, so it stops there unless --full; its other labels are those seen so far.
        r = runner.run(sc, v, seed=seed, engine=engine, timeline=False,
                       stop_on=() if full else tuple(labels))
        out[v] = {"outcomes": r.outcomes, "crashed": any(lab in labels for lab in r.outcomes),
                  "fingerprint": r.fingerprint, "fault_plan": r.fault_plan,
                  "stopped_ms": r.stopped["virtual_ms"] if r.stopped else None,
                  "wall_s": r.wall_s}
    return out


def crash_labels(sc: "scmod.Scenario") -> list[str]:
    """What counts as a crash of *this* crash mode: the labels the scenario expects on buggy.
    The buggy build carries every field bug, so it also shows others (e.g. stale reads from the
    D-cache bug on every run); counting those would measure the wrong bug. All labels are still
    tallied per variant in the summary. The nominal scenario claims that nothing happens: there
    every label but ``ok`` counts."""
    if sc.crash_mode == "nominal":
        return [lab for lab in scmod.OUTCOMES if lab != "ok"]
    want = sc.expect.get("buggy", [])
    if isinstance(want, dict):
        want = want.get("any", [])
    return [lab for lab in want if lab != "ok"]


@dataclass
class CampaignResult:
    scenario: str
    scenario_path: str
    engine: str
    base_seed: int
    trials_total: int
    shard: tuple[int, int]
    trials: list[dict[str, Any]]
    full: bool = False              # every trial ran to the end (--full)
    crash_mode: str = ""            # the scenario's (CM1 ... CM7, nominal)
    crash_labels: list[str] = field(default_factory=list)    # what counted as a crash
    scenario_sha256: str = ""       # scenario.content_hash: what the runs did, not the file's name

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v in CAMPAIGN_VARIANTS:
            n = len(self.trials)
            k = sum(1 for t in self.trials if t[v]["crashed"])
            lo, hi = wilson(k, n)
            labels: dict[str, int] = {}
            for t in self.trials:
                for lab in t[v]["outcomes"]:
                    labels[lab] = labels.get(lab, 0) + 1
            out[v] = {"trials": n, "crashes": k, "rate": (k / n) if n else 0.0,
                      "ci95": [round(lo, 4), round(hi, 4)], "outcomes": dict(sorted(labels.items()))}
        return out

    def to_json(self) -> dict[str, Any]:
        trials = [{"trial": t["trial"], "seed": t["seed"],
                   **{v: {k: t[v].get(k) for k in ("outcomes", "crashed", "fingerprint", "fault_plan",
                                                   "stopped_ms")}
                      for v in CAMPAIGN_VARIANTS}} for t in sorted(self.trials, key=lambda t: t["trial"])]
        return {"scenario": self.scenario, "scenario_path": self.scenario_path,
                "scenario_sha256": self.scenario_sha256, "engine": self.engine,
                "crash_mode": self.crash_mode, "crash_labels": list(self.crash_labels),
                "base_seed": self.base_seed, "trials_total": self.trials_total,
                "shard": list(self.shard), "full": self.full, "trials": trials,
                "summary": self.summary()}

    def table(self) -> str:
        s = self.summary()
        rows = [f"{'variant':8} {'trials':>6} {'crashes':>7} {'rate':>7}  95% CI",]
        for v in CAMPAIGN_VARIANTS:
            r = s[v]
            rows.append(f"{v:8} {r['trials']:6d} {r['crashes']:7d} {100 * r['rate']:6.1f}%  "
                        f"[{100 * r['ci95'][0]:.1f}%, {100 * r['ci95'][1]:.1f}%]")
        return "\n".join(rows)


def run_campaign(path: str, trials: int, *, seed: int | None = None, jobs: int | None = 1,
                 shard: tuple[int, int] = (1, 1), engine: str = "builtin",
                 progress: Callable[[int, int], None] | None = None,
                 full: bool = False) -> CampaignResult:
    """``jobs``: worker processes; None = one per CPU. Results never depend on it.
    ``full``: run every trial to the scenario's end (default: a trial stops once the crash it
    counts is certain, see _one_trial)."""
    sc = scmod.load(path)
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}", field="--trials")
    base_seed = sc.seed if seed is None else seed
    todo = shard_trials(trials, shard)
    jobs = runner.workers(jobs, len(todo))
    args = [(str(path), base_seed, i, engine, full) for i in todo]
    results: list[dict[str, Any]] = []
    it: Iterable[dict[str, Any]]
    if jobs > 1:
        pool = ProcessPoolExecutor(max_workers=jobs)
        it = pool.map(_one_trial, args, chunksize=1)
    else:
        pool = None
        it = map(_one_trial, args)
    if progress:
        progress(0, len(todo))
    try:
        for r in it:
            results.append(r)
            if progress:
                progress(len(results), len(todo))
    finally:
        if pool is not None:
            pool.shutdown()
    return CampaignResult(sc.name, str(path), engine, base_seed, trials, shard, results, full,
                          sc.crash_mode, crash_labels(sc), scmod.content_hash(sc))


def check(doc: dict[str, Any]) -> list[str]:
    """What a campaign result (``CampaignResult.to_json()`` or a merged one) says against the
    scenario's claim, as one line per problem (empty: it holds). The fixed build must not crash
    as this crash mode in any trial, and the buggy one must crash in at least one: a fault
    distribution that no longer reproduces the bug proves nothing about the fix."""
    s = doc["summary"]
    problems = []
    fx, bg = s["fixed"], s["buggy"]
    if fx["crashes"]:
        bad = [t["trial"] for t in doc["trials"] if t["fixed"]["crashed"]]
        problems.append(f"fixed crashed in {fx['crashes']}/{fx['trials']} trials "
                        f"({100 * fx['rate']:.1f}%, 95% CI {100 * fx['ci95'][0]:.1f}-"
                        f"{100 * fx['ci95'][1]:.1f}%); first trials: {bad[:5]} "
                        f"(replay: duohil run {doc['scenario_path']} --variant fixed --seed "
                        f"{next(t['seed'] for t in doc['trials'] if t['trial'] == bad[0])})")
    if not bg["crashes"] and doc.get("crash_mode") != "nominal":     # nominal claims no crash
        problems.append(f"buggy did not crash in any of {bg['trials']} trials: the fault "
                        f"distribution no longer reproduces {doc['scenario']}")
    return problems


_RESULT_KEYS = ("scenario", "scenario_path", "engine", "base_seed", "trials_total", "trials")


def load_result(path: str | Path) -> dict[str, Any]:
    """A campaign result file (``duohil campaign --json``), or a clear error naming the file."""
    expected = "a campaign result written by `duohil campaign --json`"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError("campaign result not found", file=path, expected=expected) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", file=path, expected=expected) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc.msg} at line {exc.lineno}", file=path,
                          expected=expected) from None
    if not isinstance(doc, dict):
        raise ConfigError("not a campaign result", file=path, expected=expected)
    for key in _RESULT_KEYS:
        if key not in doc:
            raise ConfigError("not a campaign result", file=path, field=key, expected=expected)
    return doc


def merge(paths: list[str | Path]) -> dict[str, Any]:
    """Combine shard results into the result an unsharded run would have written."""
    docs = [load_result(p) for p in paths]
    if not docs:
        raise ConfigError("nothing to merge", field="files", expected="one or more campaign JSON files")
    head = docs[0]
    for p, d in zip(paths, docs):
        # the scenario's content, not only its name: two files may share a name (a shard of
        # each would otherwise merge into one result that describes neither)
        for key in ("scenario", "scenario_sha256", "engine", "base_seed", "trials_total", "full",
                    "crash_labels"):
            if d.get(key) != head.get(key):
                what = ("the scenario's content differs (another file, or the file changed)"
                        if key == "scenario_sha256" else f"{key} differs")
                raise ConfigError(f"{what} from {paths[0]}", file=p, field=key,
                                  expected=short(head.get(key)))
    trials = {t["trial"]: t for d in docs for t in d["trials"]}
    missing = sorted(set(range(head["trials_total"])) - set(trials))
    if missing:
        raise ConfigError(f"trials missing after merge: {missing[:10]}{'...' if len(missing) > 10 else ''}",
                          field="shards", expected="every shard K/N of the campaign")
    res = CampaignResult(head["scenario"], head["scenario_path"], head["engine"], head["base_seed"],
                         head["trials_total"], (1, 1), list(trials.values()),
                         bool(head.get("full", False)), head.get("crash_mode", ""),
                         list(head.get("crash_labels", [])), head.get("scenario_sha256") or "")
    return res.to_json()
