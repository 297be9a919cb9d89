"""Simulated UARTs as pseudo-terminals (duohil.pty), opened from the host with pyserial."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import serial

from duohil import cli
from duohil import pty as ptymod
from duohil import scenario as scmod
from duohil.duo import Duo
from duohil.engines.base import PS_PER_MS
from duohil.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ECHO = REPO / "build" / "testfw" / "m7" / "echo.elf"
ECHO_SC = REPO / "tests" / "data" / "own" / "echo_alone.yaml"

pytestmark = pytest.mark.skipif(not ECHO.is_file(), reason="firmware not built (make firmware)")


class SimThread:
    """A builtin simulation with PTYs, advanced in a thread until stopped (bounded in wall time)."""

    def __init__(self, elf: Path, ptys: list[str], realtime: float = 1.0, wall_s: float = 8.0) -> None:
        self.duo = Duo.start(stm32=elf, peer=None)
        self.lines: list[str] = []
        self.set = ptymod.PtySet(self.duo, ptys, realtime, announce=self.lines.append)
        self.paths = {p.label: p.path for p in self.set.ports}
        self.stop = threading.Event()
        self.deadline = time.monotonic() + wall_s
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SimThread":
        # the host tool opens the PTY first: pyserial flushes its input when it opens a port, so
        # what the MCU printed before that is gone, as with a board that booted before you looked
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            self.set.run_until_ps(self.duo.now_ps + 5 * PS_PER_MS)
            if self.set.pacer.engaged_at_ps is None:
                time.sleep(0.002)        # the test's own thread gets its turn before host input

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.set.close()
        self.duo.close()


def _read_until(port: serial.Serial, want: bytes, wall_s: float = 4.0) -> bytes:
    got = b""
    end = time.monotonic() + wall_s
    while want not in got and time.monotonic() < end:
        got += port.read(64)
    return got


def test_pyserial_reads_the_console_and_writes_to_a_running_simulation():
    sim = SimThread(ECHO, ["stm32:usart1", "stm32:usart3"])
    try:
        assert sim.lines == [f"pty stm32:usart1: {sim.paths['stm32:usart1']}",
                             f"pty stm32:usart3: {sim.paths['stm32:usart3']}"]
        assert sim.paths["stm32:usart1"].startswith("/dev/pts/")
        assert os.path.realpath(sim.paths["stm32:usart1"]) == sim.paths["stm32:usart1"]
        con = serial.Serial(sim.paths["stm32:usart1"], 115200, timeout=0.1)
        u3 = serial.Serial(sim.paths["stm32:usart3"], 115200, timeout=0.1)
        sim.start()
        assert b"own firmware: hello on usart1\r\n" in _read_until(con, b"usart1\r\n")
        assert b"ECHO READY\r\n" in _read_until(u3, b"READY\r\n")
        u3.write(b"hello from pyserial")
        assert b"hello from pyserial" in _read_until(u3, b"pyserial")      # echoed by the firmware
        con.close()
        u3.close()
        assert sim.set.pacer.engaged_at_ps is not None                 # host timing entered
        note = sim.set.pacer.note()
        assert note["reproducible"] is False and "stm32:usart3" in note["why"]
    finally:
        sim.close()
    assert sim.duo.stm32.uart("usart3").received().endswith(b"hello from pyserial")


def test_paced_to_the_host_clock_after_host_input():
    # at realtime factor 4, 200 ms of virtual time after the host's byte take >= 50 ms of wall
    sim = SimThread(ECHO, ["stm32:usart3"], realtime=4.0)
    try:
        u3 = serial.Serial(sim.paths["stm32:usart3"], timeout=0.1)
        sim.start()
        _read_until(u3, b"READY\r\n")
        u3.write(b"x")
        deadline = time.monotonic() + 3
        while sim.set.pacer.engaged_at_ps is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pacer = sim.set.pacer
        ahead = []
        for _ in range(25):
            time.sleep(0.01)
            v, w = sim.duo.now_ps, time.monotonic()
            # virtual time since host input never runs ahead of 4x the host clock (+ one chunk)
            ahead.append((v - pacer.engaged_at_ps) / 1e12 - 4.0 * (w - pacer._wall0))
        v1 = sim.duo.now_ps
        u3.close()
    finally:
        sim.close()
    assert max(ahead) <= ptymod.PACED_CHUNK_PS / 1e12 + 1e-9, ahead
    assert v1 > pacer.engaged_at_ps + 10 * PS_PER_MS           # and it kept running


def test_nothing_attached_keeps_the_fingerprint(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["run", str(ECHO_SC), "--json", str(a)]) == 0
    assert cli.main(["run", str(ECHO_SC), "--json", str(b), "--pty", "stm32:usart1",
                     "--pty", "stm32:usart3"]) == 0
    out = capsys.readouterr().out
    assert "pty stm32:usart1: /dev/pts/" in out
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["fingerprint"] == jb["fingerprint"]
    assert jb["host_timing"] is None and "not reproducible" not in out


def test_host_input_marks_the_result_not_reproducible(tmp_path):
    sc = scmod.load(ECHO_SC)
    fds = []

    def announce(line: str) -> None:       # a host tool opens the PTY and types at once
        path = line.rsplit(" ", 1)[1]
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, b"hi")
        fds.append(fd)

    out = tmp_path / "r.json"
    r = ptymod.run_scenario(sc, "fixed", ["stm32:usart3"], realtime=10.0, json_path=out,
                            announce=announce)
    for fd in fds:
        os.close(fd)
    doc = json.loads(out.read_text())
    assert doc["host_timing"]["reproducible"] is False
    assert doc["host_timing"]["realtime"] == 10.0
    assert "not reproducible" in r.headline()
    assert r.console == doc["console"]


def test_link_uart_pty_is_read_only_and_says_so():
    duo = Duo.start(stm32="fixed")                    # with the peer: usart3 is the link
    try:
        s = ptymod.PtySet(duo, ["stm32:usart3"], announce=None)
        fd = os.open(s.ports[0].path, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, b"zz")
        s.run_until_ps(20 * PS_PER_MS)
        seen = os.read(fd, 4096)
        os.close(fd)
        assert b"\xfe" in seen                       # the STM32 frames (SOF), copied out
        assert any("2 byte(s) from the host not sent" in p and "link" in p for p in s.problems())
        s.close()
    finally:
        duo.close()


@pytest.mark.parametrize("spec,expected", [
    ("usart1", "MACHINE:UART"), ("stm32:usart9", "stm32:usart1"), ("cpu:usart1", "stm32 or peer")])
def test_bad_pty_options_are_one_line(spec, expected, capsys):
    assert cli.main(["boot", str(ECHO), "--ms", "1", "--pty", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pty" in err[0] and expected in err[0]


def test_bad_realtime():
    with pytest.raises(ConfigError, match="--realtime"):
        ptymod.parse_realtime("fast")


def test_a_peer_uart_as_a_pty():
    duo = Duo.start(stm32="fixed")                    # both MCUs: the peer's console too
    try:
        s = ptymod.PtySet(duo, ["peer:uart0", "stm32:usart1"], announce=None)
        fds = {p.label: os.open(p.path, os.O_RDWR | os.O_NOCTTY) for p in s.ports}
        s.run_until_ps(30 * PS_PER_MS)
        got = {k: os.read(fd, 4096) for k, fd in fds.items()}
        for fd in fds.values():
            os.close(fd)
        s.close()
    finally:
        duo.close()
    assert got["peer:uart0"].startswith(b"BOOT duohil-peer")
    assert b"BOOT fw=stm32 build=fixed" in got["stm32:usart1"]
    assert s.pacer.note() is None                     # nothing came from the host


def test_scripted_peer_link_pty_is_read_only():
    sc = scmod.load(REPO / "tests" / "data" / "peer_script" / "nominal_script.yaml")
    with Duo.from_scenario(sc, "fixed") as duo:
        s = ptymod.PtySet(duo, ["stm32:usart3"], announce=None)
        fd = os.open(s.ports[0].path, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, b"zz")
        s.run_until_ps(20 * PS_PER_MS)
        seen = os.read(fd, 4096)
        os.close(fd)
        s.close()
        assert b"\xfe" in seen                                   # the STM32's telemetry
        assert any("link to the scripted peer" in p for p in s.problems())
        assert duo.session.driver.script.status["frames_unexpected"] == 0   # nothing injected
