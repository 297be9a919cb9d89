"""The engine interface. Tests, scenarios, the CLI and the Robot library talk only to this.

An engine builds the two machines of a run (STM32H743 and the ESP32-C3-class peer) from
``platforms/*.repl``, loads both ELFs, patches their config blocks, joins them with a UART link and
advances them in virtual time. All times are integer picoseconds (``PS_PER_*`` below).

Capabilities (names used by scenarios) say which faults and observations an engine can do; a
scenario needing one the engine lacks is skipped with the reason, never faked.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

PS_PER_NS = 1_000
PS_PER_US = 1_000_000
PS_PER_MS = 1_000_000_000
PS_PER_S = 1_000_000_000_000

DEFAULT_QUANTUM_PS = 10 * PS_PER_US

# Capability names (ARCHITECTURE.md). Keep in sync with docs.
LINK_FAULTS = "link_faults"
PEER_STALL = "peer_stall"
DMA_LATENCY = "dma_latency"
DCACHE = "dcache"
IRQ_AT_PC = "irq_at_pc"
NESTED_IRQ = "nested_irq"
CRASH_RECORD = "crash_record"
#: a motor plant: TIM1's duty and the direction pin move an axis whose encoder counts reach TIM2,
#: with end stops recorded as events (the ground truth of the runaway oracle)
PLANT = "plant"
#: a recorded peer: captured peer->STM32 bytes replayed on the link at their times (duohil replay)
LINK_REPLAY = "link_replay"
ALL_CAPABILITIES = frozenset({LINK_FAULTS, PEER_STALL, DMA_LATENCY, DCACHE, IRQ_AT_PC, NESTED_IRQ,
                              CRASH_RECORD, PLANT, LINK_REPLAY})

MachineName = Literal["stm32", "peer"]
Direction = Literal["stm32->peer", "peer->stm32"]


@dataclass(frozen=True)
class MachineSpec:
    """One MCU of a run: its platform file, firmware image and config-block overrides."""

    platform: Path
    elf: Path
    config_symbol: str | None = None        # e.g. "g_config"; patched before reset
    config: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """Everything an engine needs to start a run. Same RunSpec => same result (determinism)."""

    stm32: MachineSpec
    peer: MachineSpec | None            # None: the STM32 runs alone (a user's image, no peer)
    quantum_ps: int = DEFAULT_QUANTUM_PS
    seed: int = 0
    link_uarts: tuple[str, str] = ("usart3", "uart1")       # (stm32 side, peer side)
    console_uarts: tuple[str, str] = ("usart1", "uart0")
    #: with peer None: (start-bit time ps, byte) the link's peer side replays (LINK_REPLAY)
    peer_replay: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class ConsoleLine:
    t_ps: int
    machine: str
    text: str


@dataclass(frozen=True)
class LinkByte:
    """One byte on the wire as the receiver saw it (after faults), with its arrival time."""

    t_ps: int
    direction: str
    value: int | None            # None: the byte was dropped on the wire
    sent: int | None = None        # the byte the sender put on the wire, if a fault changed it
    fault: str | None = None       # name of the fault that touched it, if any


LinkRow = tuple[int, str, int | None, int | None, str | None]   # a LinkByte's fields, in order


def link_rows(link: Iterable[LinkByte]) -> Iterable[LinkRow]:
    """``(t_ps, direction, value, sent, fault)`` for each byte of ``link``, in order: the rows of
    an engine's own tap log when it offers them (``rows()``: no LinkByte made per byte), else the
    fields of each LinkByte."""
    rows = getattr(link, "rows", None)
    if callable(rows):
        return rows()
    return ((b.t_ps, b.direction, b.value, b.sent, b.fault) for b in link)


class HostUart(abc.ABC):
    """The host's end of one UART of an MCU (a terminal on its pins), in virtual time.

    Bytes written are paced like the link: one character per frame time, at ``baud`` when given,
    else at the MCU's own programmed rate (a terminal set to match); a rate more than 3 % off the
    MCU's garbles them as the wire would, and that is counted. ``received()`` is what the MCU has
    sent so far (each byte counted once its stop bit is out)."""

    name: str

    @abc.abstractmethod
    def write(self, data: bytes, baud: int | None = None) -> None:
        """Start sending ``data`` to the MCU now (after anything still being sent)."""

    @abc.abstractmethod
    def received(self) -> bytes:
        """Every byte the MCU sent on this UART so far."""

    def problems(self) -> list[str]:
        """What went wrong on this UART, in words (baud mismatches, bytes dropped and why)."""
        return []


class MachineHandle(abc.ABC):
    """One MCU inside a running session."""

    name: str

    def uarts(self) -> list[str]:
        """Names of this MCU's UARTs (those ``uart()`` can open), platform order."""
        return []

    def uart(self, name: str) -> HostUart:
        """The host's end of UART ``name`` (e.g. "usart3"). Engines that cannot attach one say so."""
        from ..errors import ConfigError
        raise ConfigError(f"engine {type(self).__name__} has no host-side UART endpoints",
                          field=f"uart({name!r})", expected="the builtin engine")

    def cpu_state(self) -> dict[str, object]:
        """The core now: at least ``pc``; engines add registers, IPSR, halted/lockup, CFSR/HFSR."""
        return {"pc": self.pc()}

    def describe_address(self, address: int) -> str | None:
        """The peripheral register (``usart3.ISR``) or memory at ``address``; None when unknown."""
        return None

    def uart_problems(self) -> dict[str, list[str]]:
        """Per UART of this MCU, what went wrong (baud mismatches, bytes dropped with the reason)."""
        return {}

    @abc.abstractmethod
    def symbol(self, name: str) -> int:
        """Address of an ELF symbol; ConfigError naming the ELF and symbol if it is missing."""

    @abc.abstractmethod
    def read_memory(self, address: int, size: int) -> bytes: ...

    @abc.abstractmethod
    def write_memory(self, address: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_block(self, symbol: str) -> dict[str, object]:
        """Decode the struct at ``symbol`` (status block, crash record) using the ELF's DWARF."""

    def read_fields(self, symbol: str, keys: tuple[str, ...]) -> dict[str, object]:
        """Those of ``keys`` that the struct at ``symbol`` has, in ``keys``' order: what
        ``read_block`` gives for them (an engine may read just these)."""
        st = self.read_block(symbol)
        return {k: st[k] for k in keys if k in st}

    def fields_snapshot(self, symbol: str, keys: tuple[str, ...]
                        ) -> tuple[Callable[[], bytes], Callable[[bytes], dict[str, object]]] | None:
        """For sampling ``read_fields(symbol, keys)`` often (Duo, every SAMPLE_MS): ``(take,
        decode)``, where ``take()`` copies the struct's bytes now and ``decode(raw)`` gives what
        ``read_fields`` would have given then; None when this engine reads the fields instead."""
        return None

    @abc.abstractmethod
    def console(self) -> list[ConsoleLine]:
        """Complete console lines so far, with virtual timestamps."""

    @abc.abstractmethod
    def stall(self, duration_ps: int) -> None:
        """Halt this CPU for ``duration_ps`` from now; its peripherals keep running (GC pause)."""

    @abc.abstractmethod
    def pc(self) -> int: ...


class Session(abc.ABC):
    """Two machines joined by the link, advancing in virtual time."""

    stm32: MachineHandle
    peer: MachineHandle

    @property
    @abc.abstractmethod
    def now_ps(self) -> int: ...

    @abc.abstractmethod
    def run_until(self, t_ps: int) -> None:
        """Advance both machines until virtual time ``t_ps``."""

    def run_for(self, duration_ps: int) -> None:
        self.run_until(self.now_ps + duration_ps)

    @abc.abstractmethod
    def at(self, t_ps: int, action: Callable[[], None], name: str = "") -> None:
        """Run ``action`` at virtual time ``t_ps`` (faults and observations are events too)."""

    def inject(self, fault: "object") -> int | None:
        """Schedule one realised fault (duohil.faults.Fault) in virtual time; return the time it
        takes effect when that is known now. An engine lacking the fault's capability raises
        ConfigError naming the fault (the runner checks capabilities first, so this is a backstop)."""
        from ..errors import ConfigError
        raise ConfigError(f"engine {type(self).__name__} cannot inject {getattr(fault, 'kind', fault)}",
                          field="faults", expected="a fault this engine's capabilities cover")

    def observations(self) -> dict:
        """Engine-specific extras for reports (e.g. plant position samples); may be empty."""
        return {}

    @abc.abstractmethod
    def link_bytes(self) -> list[LinkByte]:
        """Every byte on the link so far, both directions, in arrival order."""

    @abc.abstractmethod
    def events(self) -> list[tuple[int, str, dict]]:
        """The run's event log: (t_ps, kind, details), e.g. plant end-stop crossings, resets, faults."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Hash of both MCUs' RAM and the event log: same spec => same fingerprint."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Engine(abc.ABC):
    name: str = "?"
    capabilities: frozenset[str] = frozenset()

    @classmethod
    @abc.abstractmethod
    def availability(cls) -> tuple[bool, str]:
        """(available, reason). The reason says what is missing, in words a user can act on."""

    @abc.abstractmethod
    def start(self, spec: RunSpec) -> Session: ...

    def missing(self, needed: Iterable[str]) -> list[str]:
        return sorted(set(needed) - set(self.capabilities))
