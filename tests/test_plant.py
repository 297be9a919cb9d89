"""The DC-motor plant against its analytic solution: duty step response, direction pin, output
gating (CEN/CC1E/MOE), TIM2 encoder feed, end-stop crossing times (exact, once per crossing,
including a crossing while decelerating after a reversal), friction dead band, bounded history,
coasting after an MCU reset."""
from __future__ import annotations

import math

import pytest

from duohil.engines.base import PS_PER_MS, PS_PER_S
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.board.plant import DcMotorPlant, MotorParams
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_gpio import STM32_GPIOPort
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from duohil.errors import ConfigError
from model_helpers import FakeCpu

TIM1, TIM2, GPIOD = 0x4001_0000, 0x4000_0000, 0x5802_0C00
CR1, SMCR, EGR, CCMR1, CCER, CNT, ARR, CCR1, BDTR = 0x00, 0x08, 0x14, 0x18, 0x20, 0x24, 0x2C, 0x34, 0x44
MODER, BSRR = 0x00, 0x18
DIR_PIN = 12
PWM_ARR = 11_999                          # 20 kHz at 240 MHz


def w(m: Machine, addr: int, value: int) -> None:
    m.bus_write(addr, 4, value)


def r(m: Machine, addr: int) -> int:
    return m.bus_read(addr, 4)


def make(**params):
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    tim1 = STM32_Timer(m, "timer1", TIM1, None, {"frequency": 240_000_000, "initialLimit": 0xFFFF})
    tim2 = STM32_Timer(m, "timer2", TIM2, None, {"frequency": 240_000_000,
                                                 "initialLimit": 0xFFFF_FFFF})
    gpiod = STM32_GPIOPort(m, "gpioPortD", GPIOD, None, {"numberOfAFs": 16})
    for p in (tim1, tim2, gpiod):
        m.add_peripheral(p)
    p = MotorParams(**{"max_speed": 20_000.0, "tau_s": 0.02, "limit_min": -50_000,
                       "limit_max": 50_000, **params})
    plant = DcMotorPlant(m, p, pwm=tim1, pwm_channel=1, direction=gpiod, direction_pin=DIR_PIN,
                         encoder=tim2)
    # firmware init: direction pin output, TIM2 encoder x4 32-bit, TIM1 PWM1 armed (CEN last)
    w(m, GPIOD + MODER, (r(m, GPIOD + MODER) & ~(3 << 2 * DIR_PIN)) | (1 << 2 * DIR_PIN))
    w(m, TIM2 + ARR, 0xFFFF_FFFF)
    w(m, TIM2 + CCMR1, 1 | (1 << 8))
    w(m, TIM2 + SMCR, 3)
    w(m, TIM2 + CR1, 1)
    w(m, TIM1 + ARR, PWM_ARR)
    w(m, TIM1 + CCMR1, (6 << 4) | (1 << 3))
    w(m, TIM1 + CR1, (1 << 7) | (1 << 2))
    w(m, TIM1 + EGR, 1)
    w(m, TIM1 + CCER, 1)
    w(m, TIM1 + BDTR, 1 << 15)
    w(m, TIM1 + CR1, (1 << 7) | (1 << 2) | 1)
    return sched, m, plant


def set_duty(m: Machine, duty: float, positive: bool = True) -> None:
    """Direction pin then CCR1 (OC1PE off so the step is immediate)."""
    w(m, GPIOD + BSRR, (1 << DIR_PIN) if positive else (1 << (DIR_PIN + 16)))
    w(m, TIM1 + CCMR1, 6 << 4)
    w(m, TIM1 + CCR1, round(duty * (PWM_ARR + 1)))


def step_response(vt: float, tau: float, t: float, x0: float = 0.0, v0: float = 0.0):
    e = math.exp(-t / tau)
    return x0 + vt * t + (v0 - vt) * tau * (1 - e), vt + (v0 - vt) * e


def end_stops(sched: Scheduler) -> list[tuple[int, dict]]:
    return [(t, d) for t, kind, d in sched.log if kind == "end_stop"]


def test_duty_step_follows_the_first_order_response():
    sched, m, plant = make()
    t_step = 3 * PS_PER_MS
    sched.at(t_step, set_duty, m, 0.5)
    sched.run_until(t_step)
    assert plant.position_now() == 0.0 and plant.target_velocity() == 10_000.0
    for t_ms in (1, 20, 50, 137):
        t = t_step + t_ms * PS_PER_MS
        sched.run_until(t)
        x, v = step_response(10_000.0, 0.02, t_ms / 1000)
        assert plant.position_now() == pytest.approx(x, rel=1e-12)
        assert plant.velocity_now() == pytest.approx(v, rel=1e-12)
        assert r(m, TIM2 + CNT) == math.floor(x)          # what the firmware reads now
    # 137 ms after the step: x = 1370 - 200 (1 - e^-6.85)
    assert plant.count == 1170


def test_direction_pin_low_drives_negative_and_the_32_bit_counter_wraps():
    sched, m, plant = make()
    set_duty(m, 1.0, positive=False)
    sched.run_until(40 * PS_PER_MS)
    x, _ = step_response(-20_000.0, 0.02, 0.04)
    assert plant.position_now() == pytest.approx(x, rel=1e-12)
    assert r(m, TIM2 + CNT) == math.floor(x) & 0xFFFF_FFFF
    assert r(m, TIM2 + CR1) & (1 << 4)                   # DIR: counting down


@pytest.mark.parametrize("gate", ["MOE", "CC1E", "CEN"])
def test_no_motion_while_the_output_is_gated(gate):
    sched, m, plant = make()
    set_duty(m, 0.8)
    if gate == "MOE":
        w(m, TIM1 + BDTR, 0)
    elif gate == "CC1E":
        w(m, TIM1 + CCER, 0)
    else:
        w(m, TIM1 + CR1, 0)
    sched.run_until(50 * PS_PER_MS)
    assert plant.position_now() == 0.0 and r(m, TIM2 + CNT) == 0


def solve_crossing(limit: float, vt: float, tau: float, x0=0.0, v0=0.0, lo=0.0, hi=10.0) -> float:
    """Independent solve (bisection in float seconds) of x(t) = limit on a monotone stretch."""
    f_lo = step_response(vt, tau, lo, x0, v0)[0] - limit
    for _ in range(200):
        mid = (lo + hi) / 2
        f = step_response(vt, tau, mid, x0, v0)[0] - limit
        if (f < 0) == (f_lo < 0):
            lo = mid
        else:
            hi = mid
    return hi


def test_end_stop_crossing_is_recorded_once_at_its_exact_time_and_the_axis_stops():
    sched, m, plant = make(limit_max=1_000, limit_min=-1_000)
    set_duty(m, 1.0)
    sched.run_until(500 * PS_PER_MS)
    t_c = solve_crossing(1_000, 20_000.0, 0.02, hi=1.0)
    _, v_c = step_response(20_000.0, 0.02, t_c)
    (t, d), = end_stops(sched)
    assert abs(t - t_c * PS_PER_S) <= 2                  # ps
    assert d["side"] == "max" and d["position"] == 1_000 and d["machine"] == "stm32"
    assert d["velocity"] == pytest.approx(v_c, rel=1e-9)
    assert plant.position_now() == 1_000.0 and plant.velocity_now() == 0.0
    assert r(m, TIM2 + CNT) == 1_000
    assert plant.pinned == "max"
    # reverse: it leaves the stop at once
    set_duty(m, 1.0, positive=False)
    t_rev = sched.now
    sched.run_until(t_rev + 10 * PS_PER_MS)
    x, _ = step_response(-20_000.0, 0.02, 0.01, x0=1_000.0)
    assert plant.position_now() == pytest.approx(x, rel=1e-12)
    # and a second crossing is a second record
    set_duty(m, 1.0, positive=True)
    sched.run_until(t_rev + 300 * PS_PER_MS)
    assert [d["side"] for _, d in end_stops(sched)] == ["max", "max"]


def reversal_peak() -> tuple[float, int, float, float]:
    """Full speed for 100 ms, then full reverse: where the axis turns round (analytically)."""
    x_r, v_r = step_response(20_000.0, 0.02, 0.1)
    s_turn = 0.02 * math.log(1 - v_r / -20_000.0)
    peak, _ = step_response(-20_000.0, 0.02, s_turn, x0=x_r, v0=v_r)
    return peak, 100 * PS_PER_MS, x_r, v_r


def test_no_crossing_when_the_reversal_turns_round_just_short_of_the_stop():
    peak, t_r, _, _ = reversal_peak()
    sched, m, plant = make(limit_max=math.floor(peak) + 1, limit_min=-50_000)
    set_duty(m, 1.0)
    sched.at(t_r, set_duty, m, 1.0, False)
    sched.run_until(t_r + 200 * PS_PER_MS)
    assert end_stops(sched) == []
    assert max(s.position for s in plant.samples()) == pytest.approx(peak, abs=1.0)


def test_crossing_while_decelerating_after_a_reversal():
    peak, t_r, x_r, v_r = reversal_peak()
    limit = math.floor(peak) - 1
    sched, m, plant = make(limit_max=limit, limit_min=-50_000)
    set_duty(m, 1.0)
    sched.at(t_r, set_duty, m, 1.0, False)
    sched.run_until(t_r + 200 * PS_PER_MS)
    s_c = solve_crossing(limit, -20_000.0, 0.02, x_r, v_r, lo=0.0,
                         hi=0.02 * math.log(1 - v_r / -20_000.0))
    (t, d), = end_stops(sched)
    assert abs(t - (t_r + s_c * PS_PER_S)) <= 2
    assert d["side"] == "max" and 0 < d["velocity"] < 2_000
    # the drive points away from the stop: the axis leaves it straight away
    assert plant.pinned is None and plant.position_now() < limit - 100


def test_friction_dead_band():
    sched, m, plant = make(friction_duty=0.2)
    set_duty(m, 0.1)
    sched.run_until(50 * PS_PER_MS)
    assert plant.position_now() == 0.0
    set_duty(m, 0.6)
    assert plant.target_velocity() == pytest.approx(20_000.0 * 0.4 / 0.8)


def test_history_is_sampled_every_period_and_bounded():
    sched, m, plant = make(history_len=5)
    set_duty(m, 0.25)
    sched.run_until(20 * PS_PER_MS)
    s = plant.samples()
    assert [x.t_ps for x in s] == [k * PS_PER_MS for k in range(16, 21)]
    x, v = step_response(5_000.0, 0.02, 0.02)
    assert s[-1].position == pytest.approx(x, rel=1e-12) and s[-1].drive == 0.25


def test_mcu_reset_drops_the_drive_and_the_axis_coasts():
    sched, m, plant = make()
    set_duty(m, 1.0)
    sched.run_until(100 * PS_PER_MS)
    v_r = plant.velocity_now()
    x_r = plant.position_now()
    m.system_reset("test")
    assert plant.target_velocity() == 0.0
    sched.run_until(120 * PS_PER_MS)
    assert plant.velocity_now() == pytest.approx(v_r * math.exp(-1), rel=1e-12)
    assert plant.position_now() == pytest.approx(x_r + v_r * 0.02 * (1 - math.exp(-1)), rel=1e-12)


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match="initial_position"):
        MotorParams(limit_min=0, limit_max=10, initial_position=20)
    with pytest.raises(ConfigError, match="bogus"):
        MotorParams.from_dict({"bogus": 1})
    assert MotorParams.from_dict({"tau_s": 0.05}).tau_s == 0.05
