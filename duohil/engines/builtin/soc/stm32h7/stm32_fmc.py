"""STM32H7 flexible memory controller, control registers (FMC, 0x5200_4000; RM0433 "FMC").

Why it is here: the CMSIS SystemInit of a Cube-generated H743 image writes FMC_BCR1 (0x30D2 into
BTCR[0], stm32h7-registers.md s.2.4) before ``main``; without a model that store is a BusFault.
Renode has no FMC model; the builtin overlay declares this one under a duohil type name.

Behaviour: register file only. Every bank control/timing register reads its RM0433 reset value
and keeps what is written; no external memory appears at the FMC banks (0x6000_0000 NOR/SRAM,
0x8000_0000 NAND, 0xC000_0000/0xD000_0000 SDRAM) whatever FMCEN/MBKEN say. SR.FEMPT reads 1
(the FIFO is always empty); SDSR reads 0 (never busy). Stored only: BCR1..4 (including
BCR1.FMCEN and BMAP), BTR1..4, BWTR1..4, PCR, PMEM, PATT, SDCR1/2, SDTR1/2, SDCMR (no command is
executed), SDRTR. ECCR reads 0.
Reset values (RM0433, unverified where marked): BCR1 0x0000_30DB, BCR2..4 0x0000_30D2,
BTR/BWTR 0x0FFF_FFFF, PCR 0x0000_0018, SR 0x0000_0040, PMEM/PATT 0xFCFC_FCFC, SDCR 0x0000_02D0,
SDTR 0x0FFF_FFFF (unverified).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, Field

_BCR_FIELDS = [Field("MBKEN", 0), Field("MUXEN", 1), Field("MTYP", 2, 2), Field("MWID", 4, 2),
               Field("FACCEN", 6), Field("BURSTEN", 8), Field("WAITPOL", 9), Field("WAITCFG", 11),
               Field("WREN", 12), Field("WAITEN", 13), Field("EXTMOD", 14), Field("ASYNCWAIT", 15),
               Field("CPSIZE", 16, 3), Field("CBURSTRW", 19)]
_BTR_FIELDS = [Field("ADDSET", 0, 4), Field("ADDHLD", 4, 4), Field("DATAST", 8, 8),
               Field("BUSTURN", 16, 4), Field("CLKDIV", 20, 4), Field("DATLAT", 24, 4),
               Field("ACCMOD", 28, 2)]


class STM32H7_FMC(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Miscellaneous.STM32H7_FMC",)
    default_size: ClassVar[int] = 0x1000
    properties: ClassVar[dict[str, Any]] = {}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        r = self.regs
        for n in range(1, 5):
            fields = list(_BCR_FIELDS)
            if n == 1:
                fields += [Field("WFDIS", 21), Field("BMAP", 24, 2), Field("FMCEN", 31)]
            r.define(0x08 * (n - 1), f"BCR{n}", reset=0x30DB if n == 1 else 0x30D2, fields=fields)
            r.define(0x08 * (n - 1) + 4, f"BTR{n}", reset=0x0FFF_FFFF, fields=_BTR_FIELDS)
            r.define(0x104 + 0x08 * (n - 1), f"BWTR{n}", reset=0x0FFF_FFFF, fields=_BTR_FIELDS)
        r.define(0x80, "PCR", reset=0x18, fields=[
            Field("PWAITEN", 1), Field("PBKEN", 2), Field("PWID", 4, 2), Field("ECCEN", 6),
            Field("TCLR", 9, 4), Field("TAR", 13, 4), Field("ECCPS", 17, 3)])
        r.define(0x84, "SR", reset=0x40, fields=[Field("IRS", 0), Field("ILS", 1), Field("IFS", 2),
                                                Field("IREN", 3), Field("ILEN", 4), Field("IFEN", 5),
                                                Field("FEMPT", 6, access=RO, reset=1)])
        r.define(0x88, "PMEM", reset=0xFCFC_FCFC)
        r.define(0x8C, "PATT", reset=0xFCFC_FCFC)
        r.define(0x94, "ECCR", access=RO)
        for n, off in ((1, 0x140), (2, 0x144)):
            r.define(off, f"SDCR{n}", reset=0x2D0, fields=[
                Field("NC", 0, 2), Field("NR", 2, 2), Field("MWID", 4, 2), Field("NB", 6),
                Field("CAS", 7, 2), Field("WP", 9), Field("SDCLK", 10, 2), Field("RBURST", 12),
                Field("RPIPE", 13, 2)])
            r.define(off + 8, f"SDTR{n}", reset=0x0FFF_FFFF, fields=[
                Field("TMRD", 0, 4), Field("TXSR", 4, 4), Field("TRAS", 8, 4), Field("TRC", 12, 4),
                Field("TWR", 16, 4), Field("TRP", 20, 4), Field("TRCD", 24, 4)])
        r.define(0x150, "SDCMR", fields=[Field("MODE", 0, 3), Field("CTB2", 3), Field("CTB1", 4),
                                         Field("NRFS", 5, 4), Field("MRD", 9, 14)])
        r.define(0x154, "SDRTR", fields=[Field("CRE", 0), Field("COUNT", 1, 13), Field("REIE", 14)])
        r.define(0x158, "SDSR", access=RO, fields=[Field("RE", 0), Field("MODES1", 1, 2),
                                                   Field("MODES2", 3, 2)])
