"""Specification of the Cortex-M7 D-cache model (dcache.py's DCache: native/dcache.c, its one
implementation), checked after every step of Hypothesis programs
against ``Spec`` below, which states the rules and keeps its own copy of both views.

The rules (the ARM v7-M ARM's cache maintenance by address and by set/way, B2.2.7, with the
model's documented simplifications, dcache.py's module docstring):
  - the CPU view is unicorn's memory; the bus view (what the SRAM holds, what a DMA master sees)
    is one buffer per tracked region, a region tracked once a memory of the machine maps it (a
    region that appears while the cache is on takes the CPU view);
  - CCR.DC = 0, untracked memory and lines the MPU makes non-cacheable: coherent (DMA reads and
    writes the CPU view; a non-cacheable line's bus view is written too);
  - with the cache on, a DMA write to a resident line goes to the bus view only and makes the
    line stale, remembering the line's bus bytes before the first such write (its base); the CPU
    dirtied a stale line iff its view differs from that base; a DMA read gives the bus view;
  - DCIMVAC (invalidate): the CPU view of the line takes the bus view (the CPU's writes to it are
    lost), the line is no longer stale; DCCMVAC (clean): a line that is not stale is written back
    (bus := CPU) if it differs; a stale line the CPU dirtied is written back over the DMA's bytes
    and is no longer stale; a clean stale line stays stale (clean does not refresh the CPU's
    copy); DCCIMVAC (clean+invalidate): clean, then a line still stale is invalidated; each
    touches only a tracked, cacheable line (bits [4:0] ignored) and only with the cache on;
  - set/way (DCISW, DCCSW, DCCISW): the first write of a burst acts on every tracked line, the
    rest of the burst (up to 512 writes, one CMSIS loop) is skipped unless a DMA write, an
    operation by address, a CCR.DC or MPU change, or another set/way kind came in between.
    DCISW: stale lines take the bus view, every other line is written back; DCCSW: a clean stale
    line keeps the DMA's bytes (still stale), every other line is written back; DCCISW: a dirty
    stale line is written back, a clean one takes the bus view, every other line is written back;
  - enabling the cache starts coherent (bus := CPU, nothing stale); disabling it, a system reset
    and an MPU change with the cache on resolve every line as DCCISW does;
  - residency: line la is resident at t while t < alloc(la) + r(la), r(la) =
    ``random.Random(residency_key(seed, la)).randint(r_min, r_max)`` (dcache.py's residency_draw)
    or for ever (None); alloc is when the cache was enabled, and again at every resolution
    (maintenance by address or set/way, CCR.DC, an MPU change, an eviction, a fresh DMA write, a
    write-back before a DMA read or write). A stale line is evicted at alloc + r (an event then):
    written back if the CPU dirtied it, else the CPU takes the bus view; alloc := that time. A
    DMA write to a line no longer resident first writes back its dirty bytes, then reaches both
    views (a fresh write), alloc := now; a DMA read of such a line writes back first too, alloc
    := now. Anything that touches a line first applies an eviction that was due;
  - counters: dma_stale_writes (line writes left stale), fresh_writes, stale_evictions,
    writebacks (dirty lines written back as residency ended), lines_invalidated (CPU views
    refreshed by DCIMVAC/DCCIMVAC/DCISW/DCCISW and the resolutions), lines_written_back (by
    DCCMVAC/DCCIMVAC), set_way_ops (every set/way write), set_way_runs (the ones that acted);
  - an access not wholly inside mapped memory is unicorn's error, the pieces before it done.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UcError

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.m7.dcache import DCache, residency_draw, residency_key
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

FLASH, RAM, LATE = 0x0800_0000, 0x2400_0000, 0x3000_0000
RAM_SIZE, LATE_SIZE = 0x2000, 0x1000
# a and b inside RAM with untracked RAM between and after them; c in a memory added later
REGIONS = (("a", RAM, 0x800), ("b", RAM + 0x1000, 0x400), ("c", LATE, 0x400))
LINES = [b + k for _n, b, s in REGIONS for k in range(0, s, 32)]
LINE = 32
SET_WAY_BURST = 128 * 4


class FakeMpu:
    """machine.mpu as the SCS model provides it: one non-cacheable window."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def attributes(self, addr: int) -> tuple[bool, bool]:
        return (not self.lo <= addr < self.hi, True)


class SpecError(Exception):
    """The spec's own 'not wholly in mapped memory'."""


class Spec:
    """The rules in the module docstring, with its own CPU and bus views."""

    COUNTERS = ("dma_stale_writes", "fresh_writes", "stale_evictions", "writebacks",
                "lines_invalidated", "lines_written_back", "set_way_ops", "set_way_runs")

    def __init__(self, m: Machine, seed: int, residency) -> None:
        self.m = m
        self.mem = {FLASH: bytearray(0x1000), RAM: bytearray(RAM_SIZE)}     # the CPU view
        self.active: list[tuple[int, int]] = []                           # tracked regions
        self.bus: dict[int, bytearray] = {}
        self.enabled = False
        self.stale: dict[int, bytes] = {}
        self.alloc: dict[int, int] = {}
        self.epoch = 0
        self.seed, self.range = seed, residency
        self.gen, self.burst, self.burst_calls = 0, None, 0
        self.n = dict.fromkeys(self.COUNTERS, 0)

    # -- the views ----------------------------------------------------------------------------
    def _mem(self, a: int, n: int) -> tuple[bytearray, int]:
        for base, buf in self.mem.items():
            if base <= a and a + n <= base + len(buf):
                return buf, a - base
        raise SpecError(hex(a))

    def cpu(self, a: int, n: int = LINE) -> bytes:
        buf, i = self._mem(a, n)
        return bytes(buf[i:i + n])

    def set_cpu(self, a: int, data: bytes) -> None:
        buf, i = self._mem(a, len(data))
        buf[i:i + len(data)] = data

    def regions(self) -> list[tuple[int, int]]:
        """The wanted regions a memory maps; one that appears with the cache on takes the CPU view."""
        for _name, base, size in REGIONS:
            if (base, size) not in self.active and any(
                    b <= base and base + size <= b + len(buf) for b, buf in self.mem.items()):
                self.active.append((base, size))
                self.active.sort(key=[(b, s) for _n, b, s in REGIONS].index)
                self.bus[base] = bytearray(self.cpu(base, size)) if self.enabled else bytearray(size)
        return self.active

    def region(self, a: int) -> int | None:
        for base, size in self.regions():
            if base <= a < base + size:
                return base
        return None

    def busline(self, la: int) -> bytes:
        r = self.region(la)
        return bytes(self.bus[r][la - r:la - r + LINE])

    def set_bus(self, a: int, data: bytes) -> None:
        r = self.region(a)
        self.bus[r][a - r:a - r + len(data)] = data

    def cacheable(self, la: int) -> bool:
        mpu = getattr(self.m, "mpu", None)
        return mpu is None or mpu.attributes(la)[0]

    # -- residency ----------------------------------------------------------------------------
    def r(self, la: int) -> int | None:
        return None if self.range is None else residency_draw(self.seed, la, *self.range)

    def deadline(self, la: int) -> int | None:
        r = self.r(la)
        return None if r is None else self.alloc.get(la, self.epoch) + r

    def evict(self, la: int, t: int) -> None:
        base = self.stale.pop(la)
        if self.cpu(la) != base:
            self.set_bus(la, self.cpu(la))
            self.n["writebacks"] += 1
        else:
            self.set_cpu(la, self.busline(la))
        self.n["stale_evictions"] += 1
        self.alloc[la] = t

    def due(self, now: int) -> None:
        """Evictions whose time has come (their events fire at alloc + r)."""
        for la in sorted(self.stale):
            t = self.deadline(la)
            if t is not None and t <= now:
                self.evict(la, t)

    def expired(self, la: int, now: int) -> bool:
        """Not resident at now: its dirty bytes written back (both views in step)."""
        t = self.deadline(la)
        if t is None or now < t:
            return False
        if self.cpu(la) != self.busline(la):
            self.set_bus(la, self.cpu(la))
            self.n["writebacks"] += 1
        return True

    def events(self) -> dict[int, int]:
        if self.range is None or not self.enabled:
            return {}
        return {la: self.deadline(la) for la in self.stale}

    def all_allocated(self, now: int) -> None:
        self.epoch = now
        self.alloc.clear()

    # -- DMA ------------------------------------------------------------------------------------
    def pieces(self, address: int, size: int):
        end, a = address + size, address
        while a < end:
            r = self.region(a)
            if r is not None:
                n = min(end, r + dict(self.active)[r]) - a
            else:
                n = min(end, min((b for b, _s in self.active if b > a), default=end)) - a
            yield a, n, r
            a += n

    @staticmethod
    def lines(a: int, n: int):
        end = a + n
        while a < end:
            la = a & ~(LINE - 1)
            k = min(end, la + LINE) - a
            yield la, a - la, k
            a += k

    def dma_write(self, address: int, data: bytes, now: int) -> None:
        self.due(now)
        pos = 0
        for a, n, r in list(self.pieces(address, len(data))):
            chunk, pos = data[pos:pos + n], pos + n
            if r is None or not self.enabled:
                self.set_cpu(a, chunk)
                continue
            self.gen += 1
            cpos = 0
            for la, off, k in self.lines(a, n):
                part, cpos = chunk[cpos:cpos + k], cpos + k
                if not self.cacheable(la):
                    self.set_cpu(la + off, part)
                    self.set_bus(la + off, part)
                elif self.expired(la, now):
                    self.set_cpu(la + off, part)
                    self.set_bus(la + off, part)
                    self.alloc[la] = now
                    self.n["fresh_writes"] += 1
                else:
                    self.stale.setdefault(la, self.busline(la))
                    self.set_bus(la + off, part)
                    self.n["dma_stale_writes"] += 1

    def dma_read(self, address: int, size: int, now: int) -> bytes:
        self.due(now)
        out = b""
        for a, n, r in list(self.pieces(address, size)):
            if r is None or not self.enabled:
                out += self.cpu(a, n)
                continue
            for la, off, k in self.lines(a, n):
                if not self.cacheable(la):
                    out += self.cpu(la + off, k)
                    continue
                if self.expired(la, now):
                    self.alloc[la] = now
                out += self.busline(la)[off:off + k]
        return out

    # -- maintenance by address ---------------------------------------------------------------
    def by_address(self, op: str, address: int, now: int) -> None:
        self.due(now)
        la = address & ~(LINE - 1)
        if not self.enabled or self.region(la) is None or not self.cacheable(la):
            return
        self.gen += 1
        if op in ("clean", "clean_invalidate"):
            base = self.stale.get(la)
            if base is None:
                if self.busline(la) != self.cpu(la):
                    self.set_bus(la, self.cpu(la))
                    self.n["lines_written_back"] += 1
            elif self.cpu(la) != base:
                self.set_bus(la, self.cpu(la))
                del self.stale[la]
                self.n["lines_written_back"] += 1
        if op == "invalidate" or (op == "clean_invalidate" and la in self.stale):
            self.set_cpu(la, self.busline(la))
            self.stale.pop(la, None)
            self.n["lines_invalidated"] += 1
        if self.range is not None:
            self.alloc[la] = now

    # -- set/way, CCR.DC, MPU, reset ----------------------------------------------------------
    def set_way(self, kind: str, now: int) -> None:
        self.due(now)
        self.n["set_way_ops"] += 1
        if not self.enabled:
            return
        if self.burst == (kind, self.gen) and self.burst_calls < SET_WAY_BURST:
            self.burst_calls += 1
            return
        self.gen += 1
        self.burst, self.burst_calls = (kind, self.gen), 1
        self.n["set_way_runs"] += 1
        if kind == "clean_all":
            for base, size in self.regions():
                keep = {la: self.busline(la) for la, b in self.stale.items()
                        if base <= la < base + size and self.cpu(la) == b}
                for la in [la for la in self.stale if base <= la < base + size and la not in keep]:
                    del self.stale[la]
                self.bus[base][:] = self.cpu(base, size)
                for la, d in keep.items():
                    self.set_bus(la, d)
        else:
            self.resolve_all(dirty_wins=kind == "clean_invalidate_all")
        self.all_allocated(now)

    def resolve_all(self, dirty_wins: bool) -> None:
        for la in sorted(self.stale):
            if not (dirty_wins and self.cpu(la) != self.stale[la]):
                self.set_cpu(la, self.busline(la))
                self.n["lines_invalidated"] += 1
        self.stale.clear()
        for base, size in self.regions():
            self.bus[base][:] = self.cpu(base, size)

    def set_enabled(self, on: bool, now: int) -> None:
        self.due(now)
        if on == self.enabled:
            return
        self.gen += 1
        if on:
            for base, size in self.regions():
                self.bus[base][:] = self.cpu(base, size)
            self.stale.clear()
            self.enabled = True
        else:
            self.resolve_all(dirty_wins=True)
            self.enabled = False
        self.all_allocated(now)

    def mpu_changed(self, now: int) -> None:
        self.due(now)
        self.gen += 1
        if self.enabled:
            self.resolve_all(dirty_wins=True)
            self.all_allocated(now)


# addresses: mostly in the two mapped regions, some around every region (c is mapped late), in
# the untracked RAM, in flash and a few past the RAM's end (a unicorn error)
ADDR = {
    "in": st.sampled_from(REGIONS[:2]).flatmap(lambda r: st.integers(r[1], r[1] + 0x7F)),
    "edge": st.sampled_from(REGIONS).flatmap(lambda r: st.integers(r[1] - 40, r[1] + r[2] + 40)),
    "ram": st.integers(RAM, RAM + RAM_SIZE + 8),
    "flash": st.integers(FLASH, FLASH + 0x100),
}
addr = st.sampled_from(["in"] * 6 + ["edge"] * 2 + ["ram", "flash"]).flatmap(ADDR.__getitem__)
data = st.binary(min_size=0, max_size=80)
# residency: None, a fixed time on a 500 ps grid (events and accesses then meet at the same
# picosecond), or a range; advances mostly on the same grid
small_range = st.sampled_from(("none", "fixed", "fixed", "range")).flatmap(lambda k: {
    "none": st.none(),
    "fixed": st.integers(1, 40).map(lambda n: (500 * n, 500 * n)),
    "range": st.tuples(st.integers(1, 60_000), st.integers(0, 60_000)).map(
        lambda p: (p[0], p[0] + p[1])),
}[k])
dt = st.one_of(st.integers(0, 160).map(lambda n: 500 * n), st.integers(0, 80_000))
OPS = {
    "dw": st.tuples(st.just("dw"), addr, data),
    "dw_at": st.tuples(st.just("dw_at"), dt, addr, data),                        # as an event
    "dr": st.tuples(st.just("dr"), addr, st.integers(0, 80)),
    # the same through ports.h's capsule, called from C, on the native side
    "dwc": st.tuples(st.just("dwc"), addr, data),
    "drc": st.tuples(st.just("drc"), addr, st.integers(0, 80)),
    "cw": st.tuples(st.just("cw"), addr, st.binary(min_size=1, max_size=40)),
    "adv": st.tuples(st.just("adv"), dt),
    "mva": st.tuples(st.just("mva"), st.sampled_from(("invalidate", "clean", "clean_invalidate")),
                     addr),
    "mva_at": st.tuples(st.just("mva_at"), dt,
                        st.sampled_from(("invalidate", "clean", "clean_invalidate")), addr),
    "sw": st.tuples(st.just("sw"), st.sampled_from(("invalidate_all", "clean_all",
                                                    "clean_invalidate_all")),
                    st.sampled_from((1, 3, 512, 600))),
    "en": st.tuples(st.just("en"), st.sampled_from((True, True, False))),
    "mpu": st.tuples(st.just("mpu"), st.one_of(st.none(), st.tuples(addr, st.integers(0, 0x400))),
                     st.booleans()),
    "res": st.tuples(st.just("res"), small_range),
    "seed": st.tuples(st.just("seed"), st.integers(-2**70, 2**70)),
    # firmware-like pairs on one line: a CPU write then maintenance of that line; a DMA write,
    # a CPU write to the same line (a misaligned buffer), then time passing
    "fw": st.tuples(st.just("fw"), addr, st.binary(min_size=1, max_size=8),
                    st.sampled_from(("invalidate", "clean", "clean_invalidate"))),
    # the RX side: a DMA write, then maintenance of that line with no CPU write between
    "rx": st.tuples(st.just("rx"), addr, st.binary(min_size=1, max_size=8),
                    st.sampled_from(("invalidate", "clean", "clean_invalidate"))),
    "mix": st.tuples(st.just("mix"), addr, st.binary(min_size=1, max_size=8), st.integers(0, 31),
                     dt),
    # something scheduled at the very picosecond a line's residency ends, before the line goes
    # stale (so before its eviction event in the same-time order), then time runs past it
    "race": st.tuples(st.just("race"), addr, st.binary(min_size=1, max_size=8),
                      st.sampled_from(("invalidate", "clean", "clean_invalidate", "dma_write",
                                       "dma_read", "invalidate_all", "clean_all",
                                       "clean_invalidate_all", "disable", "mpu_changed"))),
    "reset": st.just(("reset",)),
    "late": st.just(("late",)),
}
OP = st.sampled_from(["dw"] * 4 + ["dwc"] * 2 + ["dw_at"] * 2 + ["dr"] * 3 + ["drc"]
                     + ["cw"] * 4 + ["adv"] * 4
                     + ["mva"] * 4 + ["mva_at"] * 2 + ["fw"] * 3 + ["rx"] * 3 + ["mix"] * 3 + ["race"] * 3
                     + ["sw", "sw", "en", "mpu", "res", "seed", "reset", "late"]
                     ).flatmap(OPS.__getitem__)


def board(seed: int, residency):
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    m.cpu.reset = lambda: None
    cache = DCache(m, REGIONS, seed=seed, residency=residency)
    m.add_memory("flash", [FLASH], 0x1000)
    m.add_memory("ram", [RAM], RAM_SIZE)
    assert type(cache) is DCache and m.cache is cache and m.dma_port is cache
    return sched, m, cache, Spec(m, seed, residency)


def check(b, where: str) -> None:
    sched, m, c, spec = b
    spec.regions()
    for base, buf in spec.mem.items():
        assert bytes(m.cpu.uc.mem_read(base, len(buf))) == bytes(buf), f"{where}: CPU view at {base:#x}"
    assert c.enabled is spec.enabled, where
    assert [(r.base, r.size) for r in c.regions] == spec.active, f"{where}: tracked regions"
    if spec.enabled:                                # (the bus view means nothing with DC off)
        for r in c.regions:
            assert bytes(r.bus) == bytes(spec.bus[r.base]), f"{where}: bus view of {r.name}"
    assert dict(c._stale) == spec.stale and c.stale_lines() == sorted(spec.stale), f"{where}: stale"
    stats = c.stats()
    assert {k: getattr(c, k) for k in Spec.COUNTERS} == spec.n, f"{where}: counters"
    assert stats == {**{k: spec.n[k] for k in stats if k in spec.n}, "stale_lines": len(spec.stale)}
    assert (c.residency, c.seed) == (spec.range, spec.seed), where
    assert [c.alloc_time(la) for la in LINES] == [spec.alloc.get(la, spec.epoch) for la in LINES], \
        f"{where}: allocation times"
    assert [c.residency_of(la) for la in LINES[::5]] == [spec.r(la) for la in LINES[::5]], where
    live = {la: ev.time for la, ev in c._evict_ev.items() if not ev.cancelled}
    assert live == spec.events(), f"{where}: eviction events"


def both(fn_real, fn_spec):
    """Run the spec's step and the model's: the same result, or an error on both."""
    try:
        want = ("ok", fn_spec())
    except SpecError:
        want = ("error", None)
    try:
        got = ("ok", fn_real())
    except UcError:
        got = ("error", None)
    assert got == want, f"model gave {got}, the rules {want}"
    return got[1]


def apply(b, op) -> None:
    sched, m, c, spec = b
    kind = op[0]
    now = lambda: sched.now                   # noqa: E731 - inside an event too

    def dma_write(a: int, d: bytes, capsule: bool = False) -> None:
        both((lambda: native.core().DCache.port_loop(m.dma_port, a, d, 1)) if capsule
             else (lambda: m.dma_write(a, bytearray(d))), lambda: spec.dma_write(a, d, now()))

    def dma_read(a: int, n: int, capsule: bool = False) -> None:
        both((lambda: native.core().DCache.port_loop(m.dma_port, a, n, 1)) if capsule
             else (lambda: m.dma_read(a, n)), lambda: spec.dma_read(a, n, now()))

    def by_address(what: str, a: int) -> None:
        both(lambda: getattr(c, what)(a), lambda: spec.by_address(what, a, now()))

    def set_way(what: str) -> None:
        both(lambda: getattr(c, what)(), lambda: spec.set_way(what, now()))

    def enable(on: bool) -> None:
        both(lambda: c.set_enabled(on), lambda: spec.set_enabled(on, now()))

    def mpu_changed() -> None:
        both(c.mpu_changed, lambda: spec.mpu_changed(now()))

    def cpu_write(a: int, d: bytes) -> None:
        both(lambda: m.cpu.uc.mem_write(a, d), lambda: spec.set_cpu(a, d))

    def advance(t: int) -> None:
        sched.run_until(t)
        spec.due(sched.now)

    if kind in ("dw", "dwc"):
        dma_write(op[1], op[2], kind == "dwc")
    elif kind == "dw_at":
        sched.at(sched.now + op[1], dma_write, op[2], op[3], name="dma")
    elif kind in ("dr", "drc"):
        dma_read(op[1], op[2], kind == "drc")
    elif kind == "cw":
        cpu_write(op[1], op[2])
    elif kind == "mva":
        by_address(op[1], op[2])
    elif kind == "mva_at":
        sched.at(sched.now + op[1], by_address, op[2], op[3], name="cache-op")
    elif kind == "race":
        _, a, d, what = op
        t = spec.deadline(a & ~31) if spec.region(a) is not None else None
        t = sched.now if t is None else max(t, sched.now)
        if what == "dma_write":
            sched.at(t, dma_write, a + 1, d, name="race")
        elif what == "dma_read":
            sched.at(t, dma_read, a, 8, name="race")
        elif what == "disable":
            sched.at(t, enable, False, name="race")
        elif what == "mpu_changed":
            sched.at(t, mpu_changed, name="race")
        elif what.endswith("_all"):
            sched.at(t, set_way, what, name="race")
        else:
            sched.at(t, by_address, what, a, name="race")
        dma_write(a, d)
        advance(t)
    elif kind == "fw":
        cpu_write(op[1], op[2])
        by_address(op[3], op[1])
    elif kind == "rx":
        dma_write(op[1], op[2])
        by_address(op[3], op[1])
    elif kind == "mix":
        dma_write(op[1], op[2])
        cpu_write((op[1] & ~31) + op[3], b"\xc3")
        advance(sched.now + op[4])
    elif kind == "sw":
        for _ in range(op[2]):
            set_way(op[1])
    elif kind == "en":
        enable(op[1])
    elif kind == "mpu":
        # the SCS model tells the cache of every change of the attributes (nvic.py's Mpu.changed)
        m.mpu = None if op[1] is None else FakeMpu(op[1][0], op[1][0] + op[1][1])
        mpu_changed()
    elif kind == "adv":
        advance(sched.now + op[1])
    elif kind in ("res", "seed"):
        if kind == "res":
            c.set_residency(op[1])
            spec.range = op[1]
        else:
            c.seed = op[1]
            spec.seed = op[1]
        advance(sched.now)                         # an eviction moved into the past fires now
    elif kind == "reset":
        m.system_reset("test")
        spec.set_enabled(False, sched.now)
    elif kind == "late":
        if LATE not in spec.mem:
            m.add_memory("late", [LATE], LATE_SIZE)
            spec.mem[LATE] = bytearray(LATE_SIZE)
            cpu_write(LATE + 0x20, b"late-memory")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(-5, 2**64), residency=small_range, enable=st.sampled_from((True, True, False)),
       setup=st.lists(st.tuples(st.sampled_from([la for la in LINES if la < LATE]),
                                st.binary(min_size=32, max_size=32)), max_size=6),
       ops=st.lists(OP, min_size=8, max_size=40))
def test_the_dcache_follows_its_rules(seed, residency, enable, setup, ops) -> None:
    b = board(seed, residency)
    sched, m, c, spec = b
    for la, line in setup:                       # the firmware's previous contents
        m.cpu.uc.mem_write(la, line)
        spec.set_cpu(la, line)
    if enable:
        c.set_enabled(True)
        spec.set_enabled(True, sched.now)
    check(b, "start")
    for i, op in enumerate(ops):
        apply(b, op)
        check(b, f"step {i} {op}")


def test_residency_draws_in_c_are_pythons_random() -> None:
    """_core.DCache.draw(key, lo, hi) is random.Random(key).randint(lo, hi): keys of every size
    residency_key makes (seeds up to 2**64 zig-zagged, lines up to 2**32) and more, ranges whose
    width needs 1 to 63 bits (one or two 32-bit words per getrandbits, rejection sampling)."""
    draw = native.core().DCache.draw
    rng = random.Random(20261207)
    checked = 0
    for _ in range(4000):
        key = rng.getrandbits(rng.choice((0, 1, 7, 31, 32, 33, 63, 64, 65, 96, 97, 128, 200)))
        lo = rng.randint(1, 10 ** rng.randint(0, 17))
        hi = lo + rng.choice((0, 1, 2, rng.randint(0, 10 ** rng.randint(0, 18)), 2 ** 32 - 1,
                              2 ** 32, 2 ** 62))
        assert draw(key, lo, hi) == random.Random(key).randint(lo, hi), (key, lo, hi)
        checked += 1
    for s in (0, 1, -1, 2**63, -(2**63), 2**64 - 1):
        for la in (0, 32, RAM, 0xFFFF_FFE0):
            assert draw(residency_key(s, la), 10**7, 15 * 10**7) == \
                residency_draw(s, la, 10**7, 15 * 10**7)
            checked += 1
    assert checked == 4024


def test_the_state_lives_in_c_only() -> None:
    """One source of truth: the D-cache keeps no Python copy of the line state, its calls are the
    C object's methods, and the capsule is the DMA port's."""
    _sched, m, c, _spec = board(3, (5, 9))
    for attr in ("_r", "_alloc", "_nc_cache", "_burst", "_gen", "_epoch"):
        assert attr not in vars(c)
    assert c.read.__self__ is c._c and c.invalidate.__self__ is c._c and m.dma_port is c
    cap = c._native_dma_port
    assert type(cap).__name__ == "PyCapsule" and "duohil.native.dmaport" in repr(cap)
    c.set_enabled(True)
    m.dma_write(RAM + 3, b"dma")                      # stale: the CPU keeps reading zeros
    assert m.cpu.uc.mem_read(RAM, 8) == bytes(8) and c.stale_lines() == [RAM]
    assert c.regions[0].bus[:8] == b"\0\0\0dma\0\0"
