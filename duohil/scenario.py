"""Scenario files (scenarios/*.yaml): the schema, its validation, and the variants of an A/B run.

A scenario names both firmware images, the run's duration, quantum and seed, config-block overrides,
plant parameters, the fault plan and the expected outcome per variant. Every mistake is reported as
one ConfigError naming the file, the field and what was expected (the CLI exits 2), never a traceback.
docs/scenarios.md documents the schema for users.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import faults as faultmod
from . import safeyaml
from .engines import base
from .errors import ConfigError
from .protocol import MAX_PAYLOAD
from .safeyaml import key_text, short

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"

FIXES = ("cmd_timeout", "resync", "dcache", "atomic", "stack", "layout", "fault_handler")
CRASH_MODES = {"CM1": "cmd_timeout", "CM2": "resync", "CM3": "dcache", "CM4": "atomic",
               "CM5": "stack", "CM6": "layout", "CM7": "fault_handler"}
OUTCOMES = ("ok", "runaway", "estop", "hardfault", "hang", "desync", "misparse", "stale",
            "stack_overflow", "peer_fault")
PEER_IMAGES = ("gc-natural", "gc-packed", "pooled-natural", "pooled-packed")
STM32_IMAGES = ("buggy", "fixed") + tuple(f"fixed-no-{f}" for f in FIXES)

# Upper bounds (docs/scenarios.md): a run is virtual time the host must simulate, so a typo of a
# few zeros must be an error, not a run of days. Raise them here if a real test needs more.
MAX_DURATION_MS = 600_000          # 10 minutes of virtual time per run
MAX_QUANTUM_US = 10_000.0          # a CPU slice of at most 10 ms ...
MIN_QUANTUM_PS = 1                 # ... and at least 1 ps (virtual time is integer picoseconds)
MAX_SEED = 2**32 - 1               # a scenario's seed and a campaign's base seed
MAX_RUN_SEED = 2**64 - 1           # any one run's seed (covers every campaign trial's seed)
MAX_COUNT = 1_000_000              # frame indexes, setpoint counts, nth arrival, frames lost
MAX_FAULTS = 256                   # faults in one plan
MAX_OFFSET = 0x10000               # irq_at byte offset into a function
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")    # names that become file names

_TOP = {
    "name": (str, True), "crash_mode": (str, True), "title": (str, False),
    "description": (str, False), "fix": (str, False), "requires": (list, False),
    "duration_ms": ((int, float), True), "quantum_us": ((int, float), False),
    "seed": (int, False), "stm32": (dict, False), "peer": ((dict, str, type(None)), False),
    "plant": (dict, False),
    "faults": (list, False), "expect": (dict, True), "oracle": (dict, False),
    "variants": (dict, False), "on_hang": (str, False), "hang_window_ms": ((int, float), False),
}
MAX_HANG_WINDOW_MS = 60_000        # a masked spin this long is a hang whatever the firmware
#: what a run does once the engine reports a CPU hung or stopped (cpu_hung / cpu_stopped):
#: go on in virtual time with that core stopped, or end the run there with its partial result
ON_HANG = ("fast_forward", "stop")
_MACHINE = {"image": (str, False), "config": (dict, False)}
_ORACLE = {
    "recovery_ms": (int, float), "max_frames_lost": int, "hang_ms": (int, float),
    "desync_ms": (int, float), "stack_limit": int, "settle_ms": (int, float),
}


@dataclass
class MachinePart:
    image: str | None = None                     # variant name or a path
    config: dict[str, int] = field(default_factory=dict)


@dataclass
class Scenario:
    path: Path
    name: str
    crash_mode: str                              # "CM1".."CM7" or "nominal"
    duration_ms: float
    expect: dict[str, Any]                       # variant -> labels, or {any: [...], none: [...]}
    title: str = ""
    description: str = ""
    fix: str | None = None
    requires: list[str] = field(default_factory=list)
    quantum_us: float = 10.0
    seed: int = 0
    stm32: MachinePart = field(default_factory=MachinePart)
    peer: MachinePart = field(default_factory=lambda: MachinePart(image="pooled-packed"))
    plant: dict[str, Any] = field(default_factory=dict)
    faults: list[faultmod.Fault] = field(default_factory=list)
    oracle: dict[str, Any] = field(default_factory=dict)
    # per-variant overrides of stm32/peer parts (e.g. CM6 pairs the fixed STM32 with a peer image)
    variants: dict[str, dict[str, MachinePart]] = field(default_factory=dict)
    peer_none: bool = False                      # `peer: none`: the STM32 image runs alone
    #: `peer: {replay: capture.csv, offset_ms: 0}`: a recorded peer (duohil replay), its
    #: peer->STM32 bytes as (start time ps, byte); the file is relative to the scenario file
    peer_replay: tuple[tuple[int, int], ...] | None = None
    replay_file: str | None = None
    #: `peer: {script: packed|natural, ...}`: the peer is duohil.peer_script (no peer image)
    peer_script: Any = None
    on_hang: str = "fast_forward"                # ON_HANG
    #: how long a CPU spins with interrupts masked before it is hung (None: limits.HANG_PS)
    hang_window_ms: float | None = None

    @property
    def quantum_ps(self) -> int:
        return int(round(self.quantum_us * base.PS_PER_US))

    @property
    def duration_ps(self) -> int:
        return int(round(self.duration_ms * base.PS_PER_MS))

    def ab_variants(self) -> list[str]:
        """buggy, fixed and fixed-no-<fix>: the three runs of an A/B verdict."""
        if self.fix is None:
            return ["fixed"]
        return ["buggy", "fixed", f"fixed-no-{self.fix}"]

    def variant(self, name: str | None, field: str = "variant") -> str:
        """``name`` checked against the variants this scenario can run (its A/B variants and
        ``fixed``); None means its default, ``buggy`` for a crash mode, else ``fixed``. ``field``
        is what an error names (``--variant`` on the command line)."""
        if name is None:
            return "buggy" if self.fix else "fixed"
        valid = set(self.ab_variants()) | {"fixed"}
        if name not in valid:
            raise ConfigError(f"unknown variant {name!r} for scenario {self.name}", file=self.path,
                              field=field, expected="one of " + ", ".join(sorted(valid)))
        return name

    def stm32_image(self, variant: str) -> Path:
        part = self.variants.get(variant, {}).get("stm32") or self.stm32
        return _image_path(part.image or variant, "stm32", self.path)

    def peer_image(self, variant: str) -> Path | None:
        """The peer's ELF for ``variant``; None for ``peer: none`` (no peer in the run)."""
        part = self.variants.get(variant, {}).get("peer")
        if part is None and self.peer_none:
            return None
        part = part or self.peer
        return _image_path(part.image or "pooled-packed", "esp32", self.path)

    def config_for(self, machine: str, variant: str) -> dict[str, int]:
        part = getattr(self, machine)
        cfg = dict(part.config)
        over = self.variants.get(variant, {}).get(machine)
        if over is not None:
            cfg.update(over.config)
        return cfg


def _image_path(image: str, sub: str, scenario_path: Path) -> Path:
    """A build name is build/<sub>/<name>.elf; a path to an .elf is taken as written when
    absolute, else relative to the scenario file's directory (as includes are), so a scenario and
    its images can move together and the working directory never matters."""
    p = Path(image)
    if p.suffix == ".elf":
        return p if p.is_absolute() else (scenario_path.parent / p)
    return BUILD / sub / f"{image}.elf"


def _type_name(t: Any) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", bool: "true/false", type(None): "none"}.get(t, t.__name__)


def _check_type(value: Any, t: Any, file: Path, where: str) -> None:
    if isinstance(value, bool) and t is not bool and not (isinstance(t, tuple) and bool in t):
        raise ConfigError("wrong type bool", file=file, field=where, expected=_type_name(t))
    if not isinstance(value, t):
        raise ConfigError(f"wrong type {type(value).__name__}", file=file, field=where,
                          expected=_type_name(t))


def _machine_part(raw: Any, file: Path, where: str) -> MachinePart:
    _check_type(raw, dict, file, where)
    for k in raw:
        if k not in _MACHINE:
            raise ConfigError(f"unknown key {short(k)}", file=file, field=f"{where}.{key_text(k)}",
                              expected="one of " + ", ".join(_MACHINE))
    part = MachinePart()
    if "image" in raw:
        _check_type(raw["image"], str, file, f"{where}.image")
        part.image = raw["image"]
    cfg = raw.get("config", {})
    _check_type(cfg, dict, file, f"{where}.config")
    for k, v in cfg.items():
        _check_type(k, str, file, f"{where}.config")
        _check_type(v, int, file, f"{where}.config.{k}")
        _within(v, -2**63, 2**64 - 1, file, f"{where}.config.{k}", "an integer that fits in 64 bits")
    part.config = dict(cfg)
    return part


# -- bounds and shapes (hostile input: docs/scenarios.md "Limits") --------------------------------

def _non_finite(raw: Any, where: str, file: Path, depth: int = 0) -> None:
    """.nan and .inf anywhere (a duration, a quantum, a fault or oracle parameter, a distribution
    bound) are errors naming the field: no time or count is infinite or undefined."""
    if depth > safeyaml.MAX_DEPTH:
        raise ConfigError("nested too deeply", file=file, field=where,
                          expected=f"at most {safeyaml.MAX_DEPTH} levels")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ConfigError(f"{raw} is not a finite number", file=file, field=where,
                          expected="a finite number")
    if isinstance(raw, dict):
        for k, v in raw.items():
            _non_finite(v, f"{where}.{key_text(k)}" if where else key_text(k), file, depth + 1)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            _non_finite(v, f"{where}[{i}]", file, depth + 1)


def _within(value: Any, lo: float, hi: float, file: Path, where: str, expected: str,
            lo_open: bool = False) -> None:
    """A number between lo and hi (an int of any size is compared exactly, never converted)."""
    below = value <= lo if lo_open else value < lo
    if below or value > hi:
        raise ConfigError(f"value {short(value)} out of range", file=file, field=where,
                          expected=expected)


def _check_top(raw: dict, path: Path) -> None:
    """Top-level values whose type is right but whose value would hurt: a name that would become a
    path outside the output directory, a non-finite or unbounded time, a sub-picosecond quantum."""
    _non_finite(raw, "", path)
    if not NAME_RE.match(raw["name"]):
        raise ConfigError(f"name {short(raw['name'])} cannot be used in file names", file=path,
                          field="name", expected="1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -")
    _within(raw["duration_ms"], 0, MAX_DURATION_MS, path, "duration_ms",
            f"a number of ms > 0 and <= {MAX_DURATION_MS}", lo_open=True)
    if "quantum_us" in raw:
        q = raw["quantum_us"]
        _within(q, 0, MAX_QUANTUM_US, path, "quantum_us",
                f"a number of us, at least 1 ps (0.000001) and <= {MAX_QUANTUM_US:g}", lo_open=True)
        if round(q * base.PS_PER_US) < MIN_QUANTUM_PS:
            raise ConfigError(f"a quantum of {q:g} us is below 1 ps", file=path, field="quantum_us",
                              expected="at least 0.000001 us (virtual time is integer picoseconds)")
    if "seed" in raw:
        _within(raw["seed"], 0, MAX_SEED, path, "seed", f"an integer 0..{MAX_SEED}")
    for i, cap in enumerate(raw.get("requires", [])):
        if not isinstance(cap, str):
            raise ConfigError(f"wrong type {type(cap).__name__}", file=path, field=f"requires[{i}]",
                              expected="a capability name (a string)")
    for k, v in raw.get("plant", {}).items():
        if not isinstance(k, str):
            raise ConfigError(f"wrong type {type(k).__name__}", file=path, field="plant",
                              expected="parameter names (strings)")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            _within(v, -1e12, 1e12, path, f"plant.{k}", "a number of magnitude <= 1e12")
    n = len(raw.get("faults", []))
    if n > MAX_FAULTS:
        raise ConfigError(f"{n} faults", file=path, field="faults", expected=f"at most {MAX_FAULTS}")


def _check_fault_entries(raw: list, path: Path) -> None:
    """What faults.validate_fault assumes of an entry: a mapping whose kind is a string."""
    for i, f in enumerate(raw):
        if isinstance(f, dict) and "kind" in f and not isinstance(f["kind"], str):
            raise ConfigError(f"wrong type {type(f['kind']).__name__}", file=path,
                              field=f"faults[{i}].kind", expected="a fault kind name (a string)")


#: per fault parameter: the largest value it may take, and in what unit (counts and lengths;
#: fault times must lie before the run's end, checked separately)
_FAULT_MAX = {
    "duration_ms": (MAX_DURATION_MS, "ms"), "latency_us": (MAX_DURATION_MS * 1000, "us"),
    "delay_us": (MAX_DURATION_MS * 1000, "us"), "frame": (MAX_COUNT, ""),
    "after_setpoints": (MAX_COUNT, ""), "nth": (MAX_COUNT, ""), "address": (0xFFFFFFFF, ""),
}


def _check_fault_bounds(fs: list[faultmod.Fault], path: Path) -> None:
    """Every value a fault parameter can take (a fixed value, both ends of a range, each choice)
    passes the kind's own check and the bounds above, at load time: a drawn value out of range
    would otherwise surface mid-campaign without the file's name. A frame field past the longest
    payload, and a chain to a fault that is not an earlier irq_at, can never act: errors too."""
    for i, f in enumerate(fs):
        spec = faultmod.KINDS[f.kind][1]
        for key, v in f.params.items():
            where = f"faults[{i}].{key}"
            types, _req, _default, check, expected = spec[key]
            if faultmod._is_distribution(v):
                (dname, args), = v.items()
                values = args if dname == "choice" else [args[0], args[1]]
            else:
                values = [v]
            for x in values:
                faultmod._check_value(x, types, check, expected, where, str(path))
                if key in _FAULT_MAX and isinstance(x, (int, float)):
                    hi, unit = _FAULT_MAX[key]
                    _within(x, 0, hi, path, where, f"{expected}, at most {hi}{(' ' + unit) if unit else ''}")
                if key == "offset" and isinstance(x, int):
                    _within(x, 0, MAX_OFFSET, path, where, f"a byte offset 0..{MAX_OFFSET} or body")
                if key == "field" and isinstance(x, str):
                    m = faultmod.FRAME_FIELDS_RE.match(x)
                    if m and m.group(2) is not None and int(m.group(2)) >= MAX_PAYLOAD:
                        raise ConfigError(f"{short(x)} can never exist: a frame carries at most "
                                          f"{MAX_PAYLOAD} payload bytes", file=path, field=where,
                                          expected=f"payload[0] .. payload[{MAX_PAYLOAD - 1}]")
        after = f.params.get("after")
        if after is not None and not (isinstance(after, int) and after < i
                                      and fs[after].kind == "irq_at"):
            raise ConfigError(f"the chain refers to fault {short(after)}, which is not an earlier "
                              f"irq_at fault", file=path, field=f"faults[{i}].after",
                              expected=f"the index of an irq_at fault before this one (< {i})")


_ORACLE_LIMITS = {
    # name: (lowest, lowest excluded, highest)
    "recovery_ms": (0, True, MAX_DURATION_MS), "hang_ms": (0, True, MAX_DURATION_MS),
    "desync_ms": (0, True, MAX_DURATION_MS), "settle_ms": (0, False, MAX_DURATION_MS),
    "max_frames_lost": (0, False, MAX_COUNT), "stack_limit": (0, False, 0xFFFFFFFF),
}


def _check_oracle_value(k: str, v: Any, path: Path) -> None:
    lo, lo_open, hi = _ORACLE_LIMITS[k]
    _within(v, lo, hi, path, f"oracle.{k}",
            f"{'> ' if lo_open else '>= '}{lo} and <= {hi}" + (" ms" if k.endswith("_ms") else ""),
            lo_open=lo_open)


def _check_image_names(sc: Scenario, path: Path) -> None:
    """An image is a known build name or a path to an .elf: nothing else reaches a path."""
    parts = [("stm32", sc.stm32), ("peer", sc.peer)] + [
        (f"variants.{v}.{m}", p) for v, ps in sc.variants.items() for m, p in ps.items()]
    for where, part in parts:
        image = getattr(part, "image", None)          # a machine may be absent (no part at all)
        if not isinstance(image, str) or image.endswith(".elf"):
            continue
        stm32 = where.endswith("stm32")
        known = STM32_IMAGES if stm32 else PEER_IMAGES
        if image not in known:
            raise ConfigError(f"unknown {'stm32' if stm32 else 'peer'} image {short(image)}",
                              file=path, field=f"{where}.image",
                              expected="one of " + ", ".join(known) + " or a path to an .elf")


def content_hash(sc: Scenario) -> str:
    """sha256 of what the scenario makes a run do (everything but its path, title and
    description): two campaign shards belong together only if this is equal, whatever the
    scenarios' names."""
    def part(p: Any) -> Any:
        return None if p is None else [getattr(p, "image", None), getattr(p, "config", None)]

    doc = {
        "name": sc.name, "crash_mode": sc.crash_mode, "fix": sc.fix, "requires": sc.requires,
        "duration_ms": sc.duration_ms, "quantum_us": sc.quantum_us, "seed": sc.seed,
        "stm32": part(sc.stm32), "peer": part(sc.peer),
        "plant": sc.plant, "faults": faultmod.plan_as_json(sc.faults), "oracle": sc.oracle,
        "variants": {v: {m: part(p) for m, p in ps.items()}
                     for v, ps in sc.variants.items()},
        "expect": sc.expect,
    }
    if sc.on_hang != "fast_forward":    # where the run ends (the default keeps older hashes)
        doc["on_hang"] = sc.on_hang
    if sc.hang_window_ms is not None:
        doc["hang_window_ms"] = sc.hang_window_ms
    if sc.peer_replay:                  # a recorded peer: what it replays is part of the run
        doc["replay"] = hashlib.sha256(repr(sc.peer_replay).encode()).hexdigest()
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def load(path: str | Path) -> Scenario:
    path = Path(path)
    if not path.exists():
        raise ConfigError("scenario file not found", file=path, expected="a YAML file")
    raw = safeyaml.load_file(path, "a scenario YAML file")       # size, depth, aliases, UTF-8
    return from_dict(raw, path)


def from_dict(raw: Any, path: Path) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError("a scenario must be a mapping at the top level", file=path,
                          expected="keys such as name, crash_mode, duration_ms, expect")
    for k, v in raw.items():
        if k not in _TOP:
            raise ConfigError(f"unknown key {short(k)}", file=path, field=key_text(k),
                              expected="one of " + ", ".join(_TOP))
        _check_type(v, _TOP[k][0], path, k)
    for k, (_t, req) in _TOP.items():
        if req and k not in raw:
            raise ConfigError("missing required key", file=path, field=k,
                              expected=_type_name(_t))
    _check_top(raw, path)
    sc = Scenario(path=path, name=raw["name"], crash_mode=raw["crash_mode"],
                  duration_ms=float(raw["duration_ms"]), expect={})
    if sc.crash_mode not in CRASH_MODES and sc.crash_mode != "nominal":
        raise ConfigError(f"unknown crash mode {short(sc.crash_mode)}", file=path, field="crash_mode",
                          expected="CM1..CM7 or nominal")
    if sc.duration_ms <= 0:
        raise ConfigError("duration must be positive", file=path, field="duration_ms",
                          expected="a number of ms > 0")
    sc.on_hang = raw.get("on_hang", "fast_forward")
    if sc.on_hang not in ON_HANG:
        raise ConfigError(f"unknown on_hang {short(sc.on_hang)}", file=path, field="on_hang",
                          expected="fast_forward or stop")
    if "hang_window_ms" in raw:
        _within(raw["hang_window_ms"], 0, MAX_HANG_WINDOW_MS, path, "hang_window_ms",
                f"a number of ms > 0 and <= {MAX_HANG_WINDOW_MS}", lo_open=True)
        sc.hang_window_ms = float(raw["hang_window_ms"])
    sc.title = raw.get("title", "")
    sc.description = raw.get("description", "")
    if sc.crash_mode != "nominal":
        fix = raw.get("fix", CRASH_MODES[sc.crash_mode])
        if fix not in FIXES:
            raise ConfigError(f"unknown fix {short(fix)}", file=path, field="fix",
                              expected="one of " + ", ".join(FIXES))
        sc.fix = fix
    elif "fix" in raw:
        raise ConfigError("a nominal scenario proves no fix", file=path, field="fix",
                          expected="no fix key for crash_mode: nominal")
    req = raw.get("requires", [])
    for i, cap in enumerate(req):
        if not isinstance(cap, str) or cap not in base.ALL_CAPABILITIES:
            raise ConfigError(f"unknown capability {short(cap)}", file=path, field=f"requires[{i}]",
                              expected="one of " + ", ".join(sorted(base.ALL_CAPABILITIES)))
    sc.quantum_us = float(raw.get("quantum_us", 10))
    if sc.quantum_us <= 0:
        raise ConfigError("quantum must be positive", file=path, field="quantum_us",
                          expected="a number of us > 0")
    sc.seed = raw.get("seed", 0)
    if sc.seed < 0:
        raise ConfigError("seed must be >= 0", file=path, field="seed", expected="an integer >= 0")
    if "stm32" in raw:
        sc.stm32 = _machine_part(raw["stm32"], path, "stm32")
    if "peer" in raw and (raw["peer"] is None or isinstance(raw["peer"], str)):
        if raw["peer"] not in (None, "none"):
            raise ConfigError(f"peer: {raw['peer']!r}", file=path, field="peer",
                              expected="a mapping (image, config) or none (the STM32 alone)")
        sc.peer_none = True
    elif isinstance(raw.get("peer"), dict) and "replay" in raw["peer"]:
        _replay_part(sc, raw["peer"], path)
    elif isinstance(raw["peer"] if "peer" in raw else None, dict) and "script" in raw["peer"]:
        from .peer_script import parse_spec
        sc.peer_script = parse_spec(raw["peer"], path, "peer")
        sc.peer_none = True                      # no peer image: the script plays the peer
    elif "peer" in raw:
        sc.peer = _machine_part(raw["peer"], path, "peer")
        if sc.peer.image is None:
            sc.peer.image = "pooled-packed"
    if sc.peer.image and not sc.peer.image.endswith(".elf") and sc.peer.image not in PEER_IMAGES:
        raise ConfigError(f"unknown peer image {short(sc.peer.image)}", file=path, field="peer.image",
                          expected="one of " + ", ".join(PEER_IMAGES) + " or a path to an .elf")
    sc.plant = dict(raw.get("plant", {}))
    for k, v in sc.plant.items():
        _check_type(v, (int, float), path, f"plant.{k}")
    _check_fault_entries(raw.get("faults", []), path)
    sc.faults = [faultmod.validate_fault(f, f"faults[{i}]", str(path))
                 for i, f in enumerate(raw.get("faults", []))]
    _check_fault_bounds(sc.faults, path)
    for i, f in enumerate(sc.faults):
        latest = _latest(f.params.get("at_ms"))
        if latest is not None and latest >= sc.duration_ms:
            raise ConfigError(f"the fault could never act: at_ms reaches {latest:g}, the run ends at "
                              f"{sc.duration_ms:g}", file=path, field=f"faults[{i}].at_ms",
                              expected=f"times before duration_ms ({sc.duration_ms:g})")
    caps = set(sc.requires) | {faultmod.capability_of(f.kind) for f in sc.faults}
    sc.requires = sorted(set(req) | caps | ({base.LINK_REPLAY} if sc.peer_replay else set()))
    oracle = raw.get("oracle", {})
    for k, v in oracle.items():
        if k not in _ORACLE:
            raise ConfigError(f"unknown oracle parameter {short(k)}", file=path,
                              field=f"oracle.{key_text(k)}", expected="one of " + ", ".join(_ORACLE))
        _check_type(v, _ORACLE[k], path, f"oracle.{k}")
        _check_oracle_value(k, v, path)
    sc.oracle = dict(oracle)
    valid_variants = set(sc.ab_variants()) | {"fixed"}
    for variant, parts in raw.get("variants", {}).items():
        if variant not in valid_variants:
            raise ConfigError(f"unknown variant {short(variant)}", file=path,
                              field=f"variants.{key_text(variant)}",
                              expected="one of " + ", ".join(sorted(valid_variants)))
        _check_type(parts, dict, path, f"variants.{variant}")
        sc.variants[variant] = {}
        for m, part in parts.items():
            if m not in ("stm32", "peer"):
                raise ConfigError(f"unknown machine {short(m)}", file=path,
                                  field=f"variants.{variant}.{key_text(m)}",
                                  expected="stm32 or peer")
            sc.variants[variant][m] = _machine_part(part, path, f"variants.{variant}.{m}")
    for variant, want in raw["expect"].items():
        if variant not in valid_variants:
            raise ConfigError(f"unknown variant {short(variant)}", file=path,
                              field=f"expect.{key_text(variant)}",
                              expected="one of " + ", ".join(sorted(valid_variants)))
        sc.expect[variant] = _expectation(want, path, f"expect.{variant}")
    _check_image_names(sc, path)
    for variant in sc.ab_variants():
        if variant not in sc.expect:
            raise ConfigError(f"no expected outcome for variant {variant}", file=path,
                              field=f"expect.{variant}", expected="an outcome label or list")
    # plant parameters, or an expectation about runaways (the plant's end stops), need a plant
    said = [lab for want in sc.expect.values()
            for labs in (want.values() if isinstance(want, dict) else [want]) for lab in labs]
    if sc.plant or "runaway" in said:
        sc.requires = sorted(set(sc.requires) | {base.PLANT})
    return sc


def _replay_part(sc: Scenario, raw: dict, path: Path) -> None:
    """``peer: {replay: FILE, offset_ms: N}``: the peer replaced by a capture of its bytes."""
    from .capture import replay_schedule
    for k in raw:
        if k not in ("replay", "offset_ms"):
            raise ConfigError(f"unknown key {short(k)}", file=path, field=f"peer.{key_text(k)}",
                              expected="replay and optionally offset_ms")
    name, offset = raw["replay"], raw.get("offset_ms", 0)
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ConfigError(f"replay {short(name)}", file=path, field="peer.replay",
                          expected="a capture file next to the scenario (a relative path, no ..)")
    _check_type(offset, (int, float), path, "peer.offset_ms")
    if not math.isfinite(offset) or abs(offset) > MAX_DURATION_MS:
        raise ConfigError(f"offset_ms {short(offset)}", file=path, field="peer.offset_ms",
                          expected=f"a finite shift within +-{MAX_DURATION_MS} ms")
    capture = path.parent / name
    if not capture.is_file():
        raise ConfigError(f"capture {capture} not found", file=path, field="peer.replay",
                          expected="a capture file (relative to the scenario file's directory)")
    sc.peer_none = True
    sc.replay_file = name
    sc.peer_replay = replay_schedule(capture, float(offset), path, "peer.replay")


def _latest(v: Any) -> float | None:
    """The latest value a fault time can take: the number, or a distribution's upper end."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dict) and len(v) == 1:
        (name, args), = v.items()
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)] \
            if isinstance(args, list) else []
        if name in ("uniform", "randint") and len(nums) == 2:
            return float(nums[1])
        if name == "choice" and nums:
            return float(max(nums))
    return None


def _labels(want: Any, path: Path, where: str) -> list[str]:
    labels = [want] if isinstance(want, str) else want
    if not isinstance(labels, list) or not labels:
        raise ConfigError("expected outcome must be a label or a non-empty list of labels",
                          file=path, field=where, expected="e.g. ok or [runaway, estop]")
    for lab in labels:
        if lab not in OUTCOMES:
            raise ConfigError(f"unknown outcome {short(lab)}", file=path, field=where,
                              expected="one of " + ", ".join(OUTCOMES))
    return list(labels)


def _expectation(want: Any, path: Path, where: str) -> "list[str] | dict[str, list[str]]":
    """A label, a list of labels (any of them), or {any: [...], none: [...]}."""
    if isinstance(want, dict):
        for k in want:
            if k not in ("any", "none"):
                raise ConfigError(f"unknown key {short(k)}", file=path, field=f"{where}.{key_text(k)}",
                                  expected="any and/or none")
        if not want:
            raise ConfigError("empty expectation", file=path, field=where,
                              expected="{any: [...], none: [...]}")
        return {k: _labels(v, path, f"{where}.{k}") for k, v in want.items()}
    return _labels(want, path, where)


def check_images(sc: Scenario, variants: list[str]) -> None:
    """A missing image is a clear error naming the scenario and the file to build."""
    for v in variants:
        for machine, img in (("stm32", sc.stm32_image(v)), ("peer", sc.peer_image(v))):
            if img is not None and not img.is_file():
                over = sc.variants.get(v, {}).get(machine)
                where = f"variants.{v}.{machine}.image" if over is not None and over.image \
                    else f"{machine}.image"
                built = img.is_relative_to(BUILD)
                raise ConfigError(f"firmware image {img} for variant {v} is missing", file=sc.path,
                                  field=where, expected="a built image (run `make firmware`)" if built
                                  else "an existing .elf (a relative path is relative to the "
                                       "scenario file's directory)")


def blame(sc: Scenario, variant: str, exc: ConfigError) -> ConfigError:
    """The same error, naming the scenario file and the scenario field that caused it: an unknown
    config field or symbol is found while loading the image, so the error first names the ELF,
    which the user did not write; the ELF stays in the message."""
    if exc.file == str(sc.path):
        return exc
    machine = next((m for m, img in (("stm32", sc.stm32_image(variant)),
                                     ("peer", sc.peer_image(variant)))
                    if exc.file is not None and Path(exc.file) == img), None)
    where = exc.field
    if where and not where.startswith(("faults[", "stm32.", "peer.", "plant.", "oracle.")):
        head = where.split(".")[0]
        over = sc.variants.get(variant, {})
        symbols = [i for i, f in enumerate(sc.faults)
                   if f.kind == "irq_at" and f"'{f.params.get('symbol')}'" in exc.detail]
        if machine and head in sc.config_for(machine, variant):
            part = f"variants.{variant}.{machine}" if head in getattr(over.get(machine), "config", {}) \
                else machine
            where = f"{part}.config.{where}"
        elif where == "symbol" and symbols:
            where = f"faults[{symbols[0]}].symbol"
        elif exc.file is None and head in sc.plant:
            where = f"plant.{where}"
    detail = exc.detail
    if exc.file is not None:
        detail = f"{machine + ' image ' if machine else ''}{Path(exc.file).name}: {detail}"
    return ConfigError(detail, file=sc.path, field=where, expected=exc.expected)


class naming_errors:
    """``with naming_errors(sc, variant):`` re-raises a ConfigError of a run with ``blame``."""

    def __init__(self, sc: Scenario, variant: str) -> None:
        self.sc, self.variant = sc, variant

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, ConfigError) and exc.file != str(self.sc.path):
            raise blame(self.sc, self.variant, exc) from None
        return False
