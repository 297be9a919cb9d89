"""Cortex-M7 L1 D-cache, as far as DMA coherency is concerned (unicorn.md section 8).

Renode has no functional cache model: memory is always coherent, so a missing invalidate or clean
can never show (renode.md section 1.5). This model makes the firmware's cache maintenance (its
``FIX_DCACHE`` code) decide what the CPU and the DMA see, at no cost per load or store:

  - unicorn's memory is the **CPU view** (cache + RAM as the core sees it);
  - a bytearray per tracked region is the **bus view** (what the SRAM holds, what DMA sees);
  - with CCR.DC=1, a DMA write lands in the bus view only and marks its 32-byte lines
    *stale*: the CPU keeps reading the old bytes until it invalidates the line (DCIMVAC,
    DCCIMVAC, set/way); a DMA read takes the bus view, so CPU writes reach the DMA only once the
    line is cleaned (DCCMVAC, DCCIMVAC, set/way);
  - with CCR.DC=0, and for addresses the MPU marks non-cacheable, everything is coherent:
    DMA reads and writes the CPU view directly.

CPU writes are invisible to the model (no hooks), so a clean compares instead: a line the DMA
has not written is cleaned by copying CPU -> bus (a line the CPU did not dirty copies identical
bytes). For a stale line the model keeps the bytes the line held before the first DMA write
(``base``); the CPU dirtied the line iff its view differs from ``base``. Then, as on silicon:
  - clean: a dirty line is written back over the DMA's data (the classic misaligned-buffer bug);
    a clean line stays stale (clean does not refresh the CPU's copy);
  - invalidate: the CPU view takes the bus view, discarding the CPU's writes to that line;
  - clean+invalidate: a dirty line is written back, a clean one refreshed.

Residency (the environment knob; ``set_residency``). 16 KiB of cache cannot hold every line, but
when a line is evicted depends on the CPU's access stream, which the model does not see. Instead
each tracked line gets a *residency time* r(line) in [r_min, r_max] ps, drawn once per line from
``random.Random(k)`` where k is an integer built from (``seed``, line address) -- never ``hash()``,
never the global RNG; ``seed`` is ``dcache_seed(run seed)``, set by the session -- so a run is
reproducible for a given seed and the spread of r across lines is what makes staleness partial.
A line's CPU copy is *allocated* at ``alloc_time``: when the cache was enabled, and again at
every resolution of the line (maintenance by address or set/way, an eviction, a fresh DMA write,
a write-back before a DMA read). The line is *resident*
at t while t < alloc_time + r(line):
  - DMA write, line resident: bus view only, the line goes (or stays) stale for the CPU, and one
    eviction event is scheduled at alloc_time + r(line);
  - DMA write, line not resident: the CPU would fetch the line anew, so the write reaches both
    views (dirty CPU data was written back when the line was evicted) and alloc_time = now.
    Approximation: the CPU is assumed to read (and cache) the line right after the DMA wrote it,
    so the next DMA write to it within r(line) is stale again;
  - eviction of a stale line (the event at alloc_time + r): as clean+invalidate -- a line the CPU
    dirtied is written back whole (over the DMA's bytes), a clean one takes the bus view; then
    alloc_time = the eviction time (the same approximation: the CPU refetches it at once);
  - DMA read, residency expired since the last resolution: the line was evicted before, so the
    CPU's bytes are written back first (bus := CPU) and alloc_time = now; otherwise the DMA reads
    the bus view (stale if the CPU did not clean it);
  - maintenance operations keep their semantics below and set alloc_time = now for the lines
    they touch (first applying any eviction that was due at or before now).
Costs: nothing per load or store; per DMA access a dict look-up per line; scheduler events only
for stale lines (one per line at most, moved or cancelled when the line is resolved). Counters:
``stale_evictions`` (stale lines evicted), ``writebacks`` (dirty lines written back because their
residency ended: at eviction, before a DMA read or write), ``fresh_writes`` (DMA line writes that
reached the CPU at once). ``set_residency(None)`` keeps every line resident for ever (the old
worst case: with FIX_DCACHE=0 the link is dead, the CPU never sees a DMA-written byte).
``DEFAULT_RESIDENCY_PS`` = [10 us, 150 us]. r is an *effective* window, not a physical lifetime:
since a ring line is taken as allocated at its first fresh DMA byte, what matters is how r
compares with the UART character time (87 us at 115200 baud) and the firmware's read latency.
Measured with the pooled-packed peer, 1.5 s, seeds 0-3: fixed-no-dcache 83-94 % of frames ok
with 20-59 CRC errors, buggy 64-84 % ok with 52-125 CRC errors (first ones within 100 ms), fixed
no error; no sequence regression and no stale telemetry at this setting. Longer ranges give the
other field symptoms at the price of a mostly dead RX path: r > ~2 telemetry periods (20 ms) on
the TX line makes telemetry repeat (peer ``telemetry_stale``), ms-range residencies re-execute
old setpoints (``seq_regressions``), e.g. [1 ms, 20 ms]: fixed-no-dcache ~30 frames ok of 343,
0-9 regressions. The TX line is refreshed only by resolutions the model sees (CPU writes are
invisible), so TX staleness needs r longer than the time between two frames.

Other simplifications, deterministic:
  - no allocation policy, no write-through regions; the CPU's reads are never seen, so a stale
    read is never recorded (reports use the counters above);
  - set/way operations (DCISW, DCCSW, DCCISW) act on all tracked lines at the first write of a
    burst (CMSIS writes them 512 times in a loop); the rest of the burst is skipped unless a DMA
    write or another maintenance operation came in between;
  - DCISW (invalidate by set/way) refreshes stale lines from the bus view; every other line is
    treated as already written back (bus view := CPU view), because discarding all CPU writes to
    the whole of a 512 KiB SRAM since the cache was enabled is not what 16 KiB of cache does;
  - disabling the cache (CCR.DC 1 -> 0), a system reset, and an MPU change while the cache is on
    resolve every line as clean+invalidate (silicon loses dirty lines at reset; we keep them);
  - DTCM/ITCM are never cached; untracked memory (flash, backup SRAM by default) is coherent;
  - a CPU write of the value a byte already holds is not seen as dirtying its line.

Call sites: the SCS model calls set_enabled / invalidate / clean / clean_invalidate / *_all /
mpu_changed on firmware writes; DMA models reach memory through ``machine.dma_read/dma_write``,
which this object serves once installed as ``machine.dma_port``.

The model is C, one copy (native/dcache.c, the ``_core.DCache`` object ``DCache._c``): the bus
views, stale lines with their base copies, residency draws, allocation times, eviction events, the
MPU attribute memo, the set/way burst state and the counters. ``DCache`` below is its Python face
(construction, ``set_residency``'s argument forms, ``seed``, ``regions``, ``stats``); the hot calls
are the C object's own methods and ``_native_dma_port`` (native/ports.h) lets a DMA model in C
reach it without Python. tests/test_native_dcache.py is its specification (the rules above, checked
at every step of Hypothesis programs), with tests/test_dcache.py's firmware-level cases.
"""
from __future__ import annotations

import ctypes
import hashlib
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ....base import PS_PER_US
from ... import native

if TYPE_CHECKING:  # pragma: no cover
    from ...kernel.machine import Machine
    from ...kernel.scheduler import Event

LINE = 32                                  # bytes per D-cache line (CMSIS __SCB_DCACHE_LINE_SIZE)
SETS, WAYS = 128, 4                        # H743: 16 KiB, 4-way -> one CMSIS set/way loop = 512 ops

#: Cacheable SRAMs a DMA1/2 master can reach (stm32h7-registers.md section 1).
H743_DMA_SRAMS: tuple[tuple[str, int, int], ...] = (
    ("axisram", 0x2400_0000, 0x8_0000),
    ("sram1", 0x3000_0000, 0x2_0000),
    ("sram2", 0x3002_0000, 0x2_0000),
    ("sram3", 0x3004_0000, 0x8000),
    ("sram4", 0x3800_0000, 0x1_0000),
)

#: Residency range [r_min, r_max] in ps used when none is configured (see the module notes).
DEFAULT_RESIDENCY_PS: tuple[int, int] | None = (10 * PS_PER_US, 150 * PS_PER_US)

_DEFAULT = object()


def residency_key(seed: int, line: int) -> int:
    """The integer that seeds a line's residency draw: (seed, line address) packed without
    ``hash()`` (whose value for str changes with PYTHONHASHSEED), distinct for distinct pairs.
    Negative seeds are folded zig-zag (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...)."""
    seed = int(seed)
    z = 2 * seed if seed >= 0 else -2 * seed - 1
    return (z << 32) | (int(line) & 0xFFFF_FFFF)


def dcache_seed(run_seed: int) -> int:
    """The D-cache's own seed, derived from the run's seed (``RunSpec.seed``): a stream of its
    own, so its residency draws never coincide with the link noise's or the fault plan's, and a
    pure function of the run's seed (sha256, never ``hash()``)."""
    digest = hashlib.sha256(b"duohil/dcache-residency/%d" % int(run_seed)).digest()
    return int.from_bytes(digest[:8], "big")


def residency_draw(seed: int, line: int, r_min: int, r_max: int) -> int:
    """r(line) in [r_min, r_max] ps: a function of (seed, line, range) only."""
    return random.Random(residency_key(seed, line)).randint(r_min, r_max)


def _wanted_regions(regions: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    wanted = []
    for name, base, size in regions:
        if base % LINE or size % LINE:
            raise ValueError(f"D-cache region {name} at {base:#x}+{size:#x} must be "
                             f"{LINE}-byte aligned")
        wanted.append((name, base, size))
    return wanted


def _residency_range(min_ps: int | tuple[int, int] | None,
                     max_ps: int | None = None) -> tuple[int, int] | None:
    """``set_residency``'s argument forms -> (r_min, r_max) or None."""
    if isinstance(min_ps, (tuple, list)):
        if max_ps is not None:
            raise ValueError("set_residency: give a (min, max) pair or two numbers, not both")
        min_ps, max_ps = min_ps
    if min_ps is None:
        if max_ps is not None:
            raise ValueError("set_residency(None) takes no maximum")
        return None
    lo = int(min_ps)
    hi = lo if max_ps is None else int(max_ps)
    if lo <= 0 or hi < lo:
        raise ValueError(f"residency range must be 0 < min <= max ps, got [{lo}, {hi}]")
    return (lo, hi)


def host_views(machine: Machine) -> list[tuple[int, int, int]]:
    """(base, end, host address) of each memory, when the machine maps them with
    ``mem_map_ptr`` onto buffers it keeps (machine.add_memory): the CPU view is then read
    straight from host memory (unicorn's mem_read costs ~20 us per call). Empty when the
    layout is not the expected one: every read then goes through unicorn."""
    keep = getattr(machine, "_keep", None)
    names: list[str] = []
    for name, _b, _n in machine.memories:
        if name not in names:
            names.append(name)
    if not keep or len(keep) != len(names):
        return []
    out = []
    for name, base, size in machine.memories:
        buf = keep[names.index(name)]
        if not isinstance(buf, ctypes.Array) or ctypes.sizeof(buf) != size:
            return []
        out.append((base, base + size, ctypes.addressof(buf)))
    return out


class _Region:
    """A tracked region: name, base, size, end, and ``bus``, a copy of its bus view (the bytes
    live in C)."""

    __slots__ = ("_c", "base", "end", "name", "size")

    def __init__(self, c: object, name: str, base: int, size: int) -> None:
        self._c = c
        self.name = name
        self.base = base
        self.size = size
        self.end = base + size

    @property
    def bus(self) -> bytes:
        return self._c.bus(self.base, self.size)


def _c_counter(name: str) -> property:
    return native.c_attr(name, f"{name} (kept in C)", writable=False)


class DCache:
    """D-cache coherency model; installs itself as ``machine.cache`` and ``machine.dma_port``.

    ``seed``: the residency draws' seed (a session sets ``dcache_seed(run seed)``);
    ``residency``: ``(r_min_ps, r_max_ps)``, ``None`` (every line resident for ever), or omitted
    for ``DEFAULT_RESIDENCY_PS``. The state is the C object's (``_c``); ``read``/``write`` (as
    machine.dma_port), the SCS's maintenance operations (``invalidate``, ``clean``,
    ``clean_invalidate`` by address, ``invalidate_all``, ``clean_all``, ``clean_invalidate_all``
    by set/way, ``set_enabled``, ``mpu_changed``), the eviction events and ``residency_of``,
    ``alloc_time``, ``stale_lines`` are its methods. The residency draws are Python's
    ``random.Random(key).randint`` computed in C (same MT19937 seeding and rejection sampling:
    tests/test_native_dcache.py checks many keys against ``residency_draw``). Not supported:
    overlapping regions (refused), residency or allocation times past 2**63 ps."""

    def __init__(self, machine: Machine,
                 regions: Iterable[tuple[str, int, int]] = H743_DMA_SRAMS, *,
                 seed: int = 0, residency: tuple[int, int] | None | object = _DEFAULT) -> None:
        self.machine = machine
        self._wanted = _wanted_regions(regions)
        c = self._c = native.require().DCache(machine, [(b, n) for _name, b, n in self._wanted],
                                           host_views)
        self._views: dict[int, _Region] = {}
        # the C methods themselves, so that callers (the SCS, DMA models) reach C in one call
        for name in ("read", "write", "invalidate", "clean", "clean_invalidate", "invalidate_all",
                     "clean_all", "clean_invalidate_all", "set_enabled", "mpu_changed",
                     "residency_of", "alloc_time", "stale_lines", "_on_reset", "_on_evict"):
            setattr(self, name, getattr(c, name))
        c.seed = seed
        self.set_residency(*((DEFAULT_RESIDENCY_PS,) if residency is _DEFAULT else (residency,)))
        machine.cache = self
        machine.dma_port = self
        machine.reset_hooks.append(self._on_reset)

    def set_residency(self, min_ps: int | tuple[int, int] | None,
                      max_ps: int | None = None) -> None:
        """Residency range of a line's CPU copy, in ps: ``set_residency(r_min, r_max)``,
        ``set_residency((r_min, r_max))``, ``set_residency(r)`` (fixed), or ``set_residency(None)``
        (resident for ever: a DMA write is stale until the firmware invalidates). Lines keep their
        allocation times; their residency is drawn again from the new range."""
        self._c.set_range(_residency_range(min_ps, max_ps))

    @property
    def residency(self) -> tuple[int, int] | None:
        return self._c.residency

    @property
    def seed(self) -> int:
        return self._c.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._c.seed = value

    @property
    def enabled(self) -> bool:
        return self._c.enabled

    @property
    def _native_dma_port(self) -> object:
        """ports.h's capsule (duohil.native.dmaport); valid while this object lives."""
        return self._c._native_dma_port

    @property
    def _evict_ev(self) -> dict[int, Event]:
        """Stale line -> its pending eviction event (a snapshot)."""
        return self._c.events()

    @property
    def _stale(self) -> dict[int, bytes]:
        """Stale line -> its bytes before the first DMA write (a snapshot)."""
        return self._c.stale_bases()

    @property
    def regions(self) -> list[_Region]:
        """Tracked regions: the wanted ones that the platform maps (platform files may declare
        memories after the CPU, so this is resolved at first use and when memories are added)."""
        names = {b: name for name, b, _n in self._wanted}
        out = []
        for base, size in self._c.active_regions():
            v = self._views.get(base)
            if v is None:
                v = self._views[base] = _Region(self._c, names[base], base, size)
            out.append(v)
        return out

    def stats(self) -> dict[str, int]:
        """Counters for reports."""
        c = self._c
        return {"dma_stale_writes": c.dma_stale_writes, "fresh_writes": c.fresh_writes,
                "stale_evictions": c.stale_evictions, "writebacks": c.writebacks,
                "lines_invalidated": c.lines_invalidated,
                "lines_written_back": c.lines_written_back, "set_way_runs": c.set_way_runs,
                "stale_lines": len(c.stale_lines())}

    dma_stale_writes = _c_counter("dma_stale_writes")
    lines_invalidated = _c_counter("lines_invalidated")
    lines_written_back = _c_counter("lines_written_back")
    set_way_ops = _c_counter("set_way_ops")
    set_way_runs = _c_counter("set_way_runs")
    stale_evictions = _c_counter("stale_evictions")
    writebacks = _c_counter("writebacks")
    fresh_writes = _c_counter("fresh_writes")
