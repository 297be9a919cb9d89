"""STM32H7 reset and clock control (RCC, 0x5802_4400), Renode type ``Miscellaneous.STM32H7_RCC``.

What clock-init code needs to proceed, and the clock tree it programs (stm32h7-registers.md s.2):
  - ready flags follow their enables at once (the "emulator recipe"): ``CR.xRDY = CR.xON`` for
    HSI, CSI, HSI48, HSE and PLL1..3, ``CSR.LSIRDY = CSR.LSION``, ``BDCR.LSERDY = BDCR.LSEON``;
    ``CFGR.SWS = CFGR.SW``; CR reads HSION=HSIRDY=HSIDIVF=1 after reset (0x25, as Renode).
  - RSR keeps its flags across system resets (only RMVF or a power-on clears them). The model is
    told the cause by ``machine.system_reset(cause)`` (a reset hook): a cause containing "iwdg"
    sets IWDG1RSTF, "wwdg" WWDG1RSTF, "sysreset"/"soft" SFTRSTF; every system reset also sets
    PINRSTF (the reset drives NRST low) and CPURSTF (unverified against RM0433's table).
  - Clock tree: SYSCLK from CFGR.SW (HSI 64 MHz / HSIDIV, CSI 4 MHz, HSE ``hseFrequency``, PLL1 P),
    PLLs from PLLCKSELR (PLLSRC, DIVMx), PLLCFGR (PLLxFRACEN, DIVxyEN), PLLxDIVR (DIVN/P/Q/R) and
    PLLxFRACR (FRACN: VCO = ref / DIVM x (DIVN + 1 + FRACN / 8192)), then D1CPRE (core, SysTick),
    HPRE (AHB), D1PPRE/D2PPRE1/D2PPRE2/D3PPRE (APB3/1/2/4) and the timer rule (APB prescaler /1:
    f_tim = PCLK; otherwise 2 x PCLK with TIMPRE=0, with TIMPRE=1 4 x PCLK when the APB prescaler
    is /8 or more, else HCLK; the x4 rule is unverified). USART kernel clocks from
    D2CCIP2R.USART16SEL / USART234578SEL and D3CCIPR.LPUART1SEL (0 its PCLK, 1 pll2_q, 2 pll3_q,
    3 hsi_ker, 4 csi_ker, 5 lse). ``clocks()`` returns it at any time.
  - HSE is a board property: ``hseFrequency`` in the platform (Renode's property of the same name).
    A firmware that turns HSE on (or selects it) while the platform gives no frequency gets one
    ``warning`` event; HSE then counts as 0 Hz and nothing derived from it is pushed.

Clock push: the RCC is the clock authority of every consumer it can find. Once the machine is
built (``machine.finish_hooks``), after every system reset and after every RCC write that changes
the tree, the model pushes:
  - ``timer_hz`` of the timers on APB1 (0x4000_xxxx) and APB2 (0x4001_xxxx);
  - ``kernel_hz`` of each USART/UART/LPUART (``USART_KERNEL``: which mux feeds which base);
  - the core clock (sys_ck / D1CPRE) to the SysTick (``set_core_clock`` of the NVIC given as
    ``systick: nvic``, as Renode's RCC does) and to the CPU (``set_core_clock``: the instruction
    rate follows the core clock, capped by the CPU's ``PerformanceInMips``).
So the repl's ``frequency`` / ``systickFrequency`` values count only for a platform without an RCC
(Renode's USART model never gets its clock from the RCC, renode.md s.1.2: there the repl value is
what the firmware must match).

Enable bits (``*ENR``) are plain registers: a disabled block still answers on the bus (Renode
switches peripherals off). Setting a bit in a ``*RSTR`` register resets the mapped block
(``RESET_LINES``) and re-pushes the current clocks to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from duohil.errors import ConfigError
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, Field, Register

HSI_HZ = 64_000_000
CSI_HZ = 4_000_000
HSI48_HZ = 48_000_000
LSE_HZ = 32_768
LSI_HZ = 32_000

APB1_RANGE = (0x4000_0000, 0x4001_0000)     # D2 APB1 (TIM2..7, USART2/3, UART4/5/7/8)
APB2_RANGE = (0x4001_0000, 0x4002_0000)     # D2 APB2 (TIM1/8, USART1/6)
#: USART/UART/LPUART base -> the ClockTree field of its kernel clock (RM0433 kernel clock muxes)
USART_KERNEL: dict[int, str] = {
    0x4001_1000: "usart16_ker", 0x4001_1400: "usart16_ker",                 # USART1, USART6
    0x4000_4400: "usart234578_ker", 0x4000_4800: "usart234578_ker",         # USART2, USART3
    0x4000_4C00: "usart234578_ker", 0x4000_5000: "usart234578_ker",         # UART4, UART5
    0x4000_7800: "usart234578_ker", 0x4000_7C00: "usart234578_ker",         # UART7, UART8
    0x5800_0C00: "lpuart1_ker",                                             # LPUART1 (D3)
}

# RSR bits (RM names)
RSR_RMVF, RSR_CPURSTF, RSR_D1RSTF, RSR_D2RSTF = 16, 17, 19, 20
RSR_BORRSTF, RSR_PINRSTF, RSR_PORRSTF, RSR_SFTRSTF = 21, 22, 23, 24
RSR_IWDG1RSTF, RSR_WWDG1RSTF, RSR_LPWRRSTF = 26, 28, 30
RSR_POWER_ON = sum(1 << b for b in (RSR_CPURSTF, RSR_D1RSTF, RSR_D2RSTF, RSR_BORRSTF,
                                     RSR_PINRSTF, RSR_PORRSTF))

# (RSTR register, bit) -> base address of the block held in reset (RM0433 names in comments)
RESET_LINES: dict[tuple[str, int], int] = {
    **{("AHB4RSTR", n): 0x5802_0000 + 0x400 * n for n in range(11)},     # GPIOARST..GPIOKRST
    ("AHB1RSTR", 0): 0x4002_0000,      # DMA1RST
    ("AHB1RSTR", 1): 0x4002_0400,      # DMA2RST
    ("APB1LRSTR", 0): 0x4000_0000,     # TIM2RST
    ("APB1LRSTR", 4): 0x4000_1000,     # TIM6RST
    ("APB1LRSTR", 5): 0x4000_1400,     # TIM7RST
    ("APB1LRSTR", 17): 0x4000_4400,    # USART2RST
    ("APB1LRSTR", 18): 0x4000_4800,    # USART3RST
    ("APB1LRSTR", 19): 0x4000_4C00,    # UART4RST
    ("APB1LRSTR", 20): 0x4000_5000,    # UART5RST
    ("APB1LRSTR", 30): 0x4000_7800,    # UART7RST
    ("APB1LRSTR", 31): 0x4000_7C00,    # UART8RST
    ("APB2RSTR", 0): 0x4001_0000,      # TIM1RST
    ("APB2RSTR", 4): 0x4001_1000,      # USART1RST
    ("APB2RSTR", 5): 0x4001_1400,      # USART6RST
    ("APB4RSTR", 1): 0x5800_0400,      # SYSCFGRST
    ("APB4RSTR", 3): 0x5800_0C00,      # LPUART1RST
    ("AHB3RSTR", 12): 0x5200_4000,     # FMCRST
}

_HPRE = {8: 2, 9: 4, 10: 8, 11: 16, 12: 64, 13: 128, 14: 256, 15: 512}
_PPRE = {4: 2, 5: 4, 6: 8, 7: 16}


@dataclass(frozen=True)
class ClockTree:
    """Frequencies in Hz of the clocks consumers care about."""

    sysclk: int
    cpu: int            # sys_ck / D1CPRE (the core and SysTick)
    hclk: int           # AHB (rcc_hclk1..4)
    pclk1: int          # APB1 (D2PPRE1)
    pclk2: int          # APB2 (D2PPRE2)
    tim1_ker: int       # timers on APB1 (TIM2..7, 12..14)
    tim2_ker: int       # timers on APB2 (TIM1, 8, 15..17)
    usart234578_ker: int
    usart16_ker: int
    pclk3: int = 0      # APB3 (D1PPRE)
    pclk4: int = 0      # APB4 (D3PPRE)
    lpuart1_ker: int = 0


def _pre(table: dict[int, int], value: int) -> int:
    return table.get(value, 1)


class STM32H7_RCC(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Miscellaneous.STM32H7_RCC",)
    default_size: ClassVar[int] = 0x400
    # ``systick``: the NVIC whose SysTick counts the core clock (Renode's RCC pushes into it too).
    # ``hseFrequency``: the board's HSE crystal/oscillator; None = the board has none declared.
    properties: ClassVar[dict[str, Any]] = {"hseFrequency": None, "lseFrequency": LSE_HZ,
                                            "systick": None}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        hse = self.props["hseFrequency"]
        if hse is not None and (not isinstance(hse, int) or isinstance(hse, bool) or hse <= 0):
            raise ConfigError(f"{name}: hseFrequency must be a positive integer (Hz), got {hse!r}",
                              field="hseFrequency", expected="e.g. hseFrequency: 25000000")
        self._hse_warned = False
        r = self.regs
        w = self._tree_write
        r.define(0x00, "CR", fields=[
            Field("HSION", 0, reset=1), Field("HSIKERON", 1), Field("HSIRDY", 2, access=RO, reset=1),
            Field("HSIDIV", 3, 2), Field("HSIDIVF", 5, access=RO, reset=1), Field("CSION", 7),
            Field("CSIRDY", 8, access=RO), Field("CSIKERON", 9), Field("HSI48ON", 12),
            Field("HSI48RDY", 13, access=RO), Field("D1CKRDY", 14, access=RO),
            Field("D2CKRDY", 15, access=RO), Field("HSEON", 16), Field("HSERDY", 17, access=RO),
            Field("HSEBYP", 18), Field("CSSHSEON", 19), Field("PLL1ON", 24),
            Field("PLL1RDY", 25, access=RO), Field("PLL2ON", 26), Field("PLL2RDY", 27, access=RO),
            Field("PLL3ON", 28), Field("PLL3RDY", 29, access=RO)], on_write=self._cr_written)
        r.define(0x04, "HSICFGR", reset=0x4000_0000)     # HSITRIM 0x40 [30:24] (register only)
        r.define(0x08, "CRRCR", access=RO)
        r.define(0x0C, "CSICFGR", reset=0x2000_0000)
        r.define(0x10, "CFGR", fields=[
            Field("SW", 0, 3), Field("SWS", 3, 3, access=RO), Field("STOPWUCK", 6),
            Field("STOPKERWUCK", 7), Field("RTCPRE", 8, 6), Field("HRTIMSEL", 14),
            Field("TIMPRE", 15), Field("MCO1PRE", 18, 4), Field("MCO1", 22, 3),
            Field("MCO2PRE", 25, 4), Field("MCO2", 29, 3)], on_write=self._cfgr_written)
        r.define(0x18, "D1CFGR", fields=[Field("HPRE", 0, 4), Field("D1PPRE", 4, 3),
                                         Field("D1CPRE", 8, 4)], on_write=w)
        r.define(0x1C, "D2CFGR", fields=[Field("D2PPRE1", 4, 3), Field("D2PPRE2", 8, 3)], on_write=w)
        r.define(0x20, "D3CFGR", fields=[Field("D3PPRE", 4, 3)], on_write=w)
        r.define(0x28, "PLLCKSELR", reset=0x0202_0200, fields=[
            Field("PLLSRC", 0, 2), Field("DIVM1", 4, 6), Field("DIVM2", 12, 6), Field("DIVM3", 20, 6)],
            on_write=w)
        r.define(0x2C, "PLLCFGR", reset=0x01FF_0000, fields=[
            Field("PLL1FRACEN", 0), Field("PLL1VCOSEL", 1), Field("PLL1RGE", 2, 2),
            Field("PLL2FRACEN", 4), Field("PLL2VCOSEL", 5), Field("PLL2RGE", 6, 2),
            Field("PLL3FRACEN", 8), Field("PLL3VCOSEL", 9), Field("PLL3RGE", 10, 2),
            Field("DIVP1EN", 16), Field("DIVQ1EN", 17), Field("DIVR1EN", 18),
            Field("DIVP2EN", 19), Field("DIVQ2EN", 20), Field("DIVR2EN", 21),
            Field("DIVP3EN", 22), Field("DIVQ3EN", 23), Field("DIVR3EN", 24)], on_write=w)
        for n, off in ((1, 0x30), (2, 0x38), (3, 0x40)):
            r.define(off, f"PLL{n}DIVR", reset=0x0101_0280, fields=[
                Field(f"DIVN{n}", 0, 9), Field(f"DIVP{n}", 9, 7), Field(f"DIVQ{n}", 16, 7),
                Field(f"DIVR{n}", 24, 7)], on_write=w)
            r.define(off + 4, f"PLL{n}FRACR", fields=[Field(f"FRACN{n}", 3, 13)], on_write=w)
        r.define(0x4C, "D1CCIPR")
        r.define(0x50, "D2CCIP1R")
        r.define(0x54, "D2CCIP2R", fields=[Field("USART234578SEL", 0, 3), Field("USART16SEL", 3, 3)],
                 on_write=w)
        r.define(0x58, "D3CCIPR", fields=[Field("LPUART1SEL", 0, 3)], on_write=w)
        r.define(0x60, "CIER")
        r.define(0x64, "CIFR", access=RO)        # no clock-security/ready interrupts are raised
        r.define(0x68, "CICR")                   # write-1-to-clear of CIFR: nothing to clear
        r.define(0x70, "BDCR", fields=[Field("LSEON", 0), Field("LSERDY", 1, access=RO),
                                       Field("LSEBYP", 2), Field("RTCSEL", 8, 2), Field("RTCEN", 15),
                                       Field("BDRST", 16)], on_write=self._bdcr_written)
        r.define(0x74, "CSR", fields=[Field("LSION", 0), Field("LSIRDY", 1, access=RO)],
                 on_write=self._csr_written)
        for off, name in ((0x7C, "AHB3RSTR"), (0x80, "AHB1RSTR"), (0x84, "AHB2RSTR"),
                          (0x88, "AHB4RSTR"), (0x8C, "APB3RSTR"), (0x90, "APB1LRSTR"),
                          (0x94, "APB1HRSTR"), (0x98, "APB2RSTR"), (0x9C, "APB4RSTR")):
            r.define(off, name, on_write=self._rstr_written)
        r.define(0xD0, "RSR", reset=RSR_POWER_ON, fields=[
            Field("RMVF", 16), Field("CPURSTF", 17, access=RO), Field("D1RSTF", 19, access=RO),
            Field("D2RSTF", 20, access=RO), Field("BORRSTF", 21, access=RO),
            Field("PINRSTF", 22, access=RO), Field("PORRSTF", 23, access=RO),
            Field("SFTRSTF", 24, access=RO), Field("IWDG1RSTF", 26, access=RO),
            Field("WWDG1RSTF", 28, access=RO), Field("LPWRRSTF", 30, access=RO)],
            on_write=self._rsr_written)
        r.define(0xD4, "AHB3ENR", fields=[Field("MDMAEN", 0)])
        r.define(0xD8, "AHB1ENR", fields=[Field("DMA1EN", 0), Field("DMA2EN", 1)])
        r.define(0xDC, "AHB2ENR", fields=[Field("SRAM1EN", 29), Field("SRAM2EN", 30),
                                          Field("SRAM3EN", 31)])
        r.define(0xE0, "AHB4ENR", fields=[*(Field(f"GPIO{chr(65 + n)}EN", n) for n in range(11)),
                                          Field("BDMAEN", 21), Field("BKPRAMEN", 28)])
        r.define(0xE4, "APB3ENR")
        r.define(0xE8, "APB1LENR", fields=[Field("TIM2EN", 0), Field("TIM6EN", 4), Field("TIM7EN", 5),
                                           Field("USART2EN", 17), Field("USART3EN", 18),
                                           Field("UART4EN", 19), Field("UART5EN", 20),
                                           Field("UART7EN", 30), Field("UART8EN", 31)])
        r.define(0xEC, "APB1HENR")
        r.define(0xF0, "APB2ENR", fields=[Field("TIM1EN", 0), Field("USART1EN", 4),
                                          Field("USART6EN", 5)])
        r.define(0xF4, "APB4ENR", fields=[Field("SYSCFGEN", 1), Field("LPUART1EN", 3)])
        for i, name in enumerate(("AHB3LPENR", "AHB1LPENR", "AHB2LPENR", "AHB4LPENR", "APB3LPENR",
                                  "APB1LLPENR", "APB1HLPENR", "APB2LPENR", "APB4LPENR")):
            r.define(0xFC + 4 * i, name)
        self._pushed: ClockTree | None = None     # the tree consumers last received
        machine.reset_hooks.append(self._system_reset_hook)
        hooks = getattr(machine, "finish_hooks", None)
        if hooks is not None:
            hooks.append(self.apply_clocks)

    # -- ready flags ------------------------------------------------------------------------------
    def _cr_written(self, reg: Register, old: int, data: int) -> None:
        if reg.HSEON and not old & (1 << 16):
            self._hse_hz()                  # warns once when the board has no HSE frequency
        reg.set(HSIRDY=reg.HSION, CSIRDY=reg.CSION, HSI48RDY=reg.HSI48ON, HSERDY=reg.HSEON,
                PLL1RDY=reg.PLL1ON, PLL2RDY=reg.PLL2ON, PLL3RDY=reg.PLL3ON, HSIDIVF=1)
        self._tree_write(reg, old, data)

    def _cfgr_written(self, reg: Register, old: int, data: int) -> None:
        reg.set(SWS=reg.SW)
        self._tree_write(reg, old, data)

    def _bdcr_written(self, reg: Register, old: int, data: int) -> None:
        reg.set(LSERDY=reg.LSEON)

    def _csr_written(self, reg: Register, old: int, data: int) -> None:
        reg.set(LSIRDY=reg.LSION)

    def _rsr_written(self, reg: Register, old: int, data: int) -> None:
        if reg.RMVF:
            reg.value = 0               # RMVF clears every flag and reads back 0

    def _rstr_written(self, reg: Register, old: int, data: int) -> None:
        rising = reg.value & ~old
        for bit in range(32):
            if rising >> bit & 1:
                base = RESET_LINES.get((reg.name, bit))
                p = self.machine.peripheral_at(base) if base is not None else None
                if p is not None and p is not self:
                    p.reset()
                    self._push_to(p, self.clocks())

    # -- reset --------------------------------------------------------------------------------------
    def reset(self) -> None:
        rsr = self.regs.RSR.value
        super().reset()
        self.regs.RSR.value = rsr       # reset flags survive a system reset

    def _system_reset_hook(self, cause: str) -> None:
        c = cause.lower()
        flags = (1 << RSR_PINRSTF) | (1 << RSR_CPURSTF)
        if "iwdg" in c:
            flags |= 1 << RSR_IWDG1RSTF
        elif "wwdg" in c:
            flags |= 1 << RSR_WWDG1RSTF
        elif "sysreset" in c or "soft" in c:
            flags |= 1 << RSR_SFTRSTF
        self.regs.RSR.value |= flags
        self._pushed = None
        self.apply_clocks()             # consumers reset to their repl clocks: back to the tree

    # -- the clock tree -------------------------------------------------------------------------------
    def _pll_vco(self, n: int) -> float:
        r = self.regs
        src = r.PLLCKSELR.PLLSRC
        src_hz = {0: self._hsi_hz(), 1: CSI_HZ, 2: self._hse_hz()}.get(src, 0)
        divm = r.PLLCKSELR.get(f"DIVM{n}")
        if not divm or not getattr(r.CR, f"PLL{n}ON"):
            return 0.0
        div = getattr(r, f"PLL{n}DIVR")
        frac = getattr(r, f"PLL{n}FRACR").get(f"FRACN{n}") if r.PLLCFGR.get(f"PLL{n}FRACEN") else 0
        return src_hz / divm * (div.get(f"DIVN{n}") + 1 + frac / 8192)

    def _pll_out(self, n: int, out: str) -> int:
        vco = self._pll_vco(n)
        if not self.regs.PLLCFGR.get(f"DIV{out}{n}EN"):
            return 0
        return int(vco / (getattr(self.regs, f"PLL{n}DIVR").get(f"DIV{out}{n}") + 1))

    def _hsi_hz(self) -> int:
        return HSI_HZ >> self.regs.CR.HSIDIV

    def _hse_hz(self) -> int:
        """The board's HSE, or 0 (with one warning per run) when the platform declares none."""
        hse = self.props["hseFrequency"]
        if hse:
            return int(hse)
        if not self._hse_warned:
            self._hse_warned = True
            self.machine.record("warning", source=self.name, what="hse_frequency_missing",
                                message=f"{self.name}: the firmware uses HSE but the platform gives "
                                        f"no hseFrequency: HSE counts as 0 Hz and clocks derived "
                                        f"from it are not applied (add `hseFrequency: <Hz>` to the "
                                        f"RCC entry of {self.machine.platform})")
        return 0

    def clocks(self) -> ClockTree:
        r = self.regs
        sw = r.CFGR.SW
        sysclk = {0: self._hsi_hz(), 1: CSI_HZ, 2: self._hse_hz() if sw == 2 else 0,
                  3: self._pll_out(1, "P")}.get(sw, 0)
        cpu = sysclk // _pre(_HPRE, r.D1CFGR.D1CPRE)
        hclk = cpu // _pre(_HPRE, r.D1CFGR.HPRE)
        ppre1, ppre2 = _pre(_PPRE, r.D2CFGR.D2PPRE1), _pre(_PPRE, r.D2CFGR.D2PPRE2)
        pclk1, pclk2 = hclk // ppre1, hclk // ppre2
        pclk3 = hclk // _pre(_PPRE, r.D1CFGR.D1PPRE)
        pclk4 = hclk // _pre(_PPRE, r.D3CFGR.D3PPRE)

        def tim(pclk: int, ppre: int) -> int:
            if ppre == 1:
                return pclk
            if not r.CFGR.TIMPRE:
                return 2 * pclk
            return 4 * pclk if ppre >= 8 else hclk

        def usart(sel: int, pclk: int) -> int:
            return {0: pclk, 1: self._pll_out(2, "Q"), 2: self._pll_out(3, "Q"),
                    3: self._hsi_hz(), 4: CSI_HZ, 5: int(self.props["lseFrequency"])}.get(sel, 0)

        return ClockTree(sysclk=sysclk, cpu=cpu, hclk=hclk, pclk1=pclk1, pclk2=pclk2,
                         tim1_ker=tim(pclk1, ppre1), tim2_ker=tim(pclk2, ppre2),
                         usart234578_ker=usart(r.D2CCIP2R.USART234578SEL, pclk1),
                         usart16_ker=usart(r.D2CCIP2R.USART16SEL, pclk2),
                         pclk3=pclk3, pclk4=pclk4,
                         lpuart1_ker=usart(r.D3CCIPR.LPUART1SEL, pclk4))

    def _tree_write(self, reg: Register, old: int, data: int) -> None:
        tree = self.clocks()
        if tree != self._pushed:
            self._push_all(tree)

    def apply_clocks(self) -> None:
        """Push the current tree to every consumer (machine built, system reset)."""
        self._push_all(self.clocks())

    def _push_all(self, tree: ClockTree) -> None:
        self._pushed = tree
        for p in list(self.machine.peripherals.values()):
            self._push_to(p, tree)
        # A clock of 0 (its source off or undeclared) is never pushed: the consumer keeps its
        # last clock rather than dividing by zero; real silicon would stop it.
        if tree.cpu:
            nvic = self.props.get("systick")
            if nvic is not None and hasattr(nvic, "set_core_clock"):
                nvic.set_core_clock(tree.cpu)
            cpu = self.machine.cpu
            if cpu is not None and hasattr(cpu, "set_core_clock"):
                cpu.set_core_clock(tree.cpu)

    @staticmethod
    def _push_to(p: Peripheral, tree: ClockTree) -> None:
        base = p.base
        if base is None:
            return
        if hasattr(p, "kernel_hz"):
            field = USART_KERNEL.get(base)
            hz = getattr(tree, field) if field else 0
            if hz:
                p.kernel_hz = hz
        if hasattr(p, "timer_hz"):
            if APB1_RANGE[0] <= base < APB1_RANGE[1]:
                hz = tree.tim1_ker
            elif APB2_RANGE[0] <= base < APB2_RANGE[1]:
                hz = tree.tim2_ker
            else:
                return
            if hz:
                p.timer_hz = hz
