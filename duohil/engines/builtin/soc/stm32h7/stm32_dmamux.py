"""STM32H7 DMAMUX1 (RM0433 "DMA request multiplexer"), Renode's ``Miscellaneous.STM32_DMAMUX``.

Routing only, like Renode's model: request line ``DMAREQ_ID`` of each channel CxCR is passed to
output ``x`` (outputs 0..7 -> DMA1 streams 0..7, 8..15 -> DMA2 streams 0..7 in the platform file).
Inputs are numbered by RM0433 request id (usart3_rx 45, usart3_tx 46, usart1_rx 41, usart1_tx 42).

Register-only (stored, no behaviour): synchronisation (CxCR.SE/SPOL/NBREQ/SYNC_ID), event
generation (EGE), the synchronisation-overrun flags (CSR/CFR, SOIE) and the request generators
(RGxCR, RGSR, RGCFR): request ids 1..8 (the generators) never assert.

The model is C, one copy (native/dmamux.c, ``_core.Dmamux``): registers, line levels and routing; an
output that feeds a native DMA stream is driven C to C. ``Stm32Dmamux(...)`` builds
``Stm32DmamuxNative``, a subclass of ``_core.Dmamux`` and of this class (made once the native core
is loaded). Specified by tests/test_native_dma.py and tests/test_stm32_dma.py.
"""
from __future__ import annotations

import functools
from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral


class Stm32Dmamux(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Miscellaneous.STM32_DMAMUX",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"numberOfInputRequestChannels": 115,
                                            "numberOfOutputRequestChannels": 16,
                                            "numberOfRequestGeneratorChannels": 8}

    n_channels: int
    n_generators: int

    def __new__(cls, *args: Any, **kwargs: Any) -> "Stm32Dmamux":
        # the model lives in C: Stm32DmamuxNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def register_name(self, offset: int) -> str | None:
        """The register at ``offset`` (diagnostics: "polling dmamux1.C0CR")."""
        off = offset & ~3
        if off < 4 * self.n_channels:
            return f"C{off // 4}CR"
        if 0x100 <= off < 0x100 + 4 * self.n_generators:
            return f"RG{(off - 0x100) // 4}CR"
        return {0x80: "CSR", 0x84: "CFR", 0x140: "RGSR", 0x144: "RGCFR"}.get(off)


@functools.cache
def native_class() -> type:
    """Stm32DmamuxNative: _core.Dmamux (registers, levels, routing in C) under this model's name."""
    core = native.require()

    class Stm32DmamuxNative(core.Dmamux, Stm32Dmamux):   # type: ignore[name-defined,misc]
        renode_types: ClassVar[tuple[str, ...]] = ()    # Stm32Dmamux claims the type

        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            self.n_inputs = int(self.props["numberOfInputRequestChannels"])
            self.n_channels = int(self.props["numberOfOutputRequestChannels"])
            self.n_generators = int(self.props["numberOfRequestGeneratorChannels"])
            # the register map has room for 32 channels (CSR at 0x80) and 16 generators
            if self.n_channels > 0x80 // 4:
                raise ValueError(f"{name}: register CSR redefines offset 0x80 "
                                 f"(C32CR): at most 32 output channels")
            if self.n_generators > 0x40 // 4:
                raise ValueError(f"{name}: register RGSR redefines offset 0x140 "
                                 f"(RG16CR): at most 16 request generators")
            self._bind([self.output(c) for c in range(self.n_channels)], self.n_generators)

    return Stm32DmamuxNative
