"""Specification tests of the UART link (native/link.c behind link.py's UartLink, the one copy):
the timing rule and every fault kind as link.py's docstring states them, seeded noise, baud
mismatch, a receiver switched off, the taps' Sequence API.

A scheduler and two recording endpoints (one with the optional ``rx_start``). Hypothesis sends
bytes one way at random times with a random bit time and frame length, with one fault of a
random kind; the expected arrivals are computed from the documented rule: a byte started at ``t``
arrives at ``max(t + frame + delays so far, previous arrival + frame)`` where ``frame =
round(frame_bits * bit_time)``, and the fault changes exactly what it says (flip: that byte's
value; drop/truncate: those bytes never arrive; insert/duplicate: one more byte one frame later;
delay: the gap before byte k and every later byte; noise: each frame bit of each byte arriving
inside the window flips when the link's ``random.Random(seed)`` draws below the BER, one draw
per frame bit, none outside the window).
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import LinkByte
from duohil.engines.builtin import native
from duohil.engines.builtin.board.link import BAUD_TOLERANCE, LinkFault, UartLink, sample_mismatched
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BT = 8_680_469
A2B, B2A = "a->b", "b->a"


class Endpoint:
    def __init__(self, name: str, sched, calls: list, with_start: bool) -> None:
        self.name = name
        self.tx_sink = None
        self.bt: int | None = BT
        self._sched = sched
        self._calls = calls
        if with_start:
            self.rx_start = lambda arrival: calls.append(("start", sched.now, name, arrival))

    def rx_char(self, byte: int, framing: bool = False) -> None:
        self._calls.append(("rx", self._sched.now, self.name, byte, framing))

    def bit_time_ps(self) -> int | None:
        return self.bt


class Rig:
    def __init__(self, seed: int = 0) -> None:
        self.sched = Scheduler()
        self.calls: list = []
        self.a = Endpoint("a", self.sched, self.calls, False)
        self.b = Endpoint("b", self.sched, self.calls, True)
        self.link = UartLink(self.sched, self.a, self.b, seed=seed)

    def send(self, sends: list[tuple[int, int]], bt: int, fb: float) -> list[int]:
        """a -> b: (gap before it, byte) each; returns the start times."""
        starts = []
        for gap, byte in sends:
            self.sched.run_until(self.sched.now + gap)
            starts.append(self.sched.now)
            self.a.tx_sink(self.a, byte, self.sched.now, bt, fb)
        self.sched.run_until(self.sched.now + (len(sends) + 40) * 13 * bt + 10**9)
        return starts

    def rx(self) -> list[tuple[int, int, bool]]:
        return [(t, v, fe) for kind, t, who, *rest in self.calls if kind == "rx" and who == "b"
                for v, fe in [rest]]


def arrivals(starts: list[int], frame: int, delay: dict[int, int] | None = None) -> list[int]:
    """The documented timing rule, one direction."""
    out, free, shift = [], 0, 0
    for k, t in enumerate(starts):
        shift += (delay or {}).get(k, 0)
        free = max(t + frame + shift, free + frame)
        out.append(free)
    return out


SENDS = st.lists(st.tuples(st.one_of(st.just(0), st.integers(0, 30 * BT)), st.integers(0, 255)),
                 min_size=1, max_size=14)
BITS = st.sampled_from([BT, 1_000_000, 104_166_667])
FRAME = st.sampled_from([10, 11, 9.5, 10.5, 12])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sends=SENDS, bt=BITS, fb=FRAME, kind=st.sampled_from(
    ["none", "flip", "drop", "insert", "duplicate", "delay", "truncate"]),
    k=st.integers(0, 15), mask=st.integers(0, 0x1FF), value=st.integers(0, 0x1FF),
    d=st.integers(0, 40 * BT), end=st.one_of(st.none(), st.integers(0, 16)))
def test_each_byte_fault_changes_exactly_what_it_says(sends, bt, fb, kind, k, mask, value, d, end):
    r = Rig()
    for e in (r.a, r.b):
        e.bt = bt
    fault = {"flip": LinkFault("flip", index=k, mask=mask), "drop": LinkFault("drop", index=k),
             "insert": LinkFault("insert", index=k, value=value),
             "duplicate": LinkFault("duplicate", index=k), "delay": LinkFault("delay", index=k, delay_ps=d),
             "truncate": LinkFault("truncate", index=k, end=end)}.get(kind)
    if fault is not None:
        r.link.add_fault(A2B, fault)
    starts = r.send(sends, bt, fb)
    sent = [b for _g, b in sends]
    frame = round(fb * bt)
    # expected taps: (time, value or None, sent when it differs, fault name, byte index)
    want: list[tuple] = []
    free = shift = 0
    for i, (t, v) in enumerate(zip(starts, sent)):
        if kind == "delay" and i == k:
            shift += d
        free = max(t + frame + shift, free + frame)
        if kind == "flip" and i == k:
            w = v ^ (mask & 0xFF)
            want.append((free, w, v if w != v else None, "flip", i))
        elif (kind == "drop" and i == k) or (kind == "truncate" and i >= k and (end is None or i < end)):
            want.append((free, None, v, kind, i))
        else:
            want.append((free, v, None, "delay" if kind == "delay" and i == k else None, i))
        if kind in ("insert", "duplicate") and i == k:      # one more byte, one frame later
            free += frame
            x = value & 0xFF if kind == "insert" else v
            want.append((free, x, v if x != v else None, kind, i))
    got = [(b.t_ps, b.value, b.sent, b.fault) for b in r.link.taps]
    assert got == [w[:4] for w in want]
    assert r.rx() == [(t, v, False) for t, v, *_ in want if v is not None]
    # the receiver with rx_start hears each start bit one frame before its arrival
    assert [c[1:] for c in r.calls if c[0] == "start"] == \
        [(t - frame, "b", t) for t, v, *_ in want if v is not None]
    recs = [(x["index"], x["fault"], x["sent"], x["value"]) for _t, kk, x in r.sched.log
            if kk == "link_fault"]
    assert recs == [(i, f, sent[i], v) for _t, v, _s, f, i in want if f is not None]
    assert r.link.directions[A2B].sent == len(sent) and r.link.directions[B2A].sent == 0
    assert r.link.directions[A2B].line_free == free and r.link.directions[A2B].shift_ps == shift


def expected_noise(seed: int, values: list[int], inside: list[bool], nbits: int, ber: float):
    """Each frame bit of each byte inside the window: one draw, flipped when below the BER; bits
    1..8 are the data bits (LSB first), the others (start, parity, stop) a framing error."""
    rng = random.Random(seed)
    out = []
    for v, ins in zip(values, inside):
        fe = flipped = False
        if ins:
            for i in range(nbits):
                if rng.random() < ber:
                    flipped = True
                    if 1 <= i <= 8:
                        v ^= 1 << (i - 1)
                    else:
                        fe = True
        out.append((v, fe, flipped))
    return out, rng.getstate()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**64), sends=SENDS, fb=FRAME, ber=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
       w0=st.integers(0, 60), w=st.integers(0, 60))
def test_noise_draws_one_number_per_frame_bit_inside_its_window(seed, sends, fb, ber, w0, w):
    r = Rig(seed)
    t0, t1 = w0 * BT * 10, (w0 + w) * BT * 10
    r.link.add_fault(A2B, LinkFault("noise", t_start=t0, t_end=t1, ber=ber))
    starts = r.send(sends, BT, fb)
    times = arrivals(starts, round(fb * BT))
    inside = [t0 <= t < t1 for t in times]
    want, state = expected_noise(seed, [b for _g, b in sends], inside, int(fb + 0.5), ber)
    assert r.link.rng.getstate() == state, "not exactly one draw per frame bit inside the window"
    got = [(b.t_ps, b.value, b.fault) for b in r.link.taps]
    assert got == [(t, v, "noise" if fl else None) for t, (v, _fe, fl) in zip(times, want)]
    assert r.rx() == [(t, v, fe) for t, (v, fe, _fl) in zip(times, want)]


def test_the_same_seed_draws_the_same_bytes_and_another_seed_does_not():
    def run(seed: int) -> list[LinkByte]:
        r = Rig(seed)
        r.link.add_fault(A2B, LinkFault("noise", t_start=0, t_end=10**15, ber=0.05))
        r.link.add_fault(B2A, LinkFault("noise", t_start=50 * BT, t_end=900 * BT, ber=0.2))
        for i in range(100):
            r.sched.run_until(r.sched.now + 10 * BT)
            r.a.tx_sink(r.a, i, r.sched.now, BT, 10)
            r.b.tx_sink(r.b, 255 - i, r.sched.now, BT, 10.5)
        r.sched.run_until(r.sched.now + 100 * BT)
        return list(r.link.taps)
    first, again, other = run(1234), run(1234), run(1235)
    assert first == again and first != other
    assert len(first) == 200 and sum(b.fault == "noise" for b in first) > 20
    assert any(b.sent is not None and b.value is not None for b in first)      # bits flipped


@settings(max_examples=100, deadline=None)
@given(byte=st.integers(0, 255), rx_bt=st.integers(BT // 2, 2 * BT))
def test_baud_mismatch_and_a_receiver_switched_off(byte, rx_bt):
    """Beyond 3 % the receiver samples the sender's waveform at its own bit times (link.py's
    sample_mismatched) and flags a framing error; within 3 % the byte comes through; a receiver
    with no bit time loses it."""
    r = Rig()
    r.b.bt = rx_bt
    r.send([(0, byte)], BT, 10)
    off = abs(rx_bt - BT) > BAUD_TOLERANCE * BT
    v = sample_mismatched(byte, BT, rx_bt) if off else byte
    assert r.rx() == [(10 * BT, v, off)]
    assert [(b.value, b.fault) for b in r.link.taps] == [(v, "baud_mismatch" if off else None)]
    r.b.bt = None
    r.send([(0, byte)], BT, 10)
    assert len(r.rx()) == 1 and list(r.link.taps)[-1].value is None
    assert list(r.link.taps)[-1].fault == "receiver_off"


def test_the_link_is_c():
    r = Rig(3)
    assert type(r.link._c) is native.core().UartLink and r.a.tx_sink == r.link._c.tx_sink
    assert r.link._c.rng is r.link.rng and type(r.link._native_tx_sink).__name__ == "PyCapsule"
    assert list(r.link.directions) == [A2B, B2A]
    with pytest.raises(ValueError, match="direction"):
        r.link.add_fault("x->y", LinkFault("drop"))
    r.link.add_fault(A2B, LinkFault("drop", index=0))
    r.link.clear_faults()                                # cleared in C too
    r.send([(0, 7)], BT, 10)
    assert r.rx() == [(10 * BT, 7, False)]


def test_taps_read_as_the_list_of_bytes():
    """Every read path of the C taps (iteration, index, negative index, slices with steps, across
    the 4 096-row chunks) gives the bytes in arrival order, equal to a list of the same."""
    r = Rig(1)
    r.link.add_fault(A2B, LinkFault("flip", index=3, mask=0x10))
    r.link.add_fault(A2B, LinkFault("drop", index=4500))
    rows = []
    for i in range(5000):
        t = r.sched.now
        r.a.tx_sink(r.a, i & 0xFF, t, BT, 10)
        r.sched.run_until(t + 10 * BT)
        v = None if i == 4500 else (i & 0xFF) ^ (0x10 if i == 3 else 0)
        rows.append(LinkByte(t_ps=t + 10 * BT, direction=A2B, value=v,
                             sent=(i & 0xFF) if v != i & 0xFF else None,
                             fault={3: "flip", 4500: "drop"}.get(i)))
    taps = r.link.taps
    assert len(taps) == 5000 and taps == rows and list(taps) == rows
    for i in (0, 3, 4095, 4096, 4500, -1, -5000):
        assert taps[i] == rows[i], i
    for a, b in ((0, 0), (4000, 4200), (4090, 4100), (4999, 6000)):
        assert taps[a:b] == rows[a:b]
    assert taps[::7] == rows[::7] and taps[10:2:-1] == rows[10:2:-1]
    assert r.link.bytes(A2B) == rows and r.link.bytes(B2A) == []
    with pytest.raises(IndexError):
        taps[5000]


def test_native_uart_endpoints_through_the_ports():
    """The ESP32-C3 UARTs as endpoints: the link delivers through their _native_uart_rx port, a
    UART hands characters to the link through its _native_tx_sink port; a flip lands."""
    from duohil.engines.builtin.kernel.machine import Machine
    from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart

    s = Scheduler()
    m = Machine("peer", s)
    u0, u1 = ESP32C3Uart(m, "u0", 0x6000_0000), ESP32C3Uart(m, "u1", 0x6001_0000)
    link = UartLink(s, u0, u1, seed=5)
    link.add_fault("u0->u1", LinkFault("flip", index=3, mask=0x0F))
    for u in (u0, u1):
        u.write(0x78, 4, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))      # APB, clocks on
        u.write(0x14, 4, 694 | (7 << 20))                                  # 115200
    for i in range(10):
        u0.write(0, 4, 0x30 + i)
        u1.write(0, 1, 0x60 + i)
    s.run_until(s.now + 200 * BT)
    assert [u1.read(0, 4) for _ in range(10)] == [0x30, 0x31, 0x32, 0x33 ^ 0x0F] + list(range(0x34, 0x3A))
    assert [u0.read(0, 4) for _ in range(10)] == list(range(0x60, 0x6A))
    assert len(link.taps) == 20 and sum(b.fault == "flip" for b in link.taps) == 1
