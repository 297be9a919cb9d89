"""STM32H7 DMAMUX1 (RM0433 "DMA request multiplexer"), Renode's ``Miscellaneous.STM32_DMAMUX``.

Routing only, like Renode's model: request line ``DMAREQ_ID`` of each channel CxCR is passed to
output ``x`` (outputs 0..7 -> DMA1 streams 0..7, 8..15 -> DMA2 streams 0..7 in the platform file).
Inputs are numbered by RM0433 request id (usart3_rx 45, usart3_tx 46, usart1_rx 41, usart1_tx 42).

Register-only (stored, no behaviour): synchronisation (CxCR.SE/SPOL/NBREQ/SYNC_ID), event
generation (EGE), the synchronisation-overrun flags (CSR/CFR, SOIE) and the request generators
(RGxCR, RGSR, RGCFR): request ids 1..8 (the generators) never assert.

Under ``DUOHIL_MODELS=native`` ``Stm32Dmamux(...)`` is a ``Stm32DmamuxNative``: registers, line
levels and routing in C (native/dmamux.c, ``_core.Dmamux``, its base class); an output that feeds
a native DMA stream is driven C to C. This model stays the reference (tests/test_native_dma.py).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral, Signal
from ...kernel.regs import RO, W1T, Field, Register


class Stm32Dmamux(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Miscellaneous.STM32_DMAMUX",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"numberOfInputRequestChannels": 115,
                                            "numberOfOutputRequestChannels": 16,
                                            "numberOfRequestGeneratorChannels": 8}

    def __new__(cls, *args: Any, **kwargs: Any) -> "Stm32Dmamux":
        # under DUOHIL_MODELS=native the model lives in C (Stm32DmamuxNative below)
        if cls is Stm32Dmamux and native.models() == "native":
            native_cls = native_class()
            return native_cls.__new__(native_cls)
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self.n_inputs = int(self.props["numberOfInputRequestChannels"])
        self.n_channels = int(self.props["numberOfOutputRequestChannels"])
        self.n_generators = int(self.props["numberOfRequestGeneratorChannels"])
        self._level: dict[int, bool] = {}          # request id -> current level
        self._routes: dict[int, list] = {}         # request id -> output signals (see set_input)
        r = self.regs
        self.ccr = [r.define(4 * c, f"C{c}CR", fields=[
            Field("DMAREQ_ID", 0, 8), Field("SOIE", 8), Field("EGE", 9), Field("SE", 16),
            Field("SPOL", 17, 2), Field("NBREQ", 19, 5), Field("SYNC_ID", 24, 5)],
            on_write=self._ccr_written) for c in range(self.n_channels)]
        r.define(0x80, "CSR", access=RO, fields=[Field(f"SOF{c}", c) for c in range(self.n_channels)])
        r.define(0x84, "CFR", access=W1T, fields=[Field(f"CSOF{c}", c) for c in range(self.n_channels)])
        for g in range(self.n_generators):
            r.define(0x100 + 4 * g, f"RG{g}CR", fields=[
                Field("SIG_ID", 0, 5), Field("OIE", 8), Field("GE", 16), Field("GPOL", 17, 2),
                Field("GNBREQ", 19, 5)])
        r.define(0x140, "RGSR", access=RO, fields=[Field(f"OF{g}", g) for g in range(self.n_generators)])
        r.define(0x144, "RGCFR", access=W1T,
                 fields=[Field(f"COF{g}", g) for g in range(self.n_generators)])

    def set_input(self, line: int, level: bool) -> None:
        """Request line ``line`` (RM0433 request id) from a peripheral (hot: every byte)."""
        level = bool(level)
        self._level[line] = level
        for sig in self._routes.get(line, ()):
            sig.set(level)

    def _rebuild_routes(self) -> None:
        """request id -> output signals, recomputed on CxCR writes instead of on every request."""
        routes: dict[int, list] = {}
        for c, reg in enumerate(self.ccr):
            rid = reg.DMAREQ_ID
            if rid:
                routes.setdefault(rid, []).append(self.output(c))
        self._routes = routes

    def _ccr_written(self, reg: Register, old: int, data: int) -> None:
        c = self.ccr.index(reg)
        rid = reg.DMAREQ_ID
        self._rebuild_routes()
        self.output(c).set(rid != 0 and self._level.get(rid, False))

    def reset(self) -> None:
        super().reset()
        self._rebuild_routes()
        for c in range(self.n_channels):
            self.output(c).set(False)


_native_cls: type | None = None


def native_class() -> type:
    """Stm32DmamuxNative: _core.Dmamux (registers, levels, routing in C) under this model's name."""
    global _native_cls
    if _native_cls is None:
        core = native.core()

        class Stm32DmamuxNative(core.Dmamux, Stm32Dmamux):   # type: ignore[name-defined,misc]
            renode_types: ClassVar[tuple[str, ...]] = ()    # Stm32Dmamux claims the type

            def __init__(self, machine, name, base, size=None, props=None) -> None:
                Peripheral.__init__(self, machine, name, base, size, props)
                self.n_inputs = int(self.props["numberOfInputRequestChannels"])
                self.n_channels = int(self.props["numberOfOutputRequestChannels"])
                self.n_generators = int(self.props["numberOfRequestGeneratorChannels"])
                # the layout the Python model's register map allows (it refuses overlaps)
                if self.n_channels > 0x80 // 4:
                    raise ValueError(f"{name}: register CSR redefines offset 0x80 "
                                     f"(C32CR): at most 32 output channels")
                if self.n_generators > 0x40 // 4:
                    raise ValueError(f"{name}: register RGSR redefines offset 0x140 "
                                     f"(RG16CR): at most 16 request generators")
                self._bind([self.output(c) for c in range(self.n_channels)], self.n_generators,
                           Signal)

        _native_cls = Stm32DmamuxNative
    return _native_cls
