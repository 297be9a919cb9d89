"""pytest plugin (entry point ``pytest11: duohil``): fixtures that compose engine -> duo.

    @pytest.mark.duohil(variant="fixed", peer="gc-packed", requires=["peer_stall"])
    def test_gc_pause_is_harmless(duo):
        duo.stm32.wait_for_line("BOOT", timeout_ms=50)
        duo.peer.stall(ms=5)
        duo.run(ms=200)
        assert duo.stm32.status.estops == 0

    @pytest.mark.duohil(stm32="path/to/app.elf", peer="none")     # your own image, alone
    def test_banner(duo):
        assert duo.stm32.uart("usart3").wait_for(b"READY", timeout_ms=20)

    @pytest.mark.duohil(scenario="scenarios/cm1_gc_pause.yaml", variant="buggy")
    def test_cm1_reproduces(duo):
        duo.run_to_end()
        duo.should_match()                 # the scenario's `expect` for this variant

Options: ``--duohil-engine`` (default $DUOHIL_ENGINE or builtin), ``--duohil-seed``,
``--duohil-quantum`` (us), ``--duohil-report DIR`` (default reports/duohil under the rootdir; with
the option given, every run's JSON is written there, not only failing ones).

Fixtures: ``duohil_options``; ``engine`` (the chosen engine, or a skip saying why it cannot run
here); ``duo_factory`` (``start(**kw)`` / ``scenario(path, variant, ...)``, every Duo closed after the
test); ``duo`` (one Duo started from the test's ``duohil`` marker).

Marker ``duohil(variant=, peer=, requires=[...], scenario=, stm32=, seed=, quantum_us=, config=,
plant=, stm32_platform=, peer_platform=)``: ``stm32`` any ELF (relative paths: to the rootdir, the
test file or this repository), ``peer="none"`` runs the STM32 alone; a test needing a
capability the engine lacks is skipped naming the capability (a CapabilityMissing raised inside
a test becomes the same skip). A failing test that started a Duo gets a "duohil" report section:
the outcome with evidence, the decoded crash record, what went wrong in words (decoded faults,
end state, poll loops, UART problems), and the paths of the run's timeline (HTML) and result
JSON, which are kept.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import scenario as scmod
from .duo import CapabilityMissing, Duo, crash_text, expectation_text
from .engines import base, registry
from .errors import ConfigError, EngineUnavailable

MARKER = ("duohil(variant=None, peer=None, requires=None, scenario=None, stm32=None, seed=None, "
          "quantum_us=None, config=None, plant=None, stm32_platform=None, peer_platform=None): "
          "start the `duo` fixture with these firmware "
          "images / scenario; skip when the engine lacks a required capability")
_DUOS = pytest.StashKey[list]()
_OPTIONS = pytest.StashKey["DuohilOptions"]()


@dataclass(frozen=True)
class DuohilOptions:
    engine: str
    seed: int | None
    quantum_us: float | None
    report_dir: Path
    keep_all: bool                  # --duohil-report given: keep every run's JSON

    def describe(self) -> str:
        return (f"duohil: engine {self.engine}, seed {'per scenario' if self.seed is None else self.seed}"
                f", quantum {'per scenario' if self.quantum_us is None else f'{self.quantum_us:g} us'}"
                f", reports in {self.report_dir}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("duohil", "duohil dual-MCU simulation")
    group.addoption("--duohil-engine", default=None, choices=registry.ENGINES,
                    help="engine running the simulations (default: $DUOHIL_ENGINE or builtin)")
    group.addoption("--duohil-seed", type=int, default=None,
                    help="seed for every run (default: the scenario's seed, 0 for ad-hoc runs)")
    group.addoption("--duohil-quantum", type=float, default=None, metavar="US",
                    help="CPU quantum in microseconds (default: the scenario's, else 10)")
    group.addoption("--duohil-report", default=None, metavar="DIR",
                    help="keep every run's result JSON (and failing runs' timelines) in DIR "
                         "(default: failing runs only, in reports/duohil)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    engine = config.getoption("--duohil-engine") or os.environ.get("DUOHIL_ENGINE") or \
        registry.DEFAULT_ENGINE
    if engine not in registry.ENGINES:
        raise pytest.UsageError(f"DUOHIL_ENGINE={engine!r}: expected one of {', '.join(registry.ENGINES)}")
    seed = config.getoption("--duohil-seed")
    if seed is not None and seed < 0:
        raise pytest.UsageError(f"--duohil-seed {seed}: expected an integer >= 0")
    quantum = config.getoption("--duohil-quantum")
    if quantum is not None and quantum <= 0:
        raise pytest.UsageError(f"--duohil-quantum {quantum:g}: expected a number of us > 0")
    report = config.getoption("--duohil-report")
    report_dir = Path(report) if report else config.rootpath / "reports" / "duohil"
    if not report_dir.is_absolute():
        report_dir = Path(config.invocation_params.dir) / report_dir
    config.stash[_OPTIONS] = DuohilOptions(engine, seed, quantum, report_dir, report is not None)


def pytest_report_header(config: pytest.Config) -> str | None:
    opts = config.stash.get(_OPTIONS, None)
    return opts.describe() if opts else None


# -- capabilities: skip before the test starts ------------------------------------------------------
def _marker_kwargs(item: pytest.Item) -> dict[str, Any] | None:
    marker = item.get_closest_marker("duohil")
    if marker is None:
        return None
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.duohil takes keyword arguments only "
                                f"(variant=..., requires=[...]), got {marker.args!r}")
    return dict(marker.kwargs)


def _scenario_path(path: str | Path, item: pytest.Item) -> Path:
    """A scenario path as given, or relative to the rootdir, the test file, or this repository."""
    p = Path(path)
    if p.is_absolute():
        return p
    for root in (item.config.rootpath, item.path.parent, scmod.REPO):
        if (root / p).is_file():
            return root / p
    return item.config.rootpath / p


def _skip_reason(item: pytest.Item, kw: dict[str, Any], opts: DuohilOptions) -> str | None:
    needed = [cap for cap in (kw.get("requires") or []) if cap in base.ALL_CAPABILITIES]
    if kw.get("scenario"):
        try:
            needed += scmod.load(_scenario_path(kw["scenario"], item)).requires
        except ConfigError:
            pass                       # the fixture reports the bad scenario as an error
    cls = registry.engine_class(opts.engine)
    ok, reason = cls.availability()
    if not ok:
        return f"engine {opts.engine} is not available here: {reason}"
    missing = sorted(set(needed) - set(cls.capabilities))
    if missing:
        return f"engine {opts.engine} lacks capability {', '.join(missing)}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (at the test's own location, with the reason) what the engine cannot run."""
    opts = config.stash[_OPTIONS]
    for item in items:
        kw = _marker_kwargs(item)
        if kw is None:
            continue
        reason = _skip_reason(item, kw, opts)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    kw = _marker_kwargs(item)
    if kw is None:
        return
    unknown = [cap for cap in (kw.get("requires") or []) if cap not in base.ALL_CAPABILITIES]
    if unknown:
        pytest.fail(f"unknown capability {', '.join(map(repr, unknown))} in "
                    f"@pytest.mark.duohil(requires=...); expected one of "
                    f"{', '.join(sorted(base.ALL_CAPABILITIES))}", pytrace=False)


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture
def duohil_options(request: pytest.FixtureRequest) -> DuohilOptions:
    return request.config.stash[_OPTIONS]


@pytest.fixture
def engine(duohil_options: DuohilOptions) -> base.Engine:
    """The engine chosen with --duohil-engine; the test is skipped (with the reason) when it
    cannot run here."""
    try:
        return registry.get_engine(duohil_options.engine)
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


class DuoFactory:
    """Starts Duos for one test with the session's options; closes them after it."""

    def __init__(self, item: pytest.Item, engine: base.Engine, options: DuohilOptions) -> None:
        self._item = item
        self.engine = engine
        self.options = options
        item.stash.setdefault(_DUOS, [])

    def _keep(self, duo: Duo) -> Duo:
        self._item.stash[_DUOS].append(duo)
        return duo

    def start(self, stm32: str | Path = "fixed", peer: str | Path | None = "pooled-packed", *,
              seed: int | None = None, quantum_us: float | None = None,
              **kw: Any) -> Duo:
        """``Duo.start`` with this session's engine, seed and quantum unless given; ``peer``
        None or "none": the STM32 alone. Relative ELF paths are found as scenario paths are."""
        if peer == "none":
            peer = None
        stm32 = self._elf(stm32)
        peer = None if peer is None else peer if isinstance(peer, dict) else self._elf(peer)
        seed = seed if seed is not None else (self.options.seed or 0)
        quantum = next((q for q in (quantum_us, self.options.quantum_us) if q is not None),
                       base.DEFAULT_QUANTUM_PS / base.PS_PER_US)
        return self._keep(Duo.start(stm32, peer, engine=self.engine, seed=seed,
                                    quantum_us=quantum, **kw))

    def _elf(self, image: str | Path) -> str | Path:
        """An ELF path relative to the rootdir, the test file or this repository (names of our
        build variants pass through)."""
        p = Path(image)
        if p.suffix != ".elf" or p.is_absolute():
            return image
        return _scenario_path(p, self._item)

    def scenario(self, path: str | Path | scmod.Scenario, variant: str, *,
                 seed: int | None = None, quantum_us: float | None = None,
                 stm32: str | Path | None = None) -> Duo:
        """One variant of a scenario file with its fault plan scheduled (run it with
        ``run_to_end``); ``stm32`` swaps the STM32 image (a broken-fix build, say)."""
        sc = path if isinstance(path, scmod.Scenario) else \
            scmod.load(_scenario_path(path, self._item))
        sc.variant(variant)
        seed = seed if seed is not None else self.options.seed
        return self._keep(Duo.from_scenario(sc, variant, seed=seed, engine=self.engine,
                                            quantum_us=quantum_us or self.options.quantum_us,
                                            stm32=stm32))

    def close_all(self) -> None:
        for duo in self._item.stash.get(_DUOS, []):
            duo.close()


@pytest.fixture
def duo_factory(request: pytest.FixtureRequest, engine: base.Engine,
                duohil_options: DuohilOptions) -> Iterator[DuoFactory]:
    factory = DuoFactory(request.node, engine, duohil_options)
    yield factory
    factory.close_all()


@pytest.fixture
def duo(request: pytest.FixtureRequest, duo_factory: DuoFactory) -> Duo:
    """Both machines booted as the test's ``duohil`` marker says (default: fixed + pooled-packed)."""
    kw = _marker_kwargs(request.node) or {}
    unknown = set(kw) - {"variant", "peer", "requires", "scenario", "stm32", "seed", "quantum_us",
                         "config", "plant", "oracle", "stm32_platform", "peer_platform"}
    if unknown:
        pytest.fail(f"unknown @pytest.mark.duohil argument(s) {', '.join(sorted(unknown))} "
                    f"(expected variant, peer, requires, scenario, stm32, seed, quantum_us, config, "
                    f"plant, oracle, stm32_platform, peer_platform)", pytrace=False)
    try:
        if kw.get("scenario"):
            return duo_factory.scenario(kw["scenario"], kw.get("variant") or "fixed",
                                        seed=kw.get("seed"), quantum_us=kw.get("quantum_us"),
                                        stm32=kw.get("stm32"))
        return duo_factory.start(kw.get("stm32") or kw.get("variant") or "fixed",
                                 kw.get("peer") or "pooled-packed", seed=kw.get("seed"),
                                 quantum_us=kw.get("quantum_us"), config=kw.get("config"),
                                 plant=kw.get("plant"), oracle_params=kw.get("oracle"),
                                 requires=kw.get("requires") or (),
                                 stm32_platform=kw.get("stm32_platform"),
                                 peer_platform=kw.get("peer_platform"))
    except ConfigError as exc:        # bad input: one line naming file, field and expectation
        pytest.fail(f"cannot start the simulation: {exc}", pytrace=False)


# -- reports --------------------------------------------------------------------------------------------
def _safe(nodeid: str) -> str:
    name = nodeid.split("::", 1)[-1] if "::" in nodeid else nodeid
    stem = Path(nodeid.split("::", 1)[0]).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{stem}.{name}").strip("_")[:150]


def write_timeline(result: Any, path: Path) -> Path | None:
    """The run as the HTML timeline of `duohil matrix` (frames, faults, plant, crash)."""
    from . import report
    from .runner import AbResult
    cells = {"buggy": "-", "fixed": "-", "fixed-no": "-"}
    key = "fixed-no" if result.variant.startswith("fixed-no-") else result.variant
    cells[key if key in cells else "fixed"] = ", ".join(result.outcomes)
    row = [result.run_name(), cells["buggy"], cells["fixed"], cells["fixed-no"],
           "PASS" if result.matches else "FAIL"]
    try:
        return report.write_matrix([AbResult(result.scenario, result.seed, [result])], path, [row])
    except Exception:                 # noqa: BLE001 - a report problem must not hide the failure
        return None


def _report_section(item: pytest.Item, duos: list[Duo], failed: bool,
                    options: DuohilOptions) -> str:
    parts = []
    for i, duo in enumerate(duos):
        stem = _safe(item.nodeid) + (f"-{i + 1}" if len(duos) > 1 else "")
        try:
            r = duo.result()
        except Exception as exc:      # noqa: BLE001
            parts.append(f"{duo.label}: no result ({type(exc).__name__}: {exc})")
            continue
        json_path = options.report_dir / f"{stem}.json"
        r.write(json_path)
        item.user_properties.append(("duohil_result", str(json_path)))
        if not failed:
            continue
        html = write_timeline(r, options.report_dir / f"{stem}.html")
        lines = [f"{r.run_name()} seed={r.seed} engine={r.engine} "
                 f"at {r.virtual_ms:.3f} ms virtual: outcome {', '.join(r.outcomes)}"
                 + (f" (expected {expectation_text(r.expected)})" if r.expected else "")]
        lines += [f"  {k}: {v}" for k, v in r.evidence.items()]
        lines.append("crash record: " + crash_text(r.crash).replace("\n", "\n  "))
        if r.diagnosis:
            lines.append("what went wrong:")
            lines += [f"  {ln}" for ln in r.diagnosis]
        for why in sorted(set(r.not_applicable.values())):
            lines.append(f"{why}: " + ", ".join(k for k, v in r.not_applicable.items() if v == why))
        if r.error:
            lines.append(f"engine error: {r.error}")
        if html is not None:
            item.user_properties.append(("duohil_timeline", str(html)))
            lines.append(f"timeline: {html}")
        lines.append(f"result JSON: {json_path}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(CapabilityMissing):
        rep.outcome = "skipped"
        rep.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
        return
    if rep.when not in ("setup", "call"):
        return
    duos = item.stash.get(_DUOS, [])
    opts = item.config.stash.get(_OPTIONS, None)
    if not duos or opts is None:
        return
    if rep.failed or (rep.when == "call" and opts.keep_all):
        text = _report_section(item, duos, rep.failed, opts)
        if rep.failed and text:
            rep.sections.append(("duohil", text))


def scenario_files(pattern: str = "cm*.yaml", root: Path | None = None) -> list[Path]:
    return sorted((root or scmod.REPO / "scenarios").glob(pattern))

