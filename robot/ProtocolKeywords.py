"""Robot keywords for the duohil link protocol (CM2 resync at the frame level).

A thin layer over duohil.protocol so a Robot test reads like the fault it checks; the decoder is the
same Python twin of protocol/frame.c that the pytest suites hold to the C code.
"""

from __future__ import annotations

from robot.api.deco import keyword, library

from duohil import protocol as P


@library(scope="TEST", auto_keywords=False)
class ProtocolKeywords:
    """One decoder per test; frames are passed around as bytes."""

    def __init__(self) -> None:
        self._decoder: P.FrameDecoder | None = None
        self._delivered: list[bytes] = []

    @keyword("Encode Setpoint Frame")
    def encode_setpoint_frame(self, seq: int, velocity: int, flags: int = P.SETPOINT_F_ENABLE) -> bytes:
        """A complete frame carrying one setpoint."""
        return P.encode_frame(P.Setpoint(seq=seq, velocity=velocity, flags=flags).encode())

    @keyword("Corrupt LEN Of Frame")
    def corrupt_len_of_frame(self, frame: bytes, len: int) -> bytes:
        """The same frame with its LEN byte replaced, as one noise hit on the line would do."""
        if not 0 <= len <= 255:
            raise ValueError(f"LEN must be 0..255, got {len}")
        if len == frame[1]:
            raise ValueError(f"LEN is already {len}: that is no corruption")
        return frame[:1] + bytes((len,)) + frame[2:]

    @keyword("Start ${mode} Decoder")
    def start_decoder(self, mode: str) -> None:
        """``Resync`` is the CM2 fix (FIX_RESYNC=1), ``Buggy`` the field bug (FIX_RESYNC=0)."""
        modes = {"resync": True, "fixed": True, "buggy": False}
        if mode.lower() not in modes:
            raise ValueError(f"decoder mode must be one of {sorted(modes)}, got {mode!r}")
        self._decoder = P.FrameDecoder(resync=modes[mode.lower()])
        self._delivered = []

    @keyword("Send Frame")
    def send_frame(self, frame: bytes) -> None:
        """The bytes of one frame arrive, followed by the idle gap between frames."""
        d = self._require_decoder()
        self._delivered += d.feed(frame)
        self._delivered += d.idle()

    @keyword("Decoder Should Have Delivered Setpoint ${seq}")
    def should_have_delivered(self, seq: str) -> None:
        if int(seq) not in self._setpoint_seqs():
            raise AssertionError(f"setpoint seq={seq} was not delivered; delivered seqs: "
                                 f"{self._setpoint_seqs()}, counters: {self._require_decoder().counters()}")

    @keyword("Decoder Should Not Have Delivered Setpoint ${seq}")
    def should_not_have_delivered(self, seq: str) -> None:
        if int(seq) in self._setpoint_seqs():
            raise AssertionError(f"setpoint seq={seq} was delivered; counters: "
                                 f"{self._require_decoder().counters()}")

    @keyword("Decoder Counter ${name} Should Be ${value}")
    def counter_should_be(self, name: str, value: str) -> None:
        counters = self._require_decoder().counters()
        if name not in counters:
            raise ValueError(f"no counter {name!r}; counters are {list(counters)}")
        if counters[name] != int(value):
            raise AssertionError(f"counter {name} is {counters[name]}, expected {value}; all: {counters}")

    def _setpoint_seqs(self) -> list[int]:
        return [P.Setpoint.decode(p).seq for p in self._delivered if p[:1] == bytes((P.MSG_SETPOINT,))]

    def _require_decoder(self) -> P.FrameDecoder:
        if self._decoder is None:
            raise RuntimeError("no decoder: call 'Start Resync Decoder' or 'Start Buggy Decoder' first")
        return self._decoder
