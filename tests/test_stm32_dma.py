"""DMA1 + DMAMUX1 with a USART, register level: request routing, circular RX with HT/TC and NDTR wrap,
normal-mode EN clear, TX paced by TXE, the completion-latency knob and transfer errors."""
from __future__ import annotations

import pytest

from duohil.engines.base import PS_PER_US
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_dma import Stm32Dma
from duohil.engines.builtin.soc.stm32h7.stm32_dmamux import Stm32Dmamux
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart
from model_helpers import FakeCpu

USART3, DMA1, DMAMUX1 = 0x4000_4800, 0x4002_0000, 0x4002_0800
AXISRAM = 0x2400_0000
DTCM = 0x2000_0000
RX_BUF, TX_BUF = AXISRAM + 0x1000, AXISRAM + 0x2000
USART_RDR, USART_TDR = USART3 + 0x24, USART3 + 0x28
REQ_USART3_RX, REQ_USART3_TX = 45, 46

LISR, HISR, LIFCR, HIFCR = 0x00, 0x04, 0x08, 0x0C
EN, TEIE, HTIE, TCIE = 1, 4, 8, 16
M2P, CIRC, MINC = 1 << 6, 1 << 8, 1 << 10
# LISR bits of stream 0 and 1
TEIF0, HTIF0, TCIF0 = 1 << 3, 1 << 4, 1 << 5
HTIF1, TCIF1 = 1 << 10, 1 << 11

BIT_PS = 1042 * 10**12 // 120_000_000
CHAR_PS = 10 * BIT_PS


class Rig:
    def __init__(self) -> None:
        self.sched = Scheduler()
        m = self.m = Machine("stm32", self.sched)
        m.attach_cpu(FakeCpu())
        m.add_memory("axisram", [AXISRAM], 0x8_0000)
        self.usart = Stm32Usart(m, "usart3", USART3)
        self.dma = Stm32Dma(m, "dma1", DMA1)
        self.mux = Stm32Dmamux(m, "dmamux1", DMAMUX1)
        for p in (self.usart, self.dma, self.mux):
            m.add_peripheral(p)
        m.finish()
        self.usart.output("ReceiveDmaRequest").connect(self.mux, REQ_USART3_RX)
        self.usart.output("TransmitDmaRequest").connect(self.mux, REQ_USART3_TX)
        for c in range(8):
            self.mux.output(c).connect(self.dma, c)
        self.sent: list[tuple[int, int]] = []
        self.usart.tx_sink = lambda u, b, t, bit, n: self.sent.append((b, t))

    # register helpers
    def w(self, addr: int, v: int) -> None:
        self.m.bus_write(addr, 4, v)

    def r(self, addr: int) -> int:
        return self.m.bus_read(addr, 4)

    def s(self, n: int, reg: str) -> int:
        return DMA1 + 0x10 + 0x18 * n + {"CR": 0, "NDTR": 4, "PAR": 8, "M0AR": 12, "M1AR": 16,
                                         "FCR": 20}[reg]

    def usart_on(self, cr3: int) -> None:
        self.w(USART3 + 0x0C, 1042)
        self.w(USART3 + 0x08, cr3)
        self.w(USART3 + 0x00, 1 | 4 | 8)                 # UE RE TE

    def stream(self, n: int, req: int, par: int, m0ar: int, ndtr: int, cr: int) -> None:
        self.w(DMAMUX1 + 4 * n, req)
        self.w(self.s(n, "PAR"), par)
        self.w(self.s(n, "M0AR"), m0ar)
        self.w(self.s(n, "NDTR"), ndtr)
        self.w(self.s(n, "CR"), cr)
        self.w(self.s(n, "CR"), cr | EN)

    def inject(self, data: bytes, t0: int) -> list[int]:
        stops = []
        for k, b in enumerate(data):
            t = t0 + (k + 1) * CHAR_PS
            self.sched.at(t, self.usart.rx_char, b, False)
            stops.append(t)
        return stops

    def mem(self, addr: int, n: int) -> bytes:
        return self.m.read_memory(addr, n)


@pytest.fixture
def rig():
    return Rig()


def test_circular_rx_ht_tc_and_ndtr_wrap(rig):
    rig.usart_on(cr3=1 << 6)                               # DMAR
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 8, CIRC | MINC | HTIE | TCIE)
    irq = rig.dma.output(0)
    stops = rig.inject(bytes(range(0x10, 0x10 + 20)), t0=0)

    rig.sched.run_until(stops[2])
    assert rig.r(rig.s(0, "NDTR")) == 5 and rig.r(DMA1 + LISR) == 0 and not irq.level
    assert rig.r(USART3 + 0x1C) & (1 << 5) == 0            # the DMA read of RDR cleared RXNE
    rig.sched.run_until(stops[3])                          # 4 of 8: half transfer
    assert rig.r(rig.s(0, "NDTR")) == 4
    assert rig.r(DMA1 + LISR) == HTIF0 and irq.level
    rig.w(DMA1 + LIFCR, HTIF0)
    assert rig.r(DMA1 + LISR) == 0 and not irq.level
    rig.sched.run_until(stops[7])                          # 8 of 8: complete, NDTR reloads
    assert rig.r(DMA1 + LISR) == TCIF0 and irq.level
    assert rig.r(rig.s(0, "NDTR")) == 8
    assert rig.r(rig.s(0, "CR")) & EN                      # circular: stays enabled
    assert rig.mem(RX_BUF, 8) == bytes(range(0x10, 0x18))
    rig.w(DMA1 + LIFCR, 0x3D)                              # clear all stream-0 flags
    rig.sched.run_until(stops[11])                         # second lap: half again, data wrapped
    assert rig.r(DMA1 + LISR) == HTIF0
    assert rig.r(rig.s(0, "NDTR")) == 4
    assert rig.mem(RX_BUF, 8) == bytes([0x18, 0x19, 0x1A, 0x1B, 0x14, 0x15, 0x16, 0x17])
    rig.sched.run_until(stops[19])
    assert rig.r(rig.s(0, "NDTR")) == 4                    # 20 = 2 laps + 4
    assert rig.mem(RX_BUF, 8) == bytes([0x20, 0x21, 0x22, 0x23, 0x1C, 0x1D, 0x1E, 0x1F])
    assert rig.usart.rx_overruns == 0
    assert rig.dma.streams[0].transfers == 20


def test_normal_mode_clears_en_and_stops(rig):
    rig.usart_on(cr3=1 << 6)
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 4, MINC | TCIE)
    stops = rig.inject(b"ABCDEF", t0=0)
    rig.sched.run_until(stops[3])
    assert rig.r(DMA1 + LISR) == HTIF0 | TCIF0           # flags are set whatever the enables
    assert rig.r(rig.s(0, "CR")) & EN == 0
    assert rig.r(rig.s(0, "NDTR")) == 0
    rig.sched.run_until(stops[5])
    assert rig.mem(RX_BUF, 6) == b"ABCD\x00\x00"
    assert rig.r(USART3 + 0x1C) & 0x28 == 0x28            # 'E' waits in RDR, 'F' overran it
    assert rig.usart.rx_overruns == 1


def test_tx_paced_by_txe(rig):
    rig.m.write_memory(TX_BUF, b"HELLO")
    rig.usart_on(cr3=1 << 7)                               # DMAT: TX request while TXE=1
    t0 = 3 * PS_PER_US
    rig.sched.run_until(t0)
    rig.stream(1, REQ_USART3_TX, USART_TDR, TX_BUF, 5, M2P | MINC | TCIE)
    rig.sched.run_until(t0)                                 # the request is served as an event
    assert rig.sent == [(ord("H"), t0)]
    assert rig.r(rig.s(1, "NDTR")) == 3                     # 'H' in the shift register, 'E' in TDR
    rig.sched.run_until(t0 + 3 * CHAR_PS)
    # the last item is written to TDR when the third character starts: TC of the stream then
    assert rig.r(DMA1 + LISR) == HTIF1 | TCIF1 and rig.r(rig.s(1, "CR")) & EN == 0
    rig.sched.run_until(t0 + 5 * CHAR_PS)
    assert rig.sent == [(c, t0 + k * CHAR_PS) for k, c in enumerate(b"HELLO")]
    assert rig.r(USART3 + 0x1C) & 0xC0 == 0xC0              # USART TC after the last stop bit


def test_completion_latency_delays_flags_not_data(rig):
    lat = 50 * PS_PER_US
    rig.dma.set_completion_latency(0, lat)
    rig.usart_on(cr3=1 << 6)
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 4, CIRC | MINC | HTIE | TCIE)
    irq = rig.dma.output(0)
    stops = rig.inject(b"wxyz", t0=0)
    rig.sched.run_until(stops[1])                           # 2 of 4: half transfer happened
    assert rig.mem(RX_BUF, 2) == b"wx" and rig.r(rig.s(0, "NDTR")) == 2
    assert rig.r(DMA1 + LISR) == 0 and not irq.level        # ... but is not signalled yet
    rig.sched.run_until(stops[1] + lat - 1)
    assert rig.r(DMA1 + LISR) == 0
    rig.sched.run_until(stops[1] + lat)
    assert rig.r(DMA1 + LISR) == HTIF0 and irq.level
    rig.w(DMA1 + LIFCR, HTIF0)
    rig.sched.run_until(stops[3])
    assert rig.mem(RX_BUF, 4) == b"wxyz"                    # data landed
    assert rig.r(rig.s(0, "NDTR")) == 4                     # NDTR already wrapped
    assert rig.r(DMA1 + LISR) == 0 and not irq.level
    rig.sched.run_until(stops[3] + lat - 1)
    assert rig.r(DMA1 + LISR) == 0
    rig.sched.run_until(stops[3] + lat)
    assert rig.r(DMA1 + LISR) == TCIF0 and irq.level


def test_latency_keeps_flag_order_when_changed(rig):
    rig.dma.set_completion_latency(0, 300 * PS_PER_US)
    rig.usart_on(cr3=1 << 6)
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 2, CIRC | MINC)
    order = []                                              # LISR after each event that moved it

    def seen(_ev) -> None:
        lisr = rig.r(DMA1 + LISR)
        if lisr != (order[-1][0] if order else 0):
            order.append((lisr, rig.sched.now))

    rig.sched.on_event(seen)
    stops = rig.inject(b"ab", t0=0)
    rig.sched.run_until(stops[0])
    rig.dma.set_completion_latency(0, 0)                    # TC would now overtake HT
    rig.sched.run_until(stops[1] + 400 * PS_PER_US)
    assert order == [(HTIF0, stops[0] + 300 * PS_PER_US), (HTIF0 | TCIF0, stops[0] + 300 * PS_PER_US)]


def test_latency_delays_en_clear_in_normal_mode(rig):
    lat = 200 * PS_PER_US                                   # longer than a character
    rig.dma.set_completion_latency(0, lat)
    rig.usart_on(cr3=1 << 6)
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 2, MINC | TCIE)
    stops = rig.inject(b"pqr", t0=0)
    rig.sched.run_until(stops[2])
    assert rig.r(rig.s(0, "NDTR")) == 0
    assert rig.r(rig.s(0, "CR")) & EN                       # completion not yet signalled
    assert rig.mem(RX_BUF, 3) == b"pq\x00"                  # but no item beyond NDTR moved
    rig.sched.run_until(stops[1] + lat - 1)
    assert rig.r(rig.s(0, "CR")) & EN and rig.r(DMA1 + LISR) == HTIF0   # HT came at stops[0]+lat
    rig.sched.run_until(stops[1] + lat)
    assert rig.r(rig.s(0, "CR")) & EN == 0 and rig.r(DMA1 + LISR) == HTIF0 | TCIF0


def test_transfer_error_on_dtcm(rig):
    rig.usart_on(cr3=1 << 6)
    rig.stream(0, REQ_USART3_RX, USART_RDR, DTCM + 0x100, 4, MINC | TEIE)
    stops = rig.inject(b"e", t0=0)
    rig.sched.run_until(stops[0])
    assert rig.r(DMA1 + LISR) == TEIF0
    assert rig.r(rig.s(0, "CR")) & EN == 0 and rig.dma.output(0).level
    assert rig.r(rig.s(0, "NDTR")) == 4
    assert rig.r(USART3 + 0x1C) & (1 << 5)                  # RDR was not read


def test_high_streams_flags_and_hifcr(rig):
    rig.usart_on(cr3=1 << 6)
    rig.stream(5, REQ_USART3_RX, USART_RDR, RX_BUF, 2, MINC | TCIE | HTIE)
    stops = rig.inject(b"hi", t0=0)
    rig.sched.run_until(stops[1])
    assert rig.r(DMA1 + HISR) == (1 << 10) | (1 << 11)      # HTIF5, TCIF5
    assert rig.r(DMA1 + LISR) == 0 and rig.dma.output(5).level
    rig.w(DMA1 + HIFCR, 1 << 11)
    assert rig.r(DMA1 + HISR) == 1 << 10
    rig.w(DMA1 + HIFCR, 1 << 10)
    assert not rig.dma.output(5).level


def test_registers_frozen_while_enabled_and_software_disable(rig):
    rig.stream(2, REQ_USART3_RX, USART_RDR, RX_BUF, 16, MINC | TCIE)
    rig.w(rig.s(2, "NDTR"), 3)
    rig.w(rig.s(2, "M0AR"), RX_BUF + 4)
    assert rig.r(rig.s(2, "NDTR")) == 16 and rig.r(rig.s(2, "M0AR")) == RX_BUF
    assert rig.r(rig.s(2, "FCR")) == 0x21
    rig.w(rig.s(2, "CR"), MINC | TCIE)                       # EN=0 mid-transfer: TCIF (RM0090)
    assert rig.r(rig.s(2, "CR")) == MINC | TCIE
    assert rig.r(DMA1 + LISR) == 1 << 21


def test_dmamux_routes_by_request_id(rig):
    rig.usart_on(cr3=1 << 6)
    rig.stream(3, 44, USART_RDR, RX_BUF, 4, MINC)            # USART2 RX id: not our request
    stops = rig.inject(b"m", t0=0)
    rig.sched.run_until(stops[0])
    assert rig.r(rig.s(3, "NDTR")) == 4
    rig.w(DMAMUX1 + 4 * 3, REQ_USART3_RX)                    # re-route: the pending request flows
    rig.sched.run_until(stops[0])
    assert rig.r(rig.s(3, "NDTR")) == 3 and rig.mem(RX_BUF, 1) == b"m"


def test_memory_to_memory_copies_at_enable(rig):
    src, dst = AXISRAM + 0x100, AXISRAM + 0x200
    rig.m.write_memory(src, bytes(range(32)))
    psize32 = 2 << 11
    rig.stream(4, 0, src, dst, 8, (2 << 6) | (1 << 9) | MINC | psize32 | TCIE)   # M2M, PINC
    rig.sched.run_until(0)
    assert rig.mem(dst, 32) == bytes(range(32))
    assert rig.r(DMA1 + HISR) == (1 << 4) | (1 << 5)          # HTIF4, TCIF4
    assert rig.r(rig.s(4, "CR")) & EN == 0 and rig.r(rig.s(4, "NDTR")) == 0


def test_double_buffer_toggles_ct(rig):
    buf1 = RX_BUF + 0x100
    rig.usart_on(cr3=1 << 6)
    rig.w(rig.s(0, "M1AR"), buf1)
    rig.stream(0, REQ_USART3_RX, USART_RDR, RX_BUF, 2, (1 << 18) | MINC)      # DBM
    stops = rig.inject(b"abcde", t0=0)
    rig.sched.run_until(stops[1])
    assert rig.r(rig.s(0, "CR")) & (1 << 19)                  # CT: now filling M1AR
    rig.w(rig.s(0, "M0AR"), RX_BUF + 0x40)                    # the idle buffer may be re-pointed
    assert rig.r(rig.s(0, "M0AR")) == RX_BUF + 0x40
    rig.sched.run_until(stops[4])
    assert rig.mem(RX_BUF, 2) == b"ab" and rig.mem(buf1, 2) == b"cd"
    assert rig.mem(RX_BUF + 0x40, 1) == b"e"
