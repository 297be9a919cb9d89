"""The `duohil` command: run scenarios, A/B verdicts, campaigns; boot and replay firmware images.

Exit codes: 0 the command did what was asked (for `ab`/`matrix`: every verdict as expected),
1 an engine failure or an unmet expectation, 2 bad input (scenario, option, missing image).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import runner
from . import scenario as scmod
from .engines import registry
from .errors import ConfigError, DuohilError, EngineUnavailable
from .safeyaml import short


def _clock_text(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _progress(prefix: str, stream: Any = None, clock: Callable[[], float] = time.monotonic,
              tty: bool | None = None) -> Callable[[int, int], None]:
    """A progress display for runs in worker processes: elapsed time and an estimate of what is
    left (host time: the display only, never a run). On a terminal one line redrawn in place; in
    a log (CI) a line at the start, at each tenth and at the end, so logs stay readable."""
    out = stream if stream is not None else sys.stderr
    if tty is None:
        tty = bool(getattr(out, "isatty", lambda: False)())
    t0 = clock()
    last_tenth = [-1]

    def show(done: int, total: int) -> None:
        total = max(total, 1)
        elapsed = clock() - t0
        width = 30
        filled = width * done // total
        text = f"{prefix} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {_clock_text(elapsed)}"
        if 0 < done < total:
            text += f", ~{_clock_text(elapsed * (total - done) / done)} left"
        if tty:
            out.write(f"\r{text}\x1b[K" + ("\n" if done >= total else ""))
        else:
            tenth = 10 * done // total
            if tenth == last_tenth[0] and done < total:
                return
            last_tenth[0] = tenth
            out.write(text + "\n")
        out.flush()
    return show


def _writable(path: str | None, option: str, is_dir: bool = False) -> None:
    """Check an output path before anything runs: a result that cannot be written is bad input
    found at the start, not a traceback after minutes of simulation."""
    if not path:
        return
    p = Path(path)
    d = p if is_dir else p.parent
    expected = "a directory you can write to" if is_dir else "a file path you can write to"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {d}: {exc.strerror}", field=option,
                          expected=expected) from None
    if not is_dir and p.is_dir():
        raise ConfigError(f"{p} is a directory", field=option, expected=expected)
    try:                                    # a file made and removed again: the real test
        with tempfile.NamedTemporaryFile(dir=d, prefix=".duohil-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write in {d}: {exc.strerror}", field=option,
                          expected=expected) from None
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{p} is not writable", field=option, expected=expected)


def _int_option(text: str | None, option: str, lo: int, hi: int, what: str) -> int | None:
    """An integer option checked against its documented range, as one error line (argparse's
    own errors print the usage too; and `--seed -1` used to pass though no scenario allows it)."""
    if text is None:
        return None
    expected = f"{what}, an integer {lo}..{hi}"
    try:
        value = int(text, 10)
    except ValueError:
        raise ConfigError(f"{short(text)} is not an integer", field=option, expected=expected) from None
    if not lo <= value <= hi:
        raise ConfigError(f"{value} is out of range", field=option, expected=expected)
    return value


def cmd_engines(args: argparse.Namespace) -> int:
    for e in registry.describe():
        state = "available" if e["available"] else "unavailable"
        print(f"{e['name']:8} {state}: {e['reason']}")
        print(f"{'':8} capabilities: {', '.join(e['capabilities']) or '-'}")
        for opt, what in dict(e.get("options") or {}).items():
            print(f"{'':8} --{opt.replace('_', '-')}: {what}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    seed = _int_option(args.seed, "--seed", 0, scmod.MAX_RUN_SEED, "a run's seed")
    sc = scmod.load(args.scenario)
    variant = sc.variant(args.variant or None, "--variant")
    if args.engine != "serial":                  # on a board the image is already flashed
        scmod.check_images(sc, [variant])
    _writable(args.json, "--json")
    interrupted = False
    try:
        if args.engine == "serial":                  # a real board: duohil plays the peer on --port
            from .engines.serial import cli as serial_cli
            r = serial_cli.run(args, sc, variant, seed)
        elif getattr(args, "pty", None):
            from . import pty as ptymod
            realtime = ptymod.parse_realtime(args.realtime)
            r = ptymod.run_scenario(sc, variant, args.pty, realtime=realtime, seed=seed,
                                    engine=args.engine, json_path=args.json,
                                    announce=lambda s: print(s, flush=True))
        else:
            r = runner.run(sc, variant, seed=seed, engine=args.engine, json_path=args.json,
                           settle_heap=False)          # the process's only run
    except KeyboardInterrupt as exc:
        if not (exc.args and isinstance(exc.args[0], runner.RunResult)):
            raise
        r, interrupted = exc.args[0], True
    print(r.headline())
    if r.stopped and r.stopped.get("reason"):
        print(f"  STOPPED at {r.stopped['virtual_ms']:.3f} ms virtual: {r.stopped['reason']}; "
              f"the result is partial" + (f" (written to {args.json})" if args.json else ""))
    for k, v in r.evidence.items():
        print(f"  {k}: {v}")
    if r.crash:
        print("  crash: " + (r.crash.get("pc") or ""))
        for s in r.crash.get("summary", []):
            print(f"    {s}")
        if len(r.crash.get("faults") or []) > 1:
            print("  all faults:")
            for s in r.crash["faults"]:
                print(f"    {s}")
    for line in r.diagnosis:                      # what went wrong, in words (duohil.diagnose)
        print(f"  {line}")
    for why in sorted(set(r.not_applicable.values())):
        print(f"  {why}: " + ", ".join(k for k, v in r.not_applicable.items() if v == why))
    idle = runner.not_acted(r)
    for w in idle:
        print(f"  warning: {w}")
    for _t, kind, d in r.timeline.get("events", []):
        if kind == "warning":                     # model and loader warnings, in words
            print(f"  warning: {d.get('message')}")
        elif kind == "unmapped_access":
            print(f"  unmapped {d.get('access')} at {d.get('address', 0):#010x} ({d.get('block')}) "
                  f"pc {d.get('pc', 0):#010x}: {d.get('action')}")
        elif kind in ("cpu_hung", "cpu_stopped"):
            pc = d.get("pc")
            print(f"  {d.get('machine', '?')}: CPU {d.get('reason')}"
                  + (f" (pc {pc:#010x})" if isinstance(pc, int) else "") + f" at {_t:.3f} ms")
        elif kind == "repeated":
            print(f"  {d.get('of')} on {d.get('machine', '?')} repeated {d.get('count')} more times "
                  f"({d.get('first_ps', 0) / 1e9:.3f}-{d.get('last_ps', 0) / 1e9:.3f} ms), "
                  f"counted, not logged one by one")
    print(f"  fingerprint {r.fingerprint}")
    if r.host_timing:
        print(f"  not reproducible: host timing entered ({r.host_timing['why']})")
    if interrupted:
        return 130
    if r.error:
        print(f"  engine error: {r.error}", file=sys.stderr)
        return 1
    if r.stopped and r.stopped.get("reproducible") is False:     # wall budget: not a verdict
        return 1
    if r.matches is False:
        print(f"  expected {r.expected}, got {', '.join(r.outcomes)}: the run does not match its "
              f"scenario's expectation", file=sys.stderr)
        return 1
    return _strict(args, idle)


def _strict(args: argparse.Namespace, idle: list[str]) -> int:
    """--strict: a planned fault that never acted fails the command (exit 1)."""
    if idle and args.strict:
        print(f"strict: {len(idle)} planned fault(s) never acted", file=sys.stderr)
        return 1
    return 0


def _ab(path: str, seed: int | None, engine: str, json_dir: str | None) -> runner.AbResult:
    sc = scmod.load(path)
    scmod.check_images(sc, sc.ab_variants())
    _writable(json_dir, "--json-dir", is_dir=True)
    return runner.ab(sc, seed=seed, engine=engine, json_dir=json_dir)


def cmd_ab(args: argparse.Namespace) -> int:
    seed = _int_option(args.seed, "--seed", 0, scmod.MAX_RUN_SEED, "a run's seed")
    if args.engine == "serial":
        from .engines.serial import cli as serial_cli
        serial_cli.refuse_ab(args.scenario)
    res = _ab(args.scenario, seed, args.engine, args.json_dir)
    print(f"{res.scenario} (seed {res.seed})")
    for line in res.verdict_lines():
        print("  " + line)
    if res.runs and res.runs[0].fault_plan:
        # the plan the seed drew, the same for every variant (when each fault fired, t_ps, is
        # per run: an event-triggered fault fires when that run's event happens)
        from .duo import faults_text
        print("  faults: " + faults_text([{k: v for k, v in f.items() if k != "t_ps"}
                                          for f in res.runs[0].fault_plan]))
    strict = _strict(args, res.not_acted())
    return 0 if res.passed and not strict else 1


def cmd_matrix(args: argparse.Namespace) -> int:
    from . import report
    paths = sorted(Path(args.dir).glob("*.yaml"))
    if not paths:
        raise ConfigError("no scenarios found", file=args.dir, expected="*.yaml scenario files")
    runner.workers(args.jobs, 1)                  # a bad -j is an error before anything runs
    scs = [scmod.load(p) for p in paths]
    for sc in scs:
        scmod.check_images(sc, sc.ab_variants())
    _writable(args.report, "--report", is_dir=True)
    results, rows, skipped = [], [], []
    show = _progress("matrix")
    show(0, sum(len(sc.ab_variants()) for sc in scs))
    outcome = runner.ab_many(scs, engine=args.engine, json_dir=args.report, jobs=args.jobs,
                             progress=show)
    for sc, res in zip(scs, outcome):
        if isinstance(res, Exception):
            skipped.append(f"{sc.name}: skipped: {res}")
            continue
        results.append(res)
        cells = {r.variant: ", ".join(r.outcomes) for r in res.runs}
        rows.append([sc.name, cells.get("buggy", "-"), cells.get("fixed", "-"),
                     next((c for v, c in cells.items() if v.startswith("fixed-no-")), "-"),
                     "PASS" if res.passed else "FAIL"])
    widths = [max(len(r[i]) for r in rows + [["scenario", "buggy", "fixed", "fixed-no-<fix>", "A/B"]])
              for i in range(5)]
    head = ["scenario", "buggy", "fixed", "fixed-no-<fix>", "A/B"]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    for s in skipped:
        print(s)
    for res in results:
        if not res.passed:
            for line in res.verdict_lines():
                print(f"  {res.scenario}: {line}")
    if args.report:
        out = report.write_matrix(results, Path(args.report) / "matrix.html", rows)
        print(f"report: {out}")
    return 0 if all(r.passed for r in results) and results else 1


def cmd_campaign(args: argparse.Namespace) -> int:
    from . import campaign as campmod           # here: a run needs none of its process pool
    shard = campmod.parse_shard(args.shard)
    seed = _int_option(args.seed, "--seed", 0, scmod.MAX_SEED, "a campaign's base seed")
    trials = _int_option(args.trials, "--trials", 1, campmod.MAX_TRIALS, "a number of trials")
    _writable(args.json, "--json")
    t0 = time.perf_counter()
    res = campmod.run_campaign(args.scenario, trials, seed=seed, jobs=args.jobs,
                               shard=shard, engine=args.engine, progress=_progress("campaign"),
                               full=args.full)
    wall = time.perf_counter() - t0
    print(f"{res.scenario}: {len(res.trials)} trials (shard {shard[0]}/{shard[1]}), "
          f"{wall:.1f} s wall")
    print(res.table())
    stopped = [t[v]["stopped_ms"] for t in res.trials for v in campmod.CAMPAIGN_VARIANTS
               if t[v].get("stopped_ms") is not None]
    if stopped:
        print(f"{len(stopped)} runs stopped once their crash was certain (mean at "
              f"{sum(stopped) / len(stopped):.0f} ms virtual); --full runs them to the end")
    doc = res.to_json()
    if args.json:
        from . import report
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        page = report.write_campaign(doc, Path(args.json).with_suffix(".html"))
        print(f"result: {args.json}, report: {page}")
    return _check(doc) if args.check else 0


def _check(doc: dict) -> int:
    """--check: exit 1 unless the campaign backs the scenario's claim (campaign.check)."""
    from . import campaign as campmod
    problems = campmod.check(doc)
    for p in problems:
        print(f"check FAILED: {p}")
    if not problems:
        print("check passed: " + ("fixed showed nothing but ok in every trial"
                                  if doc.get("crash_mode") == "nominal"
                                  else "fixed never crashed, buggy reproduced"))
    return 1 if problems else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from . import campaign as campmod
    from . import report
    doc = campmod.merge(args.files)
    _writable(args.out, "--out")
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    report.write_campaign(doc, Path(args.out).with_suffix(".html"))
    s = doc["summary"]
    for v, r in s.items():
        print(f"{v}: {r['crashes']}/{r['trials']} crashed ({100 * r['rate']:.1f}%, "
              f"95% CI {100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}%)")
    print(f"merged: {args.out}")
    return _check(doc) if args.check else 0


#: the commands this module defines; boot, replay and serve are registered by their own modules
COMMANDS = ("engines", "run", "ab", "matrix", "campaign", "merge")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; or, for ``command`` one of COMMANDS (the command line's first
    word), a parser with this module's commands only: parsing `duohil run ...` needs neither
    cli_boot, cli_replay nor cli_serve (nor what they import, ~15 ms of a fresh run). Any other
    first word (`--help`, a typo, `replay`) gets them all, so usage and errors list every one."""
    p = argparse.ArgumentParser(prog="duohil", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def engine_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--engine", default=registry.DEFAULT_ENGINE, choices=registry.ENGINES)
        if sp.prog.split()[-1] in ("run", "ab", "matrix", "campaign"):
            sp.add_argument("--max-wall-s", type=float, default=runner.DEFAULT_MAX_WALL_S,
                            help="wall-clock budget per run in seconds (default %(default)g; 0: "
                                 "none): a run that spends it stops with its partial result")

    sp = sub.add_parser("engines", help="list engines, availability and capabilities")
    sp.set_defaults(func=cmd_engines)
    sp = sub.add_parser("run", help="one run of one variant")
    sp.add_argument("scenario")
    sp.add_argument("--variant")
    sp.add_argument("--seed", help="the run's seed (default: the scenario's)")
    sp.add_argument("--json")
    sp.add_argument("--strict", action="store_true",
                    help="exit 1 when a planned fault never acted (its target never occurred)")
    engine_opt(sp)
    from . import pty as ptymod
    ptymod.add_options(sp)
    from .engines.serial import cli as serial_cli
    serial_cli.add_options(sp)
    sp.set_defaults(func=cmd_run)
    sp = sub.add_parser("ab", help="buggy, fixed and fixed-no-<fix> on one seed; the verdict")
    sp.add_argument("scenario")
    sp.add_argument("--seed", help="the run's seed (default: the scenario's)")
    sp.add_argument("--json-dir")
    sp.add_argument("--strict", action="store_true",
                    help="exit 1 when a planned fault never acted (its target never occurred)")
    engine_opt(sp)
    sp.set_defaults(func=cmd_ab)
    sp = sub.add_parser("matrix", help="every scenario through ab; table + HTML report")
    sp.add_argument("dir", nargs="?", default="scenarios")
    sp.add_argument("--report", default="reports/matrix")
    sp.add_argument("-j", "--jobs", type=int, default=None,
                    help="worker processes (default: one per CPU)")
    engine_opt(sp)
    sp.set_defaults(func=cmd_matrix)
    sp = sub.add_parser("campaign", help="Monte Carlo crash rates with 95%% confidence intervals")
    sp.add_argument("scenario")
    sp.add_argument("--trials", required=True, help="how many trials (seeds) in the whole campaign")
    sp.add_argument("--seed", help="the base seed trial seeds derive from (default: the scenario's)")
    sp.add_argument("-j", "--jobs", type=int, default=None,
                    help="worker processes (default: one per CPU)")
    sp.add_argument("--shard")
    sp.add_argument("--json")
    sp.add_argument("--full", action="store_true",
                    help="run every trial to the end (default: stop a trial once its crash is "
                         "certain)")
    sp.add_argument("--check", action="store_true",
                    help="exit 1 unless fixed never crashed and buggy crashed at least once")
    engine_opt(sp)
    sp.set_defaults(func=cmd_campaign)
    sp = sub.add_parser("merge", help="combine campaign shards into one result")
    sp.add_argument("files", nargs="+")
    sp.add_argument("-o", "--out", required=True)
    sp.add_argument("--check", action="store_true",
                    help="exit 1 unless fixed never crashed and buggy crashed at least once")
    sp.set_defaults(func=cmd_merge)
    if command not in COMMANDS:
        from . import cli_boot, cli_replay, cli_serve
        cli_boot.register(sub, engine_opt)
        cli_replay.register(sub, engine_opt)
        cli_serve.register(sub, engine_opt)
    return p


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words[0] if words else None).parse_args(argv)
    try:
        wall = getattr(args, "max_wall_s", None)
        if wall is not None:
            if wall < 0:
                raise ConfigError(f"--max-wall-s {wall:g} is negative", field="--max-wall-s",
                                  expected="seconds >= 0 (0: no budget)")
            os.environ["DUOHIL_MAX_WALL_S"] = repr(float(wall))   # worker processes inherit it
        return args.func(args)
    except KeyboardInterrupt:
        print("duohil: interrupted (Ctrl-C); runs that were under way wrote their partial "
              "results", file=sys.stderr)
        return 130
    except EngineUnavailable as exc:
        print(f"duohil: {exc}", file=sys.stderr)
        return 1
    except DuohilError as exc:
        print(f"duohil: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader went away (`duohil engines | head -1`): stop quietly; stdout points at
        # /dev/null so the interpreter's final flush cannot raise the same error again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def console_main() -> int:
    """The ``duohil`` command: ``main()``, then no cyclic collection of what the command leaves.

    At exit the interpreter runs full collections over every object still alive (the machines,
    the parsed images, the result: ~0.1 s of CPU after a run); nothing in them needs a cycle
    collected to finish its work (files are closed by the commands, temporary directories and
    logging by their atexit hooks), so they are frozen out of those collections. main() itself
    (what tests call) leaves the collector alone."""
    code = main()
    import gc
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
