"""Specification tests of the STM32H7 USART (native/usart.c behind stm32_usart.py's Stm32Usart,
the one copy of the model): properties from RM0433 (stm32h7-registers.md section 3) that hold
after every step of any register/character/time program.

One USART alone in a machine with a FakeCpu (which records poll hints); the IRQ and both DMA
request lines go to a recording sink (or, when Hypothesis says so, the DMA lines stay unwired),
the TX sink records every character. Hypothesis picks the kernel clock, LPUART or not, and a
program of register writes (whole words and byte/halfword accesses, FIFO mode, word lengths,
parity, OVER8, RTOEN and the interrupt/DMA enables among the bits), reads, characters arriving
(with framing errors; overruns when nobody reads), time advances that fire the TX/IDLE/RTO events,
kernel clock changes and resets. After every step ``check`` asserts what the reference manual
says (the IRQ is the OR of each flag with its enable, the DMA requests follow RXNE/TXE, TEACK/
REACK follow TE/RE, the FIFO flags follow the FIFO levels, BRR/PRESC/M/OVER8/FIFOEN are frozen
while UE=1, the bit time is kernel_hz/PRESC/BRR's, characters leave paced one frame apart with
their data bits only, ICR clears exactly its flags, reading RDR clears RXNE, IDLE/RTO are armed
one character / RTO bit times after a reception, the poll hint names the next event).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x4000_4800
CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC = range(0, 0x30, 4)
REGS = (CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC)

# RM0433 bit positions (stm32h7-registers.md s.3)
UE, RE, TE, IDLEIE, RXNEIE, TCIE, TXEIE, PEIE, PCE, M0 = 1, 4, 8, 16, 32, 64, 128, 1 << 8, 1 << 10, 1 << 12
OVER8, RTOIE, M1, FIFOEN, TXFEIE, RXFFIE = 1 << 15, 1 << 26, 1 << 28, 1 << 29, 1 << 30, 1 << 31
RTOEN = 1 << 23
EIE, DMAR, DMAT, OVRDIS, TXFTIE, RXFTIE = 1, 1 << 6, 1 << 7, 1 << 12, 1 << 23, 1 << 28
PE, FE, NE, ORE, IDLE, RXNE, TC, TXE, RTOF = 1, 2, 4, 8, 16, 32, 64, 128, 1 << 11
TEACK, REACK, TXFE, RXFF, RXFT, TXFT = 1 << 21, 1 << 22, 1 << 23, 1 << 24, 1 << 26, 1 << 27
RXFNE, TXFNF = RXNE, TXE
#: ICR bit -> the ISR flag it clears (same positions, except TXFECF 5 -> TXFE 23, TCBGTCF 7 -> 25)
ICR_CLEARS = {0: PE, 1: FE, 2: NE, 3: ORE, 4: IDLE, 5: TXFE, 6: TC, 7: 1 << 25, 8: 1 << 8, 9: 1 << 9,
              11: RTOF, 12: 1 << 12, 13: 1 << 13, 17: 1 << 17, 20: 1 << 20}
PRESC_DIV = (1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256)     # codes 12..15 as 256
#: TXFTCFG/RXFTCFG codes 0..5: 1/8, 1/4, 1/2, 3/4, 7/8, full/empty of the 16-deep FIFO
THRESHOLD = (2, 4, 8, 12, 14, 16)
DEPTH = 16


class Sink:
    """Both sides of the wires: line edges with their time, and the characters sent."""

    def __init__(self, sched) -> None:
        self.sched, self.edges, self.sent = sched, [], []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, line, level))

    def tx(self, uart, byte, t0, bit, frame_bits) -> None:
        assert uart.name == "usart3"
        self.sent.append((byte, t0, bit, frame_bits))


def board(hz: int, lp: bool, wired: bool):
    sched = Scheduler(1_000_000)
    m = Machine("stm32", sched, platform=__file__)
    cpu = FakeCpu()
    m.attach_cpu(cpu)
    u = Stm32Usart(m, "usart3", BASE, props={"frequency": hz, "lowPowerMode": lp})
    m.add_peripheral(u)
    m.finish()
    sink = Sink(sched)
    u.output("IRQ").connect(sink, 0)
    if wired:
        u.output("ReceiveDmaRequest").connect(sink, 1)
        u.output("TransmitDmaRequest").connect(sink, 2)
    u.tx_sink = sink.tx
    return sched, m, u, sink, cpu


def peek(u, off: int) -> int:
    return u._c.peek(off >> 2)


# -- what RM0433 says, as functions of the registers ------------------------------------------------

def bit_ps(u) -> int | None:
    """One bit time from kernel_hz, PRESC, BRR and OVER8 (LPUART: 256 x f_ck / BRR), floored."""
    hz, c1 = u.kernel_hz, peek(u, CR1)
    brr = peek(u, BRR) & (0xF_FFFF if u.low_power else 0xFFFF)        # BRR[19:0] / BRR[15:0]
    presc = PRESC_DIV[min(peek(u, PRESC) & 0xF, 11)]
    if hz <= 0:
        return None
    if u.low_power:
        return None if brr < 0x300 else brr * presc * 10**12 // (256 * hz)
    if brr < 16:
        return None
    if c1 & OVER8:                        # BRR[2:0] holds USARTDIV[3:0] >> 1
        return ((brr & 0xFFF0) | ((brr & 7) << 1)) * presc * 10**12 // (2 * hz)
    return brr * presc * 10**12 // hz


def data_bits(c1: int) -> int:
    return {0: 8, 1: 9, 2: 7}.get((c1 >> 28 & 1) << 1 | (c1 >> 12 & 1), 8)     # M1:M0


def frame_bits(c1: int, c2: int) -> float:
    stop_half = {0: 2, 1: 1, 2: 4, 3: 3}[c2 >> 12 & 3]                     # 1, 0.5, 2, 1.5 stop bits
    half = 2 * (1 + data_bits(c1)) + stop_half
    return half // 2 if half % 2 == 0 else half / 2


def irq_level(s: int, c1: int, c3: int) -> bool:
    """Each ISR flag AND its enable (RM0433 USART interrupt mapping)."""
    on = ((s & IDLE and c1 & IDLEIE) or (s & RXNE and c1 & RXNEIE) or (s & TC and c1 & TCIE)
          or (s & TXE and c1 & TXEIE) or (s & PE and c1 & PEIE) or (s & RTOF and c1 & RTOIE)
          or (s & ORE and (c1 & RXNEIE or c3 & EIE)) or (s & (FE | NE) and c3 & EIE))
    if c1 & FIFOEN:
        on = on or ((s & TXFE and c1 & TXFEIE) or (s & RXFF and c1 & RXFFIE)
                    or (s & TXFT and c3 & TXFTIE) or (s & RXFT and c3 & RXFTIE))
    return bool(on)


class Spec:
    """Runs a program on one board and checks the properties after each step."""

    def __init__(self, b) -> None:
        self.b = b
        self.rx_calls = 0
        self.n_sent = 0

    def check(self, op) -> None:
        sched, _m, u, sink, _cpu = self.b
        c1, c2, c3, s = peek(u, CR1), peek(u, CR2), peek(u, CR3), peek(u, ISR)
        # outputs
        assert u.output("IRQ").level == irq_level(s, c1, c3), f"IRQ, ISR {s:#x}"
        assert u.output("ReceiveDmaRequest").level == bool(c3 & DMAR and s & RXNE)
        assert u.output("TransmitDmaRequest").level == bool(c3 & DMAT and s & TXE
                                                            and c1 & (UE | TE) == UE | TE)
        # enable acknowledge
        if c1 & UE:
            assert bool(s & TEACK) == bool(c1 & TE) and bool(s & REACK) == bool(c1 & RE)
        else:
            # UE=0 resets every flag (ICR may still clear TC): nothing received, TDR empty
            assert not s & (TEACK | REACK | RXNE | ORE | IDLE | RTOF | FE) and s & TXE
        # timing
        bit, fb = bit_ps(u), frame_bits(c1, c2)
        want = (bit, fb, None if bit is None else round(fb * bit), data_bits(c1))
        assert u._timing() == want, f"timing {u._timing()}, RM0433 {want}"
        assert u.char_time_ps() == (None if bit is None else round(fb * bit))
        assert u.bit_time_ps() == (bit if c1 & (UE | RE) == UE | RE else None)
        # FIFO levels and their flags
        txq, rxq = u._txq, u._rxq
        assert len(txq) <= DEPTH and len(rxq) <= DEPTH
        if c1 & (UE | FIFOEN) == UE | FIFOEN:
            assert bool(s & RXFNE) == bool(rxq) and bool(s & RXFF) == (len(rxq) == DEPTH)
            assert bool(s & TXFNF) == (len(txq) < DEPTH)
            assert not (s & TXFE and txq), "TXFE with data in the TX FIFO"   # ICR.TXFECF may clear it
            assert bool(s & TXFT) == (DEPTH - len(txq) >= THRESHOLD[min(c3 >> 29 & 7, 5)])
            assert bool(s & RXFT) == (len(rxq) >= THRESHOLD[min(c3 >> 25 & 7, 5)])
            if rxq:
                assert peek(u, RDR) == rxq[0][0]           # RDR shows the FIFO's head
        elif not c1 & FIFOEN:
            assert not txq and not rxq
        # characters on the line: paced one frame apart, data bits only
        new = sink.sent[self.n_sent:]
        for byte, t0, bit_c, fb_c in new:
            assert bit_c == bit and fb_c == fb, "a character sent with another frame than programmed"
            width = data_bits(c1) - (1 if c1 & PCE else 0)
            assert 0 <= byte < 1 << width
        for (_b0, t0, b0, f0), (_b1, t1, _x, _y) in zip(sink.sent[max(0, self.n_sent - 1):],
                                                       sink.sent[max(1, self.n_sent):]):
            assert t1 >= t0 + round(f0 * b0), "two characters overlap on the line"
        self.n_sent = len(sink.sent)
        assert u.tx_count == len(sink.sent)
        # counters
        assert u.rx_count + u.rx_dropped == self.rx_calls
        assert u.rx_overruns <= u.rx_count and u.rx_framing_errors <= u.rx_count
        # events: the TX-done event ends the character in the shift register; nothing stale
        for ev in (u._tx_event, u._idle_event, u._rto_event):
            assert ev is None or (not ev.cancelled and ev.time >= sched.now)
        if u._tx_event is not None:
            byte, t0, b0, f0 = sink.sent[-1]
            assert u._tx_event.time == t0 + round(f0 * b0)
        if u._rto_event is not None:
            assert c2 & RTOEN

    def rx(self, byte: int, framing: bool) -> None:
        sched, _m, u, _sink, _cpu = self.b
        c1 = peek(u, CR1)
        before = (peek(u, ISR), peek(u, RDR), list(u._rxq), u.rx_overruns)
        self.rx_calls += 1
        u.rx_char(byte, framing)
        s = peek(u, ISR)
        if c1 & (UE | RE) != UE | RE:
            assert (s, peek(u, RDR)) == before[:2], "a character reached a disabled receiver"
            return
        value = byte & ((1 << data_bits(c1)) - 1) & 0x1FF
        c3 = peek(u, CR3)
        if c1 & FIFOEN:
            if len(before[2]) == DEPTH:                    # full: lost, ORE unless OVRDIS
                assert u._rxq == before[2] and u.rx_overruns == before[3] + 1
                assert bool(s & ORE) == bool(before[0] & ORE or not c3 & OVRDIS)
            else:
                assert u._rxq == before[2] + [(value, bool(framing))]
        elif before[0] & RXNE and not c3 & OVRDIS:          # RDR full: ORE, RDR kept
            assert s & ORE and peek(u, RDR) == before[1] and u.rx_overruns == before[3] + 1
        else:
            assert s & RXNE and peek(u, RDR) & 0x1FF == value
        if framing and not (c1 & FIFOEN and len(before[2]) == DEPTH) and \
                not (not c1 & FIFOEN and before[0] & RXNE and not c3 & OVRDIS):
            assert s & FE
        bit, fb = bit_ps(u), frame_bits(c1, peek(u, CR2))
        char = round(fb * bit) if bit is not None else 0
        assert u._idle_event is not None and u._idle_event.time == sched.now + char
        if peek(u, CR2) & RTOEN:
            assert u._rto_event.time == sched.now + (peek(u, RTOR) & 0xFF_FFFF) * (bit or 0)
        else:
            assert u._rto_event is None

    def write(self, off: int, size: int, value: int) -> None:
        sched, _m, u, _sink, cpu = self.b
        c1 = peek(u, CR1)
        old = {r: peek(u, r) for r in REGS}
        u.write(off, size, value)
        word = (value << 8 * (off & 3)) & 0xFFFF_FFFF
        reg = off & ~3
        if c1 & UE:                                     # frozen while UE=1 (RM0433)
            assert peek(u, BRR) == old[BRR] and peek(u, PRESC) == old[PRESC]
            assert peek(u, CR1) & (M0 | M1 | OVER8 | FIFOEN) == c1 & (M0 | M1 | OVER8 | FIFOEN)
        if reg == ICR:
            for b, flag in ICR_CLEARS.items():
                if word >> b & 1:
                    assert not peek(u, ISR) & flag, f"ICR bit {b} left its flag set"
        if reg in (ISR, RDR):
            assert peek(u, reg) == old[reg], "a read-only register took a write"
        if reg == TDR and not c1 & UE:
            assert peek(u, ISR) & (TXE | TC) == old[ISR] & (TXE | TC)
        if reg == RQR and word & (1 << 3):              # RXFRQ: the received data is dropped
            assert not peek(u, ISR) & RXNE and (not c1 & FIFOEN or not u._rxq)

    def read(self, off: int, size: int) -> int:
        sched, _m, u, _sink, cpu = self.b
        c1, before, rxq = peek(u, CR1), peek(u, ISR), list(u._rxq)
        n_hints = len(cpu.hints)
        v = u.read(off, size)
        reg = off & ~3
        if reg == RDR and off == RDR:
            if c1 & FIFOEN:
                if rxq:
                    assert v == rxq[0][0] & ((1 << 8 * size) - 1) and u._rxq == rxq[1:]
            else:
                assert not peek(u, ISR) & RXNE
        if reg == ISR:
            assert v == before >> 8 * (off & 3) & ((1 << 8 * size) - 1)
            waiting = c1 & UE and ((c1 & TE and before & (TXE | TC) != TXE | TC)
                                   or (c1 & RE and not before & RXNE))
            if waiting:                                  # nothing changes before the next event
                pending = [ev.time for ev in (u._tx_event, u._idle_event, u._rto_event)
                           if ev is not None]
                assert cpu.hints[n_hints:] == [(BASE, min(pending) if pending else None)]
            else:
                assert len(cpu.hints) == n_hints
        return v


def bits(*masks: int):
    """An int made of any subset of these masks (the bits that matter), sometimes all random."""
    return st.one_of(st.lists(st.sampled_from(masks), max_size=len(masks)).map(
        lambda ms: sum(set(ms))), st.integers(0, 0xFFFF_FFFF))


CR1_MODES = (0, UE, UE | RE | TE, UE | RE | TE | FIFOEN, UE | RE | TE | FIFOEN, UE | RE | TE | FIFOEN,
             UE | RE | TE | FIFOEN | OVER8, UE | RE | TE | M0,
             UE | RE | TE | M1, UE | RE | TE | OVER8 | PCE, UE | RE | TE | FIFOEN | M0 | PCE,
             FIFOEN, UE | RE, UE | TE | FIFOEN, RE | TE)
CR1_MODED = st.tuples(st.sampled_from(CR1_MODES),
                      bits(16, 32, 64, 128, 1 << 8, 1 << 26, 1 << 30, 1 << 31)).map(
    lambda t: t[0] | (t[1] & ~(UE | RE | TE | PCE | M0 | OVER8 | M1 | FIFOEN)))
CR1_BITS = st.one_of(
    CR1_MODED,
    bits(1, 4, 8, 16, 32, 64, 128, 1 << 8, 1 << 10, 1 << 12, 1 << 15, 1 << 26, 1 << 28, 1 << 29,
         1 << 30, 1 << 31))
CR2_BITS = bits(1 << 12, 1 << 13, 1 << 23)
CR3_BITS = st.tuples(st.integers(0, 7), st.integers(0, 7),
                     bits(1, 1 << 6, 1 << 7, 1 << 12, 1 << 23, 1 << 28)).map(
    lambda t: t[0] << 29 | t[1] << 25 | (t[2] & ~(7 << 29 | 7 << 25)))
WRITE = st.one_of(
    st.tuples(st.just("w"), st.just(CR1), CR1_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR2), CR2_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR3), CR3_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(BRR), st.sampled_from((0, 15, 16, 17, 33, 100, 0x2FF, 0x300,
                                                          0x301, 0x10013, 1042)), st.just(4)),
    st.tuples(st.just("w"), st.just(PRESC), st.integers(0, 15), st.just(4)),
    st.tuples(st.just("w"), st.just(RTOR), st.integers(0, 40), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((ICR, RQR)), bits(*(1 << b for b in range(21))),
              st.just(4)),
    st.tuples(st.just("w"), st.just(TDR), st.integers(0, 0x3FF), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((ISR, RDR, GTPR, 0x30, 0x3FC)),
              st.integers(0, 0xFFFF_FFFF), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from(REGS).flatmap(
        lambda r: st.sampled_from((r, r + 1, r + 2, r + 3))), st.integers(0, 0xFFFF),
        st.sampled_from((1, 2))),
)
RARE = st.one_of(
    st.tuples(st.just("clk"), st.sampled_from((120_000_000, 64_000_000, 8_000_000, 32_768, 0))),
    st.tuples(st.just("reset"),))
TXN = st.tuples(st.just("txn"), st.sampled_from((1, 1, 2, 3, 6, 17)))
RXN = st.tuples(st.just("rxn"), st.sampled_from((1, 1, 2, 3, 11, 17)), st.integers(0, 20))
RDN = st.tuples(st.just("rdn"), st.sampled_from((1, 2, 5, 17)))
CHARS = st.tuples(st.just("chars"), st.integers(1, 3))                  # k character times
ADV = st.one_of(st.tuples(st.just("adv"), st.integers(0, 30_000_000)),  # up to 30 us
                st.tuples(st.just("adv"), st.integers(0, 2_000_000)))   # about a character
READ = st.one_of(
    st.tuples(st.just("r"), st.sampled_from(REGS + (RDR, ISR, 0x30)), st.sampled_from((4, 4, 1, 2))),
    st.tuples(st.just("r"), st.sampled_from((ISR + 1, RDR + 1, CR1 + 2, ICR + 3)), st.just(1)))
RX = st.tuples(st.just("rx"), st.integers(0, 0x3FF), st.booleans())
# weights by repetition: the FIFOs fill and drain one step at a time (back-to-back TDR writes,
# RX bursts with one framing error in them, RDR drains) more often than a reset flushes them
#: one flag's ICR bit (or all of them), the way a handler clears what it saw
CLEAR = st.tuples(st.just("w"), st.just(ICR), st.sampled_from((1 << 4, 1 << 3, 1 << 6, 1 << 11, 1 << 1,
                                                              1 << 5, 0x12_3B5F)), st.just(4))
OP = st.one_of(WRITE, WRITE, WRITE, TXN, TXN, TXN, RXN, RXN, RXN, RDN, RDN, CHARS, CHARS, ADV,
               ADV, READ, READ, RX, RX, RARE, CLEAR, CLEAR)
#: a configuration written before the program (most examples then run an enabled USART)
SETUP = st.tuples(
    st.tuples(st.just("w"), st.just(BRR), st.sampled_from((16, 17, 33, 0x300, 0x301, 1042, 0)),
              st.just(4)),
    st.tuples(st.just("w"), st.just(PRESC), st.sampled_from((0, 0, 1, 3)), st.just(4)),
    st.tuples(st.just("w"), st.just(RTOR), st.integers(0, 40), st.just(4)),
    st.tuples(st.just("w"), st.just(CR2), CR2_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR3), CR3_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR1), CR1_MODED, st.just(4)))


def apply(spec: Spec, op):
    sched, _m, u, _sink, _cpu = spec.b
    kind = op[0]
    if kind == "w":
        spec.write(op[1], op[3], op[2] & ((1 << 8 * op[3]) - 1))
    elif kind == "r":
        return spec.read(op[1], op[2])
    elif kind == "rx":
        spec.rx(op[1], op[2])
    elif kind == "txn":
        for k in range(op[1]):
            spec.write(TDR, 4, 0x40 + k)
    elif kind == "rxn":
        for k in range(op[1]):
            spec.rx(0x60 + k, k == op[2])
    elif kind == "rdn":
        return [spec.read(RDR, 4) for _ in range(op[1])]
    elif kind == "chars":
        sched.run_until(sched.now + op[1] * (u.char_time_ps() or 1_000_000))
    elif kind == "adv":
        sched.run_until(sched.now + op[1])
    elif kind == "clk":
        u.kernel_hz = op[1]
    elif kind == "reset":
        u.reset()
        assert [peek(u, r) for r in REGS] == [0] * 7 + [TXE | TC] + [0] * 4      # ISR 0xC0
        assert u.kernel_hz == u.props["frequency"] and not u._txq and not u._rxq
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hz=st.sampled_from((120_000_000, 64_000_000, 1_000_000)), lp=st.booleans(),
       wired=st.booleans(), setup=SETUP, ops=st.lists(OP, min_size=20, max_size=60))
def test_every_step_keeps_the_reference_manual_properties(hz, lp, wired, setup, ops) -> None:
    spec = Spec(board(hz, lp, wired))
    spec.check(None)
    for i, op in enumerate(list(setup) + ops):
        try:
            apply(spec, op)
            spec.check(op)
        except AssertionError as exc:
            raise AssertionError(f"step {i} {op}: {exc}") from exc


class ThroughPorts:
    """The USART as a C unit sees it: reads, writes and arrivals through its ports.h capsules
    (``_native_mmio``, ``_native_uart_rx``), everything else as it is."""

    def __init__(self, u) -> None:
        self.u = u
        self._mmio, self._rx = u._native_mmio, u._native_uart_rx

    def read(self, offset, size):
        return native.core().port_call(self._mmio, offset, size)

    def write(self, offset, size, value):
        native.core().port_call(self._mmio, offset, size, value)

    def rx_char(self, byte, framing_error=False):
        native.core().port_call(self._rx, byte, bool(framing_error))

    def bit_time_ps(self):
        return native.core().port_call(self._rx) or None

    def __getattr__(self, name):
        return getattr(self.u, name)

    def __setattr__(self, name, value):
        if name in ("u", "_mmio", "_rx"):
            object.__setattr__(self, name, value)
        else:                                   # kernel_hz
            setattr(self.u, name, value)


def _observed(b) -> dict:
    sched, _m, u, sink, cpu = b
    return {"regs": [peek(u, r) for r in REGS], "fifos": (u._txq, u._rxq), "sent": list(sink.sent),
            "edges": list(sink.edges), "hints": list(cpu.hints), "log": list(sched.log),
            "counters": (u.tx_count, u.rx_count, u.rx_overruns, u.rx_framing_errors, u.rx_dropped),
            "events": [None if e is None else (e.time, e.seq, e.name)
                       for e in (u._tx_event, u._idle_event, u._rto_event)]}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hz=st.sampled_from((120_000_000, 64_000_000)), setup=SETUP,
       ops=st.lists(OP, min_size=20, max_size=60))
def test_the_ports_h_capsules_reach_the_same_model(hz, setup, ops) -> None:
    """What the C MMIO bus and a native link call is the model the methods call: the same
    program through the capsules and through the methods leaves the same reads, edges, events."""
    plain, other = Spec(board(hz, False, True)), Spec(board(hz, False, True))
    via = Spec((other.b[0], other.b[1], ThroughPorts(other.b[2]), other.b[3], other.b[4]))
    for i, op in enumerate(list(setup) + ops):
        if op[0] == "rx":                      # the port takes the byte as a C int, 9 bits kept
            op = ("rx", op[1] & 0x1FF, op[2])
        assert apply(plain, op) == apply(via, op), f"step {i} {op}: reads differ"
        assert plain.b[2].bit_time_ps() == via.b[2].bit_time_ps()
        assert _observed(plain.b) == _observed(other.b), f"step {i} {op}"


def _bring_up(u, fifo: bool) -> None:
    u.write(BRR, 4, 16)                                   # 120 MHz / 16: 133 ns per bit
    u.write(CR3, 4, DMAR | DMAT)
    u.write(CR1, 4, UE | RE | TE | RXNEIE | (FIFOEN if fifo else 0))


@pytest.mark.parametrize("fifo", [False, True])
def test_a_byte_stream_keeps_the_properties(fifo) -> None:
    """A scripted stream (run whatever Hypothesis draws): back-to-back TX through TDR or the FIFO,
    RX bursts with a framing error, an overrun, IDLE, RTO, a DMA-style drain; the properties hold
    at every step, and each of those things happened."""
    spec = Spec(board(120_000_000, False, True))
    sched, _m, u, sink, _cpu = spec.b
    _bring_up(u, fifo)
    spec.write(RTOR, 4, 22)
    spec.write(CR2, 4, RTOEN)
    flags = 0
    for step in range(60):
        if step % 3 == 0:
            spec.write(TDR, 4, 0x41 + step)
        if step % 5 != 4:
            spec.rx(0x30 + step, step % 7 == 3)
        if step % 4 == 0:
            spec.read(RDR, 4)
        flags |= spec.read(ISR, 4)
        sched.run_until(sched.now + 700_000 * (1 + step % 6))
        flags |= peek(u, ISR)
        spec.check(step)
    assert [b for b, *_ in sink.sent] == [0x41 + s for s in range(0, 60, 3)]     # 1 per 3 steps
    assert any(line == 1 for _t, line, _l in sink.edges), "no RX DMA request"
    assert u.rx_overruns and u.rx_framing_errors
    assert flags & (IDLE | RTOF | ORE | FE) == IDLE | RTOF | ORE | FE


def test_the_usart_keeps_its_state_in_c() -> None:
    """One source of truth: no register bank or Python state; the ports.h capsules are there; a
    character through the C receive path sets RXNE and raises the DMA request."""
    sched, _m, u, sink, _cpu = board(120_000_000, False, True)
    assert type(u) is Stm32Usart and type(u._c) is native.core().Usart
    assert not list(u.regs) and not hasattr(u, "_tdr_full") and "kernel_hz" not in vars(u)
    assert u.read.__self__ is u._c and u.rx_char.__self__ is u._c
    assert type(u._native_mmio).__name__ == "PyCapsule"
    assert type(u._native_uart_rx).__name__ == "PyCapsule"
    _bring_up(u, False)
    u.rx_char(0x5A)
    assert u.read(ISR, 4) & RXNE and u.output("ReceiveDmaRequest").level
    assert sink.edges[-1] == (0, 1, True)
    assert u.read(RDR, 4) == 0x5A and not u.output("ReceiveDmaRequest").level


def test_register_names_for_diagnostics() -> None:
    """``polling usart3.ISR`` in a diagnosis: every register by its RM0433 name, any byte of it."""
    u = board(120_000_000, False, True)[2]
    names = ("CR1", "CR2", "CR3", "BRR", "GTPR", "RTOR", "RQR", "ISR", "ICR", "RDR", "TDR", "PRESC")
    for i, name in enumerate(names):
        assert {u.register_name(4 * i + k) for k in range(4)} == {name}
    assert u.register_name(0x30) is None and u.register_name(0x3FC) is None
