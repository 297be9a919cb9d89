"""The ``serial`` engine: the STM32 firmware runs on a real board; duohil plays the peer.

    duohil run scenarios/cm1_cmd_timeout.yaml --engine serial --port /dev/ttyUSB0 \\
        --console-port /dev/ttyUSB1 --variant buggy

The scripted peer (``duohil.peer_script``) speaks the protocol over ``--port`` (the board's link
UART, pyserial at ``--baud``), on the host clock: one pass of its loop per millisecond. Link
faults (flip, drop, insert, duplicate, truncate, noise) are applied on the host side of that wire,
frame-aware, in either direction; ``peer_stall`` stops the script (a GC pause). The board's console
is read from ``--console-port`` as timestamped lines. Outcomes come from what can be seen from
outside: the console (``ESTOP``, ``HARDFAULT``, ``BOOT``), the telemetry the board sends and the
wire itself; the oracles that read RAM (``g_status``) do not apply, and this engine adds a
telemetry-based ``desync`` (``wire_desync``).

Time: virtual time is the host's monotonic clock since the session started, times ``realtime``
(1.0 for a real board; a board stand-in paced faster or slower passes its factor). Nothing is
reproducible: the result says so (``host_timing``). The engine cannot flash firmware: ``--variant``
names what is on the board, and the scenario's STM32 config must be built into that image.

Port errors are one line each (EngineError): a port that does not exist, one another program
holds (opened exclusively), and one that goes away mid-run; a run that loses its port keeps
everything observed until then.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import time
from typing import Any, Callable

from ...errors import ConfigError, EngineError
from ...peer_script import PEER_FAULTS, PeerScript, ScriptDriver, ScriptPeerHandle, ScriptSpec
from ..base import (LINK_FAULTS, PEER_STALL, PS_PER_MS, PS_PER_S, ConsoleLine, Engine, MachineHandle,
                    RunSpec)

DEFAULT_BAUD = 115200
#: engine options (``duohil engines`` prints them; the CLI passes them as --port, ...)
OPTIONS = {
    "port": "the board's link UART (e.g. /dev/ttyUSB0); duohil plays the peer on it",
    "console_port": "the board's console UART (optional): ESTOP/HARDFAULT/BOOT lines",
    "baud": f"both ports' rate (default {DEFAULT_BAUD}, 8N1)",
    "timeout": "seconds to wait for a port to appear and for a write to drain (default 2)",
    "realtime": "virtual seconds per host second (1.0 for a board; a paced stand-in's factor)",
    "board_clock": "follow a stand-in's published virtual time (duohil serve --clock-file), "
                   "not the host clock",
}


def _open(path: str, baud: int, what: str, timeout: float = 2.0) -> Any:
    """Open one port exclusively, waiting up to ``timeout`` s for it to appear (a board that is
    still enumerating); one line naming it when it is absent or busy."""
    import os
    import serial
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        return serial.Serial(path, baud, timeout=0, write_timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        text = str(exc)
        if "No such file" in text or "could not open port" in text and "Errno 2" in text:
            why = "no such device (is the board plugged in? check the path)"
        elif "lock" in text.lower() or "busy" in text.lower() or "Errno 16" in text:
            why = "busy: another program holds it (close the terminal or tool using it)"
        elif "Permission" in text or "Errno 13" in text:
            why = "permission denied (add yourself to the dialout group)"
        else:
            why = text.split("\n")[0]
        raise EngineError(f"serial port {path} ({what}): {why}") from None


class BoardHandle(MachineHandle):
    """The STM32 on the board: its console lines. RAM, symbols and the core are out of reach."""

    name = "stm32"
    linked: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.lines: list[ConsoleLine] = []

    def _none(self, what: str) -> ConfigError:
        return ConfigError(f"the serial engine cannot {what} on the board (it sees the wire and the "
                           f"console only)", field="engine", expected="the builtin engine for that")

    def symbol(self, name: str) -> int:
        raise self._none(f"look up {name}")

    def read_memory(self, address: int, size: int) -> bytes:
        raise self._none("read memory")

    def write_memory(self, address: int, data: bytes) -> None:
        raise self._none("write memory")

    def read_block(self, symbol: str) -> dict[str, object]:
        raise self._none(f"read {symbol}")

    def console(self) -> list[ConsoleLine]:
        return list(self.lines)

    def stall(self, duration_ps: int) -> None:
        raise self._none("stall the CPU")

    def pc(self) -> int:
        raise self._none("read the pc")

    def uart(self, name: str) -> Any:
        raise self._none(f"open {name} (use --console-port)")

    def cpu_state(self) -> dict[str, object]:
        return {}


class SerialSession:
    """One run against the board: the scripted peer on the link port, the console port read."""

    def __init__(self, spec: RunSpec, script: ScriptSpec, port: str, console_port: str | None,
                 baud: int, realtime: float, timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self.port_path, self.console_path = port, console_port
        self.link = _open(port, baud, "--port, the link", timeout)
        self.con = None
        try:
            if console_port:
                self.con = _open(console_port, baud, "--console-port", timeout)
        except BaseException:
            self.link.close()
            raise
        self._t0 = clock()
        self._actions: list[tuple[int, int, Callable[[], None]]] = []
        self._n = 0
        self._con_buf = bytearray()
        self.stm32 = BoardHandle()
        self.script = PeerScript(script)
        self.peer_layout = script.layout
        char_ps = round(10 * PS_PER_S / baud)
        self.driver = ScriptDriver(self.script, self._write, self._read, lambda: self.now_ps,
                                   lambda: char_ps, spec.seed)
        self.peer = ScriptPeerHandle(self.driver)
        self._next_tick = 0
        self._injected = 0
        self.lost: str | None = None
        self._closed = False
        self.on_tick: Callable[[], None] | None = None      # after each ms served (board clock)
        self.on_close: Callable[[], None] | None = None

    # -- the ports ------------------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException) -> EngineError:
        import serial
        path = self.port_path if what == "link" else self.console_path
        detail = str(exc).split("\n")[0] if not isinstance(exc, serial.SerialException) or \
            "readiness" not in str(exc) else "device disconnected"
        self.lost = (f"serial port {path} ({what}) went away at {self.now_ps / PS_PER_MS:.1f} ms: "
                     f"{detail}")
        return EngineError(self.lost)

    def _write(self, data: bytes) -> None:
        import serial
        try:
            self.link.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self._fail("link", exc) from None

    def _read(self) -> bytes:
        import serial
        try:
            n = self.link.in_waiting
            return self.link.read(n) if n else b""
        except (serial.SerialException, OSError) as exc:
            raise self._fail("link", exc) from None

    def _read_console(self) -> None:
        import serial
        if self.con is None:
            return
        try:
            n = self.con.in_waiting
            data = self.con.read(n) if n else b""
        except (serial.SerialException, OSError) as exc:
            raise self._fail("console", exc) from None
        if not data:
            return
        self._con_buf += data
        t = self.now_ps
        while b"\n" in self._con_buf:
            raw, _, rest = bytes(self._con_buf).partition(b"\n")
            self._con_buf = bytearray(rest)
            text = raw.rstrip(b"\r").decode("latin-1")
            self.stm32.lines.append(ConsoleLine(t, "stm32", text))

    # -- time -----------------------------------------------------------------------------------
    @property
    def now_ps(self) -> int:
        return round((self._clock() - self._t0) * self.realtime * PS_PER_S)

    def run_until(self, t_ps: int) -> None:
        """Serve the peer's 1 ms loop, the scheduled actions and the console until ``t_ps``."""
        if self._closed:
            raise EngineError("session is closed")
        if self.lost:
            raise EngineError(self.lost)
        while True:
            now = self.now_ps
            while self._actions and self._actions[0][0] <= now:
                _t, _n, fn = heapq.heappop(self._actions)
                fn()
            if now >= self._next_tick:
                self._next_tick = (now // PS_PER_MS + 1) * PS_PER_MS
                self.driver.tick()
                self._read_console()
                if self.on_tick is not None:
                    self.on_tick()
            if now >= t_ps:
                return
            nxt = min(self._next_tick, t_ps, self._actions[0][0] if self._actions else t_ps)
            wait = (nxt - self.now_ps) / PS_PER_S / self.realtime
            if wait > 0:
                # a board's published clock may run slower than planned: look again soon
                self._sleep(wait if self._clock is time.monotonic else min(wait, 0.0005))

    def run_for(self, duration_ps: int) -> None:
        self.run_until(self.now_ps + duration_ps)

    def at(self, t_ps: int, action: Callable[[], None], name: str = "") -> None:
        self._n += 1
        heapq.heappush(self._actions, (int(t_ps), self._n, action))

    # -- faults and observations -----------------------------------------------------------------
    def inject(self, fault: Any) -> int | None:
        index = self._injected
        self._injected += 1
        if fault.kind not in PEER_FAULTS:
            raise ConfigError(f"the serial engine cannot inject {fault.kind} on a board",
                              field=f"faults[{index}]", expected="link, noise or peer_stall")
        return self.driver.inject(fault, index, self.at)

    def observations(self) -> dict:
        return {}

    def link_bytes(self) -> list[Any]:
        return list(self.driver.taps)

    def events(self) -> list[tuple[int, str, dict]]:
        return sorted(((t, k, dict(d)) for t, k, d in self.driver.events), key=lambda e: e[0])

    def console(self) -> list[ConsoleLine]:
        return sorted(self.stm32.console() + self.peer.console(), key=lambda ln: ln.t_ps)

    def fingerprint(self) -> str:
        """A hash of what was observed (host timing entered: two runs will differ)."""
        h = hashlib.sha256()
        h.update(json.dumps([[b.t_ps, b.direction, b.value, b.sent, b.fault]
                             for b in self.driver.taps]).encode())
        h.update(json.dumps([[ln.t_ps, ln.machine, ln.text] for ln in self.console()]).encode())
        return h.hexdigest()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.on_close is not None:
            self.on_close()
        for p in (self.link, self.con):
            if p is not None:
                try:
                    p.close()
                except Exception:  # noqa: BLE001 - a port that vanished cannot be closed cleanly
                    pass

    def __enter__(self) -> "SerialSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def script_for(spec: RunSpec) -> ScriptSpec:
    """The scripted peer standing in for the scenario's peer image: its layout and GC, its config."""
    if spec.peer is None:
        return ScriptSpec()
    name = spec.peer.elf.stem
    return ScriptSpec(layout="natural" if "natural" in name else "packed", gc=name.startswith("gc"),
                      config={k: v for k, v in spec.peer.config.items()})


class SerialEngine(Engine):
    name = "serial"
    capabilities = frozenset({LINK_FAULTS, PEER_STALL})

    def __init__(self, port: str | None = None, console_port: str | None = None,
                 baud: int = DEFAULT_BAUD, timeout: float = 2.0, realtime: float = 1.0,
                 script: ScriptSpec | None = None, board_clock: str | None = None) -> None:
        if not port:
            raise ConfigError("the serial engine needs the board's link port", field="--port",
                              expected="a serial device, e.g. /dev/ttyUSB0")
        if not isinstance(baud, int) or baud <= 0:
            raise ConfigError(f"{baud!r}", field="--baud", expected="a positive integer rate")
        if not 0 < realtime <= 1000:
            raise ConfigError(f"{realtime!r}", field="--realtime",
                              expected="virtual seconds per host second, > 0")
        self.port, self.console_port, self.baud = port, console_port, baud
        self.timeout, self.realtime, self.script = timeout, realtime, script
        self.board_clock = board_clock

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import serial
        except ImportError:
            return False, "pyserial is not installed (pip install pyserial)"
        return True, (f"pyserial {serial.__version__}: a real STM32 board; duohil plays the peer on "
                      f"--port and reads --console-port")

    def start(self, spec: RunSpec) -> SerialSession:
        clock = time.monotonic
        if self.board_clock:
            from ...pty import ClockFile
            try:
                cf = ClockFile(self.board_clock)
            except OSError as exc:
                raise EngineError(f"board clock {self.board_clock}: {exc.strerror}") from None
            rt = self.realtime
            clock = lambda: cf.read() / PS_PER_S / rt    # noqa: E731 - seconds at the host's pace
        session = SerialSession(spec, self.script or script_for(spec), self.port,
                                self.console_port, self.baud, self.realtime, self.timeout,
                                clock=clock)
        if self.board_clock:
            session.on_tick = lambda: cf.served(cf.read())
            session.on_close = lambda: cf.map.__setitem__(slice(8, 16), bytes(8))
        return session
