"""Specification tests of the ESP32-C3 UART (native/esp32c3_uart.c, the one copy; esp32c3_uart.py).

What is checked is the model's documented behaviour (esp32c3_uart.py's docstring, after ESP-IDF's
uart_reg.h and shared/reference/esp32c3-peer.md section 2), as properties of every step of a
random program rather than examples (tests/test_esp32c3_uart.py has those):
- timing: bit time = (SCLK_DIV_NUM + 1 + SCLK_DIV_A/SCLK_DIV_B) * (CLKDIV + FRAG/16) / f_sclk
  (APB 80 MHz, RC_FAST 17.5 MHz, XTAL 40 MHz by SCLK_SEL; none while SCLK_EN is 0, the divider is
  0 or, for the receiver, RX_SCLK_EN is 0); a frame is start + 5..8 data + parity + 1/1.5/2 stop
  bits; a character lasts round(frame * bit time);
- STATUS: the idle line bits, RXFIFO_CNT and TXFIFO_CNT (each at most 128); FSM_STATUS.ST_UTX_OUT
  non-zero exactly while a character is shifting out;
- INT_RAW: RXFIFO_FULL = RXFIFO_CNT >= RXFIFO_FULL_THRHD with data, TXFIFO_EMPTY = TXFIFO_CNT <=
  TXFIFO_EMPTY_THRHD (levels), the latched bits (RXFIFO_TOUT, RXFIFO_OVF, FRM_ERR, TX_DONE) until
  INT_CLR; INT_ST = INT_RAW & INT_ENA; IRQ = INT_ST != 0, an edge only when it changes;
- RX: with the receiver clocked, a character is stored in order unless RXFIFO_RST is set or it
  has a framing error under ERR_WR_MASK; a full FIFO loses it (``rx_overruns``, RXFIFO_OVF unless
  DIS_RX_DAT_OVF); a framing error latches FRM_ERR; a FIFO read pops the oldest byte (0 if empty);
  the RX timeout fires RX_TOUT_THRHD bit times after the last character when enabled;
- TX: a write queues the byte unless TXFIFO_RST (or the FIFO is full: ``tx_overflows``); bytes
  leave the FIFO in order, onto the wire (or into this UART's receiver with LOOPBACK), never
  overlapping, back to back one character time apart, the sink told the bit time and frame bits;
  TX_DONE latches when the last one has left;
- poll-skip: reads of STATUS, INT_RAW, INT_ST and FSM_STATUS hint the CPU (the end of the
  character shifting out, if any); a FIFO read is a state-changing read, counted as a write
  (``Machine.mmio_writes``: it breaks a CPU's poll run; the CPU is not called).

One UART in a machine with a stub CPU (records the hints, sometimes mid-slice so that ``now()`` is
its slice start); the IRQ line, the TX wire and the fired events recorded. Hypothesis drives it
through register writes of every size and offset (clock source, dividers with fractions, frame
format, thresholds, RX timeout, FIFO resets, loopback, INT_ENA / INT_CLR, holes), reads of every
register, FIFO fills past 128 both ways, characters received with and without framing errors, start
bits (``rx_start``), time advanced and resets.
"""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import (
    FRM_ERR,
    RXFIFO_FULL,
    RXFIFO_OVF,
    RXFIFO_TOUT,
    TX_DONE,
    TXFIFO_EMPTY,
    ESP32C3Uart,
)

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x6001_0000
FIFO, INT_RAW, INT_ST, INT_ENA, INT_CLR = 0x00, 0x04, 0x08, 0x0C, 0x10
CLKDIV, STATUS, CONF0, CONF1, MEM_CONF, FSM_STATUS, CLK_CONF = 0x14, 0x1C, 0x20, 0x24, 0x60, 0x6C, 0x78
POLLED = (INT_RAW, INT_ST, STATUS, FSM_STATUS)
LATCHED = RXFIFO_TOUT | RXFIFO_OVF | FRM_ERR | TX_DONE
BT = 8_680_469
SCLK = {1: 80_000_000, 2: 17_500_000, 3: 40_000_000}


class StubCpu:
    def __init__(self, calls: list) -> None:
        self.calls = calls
        self.executing = False
        self.slice_start_ps = 0

    def poll_hint(self, base: int, wake: int | None) -> None:
        self.calls.append(("hint", base, wake))


class Line:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def set_input(self, line: int, level: bool) -> None:
        self.calls.append(("irq", line, level))


class Rig:
    def __init__(self) -> None:
        self.sched = Scheduler()
        self.m = Machine("peer", self.sched)
        self.dev = ESP32C3Uart(self.m, "uart1", BASE)
        assert type(self.dev) is ESP32C3Uart and isinstance(self.dev, native.core().Esp32c3Uart)
        self.calls: list = []
        self.m.cpu = StubCpu(self.calls)
        self.dev.output("IRQ").connect(Line(self.calls), 22)
        self.dev.tx_sink = lambda uart, b, t, bt, fb: self.calls.append(("tx", b, t, bt, fb))
        self.sched.on_event(lambda ev: self.calls.append(("event", ev.time, ev.name)))
        self.wire: list[tuple] = []                   # ("tx", byte, t, bt, fb) since the last reset
        self.last_rx: tuple[int, int | None] | None = None     # (time, timeout in ps or None)
        self.busy_until = 0                           # the last start bit's arrival (rx_start)

    def reg(self, off: int) -> int:
        return self.dev._reg(off)


# -- what the description says, from the register words ---------------------------------------------
def bit_time(clk: int, div: int, rx: bool) -> int | None:
    sclk = SCLK.get(clk >> 20 & 3)
    clkdiv, frag = div & 0xFFF, div >> 20 & 0xF
    if (rx and not clk >> 25 & 1) or not sclk or not clk >> 22 & 1 or (clkdiv == 0 and frag == 0):
        return None
    b, a, num = clk & 0x3F, clk >> 6 & 0x3F, clk >> 12 & 0xFF
    pre = Fraction(num + 1) + (Fraction(a, b) if b else 0)
    return round(pre * Fraction(16 * clkdiv + frag, 16) * 10**12 / sclk)


def frame_bits(conf0: int) -> Fraction:
    stop = {0: Fraction(1), 1: Fraction(1), 2: Fraction(3, 2), 3: Fraction(2)}[conf0 >> 4 & 3]
    return 1 + 5 + (conf0 >> 2 & 3) + (conf0 >> 1 & 1) + stop


def int_raw(r: Rig) -> int:
    d, c1 = r.dev, r.reg(CONF1)
    rx, tx = len(d.rx_fifo), len(d.tx_fifo)
    raw = d.latched
    if rx and rx >= c1 & 0x1FF:
        raw |= RXFIFO_FULL
    if tx <= c1 >> 9 & 0x1FF:
        raw |= TXFIFO_EMPTY
    return raw


def invariants(r: Rig, where: str) -> None:
    d = r.dev
    clk, div, c0 = r.reg(CLK_CONF), r.reg(CLKDIV), r.reg(CONF0)
    assert d.bit_time_ps() == bit_time(clk, div, rx=True), f"{where}: receiver bit time"
    bt, fb = bit_time(clk, div, rx=False), frame_bits(c0)
    assert d.frame_bits() == fb, f"{where}: frame bits"
    assert d.char_time_ps() == (None if bt is None else round(fb * bt)), f"{where}: character time"
    assert d.baud() == (None if bt is None else 10**12 / bt), f"{where}: baud"
    rx, tx = len(d.rx_fifo), len(d.tx_fifo)
    assert rx <= 128 and tx <= 128, where
    assert not d.latched & ~LATCHED, f"{where}: a latched bit that is not latched"
    hints = len(r.calls)
    assert d.read(STATUS, 4) == 0xE000_C000 | rx | tx << 16, f"{where}: STATUS"
    assert d.read(FSM_STATUS, 4) == (0x10 if d.tx_busy else 0), f"{where}: FSM_STATUS"
    raw = int_raw(r)
    assert d.int_raw() == d.read(INT_RAW, 4) == raw, f"{where}: INT_RAW"
    assert d.read(INT_ST, 4) == raw & r.reg(INT_ENA), f"{where}: INT_ST"
    wake = d.tx_end_ps if d.tx_busy else None
    assert r.calls[hints:] == [("hint", BASE, wake)] * 4, f"{where}: poll hints"
    del r.calls[hints:]
    assert d.output("IRQ").level == bool(raw & r.reg(INT_ENA) & 0x7FFFF), f"{where}: IRQ"
    levels = [c[2] for c in r.calls if c[0] == "irq"]
    assert all(a != b for a, b in zip(levels, levels[1:])), f"{where}: an IRQ edge that changes nothing"
    for (_, _b, t, bt_k, fb_k), (_, _b2, t2, *_x) in zip(r.wire, r.wire[1:]):
        assert t2 >= t + round(Fraction(fb_k) * bt_k), f"{where}: characters overlap on the wire"


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


def fifo_write(r: Rig, byte: int, where: str) -> None:
    d = r.dev
    before, over = list(d.tx_fifo), d.tx_overflows
    busy = d.tx_busy
    d.write(FIFO, 4, byte)
    after = list(d.tx_fifo)
    if r.reg(CONF0) >> 18 & 1:                                     # TXFIFO_RST: dropped
        assert after == before and d.tx_overflows == over, f"{where}: TXFIFO_RST"
    elif len(before) == 128:
        assert after == before and d.tx_overflows == over + 1, f"{where}: a full TX FIFO"
    elif busy or bit_time(r.reg(CLK_CONF), r.reg(CLKDIV), rx=False) is None \
            or not r.reg(CLK_CONF) >> 24 & 1:
        assert after == before + [byte], f"{where}: queued behind the shifter or a stopped clock"
    else:                                                          # the idle shifter takes it
        assert after == before == [] and d.tx_busy, f"{where}: the idle transmitter starts"
        assert d.tx_end_ps == r.m.now() + d.char_time_ps(), f"{where}: one character time"


def rx_char(r: Rig, byte: int, fe: bool, where: str) -> None:
    d = r.dev
    before = (list(d.rx_fifo), d.latched, d.rx_overruns, d.frame_errors)
    c0, c1 = r.reg(CONF0), r.reg(CONF1)
    clocked = d.bit_time_ps() is not None
    d.rx_char(byte, fe)
    fifo, latched, over, ferr = before
    if not clocked:
        assert (list(d.rx_fifo), d.latched, d.rx_overruns, d.frame_errors) == before, \
            f"{where}: the receiver's clock is off: the character is lost"
        return
    now = r.m.now()
    thr, bt = r.reg(MEM_CONF) >> 16 & 0x3FF, d.bit_time_ps()
    armed = c1 >> 21 & 1 and thr and now >= r.busy_until
    r.last_rx = (now, now + thr * bt if armed else None)
    if fe:
        ferr += 1
        latched |= FRM_ERR
    if c0 >> 17 & 1 or (fe and c0 >> 26 & 1):
        pass
    elif len(fifo) == 128:
        over += 1
        if not c1 >> 18 & 1:
            latched |= RXFIFO_OVF
    else:
        fifo.append(byte)
    assert (list(d.rx_fifo), d.latched, d.rx_overruns, d.frame_errors) == (fifo, latched, over, ferr), \
        f"{where}: a received character"


def run(r: Rig, dt: int, where: str) -> None:
    """Advance; the bytes that leave the TX FIFO go onto the wire in order (or, with LOOPBACK,
    not onto it), back to back one character apart; an RX timeout fires when it is due."""
    d = r.dev
    r.m.cpu.executing = False                        # events fire between slices
    queued, start = list(d.tx_fifo), len(r.calls)
    was_busy, latched = d.tx_busy, d.latched
    r.sched.run_until(r.sched.now + dt)
    new = r.calls[start:]
    sent = [c for c in new if c[0] == "tx"]
    left = queued[:len(queued) - len(d.tx_fifo)]
    assert list(d.tx_fifo) == queued[len(left):], f"{where}: the TX FIFO drains from its head"
    if r.reg(CONF0) >> 14 & 1:
        assert sent == [], f"{where}: LOOPBACK: nothing on the wire"
    else:
        assert [c[1] for c in sent] == left, f"{where}: bytes leave in FIFO order"
    char = d.char_time_ps()
    for a, b in zip(sent, sent[1:]):
        assert b[2] == a[2] + char, f"{where}: back to back, one character time apart"
    for c in sent:
        assert (c[3], c[4]) == (bit_time(r.reg(CLK_CONF), r.reg(CLKDIV), rx=False),
                                int(frame_bits(r.reg(CONF0))) if frame_bits(r.reg(CONF0)).denominator == 1
                                else float(frame_bits(r.reg(CONF0)))), f"{where}: bit time, frame bits"
    if was_busy and not d.tx_busy and not d.tx_fifo:
        assert d.latched & TX_DONE, f"{where}: TX_DONE when the last byte has left"
    for c in new:
        if c[0] == "event" and c[2] == "uart1.loopback" and d.bit_time_ps() is not None:
            thr = r.reg(MEM_CONF) >> 16 & 0x3FF                  # a character received from TX
            armed = r.reg(CONF1) >> 21 & 1 and thr and c[1] >= r.busy_until
            r.last_rx = (c[1], c[1] + thr * d.bit_time_ps() if armed else None)
        if c[0] == "event" and c[2] == "uart1.rx_tout":
            assert r.last_rx is not None and c[1] == r.last_rx[1], \
                f"{where}: the RX timeout fired at {c[1]}, due {r.last_rx}"
    if (d.latched & ~latched) & RXFIFO_TOUT:
        assert d.rx_fifo and r.reg(CONF1) >> 21 & 1, f"{where}: RXFIFO_TOUT without data or enable"
    r.wire += sent


def apply(r: Rig, op: tuple, where: str) -> None:
    d = r.dev
    kind = op[0]
    if kind in ("wr", "wr_sub"):
        off, size, value = (op[1], op[2], op[3]) if kind == "wr" else (op[1] + op[2], 1, op[3])
        latched, rx_before, start = d.latched, list(d.rx_fifo), len(r.calls)
        if off == FIFO:
            fifo_write(r, value & 0xFF, where)
        else:
            d.write(off, size, value)
        r.wire += [c for c in r.calls[start:] if c[0] == "tx"]       # a clock write starts a stalled TX
        if off == FIFO:
            return
        if off & ~3 == INT_CLR:
            # write-trigger: the bits of the word as written (a byte merges into the last word)
            assert d.latched == latched & ~r.reg(INT_CLR), f"{where}: INT_CLR clears what it names"
        elif off & ~3 == CONF0 and r.reg(CONF0) >> 17 & 1:
            assert list(d.rx_fifo) == [], f"{where}: RXFIFO_RST flushes"
        elif off & ~3 == CONF0 and r.reg(CONF0) >> 18 & 1:
            assert list(d.tx_fifo) == [], f"{where}: TXFIFO_RST flushes"
        else:
            assert d.latched == latched and list(d.rx_fifo) == rx_before, where
    elif kind == "tx":
        for i in range(op[1]):
            start = len(r.calls)
            fifo_write(r, (op[2] + i) & 0xFF, where)
            r.wire += [c for c in r.calls[start:] if c[0] == "tx"]
            invariants(r, f"{where} byte {i}")
    elif kind == "rd":
        for _ in range(op[3]):
            off, size = op[1], op[2]
            fifo, start, writes = list(d.rx_fifo), len(r.calls), r.m.mmio_writes
            got = d.read(off, size)
            if off == FIFO:
                assert got == (fifo[0] if fifo else 0) and list(d.rx_fifo) == fifo[1:], \
                    f"{where}: a FIFO read pops the oldest byte"
                # a state-changing read: counted as a write (it breaks a poll run / spin window)
                assert r.m.mmio_writes == writes + 1, f"{where}: a FIFO read changes state"
            elif off in POLLED:
                assert r.calls[start:][:1] == [("hint", BASE, d.tx_end_ps if d.tx_busy else None)], where
    elif kind == "rx":
        for i in range(op[1]):
            rx_char(r, (op[2] + i) & 0xFF, op[3] and i % 3 == 0, f"{where} byte {i}")
            invariants(r, f"{where} byte {i}")
            run(r, op[4], f"{where} byte {i}")
    elif kind == "start":
        r.busy_until = max(r.busy_until, r.sched.now + op[1])
        d.rx_start(r.sched.now + op[1])
        r.last_rx = None                                  # the idle time restarts: no timeout due
    elif kind == "run":
        run(r, op[1], where)
    elif kind == "slice":             # the next accesses happen mid-slice (now() = slice start)
        r.m.cpu.executing = not r.m.cpu.executing
        r.m.cpu.slice_start_ps = r.sched.now + op[1]
    else:
        d.reset()
        r.wire, r.last_rx, r.busy_until = [], None, 0
        assert (list(d.rx_fifo), list(d.tx_fifo), d.latched, d.tx_busy) == ([], [], 0, False), where


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(idf=st.booleans(), ops=st.lists(OP, max_size=30))
def test_the_uart_does_what_its_description_says(idf, ops):
    r = Rig()
    invariants(r, "reset")
    if idf:        # as ESP-IDF sets it up: 115200 8N1, RX timeout after 10 bit times, thresholds 96
        for off, v in ((CLK_CONF, 1 << 20 | 1 << 22 | 1 << 24 | 1 << 25), (CLKDIV, 694 | 7 << 20),
                       (CONF1, 0x60 | 0x60 << 9 | 1 << 21), (MEM_CONF, 0x12 | 10 << 16)):
            apply(r, ("wr", off, 4, v), "set-up")
        invariants(r, "set-up")
    for i, op in enumerate(ops):
        where = f"step {i} {op}"
        apply(r, op, where)
        invariants(r, where)
    r.m.cpu.executing = False
    run(r, 2000 * BT, "drain")
    invariants(r, "drain")


def test_native_ports_reach_the_same_model():
    """_native_mmio and _native_uart_rx are capsules of the ports.h protocol on this very object
    (the one copy, in C)."""
    m = Machine("peer", Scheduler())
    d = ESP32C3Uart(m, "uart1", BASE)
    assert type(d) is ESP32C3Uart
    assert "duohil.native.mmio" in repr(d._native_mmio)
    assert "duohil.native.uart_rx" in repr(d._native_uart_rx)
    d.rx_char(0x41)
    assert d.read(STATUS, 4) & 0x3FF == 1 and d.read(FIFO, 4) == 0x41
    assert d.register_name(STATUS + 2) == "STATUS" and d.register_name(0x50) is None
