"""duohil.protocol against the shared vectors, crccheck and the CM2/CM6 properties.

The C side (protocol/frame.c, messages.c) is held to the same vectors in test_protocol_c.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from crccheck.crc import Crc16Modbus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil import protocol as P

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "protocol" / "vectors.json").read_text())

# Deterministic in CI: same examples every run, no example database.
DET = settings(derandomize=True, database=None, deadline=None,
               suppress_health_check=[HealthCheck.too_slow])


def run_stream(segments: list[bytes], resync: bool) -> tuple[list[bytes], dict[str, int]]:
    """The vectors' stream rule: one idle event between consecutive segments."""
    d = P.FrameDecoder(resync=resync)
    got: list[bytes] = []
    for i, seg in enumerate(segments):
        if i:
            got += d.idle()
        got += d.feed(seg)
    return got, d.counters()


# --- constants agree with the C headers ----------------------------------------------------------

def _c_defines() -> dict[str, int]:
    out = {}
    for h in ("frame.h", "messages.h"):
        for m in re.finditer(r"^#define\s+(\w+)\s+\(?(0x[0-9A-Fa-f]+|\d+)u?\)?", (ROOT / "protocol" / h)
                             .read_text(), re.MULTILINE):
            out[m.group(1)] = int(m.group(2), 0)
    return out


@pytest.mark.parametrize("c_name,py_name", [
    ("FRAME_SOF", "SOF"), ("FRAME_MAX_PAYLOAD", "MAX_PAYLOAD"), ("FRAME_OVERHEAD", "OVERHEAD"),
    ("PROTO_VERSION", "PROTO_VERSION"), ("MSG_SETPOINT", "MSG_SETPOINT"),
    ("MSG_PID_PARAMS", "MSG_PID_PARAMS"), ("MSG_HEARTBEAT", "MSG_HEARTBEAT"),
    ("MSG_SENSOR_REPORT", "MSG_SENSOR_REPORT"), ("MSG_TELEMETRY", "MSG_TELEMETRY"),
    ("MSG_SETPOINT_LEN", "MSG_SETPOINT_LEN"), ("MSG_PID_PARAMS_LEN", "MSG_PID_PARAMS_LEN"),
    ("MSG_HEARTBEAT_LEN", "MSG_HEARTBEAT_LEN"), ("MSG_SENSOR_REPORT_LEN", "MSG_SENSOR_REPORT_LEN"),
    ("MSG_TELEMETRY_LEN", "MSG_TELEMETRY_LEN"), ("SENSOR_BODY_PACKED", "SENSOR_BODY_PACKED"),
    ("SENSOR_BODY_NATURAL", "SENSOR_BODY_NATURAL"), ("SETPOINT_BODY_PACKED", "SETPOINT_BODY_PACKED"),
    ("SETPOINT_BODY_NATURAL", "SETPOINT_BODY_NATURAL"), ("SETPOINT_F_ENABLE", "SETPOINT_F_ENABLE"),
    ("SETPOINT_F_HOME", "SETPOINT_F_HOME"), ("CTRL_STATE_HOLD", "CTRL_STATE_HOLD"),
    ("CTRL_STATE_FAULT", "CTRL_STATE_FAULT"), ("SENSOR_F_OVERTEMP", "SENSOR_F_OVERTEMP"),
    ("MSG_ERR_TYPE", "MSG_ERR_TYPE"), ("MSG_ERR_VERSION", "MSG_ERR_VERSION"),
    ("MSG_ERR_LENGTH", "MSG_ERR_LENGTH"),
])
def test_constants_match_c_headers(c_name: str, py_name: str) -> None:
    assert getattr(P, py_name) == _c_defines()[c_name]


# --- vectors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("v", VECTORS["crc"], ids=lambda v: v["name"][:40])
def test_crc_vectors(v: dict) -> None:
    data = bytes.fromhex(v["data"])
    assert P.crc16_modbus(data) == int(v["crc"], 16) == Crc16Modbus.calc(data)


def test_crc_vectors_include_the_standard_check_and_modbus_examples() -> None:
    table = {v["data"]: v["crc"] for v in VECTORS["crc"]}
    assert table[b"123456789".hex()] == "4b37"
    assert table["0207"] == "1241"               # sent 41 12: low byte first
    assert table["01030000000a"] == "cdc5"


@pytest.mark.parametrize("v", VECTORS["frames"], ids=lambda v: v["name"])
def test_frame_vectors(v: dict) -> None:
    payload = bytes.fromhex(v["payload"])
    assert P.encode_frame(payload).hex() == v["frame"]
    assert P.FrameDecoder().feed(bytes.fromhex(v["frame"])) == [payload]
    assert P.FrameDecoder(resync=False).feed(bytes.fromhex(v["frame"])) == [payload]
    if v["fields"] is not None:
        msg = P.decode_message(payload)
        assert msg.TYPE == v["type"]
        assert msg.__dict__ == v["fields"]
        assert msg.encode() == payload


def test_every_message_type_has_a_frame_vector() -> None:
    assert {v["type"] for v in VECTORS["frames"]} >= set(P.MESSAGE_TYPES)


@pytest.mark.parametrize("v", VECTORS["message_errors"], ids=lambda v: v["name"])
def test_message_error_vectors(v: dict) -> None:
    with pytest.raises(P.ProtocolError) as e:
        P.decode_message(bytes.fromhex(v["payload"]))
    assert e.value.code == v["error"]


@pytest.mark.parametrize("v", VECTORS["cm6_layout"], ids=lambda v: v["name"])
def test_cm6_layout_vectors(v: dict) -> None:
    cls = P.Setpoint if "velocity" in v["meant"] else P.SensorReport
    meant = cls(**v["meant"])
    enc = P.encode_setpoint_natural if cls is P.Setpoint else P.encode_sensor_report_natural
    overlay = (P.decode_setpoint_as_packed_overlay if cls is P.Setpoint
               else P.decode_sensor_report_as_packed_overlay)
    natural = enc(meant, pad=v["pad"])
    assert natural.hex() == v["natural_payload"]
    assert len(natural) == 2 + 12
    read = overlay(natural)
    assert read.__dict__ == v["packed_overlay_reads"]
    assert read != meant                                  # the CM6 misparse is real
    with pytest.raises(P.ProtocolError) as e:             # ... and the fixed decoder rejects it
        cls.decode(natural)
    assert e.value.code == v["fixed_decoder_error"] == P.MSG_ERR_LENGTH
    assert overlay(meant.encode()) == meant               # the overlay of a packed payload is right


@pytest.mark.parametrize("v", VECTORS["streams"], ids=lambda v: v["name"])
@pytest.mark.parametrize("mode", ["buggy", "fixed"])
def test_stream_vectors(v: dict, mode: str) -> None:
    segments = [bytes.fromhex(s) for s in v["segments"]]
    got, counters = run_stream(segments, resync=(mode == "fixed"))
    exp = v["expect"][mode]
    assert [p.hex() for p in got] == exp["payloads"]
    assert counters == exp["counters"]


def test_stream_vectors_show_the_bug() -> None:
    differ = {v["name"] for v in VECTORS["streams"] if v["modes_differ"]}
    assert {"flipped_len_larger", "flipped_len_huge_with_idle", "dropped_byte", "len_over_252",
            "truncated_then_idle"} <= differ
    for v in VECTORS["streams"]:
        if v["name"] == "flipped_len_larger":
            assert len(v["expect"]["fixed"]["payloads"]) > len(v["expect"]["buggy"]["payloads"])


# --- CRC against crccheck ------------------------------------------------------------------------

_CRC_EXAMPLES: set[bytes] = set()


@settings(DET, max_examples=1500)
@given(st.binary(max_size=300))
def test_crc_matches_crccheck(data: bytes) -> None:
    _CRC_EXAMPLES.add(data)
    assert P.crc16_modbus(data) == Crc16Modbus.calc(data)


def test_crc_hypothesis_run_covered_1000_distinct_inputs() -> None:
    # Guards the test above against a settings change that quietly shrinks it (runs after it).
    if not _CRC_EXAMPLES:
        pytest.skip("test_crc_matches_crccheck did not run in this session")
    assert len(_CRC_EXAMPLES) >= 1000


@settings(DET, max_examples=200)
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_crc_continues(a: bytes, b: bytes) -> None:
    assert P.crc16_modbus(b, P.crc16_modbus(a)) == P.crc16_modbus(a + b)


# --- message round trips ------------------------------------------------------------------------

u8, u16, u32 = (st.integers(0, 2**n - 1) for n in (8, 16, 32))
i16, i32 = st.integers(-2**15, 2**15 - 1), st.integers(-2**31, 2**31 - 1)
MESSAGE_STRATEGIES = {
    P.Setpoint: st.builds(P.Setpoint, u16, i32, u16),
    P.PidParams: st.builds(P.PidParams, i32, i32, i32),
    P.Heartbeat: st.builds(P.Heartbeat, u16, u32),
    P.SensorReport: st.builds(P.SensorReport, u16, i16, u8, u32),
    P.Telemetry: st.builds(P.Telemetry, u16, i32, i32, u8, u8, u16, u16, u16, u16, u16),
}
ANY_MESSAGE = st.one_of(*MESSAGE_STRATEGIES.values())


@settings(DET, max_examples=300)
@given(ANY_MESSAGE)
def test_message_round_trip(msg: P.Message) -> None:
    payload = msg.encode()
    assert len(payload) == msg.LENGTH
    assert payload[:2] == bytes((msg.TYPE, P.PROTO_VERSION))
    assert type(msg).decode(payload) == msg
    assert P.decode_message(payload) == msg
    assert P.FrameDecoder().feed(P.encode_frame(payload)) == [payload]


@settings(DET, max_examples=100)
@given(st.builds(P.Setpoint, u16, i32, u16), st.integers(0, 255))
def test_natural_setpoint_overlay_misreads_velocity(m: P.Setpoint, pad: int) -> None:
    read = P.decode_setpoint_as_packed_overlay(P.encode_setpoint_natural(m, pad=pad))
    v = m.velocity & 0xFFFFFFFF
    assert read.seq == m.seq
    assert read.velocity & 0xFFFFFFFF == (pad | pad << 8 | (v & 0xFFFF) << 16)
    assert read.flags == v >> 16


@settings(DET, max_examples=100)
@given(st.builds(P.SensorReport, u16, i16, u8, u32), st.integers(0, 255))
def test_natural_sensor_overlay_reads_flags_from_padding(m: P.SensorReport, pad: int) -> None:
    read = P.decode_sensor_report_as_packed_overlay(P.encode_sensor_report_natural(m, pad=pad))
    assert (read.id, read.temp, read.status) == (m.id, m.temp, m.status)
    assert read.flags == pad * 0x010101 | (m.flags & 0xFF) << 24


# --- decoder properties -------------------------------------------------------------------------

@settings(DET, max_examples=200)
@given(st.lists(st.binary(max_size=P.MAX_PAYLOAD), max_size=4), st.data(), st.booleans())
def test_chunking_does_not_matter(payloads: list[bytes], data: st.DataObject, resync: bool) -> None:
    stream = b"".join(P.encode_frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    d = P.FrameDecoder(resync=resync)
    got = []
    for a, b in zip([0] + cuts, cuts + [len(stream)], strict=True):
        got += d.feed(stream[a:b])
    assert got == payloads
    assert d.counters() == {**dict.fromkeys(P.COUNTERS, 0), "frames_ok": len(payloads)}


def _corrupt(frame: bytes, kind: str, pos: int, value: int) -> bytes:
    if kind == "flip":
        pos %= len(frame)
        return frame[:pos] + bytes((frame[pos] ^ (1 << (value % 8)),)) + frame[pos + 1:]
    if kind == "drop":
        pos %= len(frame)
        return frame[:pos] + frame[pos + 1:]
    pos %= len(frame) + 1
    return frame[:pos] + bytes((value,)) + frame[pos:]


def _is_subsequence(needles: list[bytes], hay: list[bytes]) -> bool:
    it = iter(hay)
    return all(any(n == h for h in it) for n in needles)


@settings(DET, max_examples=600)
@given(payloads=st.lists(st.one_of(ANY_MESSAGE.map(lambda m: m.encode()), st.binary(max_size=40)),
                         min_size=2, max_size=5),
       data=st.data(), kind=st.sampled_from(["flip", "drop", "insert"]),
       pos=st.integers(0, 300), value=st.integers(0, 255))
def test_resync_recovers_every_later_frame(payloads: list[bytes], data: st.DataObject, kind: str,
                                           pos: int, value: int) -> None:
    """CM2 fix: one flipped/dropped/inserted byte anywhere in frame k costs at most frame k."""
    frames = [P.encode_frame(p) for p in payloads]
    k = data.draw(st.integers(0, len(frames) - 1))
    bad = _corrupt(frames[k], kind, pos, value)
    stream = b"".join(frames[:k]) + bad + b"".join(frames[k + 1:])
    d = P.FrameDecoder(resync=True)
    got = d.feed(stream) + d.idle()
    assert got[:k] == payloads[:k]
    assert _is_subsequence(payloads[k + 1:], got[k:]), (k, kind, [p.hex() for p in got])
    # Every byte is in a delivered frame or counted as discarded, exactly once.
    assert sum(len(p) + P.OVERHEAD for p in got) + d.bytes_discarded == len(stream)
    assert d.resyncs == d.len_errors + d.crc_errors + d.idle_resets
    assert d.pending == 0


def test_buggy_decoder_loses_later_frames_after_a_corrupted_len() -> None:
    """CM2 bug is real: LEN 10 -> 200 and the buggy decoder loses the next 4 frames, idle or not."""
    payloads = [P.Setpoint(seq=i, velocity=100 * i, flags=P.SETPOINT_F_ENABLE).encode() for i in range(6)]
    frames = [P.encode_frame(p) for p in payloads]
    frames[0] = frames[0][:1] + bytes((200,)) + frames[0][2:]
    for resync, expect in ((False, []), (True, payloads[1:5])):
        d = P.FrameDecoder(resync=resync)
        got = []
        for f in frames[:5]:
            got += d.feed(f) + d.idle()       # idle gap after every frame, as on the real link
        assert got == expect, resync
    d = P.FrameDecoder(resync=False)
    d.feed(b"".join(frames))
    assert d.frames_ok == 0 and d.pending == 14 * 6   # all 84 bytes buffered: LEN+4 = 204


def test_buggy_decoder_loses_the_next_frame_after_a_dropped_byte() -> None:
    a, b = (P.encode_frame(P.Heartbeat(seq=i, uptime_ms=10).encode()) for i in (1, 2))
    stream = a[:5] + a[6:] + b
    assert P.FrameDecoder(resync=False).feed(stream) == []
    assert P.FrameDecoder(resync=True).feed(stream) == [P.Heartbeat(seq=2, uptime_ms=10).encode()]


def test_fixed_idle_rescans_before_dropping() -> None:
    # A partial frame hides a complete one behind a second partial candidate: fe 0a | fe 03 | frame.
    inner = P.encode_frame(b"")
    d = P.FrameDecoder()
    assert d.feed(b"\xfe\x0a\xfe\x03" + inner) == []
    assert d.idle() == [b""]
    assert d.counters() == {"frames_ok": 1, "crc_errors": 0, "len_errors": 0, "resyncs": 2,
                            "idle_resets": 2, "bytes_discarded": 4}


def test_buggy_decoder_ignores_idle() -> None:
    d = P.FrameDecoder(resync=False)
    d.feed(b"\xfe\x05\x01")
    assert d.idle() == [] and d.pending == 3 and d.idle_resets == 0


# --- bad input ----------------------------------------------------------------------------------

def test_encode_frame_rejects_oversize_payload() -> None:
    P.encode_frame(bytes(252))
    with pytest.raises(ValueError, match="at most 252"):
        P.encode_frame(bytes(253))


@pytest.mark.parametrize("bad", ["fe00", 5, [1, 2], None])
def test_non_bytes_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        P.encode_frame(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        P.FrameDecoder().feed(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        P.crc16_modbus(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        P.decode_message(bad)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    f = P.encode_frame(bytearray(b"ab"))
    assert P.FrameDecoder().feed(memoryview(f)) == [b"ab"]


@pytest.mark.parametrize("make,match", [
    (lambda: P.Setpoint(seq=0x10000, velocity=0), r"Setpoint\.seq=65536 is out of range 0\.\.65535"),
    (lambda: P.Setpoint(seq=-1, velocity=0), r"Setpoint\.seq"),
    (lambda: P.Setpoint(seq=0, velocity=2**31), r"Setpoint\.velocity"),
    (lambda: P.SensorReport(id=0, temp=-40000, status=0, flags=0), r"SensorReport\.temp"),
    (lambda: P.Telemetry(0, 0, 0, 256, 0, 0, 0, 0, 0, 0), r"Telemetry\.state"),
    (lambda: P.Heartbeat(seq=0, uptime_ms=2**32), r"Heartbeat\.uptime_ms"),
    (lambda: P.encode_setpoint_natural(P.Setpoint(0, 0), pad=256), r"pad"),
])
def test_out_of_range_fields_are_value_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("value", [1.5, "1", True, None])
def test_non_int_fields_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match=r"Setpoint\.seq must be an int"):
        P.Setpoint(seq=value, velocity=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload,code,match", [
    (b"\x03\x01" + bytes(8), P.MSG_ERR_TYPE, "type 0x03, expected 0x01"),
    (b"\x01\x02" + bytes(8), P.MSG_ERR_VERSION, "version 2, expected 1"),
    (b"\x01\x01" + bytes(9), P.MSG_ERR_LENGTH, "11 bytes, expected exactly 10"),
    (b"\x01\x01" + bytes(12), P.MSG_ERR_LENGTH, "14 bytes, expected exactly 10"),
    (b"\x01", P.MSG_ERR_LENGTH, "no version byte"),
    (b"", P.MSG_ERR_LENGTH, "empty"),
])
def test_setpoint_decode_errors_are_clear(payload: bytes, code: int, match: str) -> None:
    with pytest.raises(P.ProtocolError, match=match) as e:
        P.Setpoint.decode(payload)
    assert e.value.code == code
    assert isinstance(e.value, ValueError)


def test_decode_message_unknown_type() -> None:
    with pytest.raises(P.ProtocolError, match="unknown message type 0x42") as e:
        P.decode_message(b"\x42\x01")
    assert e.value.code == P.MSG_ERR_TYPE


def test_overlay_rejects_what_it_cannot_read() -> None:
    with pytest.raises(P.ProtocolError, match="packed struct needs 10"):
        P.decode_setpoint_as_packed_overlay(b"\x01\x01\x00")
    with pytest.raises(P.ProtocolError, match="type"):
        P.decode_sensor_report_as_packed_overlay(P.Setpoint(1, 2).encode())
