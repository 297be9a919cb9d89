"""Specification tests of the STM32H7 GPIO port (native/stm32_gpio.c behind stm32_gpio.py's
STM32_GPIOPort, the one copy).

What is checked is what RM0433 s.11 says, as stm32_gpio.py's docstring states it, written down
here on its own (class Spec), not from the C:
  - MODER, OSPEEDR, PUPDR, AFRL, AFRH: 32 bits read/write; OTYPER and ODR: bits 15:0 read/write,
    31:16 read 0; IDR read-only, reads the pin levels; BSRR write-only, reads 0: BS (15:0) sets
    ODR bits, BR (31:16) clears them, a bit both set and cleared is set; LCKR: LCK 15:0 and LCKK
    16, 31:17 read 0. A byte or halfword access reads/writes those bytes of the word (a BSRR
    halfword write at +2 is BR alone). Offsets past AFRH read 0 and ignore writes.
  - reset values: GPIOA MODER 0xABFFFFFF OSPEEDR 0x0C000000 PUPDR 0x64000000, GPIOB 0xFFFFFEBF
    0xC0 0x100, the other ports 0xFFFFFFFF 0 0; the other registers 0.
  - a pin's level: analog (MODER 11) 0; output (01) push-pull: ODR; output open-drain with ODR 0:
    0; otherwise (input, AF, released open drain) the level driven from outside, else 1 with
    pull-up (PUPDR 01), else 0.
  - the lock key: LCKR written with LCKK=1, then LCKK=0, then LCKK=1, LCK[15:0] the same each
    time, locks: LCKK then reads 1, and until reset the MODER/OTYPER/OSPEEDR/PUPDR/AFRx fields of
    the pins in LCK keep their value whatever is written, and LCKR keeps its value. A write out
    of sequence aborts (a new sequence starts with it when it carries LCKK=1). Before locking,
    LCKR reads back LCK as written and LCKK 0.
  - outside drive: set_input(pin, level) (also through a Signal connected to the port, the C
    input port) and release_input(pin); a reset (the port's own or the machine's) puts the
    registers and the lock back and keeps the outside drive.
  - every level change, whatever its cause, is seen pin by pin in pin order: the pin's connected
    output Signal first (it shows edges only: a Signal starts low), then each listener
    fn(port, pin, level, t) with t = machine.now() (a slice start while the CPU executes).
    Nothing else is called.

Hypothesis picks the port (A, B or another) and a program of raw register writes and reads of
any size at any byte of the first words and in holes, BSRR set/reset words, MODER/OTYPER/PUPDR
patterns, lock sequences (sometimes broken), outside drives through the method or a Signal,
releases, resets, advances of time and CPU slices; after every step it checks every register
(bus reads, registers()), the levels word, pin_level, pin_mode, the locked pins and the log of
Signal edges and listener calls against Spec.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Signal
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_gpio import STM32_GPIOPort
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

GPIO = 0x5802_0000
NAMES = ("MODER", "OTYPER", "OSPEEDR", "PUPDR", "IDR", "ODR", "BSRR", "LCKR", "AFRL", "AFRH")
MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH = range(0, 0x28, 4)
M32 = 0xFFFF_FFFF
LCKK = 1 << 16
RESET = {0: (0xABFF_FFFF, 0x0C00_0000, 0x6400_0000), 1: (0xFFFF_FEBF, 0xC0, 0x100)}
WIRED = (0, 5, 10, 15)          # pins whose output Signal is connected to a recording sink


class Cpu(FakeCpu):
    def __init__(self) -> None:
        super().__init__()
        self.slice_start_ps = 0


class Spec:
    """The port as RM0433 s.11 describes it (module docstring)."""

    def __init__(self, port: int) -> None:
        self.reset_words = RESET.get(port, (M32, 0, 0))
        self.drive: dict[int, int] = {}             # pin -> level driven from outside
        self.log: list[tuple] = []
        self.signal = {pin: 0 for pin in WIRED}     # the output Signals' levels
        self.reset()
        self.levels = self.compute()

    def reset(self) -> None:
        self.moder, self.ospeedr, self.pupdr = self.reset_words
        self.otyper = self.odr = self.afrl = self.afrh = 0
        self.lck, self.lckk = 0, False
        self.seq: list[int] = []                    # the accepted writes of a lock sequence

    # -- levels -------------------------------------------------------------------------------
    def pin(self, pin: int) -> int:
        mode, pull = self.moder >> 2 * pin & 3, self.pupdr >> 2 * pin & 3
        odr, open_drain = self.odr >> pin & 1, self.otyper >> pin & 1
        if mode == 3:
            return 0
        if mode == 1 and not open_drain:
            return odr
        if mode == 1 and odr == 0:
            return 0
        if pin in self.drive:
            return self.drive[pin]
        return 1 if pull == 1 else 0

    def compute(self) -> int:
        return sum(self.pin(p) << p for p in range(16))

    def changed(self, t: int) -> None:
        new = self.compute()
        for p in range(16):
            level = new >> p & 1
            if level != self.levels >> p & 1:
                if p in self.signal and self.signal[p] != level:
                    self.signal[p] = level
                    self.log.append(("edge", p, level))
                self.log.append(("fn", p, level, t))
        self.levels = new

    # -- the bus ------------------------------------------------------------------------------
    def words(self) -> list[int]:
        return [self.moder, self.otyper, self.ospeedr, self.pupdr, self.levels, self.odr, 0,
                self.lck | (LCKK if self.lckk else 0), self.afrl, self.afrh]

    def read(self, off: int, size: int) -> int:
        if off & ~3 >= 0x28:
            return 0
        return self.words()[off >> 2] >> 8 * (off & 3) & ((1 << 8 * size) - 1)

    def locked_fields(self, width: int, first: int = 0, pins: int = 16) -> int:
        mask = 0
        for k in range(pins):
            if self.lckk and self.lck >> (first + k) & 1:
                mask |= ((1 << width) - 1) << width * k
        return mask

    def write(self, off: int, size: int, value: int, t: int) -> None:
        word = off & ~3
        if word >= 0x28 or word == IDR:
            return
        shift = 8 * (off & 3)
        mask = ((1 << 8 * size) - 1) << shift & M32
        data = value << shift & mask
        if word == BSRR:
            self.odr = (self.odr & ~(data >> 16) | data) & 0xFFFF
        elif word == ODR:
            self.odr = (self.odr & ~mask | data) & 0xFFFF
        elif word == LCKR:
            self.lock_write((self.lck & ~mask | data) & (LCKK | 0xFFFF))
        else:
            name = NAMES[word >> 2].lower()
            width = {"otyper": 1, "afrl": 4, "afrh": 4}.get(name, 2)
            keep = self.locked_fields(width, 8 if name == "afrh" else 0, 8 if width == 4 else 16)
            keep |= ~mask
            if name == "otyper":
                keep |= ~0xFFFF
            old = getattr(self, name)
            setattr(self, name, (old & keep | data & ~keep) & (0xFFFF if name == "otyper" else M32))
        self.changed(t)

    def lock_write(self, w: int) -> None:
        if self.lckk:
            return                                  # LCKR is frozen until reset
        key = w & LCKK
        self.lck = w & 0xFFFF
        step = len(self.seq)
        same = not self.seq or self.seq[0] & 0xFFFF == w & 0xFFFF
        if step == 0 and key:
            self.seq = [w]
        elif step == 1 and not key and same:
            self.seq.append(w)
        elif step == 2 and key and same:
            self.seq, self.lckk = [], True
        else:
            self.seq = [w] if key else []


class Board:
    def __init__(self, port: int) -> None:
        self.sched = Scheduler(1_000_000)
        self.m = Machine("stm32", self.sched)
        self.cpu = Cpu()
        self.m.attach_cpu(self.cpu)
        self.base = GPIO + 0x400 * port
        self.p = STM32_GPIOPort(self.m, f"gpioPort{'ABCDEFGHIJK'[port]}", self.base, None,
                                {"numberOfAFs": 16})
        self.m.add_peripheral(self.p)
        self.m.finish()
        assert type(self.p).__name__ == "STM32_GPIOPortNative"
        assert self.m._bus.native_ranges == 1          # the C bus calls the port's C ops
        self.log: list[tuple] = []
        self.p.subscribe(lambda port, pin, level, t: self.log.append(("fn", pin, level, t)))
        for pin in WIRED:
            self.p.output(pin).connect(self, pin)
        self.drivers = {pin: Signal(f"button{pin}") for pin in range(16)}
        for pin, sig in self.drivers.items():
            sig.connect(self.p, pin)                # through the port's _native_input capsule
        self.spec = Spec(port)

    def set_input(self, line: int, level: bool) -> None:     # the sink of the wired outputs
        self.log.append(("edge", line, int(level)))

    def step(self, op: tuple) -> None:
        kind, s, t = op[0], self.spec, self.m.now()
        if kind == "w":
            _, off, size, value = op
            s.write(off, size, value, t)
            self.m.bus_write(self.base + off, size, value)
        elif kind == "r":
            _, off, size = op
            assert self.m.bus_read(self.base + off, size) == s.read(off, size), op
        elif kind == "lock":
            _, lck, broken = op
            seq = [LCKK | lck, lck, LCKK | lck]
            if broken is not None:
                seq[broken] ^= 1 << (lck.bit_length() % 16)   # a different LCK in one step
            for v in seq:
                s.write(LCKR, 4, v, t)
                self.m.bus_write(self.base + LCKR, 4, v)
        elif kind == "in":
            _, pin, level = op
            s.drive[pin] = level
            s.changed(t)
            self.p.set_input(pin, bool(level))
        elif kind == "sig":
            _, pin, level = op
            sig = self.drivers[pin]
            seq = [1 - level, level] if sig.level == bool(level) else [level]   # Signals send edges
            for lv in seq:
                s.drive[pin] = lv
                s.changed(t)
                sig.set(bool(lv))
        elif kind == "rel":
            s.drive.pop(op[1], None)
            s.changed(t)
            self.p.release_input(op[1])
        elif kind == "reset":
            s.reset()
            s.changed(t)
            if op[1]:
                self.m.system_reset("test")
            else:
                self.p.reset()
        elif kind == "adv":
            self.sched.run_until(self.sched.now + op[1])
        elif kind == "slice":
            self.cpu.executing = op[1] is not None
            self.cpu.slice_start_ps = self.sched.now - (op[1] or 0)

    def check(self, where: str) -> None:
        p, s = self.p, self.spec
        words = s.words()
        assert p.registers() == words, where
        assert [self.m.bus_read(self.base + 4 * i, 4) for i in range(10)] == words, where
        assert self.m.bus_read(self.base + 0x28, 4) == 0 and self.m.bus_read(self.base + 0x3FC, 2) == 0
        assert p._levels == s.levels, where
        assert [p.pin_level(k) for k in range(16)] == [s.levels >> k & 1 for k in range(16)], where
        assert [p.pin_mode(k) for k in range(16)] == [s.moder >> 2 * k & 3 for k in range(16)], where
        assert p._locked == (s.lck if s.lckk else 0), where
        assert [p.regs.MODER.value, p.regs.IDR.value, p.regs.BSRR.value] == [s.moder, s.levels, 0]
        assert self.log == s.log, where


sizes = st.sampled_from([1, 2, 4])
offsets = st.one_of(st.integers(0, 0x27), st.integers(0x28, 0x3FF), st.sampled_from(range(0, 0x28, 4)))
pins = st.integers(0, 15)


@st.composite
def write(draw) -> tuple:
    off, size = draw(offsets), draw(sizes)
    return ("w", off - off % size, size, draw(st.integers(0, M32)))


@st.composite
def pattern(draw) -> tuple:
    """A word made of a few 2-bit (or 1-bit) fields: pins switching mode/pull/type."""
    reg = draw(st.sampled_from([MODER, PUPDR, OTYPER, ODR, AFRL, AFRH, OSPEEDR]))
    v = 0
    for k in range(16):
        v |= draw(st.integers(0, 3 if reg != OTYPER and reg != ODR else 1)) << (2 * k if reg not in
                                                                                 (OTYPER, ODR) else k)
    return ("w", reg, 4, v & M32)


ops = st.one_of(
    write(),
    pattern(),
    st.tuples(st.just("w"), st.just(BSRR), st.just(4), st.integers(0, M32)),
    st.tuples(st.just("w"), st.sampled_from([BSRR, BSRR + 2]), st.just(2), st.integers(0, 0xFFFF)),
    st.tuples(st.just("r"), offsets, sizes).map(lambda o: ("r", o[1] - o[1] % o[2], o[2])),
    st.tuples(st.just("lock"), st.integers(0, 0xFFFF), st.sampled_from([None, None, 0, 1, 2])),
    st.tuples(st.just("lock"), st.integers(0, 0xFFFF), st.just(None)),
    st.tuples(st.just("w"), st.sampled_from([MODER, OTYPER, OSPEEDR, PUPDR, AFRL, AFRH]),
              st.just(4), st.integers(0, M32)),
    st.tuples(st.sampled_from(["in", "sig"]), pins, st.integers(0, 1)),
    st.tuples(st.just("rel"), pins),
    st.tuples(st.just("reset"), st.booleans()),
    st.tuples(st.just("adv"), st.integers(1, 10**9)),
    st.tuples(st.just("slice"), st.one_of(st.none(), st.integers(0, 10**6))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(port=st.sampled_from([0, 1, 2, 4]), program=st.lists(ops, max_size=60))
def test_port_follows_rm0433_after_every_step(port: int, program: list) -> None:
    b = Board(port)
    b.check("at reset")
    for i, op in enumerate(program):
        b.step(op)
        b.check(f"step {i}: {op}")


config_ops = st.one_of(
    st.tuples(st.just("w"), st.sampled_from([MODER, OTYPER, OSPEEDR, PUPDR, AFRL, AFRH, LCKR]),
              st.just(4), st.integers(0, M32)),
    write(),
    pattern(),
    st.tuples(st.just("lock"), st.integers(0, 0xFFFF), st.sampled_from([None, 0, 1, 2])),
    st.tuples(st.just("in"), pins, st.integers(0, 1)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(port=st.sampled_from([0, 1, 2]), lck=st.integers(0, 0xFFFF), before=st.lists(config_ops, max_size=8),
       after=st.lists(config_ops, max_size=30), reset=st.booleans())
def test_a_locked_port_keeps_the_locked_pins_configuration(port: int, lck: int, before: list,
                                                           after: list, reset: bool) -> None:
    """The lock key sequence after any configuration, then writes of every kind: the fields of
    the pins in LCK (and LCKR itself) keep their values until reset, the others follow."""
    b = Board(port)
    for i, op in enumerate([*before, ("lock", lck, None), *after, *([("reset", False)] if reset else []),
                            *after]):
        b.step(op)
        b.check(f"step {i}: {op}")


def test_reset_values_and_levels_of_each_port() -> None:
    for port, (moder, ospeedr, pupdr) in ((0, RESET[0]), (1, RESET[1]), (3, (M32, 0, 0))):
        b = Board(port)
        assert b.p.registers()[:4] == [moder, 0, ospeedr, pupdr]
        assert b.p.regs.PUPDR.reset_value == pupdr
        b.check(f"port {port}")


def test_a_write_that_changes_no_level_calls_nothing() -> None:
    """The hot path: the direction pin written with the level it has calls no listener, no
    Signal and does not ask the machine for the time."""
    b = Board(4)
    b.step(("w", MODER, 4, (M32 & ~(3 << 20)) | (1 << 20)))       # PE10 output, low
    b.step(("w", BSRR, 4, 1 << 10))
    b.check("set")
    calls = []

    class CountingMachine(type(b.m)):
        def now(self) -> int:
            calls.append(1)
            return super().now()

    b.m.__class__ = CountingMachine
    for _ in range(10):
        b.m.bus_write(b.base + BSRR, 4, 1 << 10)
        b.m.bus_write(b.base + BSRR, 4, 1 << (3 + 16))            # another pin, already low
    assert calls == [] and b.log == b.spec.log


def test_listeners_may_write_the_port_and_see_each_change_once() -> None:
    """A listener that writes the port from inside a notification (a reflex on another pin):
    the nested change is reported at once, the outer walk goes on with the levels it started."""
    b = Board(2)
    b.step(("w", MODER, 4, 0x5555_5555))                          # all outputs
    seen = []

    def reflex(port, pin, level, t) -> None:
        seen.append((pin, level))
        if pin == 1 and level:
            port.write(BSRR, 4, 1 << 7)                           # PC7 follows PC1 going high

    b.p.subscribe(reflex)
    b.m.bus_write(b.base + BSRR, 4, (1 << 1) | (1 << 9))
    assert seen == [(1, 1), (7, 1), (9, 1)]
    assert b.p._levels == (1 << 1) | (1 << 7) | (1 << 9)


def test_listener_errors_are_handed_on_with_the_state_kept() -> None:
    b = Board(2)
    b.step(("w", MODER, 4, 0x5555_5555))

    def boom(port, pin, level, t) -> None:
        raise RuntimeError(f"listener saw pin {pin}")

    b.p.subscribe(boom)
    with pytest.raises(RuntimeError, match="pin 3"):
        b.p.write(ODR, 4, 1 << 3)
    assert b.p._levels == 1 << 3 and b.p.registers()[5] == 1 << 3


def test_bad_pins_are_refused() -> None:
    b = Board(2)
    for bad in (-1, 16, 40):
        with pytest.raises(ValueError, match="0 .. 15"):
            b.p.set_input(bad, True)
        with pytest.raises(ValueError, match="0 .. 15"):
            b.p.release_input(bad)


def test_a_collected_port_leaks_nothing() -> None:
    import gc
    import weakref

    b = Board(2)
    port = b.p
    ref = weakref.ref(port)
    port.subscribe(port.write)                       # a cycle through the listener list
    del b, port
    gc.collect()
    assert ref() is None
