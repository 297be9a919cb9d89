"""Specification tests of the DC-motor plant (native/plant.c behind board/plant.py's DcMotorPlant,
the one copy).

What is checked is plant.py's documented physics (its module docstring), not what the code
happens to compute:
  - the drive: d = TIM1 CH1's duty (``channel_duty``: 0 while gated), s = +1 when the direction
    pin's level is ``direction_positive_level`` else -1; drive = s * d and
    v_target = s * v_max * max(0, d - f) / (1 - f) (f: the friction dead band);
  - between drive changes the motion is the first-order response from the state (x0, v0) where
    the drive last changed: v(t) = vt + (v0 - vt) e^(-t/tau), x(t) = x0 + vt t + (v0 - vt) tau
    (1 - e^(-t/tau)); with tau = 0 the speed is vt at once (x = x0 + vt t);
  - the state time never goes backwards: an evaluation at an earlier time (a read from a CPU
    slice that started ahead of the scheduler, then events behind it) sees the state where it is,
    and a drive change takes effect from there;
  - end stops: the first picosecond at which the trajectory reaches limit_max (limit_min) is an
    ``end_stop`` record (side, position = the limit, velocity at impact) in the event log and in
    ``end_stops``, once; the axis is then at the limit with v = 0 and stays there while the drive
    pushes into it (or is 0), leaving it as soon as the drive points away; reaching it again is a
    new crossing; the position never lies beyond a stop;
  - a sample every ``sample_period_ps`` from the plant's creation: (t, x, v, drive) into a
    history of the last ``history_len`` samples and a trace that keeps every sample until
    TRACE_POINTS, then drops every other one and keeps every 2nd (4th, ...) offered sample; the
    sample also pushes floor(x) into TIM2 (encoder mode x4, 32 bits), whose CNT the firmware
    reads as floor(x(now)) - floor(x0) modulo 2**32 (the encoder source: the position at the read);
  - a machine reset does not move the plant: the timer and port resets drop the drive and the
    axis coasts.
``Spec`` keeps the trajectory as pieces (start, x0, v0, vt, drive, pinned side) built from those
rules; positions are compared within a rounding tolerance (the model re-evaluates the same
formula from later states, which is exact up to rounding), a crossing's time is accepted when
the trajectory is at the limit there (within the tolerance) and was not beyond it a picosecond
before. Hypothesis picks the parameters (time constant 0 or not, friction, speed, stops close
enough to be reached, the initial position, sample period, history length, which level drives
forwards) and a program: duty and direction changes, output gating
(CCER, BDTR.MOE, CR1.CEN, OCxM), time advances, encoder reads through the bus (also from a slice
ahead of the scheduler), the position/velocity/count views, ``_state_after`` at any dt, a forced
drive re-evaluation and machine resets; after every step the state, the records, the samples,
the trace, the encoder and the sample event are checked against ``Spec``.
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
from duohil.engines.builtin.board.plant import TRACE_POINTS, DcMotorPlant, MotorParams, Sample, Trace
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_gpio import STM32_GPIOPort
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from duohil.errors import ConfigError
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

TIM1, TIM2, GPIOD = 0x4001_0000, 0x4000_0000, 0x5802_0C00
CR1, SMCR, EGR, CCMR1, CCER, CNT, ARR, CCR1, BDTR = 0x00, 0x08, 0x14, 0x18, 0x20, 0x24, 0x2C, 0x34, 0x44
MODER, BSRR = 0x00, 0x18
DIR_PIN = 12
PWM_ARR = 11_999


class World:
    def __init__(self, params: MotorParams) -> None:
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
        assert isinstance(self.plant, native.core().Plant)
        # firmware init: direction pin output, TIM2 encoder x4 32-bit, TIM1 PWM1 armed (CEN last)
        self.w(GPIOD + MODER, (m.bus_read(GPIOD + MODER, 4) & ~(3 << 2 * DIR_PIN)) | (1 << 2 * DIR_PIN))
        for addr, value in ((TIM2 + ARR, 0xFFFF_FFFF), (TIM2 + CCMR1, 0x101), (TIM2 + SMCR, 3),
                            (TIM2 + CR1, 1), (TIM1 + ARR, PWM_ARR), (TIM1 + CCMR1, 6 << 4),
                            (TIM1 + CR1, 1 << 2), (TIM1 + EGR, 1), (TIM1 + CCER, 1),
                            (TIM1 + BDTR, 1 << 15), (TIM1 + CR1, 1 << 2 | 1)):
            self.w(addr, value)

    def w(self, addr: int, value: int) -> None:
        self.m.bus_write(addr, 4, value)


class Spec:
    """plant.py's physics as pieces of trajectory: (t0, x0, v0, vt, drive, pinned side or None)."""

    def __init__(self, p: MotorParams) -> None:
        self.p = p
        self.lim = {"min": p.limit_min, "max": p.limit_max}
        span = max(abs(v) for v in (p.limit_min, p.limit_max, p.initial_position) if math.isfinite(v))
        self.eps = 1e-9 * (1.0 + span)           # positions: rounding of the re-evaluated formula
        self.pieces = [(0, float(p.initial_position), 0.0, 0.0, 0.0, None)]
        self.records: list[dict] = []
        self.c0 = math.floor(p.initial_position)  # TIM2 starts counting from here
        self.counting = True                      # TIM2 in encoder mode (until a reset)
        self.samples: list[tuple] = []            # every sample: (t, x, v, drive)
        self.trace_t: list[int] = []
        self.trace_x: list[float] = []
        self.trace_stride, self.trace_n = 1, 0

    # -- the trajectory --------------------------------------------------------------------------
    def piece_at(self, t: int) -> tuple:
        for pc in reversed(self.pieces):
            if pc[0] <= t:
                return pc
        return self.pieces[0]

    def at(self, t: int, pc: tuple | None = None) -> tuple[float, float]:
        t0, x0, v0, vt, _, pinned = pc or self.piece_at(t)
        if pinned is not None:
            return float(self.lim[pinned]), 0.0
        dt, tau = (t - t0) / PS_PER_S, self.p.tau_s
        if tau == 0:                              # the speed jumps to vt just after the change
            return x0 + vt * dt, vt if t > t0 else v0
        e = math.exp(-dt / tau)
        return x0 + vt * dt + (v0 - vt) * tau * (1 - e), vt + (v0 - vt) * e

    def extremes(self, pc: tuple, a: int, b: int) -> tuple[float, float]:
        """(min, max) of x over [a, b] on piece pc: the ends and the one turning point."""
        pts = [a, b]
        t0, _, v0, vt, _, pinned = pc
        if pinned is None and self.p.tau_s > 0 and v0 != 0 and vt != 0 and (v0 > 0) != (vt > 0):
            turn = t0 + self.p.tau_s * math.log(1 - v0 / vt) * PS_PER_S
            pts += [min(max(math.floor(turn), a), b), min(max(math.ceil(turn), a), b)]
        xs = [self.at(t, pc)[0] for t in pts]
        return min(xs), max(xs)

    def drive_of(self, duty: float, level: int) -> tuple[float, float]:
        p = self.p
        s = 1.0 if level == p.direction_positive_level else -1.0
        return s * duty, s * p.max_speed * max(0.0, duty - p.friction_duty) / (1 - p.friction_duty)

    def drive_changed(self, t: int, drive: float, vt: float) -> None:
        pc = self.pieces[-1]
        if (drive, vt) == (pc[4], pc[3]):
            return
        x, v = self.at(t, pc)
        pinned = pc[5]
        if pinned == "max" and vt < 0 or pinned == "min" and vt > 0:
            pinned = None                           # the drive points away: it leaves the stop
        for side, push in (("max", vt > 0), ("min", vt < 0)):
            if pinned is None and push and v == 0 and x == self.lim[side]:
                pinned = side                       # at rest against it: not a new crossing
        self.pieces.append((t, x, v, vt, drive, pinned))

    def hit(self, rec: dict, upto: int) -> None:
        """A crossing the model recorded: at the limit then, and nowhere beyond it before."""
        t, side, lim = rec["t_ps"], rec["side"], self.lim[rec["side"]]
        pc = self.piece_at(t)
        assert pc[5] is None, f"a crossing recorded while pinned: {rec}"
        assert rec["position"] == lim and type(rec["position"]) is type(lim)
        x, v = self.at(t, pc)
        if side == "max":
            assert x >= lim - self.eps and (t == pc[0] or self.extremes(pc, pc[0], t - 1)[1] < lim + self.eps)
        else:
            assert x <= lim + self.eps and (t == pc[0] or self.extremes(pc, pc[0], t - 1)[0] > lim - self.eps)
        assert rec["velocity"] == pytest.approx(v, rel=1e-9, abs=1e-6)
        assert (v > 0 or v == 0 and x >= self.lim["max"]) == (side == "max")
        pinned = None if (side == "max" and pc[3] < 0 or side == "min" and pc[3] > 0) else side
        self.pieces.append((t, float(lim), 0.0, pc[3], pc[4], pinned))
        self.records.append(rec)

    def no_crossing_missed(self, upto: int) -> None:
        pc = self.pieces[-1]
        if pc[5] is None and upto >= pc[0]:
            lo, hi = self.extremes(pc, pc[0], upto)
            assert lo > self.lim["min"] - self.eps and hi < self.lim["max"] + self.eps, \
                f"the trajectory passes a stop by {upto}: {lo}..{hi}"

    def sample(self, t: int, t_state: int) -> tuple:
        """The sample at t (the state at t_state >= t: never backwards)."""
        x, v = self.at(t_state)
        s = (t, x, v, self.piece_at(t_state)[4])
        self.samples.append(s)
        n, self.trace_n = self.trace_n, self.trace_n + 1
        if n % self.trace_stride == 0:
            if len(self.trace_t) >= TRACE_POINTS:
                self.trace_t, self.trace_x = self.trace_t[::2], self.trace_x[::2]
                self.trace_stride *= 2
            if n % self.trace_stride == 0:
                self.trace_t.append(t)
                self.trace_x.append(x)
        return s


def close(a: float, b: float, eps: float) -> bool:
    return abs(a - b) <= eps


class Checker:
    def __init__(self, w: World, params: MotorParams) -> None:
        self.w, self.s = w, Spec(params)
        self.t_state = 0                  # the plant's state time (never backwards)
        self.n_samples = 0

    def duty_level(self) -> tuple[float, int]:
        return self.w.tim1.channel_duty(1), self.w.gpio.pin_level(DIR_PIN)

    def step(self, op, got) -> None:
        w, s, p = self.w, self.s, self.w.plant
        now = w.sched.now
        # 1. crossings the model recorded during the step, in time order
        new = p.end_stops[len(s.records):]
        for rec in new:
            assert rec["t_ps"] >= (s.records[-1]["t_ps"] if s.records else 0)
            s.hit(dict(rec), now)
        # 2. samples fired during the step (every period from the plant's creation)
        due = now // p.params.sample_period_ps
        for k in range(self.n_samples + 1, due + 1):
            t = k * p.params.sample_period_ps
            s.sample(t, max(t, self.t_state))
        self.n_samples = due
        # 3. the state time: where the model evaluated last; a drive change takes effect there
        prev = self.t_state
        assert p.t >= prev, "the state went backwards"
        lead = w.cpu.slice_start_ps if op[0] == "exec" else now
        assert p.t <= max(prev, lead, now)
        self.t_state = p.t
        duty, level = self.duty_level()
        drive, vt = s.drive_of(duty, level)
        assert p.drive == drive and p._vt == pytest.approx(vt, rel=1e-12, abs=1e-12)
        assert p.target_velocity() == p._vt
        if (p.drive, p._vt) != (s.pieces[-1][4], s.pieces[-1][3]):
            assert p.t == max(prev, now), "a drive change evaluates the plant at once"
            s.drive_changed(p.t, p.drive, p._vt)
        s.no_crossing_missed(p.t)
        # 4. the state
        x, v = s.at(p.t)
        assert close(p.x, x, s.eps) and close(p.v, v, 1e-9 * (1 + abs(v)) + 1e-6), (p.x, x, p.v, v)
        assert p.params.limit_min <= p.x <= p.params.limit_max
        assert p.count == math.floor(p.x)
        pc = s.pieces[-1]
        if pc[5] is not None and pc[0] <= p.t:
            assert p.x == s.lim[pc[5]] and p.v == 0.0
        # 5. results of the step
        if op[0] in ("enc", "exec"):
            want = (p.count - s.c0) & 0xFFFF_FFFF if s.counting else 0
            assert got == want and close(p.x, s.at(p.t)[0], s.eps)
        elif op[0] == "view":
            if op[1] != "count":                  # count: at the last evaluation, no new one
                assert p.t == max(prev, now)
            name, value = op[1], got
            if name == "position_now":
                assert close(value, x, s.eps)
            elif name == "velocity_now":
                assert close(value, v, 1e-9 * (1 + abs(v)) + 1e-6)
            else:
                assert value == math.floor(p.x)
        elif op[0] == "after":
            tau, dt = p.params.tau_s, op[1] / PS_PER_S
            if tau == 0:
                want_x, want_v = p.x + p._vt * dt, p._vt
            else:
                e = math.exp(-dt / tau)
                want_x, want_v = p.x + p._vt * dt + (p.v - p._vt) * tau * (1 - e), p._vt + (p.v - p._vt) * e
            assert got[0] == pytest.approx(want_x, rel=1e-12, abs=1e-9)
            assert got[1] == pytest.approx(want_v, rel=1e-12, abs=1e-9)
        # 6. the records in the event log, the samples, the trace, the sample event
        log = [(t, d) for t, kind, d in w.sched.log if kind == "end_stop"]
        assert [(t, {k: v for k, v in d.items() if k != "machine"}) for t, d in log] == \
            [(r["t_ps"], {"side": r["side"], "position": r["position"], "velocity": r["velocity"]})
             for r in s.records]
        hist = p.samples()
        want = s.samples[-p.params.history_len:]
        assert len(hist) == len(want) and p.history.maxlen == p.params.history_len
        for got_s, (t, sx, sv, sd) in zip(hist[-3:], want[-3:]):
            assert type(got_s) is Sample and got_s.t_ps == t and got_s.drive == sd
            assert close(got_s.position, sx, s.eps) and close(got_s.velocity, sv, 1e-9 * (1 + abs(sv)) + 1e-6)
        assert [h.t_ps for h in hist] == [t for t, *_ in want]
        tr = p.trace
        assert type(tr) is Trace and list(tr.t) == s.trace_t and tr.stride == s.trace_stride
        assert all(close(a, b, s.eps) for a, b in zip(tr.x[-3:], s.trace_x[-3:]))
        ev = p._sample_ev
        assert (ev.time, ev.name, ev.cancelled) == ((due + 1) * p.params.sample_period_ps,
                                                    "plant.sample", False)
        if p._cross_ev is not None:
            assert p._cross_ev.name == "plant.end_stop" and p._cross_ev.time >= now


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
    _params,
    speed=st.sampled_from((20_000.0, 1_234.5, 300_000.0, 7.0)),
    tau=st.sampled_from((0.0, 0.0, 0.02, 0.0007, 0.3)),
    fr=st.sampled_from((0.0, 0.2, 0.55)),
    lmin=st.sampled_from((-50, -400, -3_000, -50_000)),
    lmax=st.sampled_from((50, 400, 3_000, 50_000)),
    frac=st.one_of(st.sampled_from((0.5, 0.001, 0.999, 0.25)), st.floats(0.0001, 0.9999)),
    period=st.sampled_from((PS_PER_MS, PS_PER_MS, 333_333_333, 2_500_000_001, 100_000_000)),
    hlen=st.sampled_from((1, 5, 1_000)),
    level=st.sampled_from((1, 1, 0)))


def apply(w: World, ck: Checker, op):
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
        return v() if callable(v) else v
    elif kind == "after":
        return p._state_after(op[1])
    elif kind == "force":
        p._drive_changed(force=True)
    elif kind == "reset":
        w.m.system_reset("test")
        ck.s.counting = False              # TIM2's reset leaves encoder mode: CNT reads 0
    return None


def _run(params: MotorParams, ops) -> Checker:
    w = World(params)
    ck = Checker(w, params)
    ck.step(("init",), None)
    for i, op in enumerate(ops):
        got = apply(w, ck, op)
        try:
            ck.step(op, got)
        except AssertionError as exc:
            raise AssertionError(f"step {i} {op}: {exc}") from exc
    return ck




@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=PARAMS, ops=st.lists(OP, min_size=5, max_size=40))
def test_the_plant_follows_its_documented_physics(params, ops) -> None:
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
def test_end_stops_follow_the_documented_rules(params, ops) -> None:
    _run(params, ops)


@pytest.mark.parametrize("tau", [0.0, 0.02])
def test_scripted_crossings_both_ways(tau) -> None:
    """Full speed into the max stop, pushed against it, reversed into the min stop, released:
    the program reaches both stops and every step follows the rules."""
    params = MotorParams(max_speed=20_000.0, tau_s=tau, friction_duty=0.1, limit_min=-300,
                         limit_max=200, history_len=50)
    ops = [("duty", PWM_ARR + 1, True), ("adv", 40 * PS_PER_MS), ("enc",), ("adv", 5 * PS_PER_MS),
           ("duty", 6_000, True), ("adv", 3 * PS_PER_MS), ("duty", PWM_ARR + 1, False),
           ("exec", 1_234_567), ("adv", 60 * PS_PER_MS), ("dir", True), ("adv", 1), ("dir", False),
           ("adv", 2 * PS_PER_MS), ("duty", 0, True), ("adv", 10 * PS_PER_MS), ("reset",),
           ("adv", 10 * PS_PER_MS)]
    ck = _run(params, ops)
    assert [r["side"] for r in ck.w.plant.end_stops][:2] == ["max", "min"]
    assert len(ck.w.plant.samples()) == 50


# -- parameters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, expected", [
    ("limit_max", 2 ** 60, "magnitude <= 2**53"),
    ("limit_min", -2 ** 53 - 1, "magnitude <= 2**53"),
    ("limit_max", math.nan, "magnitude <= 2**53"),
    ("max_speed", math.inf, "a finite number > 0"),
    ("tau_s", math.inf, "a finite number >= 0"),
    ("tau_s", True, "a finite number >= 0"),
    ("sample_period_ps", 1e9, "a whole number of picoseconds"),
    ("sample_period_ps", 2 ** 62 + 1, "a whole number of picoseconds"),
    ("history_len", True, "a whole number of samples"),
    ("history_len", 2.0, "a whole number of samples"),
    ("direction_positive_level", 2, "0 or 1"),
    ("friction_duty", "0.1", "0 <= friction_duty < 1"),
])
def test_parameters_the_model_cannot_hold_exactly_are_refused(field, value, expected) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        MotorParams(**{field: value})
    assert info.value.field == field and expected in info.value.expected


def test_a_scenario_names_its_file_and_the_field_of_a_refused_parameter() -> None:
    from duohil import scenario
    sc = scenario.load("scenarios/nominal.yaml")
    sc.plant = {"sample_period_ps": 1.5e9}
    with pytest.raises(ConfigError) as info:
        MotorParams.from_dict(sc.plant)
    named = scenario.blame(sc, "fixed", info.value)
    assert (named.file, named.field) == ("scenarios/nominal.yaml", "plant.sample_period_ps")
    assert "whole number of picoseconds" in str(named)


def test_an_infinite_end_stop_is_no_stop_on_that_side() -> None:
    params = MotorParams(limit_min=-math.inf, limit_max=40, initial_position=0.0, tau_s=0.0)
    ck = _run(params, [("duty", PWM_ARR + 1, False), ("adv", 500 * PS_PER_MS), ("enc",),
                                 ("duty", PWM_ARR + 1, True), ("adv", 2 * PS_PER_S), ("enc",)])
    p = ck.w.plant
    assert [r["side"] for r in p.end_stops] == ["max"] and p.pinned == "max"
    assert min(p.trace.x) == pytest.approx(-10_000.0)            # 0.5 s at full speed, no stop


def test_a_crawling_axis_predicts_no_end_stop_beyond_virtual_time() -> None:
    """A drive just above the friction band moves the axis by ~1e-16 counts/s: the stops 2**53
    away cannot be reached before 2**63 ps, so nothing is predicted (the model once raised the
    scheduler's OverflowError here); the axis still moves and samples."""
    params = MotorParams(limit_min=-2 ** 53, limit_max=2 ** 53, max_speed=1.0, tau_s=0.0,
                         friction_duty=0.5, initial_position=0.5)
    w = World(params)
    w.w(GPIOD + BSRR, 1 << DIR_PIN)
    w.w(TIM1 + CCR1, 6_001)                 # duty 0.500083: vt = 1.67e-4 counts/s
    p = w.plant
    assert p._vt > 0 and p._cross_ev is None and p._lazy_cross is None
    w.w(TIM1 + CCR1, 6_000)                 # exactly the friction: vt 0, nothing to predict
    w.tim1.channel_duty(1)
    params2 = MotorParams(limit_min=-2 ** 53, limit_max=2 ** 53, max_speed=1e-300, tau_s=0.0,
                          initial_position=0.0)
    w2 = World(params2)
    w2.w(GPIOD + BSRR, 1 << DIR_PIN)
    w2.w(TIM1 + CCR1, PWM_ARR + 1)          # 1e-300 counts/s: an infinite bound
    assert w2.plant._vt == 1e-300 and w2.plant._cross_ev is None and w2.plant._lazy_cross is None
    w2.sched.run_until(5 * PS_PER_MS)
    assert w2.plant.position_now() > 0 and len(w2.plant.samples()) == 5


# -- the native instance itself ---------------------------------------------------------------------

def test_the_plant_keeps_its_state_in_c_only() -> None:
    w = World(MotorParams())
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


@settings(max_examples=500, deadline=None)
@given(dt=st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(-2 ** 54, 2 ** 54),
                    st.integers(0, 10 ** 13)))
def test_seconds_are_pythons_int_true_division(dt) -> None:
    got = native.core().Plant._seconds(dt)
    assert struct.pack("<d", got) == struct.pack("<d", dt / PS_PER_S)
