"""ESP32-C3 UART model, register level from Python: FIFOs, thresholds, RX timeout, overrun, TX pacing."""
from __future__ import annotations

import pytest

from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import (
    FRM_ERR,
    RXFIFO_FULL,
    RXFIFO_OVF,
    RXFIFO_TOUT,
    TX_DONE,
    TXFIFO_EMPTY,
    ESP32C3Uart,
)
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

BASE = 0x6001_0000
FIFO, INT_RAW, INT_ST, INT_ENA, INT_CLR = 0x00, 0x04, 0x08, 0x0C, 0x10
CLKDIV, STATUS, CONF0, CONF1, MEM_CONF, FSM_STATUS, CLK_CONF = 0x14, 0x1C, 0x20, 0x24, 0x60, 0x6C, 0x78
BIT_115200 = 8_680_469            # 694 + 7/16 APB cycles at 80 MHz, in ps
CHAR_115200 = 10 * BIT_115200     # 8N1


class Line:
    def __init__(self) -> None:
        self.level = False
        self.changes: list[bool] = []

    def set_input(self, line: int, level: bool) -> None:
        self.level = level
        self.changes.append(level)


class Uart:
    """A UART on a machine without a CPU: accesses happen at scheduler time."""

    def __init__(self) -> None:
        self.sched = Scheduler()
        self.machine = Machine("peer", self.sched)
        self.dev = ESP32C3Uart(self.machine, "uart1", BASE)
        self.machine.add_peripheral(self.dev)
        self.irq = Line()
        self.dev.output("IRQ").connect(self.irq, 22)
        self.sent: list[tuple[int, int, int, int]] = []
        self.dev.tx_sink = lambda uart, b, t, bt, fb: self.sent.append((t, b, bt, fb))

    def rd(self, off: int) -> int:
        return self.machine.bus_read(BASE + off, 4)

    def wr(self, off: int, value: int) -> None:
        self.machine.bus_write(BASE + off, 4, value)

    def set_115200(self) -> None:
        # as ESP-IDF: APB source, SCLK_DIV_NUM 0, clocks on; CLKDIV 694, FRAG 7
        self.wr(CLK_CONF, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))
        self.wr(CLKDIV, 694 | (7 << 20))

    def rx_at(self, t: int, byte: int, framing: bool = False) -> None:
        self.sched.at(t, self.dev.rx_char, byte, framing)


@pytest.fixture
def u() -> Uart:
    return Uart()


def test_reset_values_match_the_register_reference(u):
    assert u.rd(INT_RAW) == TXFIFO_EMPTY
    assert u.rd(STATUS) == 0xE000_C000
    assert u.rd(CONF0) == 0x1000_001C
    assert u.rd(CONF1) == 0x0000_C060
    assert u.rd(MEM_CONF) == 0x000A_0012
    assert u.rd(CLK_CONF) == 0x0370_1000
    assert u.rd(CLKDIV) == 694
    assert round(u.dev.baud()) == 28_818          # XTAL 40 MHz / 2 / 694: program the clock!


def test_baud_from_clkdiv_frag_and_source_clock(u):
    u.set_115200()
    assert u.dev.bit_time_ps() == BIT_115200
    assert round(u.dev.baud()) == 115_201
    u.wr(CLK_CONF, (3 << 20) | (1 << 22) | (1 << 24) | (1 << 25))   # XTAL 40 MHz, no divider
    u.wr(CLKDIV, 347 | (3 << 20))
    assert abs(u.dev.baud() - 40e6 / (347 + 3 / 16)) < 0.01
    u.wr(CLK_CONF, (1 << 20) | (1 << 22) | (1 << 24))                # RX clock off
    assert u.dev.bit_time_ps() is None


def test_tx_bytes_leave_one_character_time_apart(u):
    u.set_115200()
    for b in b"abc":
        u.wr(FIFO, b)
    assert [s[:2] for s in u.sent] == [(0, ord("a"))]                # 'a' went straight to the shifter
    assert (u.rd(STATUS) >> 16) & 0x3FF == 2
    assert u.rd(FSM_STATUS) >> 4 & 0xF
    u.sched.run_until(CHAR_115200 - 1)
    assert len(u.sent) == 1
    u.sched.run_until(CHAR_115200)
    assert u.sent[1][:2] == (CHAR_115200, ord("b"))
    u.sched.run_until(3 * CHAR_115200)
    assert [t for t, *_ in u.sent] == [0, CHAR_115200, 2 * CHAR_115200]
    assert all(bt == BIT_115200 and fb == 10 for _, _, bt, fb in u.sent)
    assert u.rd(STATUS) >> 16 & 0x3FF == 0 and u.rd(FSM_STATUS) == 0
    assert u.rd(INT_RAW) & TX_DONE


def test_frame_format_changes_character_time(u):
    u.set_115200()
    u.wr(CONF0, 0x1000_0000 | (3 << 2) | (3 << 4) | (1 << 1))       # 8 data, even parity, 2 stop
    u.wr(FIFO, 0x55)
    u.wr(FIFO, 0x56)
    u.sched.run_until(20 * BIT_115200)
    assert u.sent[0][3] == 12 and u.sent[1][0] == 12 * BIT_115200


def test_tx_fifo_holds_128_and_drops_the_rest(u):
    u.set_115200()
    for i in range(130):
        u.wr(FIFO, i)
    assert (u.rd(STATUS) >> 16) & 0x3FF == 128
    assert u.dev.tx_overflows == 1
    assert not u.rd(INT_RAW) & TXFIFO_EMPTY                          # 128 > threshold 96


def test_txfifo_empty_follows_threshold_as_a_level(u):
    u.set_115200()
    u.wr(CONF1, (10 << 9) | 0x60)                                    # TXFIFO_EMPTY_THRHD = 10
    u.wr(INT_ENA, TXFIFO_EMPTY)
    for i in range(13):                                              # 1 shifting + 12 queued
        u.wr(FIFO, i)
    assert not u.rd(INT_RAW) & TXFIFO_EMPTY and not u.irq.level
    u.sched.run_until(CHAR_115200)                                   # 11 queued
    assert not u.irq.level
    u.sched.run_until(2 * CHAR_115200)                               # 10 queued: <= threshold
    assert u.rd(INT_ST) & TXFIFO_EMPTY and u.irq.level
    u.wr(INT_CLR, TXFIFO_EMPTY)                                      # condition holds: re-asserts
    assert u.rd(INT_RAW) & TXFIFO_EMPTY and u.irq.level
    u.wr(INT_ENA, 0)                                                 # an ISR masks it instead
    assert not u.irq.level


def test_rxfifo_full_threshold_and_irq(u):
    u.set_115200()
    u.wr(CONF1, (0x60 << 9) | 4)                                     # RXFIFO_FULL_THRHD = 4
    u.wr(INT_ENA, RXFIFO_FULL)
    for k in range(3):
        u.rx_at((k + 1) * CHAR_115200, 0x30 + k)
    u.sched.run_until(3 * CHAR_115200)
    assert u.rd(STATUS) & 0x3FF == 3 and not u.irq.level
    u.rx_at(4 * CHAR_115200, 0x33)
    u.sched.run_until(4 * CHAR_115200)
    assert u.rd(INT_ST) == RXFIFO_FULL and u.irq.level
    u.wr(INT_CLR, RXFIFO_FULL)
    assert u.irq.level                                               # still 4 bytes: level
    assert u.rd(FIFO) == 0x30
    assert not u.irq.level and u.rd(STATUS) & 0x3FF == 3
    assert [u.rd(FIFO) for _ in range(3)] == [0x31, 0x32, 0x33]
    assert u.rd(FIFO) == 0                                           # empty FIFO reads 0


def test_rx_timeout_after_threshold_bit_times_of_silence(u):
    u.set_115200()
    u.wr(CONF1, 0xC060 | (1 << 21))                                  # RX_TOUT_EN
    u.wr(MEM_CONF, 0x0012 | (20 << 16))                              # RX_TOUT_THRHD = 20 bit times
    u.wr(INT_ENA, RXFIFO_TOUT)
    last = 3 * CHAR_115200
    for k in range(3):
        u.rx_at((k + 1) * CHAR_115200, 0x41 + k)                     # back to back: no timeout between
    u.sched.run_until(last + 20 * BIT_115200 - 1)
    assert not u.rd(INT_RAW) & RXFIFO_TOUT
    u.sched.run_until(last + 20 * BIT_115200)
    assert u.rd(INT_ST) & RXFIFO_TOUT and u.irq.level
    u.wr(INT_CLR, RXFIFO_TOUT)                                       # latched: clears
    assert not u.rd(INT_RAW) & RXFIFO_TOUT and not u.irq.level


def test_rx_timeout_needs_data_and_enable(u):
    u.set_115200()
    u.wr(CONF1, 0xC060 | (1 << 21))
    u.rx_at(CHAR_115200, 0x41)
    u.sched.run_until(CHAR_115200)
    assert u.rd(FIFO) == 0x41                                        # drained before the timeout
    u.sched.run_until(CHAR_115200 + 20 * BIT_115200)
    assert not u.rd(INT_RAW) & RXFIFO_TOUT
    u.wr(CONF1, 0xC060)                                              # disabled
    u.rx_at(u.sched.now + CHAR_115200, 0x42)
    u.sched.run_until(u.sched.now + 100 * BIT_115200)
    assert not u.rd(INT_RAW) & RXFIFO_TOUT


def test_overrun_when_rx_fifo_is_full(u):
    u.set_115200()
    u.wr(INT_ENA, RXFIFO_OVF)
    for k in range(130):
        u.rx_at((k + 1) * CHAR_115200, k & 0xFF)
    u.sched.run_until(130 * CHAR_115200)
    assert u.rd(STATUS) & 0x3FF == 128
    assert u.dev.rx_overruns == 2
    assert u.rd(INT_ST) & RXFIFO_OVF and u.irq.level
    assert [u.rd(FIFO) for _ in range(128)] == list(range(128))      # the late bytes were lost
    u.wr(INT_CLR, RXFIFO_OVF)
    assert not u.irq.level


def test_dis_rx_dat_ovf_suppresses_the_flag(u):
    u.set_115200()
    u.wr(CONF1, 0xC060 | (1 << 18))
    for k in range(129):
        u.dev.rx_char(k)
    assert u.dev.rx_overruns == 1 and not u.rd(INT_RAW) & RXFIFO_OVF


def test_framing_error_sets_frm_err_and_err_wr_mask_drops(u):
    u.set_115200()
    u.dev.rx_char(0x55, True)
    assert u.rd(INT_RAW) & FRM_ERR and u.rd(STATUS) & 0x3FF == 1
    u.wr(INT_CLR, FRM_ERR)
    u.wr(CONF0, 0x1000_001C | (1 << 26))                             # ERR_WR_MASK
    u.dev.rx_char(0x66, True)
    assert u.rd(INT_RAW) & FRM_ERR and u.rd(STATUS) & 0x3FF == 1


def test_fifo_reset_bits_flush(u):
    u.set_115200()
    for b in range(5):
        u.dev.rx_char(b)
        u.wr(FIFO, b)
    u.wr(CONF0, 0x1000_001C | (1 << 17) | (1 << 18))
    u.wr(CONF0, 0x1000_001C)
    assert u.rd(STATUS) & 0x3FF == 0 and (u.rd(STATUS) >> 16) & 0x3FF == 0


def test_receiver_clock_off_loses_bytes(u):
    u.set_115200()
    u.wr(CLK_CONF, (1 << 20) | (1 << 22) | (1 << 24))                # RX_SCLK_EN = 0
    u.dev.rx_char(0x41)
    assert u.rd(STATUS) & 0x3FF == 0


def test_loopback_returns_tx_to_rx_after_a_character_time(u):
    u.set_115200()
    u.wr(CONF0, 0x1000_001C | (1 << 14))
    u.wr(FIFO, 0x5A)
    assert u.sent == []                                              # not on the wire
    u.sched.run_until(CHAR_115200)
    assert u.rd(FIFO) == 0x5A


def test_reset_clears_fifos_and_pending_events(u):
    u.set_115200()
    for b in range(4):
        u.wr(FIFO, b)
        u.dev.rx_char(b)
    u.dev.reset()
    u.sched.run_until(10 * CHAR_115200)
    assert len(u.sent) == 1 and u.rd(STATUS) == 0xE000_C000 and u.rd(INT_RAW) == TXFIFO_EMPTY


def test_transmitter_waits_for_its_clock(u):
    u.set_115200()
    u.wr(CLK_CONF, (1 << 20) | (1 << 22) | (1 << 25))                # TX_SCLK_EN = 0
    u.wr(FIFO, 0x41)
    u.sched.run_until(3 * CHAR_115200)
    assert u.sent == [] and (u.rd(STATUS) >> 16) & 0x3FF == 1
    u.wr(CLK_CONF, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))
    assert [s[1] for s in u.sent] == [0x41]
