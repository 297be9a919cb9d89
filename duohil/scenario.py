"""Scenario files (scenarios/*.yaml): the schema, its validation, and the variants of an A/B run.

A scenario names both firmware images, the run's duration, quantum and seed, config-block overrides,
plant parameters, the fault plan and the expected outcome per variant. Every mistake is reported as
one ConfigError naming the file, the field and what was expected (the CLI exits 2), never a traceback.
docs/scenarios.md documents the schema for users.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import faults as faultmod
from .engines import base
from .errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"

FIXES = ("cmd_timeout", "resync", "dcache", "atomic", "stack", "layout", "fault_handler")
CRASH_MODES = {"CM1": "cmd_timeout", "CM2": "resync", "CM3": "dcache", "CM4": "atomic",
               "CM5": "stack", "CM6": "layout", "CM7": "fault_handler"}
OUTCOMES = ("ok", "runaway", "estop", "hardfault", "hang", "desync", "misparse", "stale",
            "stack_overflow", "peer_fault")
PEER_IMAGES = ("gc-natural", "gc-packed", "pooled-natural", "pooled-packed")

_TOP = {
    "name": (str, True), "crash_mode": (str, True), "title": (str, False),
    "description": (str, False), "fix": (str, False), "requires": (list, False),
    "duration_ms": ((int, float), True), "quantum_us": ((int, float), False),
    "seed": (int, False), "stm32": (dict, False), "peer": (dict, False), "plant": (dict, False),
    "faults": (list, False), "expect": (dict, True), "oracle": (dict, False),
    "variants": (dict, False),
}
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

    def stm32_image(self, variant: str) -> Path:
        part = self.variants.get(variant, {}).get("stm32") or self.stm32
        return _image_path(part.image or variant, "stm32", self.path)

    def peer_image(self, variant: str) -> Path:
        part = self.variants.get(variant, {}).get("peer") or self.peer
        return _image_path(part.image or "pooled-packed", "esp32", self.path)

    def config_for(self, machine: str, variant: str) -> dict[str, int]:
        part = getattr(self, machine)
        cfg = dict(part.config)
        over = self.variants.get(variant, {}).get(machine)
        if over is not None:
            cfg.update(over.config)
        return cfg


def _image_path(image: str, sub: str, scenario_path: Path) -> Path:
    p = Path(image)
    if p.suffix == ".elf":
        return p if p.is_absolute() else (REPO / p)
    return BUILD / sub / f"{image}.elf"


def _type_name(t: Any) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", bool: "true/false"}.get(t, t.__name__)


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
            raise ConfigError(f"unknown key {k!r}", file=file, field=f"{where}.{k}",
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
    part.config = dict(cfg)
    return part


def load(path: str | Path) -> Scenario:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("scenario file not found", file=path, expected="a YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=path,
                          line=line) from None
    return from_dict(raw, path)


def from_dict(raw: Any, path: Path) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError("a scenario must be a mapping at the top level", file=path,
                          expected="keys such as name, crash_mode, duration_ms, expect")
    for k, v in raw.items():
        if k not in _TOP:
            raise ConfigError(f"unknown key {k!r}", file=path, field=str(k),
                              expected="one of " + ", ".join(_TOP))
        _check_type(v, _TOP[k][0], path, k)
    for k, (_t, req) in _TOP.items():
        if req and k not in raw:
            raise ConfigError("missing required key", file=path, field=k,
                              expected=_type_name(_t))
    sc = Scenario(path=path, name=raw["name"], crash_mode=raw["crash_mode"],
                  duration_ms=float(raw["duration_ms"]), expect={})
    if sc.crash_mode not in CRASH_MODES and sc.crash_mode != "nominal":
        raise ConfigError(f"unknown crash mode {sc.crash_mode!r}", file=path, field="crash_mode",
                          expected="CM1..CM7 or nominal")
    if sc.duration_ms <= 0:
        raise ConfigError("duration must be positive", file=path, field="duration_ms",
                          expected="a number of ms > 0")
    sc.title = raw.get("title", "")
    sc.description = raw.get("description", "")
    if sc.crash_mode != "nominal":
        fix = raw.get("fix", CRASH_MODES[sc.crash_mode])
        if fix not in FIXES:
            raise ConfigError(f"unknown fix {fix!r}", file=path, field="fix",
                              expected="one of " + ", ".join(FIXES))
        sc.fix = fix
    elif "fix" in raw:
        raise ConfigError("a nominal scenario proves no fix", file=path, field="fix",
                          expected="no fix key for crash_mode: nominal")
    req = raw.get("requires", [])
    for i, cap in enumerate(req):
        if cap not in base.ALL_CAPABILITIES:
            raise ConfigError(f"unknown capability {cap!r}", file=path, field=f"requires[{i}]",
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
    if "peer" in raw:
        sc.peer = _machine_part(raw["peer"], path, "peer")
        if sc.peer.image is None:
            sc.peer.image = "pooled-packed"
    if sc.peer.image and not sc.peer.image.endswith(".elf") and sc.peer.image not in PEER_IMAGES:
        raise ConfigError(f"unknown peer image {sc.peer.image!r}", file=path, field="peer.image",
                          expected="one of " + ", ".join(PEER_IMAGES) + " or a path to an .elf")
    sc.plant = dict(raw.get("plant", {}))
    for k, v in sc.plant.items():
        _check_type(v, (int, float), path, f"plant.{k}")
    sc.faults = [faultmod.validate_fault(f, f"faults[{i}]", str(path))
                 for i, f in enumerate(raw.get("faults", []))]
    for i, f in enumerate(sc.faults):
        latest = _latest(f.params.get("at_ms"))
        if latest is not None and latest >= sc.duration_ms:
            raise ConfigError(f"the fault could never act: at_ms reaches {latest:g}, the run ends at "
                              f"{sc.duration_ms:g}", file=path, field=f"faults[{i}].at_ms",
                              expected=f"times before duration_ms ({sc.duration_ms:g})")
    caps = set(sc.requires) | {faultmod.capability_of(f.kind) for f in sc.faults}
    sc.requires = sorted(set(req) | caps)
    oracle = raw.get("oracle", {})
    for k, v in oracle.items():
        if k not in _ORACLE:
            raise ConfigError(f"unknown oracle parameter {k!r}", file=path, field=f"oracle.{k}",
                              expected="one of " + ", ".join(_ORACLE))
        _check_type(v, _ORACLE[k], path, f"oracle.{k}")
    sc.oracle = dict(oracle)
    valid_variants = set(sc.ab_variants()) | {"fixed"}
    for variant, parts in raw.get("variants", {}).items():
        if variant not in valid_variants:
            raise ConfigError(f"unknown variant {variant!r}", file=path, field=f"variants.{variant}",
                              expected="one of " + ", ".join(sorted(valid_variants)))
        _check_type(parts, dict, path, f"variants.{variant}")
        sc.variants[variant] = {}
        for m, part in parts.items():
            if m not in ("stm32", "peer"):
                raise ConfigError(f"unknown machine {m!r}", file=path, field=f"variants.{variant}.{m}",
                                  expected="stm32 or peer")
            sc.variants[variant][m] = _machine_part(part, path, f"variants.{variant}.{m}")
    for variant, want in raw["expect"].items():
        if variant not in valid_variants:
            raise ConfigError(f"unknown variant {variant!r}", file=path, field=f"expect.{variant}",
                              expected="one of " + ", ".join(sorted(valid_variants)))
        sc.expect[variant] = _expectation(want, path, f"expect.{variant}")
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
            raise ConfigError(f"unknown outcome {lab!r}", file=path, field=where,
                              expected="one of " + ", ".join(OUTCOMES))
    return list(labels)


def _expectation(want: Any, path: Path, where: str) -> "list[str] | dict[str, list[str]]":
    """A label, a list of labels (any of them), or {any: [...], none: [...]}."""
    if isinstance(want, dict):
        for k in want:
            if k not in ("any", "none"):
                raise ConfigError(f"unknown key {k!r}", file=path, field=f"{where}.{k}",
                                  expected="any and/or none")
        if not want:
            raise ConfigError("empty expectation", file=path, field=where,
                              expected="{any: [...], none: [...]}")
        return {k: _labels(v, path, f"{where}.{k}") for k, v in want.items()}
    return _labels(want, path, where)


def check_images(sc: Scenario, variants: list[str]) -> None:
    """A missing image is a clear error naming the scenario and the file to build."""
    for v in variants:
        for img in (sc.stm32_image(v), sc.peer_image(v)):
            if not img.is_file():
                raise ConfigError(f"firmware image {img} for variant {v} is missing", file=sc.path,
                                  field="stm32.image" if "stm32" in str(img) else "peer.image",
                                  expected="a built image (run `make firmware`)")
