"""Host-compiled unit tests of the STM32 firmware's pure logic (stm32_firmware/src).

The units that hold no register access (control loop and limits, setpoint freshness, the link RX
snapshot of CM4, telemetry encoding, message dispatch of CM6, console line formats) are compiled with
the host gcc together with protocol/frame.c and messages.c, once per FIX_* combination, and driven by
tests/host/stm32/host_main.c, which prints ``key=value`` lines. The CM4 hook macro that is an
assembler label on the target becomes a call here, so a test can play the DMA interrupt between the
two reads of the snapshot.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from duohil import protocol as P

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "stm32_firmware" / "src"
HOST = ROOT / "tests" / "host" / "stm32"
PURE_UNITS = ["link_rx.c", "control.c", "dispatch.c", "telemetry.c", "logfmt.c"]
PROTOCOL = [ROOT / "protocol" / "frame.c", ROOT / "protocol" / "messages.c"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


class HostBuild:
    """Compiles the pure units + host driver per set of -D switches, into one tmp dir per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple[tuple[str, int], ...], Path] = {}

    def exe(self, **fixes: int) -> Path:
        key = tuple(sorted(fixes.items()))
        if key not in self.cache:
            name = "host_" + ("_".join(f"{k}{v}" for k, v in key) or "default")
            out = self.root / name
            cmd = ["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
                   "-include", str(HOST / "host_port.h"), f"-I{FW}",
                   *(f"-DFIX_{k.upper()}={v}" for k, v in key),
                   "-o", str(out), str(HOST / "host_main.c"),
                   *(str(FW / u) for u in PURE_UNITS), *(str(p) for p in PROTOCOL)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            assert res.returncode == 0, f"host build failed ({' '.join(cmd)}):\n{res.stderr}"
            self.cache[key] = out
        return self.cache[key]

    def run(self, *args: object, **fixes: int) -> dict[str, str]:
        # bytes, not text: universal newlines would hide the console lines' CR LF
        res = subprocess.run([str(self.exe(**fixes)), *map(str, args)], capture_output=True, timeout=30)
        assert res.returncode == 0, f"host_main {args} exited {res.returncode}: {res.stderr.decode()}"
        out: dict[str, str] = {}
        for line in res.stdout.decode().split("\n"):
            k, _, v = line.partition("=")
            out[k] = v
        return out


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> HostBuild:
    return HostBuild(tmp_path_factory.mktemp("stm32_host"))


# ---- setpoint freshness (CM1) ----------------------------------------------------------------------

@pytest.mark.parametrize(("rx", "now", "window", "fresh", "age"), [
    (1000, 1000, 20, 1, 0),
    (1000, 1020, 20, 1, 20),            # an age equal to the window is still fresh
    (1000, 1021, 20, 0, 21),
    (0xFFFFFFF0, 0x00000003, 20, 1, 19),  # the ms tick wraps
    (0xFFFFFFF0, 0x00000005, 20, 0, 21),
])
def test_setpoint_freshness(host: HostBuild, rx: int, now: int, window: int, fresh: int, age: int) -> None:
    r = host.run("fresh", rx, now, window)
    assert (int(r["fresh"]), int(r["age"])) == (fresh, age)


def test_setpoint_never_received_is_not_fresh(host: HostBuild) -> None:
    r = host.run("fresh", "none", 0, 20)
    assert r["fresh"] == "0" and int(r["age"]) == 0xFFFFFFFF


# ---- control loop, CM1 -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def defaults(host: HostBuild) -> dict[str, int]:
    """g_config's defaults (stm32_firmware/src/config_defaults.h), as the controller sees them."""
    return {k: int(v) for k, v in host.run("defaults").items() if k}


def test_defaults_fit_the_default_plant(defaults: dict[str, int]) -> None:
    # duohil/engines/builtin/board/plant.py MotorParams defaults: 20000 counts/s, end stops +-50000
    assert -50000 < defaults["soft_limit_min"] < 0 < defaults["soft_limit_max"] < 50000
    assert 0 < defaults["max_velocity"] < 20000
    assert defaults["freshness_ms"] == 20


def test_control_tracks_velocity_setpoint(host: HostBuild, defaults: dict[str, int]) -> None:
    r = host.run("ctrl_stall", 10000, 10_000, 0, 1000)        # no stall within the run
    assert r["state"] == "run" and r["estops"] == "0"
    assert abs(int(r["vel"]) - 10000) < 200
    assert int(r["max_ferr"]) < 100                          # counts, after the first 50 ms
    ramp_loss = 10000**2 / (2 * defaults["max_accel"])         # counts lost to the acceleration ramp
    assert abs(int(r["pos"]) - (10000 - ramp_loss)) < 100      # 1 s at 10000 counts/s


def test_cmd_timeout_fixed_holds_then_resumes(host: HostBuild) -> None:
    # last setpoint at t=490 ms, window 20 ms: stale at t=511; the peer is back at t=540
    r = host.run("ctrl_stall", 10000, 500, 40, 1500, cmd_timeout=1)
    assert int(r["hold_at"]) == 511
    assert int(r["resume_at"]) == 540
    assert r["stale"] == "1" and r["state"] == "run" and r["estops"] == "0"


def test_cmd_timeout_bug_keeps_applying_last_setpoint(host: HostBuild) -> None:
    r = host.run("ctrl_stall", 10000, 500, 40, 1500, cmd_timeout=0)
    assert r["hold_at"] == "0" and r["stale"] == "0"
    assert r["state"] == "run"


def test_cmd_timeout_gc_pause_overshoot_reaches_soft_limit_only_when_buggy(
        host: HostBuild, defaults: dict[str, int]) -> None:
    # The peer drives at 15000 counts/s and means to stop at t=600 ms, but a 50 ms GC pause holds the
    # stop command back. Fixed: 20 ms into the pause it ramps to HOLD at hold_decel. Buggy: drives
    # on for the whole pause, then stops at max_accel when the stop command finally arrives.
    v, stall = 15000, 50
    args = ("ctrl_stall", v, 600, stall, 1200, defaults["soft_limit_max"], 0)
    fixed = host.run(*args, cmd_timeout=1)
    buggy = host.run(*args, cmd_timeout=0)
    overshoot = int(buggy["max_pos"]) - int(fixed["max_pos"])
    extra = (v * (stall - defaults["freshness_ms"]) / 1000
             + v**2 / (2 * defaults["max_accel"]) - v**2 / (2 * defaults["hold_decel"]))
    assert 0.8 * extra < overshoot < 1.3 * extra, (overshoot, extra)
    limit = (int(fixed["max_pos"]) + int(buggy["max_pos"])) // 2
    fixed = host.run(*args[:5], limit, 0, cmd_timeout=1)
    buggy = host.run(*args[:5], limit, 0, cmd_timeout=0)
    assert fixed["estops"] == "0" and fixed["state"] == "run"
    assert buggy["state"] == "estop" and buggy["estop_reason"] == "soft_limit"
    assert int(buggy["estop_pos"]) > limit
    assert buggy["duty"] == "0"


# ---- limits and ESTOP --------------------------------------------------------------------------------

def test_following_error_estop_when_axis_blocked(host: HostBuild, defaults: dict[str, int]) -> None:
    v = 10000
    r = host.run("ctrl_blocked", v)
    # the reference ramps to v at max_accel, then runs away from the blocked axis at v: it passes
    # the following-error bound at t = ramp time + remaining distance / v
    ramp_s = v / defaults["max_accel"]
    t_ms = 1000 * (ramp_s + (defaults["following_error_max"] - v * ramp_s / 2) / v)
    assert r["state"] == "estop" and r["estop_reason"] == "following_error"
    assert abs(int(r["estop_at"]) - t_ms) <= 3, (r["estop_at"], t_ms)
    assert r["duty"] == "0"


def test_estop_latches_until_disabled_inside_limits(host: HostBuild, defaults: dict[str, int]) -> None:
    r = host.run("ctrl_estop_ack")
    assert (r["s1"], r["reason"], r["d1"]) == ("estop", "soft_limit", "0")
    assert int(r["estop_pos"]) == defaults["soft_limit_max"] + 1
    assert r["s2"] == "estop"          # ENABLE does not clear an ESTOP
    assert r["s3"] == "estop"          # disable while still beyond the limit: stays
    assert r["s4"] == "idle"           # disable inside the limits: acknowledged
    assert r["s5"] == "run" and r["estops"] == "1"


# ---- CM4: the snapshot of the RX DMA write position -----------------------------------------------

def test_snapshot_consistent_without_interleaving(host: HostBuild) -> None:
    for atomic in (0, 1):
        r = host.run("snapshot_quiet", atomic=atomic)
        assert (int(r["first_head"]), int(r["first_pending"])) == (250, 250)
        assert (int(r["second_head"]), int(r["second_pending"])) == (260, 10)


def test_snapshot_torn_by_dma_interrupt_when_buggy(host: HostBuild) -> None:
    # 250 bytes parsed; 10 more wrap the 256-byte ring (write offset 4); the TC interrupt is taken at
    # link_rx_snapshot_window, between the read of the lap count and the read of NDTR.
    r = host.run("snapshot", atomic=0)
    assert int(r["torn_head"]) == 4                     # lap 0 + offset 4: one lap behind
    assert int(r["torn_pending"]) == (4 - 250) % 2**32  # a "length" of ~4 GB: outside the buffer
    assert int(r["torn_pending"]) > 256
    assert int(r["after_head"]) == 260                  # the next read is right again


def test_snapshot_single_word_index_when_fixed(host: HostBuild) -> None:
    r = host.run("snapshot", atomic=1)
    # The IDLE ISR published with the TC still pending: the lap was counted from the offset going
    # backwards, and the TC at the window neither tears the read nor counts the lap twice.
    assert (int(r["torn_head"]), int(r["torn_pending"])) == (260, 10)
    assert (int(r["after_head"]), int(r["after_pending"])) == (260, 0)
    assert r["overruns"] == "0" and int(r["rd"]) == 260


# ---- telemetry ----------------------------------------------------------------------------------------

def test_telemetry_frame_bytes_decode_with_python_twin(host: HostBuild) -> None:
    r = host.run("telemetry")
    frame = bytes.fromhex(r["frame"])
    assert int(r["len"]) == len(frame) == 28 and r["small"] == "0"
    assert frame[0] == 0xFE and frame[1] == 24
    assert int.from_bytes(frame[-2:], "little") == P.crc16_modbus(frame[1:-2])
    payloads = P.FrameDecoder().feed(frame)
    assert len(payloads) == 1
    t = P.Telemetry.decode(payloads[0])
    assert (t.seq, t.position, t.velocity, t.state, t.last_seq) == (0x1234, -123456, 4321, 4, 0xBEEF)
    assert t.fault_flags == 0x02                         # TLM_FAULT_ESTOP_FOLLOWING
    assert (t.crc_errors, t.rejected, t.stale, t.overruns) == (7, 0xFFFF, 3, 0xFFFF)   # saturated


# ---- CM6: dispatch --------------------------------------------------------------------------------------

SP = P.Setpoint(seq=0x0102, velocity=-30000, flags=1)
SENSOR = P.SensorReport(id=7, temp=-12, status=3, flags=P.SENSOR_F_OBSTACLE)


@pytest.mark.parametrize("layout", [0, 1])
def test_dispatch_packed_messages_decode_on_both(host: HostBuild, layout: int) -> None:
    r = host.run("dispatch", SP.encode().hex(), layout=layout)
    assert (r["rc"], r["kind"]) == ("0", "setpoint")
    assert (int(r["seq"]), int(r["velocity"]), int(r["flags"])) == (SP.seq, SP.velocity, SP.flags)
    hb = P.Heartbeat(seq=9, uptime_ms=123456)
    r = host.run("dispatch", hb.encode().hex(), layout=layout)
    assert (r["kind"], int(r["uptime_ms"])) == ("heartbeat", 123456)
    pid = P.PidParams.from_float(2.5, 0.25, -0.125)
    r = host.run("dispatch", pid.encode().hex(), layout=layout)
    assert (int(r["kp"]), int(r["ki"]), int(r["kd"])) == (pid.kp, pid.ki, pid.kd)


def test_dispatch_buggy_misparses_natural_layout(host: HostBuild) -> None:
    payload = P.encode_setpoint_natural(SP, pad=0xA5)
    r = host.run("dispatch", payload.hex(), layout=0)
    want = P.decode_setpoint_as_packed_overlay(payload)          # what the oracle says a bug reads
    assert r["rc"] == "0" and r["rejected"] == "0"
    assert (int(r["seq"]), int(r["velocity"]), int(r["flags"])) == (want.seq, want.velocity, want.flags)
    assert int(r["velocity"]) != SP.velocity                     # misparsed, silently
    payload = P.encode_sensor_report_natural(SENSOR, pad=0x00)
    r = host.run("dispatch", payload.hex(), layout=0)
    want_s = P.decode_sensor_report_as_packed_overlay(payload)
    assert int(r["flags"]) == want_s.flags != SENSOR.flags       # the obstacle bit is lost


@pytest.mark.parametrize(("payload", "why", "counter"), [
    (P.encode_setpoint_natural(SP), "3", "rej_len"),
    (P.encode_sensor_report_natural(SENSOR), "3", "rej_len"),
    (bytes([P.MSG_SETPOINT, 2]) + SP.encode()[2:], "2", "rej_ver"),
    (bytes([0x7E, 1, 0, 0]), "1", "rej_type"),
    (P.Telemetry(1, 2, 3, 1, 0, 4, 0, 0, 0, 0).encode(), "1", "rej_type"),   # our own direction
])
def test_dispatch_fixed_rejects_and_counts(host: HostBuild, payload: bytes, why: str, counter: str) -> None:
    r = host.run("dispatch", payload.hex(), layout=1)
    assert (r["rc"], r["accepted"], r["rejected"], r[counter]) == (why, "0", "1", "1")
    assert "kind" not in r


# ---- console lines ------------------------------------------------------------------------------------

def test_console_line_grammar(host: HostBuild) -> None:
    r = host.run("logfmt")
    assert r["boot"] == "BOOT fw=stm32 build=fixed-no-atomic fixes=0x77\r"
    assert r["estop"] == "ESTOP reason=soft_limit pos=-100007\r"
    assert re.fullmatch(r"HARDFAULT pc=0x08001e7c lr=0x08001b75 cfsr=0x00008200 hfsr=0x40000000 "
                        r"bfar=0x20020000 mmfar=0xe000edf8 exc=3\r", r["hardfault"])
    assert r["crashrec"].startswith("CRASHREC n=3 exc=3 pc=0x08001e7c lr=0x08001b75 ")
    assert r["crashrec"].endswith(" xpsr=0x61000000 sp=0x20000d40 t=1234\r")
    assert int(r["short_len"]) == 23 and r["short"] == "ESTOP reason=followin\r"
