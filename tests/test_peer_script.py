"""The scripted peer (duohil.peer_script) driving the STM32 in the builtin engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil import protocol, runner
from duohil import scenario as scmod
from duohil.errors import ConfigError
from duohil.peer_script import Planner, PeerScript, ScriptSpec, parse_spec
from duohil.engines.base import PS_PER_MS

DATA = Path(__file__).parent / "data" / "peer_script"
REPO = Path(__file__).resolve().parents[1]


def _built() -> bool:
    return (REPO / "build" / "stm32" / "fixed.elf").is_file()


needs_fw = pytest.mark.skipif(not _built(), reason="firmware not built (make firmware)")


def test_planner_matches_the_firmware_profile_shape():
    # defaults: accel 60000, vmax 12000, stroke 20000, dwell 50, dt 5: cruise at 60 counts/step
    pl = Planner(60000, 12000, 20000, 0, 50, 5)
    vs = [pl.step() for _ in range(800)]
    assert max(vs) == 12000 and min(vs) == -12000        # out and back at vmax, quantized
    assert pl.moves >= 2
    # one full stroke out: the displacement is exactly the stroke
    pl2 = Planner(60000, 12000, 20000, 0, 50, 5)
    pos = [pl2.step() and pl2.position for _ in range(400)]
    assert max(pos) == 20000


def test_script_sends_the_firmware_schedule_and_layouts():
    s = PeerScript(ScriptSpec("natural"))
    frames = []
    for ms in range(0, 101):
        frames += s.step(ms * PS_PER_MS)
    types = [protocol.FrameDecoder().feed(f)[0][0] for f in frames]
    # start delay 10 ms, then setpoints every 5 ms (10..100 = 19), heartbeat at 10 ms, sensor at 10, 60
    assert types.count(protocol.MSG_SETPOINT) == 19
    assert types.count(protocol.MSG_HEARTBEAT) == 1                # 10 ms (next at 110)
    assert types.count(protocol.MSG_SENSOR_REPORT) == 2          # 10 and 60 ms
    first = protocol.FrameDecoder().feed(frames[0])[0]
    assert len(first) == 2 + protocol.SETPOINT_BODY_NATURAL      # the CM6 (aligned) layout
    assert protocol.decode_setpoint_natural(first).seq == 1
    # a stall sends nothing, then the missed slots are skipped and counted
    s.stall(200 * PS_PER_MS, 101 * PS_PER_MS)
    assert s.step(150 * PS_PER_MS) == []
    assert s.step(200 * PS_PER_MS)
    assert s.status["setpoint_slots_missed"] == 19


def test_gc_model_pauses_the_script():
    s = PeerScript(ScriptSpec("packed", gc=True))
    paused = []
    for ms in range(0, 2000):
        before = s.stalled_until
        s.step(ms * PS_PER_MS)
        if s.stalled_until > before:
            paused.append((ms, (s.stalled_until - ms * PS_PER_MS) / PS_PER_MS))
    assert paused, "the pacer never triggered a collection in 2 s"
    # fixed 160000 cycles + 240000 per KiB live (>= 2 KiB) at 160 MHz: at least 4 ms
    assert all(d >= 4.0 for _t, d in paused)
    assert s.status["gc_count"] == len(paused)


@pytest.mark.parametrize("raw,field", [
    ({"script": "weird"}, "peer.script"),
    ({"script": "packed", "image": "x"}, "peer.image"),
    ({"script": "packed", "gc": 1}, "peer.gc"),
    ({"script": "packed", "config": {"profile_stroke": "far"}}, "peer.config.profile_stroke"),
    ({"script": "packed", "config": {"nope": 1}}, "peer.config.nope"),
    ({"script": "packed", "config": {"setpoint_period_ms": 7}}, "peer.config.setpoint_period_ms"),
])
def test_bad_script_specs_name_the_field(raw, field):
    with pytest.raises(ConfigError) as e:
        parse_spec(raw, "s.yaml")
    assert field in str(e.value)


@needs_fw
def test_scripted_peer_drives_fixed_stm32_through_nominal_ok():
    sc = scmod.load(DATA / "nominal_script.yaml")
    r = runner.run(sc, "fixed", timeline=False)
    assert r.outcomes == ["ok"], r.evidence
    assert r.images["peer"] == "none"
    st, peer = r.counters["stm32"], r.counters["peer"]
    assert st["setpoints"] >= 70 and st["crc_errors"] == 0 and st["rejected"] == 0
    assert peer["telemetry_received"] >= 35 and peer["telemetry_rejected"] == 0
    r2 = runner.run(sc, "fixed", timeline=False)
    assert r2.fingerprint == r.fingerprint                    # deterministic in virtual time


@needs_fw
def test_scripted_peer_stall_drives_buggy_into_cm1_and_fixed_holds():
    sc = scmod.load(DATA / "cm1_script.yaml")
    res = runner.ab(sc)
    by = {r.variant: r for r in res.runs}
    assert "estop" in by["buggy"].outcomes, by["buggy"].evidence
    assert by["fixed"].outcomes == ["ok"], by["fixed"].evidence
    assert res.passed
    # the stall acted on the script: its fault event and its STALL line
    stall = [e for e in by["buggy"].timeline["events"] if e[1] == "fault"]
    assert stall and stall[0][2]["fault"] == "peer_stall"
    assert any("STALL fault0" in ln for ln in by["buggy"].console["peer"])
    # without the stall the buggy STM32 does not estop: the stall is the cause
    sc.faults = []
    assert "estop" not in runner.run(sc, "buggy", timeline=False).outcomes


@needs_fw
def test_link_fault_on_the_scripted_peer_wire_is_recorded():
    sc = scmod.load(DATA / "nominal_script.yaml")
    clean = runner.run(sc, "fixed", timeline=False)
    from duohil import faults as faultmod
    sc.faults = [faultmod.validate_fault({"kind": "link", "action": "flip", "direction": "peer->stm32",
                                          "frame": 20, "field": "LEN", "bit": 7}, "faults[0]", None)]
    r = runner.run(sc, "fixed", timeline=True)
    flips = [e for e in r.timeline["events"] if e[1] == "fault"]
    assert flips and flips[0][2]["byte_index"] == 1
    # the STM32 lost that frame (the fixed decoder rescans: only that one), the wire shows the flip
    assert clean.counters["stm32"]["frames_ok"] - r.counters["stm32"]["frames_ok"] == 1
    assert r.fingerprint != clean.fingerprint


@needs_fw
def test_script_matches_the_peer_firmware_on_the_wire():
    """The same setpoint stream (seq, velocity, flags) and sensor reports as the emulated
    pooled-packed peer, and the gc model's pauses close to gc-packed's own GC lines."""
    from duohil import oracle
    from duohil.duo import Duo
    with Duo.start(stm32="fixed", peer="pooled-packed") as duo:
        duo.run(ms=600)
        frames = oracle.sender_frames(duo.session.link_bytes(), "peer->stm32")
    fw = [protocol.decode_message(p) for _t, p in frames]
    s = PeerScript(ScriptSpec("packed"))
    mine = []
    for ms in range(0, 600):
        mine += [protocol.decode_message(protocol.FrameDecoder().feed(f)[0]) for f in
                 s.step(ms * PS_PER_MS)]
    fw_sp = [m for m in fw if isinstance(m, protocol.Setpoint)]
    my_sp = [m for m in mine if isinstance(m, protocol.Setpoint)][:len(fw_sp)]
    assert len(fw_sp) > 100 and my_sp == fw_sp
    fw_sr = [m for m in fw if isinstance(m, protocol.SensorReport)]
    assert [m for m in mine if isinstance(m, protocol.SensorReport)][:len(fw_sr)] == fw_sr

    with Duo.start(stm32="fixed", peer="gc-packed") as duo:
        duo.run(ms=1500)
        fw_gc = [ln for ln in duo.peer.console if ln.startswith("GC ")]
    s = PeerScript(ScriptSpec("packed", gc=True))
    for ms in range(1500):
        s.step(ms * PS_PER_MS)
    my_gc = [ln.text for ln in s.lines if ln.text.startswith("GC ")]
    assert abs(len(my_gc) - len(fw_gc)) <= 2, (my_gc, fw_gc)

    def pause(line: str) -> int:
        return int(line.split("pause_us=")[1].split()[0])
    assert abs(pause(my_gc[0]) - pause(fw_gc[0])) <= 0.05 * pause(fw_gc[0])


@needs_fw
def test_duo_start_with_a_scripted_peer():
    from duohil.duo import Duo
    peer = {"script": "natural", "config": {"profile_stroke": 4000}}
    with Duo.start(stm32="fixed", peer=peer) as duo:
        duo.run(ms=120)
        assert duo.peer.console[0].startswith("BOOT duohil-peer-script variant=script-pooled-natural")
        assert duo.peer.status.setpoints_sent >= 20            # g_peer_status: the script's counters
        assert duo.stm32.status.setpoints == 0 and duo.stm32.status.rejected >= 18   # CM6 fix: refused
        frames = duo.link.frames("peer->stm32")
        assert len(frames[0][1]) == 2 + protocol.SETPOINT_BODY_NATURAL
    with pytest.raises(ConfigError, match="peer.script"):
        Duo.start(stm32="fixed", peer={"script": "bent"})
