"""STM32H7 system configuration controller (SYSCFG, 0x5800_0400; RM0433 "SYSCFG").

Why it is here: a Cube-generated H743 image touches it before ``main``. SystemClock_Config reads
and writes PWRCR.ODEN (voltage scale 0 is VOS=11 plus ODEN=1, stm32h7-registers.md s.2.3), and
HAL_EnableCompensationCell sets CCCSR.EN and polls CCCSR.READY. Renode has no H7 SYSCFG model
(its ``Miscellaneous.STM32_SYSCFG`` is the F4 block with another layout), so the builtin overlay
(platforms/stm32h743.builtin.repl) declares this one under a duohil type name.

Behaviour:
  - CCCSR.READY follows CCCSR.EN at once (the compensation cell is "ready" immediately, in the
    spirit of the RCC's xRDY = xON recipe); CCVR reads NCV/PCV = 0 (unverified: silicon reads
    the measured codes once READY).
  - Stored only (read back what was written, no effect on any other model): PMCR (I2C Fm+ drive,
    BOOSTE/BOOSTVDDSEL, EPIS, the PA0/PA1/PC2/PC3 analog switches), EXTICR1..4 (EXTI line to port
    routing: there is no EXTI model), CFGR (lock bits), CCCR (software compensation codes),
    PWRCR.ODEN (the PWR model's VOSRDY is 1 whatever the scale).
  - Read-only, reading 0: PKGR (package code) and UR0..UR17 (option-byte mirrors). The values a
    real part reports depend on its package and option bytes (not modelled).
Reset values: PMCR 0x0F00_0000 (the four analog switches open; unverified), every other
register 0.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, Field, Register


class STM32H7_SYSCFG(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Miscellaneous.STM32H7_SYSCFG",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        r = self.regs
        r.define(0x04, "PMCR", fields=[
            Field("I2C1FMP", 0), Field("I2C2FMP", 1), Field("I2C3FMP", 2), Field("I2C4FMP", 3),
            Field("PB6FMP", 4), Field("PB7FMP", 5), Field("PB8FMP", 6), Field("PB9FMP", 7),
            Field("BOOSTE", 8), Field("BOOSTVDDSEL", 9), Field("EPIS", 21, 3),
            Field("PA0SO", 24, reset=1), Field("PA1SO", 25, reset=1), Field("PC2SO", 26, reset=1),
            Field("PC3SO", 27, reset=1)])
        for i in range(4):
            r.define(0x08 + 4 * i, f"EXTICR{i + 1}",
                     fields=[Field(f"EXTI{4 * i + k}", 4 * k, 4) for k in range(4)])
        r.define(0x18, "CFGR", fields=[
            Field("PVDL", 2), Field("FLASHL", 3), Field("CM7L", 6), Field("SRAM2L", 7),
            Field("SRAM1L", 8), Field("SRAM3L", 9), Field("SRAM4L", 10), Field("ITCML", 11),
            Field("DTCML", 12), Field("AXISRAML", 13), Field("BKRAML", 14), Field("ITCML2", 15)])
        r.define(0x20, "CCCSR", fields=[Field("EN", 0), Field("CS", 1),
                                        Field("READY", 8, access=RO), Field("HSLV", 16)],
                 on_write=self._cccsr_written)
        r.define(0x24, "CCVR", access=RO, fields=[Field("NCV", 0, 4), Field("PCV", 4, 4)])
        r.define(0x28, "CCCR", fields=[Field("NCC", 0, 4), Field("PCC", 4, 4)])
        r.define(0x2C, "PWRCR", fields=[Field("ODEN", 0)])
        r.define(0x124, "PKGR", access=RO, fields=[Field("PKG", 0, 4)])
        for i in range(18):
            r.define(0x300 + 4 * i, f"UR{i}", access=RO)

    def _cccsr_written(self, reg: Register, old: int, data: int) -> None:
        reg.set(READY=reg.EN)
