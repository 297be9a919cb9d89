"""Differential tests: the UART link's per-byte path in C (native/link.c, ``_core.UartLink``)
against the Python reference (link.py's UartLink).

Two links, one per DUOHIL_MODELS value, each with its own scheduler and two recording endpoints
(one with the optional ``rx_start``, one without). Hypothesis drives both through the same
program: bytes sent in both directions at various times, bit times (equal, within and beyond the
3 % tolerance) and frame lengths (integral and 1.5 stop bits), every fault kind (flip, drop,
insert, duplicate, delay, truncate, noise with a seed), a tx observer that arms flips just in
time, receivers switched off, faults cleared, time advanced. After every step both made the same
rx_char calls at the same times, the same taps, fired the same events (time, sequence number,
name), hold the same pending events and the same event log, and drew the same random numbers.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.board.link import LinkFault, UartLink, UartLinkNative
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
    def __init__(self, models: str, seed: int) -> None:
        with native.using(models):
            self.sched = Scheduler()
            self.calls: list = []
            self.a = Endpoint("a", self.sched, self.calls, True)
            self.b = Endpoint("b", self.sched, self.calls, False)
            self.link = UartLink(self.sched, self.a, self.b, seed=seed)
        assert isinstance(self.link, UartLinkNative) == (models == "native")
        self.fired: list = []
        self.sched.on_event(lambda ev: self.fired.append((ev.time, ev.seq, ev.name)))
        self.observed: list = []
        self.arm: set[tuple[str, int]] = set()
        self.link.add_tx_observer(self._observe)

    def _observe(self, direction: str, k: int, byte: int, t: int) -> None:
        self.observed.append((direction, k, byte, t))
        if (direction, k) in self.arm:            # a frame-aware fault armed just in time
            self.link.add_fault(direction, LinkFault("flip", index=k, mask=0x80))

    def pending(self) -> list:
        return sorted((t, seq, ev.name) for t, seq, ev in self.sched._heap if not ev.cancelled)

    def state(self) -> tuple:
        return (list(self.calls), list(self.link.taps), len(self.link.taps), list(self.fired),
                self.pending(), list(self.sched.log), list(self.observed), self.link.rng.getstate(),
                self.sched.now, [self.link.bytes(d) for d in (A2B, B2A, None)])


FAULT = st.one_of(
    st.builds(lambda k, m: LinkFault("flip", index=k, mask=m), st.integers(0, 12), st.integers(-3, 0x1FF)),
    st.builds(lambda k: LinkFault("drop", index=k), st.integers(0, 12)),
    st.builds(lambda k, v: LinkFault("insert", index=k, value=v), st.integers(0, 12), st.integers(0, 0x1FF)),
    st.builds(lambda k: LinkFault("duplicate", index=k), st.integers(0, 12)),
    st.builds(lambda k, d: LinkFault("delay", index=k, delay_ps=d), st.integers(0, 12),
              st.integers(0, 30 * BT)),
    st.builds(lambda k, e: LinkFault("truncate", index=k, end=e), st.integers(0, 12),
              st.one_of(st.none(), st.integers(0, 14))),
    st.builds(lambda t0, w, ber: LinkFault("noise", t_start=t0, t_end=t0 + w, ber=ber),
              st.integers(0, 200 * BT), st.integers(0, 200 * BT),
              st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0])),
)
BIT_TIME = st.one_of(st.sampled_from([BT, BT + BT // 50, BT + BT // 10, BT - BT // 20, 1_000_000]),
                     st.integers(100_000, 20_000_000))
FRAME = st.sampled_from([10, 11, 12, 9.5, 10.5, 11.5, 7, 12.0])
DIRECTION = st.sampled_from([A2B, B2A])
OP = st.one_of(
    st.tuples(st.just("send"), st.booleans(), st.integers(0, 255), st.integers(0, 20 * BT), BIT_TIME, FRAME),
    st.tuples(st.just("fault"), DIRECTION, FAULT),
    st.tuples(st.just("arm"), DIRECTION, st.integers(0, 12)),
    st.tuples(st.just("rx_bt"), st.booleans(), st.one_of(st.none(), BIT_TIME)),
    st.tuples(st.just("clear"),),
    st.tuples(st.just("run"), st.integers(0, 40 * BT)),
)


def apply(r: Rig, op: tuple) -> None:
    kind = op[0]
    if kind == "send":
        _, from_a, byte, dt, bt, fb = op
        r.sched.run_until(r.sched.now + dt)
        src = r.a if from_a else r.b
        src.tx_sink(src, byte, r.sched.now, bt, fb)
    elif kind == "fault":
        r.link.add_fault(op[1], op[2])
    elif kind == "arm":
        r.arm.add((op[1], op[2]))
    elif kind == "rx_bt":
        (r.a if op[1] else r.b).bt = op[2]
    elif kind == "clear":
        r.link.clear_faults()
    else:
        r.sched.run_until(r.sched.now + op[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), ops=st.lists(OP, max_size=40))
def test_link_native_equals_python(seed, ops):
    py, nat = Rig("python", seed), Rig("native", seed)
    for op in ops:
        apply(py, op)
        apply(nat, op)
        assert nat.state() == py.state(), op
    py.sched.run_until(py.sched.now + 400 * BT)
    nat.sched.run_until(nat.sched.now + 400 * BT)
    assert nat.state() == py.state()


def test_noise_draws_the_same_numbers_and_flips_the_same_bits():
    """A long noisy stream both ways: every byte inside the window draws frame-bits numbers."""
    py, nat = Rig("python", 1234), Rig("native", 1234)
    for r in (py, nat):
        r.link.add_fault(A2B, LinkFault("noise", t_start=0, t_end=10**15, ber=0.05))
        r.link.add_fault(B2A, LinkFault("noise", t_start=50 * BT, t_end=900 * BT, ber=0.2))
        for i in range(100):
            r.sched.run_until(r.sched.now + 10 * BT)
            r.a.tx_sink(r.a, i, r.sched.now, BT, 10)
            r.b.tx_sink(r.b, 255 - i, r.sched.now, BT, 10.5)
        r.sched.run_until(r.sched.now + 100 * BT)
    assert nat.state() == py.state()
    taps = list(nat.link.taps)
    assert len(taps) == 200 and sum(b.fault == "noise" for b in taps) > 20
    assert any(b.sent is not None and b.value is not None for b in taps)      # bits flipped


def test_native_endpoint_through_the_rx_port():
    """The native ESP32-C3 UART as the receiver: the link calls it through its _native_uart_rx
    port, and the UART hands characters to the link through the link's _native_tx_sink port."""
    from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
    from duohil.engines.builtin.kernel.machine import Machine

    out = {}
    for models in ("python", "native"):
        with native.using(models):
            s = Scheduler()
            m = Machine("peer", s)
            u0, u1 = ESP32C3Uart(m, "u0", 0x6000_0000), ESP32C3Uart(m, "u1", 0x6001_0000)
            link = UartLink(s, u0, u1, seed=5)
        fired: list = []
        s.on_event(lambda ev, f=fired: f.append((ev.time, ev.seq, ev.name)))
        link.add_fault("u0->u1", LinkFault("flip", index=3, mask=0x0F))
        for u in (u0, u1):
            u.write(0x78, 4, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))      # APB, clocks on
            u.write(0x14, 4, 694 | (7 << 20))                                  # 115200
            u.write(0x24, 4, 0x60 | (0x60 << 9) | (1 << 21))                    # RX timeout on
        for i in range(10):
            u0.write(0, 4, 0x30 + i)
            u1.write(0, 1, 0x60 + i)
        s.run_until(s.now + 200 * BT)
        rx = [[u.read(0, 4) for _ in range(12)] for u in (u0, u1)]
        out[models] = (rx, list(link.taps), fired, list(s.log), [u.int_raw() for u in (u0, u1)])
    assert out["native"] == out["python"]
    assert out["native"][0][1][:10] == [0x30, 0x31, 0x32, 0x33 ^ 0x0F] + list(range(0x34, 0x3A))
