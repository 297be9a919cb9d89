"""The UART link: timing in both directions, baud mismatch, every fault kind, taps, determinism."""
from __future__ import annotations

import pytest

from duohil.engines.base import PS_PER_MS, LinkByte
from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import FRM_ERR, ESP32C3Uart
from duohil.engines.builtin.board.link import ConsoleSink, LinkFault, UartLink, sample_mismatched
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

BIT = 8_680_469                  # 115200 from an 80 MHz APB clock (CLKDIV 694, FRAG 7)
CHAR = 10 * BIT
A2B, B2A = "stm32->peer", "peer->stm32"


class Wire:
    """Two ESP32-C3 UARTs on two machines, joined by a UartLink, driven from Python."""

    def __init__(self, seed: int = 0, b_clkdiv: tuple[int, int] = (694, 7)) -> None:
        self.sched = Scheduler()
        self.ma = Machine("stm32", self.sched)
        self.mb = Machine("peer", self.sched)
        self.a = ESP32C3Uart(self.ma, "ua", 0x6000_0000)
        self.b = ESP32C3Uart(self.mb, "ub", 0x6000_0000)
        self.ma.add_peripheral(self.a)
        self.mb.add_peripheral(self.b)
        self._baud(self.ma, 694, 7)
        self._baud(self.mb, *b_clkdiv)
        self.link = UartLink(self.sched, self.a, self.b, names=("stm32", "peer"), seed=seed)

    @staticmethod
    def _baud(m: Machine, div: int, frag: int) -> None:
        m.bus_write(0x6000_0078, 4, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))
        m.bus_write(0x6000_0014, 4, div | (frag << 20))

    def send(self, side: str, data: bytes, t: int | None = None) -> None:
        m = self.ma if side == "a" else self.mb

        def go() -> None:
            for byte in data:
                m.bus_write(0x6000_0000, 4, byte)
        if t is None:
            go()
        else:
            self.sched.at(t, go)

    def recv(self, side: str) -> bytes:
        m = self.mb if side == "b" else self.ma
        n = m.bus_read(0x6000_001C, 4) & 0x3FF
        return bytes(m.bus_read(0x6000_0000, 4) for _ in range(n))

    def taps(self, direction: str) -> list[LinkByte]:
        return self.link.bytes(direction)


def test_byte_arrives_one_frame_after_it_starts_both_ways():
    w = Wire()
    w.send("a", b"\x41")
    w.send("b", b"\x42", t=PS_PER_MS)
    w.sched.run_until(CHAR - 1)
    assert w.recv("b") == b""
    w.sched.run_until(CHAR)
    assert w.recv("b") == b"\x41"
    w.sched.run_until(PS_PER_MS + CHAR)
    assert w.recv("a") == b"\x42"
    assert [(b.t_ps, b.direction, b.value, b.fault) for b in w.link.taps] == [
        (CHAR, A2B, 0x41, None), (PS_PER_MS + CHAR, B2A, 0x42, None)]


def test_back_to_back_bytes_are_paced_by_the_senders_baud():
    w = Wire()
    w.send("a", b"hello")
    w.sched.run_until(10 * CHAR)
    assert [b.t_ps for b in w.taps(A2B)] == [(k + 1) * CHAR for k in range(5)]
    assert w.recv("b") == b"hello"


def test_small_baud_error_is_tolerated():
    w = Wire(b_clkdiv=(700, 0))                  # 0.8 % slower receiver
    w.send("a", b"\x5a\xa5")
    w.sched.run_until(3 * CHAR)
    assert w.recv("b") == b"\x5a\xa5"
    assert not w.mb.bus_read(0x6000_0004, 4) & FRM_ERR


def test_baud_mismatch_garbles_deterministically_with_framing_error():
    w = Wire(b_clkdiv=(1388, 14))                # receiver at 57600
    w.send("a", b"\x55\x0f")
    w.sched.run_until(3 * CHAR)
    got = w.recv("b")
    assert got == bytes(sample_mismatched(x, BIT, w.b.bit_time_ps()) for x in b"\x55\x0f")
    assert got != b"\x55\x0f"
    assert w.mb.bus_read(0x6000_0004, 4) & FRM_ERR
    assert all(b.fault == "baud_mismatch" and b.sent is not None for b in w.taps(A2B))


def test_sampling_model_matches_a_wire():
    assert sample_mismatched(0x55, BIT, BIT) == 0x55
    # a receiver twice as slow samples sender bit times 3, 5, 7 (data bits 2, 4, 6), then idle 1s
    assert sample_mismatched(0x00, 100, 200) == 0xF8
    assert sample_mismatched(0x54, 100, 200) == 0xFF
    # a receiver twice as fast sees start, then data bits 0,0,1,1,2,2,3
    assert sample_mismatched(0b0000_0101, 100, 50) == 0b0110_0110


@pytest.mark.parametrize("fault,expect_values,expect_faults", [
    (LinkFault("flip", index=1, mask=0x81), [0x10, 0x11 ^ 0x81, 0x12, 0x13], [None, "flip", None, None]),
    (LinkFault("drop", index=2), [0x10, 0x11, None, 0x13], [None, None, "drop", None]),
    (LinkFault("insert", index=0, value=0xEE), [0x10, 0xEE, 0x11, 0x12, 0x13],
     [None, "insert", None, None, None]),
    (LinkFault("duplicate", index=3), [0x10, 0x11, 0x12, 0x13, 0x13], [None] * 4 + ["duplicate"]),
    (LinkFault("truncate", index=1, end=3), [0x10, None, None, 0x13],
     [None, "truncate", "truncate", None]),
    (LinkFault("truncate", index=2), [0x10, 0x11, None, None], [None, None, "truncate", "truncate"]),
])
def test_each_byte_fault(fault, expect_values, expect_faults):
    w = Wire()
    w.link.add_fault(A2B, fault)
    w.send("a", bytes([0x10, 0x11, 0x12, 0x13]))
    w.sched.run_until(10 * CHAR)
    taps = w.taps(A2B)
    assert [b.value for b in taps] == expect_values
    assert [b.fault for b in taps] == expect_faults
    assert w.recv("b") == bytes(v for v in expect_values if v is not None)
    assert w.taps(B2A) == []
    logged = [d for _, kind, d in w.sched.log if kind == "link_fault"]
    assert logged and all(d["direction"] == A2B for d in logged)


def test_inserted_byte_pushes_later_bytes_back_one_frame():
    w = Wire()
    w.link.add_fault(A2B, LinkFault("insert", index=0, value=0xEE))
    w.send("a", b"\x01\x02")
    w.sched.run_until(10 * CHAR)
    assert [b.t_ps for b in w.taps(A2B)] == [CHAR, 2 * CHAR, 3 * CHAR]


def test_delay_stretches_the_gap_and_shifts_every_later_byte():
    w = Wire()
    extra = 500 * BIT
    w.link.add_fault(A2B, LinkFault("delay", index=2, delay_ps=extra))
    w.send("a", bytes(range(5)))
    w.sched.run_until(20 * CHAR + extra)
    times = [b.t_ps for b in w.taps(A2B)]
    assert times == [CHAR, 2 * CHAR, 3 * CHAR + extra, 4 * CHAR + extra, 5 * CHAR + extra]
    assert [b.value for b in w.taps(A2B)] == list(range(5))


def test_byte_index_counts_per_direction():
    w = Wire()
    w.link.add_fault(B2A, LinkFault("flip", index=0, mask=0xFF))
    w.send("a", b"\x01\x02")
    w.send("b", b"\x03\x04", t=5 * CHAR)
    w.sched.run_until(20 * CHAR)
    assert w.recv("b") == b"\x01\x02"
    assert w.recv("a") == bytes([0x03 ^ 0xFF, 0x04])


def test_noise_burst_only_inside_its_window():
    w = Wire(seed=7)
    w.link.add_fault(A2B, LinkFault("noise", t_start=4 * CHAR, t_end=8 * CHAR, ber=1.0))
    w.send("a", bytes(range(10)))
    w.sched.run_until(12 * CHAR)
    taps = w.taps(A2B)
    for k, b in enumerate(taps):
        inside = 4 * CHAR <= b.t_ps < 8 * CHAR
        assert (b.value == (k ^ 0xFF)) == inside            # every data bit flipped at ber = 1
        assert (b.fault == "noise") == inside
    assert w.mb.bus_read(0x6000_0004, 4) & FRM_ERR            # start/stop bits hit too


def run_noisy(seed: int) -> list[LinkByte]:
    w = Wire(seed=seed)
    w.link.add_fault(A2B, LinkFault("noise", t_start=0, t_end=PS_PER_MS * 100, ber=0.02))
    w.link.add_fault(B2A, LinkFault("noise", t_start=0, t_end=PS_PER_MS * 100, ber=0.02))
    w.send("a", bytes(range(120)))                      # a TX FIFO holds 128
    w.send("b", bytes(range(255, 135, -1)), t=3 * BIT)
    w.sched.run_until(PS_PER_MS * 100)
    return w.link.taps


def test_noise_is_deterministic_for_a_seed_and_differs_between_seeds():
    first, again, other = run_noisy(1), run_noisy(1), run_noisy(2)
    assert first == again
    assert first != other
    assert any(b.fault == "noise" for b in first)
    assert len(first) == 240
    assert [b.t_ps for b in first] == sorted(b.t_ps for b in first)     # arrival order


def test_tx_observer_sees_sent_bytes_and_can_arm_a_fault_just_in_time():
    w = Wire()
    seen = []

    def observe(direction: str, k: int, byte: int, t: int) -> None:
        seen.append((direction, k, byte, t))
        if byte == 0x7E:                         # e.g. a frame tracker arming a fault on this byte
            w.link.add_fault(direction, LinkFault("flip", index=k, mask=0x01))

    w.link.add_tx_observer(observe)
    w.send("a", b"\x01\x7e\x02")
    w.sched.run_until(5 * CHAR)
    assert seen == [(A2B, 0, 0x01, 0), (A2B, 1, 0x7E, CHAR), (A2B, 2, 0x02, 2 * CHAR)]
    assert w.recv("b") == b"\x01\x7f\x02"


def test_unknown_direction_and_kind_are_errors():
    w = Wire()
    with pytest.raises(ValueError, match="direction"):
        w.link.add_fault("a->b", LinkFault("drop"))
    with pytest.raises(ValueError, match="kind"):
        LinkFault("melt")


def test_rx_timeout_counts_idle_line_only():
    """With RX_TOUT_THRHD = 5 bit times, a back-to-back stream never times out (each start bit
    follows the previous stop bit at once); the timeout rises 5 bit times after the last byte."""
    w = Wire()
    w.mb.bus_write(0x6000_0024, 4, 0xC060 | (1 << 21))              # CONF1.RX_TOUT_EN
    w.mb.bus_write(0x6000_0060, 4, 0x0012 | (5 << 16))              # MEM_CONF.RX_TOUT_THRHD = 5
    w.send("a", bytes(20))
    w.sched.run_until(20 * CHAR + 5 * BIT - 1)
    assert not w.mb.bus_read(0x6000_0004, 4) & (1 << 8)
    w.sched.run_until(20 * CHAR + 5 * BIT)
    assert w.mb.bus_read(0x6000_0004, 4) & (1 << 8)


def test_receiver_clock_off_loses_the_byte():
    w = Wire()
    w.mb.bus_write(0x6000_0078, 4, (1 << 20) | (1 << 22) | (1 << 24))
    w.send("a", b"\x41")
    w.sched.run_until(2 * CHAR)
    assert w.taps(A2B)[0].value is None and w.taps(A2B)[0].fault == "receiver_off"


def test_console_sink_collects_lines_with_the_last_characters_time():
    sched = Scheduler()
    m = Machine("peer", sched)
    uart = ESP32C3Uart(m, "uart0", 0x6000_0000)
    m.add_peripheral(uart)
    Wire._baud(m, 694, 7)
    sink = ConsoleSink(uart, "peer")
    for byte in b"BOOT ok\r\nsecond\n":
        m.bus_write(0x6000_0000, 4, byte)
    sched.run_until(PS_PER_MS * 5)
    assert [(line.t_ps, line.machine, line.text) for line in sink.lines] == [
        (9 * CHAR, "peer", "BOOT ok"), (16 * CHAR, "peer", "second")]
