"""Both product firmwares together in the builtin engine, no faults: what crosses the wire is what
each firmware says it sent and received, and the patched controller follows the behaviour layer
within its limits for 10 s of virtual time while the peer collects garbage."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil import oracle, protocol
from duohil.engines.base import PS_PER_S, MachineSpec, RunSpec
from duohil.engines.builtin.session import BuiltinEngine

ROOT = Path(__file__).resolve().parent.parent


def start(stm32: str, peer: str, seed: int = 0):
    elfs = [ROOT / "build" / "stm32" / f"{stm32}.elf", ROOT / "build" / "esp32" / f"{peer}.elf"]
    for e in elfs:
        if not e.is_file():
            pytest.fail(f"{e} is not built: run `make firmware` (the test command builds it)")
    spec = RunSpec(stm32=MachineSpec(ROOT / "platforms" / "stm32h743.repl", elfs[0], "g_config", {}),
                   peer=MachineSpec(ROOT / "platforms" / "esp32c3_peer.repl", elfs[1],
                                    "g_peer_config", {}), seed=seed)
    return BuiltinEngine().start(spec)


def test_link_tap_decodes_to_what_both_firmwares_logged():
    s = start("fixed", "pooled-packed")
    s.run_until(1 * PS_PER_S)
    taps = s.link_bytes()
    assert taps and all(b.fault is None for b in taps)
    up = [p for _t, p in oracle.sender_frames(taps, "peer->stm32")]
    down = [p for _t, p in oracle.sender_frames(taps, "stm32->peer")]
    st, pst = s.stm32.read_block("g_status"), s.peer.read_block("g_peer_status")
    setpoints = [protocol.Setpoint.decode(p) for p in up if p[0] == protocol.MSG_SETPOINT]
    telemetry = [protocol.Telemetry.decode(p) for p in down if p[0] == protocol.MSG_TELEMETRY]
    # the peer counts a setpoint when it queues it; one may still be on the wire at the end
    assert 0 <= pst["setpoints_sent"] - len(setpoints) <= 1
    assert len(setpoints) > 180                                     # 200 Hz for ~0.95 s
    assert [sp.seq for sp in setpoints] == list(range(setpoints[0].seq, setpoints[-1].seq + 1))
    assert 0 <= len(setpoints) - st["setpoints"] <= 1                # applied all but in-flight
    assert st["crc_errors"] == 0 and st["rejected"] == 0
    assert len(up) - 1 <= st["frames_ok"] <= len(up)                # every frame, one in flight
    last = next(sp for sp in reversed(setpoints) if sp.seq == pst["last_setpoint_seq"])
    assert (last.velocity, last.flags) == (pst["last_setpoint_velocity"],
                                           pst["last_setpoint_flags"])
    assert 0 <= st["telemetry_sent"] - len(telemetry) <= 1
    assert 0 <= len(telemetry) - pst["telemetry_received"] <= 1
    assert pst["telemetry_rejected"] == 0 and pst["telemetry_stale"] == 0
    assert [t.seq for t in telemetry] == list(range(len(telemetry)))


def test_fixed_follows_the_gc_peer_within_limits_for_10_s():
    s = start("fixed", "gc-packed")
    s.run_until(10 * PS_PER_S)
    lines = [ln.text for ln in s.console()]
    assert any(t.startswith("BOOT fw=stm32") for t in lines)
    assert not [t for t in lines if t.startswith(("ESTOP", "HARDFAULT"))], lines[-10:]
    assert not [e for e in s.events() if e[1] in ("end_stop", "cpu_fault", "reset", "lockup")]
    st, pst = s.stm32.read_block("g_status"), s.peer.read_block("g_peer_status")
    cfg = s.stm32.read_block("g_config")
    assert st["estops"] == 0 and st["state"] == protocol.CTRL_STATE_RUN
    plant = s.observations()["plant"]
    positions = [p[1] for p in plant]
    assert cfg["soft_limit_min"] < min(positions) and max(positions) < cfg["soft_limit_max"]
    assert max(positions) > 15000                                   # it really moved (0 -> 20000)
    # the behaviour layer paused for GC, within the freshness window, and the loop kept up
    assert pst["gc_count"] >= 20
    assert 0 < pst["gc_max_pause_us"] < cfg["freshness_ms"] * 1000
    assert abs(pst["position_error"]) < cfg["following_error_max"]
    assert st["stale_setpoints"] == 0 and st["crc_errors"] == 0
    # the pause the peer measured matches its own model (esp32_firmware/README.md)
    model_us = pst["gc_last_model_cycles"] / 160
    assert abs(pst["gc_last_pause_us"] - model_us) <= 15
    assert pst["gc_last_end_mtime"] > pst["gc_last_start_mtime"]
    assert s.now_ps == 10 * PS_PER_S
