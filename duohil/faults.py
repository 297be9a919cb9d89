"""The fault plan: what a scenario injects, in virtual time, with seeded parameters.

A scenario lists faults; a parameter may be a fixed value or a distribution (``{uniform: [2, 50]}``,
``{randint: [0, 7]}``, ``{choice: [LEN, CRC]}``). ``realise(plan, seed)`` draws every distribution with
a generator seeded only by the run's seed and the fault's position, so the realised plan is a pure
function of (scenario, seed); it is recorded in the result so a run can be replayed exactly.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from .engines import base
from .errors import ConfigError
from .safeyaml import short

DIRECTIONS = ("peer->stm32", "stm32->peer")
FRAME_FIELDS_RE = re.compile(r"^(SOF|LEN|CRC_LO|CRC_HI|payload\[(\d+)\])$")
LINK_KINDS = ("flip", "drop", "insert", "duplicate", "delay", "truncate")

# Per kind: the capability it needs and its parameters: name -> (type, required, default, check)
_NUM = (int, float)


def _nonneg(v: Any) -> bool:
    return v >= 0


def _positive(v: Any) -> bool:
    return v > 0


def _prob(v: Any) -> bool:
    return 0 <= v <= 1


def _direction(v: Any) -> bool:
    return v in DIRECTIONS


def _frame_field(v: Any) -> bool:
    return isinstance(v, str) and FRAME_FIELDS_RE.match(v) is not None


def _bit(v: Any) -> bool:
    return isinstance(v, int) and 0 <= v <= 7


def _byte(v: Any) -> bool:
    return isinstance(v, int) and 0 <= v <= 255


KINDS: dict[str, tuple[str, dict[str, tuple[tuple, bool, Any, Any, str]]]] = {
    # GC pause: the peer CPU halts while its peripherals and the STM32 keep running.
    "peer_stall": (base.PEER_STALL, {
        "at_ms": (_NUM, False, None, _nonneg, "a time in ms >= 0"),
        "after_setpoints": (int, False, None, _positive, "a setpoint count >= 1"),
        "duration_ms": (_NUM, True, None, _positive, "a duration in ms > 0"),
    }),
    # DMA completion (flags + interrupt) delayed after the data lands.
    "dma_latency": (base.DMA_LATENCY, {
        "controller": (str, False, "dma1", lambda v: v in ("dma1", "dma2"), "dma1 or dma2"),
        "stream": (int, True, None, lambda v: 0 <= v <= 7, "a stream number 0..7"),
        "latency_us": (_NUM, True, None, _nonneg, "a latency in us >= 0"),
        "at_ms": (_NUM, False, 0, _nonneg, "a time in ms >= 0"),
    }),
    # Take an interrupt when the CPU reaches symbol+offset (interleaving sweeps).
    "irq_at": (base.IRQ_AT_PC, {
        "symbol": (str, True, None, None, "a function or label symbol of the STM32 image"),
        "offset": ((int, str), False, 0, lambda v: v == "body" or isinstance(v, int) and v >= 0,
                   "a byte offset >= 0, or body (the first instruction after the prologue's "
                   "stack allocation, found in each image)"),
        "irq": (int, True, None, lambda v: 0 <= v < 150, "an STM32 NVIC line number"),
        "nth": (int, False, 1, _positive, "which arrival at the address triggers it (1 = first)"),
        "at_ms": (_NUM, False, 0, _nonneg, "arm after this time in ms"),
        "after": (int, False, None, _nonneg,
                  "the index of an earlier irq_at fault whose firing arms this one (a chain)"),
    }),
    # An asynchronous bus error reported to the STM32 core (e.g. an AXI ECC double-bit error).
    "bus_fault": (base.CRASH_RECORD, {
        "at_ms": (_NUM, True, None, _nonneg, "a time in ms >= 0"),
        "address": (int, False, 0x24000000, _nonneg, "the address the bus error reports"),
    }),
    # Frame-aware link faults.
    "link": (base.LINK_FAULTS, {
        "action": (str, True, None, lambda v: v in LINK_KINDS, "one of " + ", ".join(LINK_KINDS)),
        "direction": (str, True, None, _direction, " or ".join(DIRECTIONS)),
        "frame": (int, True, None, _nonneg, "a frame index >= 0 (counted per direction)"),
        "field": (str, False, "LEN", _frame_field, "SOF, LEN, CRC_LO, CRC_HI or payload[i]"),
        "bit": (int, False, 0, _bit, "a bit number 0..7"),
        "value": (int, False, 0xA5, _byte, "a byte value 0..255"),
        "delay_us": (_NUM, False, 0, _nonneg, "a delay in us >= 0"),
    }),
    # Noise burst at a bit-error rate over a window.
    "noise": (base.LINK_FAULTS, {
        "direction": (str, True, None, _direction, " or ".join(DIRECTIONS)),
        "ber": (_NUM, True, None, _prob, "a bit-error rate between 0 and 1"),
        "at_ms": (_NUM, True, None, _nonneg, "a time in ms >= 0"),
        "duration_ms": (_NUM, True, None, _positive, "a duration in ms > 0"),
    }),
}


@dataclass
class Fault:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}


def capability_of(kind: str) -> str:
    return KINDS[kind][0]


def _is_distribution(v: Any) -> bool:
    return isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("uniform", "randint", "choice")


def validate_fault(raw: Any, where: str, file: str | None) -> Fault:
    """Check one fault entry; distributions are checked for shape, their draws at realise time."""
    if not isinstance(raw, dict):
        raise ConfigError("a fault must be a mapping", file=file, field=where,
                          expected="{kind: ..., parameters...}")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"unknown fault kind {short(kind)}", file=file, field=f"{where}.kind",
                          expected="one of " + ", ".join(sorted(KINDS)))
    spec = KINDS[kind][1]
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "kind":
            continue
        if key not in spec:
            raise ConfigError(f"unknown parameter {short(key)} for fault kind {kind}", file=file,
                              field=f"{where}.{key}", expected="one of " + ", ".join(sorted(spec)))
        types, _req, _default, check, expected = spec[key]
        if _is_distribution(value):
            _check_distribution(value, types, f"{where}.{key}", file)
        else:
            _check_value(value, types, check, expected, f"{where}.{key}", file)
        params[key] = value
    for key, (types, required, default, check, expected) in spec.items():
        if key not in params:
            if required:
                raise ConfigError(f"missing parameter {key!r} for fault kind {kind}", file=file,
                                  field=f"{where}.{key}", expected=expected)
            if default is not None:
                params[key] = default
    if kind == "peer_stall" and ("at_ms" in params) == ("after_setpoints" in params):
        raise ConfigError("a peer_stall needs exactly one trigger", file=file, field=where,
                          expected="either at_ms or after_setpoints")
    return Fault(kind, params)


def _check_value(value: Any, types: tuple, check: Any, expected: str, where: str,
                 file: str | None) -> None:
    if isinstance(value, bool) or not isinstance(value, types):
        raise ConfigError(f"wrong type {type(value).__name__}", file=file, field=where,
                          expected=expected)
    if check is not None and not check(value):
        raise ConfigError(f"value {short(value)} out of range", file=file, field=where, expected=expected)


def _check_distribution(dist: dict, types: tuple, where: str, file: str | None) -> None:
    (name, args), = dist.items()
    if name in ("uniform", "randint"):
        ok = (isinstance(args, list) and len(args) == 2
              and all(isinstance(a, _NUM) and not isinstance(a, bool) for a in args)
              and args[0] <= args[1])
        if name == "randint":
            ok = ok and all(isinstance(a, int) for a in args)
        if not ok:
            raise ConfigError(f"bad {name} distribution {short(args)}", file=file, field=where,
                              expected=f"{name}: [low, high] with low <= high")
    else:
        if not isinstance(args, list) or not args:
            raise ConfigError("bad choice distribution", file=file, field=where,
                              expected="choice: [a non-empty list of values]")


def realise(faults: list[Fault], seed: int) -> list[Fault]:
    """Draw every distribution. Fault i uses its own generator seeded by (seed, i), so adding a
    fault at the end never changes the draws of the ones before it."""
    out = []
    for i, f in enumerate(faults):
        rng = random.Random(seed * 1_000_003 + i)
        params = {}
        for key in sorted(f.params):
            v = f.params[key]
            if _is_distribution(v):
                (name, args), = v.items()
                if name == "uniform":
                    v = round(rng.uniform(args[0], args[1]), 6)
                elif name == "randint":
                    v = rng.randint(args[0], args[1])
                else:
                    v = rng.choice(args)
            params[key] = v
        # re-check drawn values against the kind's own checks
        out.append(validate_fault({"kind": f.kind, **params}, f"faults[{i}]", None))
    return out


def has_distributions(faults: list[Fault]) -> bool:
    return any(_is_distribution(v) for f in faults for v in f.params.values())


def describe(f: dict[str, Any]) -> str:
    """A fault in a few words: ``link flip peer->stm32 frame 60 LEN``, ``peer_stall``."""
    if f.get("kind") == "link":
        return f"link {f.get('action')} {f.get('direction')} frame {f.get('frame')} {f.get('field')}"
    if f.get("kind") == "irq_at":
        return f"irq_at {f.get('symbol')}+{f.get('offset', 0)} irq {f.get('irq')}"
    return str(f.get("kind", "?"))


def never_acted(plan: list[dict[str, Any]], events: list[tuple[Any, str, dict]],
                end_ms: float) -> list[str]:
    """One line per planned fault that never acted in a run: the engine records a ``fault`` event
    with the fault's index when it acts, and ``fault_not_applied`` (with a reason) when it
    found that it cannot (e.g. ``payload[999]`` of a 10-byte frame). A fault with neither
    waited for a trigger the run never reached (a frame, a setpoint count, an address, a time
    past the end). ``events``: (time, kind, data) as in a run's event log or timeline."""
    acted = {d.get("index") for _t, kind, d in events if kind == "fault"}
    why = {d.get("index"): d.get("reason") for _t, kind, d in events
           if kind == "fault_not_applied"}
    out = []
    for i, f in enumerate(plan):
        if i in acted:
            continue
        what = f"fault {i} ({describe(f)})"
        reason = why.get(i) or f"its trigger did not occur in the run ({end_ms:g} ms)"
        out.append(f"{what} never acted: {reason}")
    return out


def plan_as_json(faults: list[Fault]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in faults]
