"""One MCU: a CPU, its memories and its peripherals on a system bus, in the shared virtual time.

Built from a platform file by ``platform.py`` (repl -> Machine); used by the session to load ELFs,
patch config blocks and reset. Peripheral MMIO is dispatched per 4 KiB page, because several STM32
blocks share a page (TIM6 at 0x40001000 and TIM7 at 0x40001400) and unicorn maps whole pages.

The dispatch is C, one copy (``_core.Bus``, native/bus.c): unicorn calls C callbacks for every run
of MMIO pages; an access finds its block in a sorted table and calls a native model's register map
directly (its ports.h ``_native_mmio`` capsule) or a Python model's ``read``/``write`` (the bound
methods ``bus_target`` picks: the model's own, or its register bank's when it does not override
them) by one vectorcall. The CPU's reads are counted (``mmio_reads``), writes that reach a model
too (``mmio_writes``); a replayed store drops its first ``suppress_writes`` MMIO writes. An
exception a model raises stops the slice and reaches the caller (kept on the Uc object as the
unicorn binding does). The table is rebuilt whenever a peripheral is added and at ``finish()``, so
a model that gets ``_native_mmio`` (or replaces its read/write) before then is served accordingly.
tests/test_native_bus.py is its specification.

Unmapped addresses: an access to an address no memory and no model claims, whether its page is
shared with a model (a hole: ``bus_read``/``bus_write`` find nothing) or not mapped at all (the
core's unmapped-memory hook), goes to ``unmapped_access``. It records one ``unmapped_access``
event per address and kind of access (address, the block of the chip's memory map it falls in,
memmap.py, the PC, the mode) and counts every access in ``unmapped``. What the access then does
is the platform's ``unmapped`` option (sysbus property, ``unmapped_mode``):
  - ``fault`` (default): the bus error silicon gives for a hole; the core takes it as its own
    access fault (Cortex-M7: precise BusFault for a load, imprecise for a store, IBUSERR for a
    fetch; RV32: load/store/instruction access fault);
  - ``warn``: a read returns 0 and a write is dropped (an unmapped page is mapped as a hole on
    its first access); a fetch still faults. DMA and harness accesses to a hole always read 0.
"""
from __future__ import annotations

import bisect
import ctypes
import mmap
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from duohil.errors import ConfigError

from .. import native

if TYPE_CHECKING:  # pragma: no cover
    from .peripheral import Peripheral
    from .scheduler import Scheduler

class CpuCore(Protocol):
    """What a machine needs of its CPU (cpus/cpu.py's CpuCore and its architectures): the unicorn
    engine it runs, whether it is inside a slice and since when, and what the bus tells it. The
    kernel knows cores only by this; the cores import the kernel, never the other way round."""

    name: str
    uc: Any
    executing: bool
    slice_start_ps: int

    def poll_hint(self, addr: int | None, wake_ps: int | None) -> None: ...

    def storm(self, kind: str, details: dict) -> None: ...

    def reset(self) -> None: ...


PAGE = 0x1000
_MISS = object()
_READ_BUF_SIZE = 0x1000


# ``_core.DmaPort`` (native/_core.c), how a DMA master sees memory when no D-cache model is
# installed (the D-cache replaces it with its own bus view): ``DmaPort(machine)``;
# ``read(address, size) -> bytes`` and ``write(address, data)`` on machine.cpu.uc's memory
# (uc_mem_read / uc_mem_write from C: unicorn's error as ``UcError``, the engine looked up again
# when machine.cpu is another object), ``machine``, and ``_native_dma_port``, the capsule by
# which a C DMA reaches memory without Python (native/ports.h). A port of one's own (a logging
# port in a test) is any object with ``read``/``write``, wrapping this one.
DmaPort = native.core_class("DmaPort")


def _machine_base() -> type:
    """``_core.MachineState``: ``cpu`` and ``scheduler`` as C members (ordinary attributes for
    Python) that every native unit's ``machine_now`` reads without a dict lookup; ``object``
    without a usable core (the module still imports; the engine says why it cannot run)."""
    core = native.core()
    return core.MachineState if core is not None else object


class Machine(_machine_base()):  # type: ignore[misc]
    def __init__(self, name: str, scheduler: "Scheduler", platform: str = "?") -> None:
        self._bus = native.require().Bus()       # the MMIO dispatch (module docstring)
        self.name = name
        self.scheduler = scheduler
        self.platform = platform
        self.cpu: "CpuCore | None" = None
        self.peripherals: dict[str, "Peripheral"] = {}
        self.memories: list[tuple[str, int, int]] = []      # (name, base, size), aliases included
        self._mmio: list[tuple[int, int, "Peripheral"]] = []  # sorted (base, end, peripheral)
        self._mmio_starts: list[int] = []
        self.dma_port: DmaPort = DmaPort(self)
        self.reset_hooks: list[Callable[[str], None]] = []
        #: called once at the end of ``finish()`` (the RCC pushes its reset clock tree then)
        self.finish_hooks: list[Callable[[], None]] = []
        self.resets = 0
        # A CPU that stops emulation from inside an MMIO write callback finds its PC back at the
        # storing instruction (unicorn rolls the instruction back, the device write stays done);
        # it replays that instruction with the first ``suppress_writes`` MMIO writes dropped.
        self.writing = False
        self.suppress_writes = 0
        self._disp: dict[int, tuple | None] = {}      # address -> (read, write, offset) memo
        self._read_port: Any = None                   # cpu.MemPort, made at the first read
        #: memory base (each alias) -> the mmap unicorn's pages are (mem_map_ptr): what the CPU
        #: wrote is there as soon as its slice returns (memory_store)
        self._stores: dict[int, mmap.mmap] = {}
        #: "fault" or "warn": what an access to an address no model claims does (module docstring)
        self.unmapped_mode = "fault"
        #: the chip's memory map for naming addresses (memmap.MAPS key), set by the platform builder
        self.memory_map: str | None = None
        #: address -> number of accesses to it that no model claimed
        self.unmapped: dict[int, int] = {}
        self._unmapped_seen: set[tuple[int, str]] = set()
        self._hole_pages: set[int] = set()
        self.mmio_reads = 0                           # CPU reads of MMIO (cortexm hang detection)
        self.mmio_writes = 0
        self._bus.set_hooks(self._hole)

    mmio_reads = property(lambda self: self._bus.reads,
                          lambda self, v: setattr(self._bus, "reads", v),
                          doc="CPU reads of MMIO (cortexm/riscv hang detection), counted in C")
    writing = property(lambda self: self._bus.writing,
                       lambda self, v: setattr(self._bus, "writing", v),
                       doc="inside a CPU write to MMIO")
    suppress_writes = property(lambda self: self._bus.suppress_writes,
                               lambda self, v: setattr(self._bus, "suppress_writes", v),
                               doc="CPU MMIO writes still to drop (a replayed store)")
    mmio_writes = property(lambda self: self._bus.writes,
                           lambda self, v: setattr(self._bus, "writes", v),
                           doc="writes that reached a model, and state-changing reads a C model "
                               "counts (a UART FIFO pop), counted in C: a CPU compares it (its "
                               "polling run, its masked-spin test) instead of being called")

    # -- time and the event log -----------------------------------------------------------------
    def now(self) -> int:
        cpu = self.cpu
        if cpu is not None and cpu.executing:
            return cpu.slice_start_ps
        return self.scheduler.now

    def record(self, kind: str, t: int | None = None, **details: Any) -> None:
        if self.scheduler.record(kind, t=self.now() if t is None else t, machine=self.name,
                                 **details) and self.cpu is not None:
            self.cpu.storm(kind, details)       # the same event >= 10 kHz: stop the CPU, say why

    # -- building ---------------------------------------------------------------------------------
    def attach_cpu(self, cpu: "CpuCore") -> None:
        if self.cpu is not None:
            raise ConfigError(f"machine {self.name} already has a CPU ({self.cpu.name})",
                              file=self.platform)
        self.cpu = cpu
        self.scheduler.add_cpu(cpu)

    def add_memory(self, name: str, addresses: list[int], size: int) -> None:
        """Map RAM/flash. Several addresses = aliases of the same storage (e.g. DRAM/IRAM)."""
        if self.cpu is None:
            raise ConfigError(f"memory {name} declared before the machine's CPU", file=self.platform)
        if size % PAGE or any(a % PAGE for a in addresses):
            raise ConfigError(f"memory {name}: base and size must be multiples of 4 KiB",
                              file=self.platform, field=name)
        # anonymous pages from the OS: zero, and committed only when written (the peer's 8 MiB
        # IROM holds a few hundred KiB of image; create_string_buffer zeroed all of it at every
        # start), and given back whole when the machine goes. The ctypes view keeps the map alive.
        # MAP_PRIVATE: a page never written reads as the kernel's shared zero page (mmap's default,
        # MAP_SHARED, is shmem: reading an untouched page commits and zeroes one, ~12 ms and
        # 8 MiB of RSS for the peer's IROM at the first fingerprint or reset scan; ~4 ms, none)
        store = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        backing = (ctypes.c_char * size).from_buffer(store)
        self._keep = getattr(self, "_keep", [])
        self._keep.append(backing)
        for a in addresses:
            self.cpu.uc.mem_map_ptr(a, size, 7, ctypes.addressof(backing))
            self.memories.append((name, a, size))
            self._stores[a] = store
        bound = getattr(self.cpu, "bound_memory_hooks", None)
        if bound is not None:                      # the unmapped-access hook: outside memories
            bound()

    def add_peripheral(self, p: "Peripheral") -> None:
        if p.name in self.peripherals:
            raise ConfigError(f"duplicate peripheral name {p.name}", file=self.platform)
        self.peripherals[p.name] = p
        if p.base is not None and p.size:
            end = p.base + p.size
            for b, e, q in self._mmio:
                if p.base < e and b < end:
                    raise ConfigError(f"{p.name} at {p.base:#x}+{p.size:#x} overlaps {q.name}",
                                      file=self.platform, field=p.name)
            i = bisect.bisect(self._mmio_starts, p.base)
            self._mmio.insert(i, (p.base, end, p))
            self._mmio_starts.insert(i, p.base)
        self._load_bus()

    def finish(self) -> None:
        """Map every MMIO page once all peripherals are known."""
        assert self.cpu is not None
        self._load_bus()
        # one mmio_map call per run of adjacent MMIO pages
        for start, end in _runs((b & ~(PAGE - 1), -(-e // PAGE) * PAGE) for b, e, _ in self._mmio):
            self._map_mmio(start, end - start)
        for hook in self.finish_hooks:
            hook()

    def _map_mmio(self, start: int, size: int) -> None:
        """One run of MMIO pages, mapped by the C bus with its own callbacks."""
        uc = self.cpu.uc
        self._bus.map(uc, uc._uch.value, start, size)

    @staticmethod
    def _pick(p: "Peripheral") -> tuple[Any, Any]:
        """A Python model's (read, write): its own, where a model's own may also be set on the
        object (``self.read = ...``), or its register bank's when it overrides neither (one
        call less per access)."""
        from .peripheral import Peripheral
        cls, own = type(p), p.__dict__
        return (p.read if "read" in own or cls.read is not Peripheral.read else p.regs.read,
                p.write if "write" in own or cls.write is not Peripheral.write else p.regs.write)

    def _load_bus(self) -> None:
        """The C table from ``_mmio``: per block the targets ``_pick`` gives, and the model's
        native register map when it has one (``_native_mmio``)."""
        self._disp.clear()
        self._bus.set_ranges([(b, e, *self._pick(p), getattr(p, "_native_mmio", None), p)
                              for b, e, p in self._mmio])

    def bus_target(self, address: int) -> tuple | None:
        """(read, write, offset) of the register at ``address``, memoised per address (the memo is
        dropped when a peripheral is added): what the C bus calls for a Python model, a native
        model's C methods for one. None: nothing there (a hole in a mapped page)."""
        hit = self._disp.get(address, _MISS)
        if hit is not _MISS:
            return hit
        p = self.peripheral_at(address)
        hit = None if p is None else (*self._pick(p), address - p.base)
        self._disp[address] = hit
        return hit

    def peripheral_at(self, address: int) -> "Peripheral | None":
        i = bisect.bisect(self._mmio_starts, address) - 1
        if i >= 0:
            b, e, p = self._mmio[i]
            if address < e:
                return p
        return None

    def bus_read(self, address: int, size: int) -> int:
        """A read of any address as the bus sees it (DMA, tests): 0 where nothing is."""
        return self._bus.read(address, size)

    def bus_write(self, address: int, size: int, value: int) -> None:
        """A write to any address as the bus sees it; it breaks a CPU's polling run."""
        self._bus.write(address, size, value)

    # -- unmapped addresses (module docstring) ------------------------------------------------------
    def _hole(self, address: int, access: str) -> None:
        """An access inside a mapped MMIO page that no model claims."""
        cpu = self.cpu
        by_cpu = cpu is not None and cpu.executing
        if not self.unmapped_access(address, access, by_cpu=by_cpu) and by_cpu:
            fault = getattr(cpu, "bus_error", None)
            if fault is not None:
                fault(address, access)
        elif by_cpu and access == "read":
            # warn mode: nothing will ever change what this address reads, so a firmware
            # polling it can park until some event fires (cpu.poll_hint, as status registers do)
            cpu.poll_hint(address, None)

    def unmapped_access(self, address: int, access: str, pc: int | None = None,
                        by_cpu: bool = True) -> bool:
        """Count and report an access (``read``/``write``/``fetch``) to an address no model
        claims. True when it completes (``warn``: read 0, write dropped), False when the core
        must fault (``fault`` mode, or any fetch)."""
        address &= 0xFFFF_FFFF
        self.unmapped[address] = self.unmapped.get(address, 0) + 1
        complete = self.unmapped_mode == "warn" and access != "fetch"
        if (address, access) not in self._unmapped_seen:
            self._unmapped_seen.add((address, access))
            from .memmap import block_name
            if pc is None and by_cpu and self.cpu is not None:
                pc_of = getattr(self.cpu, "pc", None)      # a method (M7) or a property (RV32)
                pc = pc_of() if callable(pc_of) else pc_of
            details: dict[str, Any] = {"address": address, "access": access,
                                       "block": block_name(self.memory_map, address),
                                       "mode": self.unmapped_mode if by_cpu else "bus",
                                       "action": ("read 0" if access == "read" else "dropped")
                                       if complete or not by_cpu else "bus error"}
            if pc is not None:
                details["pc"] = pc & 0xFFFF_FFFF
            self.record("unmapped_access", **details)
        return complete or not by_cpu

    def map_hole(self, address: int) -> bool:
        """``warn`` mode: map the unmapped page holding ``address`` as MMIO with no model in it,
        so its accesses come to ``bus_read``/``bus_write`` as holes. False if it cannot be."""
        page = address & ~(PAGE - 1)
        if page in self._hole_pages:
            return False
        self._hole_pages.add(page)
        try:
            self._map_mmio(page, PAGE)
        except Exception:  # noqa: BLE001 - unicorn refuses (overlap): the access faults instead
            return False
        return True

    # -- DMA --------------------------------------------------------------------------------------------
    def dma_read(self, address: int, size: int) -> bytes:
        return self.dma_port.read(address, size)

    def dma_write(self, address: int, data: bytes) -> None:
        self.dma_port.write(address, data)

    # -- memory for the harness --------------------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        # status blocks are read every few ms: a MemPort (unicorn's C call into a kept buffer),
        # not the binding's mem_read (a ctypes buffer and a bytearray per call)
        port = self._read_port
        if port is None:
            from .ucraw import MemPort
            port = self._read_port = MemPort(self.cpu.uc, _READ_BUF_SIZE)
        if size > port.size:
            return bytes(self.cpu.uc.mem_read(address, size))
        return port.read(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self.cpu.uc.mem_write(address, bytes(data))

    def memory_store(self, base: int) -> mmap.mmap:
        """The storage of the memory mapped at ``base`` (a base in ``memories``: add_memory maps
        every memory from one), for reading a whole region without copying it (fingerprints, the
        peer's reset-time scan, status sampling): an mmap whose byte ``i`` is the one at
        ``base + i``. Only between slices; never written through."""
        return self._stores[base]

    def ram_regions(self) -> list[tuple[str, int, int]]:
        """Memories without their aliases (for fingerprints)."""
        seen: set[str] = set()
        out = []
        for name, base, size in self.memories:
            if name not in seen:
                seen.add(name)
                out.append((name, base, size))
        return out

    # -- reset -----------------------------------------------------------------------------------------
    def system_reset(self, cause: str) -> None:
        """A reset from inside the machine (SYSRESETREQ, watchdog): CPU and peripherals reset,
        memory keeps its contents as on silicon (startup code re-initialises .data/.bss; no-init
        RAM survives)."""
        self.resets += 1
        self.record("reset", cause=cause)
        for p in self.peripherals.values():
            p.reset()
        for hook in self.reset_hooks:
            hook(cause)
        assert self.cpu is not None
        self.cpu.reset()
        if self.cpu.executing:
            self.cpu.uc.emu_stop()


def _runs(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Page-aligned [start, end) spans merged where they overlap or touch, in address order
    (a set of every page cost ~8 ms a machine: a platform has a few 64 KiB-and-larger blocks)."""
    runs: list[tuple[int, int]] = []
    for b, e in sorted(spans):
        if runs and b <= runs[-1][1]:
            if e > runs[-1][1]:
                runs[-1] = (runs[-1][0], e)
        else:
            runs.append((b, e))
    return runs


def _register_native() -> None:
    """The native units compute ``machine.now()`` in C for machines whose class keeps
    ``Machine.now`` (its rule, written once in _core.c: plain_machine_now)."""
    core = native.core()
    if core is not None:
        core.register_machine_now(Machine.now)


_register_native()
