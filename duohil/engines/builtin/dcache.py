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

Modelled worst case, deterministic: every line of a tracked region is resident (16 KiB of real
cache cannot be, but eviction timing depends on the access stream we do not see): no eviction, no
allocation policy, no write-through regions, no read-allocate misses. Consequences to know:
  - set/way operations (DCISW, DCCSW, DCCISW) act on all tracked lines at the first write of a
    burst (CMSIS writes them 512 times in a loop); the rest of the burst is skipped unless a DMA
    write or another maintenance operation came in between;
  - DCISW (invalidate by set/way) refreshes stale lines from the bus view; every other line is
    treated as already written back (bus view := CPU view), because discarding all CPU writes to
    the whole of a 512 KiB SRAM since the cache was enabled is not what 16 KiB of cache does;
  - disabling the cache (CCR.DC 1 -> 0), a system reset, and an MPU change while the cache is on
    resolve every line as clean+invalidate (silicon loses dirty lines at reset; we keep them);
  - DTCM/ITCM are never cached; untracked memory (flash, backup SRAM by default) is coherent;
  - firmware that never cleans or invalidates (FIX_DCACHE=0) therefore sees a *dead* link, not
    an intermittent one: the CPU reads the ring as it was when the cache was enabled, and TX DMA
    sends the buffer's bytes from that moment, for the whole run;
  - a CPU write of the value a byte already holds is not seen as dirtying its line.

Call sites: the SCS model calls set_enabled / invalidate / clean / clean_invalidate / *_all /
mpu_changed on firmware writes; DMA models reach memory through ``machine.dma_read/dma_write``,
which this object serves once installed as ``machine.dma_port``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

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


class _Region:
    __slots__ = ("base", "bus", "end", "name", "size")

    def __init__(self, name: str, base: int, size: int) -> None:
        self.name = name
        self.base = base
        self.size = size
        self.end = base + size
        self.bus = bytearray(size)          # the bus (SRAM) view


class DCache:
    """D-cache coherency model; installs itself as ``machine.cache`` and ``machine.dma_port``."""

    def __init__(self, machine: Machine,
                 regions: Iterable[tuple[str, int, int]] = H743_DMA_SRAMS) -> None:
        self.machine = machine
        self._wanted = []
        for name, base, size in regions:
            if base % LINE or size % LINE:
                raise ValueError(f"D-cache region {name} at {base:#x}+{size:#x} must be "
                                 f"{LINE}-byte aligned")
            self._wanted.append((name, base, size))
        self._regions: list[_Region] = []
        self._mem_count = -1                 # regions are matched to the machine's memories lazily
        self.enabled = False                 # CCR.DC
        #: stale line address -> the line's bytes before the first DMA write since the last sync
        self._stale: dict[int, bytes] = {}
        self._nc_cache: dict[int, bool] = {}      # line address -> non-cacheable (MPU), memoised
        self._gen = 0                             # bumps on anything a set/way burst must see
        self._burst: tuple[str, int] | None = None
        self._burst_calls = 0
        # statistics for the harness and tests
        self.dma_stale_writes = 0                 # DMA writes into cacheable lines while DC=1
        self.lines_invalidated = 0
        self.lines_written_back = 0
        self.set_way_ops = 0
        self.set_way_runs = 0
        machine.cache = self
        machine.dma_port = self
        machine.reset_hooks.append(self._on_reset)

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
        return bytes(self.machine.cpu.uc.mem_read(line, LINE))

    def _set_cpu(self, line: int, data: bytes) -> None:
        self.machine.cpu.uc.mem_write(line, bytes(data))

    def stale_lines(self) -> list[int]:
        """Lines the DMA wrote that the CPU has not yet invalidated (for tests and reports)."""
        return sorted(self._stale)

    # -- DmaPort (how DMA masters see memory) ------------------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        for a, n, r in self._pieces(address, size):
            if r is None or not self.enabled:
                out += self.machine.cpu.uc.mem_read(a, n)
            else:
                for la, off, m in self._lines(a, n):
                    if self._cacheable(la):
                        i = la - r.base + off
                        out += r.bus[i:i + m]
                    else:
                        out += self.machine.cpu.uc.mem_read(la + off, m)
        return bytes(out)

    def write(self, address: int, data: bytes) -> None:
        data = bytes(data)
        pos = 0
        for a, n, r in self._pieces(address, len(data)):
            chunk = data[pos:pos + n]
            pos += n
            if r is None or not self.enabled:
                self.machine.cpu.uc.mem_write(a, chunk)
                continue
            self._gen += 1
            cpos = 0
            for la, off, m in self._lines(a, n):
                part = chunk[cpos:cpos + m]
                cpos += m
                i = la - r.base
                if self._cacheable(la):
                    if la not in self._stale:
                        self._stale[la] = bytes(r.bus[i:i + LINE])
                    r.bus[i + off:i + off + m] = part
                    self.dma_stale_writes += 1
                else:                         # non-cacheable: both views (bus view kept in step)
                    self.machine.cpu.uc.mem_write(la + off, part)
                    r.bus[i + off:i + off + m] = part

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
        return r, la

    # -- SCB call sites: by address (DCIMVAC, DCCMVAC/DCCMVAU, DCCIMVAC) --------------------------------------
    def invalidate(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._invalidate_line(*hit)

    def clean(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._clean_line(*hit)

    def clean_invalidate(self, address: int) -> None:
        hit = self._mva(address)
        if hit is not None:
            self._clean_invalidate_line(*hit)

    # -- SCB call sites: set/way (DCISW, DCCSW, DCCISW) ---------------------------------------------------------
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
        return True

    def invalidate_all(self) -> None:
        if self._set_way("inv"):
            self._resolve_all(dirty_wins=False)

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

    def clean_invalidate_all(self) -> None:
        if self._set_way("cleaninv"):
            self._resolve_all(dirty_wins=True)

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
        """CCR.DC written. Enabling starts from a coherent state (CMSIS invalidates first); disabling
        resolves every line as clean+invalidate (CMSIS follows with DCCISW)."""
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
            self._resolve_all(dirty_wins=True)
            self.enabled = False

    def mpu_changed(self) -> None:
        """An MPU region changed: forget memoised attributes; with the cache on, resync both views
        (silicon needs maintenance around an attribute change anyway)."""
        self._nc_cache.clear()
        self._gen += 1
        if self.enabled:
            self._resolve_all(dirty_wins=True)

    def _on_reset(self, cause: str) -> None:
        """CCR.DC resets to 0. Dirty lines are kept (as if written back): see the module notes."""
        self.set_enabled(False)
        self._nc_cache.clear()
