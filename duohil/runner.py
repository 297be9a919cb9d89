"""One run and one A/B verdict: scenario -> engine -> observations -> oracle -> result.

The runner is engine-neutral: it talks to ``duohil.engines.base`` only. Wall time is measured
around a run for the report and never enters it; the fingerprint covers virtual state only.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import crash, faults, oracle
from .engines import base, registry
from .errors import ConfigError, DuohilError, EngineError
from .scenario import REPO, Scenario

STM32_PLATFORM = REPO / "platforms" / "stm32h743.repl"
PEER_PLATFORM = REPO / "platforms" / "esp32c3_peer.repl"
SAMPLE_MS = 5.0
STATUS_KEYS = ("setpoints", "last_seq", "sp_seq", "sp_velocity", "sp_flags", "sensor_reports",
               "sensor_id", "sensor_temp", "sensor_status", "sensor_flags", "frames_ok",
               "crc_errors", "rejected", "estops", "state", "position", "stack_high_water",
               "stack_guard_trips", "stale_setpoints", "overruns")
CRASH_MAGICS = (0x43525348, 0x43525352)


class CapabilityMissing(DuohilError):
    """The engine lacks a capability the scenario needs: the run is skipped with this reason."""

    def __init__(self, engine: str, missing: list[str]) -> None:
        self.engine = engine
        self.missing = missing
        super().__init__(f"engine {engine} lacks capability {', '.join(missing)}")


@dataclass
class RunResult:
    scenario: str
    scenario_path: str
    crash_mode: str
    variant: str
    seed: int
    engine: str
    quantum_us: float
    outcomes: list[str]
    evidence: dict[str, str]
    expected: list[str] | None
    matches: bool | None
    fault_plan: list[dict[str, Any]]
    crash: dict[str, Any] | None
    counters: dict[str, dict[str, Any]]
    fingerprint: str
    virtual_ms: float
    wall_s: float
    console: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    timeline: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        labels = ", ".join(self.outcomes)
        first = next(iter(self.evidence.values()), "")
        return f"{self.scenario} [{self.variant}] seed={self.seed}: {labels}" + \
            (f" ({first})" if first else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def spec_for(sc: Scenario, variant: str, seed: int, quantum_ps: int | None = None) -> base.RunSpec:
    return base.RunSpec(
        stm32=base.MachineSpec(STM32_PLATFORM, sc.stm32_image(variant), "g_config",
                               sc.config_for("stm32", variant)),
        peer=base.MachineSpec(PEER_PLATFORM, sc.peer_image(variant), "g_peer_config",
                              sc.config_for("peer", variant)),
        quantum_ps=quantum_ps or sc.quantum_ps, seed=seed)


def _pick(block: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: block[k] for k in keys if k in block}


def run(sc: Scenario, variant: str, *, seed: int | None = None, engine: str = "builtin",
        quantum_us: float | None = None, json_path: str | Path | None = None,
        engine_options: dict[str, Any] | None = None) -> RunResult:
    """Execute one variant of a scenario. A crashing run still returns (and writes) its result:
    whatever was observed before the engine failed is kept, with the error."""
    seed = sc.seed if seed is None else seed
    eng = registry.get_engine(engine, **({"plant": sc.plant} | (engine_options or {})))
    missing = eng.missing(sc.requires)
    if missing:
        raise CapabilityMissing(engine, missing)
    plan = faults.realise(sc.faults, seed)
    q_ps = int(round(quantum_us * base.PS_PER_US)) if quantum_us else sc.quantum_ps
    spec = spec_for(sc, variant, seed, q_ps)
    wall0 = time.perf_counter()
    session = eng.start(spec)
    obs = oracle.Observations(duration_ps=sc.duration_ps,
                              peer_layout="natural" if "natural" in spec.peer.elf.name else "packed")
    samples: dict[str, list] = {"stm32": [], "peer": []}
    realised: list[dict[str, Any]] = []
    error = None
    try:
        for f in plan:
            t = session.inject(f)
            entry = f.to_dict()
            if t is not None:
                entry["t_ps"] = t
            realised.append(entry)

        step = int(SAMPLE_MS * base.PS_PER_MS)

        def sample() -> None:
            now = session.now_ps
            for name, handle, sym in (("stm32", session.stm32, "g_status"),
                                      ("peer", session.peer, "g_peer_status")):
                try:
                    samples[name].append((now, handle.read_block(sym)))
                except ConfigError:
                    pass
            if now + step <= sc.duration_ps:
                session.at(now + step, sample, name="sample")

        session.at(step, sample, name="sample")
        session.run_until(sc.duration_ps)
    except (EngineError, RuntimeError) as exc:      # keep what was observed
        error = f"{type(exc).__name__}: {exc}"
    except ConfigError:
        session.close()
        raise
    wall = time.perf_counter() - wall0
    try:
        obs.console = {"stm32": session.stm32.console(), "peer": session.peer.console()}
        obs.link = session.link_bytes()
        obs.events = session.events()
        for f in realised:                    # faults whose time became known while running
            for t, kind, d in obs.events:
                if kind == "fault" and d.get("index") == realised.index(f) and "t_ps" not in f:
                    f["t_ps"] = t
        obs.samples = {k: [(t, _pick(s, STATUS_KEYS)) for t, s in v] for k, v in samples.items()}
        obs.faults = realised
        obs.error = error
        final = {}
        for name, handle, sym in (("stm32", session.stm32, "g_status"),
                                  ("peer", session.peer, "g_peer_status")):
            try:
                final[name] = handle.read_block(sym)
            except ConfigError:
                final[name] = {}
        st = final.get("stm32", {})
        if st.get("stack_size"):
            obs.stack = {"size": st["stack_size"], "high_water": st.get("stack_high_water", 0)}
        crash_json = _crash(session, spec, obs)
        verdict = oracle.classify(obs, sc.oracle)
        fp = session.fingerprint()
        extras = session.observations()
    finally:
        session.close()
    expected = sc.expect.get(variant)
    result = RunResult(
        scenario=sc.name, scenario_path=str(sc.path), crash_mode=sc.crash_mode, variant=variant,
        seed=seed, engine=engine, quantum_us=q_ps / base.PS_PER_US, outcomes=verdict.labels,
        evidence=verdict.evidence, expected=expected,
        matches=None if expected is None else oracle.matches(verdict, expected),
        fault_plan=realised, crash=crash_json, counters=final, fingerprint=fp,
        virtual_ms=sc.duration_ps / base.PS_PER_MS, wall_s=round(wall, 3),
        console={k: [f"{ln.t_ps / base.PS_PER_MS:10.3f} {ln.text}" for ln in v]
                 for k, v in obs.console.items()},
        error=error, timeline=_timeline(obs, extras))
    if json_path is not None:
        result.write(json_path)
    return result


def _crash(session: base.Session, spec: base.RunSpec, obs: oracle.Observations) -> dict | None:
    """The STM32 crash record if the firmware wrote one, else the CPU's own fault entry."""
    try:
        rec = session.stm32.read_block("g_crash_record")
    except ConfigError:
        rec = {}
    if rec.get("magic") in CRASH_MAGICS and rec.get("count", 0) > 0:
        names = {3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault", 0x100: "StackGuard"}
        rep = crash.decode_cortexm(rec, spec.stm32.elf,
                                   exception=names.get(rec.get("exception", 3), "fault"))
        return rep.to_json() | {"source": "crash_record"}
    for t, kind, d in obs.events:
        if kind in oracle.FAULT_EVENTS and d.get("machine", "stm32") == "stm32" and "pc" in d:
            rep = crash.decode_cortexm(d, spec.stm32.elf, exception=d.get("exception", "HardFault"))
            return rep.to_json() | {"source": "cpu", "t_ms": t / base.PS_PER_MS}
    try:
        prec = session.peer.read_block("g_peer_crash")
    except ConfigError:
        prec = {}
    if prec.get("magic") == 0x53524350:
        return crash.decode_riscv(prec, spec.peer.elf).to_json() | {"source": "peer_crash"}
    return None


def _timeline(obs: oracle.Observations, extras: dict[str, Any]) -> dict[str, Any]:
    """Compact data for the HTML report: frames per direction, faults, plant position, console."""
    frames = {}
    for d in ("peer->stm32", "stm32->peer"):
        frames[d] = [(round(t / base.PS_PER_MS, 3), p[0] if p else None)
                     for t, p in oracle.sender_frames(obs.link, d)]
    return {
        "frames": frames,
        "faults": obs.faults,
        "events": [(round(t / base.PS_PER_MS, 3), k, d) for t, k, d in obs.events],
        "plant": extras.get("plant", []),
    }


@dataclass
class AbResult:
    scenario: str
    seed: int
    runs: list[RunResult]

    @property
    def passed(self) -> bool:
        return all(r.matches for r in self.runs)

    def verdict_lines(self) -> list[str]:
        out = []
        for r in self.runs:
            crashed = r.outcomes != ["ok"]
            if r.variant == "fixed":
                what = "holds on fixed" if not crashed else f"CRASHES on fixed: {', '.join(r.outcomes)}"
            else:
                label = next((lab for lab in r.outcomes if lab in (r.expected or [])),
                             r.outcomes[0])
                when = r.evidence.get(label, "")
                what = (f"reproduces on {r.variant}: {label}" + (f" ({when})" if when else "")
                        if crashed else f"does NOT reproduce on {r.variant}")
            mark = "ok " if r.matches else "BAD"
            out.append(f"[{mark}] {what}")
        return out


def ab(sc: Scenario, *, seed: int | None = None, engine: str = "builtin",
       json_dir: str | Path | None = None) -> AbResult:
    seed = sc.seed if seed is None else seed
    runs = []
    for variant in sc.ab_variants():
        path = None if json_dir is None else Path(json_dir) / f"{sc.name}-{variant}-s{seed}.json"
        runs.append(run(sc, variant, seed=seed, engine=engine, json_path=path))
    return AbResult(sc.name, seed, runs)
