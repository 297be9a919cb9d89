"""Specification tests of the STM32H7 timers (native/stm32_timer.c behind stm32_timer.py's
STM32_Timer, the one copy whatever DUOHIL_MODELS says).

What is checked is what RM0433 says (s.38-41: TIM1/TIM8, TIM2-5, TIM6/7 time-base units) with the
choices stm32_timer.py's docstring states:
  - time: the kernel clock (``timer_hz``) has cycle c at ``epoch + ceil(c * 10**12 / hz)`` ps;
    a CEN write (and UG while counting) anchors the counter at the first cycle at or after it,
    and the counter counts once every PSC+1 cycles from there; until the first count CNT holds
    its value (0 after reset/UG, ARR after UG when down-counting, what software wrote). A clock
    change from the RCC keeps the value reached and the prescaler counter's count: the new
    clock's cycle 0 is the change, the rest of the prescaler period runs at the new rate.
  - upcounting: 0..ARR, then 0 with an overflow; above ARR (ARR lowered without preload, or
    CNT written above it) up to the counter's top (0xFFFF, 0xFFFFFFFF for TIM2) and then 0.
    Downcounting (CR1.DIR): ARR..0, then ARR with an underflow. DIR changes keep the value and
    the prescaler phase, as do CNT writes and ARR writes without ARPE while counting. CEN=0
    freezes the value reached in the direction it was counting (a write flipping DIR too).
  - the update event (UEV) at each overflow/underflow and at EGR.UG: PSC always preloaded,
    ARR preloaded when ARPE, CCRx preloaded when CCMRx.OCxPE, all transferred at the UEV;
    SR.UIF set by it (not for UG when URS); CR1.UDIS: no UEV at all (the counter still wraps, no
    transfer, no UIF); UG reinitialises the counter (0, ARR when down-counting) and the prescaler.
    The down-counter reloads the ARR the UEV just transferred. One-pulse mode (OPM): CEN cleared
    at the overflow/underflow (the model's choice for a down-counter: it stops at the ARR it had
    before that UEV's transfer). SR is rc_w0; the update IRQ line is SR.UIF & DIER.UIE. CNT reads
    UIF in bit 31 with CR1.UIFREMAP on 16-bit timers. EGR reads 0; holes read 0 and ignore writes;
    other registers read the word written (a sub-word access reads/merges those bytes).
  - encoder mode (SMS 1/2/3): the plant's position (quadrature edges, ``set_encoder_count`` or
    the pulled ``encoder_source``) moves CNT by the change (x4 for SMS=3, the change of position
    // 2 for SMS=1/2), reversed when exactly one of CC1P/CC2P, wrapping within 0..ARR with one
    UEV per call that wraps; DIR shows the last direction; counting only with CEN. The source is
    pulled before CNT is read or written, at CEN edges and when SMCR enters encoder mode.
  - the outputs: channel duty = CCRx/(ARR+1) clamped to 1 (PWM1), 1 minus that (PWM2), 1/0
    (force active/inactive), 1/2 (toggle), inverted by CCxP, 0 unless CEN, CCxE and (TIM1/TIM8)
    BDTR.MOE; the listeners have heard the current outputs after every step.
  - one update event ``timer.update`` at most, at the next overflow (it may be skipped when
    nobody can observe it: no UIE/UDE, nothing in a preload register, plain up-counting), and
    there is one whenever UIE or UDE is set while counting; an SR read finding UIF clear while
    counting tells the CPU nothing changes before the next overflow (the poll hint).

Hypothesis picks the instance (TIM1: advanced, 16-bit; TIM2: 32-bit; TIM6: basic), the kernel
clock, the bus (the Python bus under ``DUOHIL_MODELS=python``, the C bus under ``native``; the
timer is the same C under both) and a program: register writes (whole words and byte/halfword
accesses) with the bits that matter, reads of every register and of holes, accesses through the
machine's bus, accesses made while the CPU is executing (machine.now() is then the slice start,
ahead of the scheduler but before the next event or overflow, as a slice is), time advances,
encoder counts from the plant, kernel clock changes, ``counter()`` and resets. After every step
every value read, the register words, the shadow PSC/ARR/CCRx, the update count, CNT, the event,
the IRQ edges, the poll hints, the encoder source calls and the output views are those of
``Spec``.
"""
from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

PS = 10**12
M32 = 0xFFFF_FFFF
TIM1, TIM2, TIM6 = 0x4001_0000, 0x4000_0000, 0x4000_1000
CR1, CR2, SMCR, DIER, SR, EGR, CCMR1, CCMR2, CCER, CNT, PSC, ARR, RCR, CCR1, CCR2, CCR3, CCR4, \
    BDTR = range(0, 0x48, 4)
HOLES = (0x50, 0x6C, 0x70, 0x3FC)
N_REGS = 27                                   # 0x00..0x68, offset / 4
NAMES = ("CR1", "CR2", "SMCR", "DIER", "SR", "EGR", "CCMR1", "CCMR2", "CCER", "CNT", "PSC", "ARR",
         "RCR", "CCR1", "CCR2", "CCR3", "CCR4", "BDTR", "DCR", "DMAR", None, "CCMR3", "CCR5", "CCR6",
         "AF1", "AF2", "TISEL")
CEN, UDIS, URS, OPM, DIR, CMS, ARPE, UIFREMAP = 1, 2, 4, 8, 16, 3 << 5, 128, 1 << 11
UIE, UDE, UIF = 1, 1 << 8, 1


class World:
    """Scheduler, machine, CPU, timer, and what the timer did to the outside."""

    def __init__(self, base: int, limit: int, hz: int, source: bool) -> None:
        self.sched = sched = Scheduler(1_000_000)
        self.m = m = Machine("stm32", sched, platform=__file__)
        self.cpu = FakeCpu()
        self.cpu.slice_start_ps = 0
        m.attach_cpu(self.cpu)
        self.tim = tim = STM32_Timer(m, "timer", base, None, {"frequency": hz, "initialLimit": limit})
        m.add_peripheral(tim)
        m.finish()
        assert isinstance(tim, native.core().Timer) and isinstance(tim, STM32_Timer)
        self.base = base
        self.edges: list = []
        self.calls: list = []
        self.pos = [0]
        self.source_calls = 0
        tim.output("IRQ").connect(self, 54)
        tim.add_listener(self.listener)
        if source:
            tim.encoder_source = self.source

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, self.m.now(), line, level))

    def listener(self, t) -> None:
        assert t is self.tim
        self.calls.append((tuple(t.channel_duty(c) for c in (1, 2, 3, 4)),
                           tuple(t.output_enabled(c) for c in (1, 2, 3, 4))))

    def source(self) -> int:
        self.source_calls += 1
        return self.pos[0]


class Spec:
    """What RM0433's time-base rules (and stm32_timer.py's stated choices) predict. Every update
    event is applied at its time (no lazy mode here)."""

    def __init__(self, w: World, base: int, limit: int, hz: int, source: bool) -> None:
        self.w = w
        self.base = base
        self.wm = M32 if limit > 0xFFFF else 0xFFFF
        self.arr_reset = limit & self.wm
        self.advanced = base in (TIM1, 0x4001_0400)
        self.repl_hz = hz
        self.source = source
        self.updates = 0
        self.edges: list = []
        self.hints: list = []
        self.irq = False
        self.source_calls = 0
        self.reset_state(0)

    def reset_state(self, now: int) -> None:
        self.reg = [0] * N_REGS
        self.reg[ARR >> 2] = self.arr_reset
        self.hz, self.epoch = self.repl_hz, now
        self.running = False                  # counting kernel-clock ticks
        self.c0 = 0                           # CNT at the anchor (or while not counting)
        self.a = 0                            # the anchor's kernel cycle
        self.psc, self.arr, self.ccr = 0, self.arr_reset, [0, 0, 0, 0]
        self.enc_pos: int | None = None

    # -- registers and fields ---------------------------------------------------------------------
    def r(self, off: int) -> int:
        return self.reg[off >> 2]

    def encoder(self) -> bool:
        v = self.r(SMCR)
        return ((v & 7) | (v >> 16 & 1) << 3) in (1, 2, 3)

    # -- kernel-clock time --------------------------------------------------------------------------
    def cycle_floor(self, t: int) -> int:
        return (t - self.epoch) * self.hz // PS

    def cycle_ceil(self, t: int) -> int:
        return -((self.epoch - t) * self.hz // PS)

    def time_of(self, c: int) -> int:
        return self.epoch + -(-c * PS // self.hz)

    def ticks(self, t: int) -> int:
        return max(0, (self.cycle_floor(t) - self.a) // (self.psc + 1))

    def ticks_to_ovf(self) -> int:
        if self.r(CR1) & DIR:
            return self.c0 + 1
        return (self.arr if self.c0 <= self.arr else self.wm) - self.c0 + 1

    def next_ovf(self) -> int | None:
        if not self.running:
            return None
        return self.time_of(self.a + (self.psc + 1) * self.ticks_to_ovf())

    def value(self, t: int) -> int:
        if not self.running:
            return self.c0
        k = self.ticks(t)
        assert k < self.ticks_to_ovf(), "an overflow not applied"
        return self.c0 - k if self.r(CR1) & DIR else self.c0 + k

    # -- the update event -------------------------------------------------------------------------
    def set_irq(self) -> None:
        level = bool(self.r(SR) & self.r(DIER) & UIF)
        if level != self.irq:
            self.irq = level
            self.edges.append((self.w.sched.now, self.w.m.now(), 54, level))

    def uev(self, software: bool = False) -> None:
        cr1 = self.r(CR1)
        if cr1 & UDIS:
            return
        self.updates += 1
        self.psc = self.r(PSC) & 0xFFFF
        self.arr = self.r(ARR) & self.wm
        self.ccr = [self.r(CCR1 + 4 * n) & self.wm for n in range(4)]
        if not (software and cr1 & URS):
            self.reg[SR >> 2] |= UIF
            self.set_irq()

    def overflow(self) -> None:
        k = self.ticks_to_ovf()
        self.a += (self.psc + 1) * k
        down = self.r(CR1) & DIR
        self.c0 = self.arr if down else 0
        self.uev()
        if self.r(CR1) & OPM:
            self.reg[CR1 >> 2] &= ~CEN
            self.running = False
            return
        if down:
            self.c0 = self.arr                # the ARR this UEV transferred

    def advance(self, t: int) -> None:
        """Apply the overflows due at or before t. After one, the next are alike (same reload,
        preloads already transferred, UIF already set: no edge) every (PSC+1)(ARR+1) cycles."""
        if self.running and self.next_ovf() <= t:
            self.overflow()
            while self.running and self.next_ovf() <= t:
                self.overflow()
                if self.running:
                    period = (self.psc + 1) * (self.arr + 1)
                    k = max(0, (self.cycle_floor(t) - self.a) // period)
                    self.a += k * period
                    if not self.r(CR1) & UDIS:
                        self.updates += k

    def start(self, now: int) -> None:
        self.a = self.cycle_ceil(now)
        self.running = True

    def stop(self, now: int) -> None:
        if self.running:
            self.c0 = self.value(now)
        self.running = False

    def reanchor(self, now: int) -> None:
        v, k = self.value(now), self.ticks(now)
        self.c0 = v
        self.a += k * (self.psc + 1)

    # -- encoder --------------------------------------------------------------------------------------
    def set_encoder_count(self, pos: int) -> None:
        last, self.enc_pos = self.enc_pos, pos
        if last is None or not (self.encoder() and self.r(CR1) & CEN):
            return
        if self.r(SMCR) & 7 == 3:
            delta = pos - last
        else:
            delta = (pos >> 1) - (last >> 1)
        ccer = self.r(CCER)
        if (ccer >> 1 & 1) != (ccer >> 5 & 1):
            delta = -delta
        if delta == 0:
            return
        self.reg[CR1 >> 2] = (self.r(CR1) & ~DIR) | (DIR if delta < 0 else 0)
        total = self.c0 + delta
        self.c0 = total % (self.arr + 1)
        if total // (self.arr + 1):
            self.uev()

    def pull(self, counting: bool) -> None:
        if not self.source:
            return
        self.source_calls += 1
        if counting:
            self.set_encoder_count(self.w.pos[0])
        else:
            self.enc_pos = self.w.pos[0]

    def counter(self, now: int) -> int:
        if self.encoder():
            self.pull(True)
            return self.c0
        self.advance(now)
        return self.value(now)

    # -- bus ------------------------------------------------------------------------------------------
    def read(self, off: int, size: int, now: int) -> int:
        self.advance(now)
        idx = off >> 2
        if off >= 4 * N_REGS or idx == 20:
            return 0
        if idx == SR >> 2:
            if not self.r(SR) & UIF and self.running:
                self.hints.append((self.base, self.next_ovf()))
            v = self.r(SR)
        elif idx == CNT >> 2:
            v = self.counter(now)
            if self.r(CR1) & UIFREMAP and self.wm == 0xFFFF:
                v |= (self.r(SR) & UIF) << 31
        elif idx == EGR >> 2:
            v = 0
        else:
            v = self.reg[idx]
        v >>= 8 * (off & 3)
        return v if size >= 8 else v & ((1 << 8 * size) - 1)

    def write(self, off: int, size: int, value: int, now: int) -> None:
        self.advance(now)
        idx = off >> 2
        if off >= 4 * N_REGS or idx == 20:
            return
        bits = 8 * (off & 3)
        ones = (1 << 64) - 1 if size >= 8 else (1 << 8 * size) - 1
        mask = (ones << bits) & M32
        old = self.reg[idx]
        new = self.reg[idx] = (old & ~mask) | ((value << bits) & mask)
        reg = idx << 2
        if reg == CR1:
            self.cr1_written(old, now)
        elif reg == SMCR:
            was = ((old & 7) | (old >> 16 & 1) << 3) in (1, 2, 3)
            if was != self.encoder():
                if self.encoder():
                    self.stop(now)
                    self.pull(False)
                elif self.r(CR1) & CEN:
                    self.start(now)
        elif reg == DIER:
            self.set_irq()
        elif reg == SR:
            self.reg[idx] = old & new
            self.set_irq()
        elif reg == EGR:
            if new & 1:
                restart = self.running
                self.stop(now)
                self.uev(software=True)
                self.c0 = self.arr if self.r(CR1) & DIR else 0
                if restart:
                    self.start(now)
        elif reg == CNT:
            if self.encoder():
                self.pull(True)
            elif self.running:
                self.reanchor(now)
            self.c0 = new & self.wm
        elif reg == ARR:
            if not self.r(CR1) & ARPE:
                if self.running:
                    self.reanchor(now)
                self.arr = new & self.wm
        elif CCR1 <= reg <= CCR4:
            n = (reg - CCR1) >> 2
            if not self.r(CCMR1 if n < 2 else CCMR2) >> (3 if n % 2 == 0 else 11) & 1:
                self.ccr[n] = new & self.wm

    def cr1_written(self, old: int, now: int) -> None:
        i = CR1 >> 2
        old_cen, old_dir, cen = old & CEN, old & DIR, self.reg[i] & CEN
        if self.encoder():
            self.reg[i] = (self.reg[i] & ~DIR) | old_dir            # DIR is the hardware's
            if cen and not old_cen:
                self.pull(False)
            elif old_cen and not cen:
                self.reg[i] |= CEN
                self.pull(True)
                self.reg[i] &= ~CEN
        elif cen and not old_cen:
            self.start(now)
        elif old_cen and not cen:             # frozen at the value reached in the old direction
            new_dir = self.reg[i] & DIR
            self.reg[i] = (self.reg[i] & ~DIR) | old_dir
            self.stop(now)
            self.reg[i] = (self.reg[i] & ~DIR) | new_dir
        elif cen and (self.reg[i] & DIR) != old_dir and self.running:
            new_dir = self.reg[i] & DIR
            self.reg[i] = (self.reg[i] & ~DIR) | old_dir
            self.reanchor(now)
            self.reg[i] = (self.reg[i] & ~DIR) | new_dir

    def set_hz(self, hz: int, now: int) -> None:
        if hz <= 0 or hz == self.hz:
            return
        if self.running:                      # the prescaler counter keeps its count
            self.advance(now)
            self.reanchor(now)
            done = self.cycle_floor(now) - self.a
            self.hz, self.epoch, self.a = hz, now, -done
        else:
            self.hz, self.epoch = hz, now

    def reset(self, now: int) -> None:
        self.reset_state(now)
        self.set_irq()

    # -- the views ------------------------------------------------------------------------------------
    def enabled(self, ch: int) -> bool:
        if not self.r(CR1) & CEN or not self.r(CCER) >> 4 * (ch - 1) & 1:
            return False
        return bool(self.r(BDTR) >> 15 & 1) if self.advanced else True

    def duty(self, ch: int) -> float:
        if not self.enabled(ch):
            return 0.0
        ccmr = self.r(CCMR1 if ch <= 2 else CCMR2)
        sh = 0 if ch % 2 else 8
        mode = (ccmr >> (4 + sh) & 7) | (ccmr >> (16 + sh) & 1) << 3
        period = self.arr + 1
        raw = min(self.ccr[ch - 1], period) / period
        d = {6: raw, 7: 1.0 - raw, 5: 1.0, 3: 0.5}.get(mode, 0.0)
        return 1.0 - d if self.r(CCER) >> 4 * (ch - 1) + 1 & 1 else d

    def period_ps(self) -> int:
        return (self.psc + 1) * (self.arr + 1) * PS // self.hz


def apply(w: World, s: Spec, op):
    """The op on the timer and on the spec: (timer's result, spec's result) or None."""
    kind, t, m = op[0], w.tim, w.m
    now = m.now()
    if kind == "w":
        t.write(op[1], op[3], op[2])
        s.write(op[1], op[3], op[2], now)
    elif kind == "r":
        return t.read(op[1], op[2]), s.read(op[1], op[2], now)
    elif kind in ("adv", "per"):
        if kind == "adv":
            until = w.sched.now + op[1]
        else:
            period = s.period_ps()
            until = w.sched.now + op[1] * period + (op[2] if op[2] >= 0 else period // 3)
        until = min(until, 2**62)
        nxt = s.next_ovf()               # the first overflow at its time (an IRQ edge there)
        if nxt is not None and nxt <= until:
            w.sched.run_until(nxt)
            s.advance(nxt)
        w.sched.run_until(until)
        s.advance(until)
    elif kind == "enc":
        w.pos[0] += op[1]
        t.set_encoder_count(w.pos[0])
        s.set_encoder_count(w.pos[0])
    elif kind == "bus":
        if op[1]:
            return m.bus_read(w.base + op[2], 4), s.read(op[2], 4, now)
        m.bus_write(w.base + op[2], 4, op[3])
        s.write(op[2], 4, op[3], now)
    elif kind == "exec":                 # a slice ahead of the scheduler, before what is next
        bound = [x for x in (w.sched.next_event_time(), s.next_ovf()) if x is not None]
        lag = min([op[1]] + [b - w.sched.now - 1 for b in bound])
        if lag < 0:
            return None
        w.cpu.executing, w.cpu.slice_start_ps = True, w.sched.now + lag
        try:
            at = m.now()
            if op[2]:
                return m.bus_read(w.base + op[3], 4), s.read(op[3], 4, at)
            m.bus_write(w.base + op[3], 4, op[4])
            s.write(op[3], 4, op[4], at)
        finally:
            w.cpu.executing = False
    elif kind == "src":
        w.pos[0] += op[1]
    elif kind == "counter":
        return t.counter(), s.counter(now)
    elif kind == "hz":
        t.timer_hz = op[1]
        s.set_hz(op[1], now)
    elif kind == "reset":
        t.reset()
        s.reset(now)
    return None


def check(w: World, s: Spec, where: str) -> None:
    t = w.tim
    now = w.m.now()
    if not s.encoder():                  # counter() applies what the lazy mode skipped
        assert t.counter() == s.counter(now), where
    st_ = t._state()
    assert st_["regs"] == s.reg, where
    assert (st_["_psc_active"], st_["_arr_active"], st_["_ccr_active"]) == (s.psc, s.arr, s.ccr), where
    assert t.updates == s.updates and st_["_running"] == s.running, where
    ev = t._update_ev
    live = [(time, e.name) for time, _, e in w.sched._heap if not e.cancelled]
    if ev is not None:
        assert s.running and (ev.time, ev.name) == (s.next_ovf(), "timer.update"), where
        assert live == [(ev.time, "timer.update")], where
    else:
        assert live == [], where
        assert not (s.running and s.r(DIER) & (UIE | UDE)), f"{where}: no update event"
    assert t.output("IRQ").level == s.irq and w.edges == s.edges, where
    assert w.cpu.hints == s.hints and w.source_calls == s.source_calls, where
    duties = tuple(t.channel_duty(c) for c in (1, 2, 3, 4))
    enables = tuple(t.output_enabled(c) for c in (1, 2, 3, 4))
    assert duties == tuple(s.duty(c) for c in (1, 2, 3, 4)), where
    assert enables == tuple(s.enabled(c) for c in (1, 2, 3, 4)), where
    heard = w.calls[-1] if w.calls else ((0.0,) * 4, (False,) * 4)
    assert heard == (duties, enables), f"{where}: the listeners missed a change"
    assert (t.pwm_duty, t.encoder_mode, t.update_period_ps(), t.timer_hz, t.width_mask, t.advanced) \
        == (s.duty(1), s.encoder(), s.period_ps(), s.hz, s.wm, s.advanced), where


def run_program(inst, hz, source, program) -> tuple[World, Spec]:
    base, limit = inst
    w = World(base, limit, hz, source)
    s = Spec(w, base, limit, hz, source)
    assert [w.tim.register_name(o) for o in range(0, 0x80, 4)] == list(NAMES) + [None] * 5
    check(w, s, "built")
    for i, op in enumerate(program):
        got = apply(w, s, op)
        if got is not None:
            assert got[0] == got[1], f"step {i} {op}: read {got[0]:#x}, the RM says {got[1]:#x}"
        check(w, s, f"step {i} {op}")
    return w, s


def bits(*masks: int):
    """An int made of any subset of these masks (the bits that matter), sometimes all random."""
    return st.one_of(st.lists(st.sampled_from(masks), max_size=len(masks)).map(lambda ms: sum(set(ms))),
                     st.integers(0, M32))


CR1_BITS = st.one_of(
    st.lists(st.sampled_from((CEN, UDIS, URS, OPM, DIR, 1 << 5, ARPE, UIFREMAP)), max_size=8).map(
        lambda ms: sum(set(ms))),
    st.sampled_from((CEN, CEN | ARPE, CEN | URS, CEN | DIR, CEN | OPM, 0, ARPE, DIR, CEN | UIFREMAP)),
    st.sampled_from((CEN, CEN | ARPE | URS, CEN | DIR | URS)),
    st.integers(0, M32))
SMCR_BITS = st.one_of(st.integers(0, 7), st.sampled_from((3, 1, 2, 1 << 16 | 3, 1 << 16)),
                      st.integers(0, M32))
DIER_BITS = st.one_of(st.sampled_from((0, 1, 1 << 8, 1 | 1 << 8, 2, 0x1E)), st.integers(0, 0x1FF))
SR_BITS = st.one_of(st.sampled_from((0, 0xFFFF_FFFE, 1, M32)), st.integers(0, M32))
EGR_BITS = st.one_of(st.sampled_from((1, 0, 2, 0x5F)), st.integers(0, 0xFF))
OCM = st.integers(0, 15).map(lambda m: (m & 7) << 4 | (m >> 3) << 16)
CCMR_BITS = st.one_of(
    st.tuples(OCM, OCM, st.booleans(), st.booleans()).map(
        lambda t: t[0] | t[1] << 8 | (8 if t[2] else 0) | (0x800 if t[3] else 0)),
    st.integers(0, M32))
CCER_BITS = bits(*(1 << b for b in range(16)))
SMALL = st.sampled_from((0, 1, 2, 5, 99, 100, 999, 1000, 11_999, 0xFFFE, 0xFFFF, 0x1_0000, M32))
CNT_VALUE = st.one_of(SMALL, st.integers(0, 2000), st.integers(0, M32))
PSC_VALUE = st.one_of(st.sampled_from((0, 0, 1, 2, 239, 0xFFFF)), st.integers(0, 0x1_FFFF))
ARR_VALUE = st.one_of(st.sampled_from((3, 49, 99, 999, 11_999, 0xFFFF, M32, 1, 0)), st.integers(2, 5000))

WRITE = st.one_of(
    st.tuples(st.just("w"), st.just(CR1), CR1_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(SMCR), SMCR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(DIER), DIER_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(SR), SR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(EGR), EGR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CCMR1, CCMR2)), CCMR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CCER), CCER_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CNT), CNT_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.just(PSC), PSC_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.just(ARR), ARR_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CCR1, CCR2, CCR3, CCR4)), CNT_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.just(BDTR), st.sampled_from((0, 1 << 15, M32)), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CR2, RCR, 0x48, 0x4C, 0x54, 0x58, 0x5C, 0x60, 0x68) + HOLES),
              st.integers(0, M32), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from(range(0, 0x6C, 4)).flatmap(
        lambda r: st.sampled_from((r, r + 1, r + 2, r + 3))), st.integers(0, 0xFFFF),
        st.sampled_from((1, 2))),
    st.tuples(st.just("w"), st.sampled_from(range(0, 0x6C, 4)), st.integers(0, 2**64 - 1), st.just(8)),
)
READ = st.one_of(
    st.tuples(st.just("r"), st.sampled_from((SR, CNT, CNT, CR1, SR) + tuple(range(0, 0x6C, 4)) + HOLES),
              st.sampled_from((4, 4, 4, 1, 2, 8))),
    st.tuples(st.just("r"), st.sampled_from((CNT + 1, CNT + 2, CNT + 3, SR + 2, EGR + 1, CR1 + 1)),
              st.sampled_from((1, 2))))
ADV = st.one_of(st.tuples(st.just("adv"), st.sampled_from((0, 1, 4_166, 4_167, 1_000_000, 5_000_000))),
                st.tuples(st.just("adv"), st.integers(0, 3_000_000)),
                st.tuples(st.just("adv"), st.integers(0, 20_000_000)))
#: k whole update periods (as the spec computes them now) and a fraction of one more
PERIODS = st.tuples(st.just("per"), st.integers(0, 4), st.sampled_from((0, 1, 500_000, -1)))
ENC = st.one_of(st.tuples(st.just("enc"), st.integers(-3000, 3000)),
                st.tuples(st.just("enc"), st.sampled_from((0, 1, -1, 2, -2, 4, 70_000, -70_000))))
#: kernel clocks the RCC may push (a 32-bit timer at PSC 0xFFFF keeps its update below 2**63 ps)
CLOCKS = (120_000_000, 240_000_000, 64_000_000, 0, -5)
OP = st.one_of(
    WRITE, WRITE, WRITE, WRITE, READ, READ, READ, ADV, ADV, PERIODS, PERIODS, PERIODS, ENC, ENC,
    st.tuples(st.just("bus"), st.booleans(), st.sampled_from((CR1, SR, CNT, EGR, ARR, CCR1, SMCR)),
              st.integers(0, 0xFFFF)),
    st.tuples(st.just("exec"), st.integers(0, 999_999), st.booleans(),
              st.sampled_from((SR, CNT, CR1, EGR, ARR)), st.integers(0, 0xFFFF)),
    st.tuples(st.just("src"), st.integers(-3000, 3000)),
    st.tuples(st.just("counter"),),
    st.tuples(st.just("hz"), st.sampled_from(CLOCKS)),
    st.tuples(st.just("reset"),),
)


def _w(reg, v, size=4):
    return ("w", reg, v, size)


#: a start most examples share: PSC, ARR, sometimes UG/encoder/PWM, interrupts, CEN
SETUP = st.tuples(
    st.tuples(st.just("w"), st.just(PSC), st.sampled_from((0, 1, 0, 23)), st.just(4)),
    st.tuples(st.just("w"), st.just(ARR), st.sampled_from((99, 999, 11_999, 49, M32, 4)), st.just(4)),
    st.tuples(st.just("w"), st.just(CCMR1), CCMR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CCR1), st.sampled_from((0, 25, 500, 6000, 20_000)), st.just(4)),
    st.tuples(st.just("w"), st.just(CCER), st.sampled_from((0, 1, 3, 0x11, 0x21)), st.just(4)),
    st.tuples(st.just("w"), st.just(BDTR), st.sampled_from((0, 1 << 15)), st.just(4)),
    st.tuples(st.just("w"), st.just(SMCR), st.sampled_from((0, 0, 0, 0, 0, 3, 1, 2)), st.just(4)),
    st.tuples(st.just("w"), st.just(CR1), st.sampled_from((0, URS, ARPE | URS, DIR, URS | OPM)), st.just(4)),
    st.tuples(st.just("w"), st.just(EGR), st.sampled_from((0, 1)), st.just(4)),
    st.tuples(st.just("w"), st.just(DIER), st.sampled_from((0, 0, 1, 1, 1 << 8)), st.just(4)),
    st.tuples(st.just("w"), st.just(CR1), st.sampled_from((CEN, CEN | URS, CEN | ARPE, CEN | DIR, CEN,
                                                           CEN | URS | ARPE, CEN | OPM, 0)), st.just(4)))

INSTANCE = st.sampled_from(((TIM6, 0xFFFF), (TIM1, 0xFFFF), (TIM2, M32), (TIM2, 0x1_0000)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=INSTANCE, hz=st.sampled_from((240_000_000, 200_000_000, 7_000_001, 1_000_000)),
       source=st.booleans(), setup=SETUP, ops=st.lists(OP, min_size=10, max_size=50))
def test_the_timer_follows_the_rm0433_rules(inst, hz, source, setup, ops) -> None:
    if inst[1] > 0xFFFF:                 # 2**48 cycles at 1 MHz is beyond 2**63 ps
        hz = max(hz, 64_000_000)
    run_program(inst, hz, source, list(setup) + ops)


#: programs that keep the counter running (no CR1/SMCR writes, no reset): many update events,
#: skipped updates caught up, preloads, re-anchoring CNT/ARR/clock changes, polls in between
RUNNING_OP = st.one_of(
    st.tuples(st.just("w"), st.just(DIER), DIER_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(SR), SR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(EGR), EGR_BITS, st.just(4)),
    st.tuples(st.just("w"), st.just(CNT), CNT_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.just(PSC), st.sampled_from((0, 1, 3, 23)), st.just(4)),
    st.tuples(st.just("w"), st.just(ARR), st.one_of(st.sampled_from((49, 99, 999, 0xFFFF)),
                                                    st.integers(10, 3000)), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CCR1, CCR2, CCR3, CCR4)), CNT_VALUE, st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CCMR1, CCMR2)), CCMR_BITS, st.just(4)),
    st.tuples(st.just("r"), st.sampled_from((SR, CNT, CNT, CR1)), st.just(4)),
    st.tuples(st.just("exec"), st.integers(0, 999_999), st.booleans(), st.sampled_from((SR, CNT, SR)),
              st.integers(0, 0xFFFF)),
    st.tuples(st.just("counter"),),
    ADV, PERIODS, PERIODS,
    st.tuples(st.just("hz"), st.sampled_from((120_000_000, 240_000_000, 64_000_000, 1_000_003))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=INSTANCE, hz=st.sampled_from((240_000_000, 7_000_001)),
       cr1=st.sampled_from((CEN, CEN | URS, CEN | ARPE, CEN | DIR, CEN | ARPE | URS | DIR, CEN | UDIS)),
       dier=st.sampled_from((0, 1, 1 << 8)), ops=st.lists(RUNNING_OP, min_size=10, max_size=40))
def test_a_running_timer_follows_the_rm0433_rules(inst, hz, cr1, dier, ops) -> None:
    setup = [_w(PSC, 3), _w(ARR, 99), _w(CCMR1, 6 << 4 | 8), _w(CCR1, 50), _w(CCER, 1), _w(DIER, dier),
             _w(CR1, cr1)]
    run_program(inst, hz, False, setup + ops)


# -- scripted programs ---------------------------------------------------------------------------------

SCRIPTS = {
    "control loop 1 kHz, serviced": [
        _w(PSC, 239), _w(ARR, 999), _w(CR1, URS), _w(EGR, 1), _w(SR, 0), _w(DIER, 1), _w(CR1, URS | CEN),
        *[op for _ in range(12) for op in (("adv", 333_333_333), ("r", SR, 4), _w(SR, 0), ("r", CNT, 4))]],
    "PWM 20 kHz, skipped updates, duty changes": [
        _w(ARR, 11_999), _w(CCMR1, 6 << 4 | 8), _w(CCR1, 3000), _w(CR1, ARPE | URS), _w(EGR, 1),
        _w(CCER, 1), _w(BDTR, 1 << 15), _w(CR1, ARPE | URS | CEN),
        *[op for k in range(10) for op in (("adv", 123_456_789), _w(CCR1, 1000 * k), ("adv", 20_000_000),
                                          ("r", CNT, 4), ("r", SR, 4), _w(SR, 0))]],
    "encoder x4, wraps both ways, pull source": [
        _w(ARR, 999), _w(CCMR1, 0x101), _w(SMCR, 3), ("enc", 10), _w(CR1, CEN), ("enc", 2345),
        ("r", CNT, 4), ("src", -5000), ("r", CNT, 4), ("r", CR1, 4), ("r", SR, 4), _w(CR1, 0),
        ("src", 17), _w(CNT, 5), _w(CR1, CEN), ("src", 3), ("counter",), _w(SMCR, 0), ("adv", 9_000_000),
        ("r", CNT, 4), _w(SMCR, 2), ("enc", -7), ("r", CNT, 4)],
    "down-counting, one-pulse, UIFREMAP, clock change": [
        _w(PSC, 23), _w(ARR, 99), _w(CR1, DIR | URS), _w(EGR, 1), _w(DIER, 1), _w(CR1, DIR | URS | CEN),
        ("adv", 7_777_777), ("r", CNT, 4), ("hz", 120_000_000), ("adv", 30_000_000), ("r", CNT, 4),
        _w(CR1, URS | CEN | UIFREMAP), ("adv", 1_234_567), ("r", CNT, 4), ("r", CNT + 2, 2),
        _w(CR1, OPM | CEN), ("adv", 40_000_000), ("r", CR1, 4), ("reset",), ("r", ARR, 4)],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("inst", [(TIM6, 0xFFFF), (TIM1, 0xFFFF), (TIM2, M32)])
def test_scripted_programs_follow_the_rules(name, inst) -> None:
    w, s = run_program(inst, 240_000_000, True, SCRIPTS[name])
    assert s.updates > 0 or w.calls, f"{name}: the program did nothing"


def test_the_rm_numbers() -> None:
    """Literals: TIM6 at 240 MHz, PSC 239, ARR 999 (the firmware's 1 kHz control loop): UIF and
    the interrupt every 1 ms exactly, CNT 1 per microsecond; TIM2 down from ARR 99 at 1 MHz."""
    w, s = run_program((TIM6, 0xFFFF), 240_000_000, False, [
        _w(PSC, 239), _w(ARR, 999), _w(CR1, URS), _w(EGR, 1), _w(DIER, 1), _w(CR1, URS | CEN),
        ("adv", 250_000_000), ("r", CNT, 4), ("adv", 750_000_000), ("r", SR, 4)])
    assert w.tim.read(CNT, 4) == 0 and w.edges == [(10**9, 10**9, 54, True)]
    w.sched.run_until(10**9 + 250_000_000)
    assert w.tim.read(CNT, 4) == 250
    w, s = run_program((TIM2, M32), 1_000_000, False, [
        _w(ARR, 99), _w(CR1, DIR), _w(EGR, 1), _w(SR, 0), _w(DIER, 1), _w(CR1, DIR | CEN),
        ("adv", 30 * 10**6), ("r", CNT, 4), ("adv", 100 * 10**6)])
    assert w.tim.read(CNT, 4) == 99 - 30 + 100 - 100 and w.edges[0][:2] == (100 * 10**6, 100 * 10**6)


# -- the instance itself -------------------------------------------------------------------------------

def test_the_timer_keeps_its_state_in_c_only() -> None:
    w = World(TIM6, 0xFFFF, 240_000_000, False)
    t = w.tim
    assert type(t).__name__ == "Stm32TimerNative"
    assert not list(t.regs) and "_cnt" not in vars(t) and "updates" not in vars(t)
    assert type(t._native_mmio).__name__ == "PyCapsule"
    t.write(PSC, 4, 239)
    t.write(ARR, 4, 999)
    t.write(DIER, 4, 1)
    t.write(CR1, 4, CEN)
    ev = t._update_ev
    assert (ev.name, ev.args, ev.fn.__name__) == ("timer.update", (1000,), "_on_update")
    w.sched.run_until(5_000_000)
    assert w.edges[-1][3] and t._update_ev.args == (241_000,)


def test_listener_and_source_errors_are_handed_on() -> None:
    w = World(TIM2, M32, 240_000_000, True)

    def bad(_t):
        raise RuntimeError("listener")

    w.tim.add_listener(bad)
    with pytest.raises(RuntimeError, match="listener"):
        w.tim.write(CCER, 4, 1)
    w.tim._listeners.remove(bad)

    def bad_source():
        raise KeyError("source")

    w.tim.write(SMCR, 4, 3)
    w.tim.write(CR1, 4, CEN)
    w.tim.encoder_source = bad_source
    with pytest.raises(KeyError, match="source"):
        w.tim.read(CNT, 4)
    w.tim.encoder_source = None
    assert w.tim.read(CNT, 4) == 0


def test_out_of_range_channels_are_refused() -> None:
    t = World(TIM1, 0xFFFF, 240_000_000, False).tim
    for ch in (0, 5, -1):
        with pytest.raises(ValueError, match="1..4"):
            t.channel_duty(ch)


def test_a_bad_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="frequency must be positive"):
        World(TIM6, 0xFFFF, 0, False)


def test_a_dropped_timer_is_collected() -> None:
    """The timer holds its bound _on_update, its machine and its event: a cycle the collector must
    see through (tp_traverse), with an update event pending."""
    w = World(TIM6, 0xFFFF, 240_000_000, True)
    w.tim.write(DIER, 4, 1)
    w.tim.write(CR1, 4, CEN)
    assert w.tim._update_ev is not None
    ref = weakref.ref(w.tim)
    del w
    gc.collect()
    assert ref() is None
