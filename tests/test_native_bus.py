"""The MMIO bus in C (machine.MachineNative: native/bus.c, ``_core.Bus``) against the Python bus
(machine.Machine's ctypes callbacks, ``bus_target``), with guest code doing the accesses.

Two RV32 peers, one per DUOHIL_MODELS value, each with RAM, the CLINT and the PLIC (native
register maps under native: the C bus calls them through ``_native_mmio``) and a Python model
(``Scratch``: a RegisterBank with read/write, write-1-to-clear and trigger fields, an IRQ into the
PLIC; the C bus calls its bound methods). Hypothesis writes a program of loads and stores of
every size at every byte of their registers; both peers run it in virtual time and must end with
the same loaded values (stored to RAM by the program), the same line edges at the same
picoseconds, the same event log, the same CPU MMIO read count (hang detection), the same model
state and the same unmodelled-access counts. Then the rest of the bus contract: an exception
raised by a model stops the slice and reaches the caller, holes in ``warn`` mode (a page mapped on
first access by ``map_hole``), DMA-style ``bus_read``/``bus_write`` on both kinds of target.
"""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Peripheral
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController
from duohil.engines.builtin.kernel.regs import W1C, W1T, Field
from duohil.engines.builtin.cpus.rv32.riscv import RiscV32Cpu
from duohil.engines.builtin.kernel.scheduler import Scheduler
from rv_asm import code, jal, li, load, store

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

IROM, DRAM = 0x4200_0000, 0x3FC8_0000
CLINT, PLIC, SCRATCH = 0x0200_0000, 0x0C00_0000, 0x6000_0000
SCRATCH_IRQ = 5


class Scratch(Peripheral):
    """A Python model as a user would write one: DATA (read/write), STATUS (bit 0 set by a write
    of CTRL.GO, write 1 to clear), CTRL (GO trigger, IE), IRQ = STATUS.DONE and CTRL.IE; a write
    to BOOM raises (a model bug), reads of STATUS are counted."""

    default_size = 0x100

    def __init__(self, machine: Any, name: str, base: int, size: int | None = None,
                 props: dict | None = None) -> None:
        super().__init__(machine, name, base, size, props)
        self.status_reads = 0
        self.data = self.regs.define(0x0, "DATA", reset=0x1234_5678)
        self.status = self.regs.define(0x4, "STATUS", access=W1C, fields=[Field("DONE", 0)],
                                       on_read=self._status_read, on_write=lambda r, o, n: self._irq())
        self.ctrl = self.regs.define(0x8, "CTRL", fields=[Field("GO", 0, access=W1T), Field("IE", 1)],
                                     on_write=self._ctrl_written)
        self.regs.define(0x30, "BOOM", on_write=self._boom)

    def _status_read(self, reg: Any) -> int:
        self.status_reads += 1
        return reg.value

    def _ctrl_written(self, reg: Any, old: int, new: int) -> None:
        if new & 1:
            self.status.set(DONE=1)
        self._irq()

    def _irq(self) -> None:
        self.output("IRQ").set(bool(self.status.DONE and self.ctrl.IE))

    def _boom(self, reg: Any, old: int, new: int) -> None:
        raise RuntimeError(f"scratch: boom {new:#x}")


class Edges:
    def __init__(self, sched: Scheduler) -> None:
        self.sched, self.edges = sched, []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, line, level))


def peer(models: str, unmapped: str = "fault") -> Any:
    with native.using(models):
        sched = Scheduler(1_000_000)
        m = Machine("peer", sched, platform=__file__)
        cpu = RiscV32Cpu(m, "cpu", 160_000_000)
        m.attach_cpu(cpu)
        m.add_memory("irom", [IROM], 0x1_0000)
        m.add_memory("dram", [DRAM], 0x1_0000)
        clint = CoreLevelInterruptor(m, "clint", CLINT, props={"frequency": 16_000_000})
        plic = PlatformLevelInterruptController(m, "plic", PLIC, props={"numberOfSources": 31})
        scratch = Scratch(m, "scratch", SCRATCH)
        for p in (clint, plic, scratch):
            m.add_peripheral(p)
        m.unmapped_mode = unmapped
        m.finish()
    assert (type(m).__name__ == "MachineNative") == (models == "native")
    edges = Edges(sched)
    for sig, line in ((clint.output(0), 3), (clint.output(1), 7), (plic.output(0), 11)):
        sig.connect(cpu, line)
        sig.connect(edges, line)
    scratch.output("IRQ").connect(plic, SCRATCH_IRQ)
    scratch.output("IRQ").connect(edges, 100)
    cpu.reset_pc = IROM
    cpu.reset()
    return m, cpu, clint, plic, scratch, edges


def run(board: Any, words: list[int], until_ps: int = 20_000_000) -> None:
    m = board[0]
    m.write_memory(IROM, code(words + [jal(0, 0)]))     # ... then j .
    m.scheduler.run_until(until_ps)


CLINT_REGS = (0x0, 0x4000, 0x4004, 0xBFF8, 0xBFFC, 0x10)                 # 0x10: not modelled
PLIC_REGS = (4 * SCRATCH_IRQ, 4 * 7, 0x1000, 0x2000, 0x20_0000, 0x20_0004, 0x20_0008)
SCRATCH_REGS = (0x0, 0x4, 0x8, 0xC)
TARGETS = ([CLINT + r for r in CLINT_REGS] + [PLIC + r for r in PLIC_REGS]
           + [SCRATCH + r for r in SCRATCH_REGS])
SIZE_BYTE = st.sampled_from(((4, 0), (2, 0), (2, 2), (1, 0), (1, 1), (1, 3)))
VALUES = st.sampled_from((0, 1, 2, 3, 5, 7, 0xFFFF_FFFF, 0x8000_0001, 0x1_0000, 16, 0xFF))
OP = st.one_of(
    st.tuples(st.just("st"), st.sampled_from(TARGETS), SIZE_BYTE, VALUES),
    st.tuples(st.just("ld"), st.sampled_from(TARGETS), SIZE_BYTE),
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


def state(board: Any, slots: int) -> dict:
    m, cpu, clint, plic, scratch, edges = board
    return {
        "loaded": [int.from_bytes(m.read_memory(DRAM + 4 * k, 4), "little") for k in range(slots)],
        "edges": list(edges.edges),
        "log": list(m.scheduler.log),
        "mmio_reads": m.mmio_reads,
        "mip": cpu.mip,
        "clint": (clint.mtime(), clint.compare(0), clint.read(0, 4)),
        "plic": (plic.pending, plic.in_flight, plic.enable, plic.threshold, plic.bad_completions),
        "scratch": ([r.value for r in scratch.regs], scratch.status_reads),
        "unmodeled": (dict(clint.regs.unmodeled), dict(plic.regs.unmodeled), dict(scratch.regs.unmodeled)),
        "pc": cpu.pc,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, min_size=1, max_size=25))
def test_guest_accesses_through_the_c_bus_equal_the_python_bus(ops) -> None:
    words, slots = program(ops)
    py, nat = peer("python"), peer("native")
    for b in (py, nat):
        run(b, words)
    a, c = state(py, slots), state(nat, slots)
    for key in a:
        assert a[key] == c[key], f"{key} differs"
    assert a["mmio_reads"] == sum(op[0] == "ld" for op in ops)


def test_the_c_bus_serves_native_models_in_c_and_python_models_by_their_methods() -> None:
    m, cpu, clint, plic, scratch, _ = peer("native")
    assert m._bus.native_ranges == 2
    assert m._bus.target(CLINT + 0xBFF8) == (clint, True)
    assert m._bus.target(PLIC + 0x20_0004) == (plic, True)
    assert m._bus.target(SCRATCH + 4) == (scratch, False)
    assert m._bus.target(SCRATCH + 0x100) is None                 # past the model: a hole
    # a PLIC claim and an mtimecmp store by the guest, served without the Python register bank
    words = (li(6, PLIC) + li(7, 1) + [store(4, 7, 6, 4 * SCRATCH_IRQ)]
             + li(6, PLIC + 0x2000) + li(7, 1 << SCRATCH_IRQ) + [store(4, 7, 6)]
             + li(6, SCRATCH + 8) + li(7, 3) + [store(4, 7, 6)]              # GO + IE: IRQ 5 high
             + li(6, PLIC + 0x20_0004) + [load(4, 28, 6)] + li(8, DRAM) + [store(4, 28, 8)]
             + li(6, CLINT + 0x4000) + li(7, 1000) + [store(4, 7, 6)]
             + li(6, CLINT + 0x4004) + [store(4, 0, 6)])
    run((m, cpu), words)
    assert int.from_bytes(m.read_memory(DRAM, 4), "little") == SCRATCH_IRQ     # claimed
    assert plic.in_flight == 1 << SCRATCH_IRQ and clint.compare(0) == 1000
    assert plic.regs.unmodeled == {} and all(r.value == 0 for r in clint.regs)   # the bank was not used
    # DMA-style accesses (bus_read/bus_write) reach both kinds of target
    m.bus_write(SCRATCH, 4, 0xCAFE)
    assert m.bus_read(SCRATCH, 4) == 0xCAFE and scratch.data.value == 0xCAFE
    m.bus_write(CLINT + 0x4004, 4, 7)
    assert m.bus_read(CLINT + 0x4004, 4) == 7 and clint.compare(0) >> 32 == 7
    assert m.bus_target(CLINT + 0x4004)[0] == clint.read                  # DMA's bus_target: the C map


@pytest.mark.parametrize("models", ["python", "native"])
def test_an_exception_in_a_model_stops_the_slice_and_reaches_the_caller(models) -> None:
    m, cpu, *_ = peer(models)
    words = li(6, SCRATCH + 0x30) + li(7, 0xB00) + [store(4, 7, 6)] + li(8, 1)
    with pytest.raises(RuntimeError, match="scratch: boom 0xb00"):
        run((m, cpu), words)
    assert not m.writing


def test_holes_in_warn_mode_and_unmapped_pages_behave_the_same() -> None:
    words = (li(6, SCRATCH + 0x800) + [load(4, 28, 6)] + li(7, 9) + [store(4, 7, 6)]
             + li(6, 0x7000_0010) + [load(4, 29, 6), store(4, 7, 6), load(2, 29, 6)]
             + li(8, DRAM) + [store(4, 28, 8), store(4, 29, 8, 4)])
    out = []
    for models in ("python", "native"):
        b = peer(models, unmapped="warn")
        run(b, words)
        m = b[0]
        out.append((state(b, 2), dict(m.unmapped), sorted(m._hole_pages)))
        assert [e for e in m.scheduler.log if e[1] == "unmapped_access"]
    assert out[0] == out[1]
    assert out[0][1] == {SCRATCH + 0x800: 2, 0x7000_0010: 3}
    assert out[0][0]["loaded"] == [0, 0]
