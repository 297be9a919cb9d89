"""`duohil boot ELF`: the first five minutes with your own image.

Boots one ELF alone on a platform (ours by default: the STM32H743; a RISC-V ELF gets the peer's
platform), sends what ``--send`` says at the virtual times it says, runs ``--ms`` of virtual time,
then prints every UART's output and how the core ended: the pc as function + file:line, faults
decoded in words, a poll loop with the register it polls, baud mismatches and dropped characters.
Exit 0 unless the core locked up, halted or is stuck in a fault handler (1); bad input exits 2.
"""
from __future__ import annotations

import argparse
import codecs
import time
from collections.abc import Callable
from pathlib import Path

from . import diagnose
from .engines import base
from .errors import ConfigError, EngineError

DEFAULT_MS = 100.0


def parse_send(text: str) -> tuple[str, bytes, float]:
    """``usart3:hello\\r\\n@5`` -> ("usart3", b"hello\\r\\n", 5.0); backslash escapes as in Python."""
    uart, sep, rest = text.partition(":")
    if not sep or not uart:
        raise ConfigError(f"{text!r}", field="--send", expected="UART:TEXT@MS, e.g. usart3:hi\\n@5")
    body, at, ms = rest.rpartition("@")
    if not at:
        body, ms = rest, "0"
    try:
        when = float(ms)
    except ValueError:
        raise ConfigError(f"{text!r}: {ms!r} is not a time in ms", field="--send",
                          expected="UART:TEXT@MS, e.g. usart3:hi\\n@5") from None
    if when < 0:
        raise ConfigError(f"{text!r}: time {when:g} ms", field="--send",
                          expected="a virtual time >= 0 ms")
    try:
        data = codecs.decode(body, "unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise ConfigError(f"{text!r}: {exc.reason}", field="--send",
                          expected="text with Python escapes (\\n, \\r, \\x21), 8-bit only") from None
    return uart, data, when


def parse_baud(text: str) -> tuple[str, int]:
    """``usart3:9600`` -> ("usart3", 9600): the host terminal's rate on that UART."""
    uart, sep, rate = text.partition(":")
    if not sep or not rate.isdigit() or int(rate) <= 0:
        raise ConfigError(f"{text!r}", field="--baud", expected="UART:RATE, e.g. usart3:115200")
    return uart, int(rate)


def uart_text(data: bytes) -> list[str]:
    """A UART's bytes as lines; bytes that are not printable ASCII shown as \\xNN."""
    out = []
    for raw in data.split(b"\n"):
        out.append("".join(chr(c) if 32 <= c < 127 else f"\\x{c:02x}" for c in raw.rstrip(b"\r")))
    if out and out[-1] == "":
        out.pop()
    return out


def boot(elf: str, platform: str | None = None, ms: float = DEFAULT_MS,
         sends: list[tuple[str, bytes, float]] | None = None, engine: str = "builtin",
         bauds: dict[str, int] | None = None, out: Callable[[str], None] = print,
         ptys: list[str] | None = None, realtime: float = 1.0) -> int:
    """Boot ``elf`` alone, print what happened; the exit code (0 ok, 1 the core is dead)."""
    from .duo import PEER_PLATFORM, Duo
    from .engines.builtin.loaders.elf import read_elf
    if ms <= 0:
        raise ConfigError(f"--ms {ms:g}", field="--ms", expected="a virtual time > 0 ms")
    path = Path(elf)
    riscv = read_elf(path).machine == "EM_RISCV"          # a missing file: one clear error
    if platform is None and riscv:
        platform = str(PEER_PLATFORM)
    label = "rv32" if riscv else "stm32"   # the one machine runs in the Duo's stm32 slot
    if platform is not None and not Path(platform).is_file():
        raise ConfigError(f"platform file {platform} not found", field="--platform",
                          expected="a .repl file (e.g. platforms/stm32h743.repl)")
    w0 = time.perf_counter()
    duo = Duo.start(stm32=path.resolve(), peer=None, engine=engine, stm32_platform=platform)
    with duo:
        handle = duo.session.stm32
        ports = {name: duo.stm32.uart(name) for name in handle.uarts()}
        for uart, data, when in sends or []:
            if uart not in ports:
                raise ConfigError(f"no UART {uart!r} on this platform", field="--send",
                                  expected="one of " + ", ".join(ports))
            port, baud = ports[uart], (bauds or {}).get(uart)
            duo.session.at(round(when * base.PS_PER_MS),
                           lambda p=port, d=data, b=baud: p.write(d, baud=b), name=f"send.{uart}")
        error = None
        ptyset = None
        if ptys:                                  # duohil.pty: UARTs as pseudo-terminals
            from .pty import PtySet
            ptyset = PtySet(duo, ptys, realtime, announce=out)
        try:
            if ptyset is not None:
                ptyset.run_until_ps(duo.now_ps + round(ms * base.PS_PER_MS))
            else:
                duo.run(ms=ms)
        except (EngineError, RuntimeError) as exc:
            error = str(exc)
        finally:
            if ptyset is not None:
                ptyset.close()
        out(f"boot {path} on {duo.spec.stm32.platform.name}: {duo.now_ms:g} ms of virtual time "
            f"({time.perf_counter() - w0:.1f} s wall)")
        for name, port in ports.items():
            data = port.received()
            if not data:
                continue
            out(f"{name} ({len(data)} bytes):")
            for line in uart_text(data):
                out(f"  {line}")
        if not any(p.received() for p in ports.values()):
            out("no UART sent anything")
        state = handle.cpu_state()
        out(diagnose.end_state(label, handle, duo.spec.stm32.elf, state, duo.now_ps))
        for line in duo.diagnosis():
            if " end state at " not in line:
                out(label + line[len("stm32"):] if line.startswith("stm32") else line)
        if ptyset is not None:
            for line in ptyset.problems():
                out(line)
            note = ptyset.pacer.note()
            if note:
                out(f"not reproducible: host timing entered ({note['why']})")
        if error:
            out(f"engine error: {error}")
            return 1
        dead = diagnose.fatal(state)
        if dead:
            out(f"the core is {dead}: exit 1")
            return 1
        return 0


def cmd_boot(args: argparse.Namespace) -> int:
    sends = [parse_send(s) for s in args.send or []]
    bauds = dict(parse_baud(b) for b in args.baud or [])
    from . import pty as ptymod
    return boot(args.elf, platform=args.platform, ms=args.ms, sends=sends, engine=args.engine,
                bauds=bauds, ptys=args.pty, realtime=ptymod.parse_realtime(args.realtime),
                out=lambda s: print(s, flush=True))


def register(sub: argparse._SubParsersAction, engine_opt: Callable[[argparse.ArgumentParser], None]
             ) -> None:
    sp = sub.add_parser("boot", help="boot one ELF alone, print its UARTs and how it ended")
    sp.add_argument("elf", help="the firmware image (any STM32H7 ELF; no duohil symbols needed)")
    sp.add_argument("--platform", help="a .repl platform file (default: platforms/stm32h743.repl)")
    sp.add_argument("--ms", type=float, default=DEFAULT_MS,
                    help=f"virtual time to run, in ms (default {DEFAULT_MS:g})")
    sp.add_argument("--send", action="append", metavar="UART:TEXT@MS",
                    help="send TEXT (Python escapes) to UART at virtual time MS; repeatable")
    sp.add_argument("--baud", action="append", metavar="UART:RATE",
                    help="send on UART at RATE baud (default: the rate the firmware programmed)")
    engine_opt(sp)
    from . import pty as ptymod
    ptymod.add_options(sp)
    sp.set_defaults(func=cmd_boot)
