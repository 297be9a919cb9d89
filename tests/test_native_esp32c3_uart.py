"""Differential tests: the ESP32-C3 UART in C (native/esp32c3_uart.c, ``_core.Esp32c3Uart``)
against the Python reference (esp32c3_uart.py).

Two UARTs, one per DUOHIL_MODELS value, each alone in a machine with a stub CPU (it records the
poll hints and state-changing reads, and is sometimes mid-slice so that ``now()`` is its slice
start), the IRQ output recorded edge by edge and the TX wire recorded. Hypothesis drives both
through the same program: register writes of every size and offset (clock source, dividers with
fractions, frame format, thresholds, RX timeout, FIFO resets, loopback, INT_ENA / INT_CLR, holes),
reads of every register (the RX FIFO pops), FIFO fills past 128 both ways, characters received
with and without framing errors, start bits (``rx_start``), time advanced, resets. After every
step both returned the same values, made the same IRQ edges, sent the same characters with the
same times and frame lengths, gave the same poll hints, fired the same events (time, sequence
number, name), hold the same pending events and event log and the same counters and FIFOs.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x6001_0000
FIFO, INT_RAW, INT_ST, INT_ENA, INT_CLR = 0x00, 0x04, 0x08, 0x0C, 0x10
CLKDIV, STATUS, CONF0, CONF1, MEM_CONF, FSM_STATUS, CLK_CONF = 0x14, 0x1C, 0x20, 0x24, 0x60, 0x6C, 0x78
BT = 8_680_469


class StubCpu:
    def __init__(self, calls: list) -> None:
        self.calls = calls
        self.executing = False
        self.slice_start_ps = 0

    def poll_hint(self, base: int, wake: int | None) -> None:
        self.calls.append(("hint", base, wake))

    def note_write(self) -> None:
        self.calls.append(("note_write",))


class Line:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def set_input(self, line: int, level: bool) -> None:
        self.calls.append(("irq", line, level))


class Rig:
    def __init__(self, models: str) -> None:
        with native.using(models):
            self.sched = Scheduler()
            self.m = Machine("peer", self.sched)
            self.dev = ESP32C3Uart(self.m, "uart1", BASE)
        assert hasattr(self.dev, "_native_mmio") == (models == "native")
        self.calls: list = []
        self.m.cpu = StubCpu(self.calls)
        self.dev.output("IRQ").connect(Line(self.calls), 22)
        self.dev.tx_sink = lambda uart, b, t, bt, fb: self.calls.append(("tx", b, t, bt, fb, type(fb)))
        self.sched.on_event(lambda ev: self.calls.append(("event", ev.time, ev.seq, ev.name)))

    def pending(self) -> list:
        return sorted((t, seq, ev.name) for t, seq, ev in self.sched._heap if not ev.cancelled)

    def state(self) -> tuple:
        d = self.dev
        return (list(self.calls), self.pending(), list(self.sched.log), self.sched.now,
                list(d.rx_fifo), list(d.tx_fifo), d.latched, d.tx_busy, d.tx_end_ps, d.rx_overruns,
                d.tx_overflows, d.frame_errors, d.bit_time_ps(), d.char_time_ps(), d.frame_bits(),
                d.baud(), d.int_raw(), d.status(), d.output("IRQ").level)


OFFSETS = st.sampled_from([FIFO, INT_RAW, INT_ST, INT_ENA, INT_CLR, CLKDIV, 0x18, STATUS, CONF0, CONF1,
                           0x34, 0x48, MEM_CONF, FSM_STATUS, CLK_CONF, 0x7C, 0x80, 0x50, 0x84, 0xF0])
CLK = st.builds(lambda b, a, num, sel, en, tx, rx: b | a << 6 | num << 12 | sel << 20 | en << 22 | tx << 24
                | rx << 25, st.sampled_from([0, 0, 3, 63]), st.integers(0, 63),
                st.sampled_from([0, 0, 1, 255]),
                st.integers(0, 3), st.sampled_from([1, 1, 0]), st.sampled_from([1, 1, 0]),
                st.sampled_from([1, 1, 0]))
DIV = st.one_of(st.just(694 | 7 << 20), st.builds(lambda d, f: d | f << 20, st.integers(0, 0xFFF),
                                                  st.integers(0, 15)))
CONF0_V = st.builds(lambda bits, par, stop, lb, rrst, trst, mask: 0x1000_0000 | bits << 2 | par << 1
                    | stop << 4 | lb << 14 | rrst << 17 | trst << 18 | mask << 26,
                    st.integers(0, 3), st.integers(0, 1), st.integers(0, 3), st.sampled_from([0, 0, 1]),
                    st.sampled_from([0, 0, 0, 1]), st.sampled_from([0, 0, 0, 1]), st.integers(0, 1))
CONF1_V = st.builds(lambda full, empty, dis, tout: full | empty << 9 | dis << 18 | tout << 21,
                    st.sampled_from([0, 1, 2, 5, 0x60, 128, 0x1FF]),
                    st.sampled_from([0, 1, 5, 0x60, 127, 128]),
                    st.integers(0, 1), st.sampled_from([1, 1, 0]))
MEM_V = st.builds(lambda thr: 0x12 | thr << 16, st.sampled_from([0, 1, 2, 10, 0x3FF]))
OP = st.one_of(
    st.tuples(st.just("wr"), st.just(CLK_CONF), st.just(4), CLK),
    st.tuples(st.just("wr"), st.just(CLKDIV), st.just(4), DIV),
    st.tuples(st.just("wr"), st.just(CONF0), st.just(4), CONF0_V),
    st.tuples(st.just("wr"), st.just(CONF1), st.just(4), CONF1_V),
    st.tuples(st.just("wr"), st.just(MEM_CONF), st.just(4), MEM_V),
    st.tuples(st.just("wr"), st.sampled_from([INT_ENA, INT_CLR]), st.just(4), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("wr"), OFFSETS, st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("wr_sub"), OFFSETS, st.integers(0, 3), st.integers(0, 0xFF)),
    st.tuples(st.just("tx"), st.integers(1, 140), st.integers(0, 255)),
    st.tuples(st.just("rd"), OFFSETS, st.sampled_from([1, 2, 4]), st.integers(1, 3)),
    st.tuples(st.just("rx"), st.integers(1, 140), st.integers(0, 255), st.booleans(),
              st.integers(0, 12 * BT)),
    st.tuples(st.just("start"), st.integers(0, 30 * BT)),
    st.tuples(st.just("run"), st.integers(0, 300 * BT)),
    st.tuples(st.just("slice"), st.integers(0, 5 * BT)),
    st.tuples(st.just("reset"),),
)


def apply(r: Rig, op: tuple) -> list:
    d, out = r.dev, []
    kind = op[0]
    if kind == "wr":
        d.write(op[1], op[2], op[3])
    elif kind == "wr_sub":
        d.write(op[1] + op[2], 1, op[3])
    elif kind == "tx":
        for i in range(op[1]):
            d.write(FIFO, 4, (op[2] + i) & 0xFF)
            out.append((d.int_raw(), d.status()))
    elif kind == "rd":
        out = [(d.read(op[1], op[2]), d.int_raw()) for _ in range(op[3])]
    elif kind == "rx":
        for i in range(op[1]):
            d.rx_char((op[2] + i) & 0xFF, op[3] and i % 3 == 0)
            out.append((d.int_raw(), d.status()))          # every fill level, thresholds crossed
            r.sched.run_until(r.sched.now + op[4])
    elif kind == "start":
        d.rx_start(r.sched.now + op[1])
    elif kind == "run":
        r.sched.run_until(r.sched.now + op[1])
    elif kind == "slice":             # the next accesses happen mid-slice (now() = slice start)
        r.m.cpu.executing = not r.m.cpu.executing
        r.m.cpu.slice_start_ps = r.sched.now + op[1]
    else:
        d.reset()
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, max_size=30))
def test_esp32c3_uart_native_equals_python(ops):
    py, nat = Rig("python"), Rig("native")
    for op in ops:
        assert apply(nat, op) == apply(py, op), op
        assert nat.state() == py.state(), op
    for r in (py, nat):
        r.m.cpu.executing = False
        r.sched.run_until(r.sched.now + 2000 * BT)
    assert nat.state() == py.state()


def test_native_ports_reach_the_same_model():
    """_native_mmio and _native_uart_rx are capsules of the ports.h protocol on this very object."""
    with native.using("native"):
        m = Machine("peer", Scheduler())
        d = ESP32C3Uart(m, "uart1", BASE)
    assert d._native_mmio.__class__.__name__ == "PyCapsule"
    assert "duohil.native.mmio" in repr(d._native_mmio)
    assert "duohil.native.uart_rx" in repr(d._native_uart_rx)
    d.rx_char(0x41)
    assert d.read(STATUS, 4) & 0x3FF == 1 and d.read(FIFO, 4) == 0x41
