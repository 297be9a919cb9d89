"""GPIO port (reset values, direction pin through BSRR/ODR, IDR, pin-change callbacks, LCKR) and
IWDG1 (keys, protected registers, SR busy bits, expiry = system reset at (RLR+1)*divider/32 kHz,
RCC RSR.IWDG1RSTF, no stopping, window)."""
from __future__ import annotations

from duohil.engines.base import PS_PER_MS, PS_PER_S
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_gpio import STM32_GPIOPort
from duohil.engines.builtin.soc.stm32h7.stm32_iwdg import STM32_IndependentWatchdog
from duohil.engines.builtin.soc.stm32h7.stm32_rcc import STM32H7_RCC
from model_helpers import FakeCpu

GPIOA, GPIOB, GPIOC, GPIOD = 0x5802_0000, 0x5802_0400, 0x5802_0800, 0x5802_0C00
MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24)
IWDG = 0x5800_4800
KR, PR, RLR, SR, WINR = 0x00, 0x04, 0x08, 0x0C, 0x10
RCC = 0x5802_4400
RSR = 0xD0
IWDG1RSTF, PINRSTF, PORRSTF = 1 << 26, 1 << 22, 1 << 23
LSI_PS = PS_PER_S // 32_000                       # 31.25 us


def machine() -> tuple[Scheduler, Machine]:
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    return sched, m


def w(m: Machine, addr: int, value: int) -> None:
    m.bus_write(addr, 4, value)


def r(m: Machine, addr: int) -> int:
    return m.bus_read(addr, 4)


# -- GPIO --------------------------------------------------------------------------------------------------
def gpio_machine():
    sched, m = machine()
    ports = {}
    for name, base in (("gpioPortA", GPIOA), ("gpioPortB", GPIOB), ("gpioPortC", GPIOC),
                       ("gpioPortD", GPIOD)):
        ports[name] = STM32_GPIOPort(m, name, base, None, {"numberOfAFs": 16})
        m.add_peripheral(ports[name])
    return sched, m, ports


def test_gpio_reset_values_differ_per_port():
    sched, m, ports = gpio_machine()
    assert [r(m, GPIOA + x) for x in (MODER, OSPEEDR, PUPDR)] == [0xABFF_FFFF, 0x0C00_0000, 0x6400_0000]
    assert [r(m, GPIOB + x) for x in (MODER, OSPEEDR, PUPDR)] == [0xFFFF_FEBF, 0x0000_00C0, 0x0000_0100]
    assert [r(m, GPIOC + x) for x in (MODER, OSPEEDR, PUPDR)] == [0xFFFF_FFFF, 0, 0]
    # PA13 (pull-up, AF) reads 1, PA14 (pull-down) 0, analog pins 0
    assert r(m, GPIOA + IDR) == (1 << 13) | (1 << 15)


def test_direction_pin_through_bsrr_and_odr_with_callbacks():
    sched, m, ports = gpio_machine()
    seen = []
    ports["gpioPortD"].subscribe(lambda port, pin, level, t: seen.append((port.letter, pin, level, t)))
    pin = 12
    moder = r(m, GPIOD + MODER)
    w(m, GPIOD + MODER, (moder & ~(3 << 2 * pin)) | (1 << 2 * pin))    # output, ODR=0
    assert seen == []                                 # analog (0) -> output low (0): no change
    sched.run_until(7 * PS_PER_MS)
    w(m, GPIOD + BSRR, 1 << pin)
    assert r(m, GPIOD + ODR) == 1 << pin and r(m, GPIOD + IDR) & (1 << pin)
    assert r(m, GPIOD + BSRR) == 0                    # write-only
    w(m, GPIOD + BSRR, 1 << pin)                      # no change, no callback
    w(m, GPIOD + BSRR, (1 << pin) | (1 << (pin + 16)))    # set and reset: set wins
    assert ports["gpioPortD"].pin_level(pin) == 1
    w(m, GPIOD + BSRR, 1 << (pin + 16))
    assert r(m, GPIOD + ODR) == 0
    w(m, GPIOD + ODR, 1 << pin)
    assert seen == [("D", pin, 1, 7 * PS_PER_MS), ("D", pin, 0, 7 * PS_PER_MS),
                    ("D", pin, 1, 7 * PS_PER_MS)]


def test_input_pins_read_external_level_or_pull_and_open_drain():
    sched, m, ports = gpio_machine()
    c = ports["gpioPortC"]
    w(m, GPIOC + MODER, 0xFFFF_FFFF & ~(3 << 26) & ~(3 << 2))        # PC13 and PC1 inputs
    w(m, GPIOC + PUPDR, 1 << 26)                                      # PC13 pull-up
    assert r(m, GPIOC + IDR) == 1 << 13
    c.set_input(13, False)                                            # button pressed
    c.set_input(1, True)
    assert r(m, GPIOC + IDR) == 1 << 1
    c.release_input(13)
    assert r(m, GPIOC + IDR) == (1 << 13) | (1 << 1)
    # open-drain output: drives 0 only; released it reads the pull-up
    w(m, GPIOC + MODER, (r(m, GPIOC + MODER) & ~(3 << 26)) | (1 << 26))
    w(m, GPIOC + OTYPER, 1 << 13)
    assert r(m, GPIOC + IDR) & (1 << 13) == 0
    w(m, GPIOC + BSRR, 1 << 13)
    assert r(m, GPIOC + IDR) & (1 << 13)


def test_lckr_sequence_freezes_the_locked_pins_configuration():
    sched, m, ports = gpio_machine()
    w(m, GPIOD + MODER, 0x5555_5555)
    lck = 1 << 3
    w(m, GPIOD + LCKR, (1 << 16) | lck)
    w(m, GPIOD + LCKR, lck)
    assert r(m, GPIOD + LCKR) & (1 << 16) == 0
    w(m, GPIOD + LCKR, (1 << 16) | lck)
    assert r(m, GPIOD + LCKR) == (1 << 16) | lck
    w(m, GPIOD + MODER, 0)
    assert r(m, GPIOD + MODER) == 1 << 6                 # pin 3 kept its mode, others changed
    m.system_reset("test")
    w(m, GPIOD + MODER, 0)
    assert r(m, GPIOD + MODER) == 0                       # a reset unlocks


def test_lckr_wrong_sequence_does_not_lock():
    sched, m, ports = gpio_machine()
    w(m, GPIOD + LCKR, (1 << 16) | 1)
    w(m, GPIOD + LCKR, 2)                                 # different LCK value
    w(m, GPIOD + LCKR, (1 << 16) | 1)
    w(m, GPIOD + MODER, 0)
    assert r(m, GPIOD + MODER) == 0 and r(m, GPIOD + LCKR) & (1 << 16) == 0


# -- IWDG --------------------------------------------------------------------------------------------------
def iwdg_machine():
    sched, m = machine()
    rcc = STM32H7_RCC(m, "rcc", RCC, None, {})
    m.add_peripheral(rcc)
    iwdg = STM32_IndependentWatchdog(m, "iwdg1", IWDG, None,
                                     {"frequency": 32_000, "windowOption": True, "defaultPrescaler": 4})
    m.add_peripheral(iwdg)
    return sched, m, iwdg


def hal_iwdg_init(sched: Scheduler, m: Machine, pr: int, rlr: int) -> int:
    """HAL_IWDG_Init: start, unlock, PR, RLR, wait for SR == 0, reload. Returns the reload time."""
    w(m, IWDG + KR, 0xCCCC)
    w(m, IWDG + KR, 0x5555)
    w(m, IWDG + PR, pr)
    w(m, IWDG + RLR, rlr)
    assert r(m, IWDG + SR) == 0b11                        # PVU, RVU busy
    sched.run_until(sched.now + 5 * LSI_PS)
    assert r(m, IWDG + SR) == 0
    w(m, IWDG + KR, 0xAAAA)
    return sched.now


def resets(sched: Scheduler) -> list[tuple[int, dict]]:
    return [(t, d) for t, kind, d in sched.log if kind == "reset"]


def test_iwdg_expiry_resets_the_mcu_at_rlr_plus_one_times_divider_over_lsi():
    sched, m, iwdg = iwdg_machine()
    t0 = hal_iwdg_init(sched, m, pr=3, rlr=999)           # /32, 1000 ticks: 1.0 s
    assert iwdg.deadline_ps == t0 + PS_PER_S
    w(m, RCC + RSR, 1 << 16)                              # RMVF: clear the power-on flags
    assert r(m, RCC + RSR) == 0
    sched.run_until(t0 + PS_PER_S - 1)
    assert resets(sched) == [] and m.cpu.resets == 0
    sched.run_until(t0 + PS_PER_S)
    assert resets(sched) == [(t0 + PS_PER_S, {"machine": "stm32", "cause": "iwdg"})]
    assert m.cpu.resets == 1
    assert r(m, RCC + RSR) & IWDG1RSTF and r(m, RCC + RSR) & PINRSTF
    assert r(m, RCC + RSR) & PORRSTF == 0
    # the reset stopped the watchdog: nothing more happens
    sched.run_until(t0 + 5 * PS_PER_S)
    assert len(resets(sched)) == 1 and not iwdg.running
    assert r(m, IWDG + RLR) == 0xFFF and r(m, IWDG + PR) == 0


def test_iwdg_kicks_keep_it_alive_and_it_cannot_be_stopped():
    sched, m, iwdg = iwdg_machine()
    t0 = hal_iwdg_init(sched, m, pr=0, rlr=799)           # /4, 800 ticks: 100 ms
    last = t0
    for k in range(1, 31):                                # kick every 90 ms for 2.7 s
        sched.run_until(t0 + k * 90 * PS_PER_MS)
        w(m, IWDG + KR, 0xAAAA)
        last = sched.now
    w(m, IWDG + KR, 0x0000)                               # no key stops it
    w(m, IWDG + KR, 0xCCCC)                               # starting again changes nothing
    sched.run_until(last + 100 * PS_PER_MS - 1)
    assert resets(sched) == []
    sched.run_until(last + 200 * PS_PER_MS)
    assert [t for t, _ in resets(sched)] == [last + 100 * PS_PER_MS]
    # lazy re-arming: one pending expiry event, not one per kick
    assert sum(1 for ev in sched._heap if not ev.cancelled and ev.name == "iwdg1.expiry") == 0


def test_iwdg_protected_registers_need_the_unlock_key():
    sched, m, iwdg = iwdg_machine()
    w(m, IWDG + PR, 6)
    w(m, IWDG + RLR, 10)
    assert r(m, IWDG + PR) == 0 and r(m, IWDG + RLR) == 0xFFF and r(m, IWDG + SR) == 0
    w(m, IWDG + KR, 0x5555)
    w(m, IWDG + PR, 6)
    w(m, IWDG + KR, 0xAAAA)                               # any other key locks again
    w(m, IWDG + RLR, 10)
    assert r(m, IWDG + PR) == 6 and r(m, IWDG + RLR) == 0xFFF
    # default timeout (never configured): 4 * 4096 / 32 kHz = 512 ms after the start key
    w(m, IWDG + KR, 0xCCCC)
    assert iwdg.deadline_ps == sched.now + 256 * 4096 * PS_PER_S // 32_000


def test_iwdg_sr_poll_parks_until_the_update_is_done():
    sched, m, iwdg = iwdg_machine()
    w(m, IWDG + KR, 0x5555)
    w(m, IWDG + RLR, 100)
    m.cpu.executing = True
    assert r(m, IWDG + SR) == 0b10
    m.cpu.executing = False
    assert m.cpu.hints[-1] == (IWDG, 5 * LSI_PS)


def test_iwdg_window_reload_too_early_resets():
    sched, m, iwdg = iwdg_machine()
    t0 = hal_iwdg_init(sched, m, pr=0, rlr=999)           # 1000 ticks of 125 us
    w(m, IWDG + KR, 0x5555)
    w(m, IWDG + WINR, 500)                                # WINR write reloads
    sched.run_until(sched.now + 5 * LSI_PS)
    t1 = sched.now
    sched.run_until(t1 + 40 * PS_PER_MS)                  # counter ~ 680 > 500: too early
    w(m, IWDG + KR, 0xAAAA)
    assert [t for t, _ in resets(sched)] == [t1 + 40 * PS_PER_MS]
    assert t0 < t1


def test_pin_levels_equal_the_per_pin_rule_for_random_configurations():
    """Whatever MODER, PUPDR, ODR, OTYPER and the outside drive are, IDR and pin_level are the
    per-pin rule's: analog 0, push-pull or low open-drain output = ODR, else the outside driver,
    else the pull-up (the C port computes them once per change: native/stm32_gpio.c)."""
    import random

    def rule(moder, pupdr, odr, ot, driven, ext):
        out = 0
        for pin in range(16):
            bit, mode, pull = 1 << pin, (moder >> 2 * pin) & 3, (pupdr >> 2 * pin) & 3
            if mode == 3:
                level = 0
            elif mode == 1 and (not ot & bit or not odr & bit):
                level = odr & bit
            elif driven & bit:
                level = ext & bit
            else:
                level = pull == 1
            out |= bit if level else 0
        return out

    _s, m, ports = gpio_machine()
    port = ports["gpioPortC"]
    rng = random.Random(20261207)
    for _ in range(500):
        moder, pupdr = rng.getrandbits(32), rng.getrandbits(32)
        odr, ot, driven, ext = (rng.getrandbits(16) for _ in range(4))
        for off, v in ((MODER, moder), (PUPDR, pupdr), (ODR, odr), (OTYPER, ot)):
            w(m, GPIOC + off, v)
        for pin in range(16):
            if driven >> pin & 1:
                port.set_input(pin, bool(ext >> pin & 1))
            else:
                port.release_input(pin)
        want = rule(moder, pupdr, odr, ot, driven, ext)
        assert r(m, GPIOC + IDR) == port._levels == want
        assert [port.pin_level(pin) for pin in range(16)] == [want >> pin & 1 for pin in range(16)]
