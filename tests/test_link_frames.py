"""Each link direction follows its sender's frames (board/link.py, native/link.c dh_frame_track):
SOF, LEN, LEN payload bytes, CRC low, CRC high, counted from the link's first byte, before any
fault touches a byte. Checked against an independent reading of the same byte stream: the field
of every byte, the frame index and LEN the byte listeners see, the payloads and times the frame
listeners see, listeners added mid-stream (frames still counted from the first byte), a fault a
listener adds for the byte being sent (it applies to that byte), an error in a listener (raised
to the sender), and a session whose faults need no frames (no Python per byte)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duohil.engines.builtin.board.link import LinkFault
from duohil.protocol import SOF
from test_link import A2B, B2A, CHAR, Wire


def fields(stream: bytes) -> list[tuple[str | None, int, int]]:
    """(field, frame index, LEN) of each byte, read the way the protocol frames them."""
    out, frame, length, i = [], 0, 0, 0
    while i < len(stream):
        if stream[i] != SOF:
            out.append((None, frame, length))
            i += 1
            continue
        out.append(("SOF", frame, length))
        if i + 1 >= len(stream):
            break
        length = stream[i + 1]
        out.append(("LEN", frame, length))
        body = [f"payload[{j}]" for j in range(length)] + ["CRC_LO", "CRC_HI"]
        for j, name in enumerate(body):
            if i + 2 + j >= len(stream):
                break
            out.append((name, frame, length))
        i += 2 + len(body)
        if i <= len(stream):
            frame += 1
    return out


def frame_bytes(payload: bytes) -> bytes:
    return bytes([SOF, len(payload)]) + payload + b"\x34\x12"      # the CRC's value is not read


junk = st.binary(max_size=3).map(lambda b: bytes(x for x in b if x != SOF))
stream = st.lists(st.tuples(junk, st.binary(max_size=6)), max_size=5).map(
    lambda parts: b"".join(j + frame_bytes(p) for j, p in parts))


@settings(max_examples=60, deadline=None)
@given(stream, st.integers(0, 12))
def test_fields_frames_and_payloads_as_the_protocol_reads_them(data, attach_at):
    w = Wire()
    d = w.link.directions[A2B]
    seen, frames = [], []
    attach_at = min(attach_at, len(data))

    def attach() -> None:                        # part-way through: counting began at byte 0
        d.byte_listeners.append(lambda k, f, n, ln: seen.append((k, f, n, ln)))
        d.frame_listeners.append(lambda n, p, t: frames.append((n, p, t)))

    def go(chunk: bytes) -> None:
        for byte in chunk:
            w.ma.bus_write(0x6000_0000, 4, byte)
    # the UART's FIFO holds 128: the stream goes out in two writes, the listeners in between
    w.sched.at(0, lambda: go(data[:attach_at]))
    w.sched.at(attach_at * CHAR, attach)
    w.sched.at(attach_at * CHAR, lambda: go(data[attach_at:]))
    w.sched.run_until((len(data) + 2) * CHAR)
    want = fields(data)
    assert [(f, n, ln) for _k, f, n, ln in seen] == want[attach_at:]
    assert [k for k, *_ in seen] == list(range(attach_at, len(data)))
    ends = [i for i, (f, _n, _ln) in enumerate(want) if f == "CRC_HI"]
    want_frames = []
    for i in ends:
        n, ln = want[i][1], want[i][2]
        if i >= attach_at:
            want_frames.append((n, data[i - 1 - ln:i - 1], i * CHAR))   # sent back to back
    assert frames == want_frames
    assert d.frames == len(ends) and w.link.directions[B2A].frames == 0


def test_a_listener_arms_a_fault_for_the_byte_being_sent():
    w = Wire()
    d = w.link.directions[A2B]

    def on_byte(k: int, field: str | None, frame: int, _len: int) -> None:
        if frame == 1 and field == "payload[1]":
            w.link.add_fault(A2B, LinkFault("flip", index=k, mask=0xFF))
    d.byte_listeners.append(on_byte)
    w.send("a", frame_bytes(b"\x01\x02") + frame_bytes(b"\x03\x04"))
    w.sched.run_until(20 * CHAR)
    got = [(b.value, b.sent, b.fault) for b in w.taps(A2B)]
    assert got[9] == (0x04 ^ 0xFF, 0x04, "flip")             # frame 1's payload[1], byte 9
    assert all(f is None for _v, _s, f in got[:9] + got[10:])


def test_an_error_in_a_listener_reaches_the_sender():
    w = Wire()
    w.link.directions[B2A].frame_listeners.append(lambda n, p, t: 1 / 0)
    w.send("b", frame_bytes(b"x"))
    with pytest.raises(ZeroDivisionError):
        w.sched.run_until(10 * CHAR)


def test_a_run_without_frame_aware_faults_runs_no_python_per_byte():
    from duohil import duo, scenario as scmod
    from pathlib import Path
    sc = scmod.load(Path(__file__).resolve().parent.parent / "scenarios" / "cm1_cmd_timeout.yaml")
    with duo.Duo.from_scenario(sc, "fixed") as d:                # a peer_stall at a time
        link = d.session.link
        assert d.session._injector is not None
        assert link._tx_observers == []
        assert all(not x.byte_listeners and not x.frame_listeners
                   for x in link.directions.values())
        d.run_until_ps(300 * 10**9)
        assert link.directions["peer->stm32"].frames > 20      # still counted, in C
