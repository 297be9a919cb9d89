"""Differential tests: the DC-motor plant in C (native/plant.c behind plant.py's DcMotorPlantNative)
against the Python reference (DcMotorPlant).

Two worlds, one per DUOHIL_MODELS value, each a machine with its own scheduler and a FakeCpu, the
board's wiring (TIM1 CH1 PWM, a direction pin on a GPIO port, TIM2 in encoder mode x4) and a plant
built with the same parameters: Hypothesis picks them (time constant 0 or not, friction, speed,
end stops close enough to be reached, the initial position, sample period, history length, which
pin level drives forwards) and a program: duty and direction changes (CCR1 and BSRR writes),
output gating (CCER, BDTR.MOE, CR1.CEN, CCMR1 modes), time advances (sample events, end-stop
events, deferred predictions materialised by the scheduler), encoder reads through the bus (the
timer calls the plant's encoder source), reads from a running slice (machine.now() is then a time
between events: advance to an arbitrary picosecond), position/velocity/count views, a machine
reset (timer and port resets tell the plant), the pure helpers (_state_after at any dt, the
crossing lower bound) and a forced drive re-evaluation. After every step both hold the same state
bit for bit (t, x with its Python type, v, drive, target velocity, pinned), the same end stops and
event-log records, the same history samples and trace, the same held events (end stop, sample:
time, sequence number, name, callable's name, cancelled), the same deferred prediction, the same
heap and the same encoder state in TIM2. An operation that raises (the reference's OverflowError
when a deferred prediction's bound lies beyond 2**63 ps: a crawling axis, a drive below the
friction band) must raise the same error in both, and ends the program as it ends a run.
"""
from __future__ import annotations

import math
import struct
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.base import PS_PER_MS, PS_PER_S
from duohil.engines.builtin import native
from duohil.engines.builtin.board.plant import DcMotorPlant, MotorParams, Sample, Trace
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_gpio import STM32_GPIOPort
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

TIM1, TIM2, GPIOD = 0x4001_0000, 0x4000_0000, 0x5802_0C00
CR1, SMCR, EGR, CCMR1, CCER, CNT, ARR, CCR1, BDTR = 0x00, 0x08, 0x14, 0x18, 0x20, 0x24, 0x2C, 0x34, 0x44
MODER, BSRR = 0x00, 0x18
DIR_PIN = 12
PWM_ARR = 11_999


class World:
    def __init__(self, models: str, params: MotorParams, c_model: bool | None = None) -> None:
        with native.using(models):
            self.sched = sched = Scheduler(1_000_000)
            self.m = m = Machine("stm32", sched, platform=__file__)
            self.cpu = FakeCpu()
            self.cpu.slice_start_ps = 0
            m.attach_cpu(self.cpu)
            self.tim1 = STM32_Timer(m, "timer1", TIM1, None, {"frequency": 240_000_000,
                                                              "initialLimit": 0xFFFF})
            self.tim2 = STM32_Timer(m, "timer2", TIM2, None, {"frequency": 240_000_000,
                                                              "initialLimit": 0xFFFF_FFFF})
            self.gpio = STM32_GPIOPort(m, "gpioPortD", GPIOD, None, {"numberOfAFs": 16})
            for p in (self.tim1, self.tim2, self.gpio):
                m.add_peripheral(p)
            m.finish()
            self.plant = DcMotorPlant(m, params, pwm=self.tim1, pwm_channel=1, direction=self.gpio,
                                      direction_pin=DIR_PIN, encoder=self.tim2)
        c_model = models == "native" if c_model is None else c_model
        assert (type(self.plant).__name__ == "DcMotorPlantNative") == c_model
        # firmware init: direction pin output, TIM2 encoder x4 32-bit, TIM1 PWM1 armed (CEN last)
        self.w(GPIOD + MODER, (m.bus_read(GPIOD + MODER, 4) & ~(3 << 2 * DIR_PIN)) | (1 << 2 * DIR_PIN))
        for addr, value in ((TIM2 + ARR, 0xFFFF_FFFF), (TIM2 + CCMR1, 0x101), (TIM2 + SMCR, 3),
                            (TIM2 + CR1, 1), (TIM1 + ARR, PWM_ARR), (TIM1 + CCMR1, 6 << 4),
                            (TIM1 + CR1, 1 << 2), (TIM1 + EGR, 1), (TIM1 + CCER, 1),
                            (TIM1 + BDTR, 1 << 15), (TIM1 + CR1, 1 << 2 | 1)):
            self.w(addr, value)

    def w(self, addr: int, value: int) -> None:
        self.m.bus_write(addr, 4, value)


def f(v):
    """A value with its Python type; floats bit for bit (0.0 and -0.0 differ, NaN equals NaN)."""
    if type(v) is float:
        return ("float", struct.pack("<d", v))
    return (type(v).__name__, v)


def _ev(ev):
    return None if ev is None else (ev.time, ev.seq, ev.name, tuple(ev.args), ev.cancelled,
                                    ev.fn.__name__)


def _lazy(lazy):
    if lazy is None:
        return None
    t_lb, seq, (t0, x0, v0, vt, floor_t), handle = lazy
    h = None if handle is None else (handle[0], handle[1].__name__, handle[2])
    return (t_lb, seq, t0, f(x0), f(v0), f(vt), floor_t, h)


def _sample(s: Sample):
    assert type(s) is Sample
    return (s.t_ps, f(s.position), f(s.velocity), f(s.drive))


def _records(entries):
    return [(t, kind, {k: f(v) for k, v in d.items()}) for t, kind, d in entries]


def tim2_state(tim) -> tuple:
    if type(tim).__name__ == "Stm32TimerNative":
        s = tim._state()
        return s["_enc_pos"], s["_cnt"], s["regs"][0]
    return tim._enc_pos, tim._cnt, tim.regs._regs[0].value


def state(w: World) -> dict:
    p = w.plant
    tr = p.trace
    return {
        "t": p.t, "x": f(p.x), "v": f(p.v), "drive": f(p.drive), "vt": f(p._vt),
        "target": f(p.target_velocity()), "pinned": p.pinned,
        "end_stops": [{k: f(v) for k, v in d.items()} for d in p.end_stops],
        "log": _records(w.sched.log),
        "history": [_sample(s) for s in p.history], "maxlen": p.history.maxlen,
        "samples": [_sample(s) for s in p.samples()],
        "trace": (tr.cap, tr.stride, tr._n, list(tr.t), [f(x) for x in tr.x],
                  [(t, f(x)) for t, x in tr.points(7)]),
        "cross_ev": _ev(p._cross_ev), "sample_ev": _ev(p._sample_ev), "lazy": _lazy(p._lazy_cross),
        "heap": [(t, seq, _ev(ev)) for t, seq, ev in w.sched._heap],
        "now": w.sched.now,
        "tim2": tim2_state(w.tim2),
        "lb": guarded_call(p._crossing_lower_bound),
    }


def guarded_call(fn):
    try:
        return fn()
    except (OverflowError, ValueError) as exc:
        return ("raised", type(exc).__name__, str(exc))


DUTY = st.one_of(st.integers(0, PWM_ARR + 1), st.sampled_from((0, 1, PWM_ARR + 1, 6000, 20_000, 12)))
ADV_PS = st.one_of(st.sampled_from((0, 1, PS_PER_MS - 1, PS_PER_MS, PS_PER_MS + 1, 7 * PS_PER_MS,
                                    50 * PS_PER_MS, 300 * PS_PER_MS)),
                   st.integers(0, 40 * PS_PER_MS), st.integers(0, 2 * PS_PER_S))
OP = st.one_of(
    st.tuples(st.just("duty"), DUTY, st.booleans()),
    st.tuples(st.just("duty"), DUTY, st.booleans()),
    st.tuples(st.just("ccr"), DUTY),
    st.tuples(st.just("dir"), st.booleans()),
    st.tuples(st.just("gate"), st.sampled_from(((CCER, 0), (CCER, 1), (BDTR, 0), (BDTR, 1 << 15),
                                                (CR1, 1 << 2), (CR1, 1 << 2 | 1), (CCMR1, 6 << 4),
                                                (CCMR1, 7 << 4), (CCMR1, 4 << 4), (CCMR1, 5 << 4),
                                                (CCER, 3)))),
    st.tuples(st.just("adv"), ADV_PS),
    st.tuples(st.just("adv"), ADV_PS),
    st.tuples(st.just("adv"), ADV_PS),
    st.tuples(st.just("enc"),),
    st.tuples(st.just("exec"), st.integers(0, 3 * PS_PER_MS)),
    st.tuples(st.just("view"), st.sampled_from(("position_now", "velocity_now", "count_now", "count"))),
    st.tuples(st.just("after"), st.one_of(st.integers(0, 10 * PS_PER_S), st.integers(2 ** 52, 2 ** 62),
                                          st.sampled_from((2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1, 2 ** 60 + 3)))),
    st.tuples(st.just("force"),),
    st.tuples(st.just("reset"),),
)

def _params(speed, tau, fr, lmin, lmax, frac, period, hlen, level) -> MotorParams:
    return MotorParams(max_speed=speed, tau_s=tau, friction_duty=fr, limit_min=lmin, limit_max=lmax,
                       initial_position=lmin + (lmax - lmin) * frac, sample_period_ps=period,
                       history_len=hlen, direction_positive_level=level)


PARAMS = st.builds(
    lambda speed, tau, fr, lmin, lmax, frac, period, hlen, level: MotorParams(
        max_speed=speed, tau_s=tau, friction_duty=fr, limit_min=lmin, limit_max=lmax,
        initial_position=lmin + (lmax - lmin) * frac, sample_period_ps=period, history_len=hlen,
        direction_positive_level=level),
    speed=st.sampled_from((20_000.0, 1_234.5, 300_000.0, 7.0)),
    tau=st.sampled_from((0.0, 0.0, 0.02, 0.0007, 0.3)),
    fr=st.sampled_from((0.0, 0.2, 0.55)),
    lmin=st.sampled_from((-50, -400, -3_000, -50_000)),
    lmax=st.sampled_from((50, 400, 3_000, 50_000)),
    frac=st.one_of(st.sampled_from((0.5, 0.001, 0.999, 0.25)), st.floats(0.0001, 0.9999)),
    period=st.sampled_from((PS_PER_MS, PS_PER_MS, 333_333_333, 2_500_000_001, 100_000_000)),
    hlen=st.sampled_from((1, 5, 1_000)),
    level=st.sampled_from((1, 1, 0)))


def apply(w: World, op):
    kind, p = op[0], w.plant
    if kind == "duty":
        w.w(GPIOD + BSRR, (1 << DIR_PIN) if op[2] else (1 << (DIR_PIN + 16)))
        w.w(TIM1 + CCR1, op[1])
    elif kind == "ccr":
        w.w(TIM1 + CCR1, op[1])
    elif kind == "dir":
        w.w(GPIOD + BSRR, (1 << DIR_PIN) if op[1] else (1 << (DIR_PIN + 16)))
    elif kind == "gate":
        w.w(TIM1 + op[1][0], op[1][1])
    elif kind == "adv":
        w.sched.run_until(w.sched.now + op[1])
    elif kind == "enc":
        return w.m.bus_read(TIM2 + CNT, 4)
    elif kind == "exec":                   # a read from a running slice: now() = slice start
        w.cpu.executing, w.cpu.slice_start_ps = True, w.sched.now + op[1]
        try:
            return w.m.bus_read(TIM2 + CNT, 4)
        finally:
            w.cpu.executing = False
    elif kind == "view":
        v = getattr(p, op[1])
        return f(v() if callable(v) else v)
    elif kind == "after":
        x, v = p._state_after(op[1])
        return f(x), f(v)
    elif kind == "force":
        p._drive_changed(force=True)
    elif kind == "reset":
        w.m.system_reset("test")
    return None


def guarded(w: World, op):
    try:
        return apply(w, op)
    except (OverflowError, ValueError) as exc:
        return ("raised", type(exc).__name__, str(exc))


def _run(params: MotorParams, ops) -> tuple[World, World]:
    py, nat = World("python", params), World("native", params)
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        ra, rc = guarded(py, op), guarded(nat, op)
        assert ra == rc, f"step {i} {op}: results differ"
        if isinstance(ra, tuple) and ra[:1] == ("raised",):
            break        # the run ends there (the engine reports the error): both raised alike
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"
    return py, nat


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=PARAMS, ops=st.lists(OP, min_size=5, max_size=40))
def test_plant_in_c_equals_the_python_reference(params, ops) -> None:
    _run(params, ops)


#: programs that drive into the stops: full duty one way, reversals, pushes against a stop
STOP_OP = st.one_of(
    st.tuples(st.just("duty"), st.sampled_from((PWM_ARR + 1, PWM_ARR + 1, 9_000, 3_000, 0)), st.booleans()),
    st.tuples(st.just("duty"), st.sampled_from((PWM_ARR + 1, PWM_ARR + 1, 9_000, 3_000, 0)), st.booleans()),
    st.tuples(st.just("exec"), st.integers(0, 3 * PS_PER_MS)),
    st.tuples(st.just("dir"), st.booleans()),
    st.tuples(st.just("adv"), st.one_of(st.integers(0, 30 * PS_PER_MS), st.sampled_from((PS_PER_MS,
                                                                                        100 * PS_PER_MS)))),
    st.tuples(st.just("enc"),),
    st.tuples(st.just("exec"), st.integers(0, 3 * PS_PER_MS)),
)


#: stops a few ms away at full speed
STOP_PARAMS = st.builds(
    _params, speed=st.sampled_from((20_000.0, 300_000.0, 1_234.5)),
    tau=st.sampled_from((0.0, 0.02, 0.0007)), fr=st.sampled_from((0.0, 0.2)),
    lmin=st.sampled_from((-50, -7, -400)), lmax=st.sampled_from((50, 3, 400)),
    frac=st.one_of(st.sampled_from((0.5, 0.001, 0.999)), st.floats(0.0001, 0.9999)),
    period=st.sampled_from((PS_PER_MS, 100_000_000, 2_500_000_001)), hlen=st.sampled_from((1, 5)),
    level=st.sampled_from((1, 0)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=STOP_PARAMS, ops=st.lists(STOP_OP, min_size=10, max_size=40))
def test_end_stops_in_c_equal_the_python_reference(params, ops) -> None:
    _run(params, ops)


@pytest.mark.parametrize("tau", [0.0, 0.02])
def test_scripted_crossings_both_ways(tau) -> None:
    """Full speed into the max stop, pushed against it, reversed into the min stop, released: the
    records, samples and events agree, and the program did reach both stops."""
    params = MotorParams(max_speed=20_000.0, tau_s=tau, friction_duty=0.1, limit_min=-300,
                         limit_max=200, history_len=50)
    ops = [("duty", PWM_ARR + 1, True), ("adv", 40 * PS_PER_MS), ("enc",), ("adv", 5 * PS_PER_MS),
           ("duty", 6_000, True), ("adv", 3 * PS_PER_MS), ("duty", PWM_ARR + 1, False),
           ("exec", 1_234_567), ("adv", 60 * PS_PER_MS), ("dir", True), ("adv", 1), ("dir", False),
           ("adv", 2 * PS_PER_MS), ("duty", 0, True), ("adv", 10 * PS_PER_MS), ("reset",),
           ("adv", 10 * PS_PER_MS)]
    py, nat = _run(params, ops)
    assert [d["side"] for d in nat.plant.end_stops] == ["max", "min"] or len(nat.plant.end_stops) >= 2
    assert len(nat.plant.samples()) == 50


# -- the native instance itself ---------------------------------------------------------------------

def test_the_native_plant_keeps_its_state_in_c_only() -> None:
    w = World("native", MotorParams())
    p = w.plant
    assert isinstance(p, native.core().Plant) and isinstance(p, DcMotorPlant)
    for name in ("x", "v", "t", "pinned", "history", "trace", "end_stops", "_cross_ev", "_lazy_cross"):
        assert name not in vars(p)
    # the wiring is C all the way: listener, subscription, encoder source, the sample event
    assert type(w.tim1._listeners[-1]).__name__ == "builtin_function_or_method"
    assert type(w.gpio._listeners[-1]).__name__ == "builtin_function_or_method"
    assert type(w.tim2.encoder_source).__name__ == "builtin_function_or_method"
    ev = p._sample_ev
    assert (ev.name, ev.fn.__name__, type(ev.fn).__name__) == ("plant.sample", "_sample",
                                                               "builtin_function_or_method")
    w.w(GPIOD + BSRR, 1 << DIR_PIN)
    w.w(TIM1 + CCR1, 6_000)
    w.sched.run_until(3 * PS_PER_MS)
    assert type(p.history) is deque and p.history.maxlen == 1_000 and len(p.history) == 3
    assert type(p.trace) is Trace and len(p.trace.t) == 3 and p.position_now() > 0


@pytest.mark.parametrize("bad", [{"limit_max": 2 ** 60}, {"sample_period_ps": 1e9},
                                 {"max_speed": math.inf}, {"history_len": True}])
def test_parameters_the_c_cannot_reproduce_keep_the_python_model(bad) -> None:
    w = World("native", MotorParams(**bad), c_model=False)
    assert type(w.plant) is DcMotorPlant


@settings(max_examples=500, deadline=None)
@given(dt=st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(-2 ** 54, 2 ** 54),
                    st.integers(0, 10 ** 13)))
def test_seconds_are_pythons_int_true_division(dt) -> None:
    got = native.core().Plant._seconds(dt)
    assert struct.pack("<d", got) == struct.pack("<d", dt / PS_PER_S)
