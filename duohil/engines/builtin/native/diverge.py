"""Run one scenario variant under DUOHIL_MODELS=python and =native and name the first divergence.

    python -m duohil.engines.builtin.native.diverge scenarios/X.yaml [--variant V] [--seed S]

Both runs are the real run (``Duo.from_scenario`` + ``run_to_end``, as ``duohil run`` does). Compared,
in this order: the event log (first differing entry), the link tap (first differing byte), the
consoles, each machine's CPU clock and PC, then each RAM region (first differing address). Exit 0
when the runs are the same (same fingerprint), 1 with the first divergence, 2 on bad input.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from duohil.errors import ConfigError, DuohilError
from . import ENV

ORDER = ("python", "native")


def capture(sc: Any, variant: str, seed: int | None, models: str) -> dict[str, Any]:
    """One run under ``models``: what the comparison looks at."""
    from duohil.duo import Duo
    old = os.environ.get(ENV)
    os.environ[ENV] = models
    try:
        with Duo.from_scenario(sc, variant, seed=seed) as duo:
            error = None
            try:
                duo.run_to_end()
            except (DuohilError, RuntimeError) as exc:      # a crashing run is compared as far as it got
                error = f"{type(exc).__name__}: {exc}"
            s = duo.session
            out: dict[str, Any] = {
                "error": error, "now": s.now_ps, "events": s.events(), "link": s.link_bytes(),
                "console": s.console(), "fingerprint": s.fingerprint(), "cpu": {}, "mem": {}}
            for name, m in getattr(s, "_machines", {}).items():
                out["cpu"][name] = (m.cpu.cycles, m.cpu.uc.reg_read(_pc_reg(m.cpu)))
                for region, base, size in m.ram_regions():
                    out["mem"][(name, region, base)] = m.read_memory(base, size)
            return out
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def _pc_reg(cpu: Any) -> int:
    if cpu.arch == "rv32":
        from unicorn.riscv_const import UC_RISCV_REG_PC
        return UC_RISCV_REG_PC
    from unicorn.arm_const import UC_ARM_REG_PC
    return UC_ARM_REG_PC


def _first(a: list, b: list) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def first_divergence(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """A sentence naming the first difference between two captures (python ``a``, native ``b``)."""
    if a["error"] != b["error"]:
        return f"run error: python {a['error']!r}, native {b['error']!r}"
    for key, what in (("events", "event log"), ("link", "link tap"), ("console", "console")):
        i = _first(a[key], b[key])
        if i is not None:
            pa = a[key][i] if i < len(a[key]) else "(ends)"
            pb = b[key][i] if i < len(b[key]) else "(ends)"
            return f"{what} entry {i}: python {pa!r}, native {pb!r}"
    if a["now"] != b["now"]:
        return f"virtual time at the end: python {a['now']} ps, native {b['now']} ps"
    for name in a["cpu"]:
        if a["cpu"][name] != b["cpu"].get(name):
            return f"{name} CPU (cycles, pc): python {a['cpu'][name]}, native {b['cpu'].get(name)}"
    for key, mem in a["mem"].items():
        other = b["mem"].get(key)
        if other != mem:
            off = _first(list(mem), list(other or b"")) or 0
            name, region, base = key
            theirs = f"{other[off]:#04x}" if other and off < len(other) else "none"
            return (f"{name} memory {region}: first difference at {base + off:#010x} "
                    f"(python {mem[off]:#04x}, native {theirs})")
    if a["fingerprint"] != b["fingerprint"]:
        return f"fingerprint only: python {a['fingerprint']}, native {b['fingerprint']}"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duohil.engines.builtin.native.diverge",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    from duohil import scenario as scmod
    from . import core, note
    try:
        if core() is None:
            raise ConfigError(f"nothing to compare: {note()}", field=ENV, expected="a built native core")
        sc = scmod.load(args.scenario)
        variant = sc.variant(args.variant or None, "--variant")
        scmod.check_images(sc, [variant])
        runs = {m: capture(sc, variant, args.seed, m) for m in ORDER}
    except ConfigError as exc:
        print(f"diverge: error: {exc}", file=sys.stderr)
        return 2
    d = first_divergence(runs["python"], runs["native"])
    label = f"{sc.name} {variant}"
    if d is None:
        print(f"{label}: same run under python and native models "
              f"({len(runs['python']['events'])} events, {len(runs['python']['link'])} link bytes, "
              f"fingerprint {runs['python']['fingerprint'][:16]}...)")
        return 0
    print(f"{label}: first divergence: {d}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
