"""`duohil replay REPORT`: a field crash report (+ link capture) -> a scenario that reproduces it.

Decodes the report against the crashed build's ELF, infers candidate crash modes with their
evidence, writes a scenario replaying the capture plus the inferred faults (scenarios/field/ by
default), runs it on that build and says `reproduced`, `different crash` or `not reproduced` with
both signatures side by side. Exit 0 when reproduced, 1 otherwise, 2 on bad input.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import capture as capmod
from . import replay as rp
from .engines.base import PS_PER_MS
from .errors import ConfigError, EngineError
from .scenario import BUILD, NAME_RE, REPO, STM32_IMAGES

FIELD_DIR = REPO / "scenarios" / "field"


def register(sub: argparse._SubParsersAction, engine_opt: Callable[[argparse.ArgumentParser], None]
             ) -> None:
    sp = sub.add_parser("replay", help="field crash report (+ capture) -> a reproducing scenario")
    sp.add_argument("report", help="CRASHREC/HARDFAULT line, console log, g_crash_record (hex or "
                                   ".bin) or a register dump (docs/replay.md)")
    sp.add_argument("--capture", help="link capture CSV (Saleae Logic 2 / 1.x export, or time_s,dir,byte)")
    sp.add_argument("--peer-log", help="the peer's console lines with timestamps (GC pauses)")
    sp.add_argument("--elf", help="ELF of the build that crashed (default: the BOOT line's build)")
    sp.add_argument("-o", "--out", help="scenario to write (default scenarios/field/<report>.yaml)")
    sp.add_argument("--no-run", action="store_true", help="write the scenario, do not run it")
    engine_opt(sp)
    sp.set_defaults(func=cmd_replay)


def _elf_for(args: argparse.Namespace, rep: rp.FieldReport) -> Path:
    if args.elf:
        return Path(args.elf)
    if rep.build and rep.build in STM32_IMAGES:
        return BUILD / "stm32" / f"{rep.build}.elf"
    raise ConfigError("no ELF given and the report names no known build", file=rep.path, field="--elf",
                      expected="--elf <the ELF of the build that crashed>")


def cmd_replay(args: argparse.Namespace) -> int:
    rep = rp.parse_report(args.report)
    cap = capmod.read_capture(args.capture) if args.capture else None
    gc = rp.parse_peer_log(args.peer_log) if args.peer_log else []
    elf = _elf_for(args, rep)
    dec = rp.decode(rep, elf)
    print(f"report {rep.path} ({rep.form}), build {elf}")
    if dec.pc is not None:
        print(f"  {dec.exception} at {dec.pc}")
        for w in dec.words:
            print(f"    {w}")
        if dec.lr is not None:
            print(f"  lr {dec.lr}")
    elif rep.estop:
        print(f"  ESTOP reason={rep.estop} (no fault)")
    else:
        print("  no fault in the report")
    for c in dec.checks:
        print(f"  ELF check: {c}")
    cands = rp.infer(rep, dec if rep.has_fault else None, cap, gc)
    if not cands:
        print("no crash mode fits the evidence: no scenario written")
        return 1
    for c in cands:
        print(f"candidate {c.mode}:")
        for ev in c.evidence:
            print(f"  - {ev}")
    best = cands[0]
    out = Path(args.out) if args.out else FIELD_DIR / f"{rep.path.stem.replace('.', '_')}.yaml"
    name = out.stem
    if not NAME_RE.match(name):
        raise ConfigError(f"scenario name {name!r}", field="-o", expected="a file name of A-Z a-z 0-9 . _ -")
    out.parent.mkdir(parents=True, exist_ok=True)
    cap_name = f"{name}.capture.csv" if cap is not None else None
    if cap is not None:
        _write_capture(out.parent / f"{name}.capture.csv", cap, best)
    out.write_text(rp.scenario_text(name, best, rep, cap_name, rp.duration_for(cap, rep)))
    print(f"wrote {out}" + (f" and {out.parent / cap_name}" if cap_name else
                            " (no capture: the scenario runs our pooled-packed peer instead)"))
    if args.no_run:
        return 0
    verdict, field_sig, emu = run_and_compare(out, elf, rep, dec, cands, args.engine)
    print(f"{verdict}:")
    print(f"  {'field':<10} {field_sig.text()}")
    print(f"  {'emulated':<10} {emu.text()}")
    return 0 if verdict == "reproduced" else 1


def _write_capture(path: Path, cap: capmod.Capture, best: rp.Candidate) -> None:
    """The capture in the plain layout; for a corrupted LEN, the peer->STM32 bytes as the peer sent
    them (the link fault in the scenario puts the corruption back)."""
    p2s = cap.direction(capmod.P2S)
    values = [b.value for b in p2s]
    if any(f.get("kind") == "link" for f in best.faults):
        values = rp.scan_frames(p2s)[2]
    rows = [(b.t_ps, capmod.P2S, v) for b, v in zip(p2s, values)]
    rows += [(b.t_ps, capmod.S2P, b.value) for b in cap.direction(capmod.S2P)]
    rows.sort(key=lambda r: (r[0], r[1]))
    capmod.write_plain(path, rows)


def run_and_compare(path: Path, elf: Path, rep: rp.FieldReport, dec: rp.Decoded,
                    cands: list[rp.Candidate], engine: str = "builtin"
                    ) -> tuple[str, rp.Signature, rp.Signature]:
    """Run the written scenario on the crashed build; the verdict and both signatures."""
    from . import scenario as scmod
    from .duo import Duo
    sc = scmod.load(path)
    variant = elf.stem if elf.stem in STM32_IMAGES else "buggy"
    with scmod.naming_errors(sc, variant), Duo.from_scenario(sc, variant, engine=engine,
                                                             stm32=elf) as duo:
        duo.with_timeline = False
        try:
            duo.run_to_end()
        except EngineError:          # a run the engine stopped is still compared (result says so)
            pass
        result = duo.result()
        events = duo.session.events()
    field_sig = rp.field_signature(rep, dec if rep.has_fault else None, cands)
    emu = rp.run_signature(result, events, elf)
    print(f"emulated run: {', '.join(result.outcomes)} ({result.virtual_ms:.0f} ms virtual"
          f"{', fault at %.3f ms' % (events_time(events) / PS_PER_MS) if events_time(events) else ''})")
    return rp.compare(field_sig, emu), field_sig, emu


def events_time(events: list) -> int:
    return next((t for t, k, d in events if k in ("cpu_fault", "lockup")), 0)
