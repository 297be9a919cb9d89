"""Specification of the MMIO bus: machine.py's Machine dispatch, which is C (``_core.Bus``,
native/bus.c), its one implementation.

An RV32 peer with RAM and four blocks: the CLINT and the PLIC (native register maps: the bus
calls them through ``_native_mmio``), ``Logger`` (a Python model overriding read/write, as a
user's own peripheral does) and ``Scratch`` (a Python model that is only a RegisterBank: the bus
calls the bank). The rules, checked against models of them written here:
  - an access of size s at base+off of a block is ``read(off, s)`` / ``write(off, s, value)`` of
    that block, in program order, exactly once; a guest load gets the value zero-extended to s
    bytes (lbu/lhu/lw), a guest store hands over its register's low s bytes; a DMA-style
    ``bus_read`` gives what the model returned; a native block gives what its own methods would
    (a twin of it, not on any bus, driven with the same accesses, is the reference);
  - ``writing`` is True exactly inside a CPU store's model call; a model called by the CPU sees
    ``cpu.executing``;
  - ``mmio_reads`` counts the CPU's loads from MMIO pages (holes in them included), not
    ``bus_read``; ``mmio_writes`` counts every write that reached a model (CPU or ``bus_write``),
    never a hole;
  - a hole (an address in a mapped page no block claims), in ``warn`` mode: a load reads 0, a
    store is dropped, every access is counted in ``unmapped``, the first of each (address,
    access) records ``unmapped_access`` (mode ``warn``; ``bus`` for ``bus_read``/``bus_write``,
    which always complete); in ``fault`` mode a CPU access is a bus error (the RV32's load/store
    access fault);
  - the first ``suppress_writes`` CPU stores to MMIO are dropped (a replayed store), not a
    ``bus_write``; an exception a model raises stops the slice and reaches the caller.
Hypothesis programs mix guest code segments (each load's value stored to RAM) with DMA-style
accesses from Python; everything is checked after every segment and every access.
"""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController
from duohil.engines.builtin.cpus.rv32.riscv import RiscV32Cpu
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Peripheral
from duohil.engines.builtin.kernel.regs import W1C, W1T, Field
from duohil.engines.builtin.kernel.scheduler import Scheduler
from rv_asm import code, jal, li, load, store

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

IROM, DRAM = 0x4200_0000, 0x3FC8_0000
CLINT, PLIC, LOG, SCRATCH = 0x0200_0000, 0x0C00_0000, 0x6000_0000, 0x6000_2000
MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF}


class Logger(Peripheral):
    """A Python model with its own read/write: logs every call with what the machine says then;
    a read returns a value made of the call's count, offset and size; a write to 0x30 raises."""

    default_size = 0x100

    def __init__(self, machine: Any, name: str, base: int, size: int | None = None,
                 props: dict | None = None) -> None:
        super().__init__(machine, name, base, size, props)
        self.log: list[tuple] = []

    def read(self, offset: int, size: int) -> int:
        m = self.machine
        self.log.append(("r", offset, size, m.writing, m.cpu.executing))
        return reply(len(self.log), offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        m = self.machine
        self.log.append(("w", offset, size, value, m.writing, m.cpu.executing))
        if offset == 0x30:
            raise RuntimeError(f"logger: boom {value:#x}")


def reply(n: int, offset: int, size: int) -> int:
    return (0x5A00_0000 | n << 12 | offset << 4 | size) & MASK[size]


class Scratch(Peripheral):
    """A Python model that is only its register bank: DATA (read/write), STATUS (bit 0 set by a
    write of CTRL.GO, write 1 to clear), CTRL (GO trigger, IE); reads of STATUS are counted."""

    default_size = 0x100

    def __init__(self, machine: Any, name: str, base: int, size: int | None = None,
                 props: dict | None = None) -> None:
        super().__init__(machine, name, base, size, props)
        self.status_reads = 0
        self.data = self.regs.define(0x0, "DATA", reset=0x1234_5678)
        self.status = self.regs.define(0x4, "STATUS", access=W1C, fields=[Field("DONE", 0)],
                                       on_read=self._status_read)
        self.ctrl = self.regs.define(0x8, "CTRL", fields=[Field("GO", 0, access=W1T), Field("IE", 1)],
                                     on_write=self._ctrl_written)

    def _status_read(self, reg: Any) -> int:
        self.status_reads += 1
        return reg.value

    def _ctrl_written(self, reg: Any, old: int, new: int) -> None:
        if new & 1:
            self.status.set(DONE=1)


def blocks(m: Machine) -> dict:
    return {"clint": CoreLevelInterruptor(m, "clint", CLINT, props={"frequency": 16_000_000}),
            "plic": PlatformLevelInterruptController(m, "plic", PLIC, props={"numberOfSources": 31}),
            "log": Logger(m, "log", LOG), "scratch": Scratch(m, "scratch", SCRATCH)}


class Board:
    def __init__(self, unmapped: str = "warn") -> None:
        self.sched = Scheduler(1_000_000)
        m = self.m = Machine("peer", self.sched, platform=__file__)
        self.cpu = RiscV32Cpu(m, "cpu", 160_000_000)
        m.attach_cpu(self.cpu)
        m.add_memory("irom", [IROM], 0x1_0000)
        m.add_memory("dram", [DRAM], 0x1_0000)
        self.blocks = blocks(m)
        for p in self.blocks.values():
            m.add_peripheral(p)
        m.unmapped_mode = unmapped
        m.finish()
        # the references: the same models on no bus, driven directly
        twin_m = Machine("twin", Scheduler(1_000_000), platform=__file__)
        self.twins = blocks(twin_m)
        self.runs = 0

    def run(self, words: list[int], until_ps: int = 20_000_000) -> None:
        """``words`` then ``j .``, from a fresh address (no code translated there before)."""
        at = IROM + 0x800 * self.runs
        self.runs += 1
        self.m.write_memory(at, code(words + [jal(0, 0)]))
        self.cpu.reset_pc = at
        self.cpu.reset()
        self.sched.run_until(self.sched.now + until_ps)


class Spec:
    """What the bus must have done: the Logger's calls, the counters, the holes."""

    def __init__(self, board: Board) -> None:
        self.b = board
        self.log: list[tuple] = []
        self.reads = self.writes = 0
        self.unmapped: dict[int, int] = {}
        self.records: list[tuple] = []

    def block(self, address: int) -> tuple[str, int] | None:
        for name, p in self.b.twins.items():
            base = {"clint": CLINT, "plic": PLIC, "log": LOG, "scratch": SCRATCH}[name]
            if base <= address < base + p.size:
                return name, address - base
        return None

    def access(self, kind: str, address: int, size: int, value: int, by_cpu: bool) -> int | None:
        """One access; the value a read gives (None: the bus error of fault mode)."""
        hit = self.block(address)
        if by_cpu and kind == "r":
            self.reads += 1
        if hit is None:
            self.unmapped[address] = self.unmapped.get(address, 0) + 1
            access = "read" if kind == "r" else "write"
            mode = self.b.m.unmapped_mode
            if (address, access) not in {(r[0], r[1]) for r in self.records}:
                self.records.append((address, access, mode if by_cpu else "bus",
                                     ("read 0" if kind == "r" else "dropped")
                                     if mode == "warn" or not by_cpu else "bus error"))
            return 0 if mode == "warn" or not by_cpu else None
        name, off = hit
        if name == "log":
            if kind == "r":
                self.log.append(("r", off, size, False, by_cpu))
                return reply(len(self.log), off, size)
            self.writes += 1
            self.log.append(("w", off, size, value, by_cpu, by_cpu))
            return None
        twin = self.b.twins[name]
        if kind == "r":
            return twin.read(off, size)
        self.writes += 1
        twin.write(off, size, value)
        return None

    def check(self, where: str) -> None:
        b, m = self.b, self.b.m
        assert b.blocks["log"].log == self.log, where
        assert (m.mmio_reads, m.mmio_writes) == (self.reads, self.writes), where
        assert m.unmapped == self.unmapped, where
        assert [(e[2]["address"], e[2]["access"], e[2]["mode"], e[2]["action"])
                for e in m.scheduler.log if e[1] == "unmapped_access"] == self.records, where
        assert not m.writing and m.suppress_writes == 0, where
        clint, plic, scr = (b.blocks[k] for k in ("clint", "plic", "scratch"))
        tc, tp, ts = (b.twins[k] for k in ("clint", "plic", "scratch"))
        assert (clint.compare(0), clint.read(0, 4)) == (tc.compare(0), tc.read(0, 4)), where
        assert (plic.pending, plic.in_flight, plic.enable, plic.threshold, plic.bad_completions) == \
            (tp.pending, tp.in_flight, tp.enable, tp.threshold, tp.bad_completions), where
        assert [plic.read(4 * k, 4) for k in range(8)] == [tp.read(4 * k, 4) for k in range(8)], where
        assert ([r.value for r in scr.regs], scr.status_reads) == \
            ([r.value for r in ts.regs], ts.status_reads), where
        for p, t in ((clint, tc), (plic, tp), (scr, ts)):
            assert dict(p.regs.unmodeled) == dict(t.regs.unmodeled), where


# registers whose values do not depend on time (the twins run no clock)
CLINT_REGS = (0x0, 0x4000, 0x4004, 0x10)                                  # 0x10: not modelled
PLIC_REGS = (4 * 5, 4 * 7, 0x1000, 0x2000, 0x20_0000, 0x20_0004, 0x20_0008)
LOG_REGS = (0x0, 0x4, 0x8, 0x7C)
SCRATCH_REGS = (0x0, 0x4, 0x8, 0xC)
HOLES = (LOG + 0x100, LOG + 0x800, SCRATCH + 0x104, SCRATCH - 0x1000 + 0x40)   # in mapped pages
TARGETS = ([CLINT + r for r in CLINT_REGS] + [PLIC + r for r in PLIC_REGS]
           + [LOG + r for r in LOG_REGS] + [SCRATCH + r for r in SCRATCH_REGS])
ADDR = st.one_of(st.sampled_from(TARGETS), st.sampled_from(TARGETS), st.sampled_from(HOLES))
SIZE_BYTE = st.sampled_from(((4, 0), (2, 0), (2, 2), (1, 0), (1, 1), (1, 3)))
VALUES = st.sampled_from((0, 1, 2, 3, 5, 7, 0xFFFF_FFFF, 0x8000_0001, 0x1_0000, 16, 0xFF, 0x1234_5678))
GUEST = st.one_of(st.tuples(st.just("st"), ADDR, SIZE_BYTE, VALUES),
                  st.tuples(st.just("ld"), ADDR, SIZE_BYTE))
STEP = st.one_of(
    st.tuples(st.just("guest"), st.lists(GUEST, min_size=1, max_size=12)),
    st.tuples(st.just("bus_read"), ADDR, SIZE_BYTE),
    st.tuples(st.just("bus_write"), ADDR, SIZE_BYTE, VALUES),
)


def program(ops: list[tuple]) -> tuple[list[int], int]:
    """The guest code for ``ops``: s0 = DRAM, each load's value stored to the next RAM word."""
    words = li(8, DRAM)
    slot = 0
    for op in ops:
        size, byte = op[2]
        words += li(6, op[1] + byte)
        if op[0] == "st":
            words += li(7, op[3]) + [store(size, 7, 6)]
        else:
            words += [load(size, 28, 6), store(4, 28, 8, 4 * slot)]
            slot += 1
    return words, slot


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_the_bus_delivers_every_access_to_its_block(steps) -> None:
    # a CPU parks after 4 polls of one address with no write between (poll-skip): a hole read
    # in warn mode is such a poll, so programs keep to 3 hole loads in all
    assume(sum(op[0] == "ld" and op[1] in HOLES for s in steps if s[0] == "guest" for op in s[1]) <= 3)
    b = Board()
    spec = Spec(b)
    for i, step in enumerate(steps):
        where = f"step {i} {step}"
        if step[0] == "guest":
            ops = step[1]
            words, slots = program(ops)
            want = []
            for op in ops:
                size, byte = op[2]
                if op[0] == "st":
                    spec.access("w", op[1] + byte, size, op[3] & MASK[size], True)
                else:
                    want.append(spec.access("r", op[1] + byte, size, 0, True) & MASK[size])
            b.run(words)
            got = [int.from_bytes(b.m.read_memory(DRAM + 4 * k, 4), "little") for k in range(slots)]
            assert got == want, where
        elif step[0] == "bus_read":
            size, byte = step[2]
            assert b.m.bus_read(step[1] + byte, size) == spec.access("r", step[1] + byte, size, 0,
                                                                     False), where
        else:
            size, byte = step[2]
            value = step[3] & MASK[size]
            b.m.bus_write(step[1] + byte, size, value)
            spec.access("w", step[1] + byte, size, value, False)
        spec.check(where)


def test_native_blocks_are_served_in_c_and_python_blocks_by_their_methods() -> None:
    b = Board()
    m, bl = b.m, b.blocks
    assert m._bus.native_ranges == 2
    assert m._bus.target(CLINT + 0x4000) == (bl["clint"], True)
    assert m._bus.target(PLIC + 0x20_0004) == (bl["plic"], True)
    assert m._bus.target(LOG + 4) == (bl["log"], False)
    assert m._bus.target(SCRATCH + 4) == (bl["scratch"], False)
    assert m._bus.target(SCRATCH + 0x100) is None                 # past the block: a hole
    # bus_target (what a DMA in Python uses): the model's own read/write, or its bank's
    assert m.bus_target(LOG + 8) == (bl["log"].read, bl["log"].write, 8)
    assert m.bus_target(SCRATCH + 8) == (bl["scratch"].regs.read, bl["scratch"].regs.write, 8)
    assert m.bus_target(CLINT + 0x4004)[2] == 0x4004 and m.bus_target(LOG + 0x100) is None
    # the native maps were used, not the banks (which only name registers)
    b.run(li(6, CLINT + 0x4000) + li(7, 1000) + [store(4, 7, 6)] + li(6, PLIC + 0x20_0000)
          + li(7, 3) + [store(4, 7, 6)])
    assert bl["clint"].compare(0) & 0xFFFF_FFFF == 1000 and bl["plic"].threshold == [3]
    assert all(r.value == 0 for r in bl["clint"].regs) and bl["plic"].regs.unmodeled == {}


def test_a_model_added_after_finish_is_served_and_a_replaced_method_too() -> None:
    b = Board()
    late = Logger(b.m, "late", 0x6000_0400)
    b.m.add_peripheral(late)                          # a page already mapped (the Logger's)
    assert b.m.bus_read(0x6000_0404, 2) == reply(1, 4, 2) and late.log == [("r", 4, 2, False, False)]
    late.read = lambda off, size: 0xAB                # replaced on the object: served after a reload
    b.m.add_peripheral(Logger(b.m, "other", 0x6000_0600))
    assert b.m.bus_read(0x6000_0400, 1) == 0xAB


def test_an_exception_in_a_model_stops_the_slice_and_reaches_the_caller() -> None:
    b = Board()
    with pytest.raises(RuntimeError, match="logger: boom 0xb00"):
        b.run(li(6, LOG + 0x30) + li(7, 0xB00) + [store(4, 7, 6)] + li(6, LOG) + [store(4, 7, 6)])
    assert not b.m.writing
    assert [e[0] for e in b.blocks["log"].log] == ["w"]          # the next store did not run


def test_suppressed_writes_drop_cpu_stores_only() -> None:
    b = Board()
    b.m.suppress_writes = 2
    b.m.bus_write(LOG + 4, 4, 9)                                  # not a CPU store: delivered
    b.run(li(6, LOG) + li(7, 1) + [store(4, 7, 6)] + li(7, 2) + [store(4, 7, 6)]
          + li(7, 3) + [store(4, 7, 6)])
    assert [e[:4] for e in b.blocks["log"].log] == [("w", 4, 4, 9), ("w", 0, 4, 3)]
    assert b.m.suppress_writes == 0 and b.m.mmio_writes == 2


def test_a_hole_in_fault_mode_is_the_cores_access_fault() -> None:
    b = Board(unmapped="fault")
    b.run(li(6, LOG + 0x800) + [load(4, 28, 6)])
    traps = [e[2] for e in b.m.scheduler.log if e[1] == "cpu_trap"]
    assert (traps[0]["cause"], traps[0]["mtval"]) == (5, LOG + 0x800)        # load access fault
    assert b.m.unmapped == {LOG + 0x800: 1} and b.m.mmio_reads == 1
    rec = [e[2] for e in b.m.scheduler.log if e[1] == "unmapped_access"]
    assert [(r["address"], r["access"], r["mode"], r["action"]) for r in rec] == \
        [(LOG + 0x800, "read", "fault", "bus error")]
    assert b.m.bus_read(LOG + 0x800, 4) == 0                     # a DMA read of it: 0, counted
    assert b.m.unmapped == {LOG + 0x800: 2}


def test_holes_and_unmapped_pages_in_warn_mode() -> None:
    b = Board()
    b.run(li(6, LOG + 0x800) + [load(4, 28, 6)] + li(7, 9) + [store(4, 7, 6)]
          + li(6, 0x7000_0010) + [load(4, 29, 6), store(4, 7, 6), load(2, 29, 6)]
          + li(8, DRAM) + [store(4, 28, 8), store(4, 29, 8, 4)])
    m = b.m
    assert m.unmapped == {LOG + 0x800: 2, 0x7000_0010: 3}
    assert [int.from_bytes(m.read_memory(DRAM + 4 * k, 4), "little") for k in range(2)] == [0, 0]
    assert 0x7000_0000 in m._hole_pages                         # mapped as a hole on first access
    rec = [(e[2]["address"], e[2]["access"], e[2]["action"]) for e in m.scheduler.log
           if e[1] == "unmapped_access"]
    assert rec == [(LOG + 0x800, "read", "read 0"), (LOG + 0x800, "write", "dropped"),
                   (0x7000_0010, "read", "read 0"), (0x7000_0010, "write", "dropped")]
    assert b.blocks["log"].log == []


def test_an_engine_run_by_the_unicorn_binding_takes_the_gil_in_its_callbacks() -> None:
    """Our slices run unicorn with the GIL held, so the bus's callbacks do not take it again
    (native/_core.c [gilrun]); the unicorn binding's own ``emu_start`` is a ctypes call that
    releases the GIL, and the same callbacks must take it then: a native block and a Python one
    are served alike on both paths, loads and stores."""
    words = (li(6, CLINT + 0x4000) + li(7, 1234) + [store(4, 7, 6)]          # native store
             + li(6, LOG + 8) + [load(4, 5, 6)] + li(8, DRAM) + [store(4, 5, 8)]   # Python load
             + li(6, CLINT + 0x4000) + [load(4, 9, 6), store(4, 9, 8, 4)])    # native load
    for path in ("slice", "binding"):
        b = Board()
        if path == "slice":
            b.run(words)
        else:
            b.m.write_memory(IROM, code(words + [jal(0, 0)]))
            b.cpu.uc.emu_start(IROM, 0, 0, len(words))     # (duohil's cores ignore `until`)
        got = b.m.read_memory(DRAM, 8)
        assert int.from_bytes(got[:4], "little") == reply(1, 8, 4), path
        assert int.from_bytes(got[4:], "little") == 1234, path
        assert [e[:3] for e in b.blocks["log"].log] == [("r", 8, 4)], path
        assert b.blocks["clint"].compare(0) & 0xFFFF_FFFF == 1234, path
