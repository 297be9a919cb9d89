"""Differential tests: the STM32H7 timer in C (native/stm32_timer.c behind stm32_timer.py's
Stm32TimerNative) against the Python reference (STM32_Timer).

Two timers, one per DUOHIL_MODELS value, each alone in a machine with its own scheduler and a
FakeCpu (which records poll hints and MMIO writes); the update interrupt goes to a recording sink,
a listener records every call (time, the four channel duties and enables, the update count; in
some examples it also reads ``counter()`` from inside the call, as a re-entrant plant could), and
an encoder source (when Hypothesis sets one) returns a position the program moves and counts its
calls. Hypothesis picks the instance (TIM1: advanced, 16-bit; TIM2: 32-bit; TIM6: basic), the
kernel clock and a program: register writes (whole words and byte/halfword accesses) with the
bits that matter (CEN/UDIS/URS/OPM/DIR/CMS/ARPE/UIFREMAP, SMS with SMS3, UIE/UDE, UG, OCxM/OCxPE,
CCxE/CCxP, MOE, CNT/PSC/ARR/CCRx values around the interesting edges), reads of every register
and of holes, accesses through the machine's bus (the C bus calls the native model through its
``_native_mmio`` capsule), accesses made while the CPU is executing (machine.now() is then the
slice start, between events), time advances that fire update events, encoder counts from the
plant, kernel clock changes, ``counter()`` and resets. After every step both returned the same
values and hold the same registers and model state, the same update event (time, sequence
number, name, argument), the same heap, raised and lowered the IRQ at the same picoseconds,
called the listeners and the encoder source the same way, gave the same poll hints and show the
same public views (duties, enables, encoder mode, update period, timer_hz, updates).
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

TIM1, TIM2, TIM6 = 0x4001_0000, 0x4000_0000, 0x4000_1000
CR1, CR2, SMCR, DIER, SR, EGR, CCMR1, CCMR2, CCER, CNT, PSC, ARR, RCR, CCR1, CCR2, CCR3, CCR4, \
    BDTR = range(0, 0x48, 4)
HOLES = (0x50, 0x6C, 0x70, 0x3FC)
N_REGS = 27                                   # 0x00..0x68, offset / 4


class World:
    """One side: scheduler, machine, CPU, timer, and what it did to the outside."""

    def __init__(self, models: str, base: int, limit: int, hz: int, source: bool,
                 reentrant: bool) -> None:
        with native.using(models):
            self.sched = sched = Scheduler(1_000_000)
            self.m = m = Machine("stm32", sched, platform=__file__)
            self.cpu = FakeCpu()
            self.cpu.slice_start_ps = 0
            m.attach_cpu(self.cpu)
            self.tim = tim = STM32_Timer(m, "timer", base, None, {"frequency": hz, "initialLimit": limit})
            m.add_peripheral(tim)
            m.finish()
        assert (type(tim).__name__ == "Stm32TimerNative") == (models == "native")
        self.base = base
        self.edges: list = []
        self.calls: list = []
        self.pos = [0]
        self.source_calls = 0
        self.reentrant = reentrant
        tim.output("IRQ").connect(self, 54)
        tim.add_listener(self.listener)
        if source:
            tim.encoder_source = self.source

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, self.m.now(), line, level))

    def listener(self, t) -> None:
        assert t is self.tim
        rec = (self.sched.now, self.m.now(), tuple(t.channel_duty(c) for c in (1, 2, 3, 4)),
               tuple(t.output_enabled(c) for c in (1, 2, 3, 4)), t.updates)
        if self.reentrant:
            rec += (t.counter(),)
        self.calls.append(rec)

    def source(self) -> int:
        self.source_calls += 1
        return self.pos[0]


def _ev(ev):
    return None if ev is None else (ev.time, ev.seq, ev.name, tuple(ev.args), ev.cancelled,
                                    ev.fn.__name__)


def model_state(tim) -> dict:
    if type(tim).__name__ == "Stm32TimerNative":
        s = tim._state()
        assert not list(tim.regs)                  # one source of truth: no Python register bank
        return s
    regs = tim.regs._regs
    return {"_hz": tim._hz, "_epoch_ps": tim._epoch_ps, "_running": tim._running, "_cnt": tim._cnt,
            "_anchor": tim._anchor, "_lazy": tim._lazy, "_psc_active": tim._psc_active,
            "_arr_active": tim._arr_active, "_ccr_active": list(tim._ccr_active),
            "_enc_pos": tim._enc_pos, "updates": tim.updates,
            "regs": [regs[4 * i].value if 4 * i in regs else 0 for i in range(N_REGS)]}


def state(w: World) -> dict:
    t = w.tim
    return {
        "model": model_state(t),
        "event": _ev(t._update_ev),
        "heap": [(time, seq, _ev(ev)) for time, seq, ev in w.sched._heap],
        "next": w.sched.next_event_time(),
        "edges": list(w.edges),
        "irq": t.output("IRQ").level,
        "calls": list(w.calls),
        "source_calls": w.source_calls,
        "hints": list(w.cpu.hints),
        "writes": w.cpu.writes,
        "views": (t.pwm_duty, t.encoder_mode, t.update_period_ps(), t.timer_hz, t.updates,
                  t.width_mask, t.advanced, [t.register_name(o) for o in range(0, 0x80, 2)]),
        "log": list(w.sched.log),
    }


def bits(*masks: int):
    """An int made of any subset of these masks (the bits that matter), sometimes all random."""
    return st.one_of(st.lists(st.sampled_from(masks), max_size=len(masks)).map(lambda ms: sum(set(ms))),
                     st.lists(st.sampled_from(masks), max_size=len(masks)).map(lambda ms: sum(set(ms))),
                     st.integers(0, 0xFFFF_FFFF))


CEN, UDIS, URS, OPM, DIR, CMS, ARPE, UIFREMAP = 1, 2, 4, 8, 16, 3 << 5, 128, 1 << 11
CR1_BITS = st.one_of(
    st.lists(st.sampled_from((CEN, UDIS, URS, OPM, DIR, 1 << 5, ARPE, UIFREMAP)), max_size=8).map(
        lambda ms: sum(set(ms))),
    st.sampled_from((CEN, CEN | ARPE, CEN | URS, CEN | DIR, CEN | OPM, 0, ARPE, DIR, CEN | UIFREMAP)),
    st.sampled_from((CEN, CEN | ARPE | URS, CEN | DIR | URS)),
    st.integers(0, 0xFFFF_FFFF))
SMCR_BITS = st.one_of(st.integers(0, 7), st.sampled_from((3, 1, 2, 1 << 16 | 3, 1 << 16)),
                      st.integers(0, 0xFFFF_FFFF))
DIER_BITS = st.one_of(st.sampled_from((0, 1, 1 << 8, 1 | 1 << 8, 2, 0x1E)), st.integers(0, 0x1FF))
SR_BITS = st.one_of(st.sampled_from((0, 0xFFFF_FFFE, 1, 0xFFFF_FFFF)), st.integers(0, 0xFFFF_FFFF))
EGR_BITS = st.one_of(st.sampled_from((1, 0, 2, 0x5F)), st.integers(0, 0xFF))
OCM = st.integers(0, 15).map(lambda m: (m & 7) << 4 | (m >> 3) << 16)
CCMR_BITS = st.one_of(
    st.tuples(OCM, OCM, st.booleans(), st.booleans()).map(
        lambda t: t[0] | t[1] << 8 | (8 if t[2] else 0) | (0x800 if t[3] else 0)),
    st.integers(0, 0xFFFF_FFFF))
CCER_BITS = bits(*(1 << b for b in range(16)))
SMALL = st.sampled_from((0, 1, 2, 5, 99, 100, 999, 1000, 11_999, 0xFFFE, 0xFFFF, 0x1_0000,
                         0xFFFF_FFFF))
CNT_VALUE = st.one_of(SMALL, st.integers(0, 2000), st.integers(0, 0xFFFF_FFFF))
PSC_VALUE = st.one_of(st.sampled_from((0, 0, 1, 2, 239, 0xFFFF)), st.integers(0, 0x1_FFFF))
ARR_VALUE = st.one_of(st.sampled_from((3, 49, 99, 999, 11_999, 0xFFFF, 0xFFFF_FFFF, 1, 0)),
                      st.integers(2, 5000))

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
    st.tuples(st.just("w"), st.just(BDTR), st.sampled_from((0, 1 << 15, 0xFFFF_FFFF)), st.just(4)),
    st.tuples(st.just("w"), st.sampled_from((CR2, RCR, 0x48, 0x4C, 0x54, 0x58, 0x5C, 0x60, 0x68) + HOLES),
              st.integers(0, 0xFFFF_FFFF), st.just(4)),
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
#: k whole update periods (as the model computes them now) and a fraction of one more
PERIODS = st.tuples(st.just("per"), st.integers(0, 4), st.sampled_from((0, 1, 500_000, -1)))
ENC = st.one_of(st.tuples(st.just("enc"), st.integers(-3000, 3000)),
                st.tuples(st.just("enc"), st.sampled_from((0, 1, -1, 2, -2, 4, 70_000, -70_000))))
OP = st.one_of(
    WRITE, WRITE, WRITE, WRITE, READ, READ, READ, ADV, ADV, PERIODS, PERIODS, PERIODS, ENC, ENC,
    st.tuples(st.just("bus"), st.booleans(), st.sampled_from((CR1, SR, CNT, EGR, ARR, CCR1, SMCR)),
              st.integers(0, 0xFFFF)),
    st.tuples(st.just("exec"), st.integers(0, 999_999), st.booleans(),
              st.sampled_from((SR, CNT, CR1, EGR, ARR)), st.integers(0, 0xFFFF)),
    st.tuples(st.just("src"), st.integers(-3000, 3000)),
    st.tuples(st.just("counter"),),
    st.tuples(st.just("hz"), st.sampled_from((120_000_000, 240_000_000, 64_000_000, 1_000_003, 0, -5))),
    st.tuples(st.just("reset"),),
)


def apply(w: World, op):
    kind, t = op[0], w.tim
    if kind == "w":
        t.write(op[1], op[3], op[2])
    elif kind == "r":
        return t.read(op[1], op[2])
    elif kind == "adv":
        w.sched.run_until(w.sched.now + op[1])
    elif kind == "per":
        period = t.update_period_ps()
        w.sched.run_until(w.sched.now + max(0, op[1] * period + (op[2] if op[2] >= 0 else period // 3)))
    elif kind == "enc":
        w.pos[0] += op[1]
        t.set_encoder_count(w.pos[0])
    elif kind == "bus":
        if op[1]:
            return w.m.bus_read(w.base + op[2], 4)
        w.m.bus_write(w.base + op[2], 4, op[3])
    elif kind == "exec":                       # an access from a running slice: now() = slice start
        w.cpu.executing, w.cpu.slice_start_ps = True, w.sched.now + op[1]
        try:
            if op[2]:
                return w.m.bus_read(w.base + op[3], 4)
            w.m.bus_write(w.base + op[3], 4, op[4])
        finally:
            w.cpu.executing = False
    elif kind == "src":
        w.pos[0] += op[1]
    elif kind == "counter":
        return t.counter()
    elif kind == "hz":
        t.timer_hz = op[1]
    elif kind == "reset":
        t.reset()
    return None


#: a start most examples share: PSC, ARR, sometimes UG/encoder/PWM, interrupts, CEN
SETUP = st.tuples(
    st.tuples(st.just("w"), st.just(PSC), st.sampled_from((0, 1, 0, 23)), st.just(4)),
    st.tuples(st.just("w"), st.just(ARR), st.sampled_from((99, 999, 11_999, 49, 0xFFFF_FFFF, 4)), st.just(4)),
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

INSTANCE = st.sampled_from(((TIM6, 0xFFFF), (TIM1, 0xFFFF), (TIM2, 0xFFFF_FFFF), (TIM2, 0x1_0000)))


def guarded(w: World, op):
    """apply(), or the exception it raised (a 32-bit timer at a slow clock can put its update
    beyond 2**63 ps: the scheduler refuses it in both models, and both must be left alike)."""
    try:
        return apply(w, op)
    except (OverflowError, ValueError) as exc:
        return ("raised", type(exc).__name__, str(exc))


def _run(inst, hz, source, reentrant, setup, ops) -> None:
    base, limit = inst
    py = World("python", base, limit, hz, source, reentrant)
    nat = World("native", base, limit, hz, source, reentrant)
    assert state(py) == state(nat)
    for i, op in enumerate(list(setup) + list(ops)):
        ra, rc = guarded(py, op), guarded(nat, op)
        assert ra == rc and type(ra) is type(rc), f"step {i} {op}: results differ"
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=INSTANCE, hz=st.sampled_from((240_000_000, 200_000_000, 7_000_001, 1_000_000)),
       source=st.booleans(), reentrant=st.booleans(), setup=SETUP,
       ops=st.lists(OP, min_size=10, max_size=50))
def test_timer_in_c_equals_the_python_reference(inst, hz, source, reentrant, setup, ops) -> None:
    _run(inst, hz, source, reentrant, setup, ops)


def _w(reg, v, size=4):
    return ("w", reg, v, size)


#: programs that keep the counter running (no CR1/SMCR writes, no reset): many update events,
#: lazy periods and catch-ups, preloads, re-anchoring CNT/ARR/clock changes, polls in between
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
    ADV, PERIODS, PERIODS,
    st.tuples(st.just("hz"), st.sampled_from((120_000_000, 240_000_000, 64_000_000, 1_000_003))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=INSTANCE, hz=st.sampled_from((240_000_000, 7_000_001)),
       cr1=st.sampled_from((CEN, CEN | URS, CEN | ARPE, CEN | DIR, CEN | ARPE | URS | DIR, CEN | UDIS)),
       dier=st.sampled_from((0, 1, 1 << 8)), ops=st.lists(RUNNING_OP, min_size=10, max_size=40))
def test_a_running_timer_in_c_equals_the_python_reference(inst, hz, cr1, dier, ops) -> None:
    setup = (_w(PSC, 3), _w(ARR, 99), _w(CCMR1, 6 << 4 | 8), _w(CCR1, 50), _w(CCER, 1), _w(DIER, dier),
             _w(CR1, cr1))
    _run(inst, hz, False, False, setup, ops)


# -- scripted programs (run whatever Hypothesis draws) ------------------------------------------------

SCRIPTS = {
    "control loop 1 kHz, serviced": [
        _w(PSC, 239), _w(ARR, 999), _w(CR1, URS), _w(EGR, 1), _w(SR, 0), _w(DIER, 1), _w(CR1, URS | CEN),
        *[op for _ in range(12) for op in (("adv", 333_333_333), ("r", SR, 4), _w(SR, 0), ("r", CNT, 4))]],
    "PWM 20 kHz, lazy updates, duty changes": [
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
@pytest.mark.parametrize("inst", [(TIM6, 0xFFFF), (TIM1, 0xFFFF), (TIM2, 0xFFFF_FFFF)])
def test_scripted_programs_in_both_models(name, inst) -> None:
    _run(inst, 240_000_000, True, False, (), SCRIPTS[name])
    w = World("native", *inst, 240_000_000, True, False)
    for op in SCRIPTS[name]:
        apply(w, op)
    assert w.tim.updates > 0 or w.calls, f"{name}: the program did nothing"


# -- the native instance itself ---------------------------------------------------------------------

def test_the_native_timer_keeps_its_state_in_c_only() -> None:
    w = World("native", TIM6, 0xFFFF, 240_000_000, False, False)
    t = w.tim
    assert isinstance(t, native.core().Timer) and isinstance(t, STM32_Timer)
    assert not list(t.regs) and "_cnt" not in vars(t) and "updates" not in vars(t)
    assert type(t._native_mmio).__name__ == "PyCapsule"
    assert type(t.output("IRQ")) is native.core().Signal
    t.write(PSC, 4, 239)
    t.write(ARR, 4, 999)
    t.write(DIER, 4, 1)
    t.write(CR1, 4, CEN)
    ev = t._update_ev
    assert (ev.name, ev.args, ev.fn.__name__) == ("timer.update", (1000,), "_on_update")
    w.sched.run_until(5_000_000)
    assert w.edges[-1][3] and t._update_ev.args == (241_000,)


@pytest.mark.parametrize("models", ["python", "native"])
def test_listener_and_source_errors_are_handed_on(models) -> None:
    w = World(models, TIM2, 0xFFFF_FFFF, 240_000_000, True, False)

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


def test_out_of_range_channels_are_refused_by_the_native_views() -> None:
    t = World("native", TIM1, 0xFFFF, 240_000_000, False, False).tim
    for ch in (0, 5, -1):
        with pytest.raises(ValueError, match="1..4"):
            t.channel_duty(ch)


def test_a_dropped_native_timer_is_collected() -> None:
    """The timer holds its bound _on_update, its machine and its event: a cycle the collector must
    see through (tp_traverse), with an update event pending."""
    w = World("native", TIM6, 0xFFFF, 240_000_000, True, False)
    w.tim.write(DIER, 4, 1)
    w.tim.write(CR1, 4, CEN)
    assert w.tim._update_ev is not None
    ref = weakref.ref(w.tim)
    del w
    gc.collect()
    assert ref() is None
