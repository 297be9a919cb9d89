"""One scenario run on a real board (the ``serial`` engine) and its verdict.

The scenario's faults are realised with the seed as in every engine; those a board cannot take
(dma_latency, irq_at, dcache, bus_fault, ...) make the run CapabilityMissing before a port is
opened. Plant parameters are the simulation's: the board drives its own motor, so they are set
aside (and said). The oracles that read RAM do not apply; ``desync`` is judged here from the
telemetry instead (``wire_desync``): after a link fault, the STM32's last accepted setpoint
(``last_seq`` in its telemetry) must not stand still while the peer sends more than
``max_frames_lost`` setpoints.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ... import faults as faultmod
from ... import oracle, protocol
from ...duo import CapabilityMissing, Duo, RunResult, spec_for
from ...errors import EngineError
from ...scenario import Scenario, naming_errors
from ..base import PS_PER_MS
from .engine import SerialEngine, script_for


def _link_fault_end(faults: list[dict[str, Any]]) -> int | None:
    """When the last planned fault that could disturb the STM32's decoder ended (ps): link and
    noise faults on the peer->STM32 wire (a fault on the other wire is no evidence)."""
    ts = [f["t_ps"] + int(f.get("duration_ms", 0) * PS_PER_MS) for f in faults
          if f.get("kind") in ("link", "noise") and "t_ps" in f
          and f.get("direction", "peer->stm32") == "peer->stm32"]
    return max(ts) if ts else None


def wire_desync(link: list[Any], faults: list[dict[str, Any]], layout: str,
                params: dict[str, Any]) -> str | None:
    """desync from the telemetry: the STM32's last accepted setpoint stood still after a link
    fault while the peer sent more than ``max_frames_lost`` setpoints."""
    p = dict(oracle.DEFAULTS) | dict(params or {})
    t_fault = _link_fault_end(faults)
    if t_fault is None:
        return None
    tm = []
    for t, pl in oracle.sender_frames(link, "stm32->peer"):
        if pl and pl[0] == protocol.MSG_TELEMETRY:
            try:
                tm.append((t, protocol.Telemetry.decode(pl).last_seq))
            except ValueError:
                continue
    sent = [t for t, pl in oracle.sender_frames(link, "peer->stm32")
            if pl and pl[0] == protocol.MSG_SETPOINT]
    settle = p["settle_ms"] * PS_PER_MS
    i = 0
    while i < len(tm):
        j = i
        while j + 1 < len(tm) and tm[j + 1][1] == tm[i][1]:
            j += 1
        t0, t1 = tm[i][0], tm[j][0]
        if t1 > t_fault:
            n = sum(1 for t in sent if t0 < t <= t1 - settle)
            if n > p["max_frames_lost"]:
                return (f"(telemetry) the STM32's last accepted setpoint stayed at seq {tm[i][1]} "
                        f"from {t0 / PS_PER_MS:.3f} to {t1 / PS_PER_MS:.3f} ms, after the link fault "
                        f"at {t_fault / PS_PER_MS:.3f} ms, while the peer sent {n} setpoints "
                        f"(bound {p['max_frames_lost']})")
        i = j + 1
    return None


def run(sc: Scenario, variant: str, *, port: str, console_port: str | None = None,
        baud: int = 115200, realtime: float = 1.0, timeout: float = 2.0, seed: int | None = None,
        json_path: str | Path | None = None, board_clock: str | None = None) -> RunResult:
    """Run ``sc`` against the board (``variant`` names what is flashed); the result keeps what
    was observed even when a port goes away."""
    seed = sc.seed if seed is None else seed
    notes = []
    if sc.plant:
        notes.append("plant parameters set aside: the board drives its own motor "
                     f"({', '.join(f'{k}={v}' for k, v in sc.plant.items())})")
    board = dataclasses.replace(sc, plant={})
    cfg = sc.config_for("stm32", variant)
    if cfg:
        notes.append("the board was not configured by duohil: its image must be built with "
                     + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    spec = spec_for(board, variant, seed, sc.quantum_ps)
    script = getattr(sc, "peer_script", None) or script_for(spec)
    engine = SerialEngine(port=port, console_port=console_port, baud=baud, timeout=timeout,
                          realtime=realtime, script=script, board_clock=board_clock)
    plan = faultmod.realise(sc.faults, seed)
    missing = sorted({faultmod.capability_of(f.kind) for f in plan} - engine.capabilities
                     | set(sc.requires) - engine.capabilities - {"plant"})
    if missing:
        raise CapabilityMissing("serial", missing, what=f"scenario {sc.name}")
    try:
        with naming_errors(sc, variant):
            duo = Duo(engine, spec, engine_name="serial", scenario=sc, variant=variant,
                      oracle_params=sc.oracle)
    except EngineError as exc:              # a port absent or busy: nothing ran; say so in the JSON too
        if json_path is not None:
            RunResult(scenario=sc.name, scenario_path=str(sc.path), crash_mode=sc.crash_mode,
                      variant=variant, seed=seed, engine="serial", quantum_us=sc.quantum_us,
                      outcomes=[], evidence={}, expected=sc.expect.get(variant), matches=None,
                      fault_plan=[], crash=None, counters={}, fingerprint="", virtual_ms=0.0,
                      wall_s=0.0, error=str(exc), diagnosis=notes).write(json_path)
        raise
    with duo:
        for f in plan:
            duo._inject_fault(f)
        try:
            duo.run_to_end()
        except (EngineError, RuntimeError):
            pass                                   # duo.error holds it; the result keeps the rest
        result = duo.result()
        why = wire_desync(duo.session.link_bytes(), result.fault_plan, script.layout, sc.oracle)
        if why is not None:
            labels = [lab for lab in result.outcomes if lab != "ok"]
            if result.error and labels == ["hang"] and result.evidence.get("hang", "").startswith(
                    "the engine stopped"):
                labels = []
            result.outcomes = labels + ["desync"]
            result.evidence["desync"] = why
            if result.expected is not None:
                result.matches = oracle.matches(oracle.Verdict(result.outcomes, result.evidence),
                                                result.expected)
        result.not_applicable.pop("desync", None)          # judged here, from the telemetry
        result.host_timing = {"reproducible": False, "since_ms": 0.0, "realtime": realtime,
                              "why": f"a real board on {port}: its clock is the host's"
                              if not board_clock else
                              f"a stand-in on {port}: its clock ({board_clock}) and the host's "
                              f"scheduling"}
        result.diagnosis = notes + list(result.diagnosis)
    if json_path is not None:
        result.write(json_path)
    return result
