"""STM32H7 power control (PWR, 0x5802_4800).

Renode has no PWR model: the repl declares a ``Python.PythonPeripheral`` stub whose script returns
the ready bits. The builtin engine replaces that stub with this model, chosen by type *and* address:

    Selection rule (platform builder): a model listing a generic Renode type such as
    ``Python.PythonPeripheral`` in ``renode_types`` is used for an entry of that type only when its
    classmethod ``matches(renode_type, base, props)`` returns True (platform.py,
    ``ModelRegistry.resolve``). Models without ``matches`` take every entry of their types. A
    generic-type entry that no model matches is a ConfigError naming the file and line (a Python
    stub we have not re-modelled is never silently ignored).

``STM32H7_PWR.matches`` takes ``Python.PythonPeripheral`` at 0x5802_4800 only. The stub's own
properties (``size``, ``initable``, ``script``, ``filename``) are accepted and ignored: the script
is Renode's approximation of exactly this block.

Behaviour (stm32h7-registers.md s.2.3, "emulator recipe"):
  - D3CR.VOSRDY and CSR1.ACTVOSRDY read 1 (a voltage scale is reached at once); CSR1.ACTVOS = D3CR.VOS.
  - CR3 supply configuration (LDOEN, BYPASS) is write-once: the first write clears SCUEN and
    later writes leave LDOEN/BYPASS as they are, so HAL_PWREx_ConfigSupply sees a locked supply
    the second time round, as on silicon. CR3.USB33RDY = CR3.USB33DEN.
  - Everything else is register-only (no low-power modes, no PVD/AVD, no wake-up pins).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, Field, Register

PWR_BASE = 0x5802_4800


class STM32H7_PWR(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Python.PythonPeripheral",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"size": 0x400, "initable": True, "script": "",
                                            "filename": ""}

    @classmethod
    def matches(cls, renode_type: str, base: int | None, props: dict[str, Any]) -> bool:
        """True for the repl entry this model stands for: the PWR stub at 0x5802_4800."""
        return renode_type in cls.renode_types and base == PWR_BASE

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        r = self.regs
        r.define(0x00, "CR1", reset=0xF000_C000, fields=[
            Field("LPDS", 0), Field("PVDE", 4), Field("PLS", 5, 3), Field("DBP", 8),
            Field("FLPS", 9), Field("SVOS", 14, 2), Field("AVDEN", 16), Field("ALS", 17, 2)])
        r.define(0x04, "CSR1", access=RO, fields=[
            Field("PVDO", 4), Field("ACTVOSRDY", 13), Field("ACTVOS", 14, 2), Field("AVDO", 16)],
            on_read=self._csr1_read)
        r.define(0x08, "CR2", fields=[Field("BREN", 0), Field("MONEN", 4),
                                      Field("BRRDY", 16, access=RO)])
        r.define(0x0C, "CR3", reset=0x0000_0006, fields=[
            Field("BYPASS", 0), Field("LDOEN", 1), Field("SCUEN", 2), Field("VBE", 8),
            Field("VBRS", 9), Field("USB33DEN", 24), Field("USBREGEN", 25),
            Field("USB33RDY", 26, access=RO)], on_write=self._cr3_written)
        r.define(0x10, "CPUCR")
        r.define(0x18, "D3CR", reset=0x0000_4000, fields=[Field("VOSRDY", 13, access=RO),
                                                          Field("VOS", 14, 2)],
                 on_read=self._d3cr_read)
        r.define(0x20, "WKUPCR")
        r.define(0x24, "WKUPFR", access=RO)
        r.define(0x28, "WKUPEPR")

    def _csr1_read(self, reg: Register) -> int:
        reg.set(ACTVOSRDY=1, ACTVOS=self.regs.D3CR.VOS)
        return reg.value

    def _d3cr_read(self, reg: Register) -> int:
        reg.set(VOSRDY=1)
        return reg.value

    def _cr3_written(self, reg: Register, old: int, data: int) -> None:
        locked_mask = 0b11                   # BYPASS | LDOEN
        if not (old >> 2) & 1:               # SCUEN already cleared: supply config is locked
            reg.value = (reg.value & ~locked_mask) | (old & locked_mask)
        reg.set(SCUEN=0, USB33RDY=reg.USB33DEN)
