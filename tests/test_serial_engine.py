"""The serial engine end to end against a board stand-in (`duohil serve`: the builtin STM32 with
its link and console UARTs as PTYs), and its port errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from duohil import cli
from duohil import scenario as scmod
from duohil.engines import registry
from duohil.engines.serial import run as serial_run

REPO = Path(__file__).resolve().parents[1]
SC = REPO / "scenarios"
#: the stand-in publishes its virtual time (--clock-file) and the engine follows it (board_clock):
#: the two run in lockstep, so a loaded CI machine that cannot run the simulation at real time
#: slows both down instead of breaking CM1's choreography; the factor is only an upper bound
RT = 2.0

pytestmark = pytest.mark.skipif(not (REPO / "build" / "stm32" / "buggy.elf").is_file(),
                                reason="firmware not built (make firmware)")


class StandIn:
    """`duohil serve stm32` in a subprocess; its PTY paths read from its first lines."""

    def __init__(self, variant: str, scenario: Path | None = None, realtime: float = RT,
                 clock: Path | None = None) -> None:
        cmd = [sys.executable, "-m", "duohil.cli", "serve", "stm32", "--variant", variant,
               "--pty-link", "--pty-console", "--realtime", str(realtime)]
        self.clock = None if clock is None else str(clock)
        if clock is not None:
            cmd += ["--clock-file", str(clock)]
        if scenario is not None:
            cmd += ["--scenario", str(scenario)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        paths = {}
        deadline = time.monotonic() + 20
        while len(paths) < 2 and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            role, _, path = line.strip().partition(": ")
            if role in ("link", "console"):
                paths[role] = path
        assert len(paths) == 2, f"serve did not print its PTYs: {paths} {self.proc.stderr.read()}"
        self.link, self.console = paths["link"], paths["console"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "StandIn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(name: str, variant: str, tmp_path: Path) -> tuple[object, dict]:
    sc = scmod.load(SC / name)
    out = tmp_path / f"{sc.name}-{variant}.json"
    with StandIn(variant, SC / name, clock=tmp_path / "clock") as board:
        r = serial_run.run(sc, variant, port=board.link, console_port=board.console,
                           realtime=RT, json_path=out, board_clock=board.clock)
    return r, json.loads(out.read_text())


@pytest.mark.parametrize("name,variant,label", [
    ("cm1_cmd_timeout.yaml", "buggy", "estop"),
    ("cm1_cmd_timeout.yaml", "fixed", "ok"),
    ("cm2_resync.yaml", "buggy", "desync"),
    ("cm2_resync.yaml", "fixed", "ok"),
])
def test_crash_modes_through_the_serial_engine(name, variant, label, tmp_path):
    r, doc = _run(name, variant, tmp_path)
    assert r.error is None
    assert (r.outcomes == ["ok"]) if label == "ok" else (label in r.outcomes), r.evidence
    assert r.matches is True
    assert doc["engine"] == "serial" and doc["host_timing"]["reproducible"] is False
    # what was seen came over the ports: the board's console and telemetry, the script's frames
    assert any("LINK up" in ln or "STATE" in ln or "STAT" in ln for ln in doc["console"]["stm32"])
    assert doc["counters"]["peer"]["telemetry_received"] > 20
    assert doc["timeline"]["frames"]["peer->stm32"]
    if variant == "buggy" and label == "estop":
        assert doc["fault_plan"][0]["kind"] == "peer_stall"
        assert any("STALL fault0" in ln for ln in doc["console"]["peer"])


def test_the_cli_runs_the_serial_engine(tmp_path, capsys):
    out = tmp_path / "r.json"
    with StandIn("fixed", clock=tmp_path / "clock") as board:
        code = cli.main(["run", str(SC / "cm2_resync.yaml"), "--engine", "serial", "--port",
                         board.link, "--console-port", board.console, "--variant", "fixed",
                         "--realtime", str(RT), "--json", str(out), "--board-clock", board.clock])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "cm2_resync [fixed] seed=1: ok [not reproducible: host timing entered]" in text
    assert json.loads(out.read_text())["outcomes"] == ["ok"]


def test_missing_port_is_one_line_and_a_result(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli.main(["run", str(SC / "cm2_resync.yaml"), "--engine", "serial", "--port",
                     "/dev/pts/98765", "--timeout", "0.2", "--variant", "fixed", "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "/dev/pts/98765" in err[0] and "no such device" in err[0]
    assert "no such device" in json.loads(out.read_text())["error"]


def test_busy_port_is_one_line(tmp_path, capsys):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)           # another program has it
    try:
        code = cli.main(["run", str(SC / "cm2_resync.yaml"), "--engine", "serial", "--port", path,
                         "--variant", "fixed", "--json", str(tmp_path / "r.json")])
    finally:
        holder.close()
        os.close(master)
        os.close(slave)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and path in err[0] and "busy" in err[0]


def test_port_vanishing_mid_run_keeps_the_partial_result(tmp_path, capsys):
    out = tmp_path / "r.json"
    board = StandIn("fixed", realtime=0.5)
    killer = threading.Timer(1.0, lambda: board.proc.kill())     # the board is unplugged
    killer.start()
    try:
        code = cli.main(["run", str(SC / "cm2_resync.yaml"), "--engine", "serial", "--port",
                         board.link, "--console-port", board.console, "--variant", "fixed",
                         "--realtime", "0.5", "--json", str(out)])
    finally:
        killer.cancel()
        board.stop()
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "went away" in err[0], err
    assert board.link in err[0] or board.console in err[0]
    doc = json.loads(out.read_text())
    assert "went away" in doc["error"]
    assert 0 < doc["virtual_ms"]
    assert doc["timeline"]["frames"]["peer->stm32"]        # what was seen before is kept
    assert doc["console"]["stm32"]


def test_engines_lists_serial_with_options_and_capabilities(capsys):
    assert cli.main(["engines"]) == 0
    out = capsys.readouterr().out
    assert "serial   available" in out
    block = out[out.index("serial "):]
    assert "capabilities: link_faults, peer_stall\n" in block
    for opt in ("--port", "--console-port", "--baud", "--timeout", "--realtime"):
        assert opt in block
    caps = registry.engine_class("serial").capabilities
    assert not caps & {"dcache", "dma_latency", "irq_at_pc", "plant"}


def test_ab_asks_to_flash_each_variant(capsys):
    assert cli.main(["ab", str(SC / "cm1_cmd_timeout.yaml"), "--engine", "serial"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot switch the board's firmware" in err[0]
    assert "flash buggy" in err[0] and "--variant fixed-no-cmd_timeout" in err[0]


def test_scenario_needing_what_a_board_cannot_do_is_refused(capsys):
    code = cli.main(["run", str(SC / "cm3_dcache.yaml"), "--engine", "serial", "--port",
                     "/dev/null", "--variant", "buggy"])
    err = capsys.readouterr().err
    assert code != 0 and "lacks capability" in err


def test_run_needs_a_port(capsys):
    assert cli.main(["run", str(SC / "cm2_resync.yaml"), "--engine", "serial",
                     "--variant", "fixed"]) == 2
    assert "--port" in capsys.readouterr().err


def _taps(frozen: bool) -> list:
    """Setpoints every 5 ms from the peer, telemetry every 10 ms from the STM32 whose last_seq
    follows them, or (frozen) stands still from 100 to 160 ms."""
    from duohil import protocol
    from duohil.engines.base import PS_PER_MS, LinkByte
    taps = []
    for ms in range(5, 300, 5):
        seq = ms // 5
        frame = protocol.encode_frame(protocol.Setpoint(seq, 100, 1).encode())
        taps += [LinkByte(ms * PS_PER_MS, "peer->stm32", b) for b in frame]
        if ms % 10 == 0:
            last = 19 if frozen and 100 <= ms <= 160 else seq - 1
            tm = protocol.Telemetry(ms // 10, 0, 0, 2, 0, last, 0, 0, 0, 0).encode()
            taps += [LinkByte(ms * PS_PER_MS + 1, "stm32->peer", b)
                     for b in protocol.encode_frame(tm)]
    return sorted(taps, key=lambda b: b.t_ps)


def test_wire_desync_from_telemetry():
    fault = [{"kind": "link", "t_ps": 95 * 10**9}]
    why = serial_run.wire_desync(_taps(True), fault, "packed", {})
    assert why is not None and "stayed at seq 19" in why and "bound 2" in why
    assert serial_run.wire_desync(_taps(False), fault, "packed", {}) is None
    assert serial_run.wire_desync(_taps(True), [], "packed", {}) is None     # no link fault
