"""duohil link protocol: framing, CRC-16/MODBUS, the two decoder behaviours and the messages.

This is the Python twin of ``protocol/frame.c`` and ``protocol/messages.c``; the spec is
``protocol/PROTOCOL.md`` and ``protocol/vectors.json`` pins both sides to the same bytes. The
decoder mirrors the C one step by step (including its counters) because the oracles compare what
the harness decodes with what the firmware reports in its status block.

``FrameDecoder(resync=False)`` is the CM2 field bug (``FIX_RESYNC=0``), ``resync=True`` the fix.
The ``*_natural`` / ``*_as_packed_overlay`` helpers model the CM6 layout bug for the oracle.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import ClassVar, Self

__all__ = [
    "COUNTERS",
    "MAX_FRAME",
    "MAX_PAYLOAD",
    "MESSAGE_TYPES",
    "MSG_ERR_LENGTH",
    "MSG_ERR_TYPE",
    "MSG_ERR_VERSION",
    "MSG_HEARTBEAT",
    "MSG_OK",
    "MSG_PID_PARAMS",
    "MSG_SENSOR_REPORT",
    "MSG_SETPOINT",
    "MSG_TELEMETRY",
    "OVERHEAD",
    "PROTO_VERSION",
    "SOF",
    "FrameDecoder",
    "Heartbeat",
    "Message",
    "PidParams",
    "ProtocolError",
    "SensorReport",
    "Setpoint",
    "Telemetry",
    "crc16_modbus",
    "decode_message",
    "decode_sensor_report_as_packed_overlay",
    "decode_setpoint_as_packed_overlay",
    "encode_frame",
    "encode_sensor_report_natural",
    "encode_setpoint_natural",
]

# --- framing constants (frame.h) -----------------------------------------------------------------
SOF = 0xFE
MAX_PAYLOAD = 252
OVERHEAD = 4                      # SOF, LEN, CRC lo, CRC hi
MAX_FRAME = MAX_PAYLOAD + OVERHEAD

# --- message constants (messages.h) --------------------------------------------------------------
PROTO_VERSION = 1
MSG_SETPOINT = 0x01
MSG_PID_PARAMS = 0x02
MSG_HEARTBEAT = 0x03
MSG_SENSOR_REPORT = 0x04
MSG_TELEMETRY = 0x81

MSG_SETPOINT_LEN = 10
MSG_PID_PARAMS_LEN = 14
MSG_HEARTBEAT_LEN = 8
MSG_SENSOR_REPORT_LEN = 11
MSG_TELEMETRY_LEN = 24

SENSOR_BODY_PACKED = 9
SENSOR_BODY_NATURAL = 12
SETPOINT_BODY_PACKED = 8
SETPOINT_BODY_NATURAL = 12

SETPOINT_F_ENABLE = 0x0001
SETPOINT_F_HOME = 0x0002

CTRL_STATE_BOOT = 0
CTRL_STATE_IDLE = 1
CTRL_STATE_RUN = 2
CTRL_STATE_HOLD = 3
CTRL_STATE_ESTOP = 4
CTRL_STATE_FAULT = 5

SENSOR_F_OBSTACLE = 0x00000001
SENSOR_F_OVERTEMP = 0x00000002

# decoder return codes (messages.h); ProtocolError.code carries one of the error codes
MSG_OK = 0
MSG_ERR_TYPE = 1
MSG_ERR_VERSION = 2
MSG_ERR_LENGTH = 3

COUNTERS = ("frames_ok", "crc_errors", "len_errors", "resyncs", "idle_resets", "bytes_discarded")


class ProtocolError(ValueError):
    """A payload that is not a valid message: wrong type, version or length.

    ``code`` is the matching ``MSG_ERR_*`` value, so a test can compare with the C decoder's rc.
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _as_bytes(data: object, what: str) -> bytes:
    # bytearray/memoryview are fine; str/int/list are not: a str here is always a caller's bug.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes-like, not {type(data).__name__}")
    return bytes(data)


# --- CRC ---------------------------------------------------------------------------------------

def _make_crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16_modbus(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/MODBUS (reflected 0xA001, init 0xFFFF, no final xor); ``crc`` continues a running CRC."""
    data = _as_bytes(data, "data")
    if not isinstance(crc, int) or not 0 <= crc <= 0xFFFF:
        raise ValueError(f"crc must be an int in 0..0xFFFF, got {crc!r}")
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def encode_frame(payload: bytes) -> bytes:
    """Wrap a payload as ``SOF | LEN | PAYLOAD | CRC lo | CRC hi``."""
    payload = _as_bytes(payload, "payload")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload is {len(payload)} bytes; a frame carries at most {MAX_PAYLOAD}")
    body = bytes((len(payload),)) + payload
    crc = crc16_modbus(body)
    return bytes((SOF,)) + body + bytes((crc & 0xFF, crc >> 8))


# --- decoder -----------------------------------------------------------------------------------

class FrameDecoder:
    """Byte-at-a-time frame decoder, step-for-step the same as ``frame_decoder_*`` in frame.c.

    ``resync=False`` is the CM2 field bug: LEN trusted (0..255), idle ignored, a CRC failure drops
    the whole buffered span. ``resync=True`` is the fix: LEN > 252 rejected at once, any rejected
    candidate rescanned from the byte after its SOF, idle abandons partial frames (after rescanning
    them). Counters have the C meanings; ``bytes_discarded`` counts bytes that end in no valid frame.
    """

    def __init__(self, resync: bool = True) -> None:
        self.resync = bool(resync)
        self.frames_ok = 0
        self.crc_errors = 0
        self.len_errors = 0
        self.resyncs = 0
        self.idle_resets = 0
        self.bytes_discarded = 0
        self._raw = bytearray()   # the partial candidate frame, SOF first (C: raw[0..n))
        self._len = 0

    @property
    def pending(self) -> int:
        """Bytes of a partial frame currently buffered (C: ``d->n``)."""
        return len(self._raw)

    def counters(self) -> dict[str, int]:
        """The six counters by their C names, for comparisons and status reports."""
        return {name: getattr(self, name) for name in COUNTERS}

    def feed(self, data: bytes) -> list[bytes]:
        """Feed received bytes; returns the payloads of the frames they complete, in order."""
        data = _as_bytes(data, "data")
        out: list[bytes] = []
        for b in data:
            self.push(b, out)
        return out

    def push(self, b: int, out: list[bytes]) -> None:
        """One byte of ``feed`` (0..255); the payloads it completes are appended to ``out``."""
        if not self.resync:
            self._feed_buggy(b, out)
            return
        raw = self._raw
        if not raw:
            if b != SOF:                                 # fast path while hunting
                self.bytes_discarded += 1
                return
            raw.append(b)
            return                                       # a lone SOF decides nothing yet
        raw.append(b)
        # Mid-frame (LEN read, CRC not yet due) the scan from SOF would walk the same candidate
        # to the same state without deciding anything: skip it.
        if 2 < len(raw) < self._len + OVERHEAD:
            return
        self._scan(raw, 0, out)

    def idle(self) -> list[bytes]:
        """The line went idle: the fixed decoder abandons partial frames; the buggy one ignores it."""
        out: list[bytes] = []
        if not self.resync:
            return out
        while self._raw:
            self.idle_resets += 1
            self.resyncs += 1
            self.bytes_discarded += 1                    # the abandoned SOF
            buf, self._raw = self._raw, bytearray()
            self._scan(buf, 1, out)
        return out

    def _feed_buggy(self, b: int, out: list[bytes]) -> None:
        raw = self._raw
        if not raw:
            if b == SOF:
                raw.append(b)
            else:
                self.bytes_discarded += 1
        elif len(raw) == 1:
            raw.append(b)
            self._len = b                                # trusted, even above 252 (the bug)
        else:
            raw.append(b)
            if len(raw) == self._len + OVERHEAD:
                if _crc_ok(raw, self._len):
                    self.frames_ok += 1
                    out.append(bytes(raw[2:2 + self._len]))
                else:
                    self.crc_errors += 1
                    self.bytes_discarded += len(raw)     # the whole span, hidden frames included
                raw.clear()

    def _scan(self, buf: bytearray, s: int, out: list[bytes]) -> None:
        """Scan ``buf[s:]``; same loop as ``scan()`` in frame.c (candidate buf[s:s+n], rest pending)."""
        n = 0
        end = len(buf)
        while s + n < end:
            b = buf[s + n]
            if n == 0:
                if b == SOF:
                    n = 1
                else:
                    self.bytes_discarded += 1
                    s += 1
            elif n == 1:
                n = 2
                self._len = b
                if b > MAX_PAYLOAD:
                    self.len_errors += 1
                    self.resyncs += 1
                    self.bytes_discarded += 1
                    s += 1
                    n = 0
            else:
                n += 1
                if n == self._len + OVERHEAD:
                    if _crc_ok(buf[s:s + n], self._len):
                        self.frames_ok += 1
                        out.append(bytes(buf[s + 2:s + 2 + self._len]))
                        s += n
                    else:
                        self.crc_errors += 1
                        self.resyncs += 1
                        self.bytes_discarded += 1
                        s += 1
                    n = 0
        self._raw = bytearray(buf[s:s + n])


def _crc_ok(frame: bytearray, length: int) -> bool:
    got = frame[length + 2] | (frame[length + 3] << 8)
    return crc16_modbus(bytes(frame[1:length + 2])) == got


# --- messages ----------------------------------------------------------------------------------

def _check_int(cls_name: str, name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{cls_name}.{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{cls_name}.{name}={value} is out of range {lo}..{hi}")


_RANGES = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF),
           "b": (-0x80, 0x7F), "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF)}


def _check_header(payload: bytes, type_: int, length: int, name: str) -> None:
    # Same order as check_header() in messages.c, so the error codes agree.
    if len(payload) < 1:
        raise ProtocolError(f"{name}: empty payload", MSG_ERR_LENGTH)
    if payload[0] != type_:
        raise ProtocolError(f"{name}: message type 0x{payload[0]:02x}, expected 0x{type_:02x}",
                            MSG_ERR_TYPE)
    if len(payload) < 2:
        raise ProtocolError(f"{name}: payload of 1 byte has no version byte", MSG_ERR_LENGTH)
    if payload[1] != PROTO_VERSION:
        raise ProtocolError(f"{name}: protocol version {payload[1]}, expected {PROTO_VERSION}",
                            MSG_ERR_VERSION)
    if len(payload) != length:
        raise ProtocolError(f"{name}: payload is {len(payload)} bytes, expected exactly {length}",
                            MSG_ERR_LENGTH)


class _Message:
    """Shared encode/decode: a message is its header plus one little-endian struct (``_FMT``)."""

    TYPE: ClassVar[int]
    LENGTH: ClassVar[int]
    _FMT: ClassVar[str]      # struct codes of the body fields, in dataclass field order

    def __post_init__(self) -> None:
        # Validate at construction, so an out-of-range field fails where it was made, not on the wire.
        for f, code in zip(fields(self), self._FMT, strict=True):
            lo, hi = _RANGES[code]
            _check_int(type(self).__name__, f.name, getattr(self, f.name), lo, hi)

    def encode(self) -> bytes:
        """The wire payload: type, version, then the fields little-endian and packed."""
        body = struct.pack("<" + self._FMT, *(getattr(self, f.name) for f in fields(self)))
        return bytes((self.TYPE, PROTO_VERSION)) + body

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """Parse a payload; raises ProtocolError on wrong type, version or length (never guesses)."""
        payload = _as_bytes(payload, "payload")
        _check_header(payload, cls.TYPE, cls.LENGTH, cls.__name__)
        return cls(*struct.unpack_from("<" + cls._FMT, payload, 2))


@dataclass(frozen=True)
class Setpoint(_Message):
    """Velocity command from the peer (counts/s); ``seq`` lets the STM32 spot stale or repeated ones."""

    seq: int
    velocity: int
    flags: int = 0
    TYPE: ClassVar[int] = MSG_SETPOINT
    LENGTH: ClassVar[int] = MSG_SETPOINT_LEN
    _FMT: ClassVar[str] = "HiH"


@dataclass(frozen=True)
class PidParams(_Message):
    """PID gains in Q16.16 fixed point (raw ints on the wire; see ``from_float``)."""

    kp: int
    ki: int
    kd: int
    TYPE: ClassVar[int] = MSG_PID_PARAMS
    LENGTH: ClassVar[int] = MSG_PID_PARAMS_LEN
    _FMT: ClassVar[str] = "iii"

    @classmethod
    def from_float(cls, kp: float, ki: float, kd: float) -> PidParams:
        """Gains as floats, rounded to Q16.16 the way the peer firmware does."""
        return cls(*(round(g * 65536) for g in (kp, ki, kd)))


@dataclass(frozen=True)
class Heartbeat(_Message):
    """Peer liveness; ``uptime_ms`` lets the STM32 tell a reboot from a pause."""

    seq: int
    uptime_ms: int
    TYPE: ClassVar[int] = MSG_HEARTBEAT
    LENGTH: ClassVar[int] = MSG_HEARTBEAT_LEN
    _FMT: ClassVar[str] = "HI"


@dataclass(frozen=True)
class SensorReport(_Message):
    """Peer sensor reading; the CM6 message (its natural layout is 12 bytes, packed 9)."""

    id: int
    temp: int
    status: int
    flags: int
    TYPE: ClassVar[int] = MSG_SENSOR_REPORT
    LENGTH: ClassVar[int] = MSG_SENSOR_REPORT_LEN
    _FMT: ClassVar[str] = "HhBI"


@dataclass(frozen=True)
class Telemetry(_Message):
    """STM32 -> peer status; its counters are what the oracles read over the link."""

    seq: int
    position: int
    velocity: int
    state: int
    fault_flags: int
    last_seq: int
    crc_errors: int
    rejected: int
    stale: int
    overruns: int
    TYPE: ClassVar[int] = MSG_TELEMETRY
    LENGTH: ClassVar[int] = MSG_TELEMETRY_LEN
    _FMT: ClassVar[str] = "HiiBBHHHHH"


Message = Setpoint | PidParams | Heartbeat | SensorReport | Telemetry
MESSAGE_TYPES: dict[int, type] = {c.TYPE: c for c in (Setpoint, PidParams, Heartbeat, SensorReport,
                                                        Telemetry)}

for _cls in MESSAGE_TYPES.values():   # the wire length is the header plus the packed body
    assert struct.calcsize("<" + _cls._FMT) + 2 == _cls.LENGTH, _cls


def decode_message(payload: bytes) -> Message:
    """Decode any message by its type byte; unknown types raise ProtocolError(MSG_ERR_TYPE)."""
    payload = _as_bytes(payload, "payload")
    if not payload:
        raise ProtocolError("empty payload: no message type byte", MSG_ERR_LENGTH)
    cls = MESSAGE_TYPES.get(payload[0])
    if cls is None:
        raise ProtocolError(f"unknown message type 0x{payload[0]:02x}", MSG_ERR_TYPE)
    return cls.decode(payload)


# --- CM6: the natural (aligned) layout and what a packed overlay reads from it ------------------

def _pad_byte(pad: int) -> int:
    _check_int("natural layout", "pad", pad, 0, 0xFF)
    return pad


def encode_sensor_report_natural(m: SensorReport, pad: int = 0x00) -> bytes:
    """CM6 bug, sender side: the body as a naturally aligned struct (id@0 temp@2 status@4 pad@5..7
    flags@8 = 12 bytes) after the normal header. ``pad`` fills the padding (Go zeroes it; C may not)."""
    p = _pad_byte(pad)
    body = (struct.pack("<HhB", m.id, m.temp, m.status) + bytes((p, p, p))
            + struct.pack("<I", m.flags))
    assert len(body) == SENSOR_BODY_NATURAL
    return bytes((MSG_SENSOR_REPORT, PROTO_VERSION)) + body


def encode_setpoint_natural(m: Setpoint, pad: int = 0x00) -> bytes:
    """CM6 bug, sender side: seq@0 pad@2..3 velocity@4 flags@8 pad@10..11 = 12-byte body."""
    p = _pad_byte(pad)
    body = (struct.pack("<H", m.seq) + bytes((p, p)) + struct.pack("<iH", m.velocity, m.flags)
            + bytes((p, p)))
    assert len(body) == SETPOINT_BODY_NATURAL
    return bytes((MSG_SETPOINT, PROTO_VERSION)) + body


def _overlay_check(payload: bytes, type_: int, body_packed: int, name: str) -> bytes:
    # The buggy receiver dispatches on the type byte and then overlays the packed struct at offset 2
    # without checking version or length. We refuse only what it could not read at all.
    payload = _as_bytes(payload, "payload")
    if not payload or payload[0] != type_:
        got = f"0x{payload[0]:02x}" if payload else "none"
        raise ProtocolError(f"{name} overlay: message type {got}, expected 0x{type_:02x}", MSG_ERR_TYPE)
    if len(payload) < 2 + body_packed:
        raise ProtocolError(f"{name} overlay: payload is {len(payload)} bytes, the packed struct needs "
                            f"{2 + body_packed}", MSG_ERR_LENGTH)
    return payload


def decode_sensor_report_as_packed_overlay(payload: bytes) -> SensorReport:
    """What a CM6-buggy receiver reads: the packed layout over the bytes, no length check.

    From a natural-layout payload: id, temp and status are right, ``flags`` is read from the three
    padding bytes plus the low byte of the real flags.
    """
    payload = _overlay_check(payload, MSG_SENSOR_REPORT, SENSOR_BODY_PACKED, "SensorReport")
    return SensorReport(*struct.unpack_from("<HhBI", payload, 2))


def decode_setpoint_as_packed_overlay(payload: bytes) -> Setpoint:
    """What a CM6-buggy receiver reads: the packed layout over the bytes, no length check.

    From a natural-layout payload: seq is right, ``velocity`` is two padding bytes plus the low half
    of the real velocity, ``flags`` is the high half of the real velocity.
    """
    payload = _overlay_check(payload, MSG_SETPOINT, SETPOINT_BODY_PACKED, "Setpoint")
    return Setpoint(*struct.unpack_from("<HiH", payload, 2))


def decode_sensor_report_natural(payload: bytes) -> SensorReport:
    """What a natural-layout sender meant (the oracle's reading of a CM6 peer's bytes)."""
    payload = _as_bytes(payload, "payload")
    _check_header(payload, MSG_SENSOR_REPORT, 2 + SENSOR_BODY_NATURAL, "SensorReport(natural)")
    id_, temp, status = struct.unpack_from("<HhB", payload, 2)
    (flags,) = struct.unpack_from("<I", payload, 2 + 8)
    return SensorReport(id_, temp, status, flags)


def decode_setpoint_natural(payload: bytes) -> Setpoint:
    """What a natural-layout sender meant (the oracle's reading of a CM6 peer's bytes)."""
    payload = _as_bytes(payload, "payload")
    _check_header(payload, MSG_SETPOINT, 2 + SETPOINT_BODY_NATURAL, "Setpoint(natural)")
    (seq,) = struct.unpack_from("<H", payload, 2)
    velocity, flags = struct.unpack_from("<iH", payload, 2 + 4)
    return Setpoint(seq, velocity, flags)
