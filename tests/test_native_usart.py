"""Differential tests: the STM32H7 USART in C (native/usart.c behind stm32_usart.py's
Stm32UsartNative) against the Python reference (Stm32Usart), and _core.Signal against
peripheral.py's Signal.

Two USARTs, one per DUOHIL_MODELS value, each alone in a machine with its own scheduler and a
FakeCpu (which records poll hints); the IRQ and both DMA request lines go to a recording sink
(or, when Hypothesis says so, the DMA lines stay unwired, so that setting DMAR/DMAT logs the
warning), the TX sink records every character. Hypothesis picks the kernel clock, LPUART or not,
and a program of register writes (whole words and byte/halfword accesses to CR1/CR2/CR3/BRR/
PRESC/RTOR/ICR/RQR/TDR and the read-only ISR/RDR, with FIFO mode, word lengths, parity, OVER8,
RTOEN and the interrupt/DMA enables among the bits), reads of every register, characters
arriving from the link (with framing errors; overruns when nobody reads), time advances that fire
the TX/IDLE/RTO events, kernel clock changes and resets. After every step both read the same
values and hold the same registers, FIFOs, counters and timing, raised and lowered the same
lines at the same picoseconds, sent the same characters (byte, start, bit time, frame bits and
its type), hold the same events (time, sequence number, name), gave the same poll hints and
wrote the same event log.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Signal
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart, Stm32UsartNative
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BASE = 0x4000_4800
CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC = range(0, 0x30, 4)
REGS = (CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC)


class Sink:
    """Both sides of the wires: line edges with their time, and the characters sent."""

    def __init__(self, sched) -> None:
        self.sched, self.edges, self.sent = sched, [], []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, line, level))

    def tx(self, uart, byte, t0, bit, frame_bits) -> None:
        self.sent.append((uart.name, byte, t0, bit, frame_bits, type(frame_bits).__name__))


def board(models: str, hz: int, lp: bool, wired: bool):
    with native.using(models):
        sched = Scheduler(1_000_000)
        m = Machine("stm32", sched, platform=__file__)
        cpu = FakeCpu()
        m.attach_cpu(cpu)
        u = Stm32Usart(m, "usart3", BASE, props={"frequency": hz, "lowPowerMode": lp})
        m.add_peripheral(u)
        m.finish()
    assert isinstance(u, Stm32UsartNative) == (models == "native")
    sink = Sink(sched)
    u.output("IRQ").connect(sink, 0)
    if wired:
        u.output("ReceiveDmaRequest").connect(sink, 1)
        u.output("TransmitDmaRequest").connect(sink, 2)
    u.tx_sink = sink.tx
    return sched, m, u, sink, cpu


def bits(*masks: int):
    """An int made of any subset of these masks (the bits that matter), sometimes all random."""
    return st.one_of(st.lists(st.sampled_from(masks), max_size=len(masks)).map(
        lambda ms: sum(set(ms))), st.integers(0, 0xFFFF_FFFF))


UE, RE, TE, PCE, M0, OVER8, M1, FIFOEN = 1, 4, 8, 1 << 10, 1 << 12, 1 << 15, 1 << 28, 1 << 29
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
RX = st.tuples(st.just("rx"), st.integers(-2, 0x3FF), st.booleans())
# weights by repetition: the FIFOs fill and drain one step at a time (back-to-back TDR writes,
# RX bursts with one framing error in them, RDR drains) more often than a reset flushes them
OP = st.one_of(WRITE, WRITE, WRITE, TXN, TXN, TXN, RXN, RXN, RXN, RDN, RDN, CHARS, CHARS, ADV,
               ADV, READ, READ, RX, RX, RARE)


def apply(b, op):
    sched, _m, u, _sink, _cpu = b
    kind = op[0]
    if kind == "w":
        u.write(op[1], op[3], op[2])
    elif kind == "r":
        return u.read(op[1], op[2])
    elif kind == "rx":
        u.rx_char(op[1], op[2])
    elif kind == "txn":
        for k in range(op[1]):
            u.write(TDR, 4, 0x40 + k)
    elif kind == "rxn":
        for k in range(op[1]):
            u.rx_char(0x60 + k, k == op[2])
    elif kind == "rdn":
        return [u.read(RDR, 4) for _ in range(op[1])]
    elif kind == "chars":
        sched.run_until(sched.now + op[1] * (u.char_time_ps() or 1_000_000))
    elif kind == "adv":
        sched.run_until(sched.now + op[1])
    elif kind == "clk":
        u.kernel_hz = op[1]
    elif kind == "reset":
        u.reset()
    return None


def _ev(ev):
    return None if ev is None else (ev.time, ev.seq, ev.name, ev.cancelled)


def state(b) -> dict:
    sched, _m, u, sink, cpu = b
    if isinstance(u, Stm32UsartNative):
        regs = [u._c.peek(i) for i in range(len(REGS))]
    else:
        regs = [r.value for r in u.regs]
    return {
        "regs": regs,
        "fifos": (list(u._txq), [(v, bool(fe)) for v, fe in u._rxq]),
        "counters": (u.tx_count, u.rx_count, u.rx_overruns, u.rx_framing_errors, u.rx_dropped),
        "timing": (u.kernel_hz, u.bit_time_ps(), u._bit_ps(), u.frame_bits(), u.char_time_ps()),
        "lines": [u.output(n).level for n in ("IRQ", "ReceiveDmaRequest", "TransmitDmaRequest")],
        "edges": list(sink.edges),
        "sent": list(sink.sent),
        "events": [_ev(u._tx_event), _ev(u._idle_event), _ev(u._rto_event)],
        "next": sched.next_event_time(),
        "hints": list(cpu.hints),
        "log": list(sched.log),
    }


#: a configuration written before the program (most examples then run an enabled USART)
SETUP = st.tuples(
    st.tuples(st.just("w"), st.just(BRR), st.sampled_from((16, 17, 33, 0x300, 0x301, 1042, 0)),
              st.just(4)),
    st.tuples(st.just("w"), st.just(PRESC), st.sampled_from((0, 0, 1, 3)), st.just(4)),
    st.tuples(st.just("w"), st.just(RTOR), st.integers(0, 40), st.just(4)),
    st.tuples(st.just("w"), st.just(CR2), CR2_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR3), CR3_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CR1), CR1_MODED, st.just(4)))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hz=st.sampled_from((120_000_000, 64_000_000, 1_000_000)), lp=st.booleans(),
       wired=st.booleans(), setup=SETUP, ops=st.lists(OP, min_size=20, max_size=60))
def test_usart_in_c_equals_the_python_reference(hz, lp, wired, setup, ops) -> None:
    py, nat = board("python", hz, lp, wired), board("native", hz, lp, wired)
    assert state(py) == state(nat)
    ops = list(setup) + ops
    for i, op in enumerate(ops):
        ra, rc = apply(py, op), apply(nat, op)
        assert ra == rc, f"step {i} {op}: reads differ"
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


class ThroughPorts:
    """The native USART as a C unit sees it: reads, writes and arrivals through its ports.h
    capsules (``_native_mmio``, ``_native_uart_rx``), everything else as it is."""

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


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hz=st.sampled_from((120_000_000, 64_000_000)), setup=SETUP,
       ops=st.lists(OP, min_size=20, max_size=60))
def test_the_ports_h_capsules_are_the_same_model(hz, setup, ops) -> None:
    """What the C MMIO bus and a native link will call: the same reads, edges, events, log."""
    py, nat = board("python", hz, False, True), board("native", hz, False, True)
    via = (nat[0], nat[1], ThroughPorts(nat[2]), nat[3], nat[4])
    for i, op in enumerate(list(setup) + ops):
        if op[0] == "rx":                      # the port takes the byte as C int, 9 bits kept
            op = ("rx", op[1] & 0x1FF, op[2])
        assert apply(py, op) == apply(via, op), f"step {i} {op}: reads differ"
        assert py[2].bit_time_ps() == via[2].bit_time_ps()
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def _bring_up(u, fifo: bool) -> None:
    u.write(BRR, 4, 16)                                   # 120 MHz / 16: 133 ns per bit
    u.write(CR3, 4, (1 << 6) | (1 << 7))                  # DMAR, DMAT
    u.write(CR1, 4, 1 | 4 | 8 | 32 | ((1 << 29) if fifo else 0))


@pytest.mark.parametrize("fifo", [False, True])
def test_a_byte_stream_through_both_models(fifo) -> None:
    """A scripted stream (so that it is run whatever Hypothesis draws): back-to-back TX through
    TDR or the FIFO, RX bursts with a framing error, an overrun, IDLE, RTO, a DMA-style drain."""
    boards = [board(m, 120_000_000, False, True) for m in ("python", "native")]
    for b in boards:
        _bring_up(b[2], fifo)
        b[2].write(RTOR, 4, 22)
        b[2].write(CR2, 4, 1 << 23)
    for step in range(60):
        reads = []
        for sched, _m, u, _s, _c in boards:
            if step % 3 == 0:
                u.write(TDR, 4, 0x41 + step)
            if step % 5 != 4:
                u.rx_char(0x30 + step, step % 7 == 3)
            if step % 4 == 0:
                reads.append(u.read(RDR, 4))
            reads.append(u.read(ISR, 4))
            sched.run_until(sched.now + 700_000 * (1 + step % 6))
        assert reads[: len(reads) // 2] == reads[len(reads) // 2:], f"step {step}"
        assert state(boards[0]) == state(boards[1]), f"step {step}"
    a = state(boards[0])
    assert a["sent"] and a["edges"] and any(e[1] == 1 for e in a["edges"]), "the stream did nothing"
    assert boards[0][2].rx_overruns and boards[0][2].rx_framing_errors


def test_the_native_usart_keeps_its_state_in_c_only() -> None:
    """One source of truth: no register bank or Python state under native; the ports.h capsules
    are there; a character through the C receive path sets RXNE and raises the DMA request."""
    sched, _m, u, sink, _cpu = board("native", 120_000_000, False, True)
    assert not list(u.regs) and not hasattr(u, "_tdr_full") and "kernel_hz" not in vars(u)
    assert type(u._native_mmio).__name__ == "PyCapsule" and type(u._native_uart_rx).__name__ == "PyCapsule"
    assert type(u.output("IRQ")) is native.core().Signal
    _bring_up(u, False)
    u.rx_char(0x5A)
    assert u.read(ISR, 4) & 0x20 and u.output("ReceiveDmaRequest").level
    assert sink.edges[-1] == (0, 1, True)
    assert u.read(RDR, 4) == 0x5A and not u.output("ReceiveDmaRequest").level


# -- Signal ----------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, log: list, tag: str) -> None:
        self.log, self.tag = log, tag

    def set_input(self, line, level) -> None:
        self.log.append((self.tag, line, level, type(level).__name__))


class Grower(Recorder):
    """A sink that connects another sink to the signal it is called from (the iteration sees it)."""

    def __init__(self, log, tag, sig) -> None:
        super().__init__(log, tag)
        self.sig, self.done = sig, False

    def set_input(self, line, level) -> None:
        super().set_input(line, level)
        if not self.done:
            self.done = True
            self.sig.connect(Recorder(self.log, self.tag + "+"), line + 100)


SIG_OP = st.one_of(
    st.tuples(st.just("set"), st.sampled_from((True, False, 0, 1, 2, None, "", "x"))),
    st.tuples(st.just("set1"),),
    st.tuples(st.just("pulse"),),
    st.tuples(st.just("connect"), st.integers(0, 5)),
    st.tuples(st.just("grow"),),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(SIG_OP, max_size=30))
def test_signal_in_c_equals_the_python_reference(ops) -> None:
    sides = [(Signal("u.IRQ"), []), (native.core().Signal("u.IRQ"), [])]
    for i, op in enumerate(ops):
        for sig, log in sides:
            if op[0] == "set":
                sig.set(op[1])
            elif op[0] == "set1":
                sig.set()
            elif op[0] == "pulse":
                sig.pulse()
            elif op[0] == "connect":
                sig.connect(Recorder(log, f"r{i}"), op[1])
            else:
                sig.connect(Grower(log, f"g{i}", sig), 7)
        (a, la), (c, lc) = sides
        assert la == lc, f"step {i} {op}"
        assert (a.name, a.level, a.connected, type(a.level)) == \
            (c.name, c.level, c.connected, type(c.level))
        assert [(type(s).__name__, n) for s, n in a._targets] == \
            [(type(s).__name__, n) for s, n in c._targets]


def test_signal_errors_are_handed_on() -> None:
    class Bad:
        def set_input(self, line, level):
            raise RuntimeError(f"line {line}")

    for sig in (Signal("s"), native.core().Signal("s")):
        sig.connect(Bad(), 3)
        with pytest.raises(RuntimeError, match="line 3"):
            sig.set(True)
        assert sig.level            # as the Python reference: the level changed before the call


def test_peripheral_outputs_follow_the_switch() -> None:
    for models, cls in (("python", Signal), ("native", native.core().Signal)):
        with native.using(models):
            sched = Scheduler(1_000_000)
            m = Machine("stm32", sched, platform=__file__)
            u = Stm32Usart(m, "usart1", BASE)
        assert type(u.output("IRQ")) is cls and u.output("IRQ") is u.output("IRQ")


def test_register_names_for_diagnostics_are_the_same() -> None:
    """``polling usart3.ISR`` in a diagnosis: the native model names its registers like the bank."""
    py, nat = board("python", 120_000_000, False, True)[2], board("native", 120_000_000, False, True)[2]
    names = [py.register_name(off) for off in range(0x400)]
    assert names == [nat.register_name(off) for off in range(0x400)]
    assert names[0x1C] == names[0x1F] == "ISR" and names[0x30] is None
