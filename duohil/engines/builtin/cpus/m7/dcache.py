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

Two implementations: ``DCache(...)`` is ``DCacheNative`` under ``DUOHIL_MODELS=native`` (the
default when the native core is built): the same model with its state in C (native/dcache.c),
its methods the C object's, and ``_native_dma_port`` (native/ports.h) for a DMA model in C. The
class below is the reference; tests/test_native_dcache.py proves both equal.
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
    __slots__ = ("base", "bus", "end", "name", "size")

    def __init__(self, name: str, base: int, size: int) -> None:
        self.name = name
        self.base = base
        self.size = size
        self.end = base + size
        self.bus = bytearray(size)          # the bus (SRAM) view


class DCache:
    """D-cache coherency model; installs itself as ``machine.cache`` and ``machine.dma_port``.

    ``seed``: the residency draws' seed (a session sets ``dcache_seed(run seed)``);
    ``residency``: ``(r_min_ps, r_max_ps)``, ``None`` (every line resident for ever), or omitted
    for ``DEFAULT_RESIDENCY_PS``."""

    def __new__(cls, *args: object, **kwargs: object) -> DCache:
        # under DUOHIL_MODELS=native the line bookkeeping lives in C (DCacheNative below)
        if cls is DCache and native.models() == "native":
            cls = DCacheNative
        return super().__new__(cls)

    def __init__(self, machine: Machine,
                 regions: Iterable[tuple[str, int, int]] = H743_DMA_SRAMS, *,
                 seed: int = 0, residency: tuple[int, int] | None | object = _DEFAULT) -> None:
        self.machine = machine
        self._wanted = _wanted_regions(regions)
        self._regions: list[_Region] = []
        self._mem_count = -1                 # regions are matched to the machine's memories lazily
        self._host: list[tuple[int, int, int]] = []   # see _host_views
        self._last_region: _Region | None = None
        self._host_n = -1
        self.enabled = False                 # CCR.DC
        #: stale line address -> the line's bytes before the first DMA write since the last sync
        self._stale: dict[int, bytes] = {}
        self._nc_cache: dict[int, bool] = {}      # line address -> non-cacheable (MPU), memoised
        self._gen = 0                             # bumps on anything a set/way burst must see
        self._burst: tuple[str, int] | None = None
        self._burst_calls = 0
        # residency
        self._seed = int(seed)
        self._residency: tuple[int, int] | None = None
        self._r: dict[int, int] = {}              # line -> r(line), memoised draws
        self._epoch = 0                           # alloc_time of every line not in _alloc
        self._alloc: dict[int, int] = {}          # line -> alloc_time
        self._evict_ev: dict[int, Event] = {}     # stale line -> its pending eviction event
        # statistics for the harness and tests
        self.dma_stale_writes = 0                 # DMA line writes that left a line stale
        self.lines_invalidated = 0
        self.lines_written_back = 0               # by maintenance operations
        self.set_way_ops = 0
        self.set_way_runs = 0
        self.stale_evictions = 0                  # stale lines evicted when their residency ended
        self.writebacks = 0                       # dirty lines written back as residency ended
        self.fresh_writes = 0                     # DMA line writes to non-resident lines
        self.set_residency(*((DEFAULT_RESIDENCY_PS,) if residency is _DEFAULT else (residency,)))
        machine.cache = self
        machine.dma_port = self
        machine.reset_hooks.append(self._on_reset)

    # -- residency knob ------------------------------------------------------------------------------
    def set_residency(self, min_ps: int | tuple[int, int] | None,
                      max_ps: int | None = None) -> None:
        """Residency range of a line's CPU copy, in ps: ``set_residency(r_min, r_max)``,
        ``set_residency((r_min, r_max))``, ``set_residency(r)`` (fixed), or ``set_residency(None)``
        (resident for ever: a DMA write is stale until the firmware invalidates). Lines keep their
        allocation times; their residency is drawn again from the new range."""
        self._residency = _residency_range(min_ps, max_ps)
        self._r.clear()
        self._reschedule_all()

    @property
    def residency(self) -> tuple[int, int] | None:
        return self._residency

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = int(value)
        self._r.clear()
        self._reschedule_all()

    def residency_of(self, line: int) -> int | None:
        """r(line) in ps (None: resident for ever)."""
        if self._residency is None:
            return None
        la = line & ~(LINE - 1)
        r = self._r.get(la)
        if r is None:
            r = self._r[la] = residency_draw(self._seed, la, *self._residency)
        return r

    def alloc_time(self, line: int) -> int:
        return self._alloc.get(line & ~(LINE - 1), self._epoch)

    def _now(self) -> int:
        return self.machine.now()

    def _deadline(self, la: int) -> int | None:
        """alloc_time + r(line): the first time the line is no longer resident."""
        r = self.residency_of(la)
        return None if r is None else self._alloc.get(la, self._epoch) + r

    def _schedule(self, la: int) -> None:
        """(Re)place the eviction event of stale line la at its deadline."""
        t = self._deadline(la)
        ev = self._evict_ev.get(la)
        if ev is not None:
            if t is not None and ev.time == t and not ev.cancelled:
                return
            ev.cancel()
            del self._evict_ev[la]
        if t is not None and self.enabled:
            self._evict_ev[la] = self.machine.scheduler.at(t, self._on_evict, la,
                                                           name="dcache-evict")

    def _unschedule(self, la: int) -> None:
        ev = self._evict_ev.pop(la, None)
        if ev is not None:
            ev.cancel()

    def _reschedule_all(self) -> None:
        for ev in self._evict_ev.values():
            ev.cancel()
        self._evict_ev.clear()
        for la in sorted(self._stale):
            self._schedule(la)

    def _on_evict(self, la: int) -> None:
        self._evict_ev.pop(la, None)
        if not self.enabled or la not in self._stale:
            return
        r = self._region(la)
        t = self._deadline(la)
        if r is None or t is None:
            return
        if self._now() < t:                   # moved without cancelling (should not happen)
            self._schedule(la)
            return
        self._evict_line(r, la, t)

    def _evict_line(self, r: _Region, la: int, t: int) -> None:
        """The stale line's CPU copy leaves the cache at t: written back whole if the CPU dirtied
        it, else dropped (the CPU then reads the bus view); re-allocated at t."""
        self._unschedule(la)
        base = self._stale.pop(la)
        cpu = self._cpu(la)
        i = la - r.base
        if cpu != base:
            r.bus[i:i + LINE] = cpu
            self.writebacks += 1
        else:
            self._set_cpu(la, r.bus[i:i + LINE])
        self.stale_evictions += 1
        self._alloc[la] = t

    def _expire(self, r: _Region, la: int, now: int) -> bool:
        """Apply what residency did to line la before ``now``. True if the line is not resident
        at ``now`` (its copy was evicted, dirty bytes written back: both views in step); the
        caller then re-allocates it (alloc_time = now)."""
        t = self._deadline(la)
        if t is None or now < t:
            return False
        if la in self._stale:                 # its eviction was due (same-time event not yet run)
            self._evict_line(r, la, t)
            t = self._deadline(la)
            if now < t:
                return False
        i = la - r.base
        cpu = self._cpu(la)
        if r.bus[i:i + LINE] != cpu:           # a dirty line, evicted: written back
            r.bus[i:i + LINE] = cpu
            self.writebacks += 1
        return True

    def _touch(self, r: _Region, la: int) -> None:
        """Before a maintenance op by address: run the line's eviction if it was due (its event
        at the same time has not fired yet). An expired line that is not stale is left to the op
        (its semantics are kept: clean writes back, invalidate discards the CPU's bytes)."""
        if la in self._stale:
            t = self._deadline(la)
            if t is not None and t <= self._now():
                self._evict_line(r, la, t)

    def _allocated(self, la: int) -> None:
        """Line la was resolved by a maintenance operation: allocated now, event moved."""
        if self._residency is None:
            return
        self._alloc[la] = self._now()
        if la in self._stale:
            self._schedule(la)
        else:
            self._unschedule(la)

    def _flush_due(self) -> None:
        """Run the evictions due at or before now whose events have not fired yet."""
        now = self._now()
        for la in sorted(la for la, ev in self._evict_ev.items() if ev.time <= now):
            r = self._region(la)
            t = self._deadline(la)
            if r is not None and t is not None and la in self._stale and t <= now:
                self._evict_line(r, la, t)

    def _all_allocated(self) -> None:
        """Every line was resolved (set/way, enable/disable, MPU change): allocated now."""
        self._epoch = self._now()
        self._alloc.clear()
        self._reschedule_all()

    # -- geometry ------------------------------------------------------------------------------------
    @property
    def regions(self) -> list[_Region]:
        """Tracked regions: the wanted ones that the platform maps (platform files may declare
        memories after the CPU, so this is resolved at first use and when memories are added)."""
        mems = self.machine.memories
        if self._mem_count != len(mems):
            have = {r.base: r for r in self._regions}
            self._regions = [have.get(base) or _Region(name, base, size)
                             for name, base, size in self._wanted
                             if any(b <= base and base + size <= b + n for _m, b, n in mems)]
            self._mem_count = len(mems)
            if self.enabled:                  # a region that appears while the cache is on
                for r in self._regions:
                    if r.base not in have:
                        r.bus[:] = self.machine.cpu.uc.mem_read(r.base, r.size)
        return self._regions

    def _region(self, address: int) -> _Region | None:
        for r in self.regions:
            if r.base <= address < r.end:
                return r
        return None

    def _cacheable(self, line: int) -> bool:
        mpu = getattr(self.machine, "mpu", None)
        if mpu is None:
            return True
        nc = self._nc_cache.get(line)
        if nc is None:
            cacheable, _ok = mpu.attributes(line)
            nc = self._nc_cache[line] = not cacheable
        return not nc

    def _cpu(self, line: int) -> bytes:
        ptr = self._host_ptr(line, LINE)
        if ptr is not None:
            return ctypes.string_at(ptr, LINE)
        return bytes(self.machine.cpu.uc.mem_read(line, LINE))

    def _host_ptr(self, address: int, size: int) -> int | None:
        """Host address of [address, address+size) in the CPU view, or None."""
        mems = self.machine.memories
        if self._host_n != len(mems):
            self._host = self._host_views()
            self._host_n = len(mems)
        for base, end, ptr in self._host:
            if base <= address and address + size <= end:
                return ptr + (address - base)
        return None

    def _cpu_write(self, address: int, data: bytes) -> None:
        """Write the CPU view. Straight into the host memory unicorn maps when we can (the
        binding's mem_write was most of a DMA byte's cost on a non-resident line). Safe because
        the D-cache tracks data memory only: no translated code lives there to invalidate (and
        the RAM blocks no longer overlap the flash, cpu._separate_ram_blocks)."""
        ptr = self._host_ptr(address, len(data))
        if ptr is not None:
            ctypes.memmove(ptr, bytes(data), len(data))
        else:
            self.machine.cpu.uc.mem_write(address, bytes(data))

    def _host_views(self) -> list[tuple[int, int, int]]:
        return host_views(self.machine)

    def _set_cpu(self, line: int, data: bytes) -> None:
        self._cpu_write(line, data)

    def stale_lines(self) -> list[int]:
        """Lines the DMA wrote that the CPU has not yet invalidated (for tests and reports)."""
        return sorted(self._stale)

    def stats(self) -> dict[str, int]:
        """Counters for reports."""
        return {"dma_stale_writes": self.dma_stale_writes, "fresh_writes": self.fresh_writes,
                "stale_evictions": self.stale_evictions, "writebacks": self.writebacks,
                "lines_invalidated": self.lines_invalidated,
                "lines_written_back": self.lines_written_back, "set_way_runs": self.set_way_runs,
                "stale_lines": len(self._stale)}

    # -- DmaPort (how DMA masters see memory) ------------------------------------------------------------
    def _fast_region(self, address: int) -> _Region | None:
        """``_region`` with the last hit remembered (one DMA stream works in one region)."""
        r = self._last_region
        if r is not None and r.base <= address < r.end and \
                self._mem_count == len(self.machine.memories):
            return r
        r = self._last_region = self._region(address)
        return r

    def _expired(self, r: _Region, la: int, now: int) -> bool:
        """``_expire`` with the common case (still resident) decided inline."""
        rr = self._r.get(la)
        if rr is not None and now < self._alloc.get(la, self._epoch) + rr:
            return False
        return self._expire(r, la, now)

    def read(self, address: int, size: int) -> bytes:
        timed = self._residency is not None
        now = self._now() if timed else 0
        la = address & ~(LINE - 1)
        if self.enabled and size > 0 and (address + size - 1) & ~(LINE - 1) == la:
            # fast path (one DMA item): within one line, so one piece and one line
            r = self._fast_region(address)
            if r is not None:
                return self._read_line(r, la, address - la, size, now, timed)
        out = bytearray()
        for a, n, r in self._pieces(address, size):
            if r is None or not self.enabled:
                out += self.machine.cpu.uc.mem_read(a, n)
            else:
                for la, off, m in self._lines(a, n):
                    out += self._read_line(r, la, off, m, now, timed)
        return bytes(out)

    def _read_line(self, r: _Region, la: int, off: int, m: int, now: int, timed: bool) -> bytes:
        """What a DMA read of bytes [off, off+m) of line la sees."""
        if not self._cacheable(la):
            return bytes(self.machine.cpu.uc.mem_read(la + off, m))
        if timed and self._expired(r, la, now):
            self._alloc[la] = now                  # written back, then cached again
        i = la - r.base + off
        return bytes(r.bus[i:i + m])

    def write(self, address: int, data: bytes) -> None:
        data = bytes(data)
        timed = self._residency is not None
        now = self._now() if timed else 0
        m = len(data)
        la = address & ~(LINE - 1)
        if self.enabled and m > 0 and (address + m - 1) & ~(LINE - 1) == la:
            # fast path (one DMA item): within one line, so one piece and one line
            r = self._fast_region(address)
            if r is not None:
                self._gen += 1
                self._write_line(r, la, address - la, data, now, timed)
                return
        pos = 0
        for a, n, r in self._pieces(address, len(data)):
            chunk = data[pos:pos + n]
            pos += n
            if r is None or not self.enabled:
                self._cpu_write(a, chunk)
                continue
            self._gen += 1
            cpos = 0
            for la, off, m in self._lines(a, n):
                self._write_line(r, la, off, chunk[cpos:cpos + m], now, timed)
                cpos += m

    def _write_line(self, r: _Region, la: int, off: int, part: bytes, now: int, timed: bool) -> None:
        """A DMA write of ``part`` at byte ``off`` of line la."""
        i = la - r.base
        m = len(part)
        if not self._cacheable(la):               # non-cacheable: both views (bus view kept in step)
            self._cpu_write(la + off, part)
            r.bus[i + off:i + off + m] = part
        elif timed and self._expired(r, la, now):
            # not resident: the CPU will fetch the line anew, so it sees the write
            self._cpu_write(la + off, part)
            r.bus[i + off:i + off + m] = part
            self._alloc[la] = now
            self.fresh_writes += 1
        else:
            if la not in self._stale:
                self._stale[la] = bytes(r.bus[i:i + LINE])
                if timed:
                    self._schedule(la)
            r.bus[i + off:i + off + m] = part
            self.dma_stale_writes += 1

    def _pieces(self, address: int, size: int):
        """Split [address, address+size) into (addr, n, region or None) runs."""
        end = address + size
        a = address
        while a < end:
            r = self._region(a)
            if r is not None:
                n = min(end, r.end) - a
            else:
                nxt = min((x.base for x in self.regions if x.base > a), default=end)
                n = min(end, nxt) - a
            yield a, n, r
            a += n

    @staticmethod
    def _lines(address: int, size: int):
        """(line address, offset in line, length) for each line [address, address+size) touches."""
        a, end = address, address + size
        while a < end:
            la = a & ~(LINE - 1)
            m = min(end, la + LINE) - a
            yield la, a - la, m
            a += m

    # -- per-line operations ------------------------------------------------------------------------------
    def _clean_line(self, r: _Region, la: int, cpu: bytes | None = None) -> None:
        cpu = self._cpu(la) if cpu is None else cpu
        i = la - r.base
        base = self._stale.get(la)
        if base is None:
            if r.bus[i:i + LINE] != cpu:
                r.bus[i:i + LINE] = cpu
                self.lines_written_back += 1
        elif cpu != base:                      # the CPU dirtied a line the DMA also wrote
            r.bus[i:i + LINE] = cpu
            del self._stale[la]
            self.lines_written_back += 1
        # else: clean line, DMA data stays in the bus view and the CPU keeps its old copy

    def _invalidate_line(self, r: _Region, la: int) -> None:
        i = la - r.base
        self._set_cpu(la, r.bus[i:i + LINE])
        self._stale.pop(la, None)
        self.lines_invalidated += 1

    def _clean_invalidate_line(self, r: _Region, la: int) -> None:
        self._clean_line(r, la)
        if la in self._stale:
            self._invalidate_line(r, la)
        # a line not stale is now in step after the clean: nothing to refresh

    def _mva(self, address: int):
        """The (region, line) a by-address operation hits, or None when it is a no-op."""
        if not self.enabled:
            return None
        la = address & ~(LINE - 1)           # MVA registers ignore bits [4:0]
        r = self._region(la)
        if r is None or not self._cacheable(la):
            return None
        self._gen += 1
        self._touch(r, la)
        return r, la

    # -- SCB call sites: by address (DCIMVAC, DCCMVAC/DCCMVAU, DCCIMVAC) ------------------------------
    def invalidate(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._invalidate_line(*hit)
            self._allocated(hit[1])

    def clean(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._clean_line(*hit)
            self._allocated(hit[1])

    def clean_invalidate(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._clean_invalidate_line(*hit)
            self._allocated(hit[1])

    # -- SCB call sites: set/way (DCISW, DCCSW, DCCISW) ---------------------------------------------
    def _set_way(self, kind: str) -> bool:
        """True if this set/way write must act: the first of a burst, or after a change."""
        self.set_way_ops += 1
        if not self.enabled:
            return False
        key = (kind, self._gen)
        if self._burst == key and self._burst_calls < SETS * WAYS:
            self._burst_calls += 1
            return False
        self._gen += 1
        self._burst = (kind, self._gen)
        self._burst_calls = 1
        self.set_way_runs += 1
        self._flush_due()
        return True

    def invalidate_all(self) -> None:
        if self._set_way("inv"):
            self._resolve_all(dirty_wins=False)
            self._all_allocated()

    def clean_all(self) -> None:
        if not self._set_way("clean"):
            return
        for r in self.regions:
            cpu = bytes(self.machine.cpu.uc.mem_read(r.base, r.size))
            keep = {la: r.bus[la - r.base:la - r.base + LINE]
                    for la, base in self._stale.items()
                    if r.base <= la < r.end and cpu[la - r.base:la - r.base + LINE] == base}
            for la in [la for la in self._stale if r.base <= la < r.end and la not in keep]:
                del self._stale[la]            # dirty stale lines: written back below
            r.bus[:] = cpu
            for la, data in keep.items():      # clean stale lines keep the DMA's data
                r.bus[la - r.base:la - r.base + LINE] = data
        self._all_allocated()

    def clean_invalidate_all(self) -> None:
        if self._set_way("cleaninv"):
            self._resolve_all(dirty_wins=True)
            self._all_allocated()

    def _resolve_all(self, dirty_wins: bool) -> None:
        """Bring both views in step: stale lines take the bus view (unless ``dirty_wins`` and the
        CPU dirtied them: then the CPU's bytes are written back); all other lines are treated as
        written back (bus := CPU)."""
        for r in self.regions:
            stale = [la for la in self._stale if r.base <= la < r.end]
            take_bus = {}
            for la in stale:
                i = la - r.base
                if dirty_wins and self._cpu(la) != self._stale[la]:
                    continue
                take_bus[la] = bytes(r.bus[i:i + LINE])
            for la in stale:
                del self._stale[la]
            for la, data in take_bus.items():
                self._set_cpu(la, data)
                self.lines_invalidated += 1
            r.bus[:] = self.machine.cpu.uc.mem_read(r.base, r.size)

    # -- CCR.DC, MPU, reset ---------------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        """CCR.DC written. Enabling starts from a coherent state (CMSIS invalidates first), every
        line allocated now; disabling resolves every line as clean+invalidate (CMSIS follows with
        DCCISW)."""
        on = bool(on)
        if on == self.enabled:
            return
        self._gen += 1
        if on:
            for r in self.regions:
                r.bus[:] = self.machine.cpu.uc.mem_read(r.base, r.size)
            self._stale.clear()
            self.enabled = True
        else:
            self._flush_due()
            self._resolve_all(dirty_wins=True)
            self.enabled = False
        self._all_allocated()

    def mpu_changed(self) -> None:
        """An MPU region changed: forget memoised attributes; with the cache on, resync both views
        (silicon needs maintenance around an attribute change anyway)."""
        self._nc_cache.clear()
        self._gen += 1
        if self.enabled:
            self._flush_due()
            self._resolve_all(dirty_wins=True)
            self._all_allocated()

    def _on_reset(self, cause: str) -> None:
        """CCR.DC resets to 0. Dirty lines are kept (as if written back): see the module notes."""
        self.set_enabled(False)
        self._nc_cache.clear()


class _NativeRegion:
    """A tracked region of DCacheNative: name, base, size, end, and ``bus``, a copy of its bus
    view (the bytes live in C)."""

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
    return property(lambda self: getattr(self._c, name), doc=f"{name} (kept in C)")


class DCacheNative(DCache):
    """The DCache of DUOHIL_MODELS=native: the bus views, stale lines with their base copies,
    residency draws, allocation times, eviction events, MPU attribute memo, burst state and
    counters live in C (native/dcache.c, the ``_core.DCache`` object ``_c``), the one copy of that
    state; DCache above (Python dicts and bytearrays) stays the reference. The hot calls
    (``read``/``write`` as machine.dma_port, the SCS's maintenance operations, the eviction
    events) are the C object's own methods; ``_native_dma_port`` lets a C DMA call it without
    Python (ports.h). The residency draws are Python's ``random.Random(key).randint`` computed in
    C (same MT19937 seeding and rejection sampling: tests/test_native_dcache.py checks many keys).
    Not supported here, unlike the reference: overlapping regions (refused) and residency times
    or allocation times past 2**63 ps."""

    def __init__(self, machine: Machine,
                 regions: Iterable[tuple[str, int, int]] = H743_DMA_SRAMS, *,
                 seed: int = 0, residency: tuple[int, int] | None | object = _DEFAULT) -> None:
        self.machine = machine
        self._wanted = _wanted_regions(regions)
        c = self._c = native.core().DCache(machine, [(b, n) for _name, b, n in self._wanted],
                                           host_views)
        self._views: dict[int, _NativeRegion] = {}
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
    def regions(self) -> list[_NativeRegion]:  # type: ignore[override]
        names = {b: name for name, b, _n in self._wanted}
        out = []
        for base, size in self._c.active_regions():
            v = self._views.get(base)
            if v is None:
                v = self._views[base] = _NativeRegion(self._c, names[base], base, size)
            out.append(v)
        return out

    def stats(self) -> dict[str, int]:
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
