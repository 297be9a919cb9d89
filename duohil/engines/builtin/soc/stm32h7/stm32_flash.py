"""STM32H7 embedded-flash interface (0x5200_2000), Renode type ``MTD.STM32H7_FlashController``.

Only what clock init depends on behaves: ``ACR.LATENCY`` and ``ACR.WRHIGHFREQ`` read back what was
written (firmware polls the read-back and hangs on a mismatch, stm32h7-registers.md s.2.3); the
bank-2 copy of ACR at +0x100 is the same register. Everything else (keys, CR/SR/CCR of both
banks, option bytes, CRC, ECC) is register-only: flash is never programmed or erased through this
model, the locks are not enforced and no interrupt is raised (the repl's ``-> nvic@4`` stays low).
The ``flash1``/``flash2`` properties (the two bank memories) are accepted for Renode compatibility
and unused.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, Field

ACR_ALIAS = 0x100


class STM32H7_FlashController(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("MTD.STM32H7_FlashController",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"flash1": None, "flash2": None}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        r = self.regs
        r.define(0x000, "ACR", reset=0x37, fields=[Field("LATENCY", 0, 4), Field("WRHIGHFREQ", 4, 2),
                                                  Field("RESERVED", 6, 26, access=RO)])
        for bank, off in ((1, 0x000), (2, 0x100)):
            r.define(off + 0x04, f"KEYR{bank}")
            r.define(off + 0x0C, f"CR{bank}", reset=0x31, fields=[
                Field(f"LOCK{bank}", 0), Field(f"PG{bank}", 1), Field(f"SER{bank}", 2),
                Field(f"BER{bank}", 3), Field(f"PSIZE{bank}", 4, 2), Field(f"FW{bank}", 6),
                Field(f"START{bank}", 7), Field(f"SNB{bank}", 8, 3)])
            r.define(off + 0x10, f"SR{bank}", access=RO)
            r.define(off + 0x14, f"CCR{bank}")
            r.define(off + 0x28, f"PRAR_CUR{bank}", access=RO)
            r.define(off + 0x2C, f"PRAR_PRG{bank}")
            r.define(off + 0x30, f"SCAR_CUR{bank}", access=RO)
            r.define(off + 0x34, f"SCAR_PRG{bank}")
            r.define(off + 0x38, f"WPSN_CUR{bank}R", access=RO, reset=0xFF)
            r.define(off + 0x3C, f"WPSN_PRG{bank}R", reset=0xFF)
            r.define(off + 0x50, f"CRCCR{bank}")
            r.define(off + 0x54, f"CRCSADD{bank}R")
            r.define(off + 0x58, f"CRCEADD{bank}R")
            r.define(off + 0x60, f"ECC_FA{bank}R", access=RO)
        r.define(0x08, "OPTKEYR")
        r.define(0x18, "OPTCR", reset=0x1)               # OPTLOCK
        r.define(0x1C, "OPTSR_CUR", access=RO)
        r.define(0x20, "OPTSR_PRG")
        r.define(0x24, "OPTCCR")
        r.define(0x40, "BOOT_CURR", access=RO, reset=0x1FF0_0800)   # BOOT_ADD0 0x0800_0000 >> 16
        r.define(0x44, "BOOT_PRGR", reset=0x1FF0_0800)
        r.define(0x5C, "CRCDATAR", access=RO)

    # ACR at +0x100 is the same register as ACR (the bank-2 view of one register).
    def read(self, offset: int, size: int) -> int:
        return super().read(offset - ACR_ALIAS if ACR_ALIAS <= offset < ACR_ALIAS + 4 else offset,
                            size)

    def write(self, offset: int, size: int, value: int) -> None:
        super().write(offset - ACR_ALIAS if ACR_ALIAS <= offset < ACR_ALIAS + 4 else offset,
                      size, value)

    @property
    def latency(self) -> int:
        """Wait states as programmed (for reports; the model charges no wait states)."""
        return self.regs.ACR.LATENCY
