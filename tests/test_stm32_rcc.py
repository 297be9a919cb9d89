"""RCC, PWR and FLASH_ACR models: the clock-init handshakes real firmware polls, the computed clock
tree and its push into timers/USARTs, reset flags across a system reset, RSTR block resets, the PWR
supply lock and how the platform builder picks the PWR model."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Peripheral
from duohil.engines.builtin.loaders.platform import REGISTRY, load_platform
from duohil.engines.builtin.loaders.repl import Ref
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_flash import STM32H7_FlashController
from duohil.engines.builtin.soc.stm32h7.stm32_pwr import STM32H7_PWR
from duohil.engines.builtin.soc.stm32h7.stm32_rcc import STM32H7_RCC
from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
from model_helpers import FakeCpu

ROOT = Path(__file__).resolve().parent.parent
RCC, PWR, FLASH = 0x5802_4400, 0x5802_4800, 0x5200_2000
CR, CFGR, D1CFGR, D2CFGR, D3CFGR, PLLCKSELR, PLLCFGR, PLL1DIVR = (
    0x00, 0x10, 0x18, 0x1C, 0x20, 0x28, 0x2C, 0x30)
D2CCIP2R, CSR, APB1LRSTR, RSR, AHB4ENR, APB1LENR = 0x54, 0x74, 0x90, 0xD0, 0xE0, 0xE8
HSION, HSIRDY, HSEON, HSERDY, PLL1ON, PLL1RDY = 1, 1 << 2, 1 << 16, 1 << 17, 1 << 24, 1 << 25
PWR_CSR1, PWR_CR3, PWR_D3CR = 0x04, 0x0C, 0x18
LDOEN, SCUEN, BYPASS, VOSRDY = 1 << 1, 1 << 2, 1, 1 << 13
RMVF, CPURSTF, PINRSTF, PORRSTF, SFTRSTF, IWDG1RSTF = (1 << 16, 1 << 17, 1 << 22, 1 << 23,
                                                       1 << 24, 1 << 26)


class KernelClockUser(Peripheral):
    """A USART stand-in: only the ``kernel_hz`` attribute the RCC pushes into."""

    def __init__(self, machine, name, base, hz) -> None:
        super().__init__(machine, name, base, 0x400, {})
        self.repl_hz = hz
        self.kernel_hz = hz

    def reset(self) -> None:
        super().reset()
        self.kernel_hz = self.repl_hz


class ClockedCpu(FakeCpu):
    """A FakeCpu that keeps the core clock the RCC pushes."""

    hz = 480_000_000

    def set_core_clock(self, hz: int) -> None:
        self.hz = hz


class SysTickStandIn:
    """Only what the RCC calls on the NVIC given as ``systick``."""

    hz = 0

    def set_core_clock(self, hz: int) -> None:
        self.hz = hz


def make(timer_repl_hz: int = 250_000_000, hse: int | None = 8_000_000, apply: bool = True):
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(ClockedCpu())
    rcc = STM32H7_RCC(m, "rcc", RCC, None, {"hseFrequency": hse, "systick": SysTickStandIn()})
    pwr = STM32H7_PWR(m, "pwr", PWR, 0x400, {})
    flash = STM32H7_FlashController(m, "flashController", FLASH, None, {})
    for p in (rcc, pwr, flash):
        m.add_peripheral(p)
    tims = {}
    for name, base, limit in (("timer1", 0x4001_0000, 0xFFFF), ("timer2", 0x4000_0000, 0xFFFF_FFFF),
                              ("timer6", 0x4000_1000, 0xFFFF)):
        tims[name] = STM32_Timer(m, name, base, None, {"frequency": timer_repl_hz,
                                                       "initialLimit": limit})
        m.add_peripheral(tims[name])
    usart1 = KernelClockUser(m, "usart1", 0x4001_1000, 125_000_000)
    usart3 = KernelClockUser(m, "usart3", 0x4000_4800, 125_000_000)
    m.add_peripheral(usart1)
    m.add_peripheral(usart3)
    if apply:
        rcc.apply_clocks()              # what machine.finish() does through finish_hooks
    return sched, m, rcc, tims, usart1, usart3


def w(m: Machine, addr: int, value: int) -> None:
    m.bus_write(addr, 4, value)


def r(m: Machine, addr: int) -> int:
    return m.bus_read(addr, 4)


def firmware_clock_init(m: Machine) -> None:
    """The LL SystemClock_Config sequence (stm32h7-registers.md s.2.3), with every poll it makes;
    each poll is an assertion here instead of a hang."""
    w(m, FLASH, 0x24)                                    # LATENCY=4, WRHIGHFREQ=2
    assert r(m, FLASH) & 0xF == 4 and r(m, FLASH) == 0x24
    w(m, PWR + PWR_CR3, LDOEN)
    w(m, PWR + PWR_D3CR, 3 << 14)                        # VOS scale 1
    assert r(m, PWR + PWR_D3CR) & VOSRDY
    assert r(m, PWR + PWR_CSR1) & (1 << 13) and (r(m, PWR + PWR_CSR1) >> 14) & 3 == 3
    w(m, RCC + CR, r(m, RCC + CR) | HSEON)
    assert r(m, RCC + CR) & HSERDY
    assert r(m, RCC + CR) & PLL1RDY == 0                 # LL checks the PLL is off first
    w(m, RCC + PLLCKSELR, (r(m, RCC + PLLCKSELR) & ~0x3F3) | 2 | (1 << 4))    # HSE, DIVM1=1
    w(m, RCC + PLLCFGR, (3 << 2) | (7 << 16))            # RGE 8-16 MHz, DIVP1/Q1/R1EN
    w(m, RCC + PLL1DIVR, (120 - 1) | ((2 - 1) << 9) | ((20 - 1) << 16) | ((2 - 1) << 24))
    w(m, RCC + CR, r(m, RCC + CR) | PLL1ON)
    assert r(m, RCC + CR) & PLL1RDY
    w(m, RCC + D1CFGR, 8 | (4 << 4))                     # HPRE /2, D1PPRE /2
    w(m, RCC + CFGR, 3)                                  # SW = PLL1
    assert r(m, RCC + CFGR) & 0x38 == 0x18               # SWS = PLL1
    w(m, RCC + D2CFGR, (4 << 4) | (4 << 8))              # APB1 /2, APB2 /2
    w(m, RCC + D3CFGR, 4 << 4)


def test_reset_values_and_ready_flags_follow_enables():
    sched, m, rcc, tims, u1, u3 = make()
    assert r(m, RCC + CR) == 0x25                        # HSION, HSIRDY, HSIDIVF
    assert r(m, RCC + PLLCKSELR) == 0x0202_0200 and r(m, RCC + PLL1DIVR) == 0x0101_0280
    assert r(m, RCC + RSR) == PORRSTF | PINRSTF | CPURSTF | (1 << 19) | (1 << 20) | (1 << 21)
    w(m, RCC + CR, HSION | HSEON | PLL1ON | (1 << 7))    # + CSION
    assert r(m, RCC + CR) & (HSERDY | PLL1RDY | HSIRDY | (1 << 8)) == HSERDY | PLL1RDY | HSIRDY | (1 << 8)
    w(m, RCC + CR, HSION)
    assert r(m, RCC + CR) & (HSERDY | PLL1RDY) == 0
    w(m, RCC + CR, HSION | HSIRDY | HSERDY)              # ready bits are read-only
    assert r(m, RCC + CR) & HSERDY == 0
    w(m, RCC + CSR, 1)
    assert r(m, RCC + CSR) == 0b11                       # LSION -> LSIRDY
    w(m, RCC + CFGR, 2)
    assert r(m, RCC + CFGR) == 2 | (2 << 3)


def test_firmware_clock_init_gives_480_240_120_and_pushes_kernel_clocks():
    sched, m, rcc, tims, u1, u3 = make(timer_repl_hz=250_000_000)   # Renode's repl value
    firmware_clock_init(m)
    c = rcc.clocks()
    assert (c.sysclk, c.cpu, c.hclk, c.pclk1, c.pclk2) == (480_000_000, 480_000_000, 240_000_000,
                                                          120_000_000, 120_000_000)
    assert (c.tim1_ker, c.tim2_ker) == (240_000_000, 240_000_000)   # APB /2: timers at 2 x PCLK
    assert {n: t.timer_hz for n, t in tims.items()} == {"timer1": 240_000_000, "timer2": 240_000_000,
                                                        "timer6": 240_000_000}
    assert (u1.kernel_hz, u3.kernel_hz) == (120_000_000, 120_000_000)
    w(m, RCC + D2CCIP2R, 3)                              # USART234578SEL = hsi_ker
    assert u3.kernel_hz == 64_000_000 and u1.kernel_hz == 120_000_000
    w(m, RCC + D2CFGR, (5 << 4) | (4 << 8))              # APB1 /4: PCLK1 60 MHz, timers 2 x 60
    assert rcc.clocks().pclk1 == 60_000_000 and tims["timer6"].timer_hz == 120_000_000
    assert tims["timer1"].timer_hz == 240_000_000        # APB2 timers unchanged
    w(m, RCC + CFGR, 3 | (1 << 15))                      # TIMPRE=1, APB /4: f_tim = HCLK
    assert tims["timer6"].timer_hz == 240_000_000 and tims["timer2"].timer_hz == 240_000_000
    w(m, RCC + D2CFGR, (6 << 4) | (4 << 8))              # TIMPRE=1, APB1 /8: 4 x PCLK1
    assert tims["timer6"].timer_hz == 4 * 30_000_000


def test_reset_tree_is_pushed_at_build_and_after_every_system_reset():
    sched, m, rcc, tims, u1, u3 = make(timer_repl_hz=240_000_000, apply=False)
    assert tims["timer6"].timer_hz == 240_000_000 and u3.kernel_hz == 125_000_000   # repl values
    assert rcc.apply_clocks in m.finish_hooks
    rcc.apply_clocks()
    # reset: HSI 64 MHz, every prescaler /1, so every kernel clock, the core and SysTick are 64 MHz
    assert {t.timer_hz for t in tims.values()} == {64_000_000}
    assert (u1.kernel_hz, u3.kernel_hz) == (64_000_000, 64_000_000)
    assert m.cpu.hz == 64_000_000 and rcc.props["systick"].hz == 64_000_000
    w(m, RCC + AHB4ENR, 0x1F)                            # clock enables alone change nothing
    w(m, RCC + APB1LENR, 0x31)
    w(m, RCC + D1CFGR, 8)                                # still on HSI: HCLK 32 MHz
    assert tims["timer6"].timer_hz == 32_000_000 and u3.kernel_hz == 32_000_000
    assert m.cpu.hz == 64_000_000                        # the core clock is before HPRE
    firmware_clock_init(m)
    assert m.cpu.hz == 480_000_000 and rcc.props["systick"].hz == 480_000_000
    m.system_reset("test")
    assert tims["timer6"].timer_hz == 64_000_000 and u3.kernel_hz == 64_000_000
    assert m.cpu.hz == 64_000_000 and rcc.props["systick"].hz == 64_000_000
    assert r(m, RCC + D1CFGR) == 0 and r(m, RCC + CR) == 0x25
    firmware_clock_init(m)                               # and it works a second time
    assert tims["timer2"].timer_hz == 240_000_000


def test_hal_style_25mhz_hse_pll1_400mhz_with_fracn_and_d1cpre():
    sched, m, rcc, tims, u1, u3 = make(hse=25_000_000)
    w(m, RCC + CR, r(m, RCC + CR) | HSEON)
    w(m, RCC + PLLCKSELR, 2 | (5 << 4))                  # HSE / 5 = 5 MHz reference
    w(m, RCC + PLLCFGR, (2 << 2) | (7 << 16))            # RGE 4-8 MHz, DIVP1/Q1/R1EN
    w(m, RCC + PLL1DIVR, (160 - 1) | ((2 - 1) << 9) | ((4 - 1) << 16) | ((2 - 1) << 24))
    w(m, RCC + CR, r(m, RCC + CR) | PLL1ON)
    w(m, RCC + D1CFGR, 8 | (4 << 4))                     # HPRE /2, D1PPRE /2
    w(m, RCC + D2CFGR, (4 << 4) | (4 << 8))
    w(m, RCC + D3CFGR, 4 << 4)
    w(m, RCC + CFGR, 3)
    c = rcc.clocks()
    assert (c.sysclk, c.cpu, c.hclk, c.pclk1, c.pclk2, c.pclk4) == (
        400_000_000, 400_000_000, 200_000_000, 100_000_000, 100_000_000, 100_000_000)
    assert m.cpu.hz == 400_000_000 and rcc.props["systick"].hz == 400_000_000
    assert u3.kernel_hz == 100_000_000 and tims["timer6"].timer_hz == 200_000_000
    # FRACN: VCO = 5 MHz x (159 + 1 + 4096/8192) = 802.5 MHz, P /2 = 401.25 MHz
    w(m, RCC + PLLCFGR, (2 << 2) | (7 << 16) | 1)        # PLL1FRACEN
    w(m, RCC + PLL1DIVR + 4, 4096 << 3)                  # PLL1FRACR.FRACN1
    assert rcc.clocks().sysclk == 401_250_000
    w(m, RCC + D1CFGR, 8 | (4 << 4) | (8 << 8))          # D1CPRE /2: core and SysTick halve
    assert m.cpu.hz == 200_625_000 and rcc.props["systick"].hz == 200_625_000


def test_usart_kernel_muxes_and_lpuart1_from_d3ccipr():
    sched, m, rcc, tims, u1, u3 = make()
    lp = KernelClockUser(m, "lpuart1", 0x5800_0C00, 125_000_000)
    u2 = KernelClockUser(m, "usart2", 0x4000_4400, 125_000_000)
    for p in (lp, u2):
        m.add_peripheral(p)
    rcc.apply_clocks()
    assert lp.kernel_hz == 64_000_000 and u2.kernel_hz == 64_000_000
    w(m, RCC + D3CFGR, 5 << 4)                           # D3PPRE /4: PCLK4 16 MHz
    assert lp.kernel_hz == 16_000_000 and u2.kernel_hz == 64_000_000
    w(m, RCC + 0x58, 4)                                  # D3CCIPR.LPUART1SEL = csi_ker
    assert lp.kernel_hz == 4_000_000
    w(m, RCC + D2CCIP2R, 5 << 3)                         # USART16SEL = lse
    assert u1.kernel_hz == 32_768 and u3.kernel_hz == 64_000_000


def test_hse_without_a_board_frequency_warns_once_and_pushes_nothing_from_it():
    sched, m, rcc, tims, u1, u3 = make(hse=None)
    firmware_clock_init(m)                               # HSE -> PLL1 -> SYSCLK
    warnings = [d for _t, k, d in sched.log if k == "warning"]
    assert len(warnings) == 1 and warnings[0]["what"] == "hse_frequency_missing"
    assert "hseFrequency" in warnings[0]["message"]
    assert rcc.clocks().sysclk == 0
    assert m.cpu.hz == 64_000_000                        # the last clock that was not 0 stays
    w(m, RCC + CR, r(m, RCC + CR) & ~HSEON)
    w(m, RCC + CR, r(m, RCC + CR) | HSEON)
    assert len([k for _t, k, _d in sched.log if k == "warning"]) == 1


def test_hse_frequency_must_be_a_positive_integer():
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError, match="hseFrequency"):
        make(hse=-5)


@pytest.mark.parametrize("cause, flag", [("iwdg", IWDG1RSTF), ("sysresetreq", SFTRSTF),
                                         ("pin", 0)])
def test_reset_flags_survive_system_reset_and_rmvf_clears_them(cause, flag):
    sched, m, rcc, tims, u1, u3 = make()
    w(m, RCC + RSR, RMVF)
    assert r(m, RCC + RSR) == 0
    m.system_reset(cause)
    assert r(m, RCC + RSR) == PINRSTF | CPURSTF | flag
    m.system_reset("iwdg")
    assert r(m, RCC + RSR) == PINRSTF | CPURSTF | flag | IWDG1RSTF
    w(m, RCC + RSR, PORRSTF)                             # flags are read-only
    assert r(m, RCC + RSR) & PORRSTF == 0


def test_rstr_bit_resets_the_block():
    sched, m, rcc, tims, u1, u3 = make()
    w(m, 0x4000_1000 + 0x2C, 999)                        # TIM6 ARR
    w(m, RCC + APB1LRSTR, 1 << 4)                        # TIM6RST
    w(m, RCC + APB1LRSTR, 0)
    assert r(m, 0x4000_1000 + 0x2C) == 0xFFFF
    w(m, 0x4000_0000 + 0x2C, 5)                          # TIM2 untouched
    w(m, RCC + APB1LRSTR, 1 << 4)
    assert r(m, 0x4000_0000 + 0x2C) == 5


def test_pwr_supply_configuration_is_write_once():
    sched, m, rcc, tims, u1, u3 = make()
    assert r(m, PWR + PWR_CR3) == LDOEN | SCUEN
    assert r(m, PWR + PWR_D3CR) == (1 << 14) | VOSRDY    # VOS scale 3 at reset, ready
    w(m, PWR + PWR_CR3, LDOEN)
    assert r(m, PWR + PWR_CR3) == LDOEN                  # SCUEN cleared: supply locked
    w(m, PWR + PWR_CR3, BYPASS | (1 << 24))              # supply bits ignored now, USB33DEN taken
    assert r(m, PWR + PWR_CR3) == LDOEN | (1 << 24) | (1 << 26)


def test_flash_acr_reads_back_and_has_a_bank2_alias():
    sched, m, rcc, tims, u1, u3 = make()
    assert r(m, FLASH) == 0x37
    w(m, FLASH + 0x100, 0xFFFF_FF12)                     # bank-2 view; reserved bits stay 0
    assert r(m, FLASH) == 0x12 and r(m, FLASH + 0x100) == 0x12
    assert r(m, FLASH + 0x0C) == 0x31                    # CR1 register-only, reset value


def test_platform_builder_picks_pwr_by_type_and_address():
    assert REGISTRY.resolve("Python.PythonPeripheral", PWR, {}) is STM32H7_PWR
    assert REGISTRY.resolve("Python.PythonPeripheral", 0x6000_0000, {}) is None


def test_repl_entries_construct_with_their_properties():
    """Every entry of the real platform file that one of these models claims builds from its own
    properties (unknown property names would be a ConfigError in the builder)."""
    platform = load_platform(ROOT / "platforms" / "stm32h743.repl")
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    mine = {"Miscellaneous.STM32H7_RCC", "Python.PythonPeripheral", "MTD.STM32H7_FlashController",
            "Timers.STM32_Timer", "GPIOPort.STM32_GPIOPort", "Timers.STM32_IndependentWatchdog"}
    built = {}
    for e in platform:
        if e.type not in mine:
            continue
        reg = e.registrations[0]
        props = {k: (None if isinstance(p.value, Ref) else p.value) for k, p in e.props.items()}
        cls = REGISTRY.resolve(e.type, reg.address, props)
        assert cls is not None, e.name
        assert set(props) <= set(cls.properties), (e.name, set(props) - set(cls.properties))
        size = reg.size if reg.size is not None else props.get("size")
        built[e.name] = cls(m, e.name, reg.address, size, props)
        m.add_peripheral(built[e.name])
    assert type(built["pwr"]) is STM32H7_PWR
    assert built["timer2"].width_mask == 0xFFFF_FFFF and built["timer6"].width_mask == 0xFFFF
    assert built["timer1"].timer_hz == 240_000_000 and built["timer1"].advanced
    assert built["iwdg1"].lsi_hz == 32_000 and built["iwdg1"].divider() == 4
    assert built["gpioPortB"].regs.MODER.value == 0xFFFF_FEBF
