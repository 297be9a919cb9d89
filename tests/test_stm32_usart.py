"""STM32H7 USART model, register level: baud timing, TX pacing, IDLE, ORE, RTOF, DMA requests."""
from __future__ import annotations

import pytest

from duohil.engines.base import PS_PER_US
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart
from model_helpers import FakeCpu

BASE = 0x4000_4800                       # USART3
CR1, CR2, CR3, BRR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC = (
    0x00, 0x04, 0x08, 0x0C, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C)
UE, RE, TE, IDLEIE, RXNEIE, TCIE, TXEIE, OVER8, RTOIE = 1, 4, 8, 16, 32, 64, 128, 1 << 15, 1 << 26
RTOEN = 1 << 23
EIE, DMAR, DMAT, OVRDIS = 1, 1 << 6, 1 << 7, 1 << 12
FE, ORE, IDLE, RXNE, TC, TXE, RTOF, TEACK, REACK = 2, 8, 16, 32, 64, 128, 1 << 11, 1 << 21, 1 << 22
ORECF, IDLECF, TCCF, RTOCF = 8, 16, 64, 1 << 11

BRR_115200 = 1042                        # 120 MHz / 1042 = 115 163 Bd (stm32h7-registers.md s.3)
BIT_PS = 1042 * 10**12 // 120_000_000    # 8_683_333 ps
CHAR_PS = 10 * BIT_PS                    # 8N1


class Peer:
    """The far end of the link: records what the USART sends, injects bytes at baud timing."""

    def __init__(self, sched: Scheduler, uart: Stm32Usart) -> None:
        self.sched = sched
        self.uart = uart
        self.sent: list[tuple[int, int, int, int]] = []     # (byte, t_start, bit_ps, frame_bits)
        uart.tx_sink = self._tx

    def _tx(self, uart, byte, t_start, bit_ps, frame_bits) -> None:
        assert uart is self.uart
        self.sent.append((byte, t_start, bit_ps, frame_bits))

    def send(self, data: bytes, t0: int, char_ps: int = CHAR_PS, fe_at: int | None = None) -> list[int]:
        """Back-to-back characters starting at t0; returns each stop-bit time."""
        stops = []
        for k, b in enumerate(data):
            t = t0 + (k + 1) * char_ps
            self.sched.at(t, self.uart.rx_char, b, k == fe_at)
            stops.append(t)
        return stops


@pytest.fixture
def rig():
    sched = Scheduler()
    m = Machine("stm32", sched)
    cpu = FakeCpu()
    m.attach_cpu(cpu)
    u = Stm32Usart(m, "usart3", BASE, props={"frequency": 120_000_000})
    m.add_peripheral(u)
    m.finish()
    return sched, m, u, Peer(sched, u), cpu


def rd(m, off):
    return m.bus_read(BASE + off, 4)


def wr(m, off, v):
    m.bus_write(BASE + off, 4, v)


def setup(m, cr1=UE | RE | TE, cr2=0, cr3=0, brr=BRR_115200):
    wr(m, BRR, brr)
    wr(m, CR2, cr2)
    wr(m, CR3, cr3)
    wr(m, CR1, cr1)


def test_reset_values_and_enable_acks(rig):
    _, m, u, _, _ = rig
    assert rd(m, ISR) == TXE | TC                             # 0x000000C0
    setup(m, cr1=UE | TE)
    assert rd(m, ISR) & (TEACK | REACK) == TEACK
    wr(m, CR1, UE | TE | RE)
    assert rd(m, ISR) & (TEACK | REACK) == TEACK | REACK
    assert u.bit_time_ps() == BIT_PS == 8_683_333
    wr(m, CR1, 0)                                             # UE=0 resets every ISR flag
    assert rd(m, ISR) == TXE | TC
    assert u.bit_time_ps() is None                            # receiver off


def test_brr_locked_while_enabled(rig):
    _, m, _u, _, _ = rig
    setup(m)
    wr(m, BRR, 100)
    assert rd(m, BRR) == BRR_115200


def test_tx_paced_at_baud_rate(rig):
    sched, m, u, peer, cpu = rig
    setup(m, cr1=UE | TE | TCIE)
    wr(m, TDR, 0x41)                         # goes straight to the shift register
    assert rd(m, ISR) & (TXE | TC) == TXE
    wr(m, TDR, 0x42)                         # waits in TDR: TXE low
    assert rd(m, ISR) & (TXE | TC) == 0
    assert cpu.hints[-1] == (BASE, CHAR_PS)  # a TXE poll may park until the shift register frees
    sched.run_until(CHAR_PS - 1)
    assert rd(m, ISR) & TXE == 0
    sched.run_until(CHAR_PS)
    assert rd(m, ISR) & (TXE | TC) == TXE    # 'B' moved to the shift register
    assert not u.output("IRQ").level
    sched.run_until(2 * CHAR_PS - 1)
    assert rd(m, ISR) & TC == 0
    sched.run_until(2 * CHAR_PS)
    assert rd(m, ISR) & (TXE | TC) == TXE | TC
    assert u.output("IRQ").level             # TCIE
    assert peer.sent == [(0x41, 0, BIT_PS, 10), (0x42, CHAR_PS, BIT_PS, 10)]
    wr(m, ICR, TCCF)
    assert rd(m, ISR) & TC == 0 and not u.output("IRQ").level


def test_baud_from_kernel_clock_presc_over8_and_frame_format(rig):
    sched, m, u, peer, _ = rig
    # OVER8: USARTDIV = 2*120e6/115200 = 2083 -> BRR = 0x820 | (0x3 >> 1) = 0x821
    wr(m, PRESC, 1)                          # /2
    setup(m, cr1=UE | TE | OVER8 | (1 << 12), cr2=2 << 12, brr=0x821)   # 9 data bits, 2 stop bits
    bit = 0x822 * 2 * 10**12 // (2 * 120_000_000)                       # 17_350_000 ps
    assert u._bit_ps() == bit == 17_350_000
    wr(m, TDR, 0x1FF)
    assert peer.sent == [(0x1FF, 0, bit, 12)]
    sched.run_until(12 * bit)
    assert rd(m, ISR) & TC
    wr(m, CR1, 0)
    u.kernel_hz = 64_000_000                 # the RCC model re-routed the kernel clock
    wr(m, PRESC, 0)
    setup(m, cr1=UE | TE, brr=556)
    assert u._bit_ps() == 556 * 10**12 // 64_000_000 == 8_687_500


def test_one_and_a_half_stop_bits(rig):
    sched, m, _u, peer, _ = rig
    setup(m, cr1=UE | TE, cr2=3 << 12)                        # STOP=11: 1.5 stop bits
    wr(m, TDR, 0x5A)
    assert peer.sent == [(0x5A, 0, BIT_PS, 10.5)]
    end = round(10.5 * BIT_PS)                                # 91_174_996.5 -> 91_174_996 ps
    sched.run_until(end - 1)
    assert rd(m, ISR) & TC == 0
    sched.run_until(end)
    assert rd(m, ISR) & TC


def test_idle_one_char_after_burst_and_only_once(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE | IDLEIE)
    stops = peer.send(b"abc", t0=10 * PS_PER_US)
    got = []
    for t in stops:
        sched.run_until(t)
        assert rd(m, ISR) & RXNE
        got.append(rd(m, RDR))
        assert rd(m, ISR) & RXNE == 0
    assert bytes(got) == b"abc"
    last = stops[-1]
    sched.run_until(last + CHAR_PS - 1)
    assert rd(m, ISR) & IDLE == 0 and not u.output("IRQ").level
    sched.run_until(last + CHAR_PS)
    assert rd(m, ISR) & IDLE and u.output("IRQ").level
    wr(m, ICR, IDLECF)
    assert rd(m, ISR) & IDLE == 0 and not u.output("IRQ").level
    sched.run_until(last + 20 * CHAR_PS)
    assert rd(m, ISR) & IDLE == 0            # the line stays idle: no second IDLE
    more = peer.send(b"d", t0=sched.now)
    sched.run_until(more[0] + CHAR_PS)
    assert rd(m, ISR) & IDLE                 # a new character re-arms it
    assert rd(m, RDR) == ord("d")


def test_idle_not_set_between_back_to_back_chars(rig):
    sched, m, _u, peer, _ = rig
    setup(m, cr1=UE | RE)
    stops = peer.send(bytes(range(10)), t0=0)
    for t in stops:
        sched.run_until(t)
        assert rd(m, ISR) & IDLE == 0
        rd(m, RDR)
    sched.run_until(stops[-1] + CHAR_PS)
    assert rd(m, ISR) & IDLE


def test_overrun_when_rx_not_drained(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE, cr3=EIE)
    stops = peer.send(b"xyz", t0=0)
    sched.run_until(stops[0])
    assert rd(m, ISR) & (RXNE | ORE) == RXNE and not u.output("IRQ").level
    sched.run_until(stops[1])                # 'y' completes while RXNE=1: lost
    assert rd(m, ISR) & (RXNE | ORE) == RXNE | ORE
    assert u.output("IRQ").level             # EIE
    sched.run_until(stops[2])
    assert u.rx_overruns == 2 and u.rx_count == 3
    assert rd(m, RDR) == ord("x")            # RDR kept the first character
    wr(m, ICR, ORECF)
    assert rd(m, ISR) & (RXNE | ORE) == 0 and not u.output("IRQ").level


def test_ovrdis_overwrites_rdr(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE, cr3=OVRDIS)
    stops = peer.send(b"xy", t0=0)
    sched.run_until(stops[1])
    assert rd(m, ISR) & (RXNE | ORE) == RXNE
    assert rd(m, RDR) == ord("y") and u.rx_overruns == 0


def test_receiver_timeout_in_bit_times(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE | RTOIE, cr2=RTOEN)
    wr(m, RTOR, 35)
    stops = peer.send(b"q", t0=0)
    sched.run_until(stops[0] + 35 * BIT_PS - 1)
    assert rd(m, ISR) & RTOF == 0
    sched.run_until(stops[0] + 35 * BIT_PS)
    assert rd(m, ISR) & RTOF and u.output("IRQ").level
    wr(m, ICR, RTOCF)
    assert not u.output("IRQ").level


def test_framing_error_and_disabled_receiver(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | TE)                    # RE=0: characters are dropped
    stops = peer.send(b"\x55", t0=0)
    sched.run_until(stops[-1])
    assert rd(m, ISR) & RXNE == 0 and u.rx_dropped == 1
    wr(m, CR1, UE | TE | RE)
    stops = peer.send(b"\x66", t0=sched.now, fe_at=0)
    sched.run_until(stops[-1])
    assert rd(m, ISR) & (RXNE | FE) == RXNE | FE
    assert u.rx_framing_errors == 1


def test_dma_request_lines(rig):
    sched, m, u, peer, _ = rig
    levels = []

    class Sink:
        def set_input(self, line, level):
            levels.append((line, level, sched.now))

    u.output("ReceiveDmaRequest").connect(Sink(), 45)
    u.output("TransmitDmaRequest").connect(Sink(), 46)
    setup(m, cr1=UE | RE | TE, cr3=DMAR | DMAT)
    assert levels == [(46, True, 0)]         # TXE=1 with DMAT: TX request up
    stops = peer.send(b"r", t0=0)
    sched.run_until(stops[0])
    assert levels[-1] == (45, True, stops[0])
    rd(m, RDR)                                # a (DMA) read of RDR drops the RX request
    assert levels[-1][:2] == (45, False)
    wr(m, TDR, 1)
    wr(m, TDR, 2)                             # TDR full: TX request down until the shift frees
    assert levels[-1][:2] == (46, False)
    sched.run_until(stops[0] + CHAR_PS - 1)  # the first character started at stops[0]
    assert levels[-1][:2] == (46, False)
    sched.run_until(stops[0] + CHAR_PS)
    assert levels[-1] == (46, True, stops[0] + CHAR_PS)


def test_rxfrq_flushes(rig):
    sched, m, _u, peer, _ = rig
    setup(m)
    stops = peer.send(b"z", t0=0)
    sched.run_until(stops[0])
    wr(m, RQR, 1 << 3)
    assert rd(m, ISR) & RXNE == 0


# -- FIFO mode (CR1.FIFOEN) -----------------------------------------------------------------------------
FIFOEN, TXFEIE, RXFFIE = 1 << 29, 1 << 30, 1 << 31
TXFTIE, RXFTIE = 1 << 23, 1 << 28
TXFNF, RXFNE, TXFE, RXFF, RXFT, TXFT = TXE, RXNE, 1 << 23, 1 << 24, 1 << 26, 1 << 27
TXFRQ, RXFRQ = 1 << 4, 1 << 3


def txftcfg(code):
    return code << 29


def rxftcfg(code):
    return code << 25


def test_fifo_tx_queues_16_and_paces_them(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | TE | FIFOEN)
    assert rd(m, ISR) & (TXFNF | TXFE | TC) == TXFNF | TXFE | TC
    for k in range(17):                      # 1 to the shift register + 16 in the FIFO
        wr(m, TDR, 0x30 + k)
    s = rd(m, ISR)
    assert not s & TXFNF and not s & TXFE and not s & TC
    wr(m, TDR, 0x99)                         # FIFO full: lost
    sched.run_until(17 * CHAR_PS)
    assert [b for b, *_ in peer.sent] == [0x30 + k for k in range(17)]
    assert [t for _b, t, *_ in peer.sent] == [k * CHAR_PS for k in range(17)]
    assert rd(m, ISR) & (TXFNF | TXFE | TC) == TXFNF | TXFE | TC


def test_fifo_tx_threshold_flag_and_interrupt(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | TE | FIFOEN, cr3=txftcfg(2) | TXFTIE)   # TXFT: at least 8 of 16 free
    assert rd(m, ISR) & TXFT and u.output("IRQ").level
    for k in range(1 + 9):                   # 9 in the FIFO: 7 free
        wr(m, TDR, k)
    assert not rd(m, ISR) & TXFT and not u.output("IRQ").level
    sched.run_until(CHAR_PS)                 # one more leaves the FIFO: 8 free
    assert rd(m, ISR) & TXFT and u.output("IRQ").level


def test_fifo_rx_holds_16_then_overruns_and_thresholds(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE | FIFOEN | RXFFIE, cr3=rxftcfg(1) | RXFTIE)   # RXFT at 4 of 16
    stops = peer.send(bytes(range(0x40, 0x40 + 18)), 0)
    sched.run_until(stops[2])
    s = rd(m, ISR)
    assert s & RXFNE and not s & RXFT and not u.output("IRQ").level
    sched.run_until(stops[3])
    assert rd(m, ISR) & RXFT and u.output("IRQ").level
    sched.run_until(stops[15])
    assert rd(m, ISR) & RXFF and not rd(m, ISR) & ORE
    sched.run_until(stops[17])
    assert rd(m, ISR) & ORE and u.rx_overruns == 2
    assert [rd(m, RDR) for _ in range(16)] == list(range(0x40, 0x50))   # the first 16, in order
    s = rd(m, ISR)
    assert not s & (RXFNE | RXFF | RXFT)
    wr(m, ICR, ORECF)
    assert not u.output("IRQ").level


def test_fifo_flush_requests_and_disable(rig):
    sched, m, u, peer, _ = rig
    setup(m, cr1=UE | RE | TE | FIFOEN)
    stops = peer.send(b"abc", 0)
    sched.run_until(stops[-1])
    for k in range(5):
        wr(m, TDR, k)
    wr(m, RQR, RXFRQ | TXFRQ)
    s = rd(m, ISR)
    assert not s & RXFNE and s & TXFE and u._txq == [] and u._rxq == []
    wr(m, CR1, 0)                            # FIFOEN may change only with UE=0
    wr(m, CR1, UE | RE | TE)                 # FIFO off again: one RDR/TDR
    wr(m, CR1, UE | RE | TE | FIFOEN)        # ignored while UE=1
    assert not rd(m, CR1) & FIFOEN


def test_lpuart_baud_is_256_fck_over_brr():
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    u = Stm32Usart(m, "lpuart1", 0x5800_0C00, props={"frequency": 64_000_000, "lowPowerMode": True})
    m.add_peripheral(u)
    m.finish()
    peer = Peer(sched, u)
    brr = 256 * 64_000_000 // 115200                                # 142_222 (20-bit BRR)
    m.bus_write(0x5800_0C00 + BRR, 4, brr)
    m.bus_write(0x5800_0C00 + CR1, 4, UE | TE)
    m.bus_write(0x5800_0C00 + TDR, 4, 0x55)
    assert peer.sent[0][2] == brr * 10**12 // (256 * 64_000_000) == 8_680_541
    m.bus_write(0x5800_0C00 + CR1, 4, 0)
    m.bus_write(0x5800_0C00 + BRR, 4, 0x2FF)                         # below 0x300: invalid
    m.bus_write(0x5800_0C00 + CR1, 4, UE | RE)
    assert u.bit_time_ps() is None


def test_dma_enable_without_a_wired_request_line_warns_once(rig):
    sched, m, u, _peer, _ = rig                      # the rig wires no DMA request lines
    setup(m, cr3=DMAT)
    wr(m, CR3, 0)
    wr(m, CR3, DMAT | DMAR)
    warnings = [d for _t, k, d in sched.log if k == "warning"]
    assert [w["what"] for w in warnings] == ["dma_request_not_wired"] * 2
    assert "TransmitDmaRequest" in warnings[0]["message"] and "builtin.repl" in warnings[0]["message"]
    assert "ReceiveDmaRequest" in warnings[1]["message"]
