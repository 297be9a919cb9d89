"""STM32 timer model, register level: update-event times in ps, CNT from virtual time, preloads,
rc_w0 SR, one-pulse, down-counting, clock changes, TIM1 PWM duty, TIM2 encoder mode; the counter
in the lazy mode (counter() wraps like CNT) and right after an enable off the kernel-cycle grid
(CNT holds its value), through both buses (DUOHIL_MODELS picks the machine's, the timer is C)."""
from __future__ import annotations

import pytest

from duohil.engines.base import PS_PER_MS, PS_PER_S, PS_PER_US
from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from model_helpers import FakeCpu

TIM1, TIM2, TIM6 = 0x4001_0000, 0x4000_0000, 0x4000_1000
CR1, SMCR, DIER, SR, EGR, CCMR1, CCER, CNT, PSC, ARR, CCR1, BDTR = (
    0x00, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x34, 0x44)
CEN, UDIS, URS, OPM, DIR, ARPE = 1, 2, 4, 8, 16, 128
UIE = UIF = UG = 1
OC1PE, OC1M_PWM1, OC1M_PWM2 = 1 << 3, 6 << 4, 7 << 4
CC1E, CC1P, CC2P = 1, 2, 1 << 5
MOE = 1 << 15
HZ = 240_000_000


class IrqSink:
    """An NVIC stand-in: records (t_ps, line, level); optionally 'services' the update IRQ by
    clearing SR.UIF a little later, like an ISR."""

    def __init__(self, machine: Machine, service_base: int | None = None) -> None:
        self.machine = machine
        self.edges: list[tuple[int, int, bool]] = []
        self.service_base = service_base

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.machine.now(), line, level))
        if level and self.service_base is not None:
            self.machine.scheduler.after(PS_PER_US, self.machine.bus_write,
                                         self.service_base + SR, 4, ~UIF & 0xFFFF_FFFF)

    def rises(self) -> list[int]:
        return [t for t, _, level in self.edges if level]


def make(base: int = TIM6, limit: int = 0xFFFF, hz: int = HZ, service: bool = True):
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    tim = STM32_Timer(m, "timer", base, None, {"frequency": hz, "initialLimit": limit})
    m.add_peripheral(tim)
    sink = IrqSink(m, base if service else None)
    tim.output("IRQ").connect(sink, 54)
    return sched, m, tim, sink


def w(m: Machine, addr: int, value: int) -> None:
    m.bus_write(addr, 4, value)


def r(m: Machine, addr: int) -> int:
    return m.bus_read(addr, 4)


def control_loop_1khz(m: Machine, base: int = TIM6) -> None:
    """What the firmware's TIM6 init does: PSC/ARR, UG to load PSC, clear UIF, UIE, CEN."""
    w(m, base + PSC, 239)
    w(m, base + ARR, 999)
    w(m, base + CR1, URS)                  # UG must not raise an interrupt
    w(m, base + EGR, UG)
    w(m, base + SR, 0)
    w(m, base + DIER, UIE)
    w(m, base + CR1, URS | CEN)


def test_tim6_update_interrupt_every_millisecond_exactly():
    sched, m, tim, sink = make()
    control_loop_1khz(m)
    assert r(m, TIM6 + SR) & UIF == 0              # URS: UG set no flag
    sched.run_until(5 * PS_PER_MS + 1)
    assert sink.rises() == [1 * PS_PER_MS, 2 * PS_PER_MS, 3 * PS_PER_MS, 4 * PS_PER_MS,
                            5 * PS_PER_MS]
    assert tim.updates == 1 + 5                    # UG is an update event too
    assert tim.update_period_ps() == PS_PER_MS


def test_update_time_from_a_start_off_the_cycle_grid():
    sched, m, tim, sink = make()
    sched.run_until(1_000_001)                     # 1 us + 1 ps: not a 240 MHz cycle boundary
    control_loop_1khz(m)
    sched.run_until(3 * PS_PER_MS)
    # first tick at the next kernel cycle (ceil), then exactly 240 000 cycles per update
    first_cycle = -(-1_000_001 * HZ // PS_PER_S)
    expect = [-(-(first_cycle + k * 240_000) * PS_PER_S // HZ) for k in (1, 2)]
    assert sink.rises() == expect


def test_cnt_is_computed_from_virtual_time():
    sched, m, tim, sink = make()
    control_loop_1khz(m)                           # 1 MHz count rate
    sched.run_until(250 * PS_PER_US - 1)
    assert r(m, TIM6 + CNT) == 249
    sched.run_until(250 * PS_PER_US)
    assert r(m, TIM6 + CNT) == 250
    sched.run_until(PS_PER_MS + 999 * PS_PER_US)   # after one wrap
    assert r(m, TIM6 + CNT) == 999
    w(m, TIM6 + CR1, URS)                          # stop: CNT frozen
    sched.run_until(3 * PS_PER_MS)
    assert r(m, TIM6 + CNT) == 999


def test_psc_is_preloaded_until_the_next_update():
    sched, m, tim, sink = make()
    w(m, TIM6 + PSC, 239)
    w(m, TIM6 + ARR, 999)
    w(m, TIM6 + DIER, UIE)
    w(m, TIM6 + CR1, CEN)                          # no UG: the first period still runs at PSC=0
    sched.run_until(1_100 * PS_PER_US)
    assert sink.rises() == [-(-1000 * PS_PER_S // HZ),            # 4 166 667 ps
                            -(-(1000 + 240_000) * PS_PER_S // HZ)]


def test_sr_uif_is_rc_w0_and_drives_the_irq_line():
    sched, m, tim, sink = make(service=False)
    control_loop_1khz(m)
    sched.run_until(PS_PER_MS)
    assert r(m, TIM6 + SR) & UIF and sink.edges[-1] == (PS_PER_MS, 54, True)
    w(m, TIM6 + SR, UIF)                           # writing 1 leaves the flag
    assert r(m, TIM6 + SR) & UIF and sink.edges[-1][2] is True
    w(m, TIM6 + SR, 0xFFFF_FFFE)                   # writing 0 clears it
    assert r(m, TIM6 + SR) & UIF == 0 and sink.edges[-1][2] is False
    w(m, TIM6 + DIER, 0)
    sched.run_until(2 * PS_PER_MS)
    assert r(m, TIM6 + SR) & UIF and sink.edges[-1][2] is False   # flag without interrupt


def test_ug_sets_uif_unless_urs_and_resets_the_counter():
    sched, m, tim, sink = make(service=False)
    w(m, TIM6 + ARR, 999)
    w(m, TIM6 + PSC, 239)
    w(m, TIM6 + CR1, CEN)
    sched.run_until(300 * PS_PER_US)
    assert tim.updates == 1           # the first update (PSC=0, at 4.17 us) loaded PSC=239
    w(m, TIM6 + EGR, UG)                           # URS=0: UIF set; PSC loaded now
    assert r(m, TIM6 + SR) & UIF
    assert r(m, TIM6 + CNT) == 0
    w(m, TIM6 + SR, 0)
    after_ug = tim.updates
    sched.run_until(800 * PS_PER_US)
    assert r(m, TIM6 + CNT) == 500 and tim.updates == after_ug


def test_arr_preload_with_and_without_arpe():
    sched, m, tim, sink = make()
    control_loop_1khz(m)
    sched.run_until(100 * PS_PER_US)
    w(m, TIM6 + ARR, 499)                          # ARPE=0: at once -> update at 500 us
    sched.run_until(PS_PER_MS)
    assert sink.rises() == [500 * PS_PER_US, 1000 * PS_PER_US]
    w(m, TIM6 + CR1, URS | CEN | ARPE)
    sched.run_until(1100 * PS_PER_US)
    w(m, TIM6 + ARR, 1999)                         # ARPE=1: after the next update (1.5 ms)
    sched.run_until(4 * PS_PER_MS)
    assert sink.rises()[2:] == [1500 * PS_PER_US, 3500 * PS_PER_US]


def test_one_pulse_mode_stops_after_one_update():
    sched, m, tim, sink = make()
    control_loop_1khz(m)
    w(m, TIM6 + CR1, URS | OPM | CEN)
    sched.run_until(5 * PS_PER_MS)
    assert sink.rises() == [PS_PER_MS]
    assert r(m, TIM6 + CR1) & CEN == 0 and r(m, TIM6 + CNT) == 0


def test_down_counting_underflows_after_cnt_plus_one_ticks():
    sched, m, tim, sink = make(base=TIM2, limit=0xFFFF_FFFF)
    w(m, TIM2 + PSC, 239)
    w(m, TIM2 + ARR, 99)
    w(m, TIM2 + CR1, DIR | URS)
    w(m, TIM2 + EGR, UG)                           # down-counting: CNT <- ARR
    assert r(m, TIM2 + CNT) == 99
    w(m, TIM2 + DIER, UIE)
    w(m, TIM2 + CR1, DIR | URS | CEN)
    sched.run_until(30 * PS_PER_US)
    assert r(m, TIM2 + CNT) == 69
    sched.run_until(250 * PS_PER_US)
    assert sink.rises() == [100 * PS_PER_US, 200 * PS_PER_US]


def test_kernel_clock_change_rescales_the_remaining_period():
    sched, m, tim, sink = make()
    control_loop_1khz(m)
    sched.run_until(500 * PS_PER_US)
    tim.timer_hz = 120_000_000                     # RCC halves the timer clock half-way
    sched.run_until(4 * PS_PER_MS)
    # 500 counts left at 0.5 MHz -> 1.5 ms, then 2 ms periods
    assert sink.rises() == [1500 * PS_PER_US, 3500 * PS_PER_US]


def test_status_poll_gives_the_cpu_the_update_time_as_wake_up():
    sched, m, tim, sink = make(service=False)
    control_loop_1khz(m)
    m.cpu.executing = True
    r(m, TIM6 + SR)
    m.cpu.executing = False
    assert m.cpu.hints[-1] == (TIM6, PS_PER_MS)


def test_system_reset_stops_the_timer_and_drops_the_irq():
    sched, m, tim, sink = make(service=False)
    control_loop_1khz(m)
    sched.run_until(PS_PER_MS)
    assert sink.edges[-1][2] is True
    sched.at(PS_PER_MS + 5, m.system_reset, "test")
    sched.run_until(10 * PS_PER_MS)
    assert sink.edges[-1] == (PS_PER_MS + 5, 54, False)
    assert r(m, TIM6 + CR1) == 0 and r(m, TIM6 + ARR) == 0xFFFF and tim.updates == 2


# -- TIM1 PWM ---------------------------------------------------------------------------------------------
def pwm_setup(m: Machine, ccr: int, arr: int = 11_999) -> None:
    """20 kHz PWM on CH1 as the firmware sets it up: PWM1, OC1PE, ARPE, UG, CC1E, MOE, CEN."""
    w(m, TIM1 + ARR, arr)
    w(m, TIM1 + CCMR1, OC1M_PWM1 | OC1PE)
    w(m, TIM1 + CCR1, ccr)
    w(m, TIM1 + CR1, ARPE | URS)
    w(m, TIM1 + EGR, UG)
    w(m, TIM1 + CCER, CC1E)
    w(m, TIM1 + BDTR, MOE)
    w(m, TIM1 + CR1, ARPE | URS | CEN)


def test_pwm_duty_is_ccr_over_arr_plus_one_with_gating():
    sched, m, tim, sink = make(base=TIM1, service=False)
    calls = []
    tim.add_listener(lambda t: calls.append((m.now(), t.pwm_duty)))
    pwm_setup(m, ccr=3_000)
    assert tim.pwm_duty == pytest.approx(0.25, abs=0)
    assert calls[-1] == (0, 0.25)
    w(m, TIM1 + BDTR, 0)                           # MOE=0: the advanced timer's outputs are off
    assert tim.pwm_duty == 0.0 and calls[-1][1] == 0.0
    w(m, TIM1 + BDTR, MOE)
    w(m, TIM1 + CCER, 0)                           # CC1E=0
    assert tim.pwm_duty == 0.0
    w(m, TIM1 + CCER, CC1E | CC1P)                 # active low: the high time is the complement
    assert tim.pwm_duty == 0.75
    w(m, TIM1 + CCER, CC1E)
    w(m, TIM1 + CCMR1, OC1M_PWM2 | OC1PE)
    assert tim.pwm_duty == 0.75
    w(m, TIM1 + CCMR1, OC1M_PWM1 | OC1PE)
    w(m, TIM1 + CCR1, 20_000)                      # CCR > ARR: 100 %, after the preload
    sched.run_until(PS_PER_MS)
    assert tim.pwm_duty == 1.0
    w(m, TIM1 + CR1, ARPE | URS)                   # CEN=0
    assert tim.pwm_duty == 0.0


def test_ccr1_preload_takes_effect_at_the_next_update():
    sched, m, tim, sink = make(base=TIM1, service=False)
    calls = []
    tim.add_listener(lambda t: calls.append((m.now(), t.pwm_duty)))
    pwm_setup(m, ccr=6_000)                        # 20 kHz: updates every 50 us
    sched.run_until(10 * PS_PER_US)
    w(m, TIM1 + CCR1, 9_000)
    assert tim.pwm_duty == 0.5                     # still the old compare value
    sched.run_until(60 * PS_PER_US)
    assert tim.pwm_duty == 0.75
    assert calls[-1] == (50 * PS_PER_US, 0.75)     # the plant hears it at the update
    w(m, TIM1 + CCMR1, OC1M_PWM1)                  # OC1PE=0: immediate
    w(m, TIM1 + CCR1, 1_200)
    assert tim.pwm_duty == 0.1


# -- TIM2 encoder ------------------------------------------------------------------------------------------
def encoder_setup(m: Machine, sms: int = 3, ccer: int = 0) -> None:
    w(m, TIM2 + ARR, 0xFFFF_FFFF)
    w(m, TIM2 + CCMR1, 1 | (1 << 8))               # CC1S=01, CC2S=01
    w(m, TIM2 + CCER, ccer)
    w(m, TIM2 + SMCR, sms)
    w(m, TIM2 + CR1, CEN)


def test_encoder_counts_the_plant_position_32_bit_with_wrap():
    sched, m, tim, sink = make(base=TIM2, limit=0xFFFF_FFFF, service=False)
    tim.set_encoder_count(1000)                    # before counting: not counted
    encoder_setup(m)
    assert r(m, TIM2 + CNT) == 0
    tim.set_encoder_count(1250)
    assert r(m, TIM2 + CNT) == 250 and r(m, TIM2 + CR1) & DIR == 0
    tim.set_encoder_count(990)                     # 10 below the start: wraps under 0
    assert r(m, TIM2 + CNT) == 0xFFFF_FFFF - 9
    assert r(m, TIM2 + CR1) & DIR                  # hardware direction bit: down
    assert r(m, TIM2 + SR) & UIF                   # the wrap is an update event
    w(m, TIM2 + CR1, DIR)                          # CEN=0 (DIR is read-only here)
    tim.set_encoder_count(5000)
    assert r(m, TIM2 + CNT) == 0xFFFF_FFFF - 9
    w(m, TIM2 + CNT, 0)                            # firmware re-homes
    w(m, TIM2 + CR1, CEN)
    tim.set_encoder_count(5007)
    assert r(m, TIM2 + CNT) == 7


def test_encoder_x2_mode_polarity_and_pull_source():
    sched, m, tim, sink = make(base=TIM2, limit=0xFFFF_FFFF, service=False)
    pos = [0]
    tim.encoder_source = lambda: pos[0]
    encoder_setup(m, sms=1, ccer=CC1P)             # x2 on TI1, TI1 inverted: counts down
    pos[0] = 40
    assert r(m, TIM2 + CNT) == (-20) & 0xFFFF_FFFF
    w(m, TIM2 + CCER, 0)
    w(m, TIM2 + CNT, 0)
    pos[0] = 140
    assert r(m, TIM2 + CNT) == 50


def test_sixteen_bit_encoder_wraps_at_arr():
    sched, m, tim, sink = make(base=TIM1, service=False)
    w(m, TIM1 + ARR, 999)
    w(m, TIM1 + SMCR, 3)
    w(m, TIM1 + CR1, CEN)
    tim.set_encoder_count(0)
    tim.set_encoder_count(2_345)
    assert r(m, TIM1 + CNT) == 345 and tim.updates == 1


# -- the two deviations found by the RM0433 review (both copies had them) -----------------------------
# RM0433 s.39.3.2 (TIM2-5, the same for TIM1/8 s.38.3.2 and TIM6/7 s.41.3.2): in upcounting mode the
# counter counts from 0 to ARR, restarts from 0 and generates an overflow (update) event; CNT is the
# counter value. The model computes it from virtual time; whatever it does internally (the lazy mode
# skips update events nobody can observe), counter() and a CNT read are that value at that time.


def make_models(base: int = TIM6, limit: int = 0xFFFF, hz: int = HZ):
    sched, m, tim, sink = make(base, limit, hz, service=False)
    assert isinstance(tim, native.core().Timer)                     # the one copy, in C
    return sched, m, tim, sink


def test_counter_wraps_at_arr_in_the_lazy_mode_before_any_register_access():
    sched, m, tim, sink = make_models(hz=1_000_000)     # PSC=0: one count per microsecond
    w(m, TIM6 + ARR, 99)
    w(m, TIM6 + CR1, CEN)                    # no interrupt: nobody sees the updates (lazy mode)
    assert tim._update_ev is None
    sched.run_until(250 * PS_PER_US)
    # 250 counts of a 100-count period (0..99): overflows at 100 and 200 us, then 50 more
    assert tim.counter() == 50
    assert tim.counter() == 50 and r(m, TIM6 + CNT) == 50 and tim.counter() == 50
    assert r(m, TIM6 + SR) & UIF and tim.updates == 2
    sched.run_until(1037 * PS_PER_US)        # 1037 counts: 10 overflows, then 37
    assert tim.counter() == 37 and tim.updates == 10 and r(m, TIM6 + CNT) == 37
    assert sink.edges == []                  # UIE=0: never an interrupt


def test_counter_with_a_prescaler_in_the_lazy_mode():
    sched, m, tim, sink = make_models(hz=1_000_000)
    w(m, TIM6 + PSC, 9)                      # 100 kHz count rate once loaded
    w(m, TIM6 + ARR, 99)                     # period 100 counts = 1 ms
    w(m, TIM6 + CR1, URS)
    w(m, TIM6 + EGR, UG)                     # loads PSC; URS: no UIF
    w(m, TIM6 + CR1, URS | CEN)
    assert tim._update_ev is None
    sched.run_until(2510 * PS_PER_US)        # 251 counts: 2 overflows, then 51
    assert tim.counter() == 51 and tim.updates == 1 + 2
    sched.run_until(2519 * PS_PER_US)        # 0.9 of the next count: still 51
    assert tim.counter() == 51
    sched.run_until(2520 * PS_PER_US)
    assert tim.counter() == 52 and r(m, TIM6 + CNT) == 52


def test_a_kernel_clock_change_in_the_lazy_mode_keeps_the_count_reached():
    sched, m, tim, sink = make_models(hz=1_000_000)
    w(m, TIM6 + ARR, 99)
    w(m, TIM6 + CR1, CEN)
    sched.run_until(250 * PS_PER_US)
    tim.timer_hz = 2_000_000                 # the RCC doubles the clock at CNT = 50
    sched.run_until(280 * PS_PER_US)
    # 30 us at 2 MHz = 60 counts from 50: the overflow at 99 -> 0 (at 275 us), then 10
    assert tim.counter() == 10 and r(m, TIM6 + CNT) == 10
    assert tim.updates == 3                  # 100, 200 and 275 us


# RM0433 s.39.3.2: setting CR1.CEN starts the counter from the value CNT holds (0 after reset or
# UG, ARR after UG when down-counting, or what software wrote); it never reads anything else.
# The model anchors counting at the first kernel-clock cycle at or after the CEN write and counts
# one every PSC+1 cycles from there: at 1 MHz a CEN write at 0.4 us anchors at 1 us, the first
# count is at 2 us.
START_PS = 400_000


@pytest.mark.parametrize("base,limit", [(TIM6, 0xFFFF), (TIM2, 0xFFFF_FFFF)])
def test_cnt_right_after_an_enable_off_the_kernel_cycle_grid_is_its_value(base, limit):
    sched, m, tim, sink = make_models(base, limit, hz=1_000_000)
    w(m, base + ARR, 99)
    sched.run_until(START_PS)
    w(m, base + CR1, CEN)
    assert r(m, base + CNT) == 0 and tim.counter() == 0
    for t, cnt in ((999_999, 0), (PS_PER_US, 0), (2 * PS_PER_US - 1, 0), (2 * PS_PER_US, 1),
                   (5 * PS_PER_US, 4), (100 * PS_PER_US, 99), (101 * PS_PER_US, 0),
                   (102 * PS_PER_US, 1)):
        sched.run_until(t)
        assert tim.counter() == cnt, t
        assert r(m, base + CNT) == cnt, t


def test_an_enable_off_the_grid_starts_from_a_written_cnt():
    sched, m, tim, sink = make_models(hz=1_000_000)
    w(m, TIM6 + ARR, 99)
    w(m, TIM6 + CNT, 42)
    sched.run_until(START_PS)
    w(m, TIM6 + CR1, CEN)
    assert r(m, TIM6 + CNT) == 42
    sched.run_until(2 * PS_PER_US)
    assert r(m, TIM6 + CNT) == 43


def test_an_enable_off_the_grid_down_counting_starts_from_arr():
    sched, m, tim, sink = make_models(TIM2, 0xFFFF_FFFF, hz=1_000_000)
    w(m, TIM2 + ARR, 99)
    w(m, TIM2 + CR1, DIR | URS)
    w(m, TIM2 + EGR, UG)                     # down-counting: CNT <- ARR
    w(m, TIM2 + DIER, UIE)
    sched.run_until(START_PS)
    w(m, TIM2 + CR1, DIR | URS | CEN)
    assert r(m, TIM2 + CNT) == 99 and tim.counter() == 99
    sched.run_until(2 * PS_PER_US - 1)
    assert r(m, TIM2 + CNT) == 99
    sched.run_until(2 * PS_PER_US)
    assert r(m, TIM2 + CNT) == 98
    sched.run_until(100 * PS_PER_US)         # 99 counts down: 0
    assert r(m, TIM2 + CNT) == 0 and sink.rises() == []
    sched.run_until(101 * PS_PER_US)         # the 100th: underflow, ARR again
    assert r(m, TIM2 + CNT) == 99 and sink.rises() == [101 * PS_PER_US]


def test_a_cnt_write_before_the_first_kernel_cycle_keeps_the_start():
    """Writing CNT between the CEN write and the anchor cycle: the counter holds the written value
    until the first count, which stays one PSC+1 after the anchor (2 us here)."""
    sched, m, tim, sink = make_models(hz=1_000_000)
    w(m, TIM6 + ARR, 99)
    sched.run_until(START_PS)
    w(m, TIM6 + CR1, CEN)
    sched.run_until(700_000)
    w(m, TIM6 + CNT, 42)
    assert r(m, TIM6 + CNT) == 42
    sched.run_until(2 * PS_PER_US - 1)
    assert r(m, TIM6 + CNT) == 42
    sched.run_until(2 * PS_PER_US)
    assert r(m, TIM6 + CNT) == 43


def test_a_write_that_stops_and_flips_dir_freezes_the_value_counted_down():
    """CR1 = 0 on a down-counter (CEN and DIR cleared in one write): CNT keeps the value reached
    counting down, 99 - 30 after 30 counts (RM0433: CEN=0 stops the counter where it is)."""
    sched, m, tim, sink = make(base=TIM2, limit=0xFFFF_FFFF, hz=1_000_000, service=False)
    w(m, TIM2 + ARR, 99)
    w(m, TIM2 + CR1, DIR | URS)
    w(m, TIM2 + EGR, UG)                           # down-counting: CNT <- ARR
    w(m, TIM2 + CR1, DIR | URS | CEN)
    sched.run_until(30 * PS_PER_US)
    w(m, TIM2 + CR1, 0)
    assert r(m, TIM2 + CNT) == 69
    sched.run_until(50 * PS_PER_US)
    assert r(m, TIM2 + CNT) == 69


def test_a_clock_change_mid_prescaler_period_keeps_the_prescaler_count():
    """1 MHz counts from 240 MHz / (PSC+1 = 240); at 500.5 us the prescaler has 120 of its 240
    cycles and the RCC halves the clock: the other 120 take 1 us at 120 MHz (count 501 at
    501.5 us), then a count every 2 us: the overflow after 999 is 499 counts later, 1499.5 us."""
    sched, m, tim, sink = make()
    control_loop_1khz(m)
    sched.run_until(500 * PS_PER_US + 500_000)
    assert r(m, TIM6 + CNT) == 500
    tim.timer_hz = 120_000_000
    sched.run_until(501 * PS_PER_US + 499_999)
    assert r(m, TIM6 + CNT) == 500
    sched.run_until(501 * PS_PER_US + 500_000)
    assert r(m, TIM6 + CNT) == 501
    sched.run_until(2 * PS_PER_MS)
    assert sink.rises() == [1499 * PS_PER_US + 500_000]
