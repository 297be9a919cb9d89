"""The builtin engine: both MCUs in one process, one deterministic virtual-time scheduler.

    engine = BuiltinEngine()
    with engine.start(spec) as s:           # builds both machines, loads + patches ELFs, resets
        s.peer.stall(5 * PS_PER_MS)
        s.run_until(200 * PS_PER_MS)
        s.stm32.read_block("g_status")

Start-up order (the same for every run, so the same RunSpec gives the same fingerprint): build the
STM32 machine, then the peer, each from its platform (+ ``.builtin.repl`` overlay) into one
Scheduler(quantum); load each ELF at its LMAs; patch each config block in the loaded image; reset
the CPUs (the peer starts at its ELF entry, the M7 from its vector table); join the link UARTs and
attach the console sinks; create the motor plant on the STM32 machine.

Fingerprint (canonical, sha256): virtual time; per machine (stm32, then peer) each memory region in
platform order — *all* of them, flash/IROM included, because every one is writable in the emulator
(the config patch lands in flash; a flash controller may program it) and hashing 11 MiB costs a few
ms; the D-cache's bus view and stale lines when a cache exists (the SRAM may differ from what the
CPU sees); each CPU's pc and cycle count; then the event log, the console lines and the link bytes,
as JSON with sorted keys. Length-prefixed sections keep the encoding unambiguous. The seed itself
is not hashed: two seeds that lead to identical behaviour give identical fingerprints.

Faults: ``inject(fault)`` hands each realised fault of a scenario's plan to ``inject.Injector``,
which maps it onto the models' levers; motor-plant parameters come from
``BuiltinEngine(plant={...})`` (RunSpec has no field for them). ``single(platform, elf)`` builds
one machine alone, for model tests and benchmarks.
"""
from __future__ import annotations

import gc
import hashlib
import importlib
import json
import operator
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from duohil.errors import ConfigError, EngineError
from ..base import (ALL_CAPABILITIES, DEFAULT_QUANTUM_PS, PS_PER_MS, ConsoleLine, Engine, LinkByte,
                    MachineHandle, MachineSpec, RunSpec, Session)
from .loaders import dwarf
from .loaders.elf import ElfImage, load_segments, loaded_bytes, read_elf
from .kernel.machine import Machine
from .loaders.platform import build_machine
from .kernel.scheduler import Scheduler

UNICORN_VERSION = "2.1.4"
_FP_CHUNK = 4096              # link rows encoded at a time for the fingerprint
_FP_KEEP_ROWS = 1 << 17       # link rows whose encoded chunks fingerprint() keeps (~4 MB)
PLANT_POINTS = 6_000          # plant samples in a report's timeline, at most (6 s at 1 ms)
ELF_MACHINE = {"arm": "EM_ARM", "rv": "EM_RISCV"}


def _optional(module: str, attr: str) -> Any:
    """A class from a sibling model module, or None when that module is not there (yet)."""
    try:
        mod = importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(f".{module}"):
            return None
        raise
    return getattr(mod, attr, None)


# -- loading one machine ----------------------------------------------------------------------------------
def _spans(machine: Machine) -> list[tuple[int, int]]:
    """The memories as (start, end) spans, adjacent ones merged (flash bank 1 + bank 2)."""
    spans: list[list[int]] = []
    for _name, b, n in sorted(machine.memories, key=lambda m: m[1]):
        if spans and b <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b + n)
        else:
            spans.append([b, b + n])
    return [(a, e) for a, e in spans]


def _mapped(machine: Machine) -> Callable[[int, int], bool]:
    spans = _spans(machine)

    def inside(addr: int, size: int) -> bool:
        return any(a <= addr and addr + size <= e for a, e in spans)
    return inside


def _writer(machine: Machine) -> Callable[[int, bytes], None]:
    """``machine.write_memory`` split at memory boundaries (a segment may span two banks)."""
    mems = sorted((b, b + n) for _name, b, n in machine.memories)

    def write(addr: int, data: bytes) -> None:
        end = addr + len(data)
        for b, e in mems:
            lo, hi = max(addr, b), min(end, e)
            if lo < hi:
                machine.write_memory(lo, data[lo - addr:hi - addr])
    return write


_ELF_CACHE: dict[tuple[str, int, int], ElfImage] = {}


def _read_elf_cached(path: Path) -> ElfImage:
    """``read_elf`` once per image file version (path + mtime + size): a campaign starts many runs
    from the same two ELFs. The ElfImage is treated as read-only."""
    try:
        st = Path(path).stat()
    except OSError:
        return read_elf(path)                 # the missing-file ConfigError comes from there
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    img = _ELF_CACHE.get(key)
    if img is None:
        for k in [k for k in _ELF_CACHE if k[0] == key[0]]:
            del _ELF_CACHE[k]
        img = _ELF_CACHE[key] = read_elf(path)
    return img


def boot_machine(machine: Machine, spec: MachineSpec) -> ElfImage:
    """Load ``spec.elf`` into ``machine``, patch its config block, reset the CPU."""
    img = _read_elf_cached(Path(spec.elf))
    cpu = machine.cpu
    assert cpu is not None
    want = ELF_MACHINE["rv" if str(cpu.arch).startswith("rv") else "arm"]
    if img.machine != want:
        raise ConfigError(f"firmware is built for {img.machine} but the platform {machine.platform} "
                          f"has a {cpu.arch} core", file=spec.elf, expected=f"an {want} ELF")
    load_segments(img, _writer(machine), _mapped(machine))
    if not loaded_bytes(img):
        machine.record("warning", t=0, what="empty_image",
                       message=f"{machine.name}: {Path(spec.elf).name} loads nothing (no PT_LOAD "
                       f"segment with bytes): the CPU boots from whatever is in memory")
    if spec.config and not spec.config_symbol:
        raise ConfigError("config overrides given without a config symbol", file=spec.elf,
                          field="config", expected="config_symbol naming the firmware's config block")
    if spec.config and spec.config_symbol and spec.config_symbol not in img.symbols:
        raise ConfigError(f"config overrides {', '.join(spec.config)} given, but the image has no "
                          f"config block {spec.config_symbol}", file=spec.elf, field="config",
                          expected=f"no overrides, or an image that defines {spec.config_symbol}")
    if spec.config_symbol and (spec.config or spec.config_symbol in img.symbols):
        # the config block is part of the firmware<->harness contract: used where present; only
        # overrides for a block the image does not have are an error (patch_config names it)
        patch_config(machine, img, spec.config_symbol, spec.config)
    if str(cpu.arch).startswith("rv"):
        cpu.reset_pc = img.entry          # the M7 boots from its vector table at VTOR instead
    cpu.reset()
    if not str(cpu.arch).startswith("rv"):
        vtor = getattr(getattr(cpu, "nvic", None), "vtor", 0x0800_0000)
        try:
            sp, pc = struct.unpack("<II", machine.read_memory(vtor, 8))
        except Exception:  # noqa: BLE001 - an unreadable table is the same finding
            sp = pc = 0
        if pc in (0, 0xFFFFFFFF) or sp in (0, 0xFFFFFFFF):
            machine.record("warning", t=0, what="empty_vector_table",
                           message=f"{machine.name}: the vector table at {vtor:#010x} is empty "
                           f"(initial SP {sp:#010x}, reset vector {pc:#010x}): "
                           f"{Path(spec.elf).name} was not linked for this boot address")
    return img


def patch_config(machine: Machine, img: ElfImage, symbol: str, overrides: dict[str, Any]) -> None:
    """Apply ``overrides`` to the config struct at ``symbol`` in the loaded image (before reset).
    The block must be where the ELF loads it (VMA == LMA, e.g. a flash `.config` section)."""
    sym = img.symbol(symbol)
    dwarf.dwarf_info(img.path).use_symbols({n: (s.address, s.size) for n, s in img.symbols.items()})
    size = dwarf.struct_size(img.path, symbol)
    if not _mapped(machine)(sym.address, size):
        raise ConfigError(f"config block {symbol!r} at {sym.address:#x} is outside every memory",
                          file=img.path, field=symbol, expected="a block in flash (.config section)")
    current = machine.read_memory(sym.address, size)
    if current != dwarf.initial_bytes(img.path, symbol):
        raise ConfigError(f"config block {symbol!r} at {sym.address:#x} does not hold its initial "
                          f"value after loading (a RAM copy whose load address differs?)",
                          file=img.path, field=symbol,
                          expected="a `volatile const` block in the flash `.config` section")
    if overrides:
        machine.write_memory(sym.address, dwarf.encode_struct(img.path, symbol, current, overrides))


# The board's motor wiring (stm32_firmware/src/board.h): TIM1 CH1 PWM, direction pin PE10,
# TIM2 in encoder mode.
PLANT_PWM = ("timer1", 1)
PLANT_DIRECTION = ("gpioPortE", 10)
PLANT_ENCODER = "timer2"


def attach_plant(machine: Machine, params: dict[str, Any] | None) -> Any | None:
    """Create the DC-motor plant on a machine that has the board's PWM timer, direction port and
    encoder timer (the STM32); None on any other machine. ``params``: MotorParams fields."""
    pwm = machine.peripherals.get(PLANT_PWM[0])
    port = machine.peripherals.get(PLANT_DIRECTION[0])
    enc = machine.peripherals.get(PLANT_ENCODER)
    if pwm is None or port is None:
        if params:
            raise ConfigError(f"plant parameters given but machine {machine.name} has no "
                              f"{PLANT_PWM[0]}/{PLANT_DIRECTION[0]} to drive a motor",
                              file=machine.platform, field="plant")
        return None
    plant_mod = importlib.import_module(f"{__package__}.board.plant")
    motor = plant_mod.MotorParams.from_dict(dict(params or {}))
    return plant_mod.DcMotorPlant(machine, motor, pwm=pwm, pwm_channel=PLANT_PWM[1],
                                  direction=port, direction_pin=PLANT_DIRECTION[1], encoder=enc)


# -- the handles ---------------------------------------------------------------------------------------------
class BuiltinMachine(MachineHandle):
    """One MCU of a builtin session (``.machine`` is the underlying Machine, for tests and faults)."""

    def __init__(self, name: str, machine: Machine, image: ElfImage,
                 console: Any | None = None) -> None:
        self.name = name
        self.machine = machine
        self.image = image
        self.console_sink = console
        self.linked: tuple[str, ...] = ()          # UARTs joined to the link (host may not write)
        self.link_sent: Callable[[], bytes] | None = None    # what this MCU sent on the link
        self._blocks: dict[str, tuple[int, int, Any]] = {}   # symbol -> (address, size, decoder)
        #: (symbol, keys) -> (dwarf.field_reader, the memory holding the block, its offset there)
        self._fields: dict[tuple[str, tuple[str, ...]], tuple[Any, Any, int, int]] = {}

    @property
    def cpu(self) -> Any:
        return self.machine.cpu

    def peripheral(self, name: str) -> Any:
        p = self.machine.peripherals.get(name)
        if p is None:
            raise ConfigError(f"machine {self.name} has no peripheral {name!r}",
                              file=self.machine.platform,
                              expected="one of " + ", ".join(self.machine.peripherals))
        return p

    def symbol(self, name: str) -> int:
        return self.image.symbol(name).address

    def read_memory(self, address: int, size: int) -> bytes:
        return self.machine.read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self.machine.write_memory(address, data)

    def read_block(self, symbol: str) -> dict[str, object]:
        # where and how, looked up once per session: the image a session runs cannot change
        # under it, and status blocks are read every few ms
        hit = self._blocks.get(symbol)
        if hit is None:
            path = self.image.path
            hit = self._blocks[symbol] = (self.symbol(symbol), dwarf.struct_size(path, symbol),
                                          dwarf.decoder(path, symbol))
        addr, size, decode = hit
        return decode(self.read_memory(addr, size))

    def _field_source(self, symbol: str, keys: tuple[str, ...]) -> tuple[Any, Any, int, int]:
        """(reader, the memory store holding the struct or None, its offset there, its size),
        looked up once per (symbol, keys)."""
        hit = self._fields.get((symbol, keys))
        if hit is None:
            path = self.image.path
            addr, size = self.symbol(symbol), dwarf.struct_size(path, symbol)
            reader, store, off = dwarf.field_reader(path, symbol, keys), None, 0
            for _name, base, msize in self.machine.memories:
                if base <= addr and addr + size <= base + msize:
                    store, off = self.machine.memory_store(base), addr - base
                    break
            hit = self._fields[(symbol, keys)] = (reader, store, off, size)
        return hit

    def read_fields(self, symbol: str, keys: tuple[str, ...]) -> dict[str, object]:
        # the fields asked for, unpacked in one call straight from the memory holding the block
        # (~6 us, read_block + filter ~25 us)
        reader, store, off, _size = self._field_source(symbol, keys)
        if reader is None or store is None:
            return super().read_fields(symbol, keys)
        return reader(store, off)

    def fields_snapshot(self, symbol: str, keys: tuple[str, ...]
                        ) -> tuple[Callable[[], bytes], Callable[[bytes], dict[str, object]]] | None:
        # Duo samples the status blocks every 5 ms: a slice of the memory's mmap (~0.3 us; the
        # unpack, ~6-9 us, and its row happen when the oracles read the samples)
        reader, store, off, size = self._field_source(symbol, keys)
        if reader is None or store is None:
            return None
        end = off + size
        return (lambda: store[off:end]), RawFields(reader, size)

    def console(self) -> list[ConsoleLine]:
        if self.console_sink is None:
            return []
        return list(self.console_sink.lines)

    def stall(self, duration_ps: int) -> None:
        if duration_ps < 0:
            raise ValueError(f"stall duration must be >= 0 ps, got {duration_ps}")
        self.cpu.stall(self.machine.now() + int(duration_ps))

    def pc(self) -> int:
        return _cpu_pc(self.cpu)

    def uarts(self) -> list[str]:
        return [n for n, q in self.machine.peripherals.items() if hasattr(q, "rx_char")]

    def uart(self, name: str) -> Any:
        """The host's end of UART ``name`` (host_uart.BuiltinHostUart), made at the first call."""
        ports = self.__dict__.setdefault("_uarts", {})
        port = ports.get(name)
        if port is None:
            p = self.machine.peripherals.get(name)
            if p is None or not hasattr(p, "rx_char"):
                uarts = [n for n, q in self.machine.peripherals.items() if hasattr(q, "rx_char")]
                raise ConfigError(f"machine {self.name} has no UART {name!r}",
                                  file=self.machine.platform, field=f"uart({name!r})",
                                  expected="one of " + ", ".join(uarts))
            from .board.host_uart import BuiltinHostUart
            linked = None
            if name in self.linked and self.link_sent is not None:
                linked = self.link_sent
            port = ports[name] = BuiltinHostUart(self.machine, p, linked=linked)
        return port

    def cpu_state(self) -> dict[str, Any]:
        """The core at this moment, for the end-of-run diagnosis: pc, core registers, IPSR,
        halted/lockup and (Cortex-M) the fault status registers."""
        cpu = self.cpu
        st: dict[str, Any] = {"pc": _cpu_pc(cpu), "halted": bool(getattr(cpu, "halted", False)),
                              "halt_reason": getattr(cpu, "halt_reason", None),
                              "lockup": getattr(cpu, "lockup", None)}
        nvic = getattr(cpu, "nvic", None)
        if nvic is not None and hasattr(cpu, "read_reg"):
            from unicorn import arm_const as A
            st["regs"] = [cpu.read_reg(getattr(A, f"UC_ARM_REG_R{i}")) for i in range(13)]
            st["ipsr"] = cpu.read_reg(A.UC_ARM_REG_XPSR) & 0x1FF
            st |= {k: getattr(nvic, k) for k in ("cfsr", "hfsr", "mmfar", "bfar")}
        return st

    def describe_address(self, address: int) -> str | None:
        """``usart3.ISR``, ``RAM_D1``: the model or memory at ``address`` (None: nothing)."""
        p = self.machine.peripheral_at(address)
        if p is not None:
            off = address - p.base
            reg = p.register_name(off)
            return f"{p.name}.{reg}" if reg is not None else f"{p.name}+{off:#x}"
        for name, b, n in self.machine.memories:
            if b <= address < b + n:
                return name
        return None

    def uart_problems(self) -> dict[str, list[str]]:
        from .board.host_uart import uart_problems
        out = uart_problems(self.machine)
        for name, port in self.__dict__.get("_uarts", {}).items():
            if port.problems():
                out[name] = port.problems() + out.get(name, [])
        return out


class AbsentMachine(MachineHandle):
    """The peer of a run that has none (``RunSpec.peer`` None): it says so when used."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.machine = None
        self.linked: tuple[str, ...] = ()

    def _none(self, what: str) -> ConfigError:
        return ConfigError(f"this run has no {self.name} (started with {self.name}=None): cannot "
                           f"{what}", field=self.name, expected=f"an ELF for the {self.name}")

    def symbol(self, name: str) -> int:
        raise self._none(f"look up {name}")

    def read_memory(self, address: int, size: int) -> bytes:
        raise self._none("read its memory")

    def write_memory(self, address: int, data: bytes) -> None:
        raise self._none("write its memory")

    def read_block(self, symbol: str) -> dict[str, object]:
        raise self._none(f"read {symbol}")

    def console(self) -> list[ConsoleLine]:
        return []

    def stall(self, duration_ps: int) -> None:
        raise self._none("stall it")

    def pc(self) -> int:
        raise self._none("read its pc")

    def uart(self, name: str) -> Any:
        raise self._none(f"open its {name}")


class RawFields:
    """``decode(raw)`` for a status block's bytes: the field reader's dict. For many rows at
    once (``SampleLog``): ``fields``, and ``rows(buffer)``, an iterator of each row's values in
    ``fields``' order, when the reader is one flat unpack of plain ints (else ``rows`` is None)."""

    __slots__ = ("fields", "reader", "rows")

    def __init__(self, reader: Any, size: int) -> None:
        self.reader = reader
        self.fields: tuple[str, ...] | None = getattr(reader, "fields", None)
        st = getattr(reader, "struct", None)
        self.rows: Callable[[bytes], Any] | None = None
        if self.fields and st is not None and getattr(reader, "ints", False) and st.size <= size:
            rows = struct.Struct(st.format + "x" * (size - st.size)).iter_unpack
            order = getattr(reader, "order", None)       # the struct's values -> fields' order
            if order is None or order == tuple(range(len(order))):
                self.rows = rows
            elif len(order) > 1:
                pick = operator.itemgetter(*order)
                self.rows = lambda buf: map(pick, rows(buf))

    def __call__(self, raw: bytes) -> dict[str, object]:
        return self.reader(raw, 0)


def _cpu_pc(cpu: Any) -> int:
    """The core's pc, whether the core class offers ``pc`` as a property or a method."""
    pc = getattr(cpu, "pc", None)
    if callable(pc):
        pc = pc()
    if pc is None:
        raise EngineError(f"{type(cpu).__name__} does not report its pc")
    return int(pc)


def _attach_console(machine: Machine, uart_name: str) -> Any | None:
    uart = machine.peripherals.get(uart_name)
    if uart is None:
        return None
    sink_cls = _optional("board.link", "ConsoleSink")
    if sink_cls is None:
        raise EngineError("the console sink (ConsoleSink in duohil/engines/builtin/board/link.py) is "
                          "missing")
    return sink_cls(uart, machine.name)


# -- the session -------------------------------------------------------------------------------------------
class BuiltinSession(Session):
    def __init__(self, spec: RunSpec, plant: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.scheduler = Scheduler(spec.quantum_ps)
        self.rng = random.Random(spec.seed)          # for fault plans; the models use none
        self._closed = False
        machines: dict[str, Machine] = {}
        images: dict[str, ElfImage] = {}
        # the peer is optional (spec.peer None: a user's STM32 image alone)
        parts = [(n, m) for n, m in (("stm32", spec.stm32), ("peer", spec.peer)) if m is not None]
        for name, mspec in parts:
            machines[name] = build_machine(mspec.platform, self.scheduler, name)
        for m in machines.values():       # the D-cache's residency draws follow the run's seed
            if getattr(m, "cache", None) is not None:
                from .cpus.m7.dcache import dcache_seed
                m.cache.seed = dcache_seed(spec.seed)
        for name, mspec in parts:
            images[name] = boot_machine(machines[name], mspec)
        self._machines = machines
        # link and consoles
        self.link = None
        a = machines["stm32"].peripherals.get(spec.link_uarts[0])
        b = machines["peer"].peripherals.get(spec.link_uarts[1]) if "peer" in machines else None
        if a is not None and b is None and spec.peer_replay is not None:   # a recorded peer
            from .board.replay_source import ReplaySource
            b = ReplaySource(self.scheduler, a, spec.peer_replay)
        if a is not None and b is not None:
            link_cls = _optional("board.link", "UartLink")
            if link_cls is None:
                raise EngineError("the UART link (UartLink in duohil/engines/builtin/board/link.py) is "
                                  "missing")
            # direction names are base.Direction's: "stm32->peer", "peer->stm32"
            self.link = link_cls(self.scheduler, a, b, names=("stm32", "peer"), seed=spec.seed)
        self.stm32 = BuiltinMachine("stm32", machines["stm32"], images["stm32"],
                                    _attach_console(machines["stm32"], spec.console_uarts[0]))
        self.peer: BuiltinMachine | AbsentMachine = AbsentMachine("peer")
        if "peer" in machines:
            self.peer = BuiltinMachine("peer", machines["peer"], images["peer"],
                                       _attach_console(machines["peer"], spec.console_uarts[1]))
        if self.link is not None:
            self.stm32.linked, self.peer.linked = (spec.link_uarts[0],), (spec.link_uarts[1],)
            self.stm32.link_sent = lambda: self._link_sent("stm32->peer")
            self.peer.link_sent = lambda: self._link_sent("peer->stm32")
        # the host's end of every other UART from the start, so nothing a firmware prints before
        # a test opens it is lost (a tap only: no event, no change to the run)
        for handle in (self.stm32, self.peer):
            for uart in handle.uarts():
                if uart not in handle.linked:
                    handle.uart(uart)
        # the motor plant on the STM32 side; a future RunSpec.plant (recommended) overrides the
        # engine-level parameters
        params = dict(plant or {}) | dict(getattr(spec, "plant", None) or {})
        self.plant = attach_plant(machines["stm32"], params)
        self._injector: Any = None           # inject.Injector, created at the first fault
        self._injected = 0

    # -- access -----------------------------------------------------------------------------------------
    def machine(self, name: str) -> Machine:
        m = self._machines.get(name)
        if m is None:
            raise KeyError(f"no machine {name!r} (have {', '.join(self._machines)})")
        return m

    @property
    def now_ps(self) -> int:
        return self.scheduler.now

    def run_until(self, t_ps: int) -> None:
        if self._closed:
            raise EngineError("session is closed")
        # The cyclic collector finds almost nothing to free in a run (what a run allocates is
        # freed by reference counting) yet took ~6% of its time (perf): it pauses while time
        # advances and catches up after. No result depends on when memory is reclaimed.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.scheduler.run_until(int(t_ps))
        finally:
            if was_enabled:
                gc.enable()

    def at(self, t_ps: int, action: Callable[[], None], name: str = "") -> None:
        self.scheduler.at(int(t_ps), action, name=name or getattr(action, "__name__", "action"))

    def inject(self, fault: Any) -> int | None:
        """Schedule one realised fault (duohil.faults.Fault) on the models' levers (inject.py);
        faults are numbered in the order they are injected (their index in the plan)."""
        if self._injector is None:
            injector_cls = _optional("inject", "Injector")
            if injector_cls is None:
                raise ConfigError(f"the builtin engine cannot inject {getattr(fault, 'kind', fault)}: "
                                  f"duohil/engines/builtin/inject.py is missing", field="faults")
            self._injector = injector_cls(self)
        index = self._injected
        self._injected += 1
        return self._injector.inject(fault, index)

    def observations(self) -> dict:
        """Extras for reports: the plant position, (t_ms, counts), at most one sample per ms and
        at most PLANT_POINTS in all (evenly decimated: a long soak's report stays small)."""
        if self.plant is None:
            return {}
        return {"plant": [(round(t / PS_PER_MS, 3), round(x, 1))
                          for t, x in self.plant.trace.points(PLANT_POINTS)]}

    def link_bytes(self) -> list[LinkByte]:
        # the link's own taps (a Sequence of LinkByte over its C columns, not a copy): a soak's
        # wire is not materialised as objects all at once
        return [] if self.link is None else self.link.taps  # type: ignore[return-value]

    def _link_sent(self, direction: str) -> bytes:
        """The bytes one side put on the link, as sent (before any fault), in order."""
        return bytes(b.sent if b.sent is not None else b.value for b in self.link_bytes()
                     if b.direction == direction and b.fault not in ("insert", "duplicate")
                     and (b.value is not None or b.sent is not None))

    def events(self) -> list[tuple[int, str, dict]]:
        return [(t, k, dict(d)) for t, k, d in self.scheduler.events()]

    def console(self) -> list[ConsoleLine]:
        lines = self.stm32.console() + self.peer.console()
        return sorted(lines, key=lambda ln: (ln.t_ps, ln.machine != "stm32"))

    def fingerprint(self) -> str:
        h = hashlib.sha256()

        def put(tag: str, data: bytes) -> None:
            t = tag.encode()
            h.update(len(t).to_bytes(4, "little") + t + len(data).to_bytes(8, "little") + data)

        put("now", str(self.scheduler.now).encode())
        for name in ("stm32", "peer"):
            m = self._machines.get(name)
            if m is None:                      # no peer in this run
                continue
            for region, base, size in m.ram_regions():
                # the same bytes as put(tag, whole region), hashed from the memory's own
                # storage without a copy (reading it through unicorn cost ~15 ms a run, and a
                # freed 8 MiB block leaves glibc serving later allocations from a heap it does
                # not give back)
                t = f"mem:{name}:{region}:{base:#x}:{size:#x}".encode()
                h.update(len(t).to_bytes(4, "little") + t + size.to_bytes(8, "little"))
                with memoryview(m.memory_store(base)) as view:
                    h.update(view)
            cache = getattr(m, "cache", None)
            if cache is not None:
                for r in getattr(cache, "regions", []):
                    put(f"cache-bus:{name}:{r.name}", bytes(r.bus))
                stale = sorted(getattr(cache, "_stale", {}))
                put(f"cache:{name}", _canon({"enabled": bool(getattr(cache, "enabled", False)),
                                             "stale": stale}))
            put(f"cpu:{name}", _canon({"pc": _cpu_pc(m.cpu), "cycles": m.cpu.cycles}))
        put("events", _canon(self.events()))
        # lists of plain ints/strings/None: json gives the bytes _canon would, without its walk
        put("console", _canon_flat([[ln.t_ps, ln.machine, ln.text] for ln in self.console()]))
        # the link's rows in chunks: the same bytes as _canon_flat of all rows, without holding
        # them all (a long soak has ~6000 bytes on the wire per virtual second)
        taps = self.link.taps if self.link is not None else []
        chunks = range(0, len(taps), _FP_CHUNK)

        def encoded(i: int) -> bytes:
            # _canon_flat's bytes without its per-value type check: the link's columns are C
            # (int time, direction name, int-or-None value and sent, fault name or None), read
            # as tuples (json writes a tuple as the list it was; no LinkByte made per byte)
            rows = (taps.chunk(i, i + _FP_CHUNK) if hasattr(taps, "chunk")
                    else [[b.t_ps, b.direction, b.value, b.sent, b.fault] for b in taps[i:i + _FP_CHUNK]])
            return json.dumps(rows, separators=(",", ":")).encode()[1:-1]
        # the size comes first: encode once and keep the chunks (~30 bytes a row) unless the
        # run is long, then encode twice rather than hold them all
        kept = [encoded(i) for i in chunks] if len(taps) <= _FP_KEEP_ROWS else None
        size = 2 + max(0, len(chunks) - 1) + sum(len(e) for e in (kept or map(encoded, chunks)))
        t = b"link"
        h.update(len(t).to_bytes(4, "little") + t + size.to_bytes(8, "little") + b"[")
        for k, i in enumerate(chunks):
            h.update((b"," if k else b"") + (kept[k] if kept is not None else encoded(i)))
        h.update(b"]")
        return h.hexdigest()

    def close(self) -> None:
        self._closed = True


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [_plain(x) for x in v]
        return sorted(items, key=repr) if isinstance(v, (set, frozenset)) else items
    name = getattr(v, "name", None)
    if isinstance(name, str):                 # enums, peripherals, CPUs: their name
        return f"{type(v).__name__}:{name}"
    return f"{type(v).__name__}"               # never repr(): it may hold a host address


def _canon(v: Any) -> bytes:
    return json.dumps(_plain(v), sort_keys=True, separators=(",", ":")).encode()


def _canon_flat(rows: list[list[Any]]) -> bytes:
    """``_canon`` for rows of None/bool/int/str only (asserted: anything else would need
    ``_plain``'s conversions and must go through ``_canon``)."""
    assert all(x is None or type(x) in (int, str, bool) for row in rows for x in row)
    return json.dumps(rows, separators=(",", ":")).encode()


# -- the engine --------------------------------------------------------------------------------------
class BuiltinEngine(Engine):
    """Unicorn CPUs, the native core (scheduler, exception paths), Python SoC models,
    deterministic virtual time.

    ``plant``: motor-plant parameters for the STM32 side (RunSpec has no field for them yet)."""

    name = "builtin"
    capabilities = ALL_CAPABILITIES

    def __init__(self, plant: dict[str, Any] | None = None, hang_ms: float | None = None) -> None:
        self.plant = dict(plant or {})
        #: how long a masked spin lasts before it is a hang (limits.HANG_PS when None)
        self.hang_ms = hang_ms

    #: the installed unicorn's version once the packages checked out: importlib.metadata's
    #: lookup cost ~2.5 ms every run of a campaign (a failure is asked again: the user may fix it)
    _packages_ok: str | None = None

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        version = BuiltinEngine._packages_ok
        if version is None:
            ok, why = cls._packages()
            if not ok:
                return ok, why
            version = BuiltinEngine._packages_ok = why
        from . import native
        if native.core() is None:           # the scheduler and both cores' exception paths are C
            return False, native.why()
        return True, f"unicorn {version}; {native.note()}"

    @classmethod
    def _packages(cls) -> tuple[bool, str]:
        """(True, unicorn's version) or (False, what is missing and how to install it).

        The version is the package's own ``unicorn.__version__`` (the engine imports it anyway;
        importlib.metadata's lookup cost a fresh process ~40 ms), the distribution's metadata only
        for an installed package that cannot be imported."""
        import importlib.util
        if importlib.util.find_spec("unicorn") is None:
            return False, (f"the Python package unicorn is not installed (run `make setup`, or "
                           f"pip install unicorn=={UNICORN_VERSION})")
        try:
            import unicorn
        except Exception as exc:  # noqa: BLE001 - e.g. a broken native library
            from importlib import metadata
            try:
                version = metadata.version("unicorn")
            except metadata.PackageNotFoundError:
                version = "?"
            return False, f"unicorn {version} is installed but cannot be imported: {exc}"
        version = str(getattr(unicorn, "__version__", "?"))
        if version != UNICORN_VERSION:
            return False, (f"unicorn {version} is installed; the builtin engine needs exactly "
                           f"{UNICORN_VERSION} (pip install unicorn=={UNICORN_VERSION})")
        if importlib.util.find_spec("elftools") is None:
            return False, "the Python package pyelftools is not installed (run `make setup`)"
        return True, version

    def start(self, spec: RunSpec) -> BuiltinSession:
        from . import native
        native.check_models_env()          # the retired DUOHIL_MODELS=python: refused, not ignored
        session = BuiltinSession(spec, plant=self.plant)
        if self.hang_ms is not None:
            for m in session._machines.values():
                if m is not None and m.cpu is not None:
                    m.cpu.hang_ps = round(float(self.hang_ms) * PS_PER_MS)
        return session


# -- one machine alone (model tests, benchmarks) --------------------------------------------------------
@dataclass
class Single:
    """One machine in its own scheduler, booted from an ELF."""

    scheduler: Scheduler
    machine: Machine
    image: ElfImage
    handle: BuiltinMachine
    plant: Any = None

    @property
    def now_ps(self) -> int:
        return self.scheduler.now

    @property
    def cpu(self) -> Any:
        return self.machine.cpu

    def run_until(self, t_ps: int) -> None:
        self.scheduler.run_until(int(t_ps))

    def run_for(self, duration_ps: int) -> None:
        self.scheduler.run_until(self.scheduler.now + int(duration_ps))

    def events(self) -> list[tuple[int, str, dict]]:
        return self.scheduler.events()


def single(platform: str | Path, elf: str | Path, *, name: str | None = None,
           quantum_ps: int = DEFAULT_QUANTUM_PS, config_symbol: str | None = None,
           config: dict[str, Any] | None = None, console_uart: str | None = None,
           plant: bool | dict[str, Any] = True) -> Single:
    """Build one machine from ``platform``, load ``elf`` and reset (no link).
    ``console_uart`` (e.g. "usart1") attaches a ConsoleSink, read with ``handle.console()``;
    ``plant``: True attaches the motor plant with default parameters when the machine has the
    board's motor wiring, a dict gives its parameters, False leaves it out."""
    sched = Scheduler(quantum_ps)
    mname = name or Path(platform).stem
    machine = build_machine(platform, sched, mname)
    img = boot_machine(machine, MachineSpec(Path(platform), Path(elf), config_symbol, dict(config or {})))
    console = _attach_console(machine, console_uart) if console_uart else None

    motor = None
    if plant is not False:
        motor = attach_plant(machine, plant if isinstance(plant, dict) else None)
    return Single(sched, machine, img, BuiltinMachine(mname, machine, img, console), motor)
