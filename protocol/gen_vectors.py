"""Generate protocol/vectors.json, the shared test vectors of the duohil link protocol.

Run with the project venv:  .venv/bin/python protocol/gen_vectors.py  (writes protocol/vectors.json)

The expectations below are written by hand from the spec (protocol/PROTOCOL.md), not copied from the
implementation: every payload list and counter is stated here with the reasoning next to it, and the
script refuses to write the file unless duohil.protocol agrees with every one of them and crccheck
agrees with every CRC. tests/test_protocol_c.py then holds the C decoder to the same vectors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from crccheck.crc import Crc16Modbus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from duohil import protocol as P

OUT = ROOT / "protocol" / "vectors.json"
COUNTERS = P.COUNTERS


def no_sof(b: bytes, what: str) -> bytes:
    # The hand counts below assume these spans hold no stray SOF; if a value change ever puts 0xFE in
    # one, stop here rather than write a vector whose reasoning no longer holds.
    assert P.SOF not in b, f"{what} contains 0xFE: {b.hex()}"
    return b


# --- CRC vectors -----------------------------------------------------------------------------------

CRC_VECTORS = [
    ("check value of the CRC catalogue (CRC-16/MODBUS check)", b"123456789", 0x4B37),
    ("Modbus over Serial Line V1.02, 6.2.2 worked example: frame 02 07", bytes.fromhex("0207"), 0x1241),
    ("Modbus RTU read holding registers, slave 1, 10 regs from 0", bytes.fromhex("01030000000a"), 0xCDC5),
    ("Modbus RTU read holding registers, slave 0x11, 3 regs from 0x6B (Modbus appl. protocol example)",
     bytes.fromhex("1103006b0003"), 0x8776),
    ("empty input: the init value", b"", 0xFFFF),
    ("one zero byte: the LEN of an empty frame, so that frame is fe 00 bf 40", b"\x00", 0x40BF),
    ("all 0xFF (8 bytes)", b"\xff" * 8, None),
    ("0x00..0xFF", bytes(range(256)), None),
]


def crc_vectors() -> list[dict]:
    out = []
    for name, data, expect in CRC_VECTORS:
        ref = Crc16Modbus.calc(data)
        if expect is not None:
            assert ref == expect, f"crccheck disagrees with the stated CRC for {name}: {ref:#06x}"
        assert P.crc16_modbus(data) == ref, name
        out.append({"name": name, "data": data.hex(), "crc": f"{ref:04x}",
                    "wire": f"{ref & 0xFF:02x}{ref >> 8:02x}"})
    return out


# --- messages and frame vectors -----------------------------------------------------------------

MESSAGES = {
    "setpoint": P.Setpoint(seq=0x1234, velocity=-100000, flags=P.SETPOINT_F_ENABLE),
    "pid_params": P.PidParams.from_float(1.5, 0.25, -0.125),
    "heartbeat": P.Heartbeat(seq=7, uptime_ms=123456789),
    "sensor_report": P.SensorReport(id=0x0102, temp=-40, status=3,
                                    flags=P.SENSOR_F_OBSTACLE | P.SENSOR_F_OVERTEMP),
    "telemetry": P.Telemetry(seq=9, position=-123456, velocity=2500, state=P.CTRL_STATE_RUN,
                             fault_flags=0, last_seq=0x1234, crc_errors=1, rejected=2, stale=3,
                             overruns=4),
}

# Hand-written wire payloads of MESSAGES (little-endian, offsets as in PROTOCOL.md).
EXPECTED_PAYLOADS = {
    "setpoint": "0101" "3412" "6079feff" "0100",
    "pid_params": "0201" "00800100" "00400000" "00e0ffff",
    "heartbeat": "0301" "0700" "15cd5b07",
    "sensor_report": "0401" "0201" "d8ff" "03" "03000000",
    "telemetry": "8101" "0900" "c01dfeff" "c4090000" "02" "00" "3412" "0100" "0200" "0300" "0400",
}


def frame_vectors() -> list[dict]:
    out = []
    for name, msg in MESSAGES.items():
        payload = msg.encode()
        assert payload.hex() == EXPECTED_PAYLOADS[name], (name, payload.hex())
        assert P.decode_message(payload) == msg
        frame = P.encode_frame(payload)
        out.append({"name": name, "type": payload[0], "fields": msg.__dict__.copy(),
                    "payload": payload.hex(), "frame": frame.hex()})
    for name, payload in (("empty payload", b""), ("max payload (252 bytes)", bytes(range(252)))):
        out.append({"name": name, "type": None, "fields": None, "payload": payload.hex(),
                    "frame": P.encode_frame(payload).hex()})
    for v in out:   # frame = fe LEN payload crc_lo crc_hi with crccheck's CRC over LEN+payload
        payload = bytes.fromhex(v["payload"])
        crc = Crc16Modbus.calc(bytes((len(payload),)) + payload)
        assert v["frame"] == (bytes((0xFE, len(payload))) + payload + bytes((crc & 0xFF, crc >> 8))).hex()
    return out


def message_error_vectors() -> list[dict]:
    sp = MESSAGES["setpoint"].encode()
    cases = [
        ("wrong type for its length (setpoint bytes, type 0x03)", b"\x03" + sp[1:], P.MSG_ERR_LENGTH),
        ("unknown type 0x7f", b"\x7f\x01" + sp[2:], P.MSG_ERR_TYPE),
        ("version 2", sp[:1] + b"\x02" + sp[2:], P.MSG_ERR_VERSION),
        ("one byte short", sp[:-1], P.MSG_ERR_LENGTH),
        ("one byte long", sp + b"\x00", P.MSG_ERR_LENGTH),
        ("type byte only", sp[:1], P.MSG_ERR_LENGTH),
        ("empty", b"", P.MSG_ERR_LENGTH),
        ("CM6 natural-layout setpoint (14 bytes)", P.encode_setpoint_natural(MESSAGES["setpoint"]),
         P.MSG_ERR_LENGTH),
        ("CM6 natural-layout sensor report (14 bytes)",
         P.encode_sensor_report_natural(MESSAGES["sensor_report"]), P.MSG_ERR_LENGTH),
    ]
    out = []
    for name, payload, code in cases:
        try:
            P.decode_message(payload)
        except P.ProtocolError as e:
            assert e.code == code, (name, e.code, code)
        else:
            raise AssertionError(f"{name}: decoded")
        out.append({"name": name, "payload": payload.hex(), "error": code})
    return out


def s32(u: int) -> int:
    """A 32-bit pattern read as int32 (what the overlay's velocity field holds)."""
    return u - (1 << 32) if u & 0x80000000 else u


def cm6_vectors() -> list[dict]:
    """Natural-layout payloads and what a packed overlay reads from them (hand-derived)."""
    sp = P.Setpoint(seq=0x0102, velocity=100000, flags=P.SETPOINT_F_ENABLE)  # velocity = 0x000186A0
    sr = P.SensorReport(id=0x0102, temp=25, status=1, flags=P.SENSOR_F_OVERTEMP)
    cases = [
        # body 02 01 | pp pp | a0 86 01 00 | 01 00 | pp pp; overlay: velocity = pp pp a0 86, flags = 01 00
        ("setpoint, zero padding", sp, 0x00, ("0101" "0201" "0000" "a0860100" "0100" "0000"),
         P.Setpoint(seq=0x0102, velocity=s32(0x86A00000), flags=0x0001)),
        ("setpoint, 0xAA padding", sp, 0xAA, ("0101" "0201" "aaaa" "a0860100" "0100" "aaaa"),
         P.Setpoint(seq=0x0102, velocity=s32(0x86A0AAAA), flags=0x0001)),
        # body 02 01 | 19 00 | 01 | pp pp pp | 02 00 00 00; overlay flags = pp pp pp 02
        ("sensor report, zero padding", sr, 0x00, ("0401" "0201" "1900" "01" "000000" "02000000"),
         P.SensorReport(id=0x0102, temp=25, status=1, flags=0x02000000)),
        ("sensor report, 0xAA padding", sr, 0xAA, ("0401" "0201" "1900" "01" "aaaaaa" "02000000"),
         P.SensorReport(id=0x0102, temp=25, status=1, flags=0x02AAAAAA)),
    ]
    out = []
    for name, msg, pad, natural_hex, overlay in cases:
        if isinstance(msg, P.Setpoint):
            natural = P.encode_setpoint_natural(msg, pad=pad)
            read = P.decode_setpoint_as_packed_overlay(natural)
        else:
            natural = P.encode_sensor_report_natural(msg, pad=pad)
            read = P.decode_sensor_report_as_packed_overlay(natural)
        assert natural.hex() == natural_hex, (name, natural.hex())
        assert read == overlay, (name, read, overlay)
        out.append({"name": name, "meant": msg.__dict__.copy(), "pad": pad, "natural_payload": natural_hex,
                    "packed_overlay_reads": read.__dict__.copy(), "fixed_decoder_error": P.MSG_ERR_LENGTH})
    return out


# --- stream vectors --------------------------------------------------------------------------------

# Small frames with no 0xFE anywhere (checked), so the hand counts below hold.
PAY = {
    "A": P.Setpoint(seq=1, velocity=1000, flags=1).encode(),
    "B": P.Setpoint(seq=2, velocity=1500, flags=1).encode(),
    "C": P.Heartbeat(seq=3, uptime_ms=12345).encode(),
    "D": P.Setpoint(seq=4, velocity=2000, flags=1).encode(),
    "E": P.Heartbeat(seq=5, uptime_ms=12400).encode(),
    "Z": b"",
    "M": bytes((i * 7 + 1) % 0xFE for i in range(252)),       # max length, no 0xFE in the payload
    "X": P.Setpoint(seq=5, velocity=-2, flags=1).encode(),    # fake SOF: velocity -2 = fe ff ff ff
}
F = {k: P.encode_frame(v) for k, v in PAY.items()}
for _k in "ABCDE":
    no_sof(F[_k][1:], f"frame {_k}")
assert len(F["A"]) == 14 and len(F["C"]) == 12


def flip(b: bytes, i: int, mask: int = 0x01) -> bytes:
    return b[:i] + bytes((b[i] ^ mask,)) + b[i + 1:]


def stream_vectors() -> list[dict]:
    A, B, C, D, E = (F[k] for k in "ABCDE")
    cases: list[tuple[str, str, list[bytes], dict, dict]] = []

    def case(name: str, why: str, segments: list[bytes], buggy: dict, fixed: dict) -> None:
        cases.append((name, why, segments, buggy, fixed))

    def same(d: dict) -> tuple[dict, dict]:
        return d, d

    case("clean_single", "one frame", [A], *same({"p": "A", "frames_ok": 1}))
    case("back_to_back", "frames with no gap", [A + B + C], *same({"p": "ABC", "frames_ok": 3}))
    case("idle_between_frames", "idle gaps between whole frames change nothing; trailing idle too",
         [A, B, C, b""], *same({"p": "ABC", "frames_ok": 3}))
    case("empty_and_max_payload", "LEN 0 and LEN 252 are both legal",
         [F["Z"] + F["M"] + A], *same({"p": "ZMA", "frames_ok": 3}))
    case("noise_between_frames", "non-SOF noise is discarded byte by byte",
         [b"\x00\x11" + A + b"\x22\x33\x44" + B + b"\x55"],
         *same({"p": "AB", "frames_ok": 2, "bytes_discarded": 6}))
    case("fake_sof_in_payload", "0xFE inside a valid frame's payload is just data",
         [F["X"] + A], *same({"p": "XA", "frames_ok": 2}))

    # A with LEN 0x0A flipped to 0x2A: the span is 0x2A+4 = 46 bytes = A'(14) + B(14) + C(12) + 6 of D.
    a_len42 = flip(A, 1, 0x20)
    case("flipped_len_larger", "CM2: LEN 10 -> 42 swallows B, C and part of D. Buggy drops the 46-byte "
         "span and the 8-byte tail of D; fixed rescans from A's LEN byte and finds B, C and D",
         [a_len42 + B + C + D + E],
         {"p": "E", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 46 + 8},
         {"p": "BCDE", "frames_ok": 4, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 14})
    # LEN 10 -> 0xF0 (240): the span would be 244 bytes; with idle gaps between frames the buggy decoder
    # is still waiting after three more frames (link dead); the fixed one drops A' on the first idle.
    a_len240 = A[:1] + b"\xf0" + A[2:]
    case("flipped_len_huge_with_idle", "CM2 headline: a LEN of 240 makes the buggy decoder wait for 242 "
         "bytes through every idle gap (nothing delivered); the fixed decoder drops A' at the first idle",
         [a_len240, B, C, D, b""],
         {"p": ""},
         {"p": "BCD", "frames_ok": 3, "idle_resets": 1, "resyncs": 1, "bytes_discarded": 14})
    # LEN 10 -> 2: the CRC check comes early (6 bytes) and fails; the rest of A' is noise.
    case("flipped_len_smaller", "LEN 10 -> 2: both decoders lose A and only A",
         [flip(A, 1, 0x08) + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 14},
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 14})
    case("flipped_payload", "one payload bit: CRC error, A lost, B fine in both modes",
         [flip(A, 6) + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 14},
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 14})
    case("flipped_crc", "one CRC bit: CRC error, A lost, B fine in both modes",
         [flip(A, 13, 0x80) + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 14},
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 14})
    a_drop = A[:6] + A[7:]                                       # 13 bytes
    case("dropped_byte", "A short by one byte: its span takes B's SOF. Buggy loses B too (14-byte span, "
         "then B's 13-byte tail); fixed rescans, finds B's SOF and delivers B",
         [a_drop + B + C],
         {"p": "C", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 14 + 13},
         {"p": "BC", "frames_ok": 2, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 13})
    a_ins = A[:6] + b"\x5a" + A[6:]                              # 15 bytes
    case("inserted_byte", "A one byte long: its CRC fails, its last byte is noise; B fine in both",
         [a_ins + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 15},
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 15})
    # Noise "fe 03 11 22" before B: a fake frame whose 7-byte span ends 3 bytes into B.
    case("noise_sof_between_frames", "a noise SOF with LEN 3 eats B's first 3 bytes: buggy loses B "
         "(7-byte span + B's 11-byte tail); fixed rescans and finds B",
         [A + b"\xfe\x03\x11\x22" + B + C],
         {"p": "AC", "frames_ok": 2, "crc_errors": 1, "bytes_discarded": 7 + 11},
         {"p": "ABC", "frames_ok": 3, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 4})
    # X with seq flipped: CRC fails; on the rescan the fixed decoder meets X's inner fe ff: LEN 255.
    x = F["X"]
    no_sof(x[-2:], "X crc")
    case("fake_sof_in_corrupted_payload", "X corrupted: the fixed rescan meets the fake SOF fe ff in X's "
         "payload and rejects LEN 255 at once; both lose X only",
         [flip(x, 4) + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": 14},
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "len_errors": 1, "resyncs": 2, "bytes_discarded": 14})
    # A noise SOF followed by LEN 253: buggy trusts it and waits for 255 more bytes.
    case("len_over_252", "fe fd: the fixed decoder rejects LEN 253 at once; the buggy one waits 255 "
         "bytes and swallows A and B",
         [b"\xfe\xfd" + A + B],
         {"p": ""},
         {"p": "AB", "frames_ok": 2, "len_errors": 1, "resyncs": 1, "bytes_discarded": 2})
    case("double_sof", "a noise 0xFE right before a frame reads as LEN 254: the buggy decoder waits 256 "
         "bytes; the fixed one rejects it and the second 0xFE starts A",
         [b"\xfe" + A + B],
         {"p": ""},
         {"p": "AB", "frames_ok": 2, "len_errors": 1, "resyncs": 1, "bytes_discarded": 1})
    case("truncated_then_idle", "A cut after 7 bytes, idle, then B: the fixed decoder drops the partial on "
         "idle; the buggy one completes A's span with 7 bytes of B, fails CRC and loses B",
         [A[:7], B],
         {"p": "", "crc_errors": 1, "bytes_discarded": 14 + 7},
         {"p": "B", "frames_ok": 1, "idle_resets": 1, "resyncs": 1, "bytes_discarded": 7})
    case("truncated_at_end", "B cut after 5 bytes at the end of the stream; trailing idle",
         [A + B[:5], b""],
         {"p": "A", "frames_ok": 1},
         {"p": "A", "frames_ok": 1, "idle_resets": 1, "resyncs": 1, "bytes_discarded": 5})
    # A valid frame carried inside a corrupted frame's payload: the fixed rescan finds it. The CRC alone
    # cannot tell a tunnelled frame from a real one; message checks (type, version, length) come next.
    inner = F["A"]
    outer_payload = b"\x7f" + inner
    outer = P.encode_frame(outer_payload)
    no_sof(outer[-2:], "outer crc")
    case("frame_inside_corrupted_frame", "fixed rescan delivers a whole frame found inside a corrupted "
         "frame's payload (outer LEN byte, 0x7f and the 2 CRC bytes discarded); buggy drops it all",
         [flip(outer, len(outer) - 1) + B],
         {"p": "B", "frames_ok": 1, "crc_errors": 1, "bytes_discarded": len(outer)},
         {"p": "AB", "frames_ok": 2, "crc_errors": 1, "resyncs": 1, "bytes_discarded": 1 + 2 + 2})

    out = []
    for name, why, segments, buggy, fixed in cases:
        entry = {"name": name, "why": why, "segments": [s.hex() for s in segments], "expect": {}}
        for mode, exp in (("buggy", buggy), ("fixed", fixed)):
            payloads = [PAY[k] for k in exp.get("p", "")]
            counters = {c: exp.get(c, 0) for c in COUNTERS}
            got_payloads, got_counters = run_stream(segments, resync=(mode == "fixed"))
            assert got_payloads == payloads, (name, mode, [p.hex() for p in got_payloads])
            assert got_counters == counters, (name, mode, got_counters, counters)
            entry["expect"][mode] = {"payload_names": list(exp.get("p", "")),
                                     "payloads": [p.hex() for p in payloads], "counters": counters}
        entry["modes_differ"] = entry["expect"]["buggy"] != entry["expect"]["fixed"]
        out.append(entry)
    assert any(e["modes_differ"] for e in out)
    return out


def run_stream(segments: list[bytes], resync: bool) -> tuple[list[bytes], dict]:
    """Feed segments with an idle event between consecutive segments (the vectors' stream rule)."""
    d = P.FrameDecoder(resync=resync)
    got: list[bytes] = []
    for i, seg in enumerate(segments):
        if i:
            got += d.idle()
        got += d.feed(seg)
    return got, d.counters()


def main() -> None:
    doc = {
        "about": "duohil link protocol test vectors; generated by protocol/gen_vectors.py, spec in "
                 "protocol/PROTOCOL.md. Hex strings are lowercase. A stream is a list of segments fed "
                 "in order with one idle-line event between consecutive segments (an empty last "
                 "segment means a trailing idle).",
        "protocol_version": P.PROTO_VERSION,
        "counters": list(COUNTERS),
        "crc": crc_vectors(),
        "frames": frame_vectors(),
        "message_errors": message_error_vectors(),
        "cm6_layout": cm6_vectors(),
        "stream_payloads": {k: v.hex() for k, v in PAY.items()},
        "streams": stream_vectors(),
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(doc['crc'])} crc, {len(doc['frames'])} frames, "
          f"{len(doc['message_errors'])} message errors, {len(doc['cm6_layout'])} cm6, "
          f"{len(doc['streams'])} streams")


if __name__ == "__main__":
    main()
