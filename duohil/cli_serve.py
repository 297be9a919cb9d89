"""`duohil serve stm32 --variant V --pty-link --pty-console`: a board stand-in.

The builtin engine's STM32 alone (no peer), its link UART and console UART exposed as two
pseudo-terminals, paced to the host clock from the start (``--realtime``), running until it is
stopped (Ctrl-C, a signal) or ``--ms`` of virtual time have passed. It prints the PTY paths first:

    link: /dev/pts/5
    console: /dev/pts/6

so the ``serial`` engine (or a terminal, or a team's own host tool) can be pointed at it as at a
real board: ``duohil run S --engine serial --port /dev/pts/5 --console-port /dev/pts/6``.
``--scenario S`` flashes the stand-in as the scenario's board would be: its STM32 config block and
its plant parameters (a real board's image and motor are its own). ``--clock-file F`` publishes
its virtual time for a serial engine started with ``--board-clock F``: on a machine too loaded to
run the simulation at its pace the engine follows the stand-in's clock and slows down with it.
"""
from __future__ import annotations

import argparse
import signal
from collections.abc import Callable

from .engines import base
from .errors import ConfigError


def serve(variant: str, *, pty_link: bool, pty_console: bool, realtime: float = 1.0,
          ms: float | None = None, scenario: str | None = None, clock_file: str | None = None,
          out: Callable[[str], None] = print) -> int:
    from . import scenario as scmod
    from .duo import Duo
    from .pty import PtySet
    if not (pty_link or pty_console):
        raise ConfigError("nothing to serve", field="--pty-link/--pty-console",
                          expected="at least one of --pty-link, --pty-console")
    config, plant = {}, None
    if scenario:
        sc = scmod.load(scenario)
        config = {"stm32": sc.config_for("stm32", variant)} if sc.config_for("stm32", variant) else {}
        plant = dict(sc.plant) or None
    if ms is not None and ms <= 0:
        raise ConfigError(f"--ms {ms:g}", field="--ms", expected="a virtual time > 0 ms")
    duo = Duo.start(stm32=variant, peer=None, config=config, plant=plant)
    with duo:
        link, console = duo.spec.link_uarts[0], duo.spec.console_uarts[0]
        names = ([f"stm32:{link}"] if pty_link else []) + ([f"stm32:{console}"] if pty_console else [])
        lines: list[str] = []
        ptys = PtySet(duo, names, realtime, announce=lines.append, pace_from_start=True)
        if clock_file:
            from .pty import ClockFile
            ptys.clock_file = ClockFile(clock_file)
        try:
            for p in ptys.ports:
                role = "link" if p.label.endswith(link) else "console"
                out(f"{role}: {p.path}")
            out(f"serving {duo.spec.stm32.elf.name} at realtime {realtime:g} (Ctrl-C stops)")
            end = None if ms is None else round(ms * base.PS_PER_MS)
            stop = [False]

            def on_signal(_sig: int, _frame: object) -> None:
                stop[0] = True
            signal.signal(signal.SIGTERM, on_signal)
            try:
                while not stop[0] and (end is None or duo.now_ps < end):
                    t = duo.now_ps + 10 * base.PS_PER_MS
                    ptys.run_until_ps(t if end is None else min(t, end))
            except KeyboardInterrupt:
                pass
        finally:
            ptys.close()
        out(f"served {duo.now_ms:.1f} ms of virtual time")
        for line in duo.diagnosis():
            out(line)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .pty import parse_realtime
    return serve(args.variant, pty_link=args.pty_link, pty_console=args.pty_console,
                 realtime=parse_realtime(args.realtime), ms=args.ms, scenario=args.scenario,
                 clock_file=args.clock_file, out=lambda s: print(s, flush=True))


def register(sub: argparse._SubParsersAction, engine_opt: Callable[[argparse.ArgumentParser], None]
             ) -> None:
    sp = sub.add_parser("serve", help="a board stand-in: the simulated STM32's UARTs as PTYs")
    sp.add_argument("machine", choices=["stm32"], help="what to serve (the STM32 alone)")
    sp.add_argument("--variant", default="fixed", help="the build to run (default fixed) or an ELF")
    sp.add_argument("--pty-link", action="store_true", help="expose the link UART (usart3) as a PTY")
    sp.add_argument("--pty-console", action="store_true",
                    help="expose the console UART (usart1) as a PTY")
    sp.add_argument("--realtime", metavar="FACTOR",
                    help="virtual seconds per host second (default 1.0)")
    sp.add_argument("--ms", type=float, help="stop after this much virtual time (default: never)")
    sp.add_argument("--scenario", help="configure the STM32 and plant as this scenario's board")
    sp.add_argument("--clock-file", help="publish the virtual time here (8 bytes, ps) for a serial "
                                         "engine run with --board-clock (a loaded test machine)")
    sp.set_defaults(func=cmd_serve)

