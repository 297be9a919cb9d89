"""Simulated UARTs as pseudo-terminals: ``duohil run|boot ... --pty stm32:usart1``.

Each ``--pty MACHINE:UART`` opens a pseudo-terminal (``os.openpty``) whose slave path
(``/dev/pts/N``) a terminal program or a pyserial script opens while the simulation runs. What the
MCU sends on that UART is written to the PTY; what the host writes is sent to the MCU through the
UART's host end (``HostUart.write``: baud-paced at the rate the firmware programmed). The UART that
joins the two MCUs can be watched (its bytes are copied out) but not written: host bytes for it are
counted and named, never put on the link.

Determinism: the run advances in chunks of ``SAMPLE_MS`` of virtual time (the status-sampling grid,
so chunking adds no scheduler step) and the PTYs are serviced between chunks. With nothing arriving
from the host the run is the one it is without ``--pty``, same fingerprint. Once a byte arrives,
host timing has entered: from then on virtual time is paced to the host clock (``--realtime``
FACTOR: virtual seconds per host second, default 1.0), chunks shrink to 1 ms so the host waits less,
and the result says the run is not reproducible (``host_timing`` in the JSON).

The slave side is kept open by duohil itself, so a client may open and close the PTY any number
of times without the master seeing a hang-up; output the host has not read waits in a bounded
buffer (``MAX_PENDING``) and what overflows it is counted.
"""
from __future__ import annotations

import argparse
import os
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engines.base import PS_PER_MS, PS_PER_S
from .errors import ConfigError

CHUNK_PS = 5 * PS_PER_MS              # duo.SAMPLE_MS: the sampling grid
PACED_CHUNK_PS = 1 * PS_PER_MS
MAX_PENDING = 1 << 16


def parse_pty(text: str) -> tuple[str, str]:
    """``stm32:usart1`` -> ("stm32", "usart1")."""
    machine, sep, uart = text.partition(":")
    if not sep or machine not in ("stm32", "peer") or not uart:
        raise ConfigError(f"{text!r}", field="--pty",
                          expected="MACHINE:UART with MACHINE stm32 or peer, e.g. stm32:usart1")
    return machine, uart


def parse_realtime(text: str | float | None) -> float:
    if text is None:
        return 1.0
    try:
        f = float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number", field="--realtime",
                          expected="virtual seconds per host second, > 0 (1.0: real time)") from None
    if not 0 < f <= 1000:
        raise ConfigError(f"{f:g}", field="--realtime",
                          expected="virtual seconds per host second, > 0 and <= 1000")
    return f


class PtyPort:
    """One UART's host end bridged to a pseudo-terminal."""

    def __init__(self, label: str, port: Any, read_only: str | None = None) -> None:
        self.label = label
        self.port = port
        self.read_only = read_only                     # why host bytes may not go to the MCU
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave, termios.TCSANOW)        # bytes pass as they are: no echo, no CR/LF
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._out = 0                                  # bytes of port.received() taken
        self._pending = bytearray()
        self.to_host = 0
        self.from_host = 0
        self.overflowed = 0
        self.refused: str | None = None                # why host bytes could not be sent
        self.refused_bytes = 0
        self.closed = False

    def pump(self) -> int:
        """Copy the MCU's new bytes out and the host's bytes in; the number of host bytes."""
        if self.closed:
            return 0
        data = self.port.received()
        if len(data) > self._out:
            self._pending += data[self._out:]
            self._out = len(data)
        if len(self._pending) > MAX_PENDING:
            drop = len(self._pending) - MAX_PENDING
            del self._pending[:drop]
            self.overflowed += drop
        while self._pending:
            try:
                n = os.write(self.master, self._pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            self.to_host += n
            del self._pending[:n]
        got = bytearray()
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        if got:
            self.from_host += len(got)
            try:
                if self.read_only:
                    raise ConfigError(self.read_only)
                self.port.write(bytes(got))
            except ConfigError as exc:
                self.refused = str(exc).split(" (")[0]
                self.refused_bytes += len(got)
        return len(got)

    def problems(self) -> list[str]:
        out = []
        if self.refused_bytes:
            out.append(f"pty {self.label}: {self.refused_bytes} byte(s) from the host not sent: "
                       f"{self.refused}")
        if self.overflowed:
            out.append(f"pty {self.label}: {self.overflowed} byte(s) to the host lost: nothing read "
                       f"the PTY and its buffer ({MAX_PENDING} bytes) was full")
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass


@dataclass
class Pacer:
    """Virtual time paced to the host clock once engaged (host timing has entered the run)."""

    factor: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    engaged_at_ps: int | None = None
    _wall0: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def engage(self, now_ps: int, why: str) -> None:
        if self.engaged_at_ps is None:
            self.engaged_at_ps = now_ps
            self._wall0 = self.clock()
        self.reasons.append(why)

    def wait(self, now_ps: int) -> None:
        if self.engaged_at_ps is None:
            return
        target = self._wall0 + (now_ps - self.engaged_at_ps) / PS_PER_S / self.factor
        delay = target - self.clock()
        if delay > 0:
            self.sleep(delay)

    def note(self) -> dict[str, Any] | None:
        """The result's ``host_timing``: None while no host timing entered the run."""
        if self.engaged_at_ps is None:
            return None
        return {"reproducible": False, "since_ms": self.engaged_at_ps / PS_PER_MS,
                "realtime": self.factor, "why": self.reasons[0]}


class ClockFile:
    """A stand-in's virtual time shared with a ``serial`` engine that follows it (``board_clock``)
    instead of the host's clock, in a 16-byte file: the stand-in's time (ps, little-endian), then
    the board time the engine has served up to, plus one (0: no engine attached). The stand-in
    runs at most ``SLACK_PS`` ahead of an attached engine, so on a machine too loaded to run both
    at their pace they slow down together (lockstep) instead of drifting apart; an engine that
    stops advancing for ``DETACH_S`` host seconds is taken as gone."""

    SLACK_PS = 2 * PS_PER_MS
    DETACH_S = 2.0

    def __init__(self, path: str) -> None:
        import mmap
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < 16:
                os.ftruncate(fd, 16)
            self.map = mmap.mmap(fd, 16)
        finally:
            os.close(fd)

    def publish(self, t_ps: int) -> None:
        self.map[0:8] = int(t_ps).to_bytes(8, "little")

    def read(self) -> int:
        return int.from_bytes(self.map[0:8], "little")

    def served(self, t_ps: int) -> None:
        """The engine side: it has served the board's time up to ``t_ps``."""
        self.map[8:16] = (int(t_ps) + 1).to_bytes(8, "little")

    def follower(self) -> int | None:
        v = int.from_bytes(self.map[8:16], "little")
        return None if v == 0 else v - 1

    def wait_for_follower(self, t_ps: int) -> None:
        """The stand-in side: before running to ``t_ps``, let an attached engine catch up."""
        last, since = self.follower(), time.monotonic()
        while True:
            f = self.follower()
            if f is None or f >= t_ps - self.SLACK_PS:
                return
            if f != last:
                last, since = f, time.monotonic()
            elif time.monotonic() - since > self.DETACH_S:
                self.map[8:16] = bytes(8)           # the engine went away: run free again
                return
            time.sleep(0.0002)

    def close(self) -> None:
        self.map.close()


class PtySet:
    """The PTYs of one run: opened on a Duo's UARTs, serviced between chunks of virtual time."""

    def __init__(self, duo: Any, specs: list[str], realtime: float = 1.0,
                 announce: Callable[[str], None] | None = print, pace_from_start: bool = False
                 ) -> None:
        self.duo = duo
        self.ports: list[PtyPort] = []
        self.pacer = Pacer(realtime)
        self.clock_file: ClockFile | None = None
        seen = set()
        try:
            for text in specs:
                machine, uart = parse_pty(text)
                if (machine, uart) in seen:
                    raise ConfigError(f"{text!r} given twice", field="--pty", expected="each UART once")
                seen.add((machine, uart))
                handle = getattr(duo.session, machine)
                if machine == "peer" and duo.spec.peer is None:
                    raise ConfigError(f"{text!r}: this run has no peer MCU", field="--pty",
                                      expected="a UART of the stm32 (the peer is absent or a script)")
                names = handle.uarts()
                if uart not in names:
                    raise ConfigError(f"{text!r}: {machine} has no UART {uart!r}", field="--pty",
                                      expected="one of " + ", ".join(f"{machine}:{n}" for n in names))
                port = handle.uart(uart)
                ro = None
                if getattr(duo.session, "driver", None) is not None and machine == "stm32" and \
                        uart == duo.spec.link_uarts[0]:
                    ro = f"stm32.{uart} is the link to the scripted peer: the host can read it only"
                self.ports.append(PtyPort(f"{machine}:{uart}", port, ro))
        except BaseException:
            self.close()
            raise
        for p in self.ports:
            if announce is not None:
                announce(f"pty {p.label}: {p.path}")
        if pace_from_start:
            self.pacer.engage(duo.now_ps, "paced to the host clock from the start (a board stand-in)")

    def pump(self) -> int:
        n = 0
        for p in self.ports:
            got = p.pump()
            if got and self.pacer.engaged_at_ps is None:
                self.pacer.engage(self.duo.now_ps, f"{got} byte(s) from the host on pty {p.label} "
                                                   f"at {self.duo.now_ps / PS_PER_MS:.3f} ms")
            n += got
        return n

    def run_until_ps(self, end_ps: int, step: Callable[[int], None] | None = None) -> None:
        """Advance the Duo to ``end_ps`` in chunks, servicing the PTYs between them."""
        advance = step or self.duo.run_until_ps
        self.pump()
        t = self.duo.now_ps
        while t < end_ps:
            chunk = PACED_CHUNK_PS if self.pacer.engaged_at_ps is not None else CHUNK_PS
            t = min(end_ps, (t // chunk + 1) * chunk)
            if self.clock_file is not None:
                self.clock_file.wait_for_follower(t)
            advance(t)
            self.pump()
            if self.clock_file is not None:
                self.clock_file.publish(t)
            self.pacer.wait(t)
        self.pump()

    def problems(self) -> list[str]:
        return [line for p in self.ports for line in p.problems()]

    def close(self) -> None:
        for p in self.ports:
            p.close()


def run_scenario(sc: Any, variant: str, ptys: list[str], *, realtime: float = 1.0,
                 seed: int | None = None, engine: str = "builtin", json_path: Any = None,
                 announce: Callable[[str], None] = print) -> Any:
    """``runner.run`` with PTYs on the given UARTs: the result says when host timing entered."""
    from .duo import Duo
    from .errors import EngineError
    from .scenario import naming_errors
    with naming_errors(sc, variant), Duo.from_scenario(sc, variant, seed=seed, engine=engine) as duo:
        ports = PtySet(duo, ptys, realtime, announce=announce)
        try:
            try:
                ports.run_until_ps(sc.duration_ps)
            except (EngineError, RuntimeError):
                pass                                 # duo.error holds it; the result reports it
            result = duo.result()
        finally:
            ports.close()
        result.host_timing = ports.pacer.note()
        result.diagnosis = list(result.diagnosis) + ports.problems()
    if json_path is not None:
        result.write(json_path)
    return result


def add_options(sp: argparse.ArgumentParser) -> None:
    """``--pty`` and ``--realtime`` for run and boot."""
    sp.add_argument("--pty", action="append", metavar="MACHINE:UART",
                    help="expose that UART as a pseudo-terminal while the run lasts (repeatable); "
                         "host input paces the run to the host clock and makes it not reproducible")
    sp.add_argument("--realtime", metavar="FACTOR",
                    help="once the host sends, virtual seconds per host second (default 1.0)")
