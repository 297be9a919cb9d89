"""One run and one A/B verdict: scenario -> engine -> observations -> oracle -> result.

The runner is engine-neutral: it is built on ``duohil.duo.Duo`` (the same API the pytest plugin and
the Robot library use), which talks to ``duohil.engines.base`` only. Wall time is measured
around a run for the report and never enters it; the fingerprint covers virtual state only.
"""
from __future__ import annotations

import gc
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .duo import (  # noqa: F401 - API
    PEER_PLATFORM,
    SAMPLE_MS,
    STATUS_KEYS,
    STM32_PLATFORM,
    CapabilityMissing,
    Duo,
    RunResult,
    spec_for,
)
from .engines.base import PS_PER_MS
from .engines.builtin.kernel.scheduler import Scheduler, StopRequested
from .errors import ConfigError, EngineError
from .scenario import Scenario, naming_errors


#: the default wall-clock budget of one run (``--max-wall-s``): generous, a nominal run takes ~10 s
DEFAULT_MAX_WALL_S = 600.0


#: a stop request raised from a signal handler (engines without a step-boundary check) is
#: raised again this often until the run has stopped: one raised inside an emulator callback
#: can be lost
STOP_RETRY_S = 0.5


class RunStopped(BaseException):
    """Raised from a signal handler to stop a run; ``args[0]``: ``"wall_budget"`` or
    ``"interrupted"``. A BaseException like KeyboardInterrupt: no ``except Exception`` in a model
    swallows it."""


@contextmanager
def _stoppable(seconds: float | None):
    """While a run runs: SIGALRM after ``seconds`` of wall time (0/None: no budget) and SIGINT
    (Ctrl-C) stop it. The builtin engine is asked to stop at its next scheduler step
    (``Scheduler.stop_request``); otherwise RunStopped is raised in the handler, and again every
    STOP_RETRY_S until caught. Yields a list that holds the reason once a stop was requested.
    Off the main thread (or without setitimer) nothing is installed: the run is bounded by its
    virtual duration. An ignored SIGINT (a background job) stays ignored."""
    why: list[str] = []
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield why
        return
    sched = Scheduler

    def stop(reason: str) -> None:
        if not why or reason == "interrupted":
            why[:] = [reason]
        if sched.stop_request is None:
            sched.stop_request = why[0]
        signal.setitimer(signal.ITIMER_REAL, STOP_RETRY_S)
        if reason == "retry":               # the scheduler did not stop within STOP_RETRY_S
            raise RunStopped(why[0])

    def alarm(_sig: int, _frame: Any) -> None:
        stop("retry" if why else "wall_budget")

    def interrupt(_sig: int, _frame: Any) -> None:
        stop("interrupted")
    old_alarm = signal.signal(signal.SIGALRM, alarm)
    old_int = signal.getsignal(signal.SIGINT)
    if old_int is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupt)
    if seconds:
        signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield why
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alarm)
        if old_int is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, old_int)
        sched.stop_request = None


def run(sc: Scenario, variant: str, *, seed: int | None = None, engine: str = "builtin",
        quantum_us: float | None = None, json_path: str | Path | None = None,
        engine_options: dict[str, Any] | None = None, stop_on: tuple[str, ...] = (),
        timeline: bool = True, max_wall_s: float | None = None,
        settle_heap: bool = True) -> RunResult:
    """Execute one variant of a scenario. A crashing run still returns (and writes) its result:
    whatever was observed before the engine failed is kept, with the error.

    ``stop_on``: stop as soon as one of these labels is certain (``Duo.run_to_first``; the
    result's ``stopped`` says where). ``timeline``: build the report's timeline.
    ``max_wall_s``: the wall-clock budget in seconds (None: $DUOHIL_MAX_WALL_S, which the CLI's
    ``--max-wall-s`` sets so worker processes inherit it, else DEFAULT_MAX_WALL_S; 0: none).
    When it is spent, or on Ctrl-C, the run stops where it is and its partial result is
    returned and written, with ``stopped`` saying why and ``reproducible: false`` (where a host
    clock cut a run depends on the host); a Ctrl-C is raised again after the JSON is written.
    ``settle_heap``: False when the process runs nothing after this run (`duohil run`): the
    collection that readies the heap for later runs (``_settle_heap``) would be spent for none."""
    if max_wall_s is None:
        max_wall_s = float(os.environ.get("DUOHIL_MAX_WALL_S") or DEFAULT_MAX_WALL_S)
    interrupted = False
    with naming_errors(sc, variant), \
            Duo.from_scenario(sc, variant, seed=seed, engine=engine, quantum_us=quantum_us,
                              engine_options=engine_options) as duo:
        duo.with_timeline = timeline
        cut: str | None = None
        why: list[str] = []
        try:
            with _stoppable(max_wall_s) as why:
                if stop_on:
                    duo.run_to_first(stop_on)
                else:
                    duo.run_to_end()
        except (EngineError, RuntimeError):
            pass                      # duo.error holds it; the result reports it
        except (RunStopped, StopRequested):
            pass                      # why says which
        except KeyboardInterrupt:
            why = ["interrupted"]
        if why:
            interrupted = why[0] == "interrupted"
            cut = ("interrupted (Ctrl-C)" if interrupted
                   else f"wall-clock budget of {max_wall_s:g} s spent (--max-wall-s)")
        result = duo.result()
        if cut is not None:
            result.stopped = {"label": "wall_budget" if not interrupted else "interrupted",
                              "reason": cut, "virtual_ms": duo.now_ps / PS_PER_MS,
                              "reproducible": False}
        elif duo.stopped is not None:
            result.stopped = {"label": duo.stopped[0],
                              "virtual_ms": duo.stopped[1] / PS_PER_MS}
            if duo.stopped_reason is not None:         # on_hang: stop
                result.stopped["reason"] = duo.stopped_reason
    if json_path is not None:
        result.write(json_path)
    if interrupted:
        raise KeyboardInterrupt(result)
    if settle_heap:
        _settle_heap()
    return result


_HEAP_SETTLED = False


def _settle_heap() -> None:
    """Once per process, after its first run: collect, then move every survivor (modules, the
    parsed DWARF of the images, caches) out of the collector's sight (``gc.freeze``). Later runs
    (a campaign's) then pay the collector for their own objects only: every full collection
    used to walk the whole parsed DWARF again (~0.1 s per run, measured)."""
    global _HEAP_SETTLED
    if not _HEAP_SETTLED:
        _HEAP_SETTLED = True
        gc.collect()
        gc.freeze()


@dataclass
class AbResult:
    scenario: str
    seed: int
    runs: list[RunResult]

    @property
    def passed(self) -> bool:
        return all(r.matches for r in self.runs)

    def verdict_lines(self) -> list[str]:
        """Per variant: the verdict, then one indented line per label with the evidence it
        rests on, and one per planned fault that never acted in that run."""
        out = []
        for r in self.runs:
            crashed = r.outcomes != ["ok"]
            expected = r.expected or []
            if isinstance(expected, dict):
                expected = expected.get("any", [])
            if r.variant == "fixed":
                if not crashed:
                    what = "holds on fixed"
                elif r.matches:
                    what = f"holds on fixed: {', '.join(r.outcomes)} as expected, and recovered"
                else:
                    what = f"CRASHES on fixed: {', '.join(r.outcomes)}"
            else:
                label = next((lab for lab in r.outcomes if lab in expected), None)
                if label is not None:
                    what = f"reproduces on {r.variant}: {label}"
                else:
                    # e.g. a seed whose GC pause is too short to matter, or another bug's label
                    what = (f"does NOT reproduce on {r.variant}: expected "
                            f"{' or '.join(expected) or 'a crash'}, saw {', '.join(r.outcomes)}")
            mark = "ok " if r.matches else "BAD"
            out.append(f"[{mark}] {what}")
            for lab in r.outcomes:
                if lab in r.evidence:
                    out.append(f"      {lab}: {r.evidence[lab]}")
            out.extend(f"      warning: {w}" for w in not_acted(r))
        return out

    def not_acted(self) -> list[str]:
        """Faults that never acted, per variant: ``<variant>: fault i ... never acted: why``."""
        return [f"{r.variant}: {w}" for r in self.runs for w in not_acted(r)]


def not_acted(r: RunResult) -> list[str]:
    """The planned faults of one run that never acted (duohil.faults.never_acted)."""
    from .faults import never_acted
    return never_acted(r.fault_plan, r.timeline.get("events", []), r.virtual_ms)


def ab(sc: Scenario, *, seed: int | None = None, engine: str = "builtin",
       json_dir: str | Path | None = None) -> AbResult:
    seed = sc.seed if seed is None else seed
    runs = [ab_run(sc, variant, seed, engine, json_dir) for variant in sc.ab_variants()]
    return AbResult(sc.name, seed, runs)


def ab_run(sc: Scenario, variant: str, seed: int, engine: str,
           json_dir: str | Path | None) -> RunResult:
    """One run of an A/B verdict (its JSON named ``<scenario>-<variant>-s<seed>.json``)."""
    path = None if json_dir is None else Path(json_dir) / f"{sc.name}-{variant}-s{seed}.json"
    return run(sc, variant, seed=seed, engine=engine, json_path=path)


def _ab_run_in_worker(args: tuple[str, str, str, str | None]) -> RunResult:
    from . import scenario as scmod
    path, variant, engine, json_dir = args
    sc = scmod.load(path)
    return ab_run(sc, variant, sc.seed, engine, json_dir)


def workers(jobs: int | None, tasks: int) -> int:
    """Worker processes for ``tasks`` independent runs (campaign, matrix): ``jobs``, or one per
    CPU when None; never more than there are tasks. Results never depend on it."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}", field="--jobs",
                          expected="a number of worker processes (omit it: one per CPU)")
    n = jobs if jobs is not None else (os.cpu_count() or 1)
    return max(1, min(n, tasks))


def ab_many(scs: list[Scenario], *, engine: str = "builtin", json_dir: str | Path | None = None,
            jobs: int | None = 1, progress: Any = None) -> list[AbResult | Exception]:
    """``ab`` for each scenario (its own seed), the runs spread over ``jobs`` processes (None:
    one per CPU); results do not depend on ``jobs``. Per scenario: its AbResult, or the
    exception that stopped one of its runs (CapabilityMissing: the engine cannot do what the
    scenario needs)."""
    tasks = [(i, v) for i, sc in enumerate(scs) for v in sc.ab_variants()]
    jobs = workers(jobs, len(tasks))
    done: dict[tuple[int, str], RunResult | Exception] = {}
    jd = None if json_dir is None else str(json_dir)
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(_ab_run_in_worker, (str(scs[i].path), v, engine, jd)): (i, v)
                    for i, v in tasks}
            for fut in as_completed(futs):
                try:
                    done[futs[fut]] = fut.result()
                except CapabilityMissing as exc:
                    done[futs[fut]] = exc
                if progress:
                    progress(len(done), len(tasks))
    else:
        for i, v in tasks:
            try:
                done[(i, v)] = ab_run(scs[i], v, scs[i].seed, engine, jd)
            except CapabilityMissing as exc:
                done[(i, v)] = exc
            if progress:
                progress(len(done), len(tasks))
    out: list[AbResult | Exception] = []
    for i, sc in enumerate(scs):
        runs = [done[(i, v)] for v in sc.ab_variants()]
        failed = next((r for r in runs if isinstance(r, Exception)), None)
        out.append(failed if failed is not None else AbResult(sc.name, sc.seed, runs))
    return out
