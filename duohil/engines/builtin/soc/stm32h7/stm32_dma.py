"""STM32H7 DMA1/DMA2 stream controller (RM0433 "DMA controller"), Renode's ``DMA.STM32DMA``.

Eight streams, each driven by one request line from DMAMUX1 (``set_input(stream, level)``), with
the real LISR/HISR flag layout. What this model does that Renode's STM32DMA does not
(renode.md section 1.4):
  - circular mode (SxCR.CIRC; DBM implies circular and toggles CT between M0AR and M1AR);
  - HTIF, TEIF (and their interrupts) besides TCIF; hardware clears EN at the end of a normal-mode
    transfer and on a transfer error;
  - memory-to-peripheral is paced by the request line (USART TXE), one item per request, instead
    of copying the whole block when EN is written;
  - a transfer error (TEIF, EN cleared) when the stream touches ITCM/DTCM, which DMA1/2 cannot
    reach (stm32h7-registers.md section 1), or an address where nothing is mapped;
  - memory goes through ``machine.dma_port`` (the D-cache model's bus view when the cache is on;
    its ``_native_dma_port`` capsule when it has one), peripheral registers through the bus
    (the machine's C bus table, else ``machine.bus_target``/``bus_write``), so reading RDR clears
    RXNE exactly as a DMA read does;
  - a completion-latency knob per stream, ``set_completion_latency(stream, ps)``: data lands at
    once (NDTR counts down at once), HTIF/TCIF, their interrupt and the end-of-transfer EN clear
    follow ``ps`` later, in order. Used to inject DMA timing faults.

Not modelled: FIFO mode (DMDIS=1 behaves as direct mode: one PSIZE item per request, MSIZE
forced to PSIZE; FEIF/DMEIF never set), bursts, PINCOS, priorities and arbitration between streams
(a request is served as an event at the time it rises, in request order), per-beat bus time, the
"stream still busy after EN=0" window (EN reads 0 at once), and NDTR=0 at enable (no transfer).
A software EN clear of an active stream sets TCIF (RM0090 wording; unverified for RM0433).

The model is C, one copy (native/dma.c, ``_core.Dma``): the registers, the streams' counters and
the transfer engine. ``Stm32Dma(...)`` builds ``Stm32DmaNative``, a subclass of ``_core.Dma`` and
of this class (made once the native core is loaded): its
``read``/``write``/``set_input``/``reset``/``flag`` are C methods, ``streams`` reads the C
counters back. Specified by tests/test_native_dma.py and tests/test_stm32_dma.py.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral

N_STREAMS = 8
_STREAM_REGS = ("CR", "NDTR", "PAR", "M0AR", "M1AR", "FCR")


class Stm32Dma(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("DMA.STM32DMA",)
    default_size: ClassVar[int] = 0x400

    def __new__(cls, *args: Any, **kwargs: Any) -> "Stm32Dma":
        # the model lives in C: Stm32DmaNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def register_name(self, offset: int) -> str | None:
        """The register at ``offset`` (diagnostics: "polling dma1.LISR")."""
        off = offset & ~3
        if off < 0x10:
            return ("LISR", "HISR", "LIFCR", "HIFCR")[off // 4]
        if off < 0x10 + 0x18 * N_STREAMS:
            s, k = divmod(off - 0x10, 0x18)
            return f"S{s}{_STREAM_REGS[k // 4]}"
        return None


@functools.cache
def native_class() -> type:
    """Stm32DmaNative: _core.Dma (the registers, counters and transfer engine in C) under this
    model's Python face (its knobs and views); made once the native core is loaded."""
    core = native.require()

    class Stm32DmaNative(core.Dma, Stm32Dma):      # type: ignore[name-defined,misc]
        """Stm32Dma with its state in C: read/write/set_input/reset/flag are C methods of
        _core.Dma; ``streams`` reads the C state back."""

        renode_types: ClassVar[tuple[str, ...]] = ()   # Stm32Dma claims the type and picks us

        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            self._bind(machine, self.name, [self.output(s) for s in range(N_STREAMS)])
            # a transfer to or from a register finds it in the machine's C bus table, as
            # Machine's bus_target/bus_write would (a machine that overrides them is still
            # called)
            from ...kernel.machine import Machine
            cls = type(machine)
            if isinstance(machine, Machine) and cls.bus_target is Machine.bus_target \
                    and cls.bus_write is Machine.bus_write:
                self._set_bus(machine._bus)

        def set_completion_latency(self, stream: int, ps: int) -> None:
            """Delay between data landing and HTIF/TCIF (+ interrupt, + EN clear) on
            ``stream``: a harness knob (fault injection), kept across chip resets."""
            if not 0 <= stream < N_STREAMS:
                raise ValueError(f"{self.name}: stream must be 0..{N_STREAMS - 1}, got {stream}")
            if ps < 0:
                raise ValueError(f"{self.name}: completion latency must be >= 0 ps, got {ps}")
            self._set_latency(stream, int(ps))

        def completion_latency(self, stream: int) -> int:
            return self.stream_state(stream)["latency_ps"]

        @property
        def streams(self) -> list[SimpleNamespace]:
            """Snapshots of the streams' counters (read-only views of the C state)."""
            return [SimpleNamespace(n=s, **self.stream_state(s)) for s in range(N_STREAMS)]

    return Stm32DmaNative
