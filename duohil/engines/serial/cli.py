"""The serial engine's command-line side: options of `duohil run`, and `ab` refused in words."""
from __future__ import annotations

import argparse
from typing import Any

from ...errors import ConfigError
from .engine import DEFAULT_BAUD


def add_options(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("serial engine (a real board)")
    g.add_argument("--port", help="the board's link UART: duohil plays the peer on it")
    g.add_argument("--console-port", help="the board's console UART (ESTOP, HARDFAULT, BOOT lines)")
    g.add_argument("--baud", dest="serial_baud", help=f"both ports' rate (default {DEFAULT_BAUD})")
    g.add_argument("--timeout", dest="serial_timeout",
                   help="seconds to wait for a port to appear and a write to drain (default 2)")
    g.add_argument("--board-clock", metavar="FILE",
                   help="follow a stand-in's virtual time (duohil serve --clock-file FILE)")


def _number(text: str | None, option: str, kind: type, default: Any, what: str) -> Any:
    if text is None:
        return default
    try:
        v = kind(text)
    except ValueError:
        raise ConfigError(f"{text!r}", field=option, expected=what) from None
    if v <= 0:
        raise ConfigError(f"{text!r}", field=option, expected=what)
    return v


def run(args: argparse.Namespace, sc: Any, variant: str, seed: int | None) -> Any:
    """`duohil run --engine serial`: the options checked, the run made (engines/serial/run.py)."""
    from ...pty import parse_realtime
    from . import run as runmod
    if not args.port:
        raise ConfigError("no --port", field="--port",
                          expected="the board's link UART, e.g. --port /dev/ttyUSB0")
    if not args.variant:
        raise ConfigError("no --variant", field="--variant",
                          expected="the build flashed on the board (buggy, fixed, fixed-no-<fix>)")
    baud = _number(args.serial_baud, "--baud", int, DEFAULT_BAUD, "a positive integer rate")
    timeout = _number(args.serial_timeout, "--timeout", float, 2.0, "seconds > 0")
    return runmod.run(sc, variant, port=args.port, console_port=args.console_port, baud=baud,
                      realtime=parse_realtime(args.realtime), timeout=timeout, seed=seed,
                      json_path=args.json, board_clock=args.board_clock)


def refuse_ab(scenario: str) -> None:
    """`ab` needs three builds on the board in turn; the serial engine cannot flash them."""
    from ... import scenario as scmod
    sc = scmod.load(scenario)
    steps = "; ".join(f"flash {v}, then duohil run {scenario} --engine serial --port PORT "
                      f"--variant {v}" for v in sc.ab_variants())
    raise ConfigError("the serial engine cannot switch the board's firmware", field="--engine",
                      expected=f"one run per build: {steps}")
