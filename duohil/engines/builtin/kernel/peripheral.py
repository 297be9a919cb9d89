"""Base classes for builtin peripheral models.

A model is one silicon block in one file (STYLE.md). It sees the rest of the machine only through:
  - ``self.now()``: virtual time in ps (the accessing CPU's slice-start time during an MMIO access,
    the event's time inside an event),
  - ``self.schedule(delay_ps, fn, *args)``: a scheduler event,
  - ``self.output(name)``: a ``Signal`` (IRQ line, DMA request line) wired by the platform file,
  - ``self.machine.dma_read/dma_write``: the bus as a DMA master sees it (through the D-cache model
    when one is installed),
  - ``self.machine.record(kind, **details)``: the run's event log.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

from .. import native
from .regs import RegisterBank

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine
    from .scheduler import Event


class SignalSink(Protocol):
    def set_input(self, line: int, level: bool) -> None: ...


# ``_core.Signal`` (native/_core.c), the one implementation of an output line: ``Signal(name)``;
# ``connect(sink, line)``; ``set(level=True)`` (level taken as a truth value) which, when the level
# changes, calls every sink's ``set_input(line, level)`` in connection order (a sink connected
# during that walk is called too; a sink's exception is handed on, the level already changed),
# straight into C for a sink with a ports.h ``_native_input`` capsule; ``pulse()`` (high then
# low, for edge-triggered inputs); ``level``, ``name``, ``connected`` and ``_targets`` (a copy
# of the (sink, line) pairs). tests/test_native_signal.py is its specification.
Signal = native.core_class("Signal")


class Peripheral:
    """Base for every memory-mapped model. Subclasses declare registers in ``__init__`` via
    ``self.regs.define(...)`` and list the Renode type names they stand for."""

    renode_types: ClassVar[tuple[str, ...]] = ()
    default_size: ClassVar[int] = 0x400
    #: repl property names this model understands (others are an error naming the file and line)
    properties: ClassVar[dict[str, Any]] = {}

    def __init__(self, machine: "Machine", name: str, base: int | None, size: int | None = None,
                 props: dict[str, Any] | None = None) -> None:
        self.machine = machine
        self.name = name
        self.base = base
        self.size = size if size is not None else self.default_size
        self.props = dict(self.properties)
        self.props.update(props or {})
        self.regs = RegisterBank(name)
        self._outputs: dict[str, Signal] = {}

    # -- wiring -------------------------------------------------------------------------------------
    def output(self, name: str | int = "IRQ") -> Signal:
        key = str(name)
        sig = self._outputs.get(key)
        if sig is None:
            sig = self._outputs[key] = Signal(f"{self.name}.{key}")
        return sig

    def set_input(self, line: int, level: bool) -> None:
        """Inputs (DMA requests into DMAMUX/DMA, IRQs into controllers). Default: not an input."""
        raise NotImplementedError(f"{self.name} has no input {line}")

    # -- bus ------------------------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.regs.write(offset, size, value)

    def reset(self) -> None:
        self.regs.reset()

    def register_name(self, offset: int) -> str | None:
        """The name of the register at ``offset`` (diagnostics: "polling usart3.ISR")."""
        reg = self.regs._regs.get(offset & ~3)
        return reg.name if reg is not None else None

    # -- time -----------------------------------------------------------------------------------------
    def now(self) -> int:
        return self.machine.now()

    def schedule(self, delay_ps: int, fn: Callable[..., Any], *args: Any, name: str = "") -> "Event":
        return self.machine.scheduler.at(self.now() + max(0, int(delay_ps)), fn, *args,
                                         name=name or f"{self.name}.{fn.__name__}")

    def schedule_at(self, t_ps: int, fn: Callable[..., Any], *args: Any, name: str = "") -> "Event":
        return self.machine.scheduler.at(t_ps, fn, *args, name=name or f"{self.name}.{fn.__name__}")

    def poll_hint(self, wake_ps: int | None) -> None:
        """Called from a status-register read whose value cannot change before ``wake_ps`` (None:
        not before some event fires). The CPU may park instead of spinning (poll-skip)."""
        cpu = self.machine.cpu
        if cpu is not None:
            cpu.poll_hint(self.base, wake_ps)

    def __repr__(self) -> str:
        base = "-" if self.base is None else f"{self.base:#010x}"
        return f"<{type(self).__name__} {self.name} @ {base}>"


class UartEndpoint(Protocol):
    """What the link (link.py) and console sinks need from a UART model.

    The UART calls ``self.tx_sink(self, byte, t_start_ps, bit_time_ps, frame_bits)`` when a character
    starts leaving its shift register; it must set ``tx_sink`` to None until connected.
    The link calls ``rx_char(byte, framing_error)`` at the time the stop bit has arrived.
    """

    name: str
    tx_sink: Callable[..., None] | None

    def rx_char(self, byte: int, framing_error: bool = False) -> None: ...

    def bit_time_ps(self) -> int | None:
        """The receiver's programmed bit time, or None when the receiver is disabled."""
