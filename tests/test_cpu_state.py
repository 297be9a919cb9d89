"""The CPU's time state as C fields (``_core.CpuState``, the base of cpu.py's CpuCore).

The slice driver and the units read hz, cycles, sleeping, stall_until, ... straight from the
struct; Python reads and writes the same fields as attributes. These tests state the contract of
those attributes (an int, a bool, an int-or-None; what is refused, in words) and that the C sees
what Python wrote and Python what the C wrote, through the slice driver and machine_now."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.cpu import CpuCore
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

CORE = native.require()
PS_PER_S = 1_000_000_000_000

INTS = ("hz", "cycles", "slice_start_ps", "slices", "instructions", "_poll_count", "_poll_writes")
OPTS = ("stall_until", "park_until", "_pending_hz", "_poll_addr")
BOOLS = ("sleeping", "halted", "parked", "executing")


class _Machine:
    def __init__(self, sched: Scheduler) -> None:
        self.scheduler = sched
        self.cpu = None
        self.records: list = []

    def record(self, kind: str, **details) -> None:
        self.records.append((kind, details))


class Cpu(CpuCore):
    """CpuCore's time state and driver, no unicorn: a slice just runs."""

    def __init__(self, sched: Scheduler, hz: int = 1_000_000) -> None:
        self.machine, self.name, self.hz = _Machine(sched), "c", hz
        self.machine.cpu = self
        self.slice_log: list[tuple[int, int, bool]] = []
        self.pending = False

    def interrupt_pending(self) -> bool:
        return self.pending

    def take_interrupts(self) -> bool:
        took, self.pending = self.pending, False
        return took

    def _run_slice(self, count: int) -> None:
        self.slice_log.append((count, self.slice_start_ps, self.executing))


def test_cpucore_is_a_cpustate_with_its_defaults() -> None:
    c = Cpu(Scheduler(1_000))
    assert isinstance(c, CORE.CpuState)
    assert (c.cycles, c.slices, c.instructions, c.slice_start_ps) == (0, 0, 0, 0)
    assert [getattr(c, n) for n in BOOLS] == [False] * 4
    assert [getattr(c, n) for n in OPTS] == [None] * 4
    assert c.machine.scheduler is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(INTS + OPTS + BOOLS),
                          st.one_of(st.integers(-2**63, 2**63 - 1), st.none(), st.booleans())),
                max_size=30))
def test_attributes_keep_what_python_stores(writes) -> None:
    """Every write reads back as a plain attribute would have it (bools as True/False), or is
    refused with the field's name and what it takes; a refused write changes nothing."""
    c = Cpu(Scheduler(1_000))
    shadow = {n: getattr(c, n) for n in INTS + OPTS + BOOLS}
    for name, value in writes:
        if name in BOOLS:
            setattr(c, name, value)
            shadow[name] = bool(value)
        elif value is None and name in INTS:
            with pytest.raises(TypeError, match=f"{name} must be an int, not NoneType"):
                setattr(c, name, value)
        else:
            setattr(c, name, value)
            shadow[name] = None if value is None else int(value)
        assert {n: getattr(c, n) for n in shadow} == shadow
        for n in BOOLS:
            assert type(getattr(c, n)) is bool


def test_refusals_name_the_field() -> None:
    c = Cpu(Scheduler(1_000))
    with pytest.raises(TypeError, match="cycles must be an int, not float"):
        c.cycles = 1.5
    with pytest.raises(TypeError, match="stall_until must be an int or None, not str"):
        c.stall_until = "soon"
    with pytest.raises(OverflowError, match="hz: .* beyond 64 bits"):
        c.hz = 2**64
    with pytest.raises(AttributeError, match="sleeping cannot be deleted"):
        del c.sleeping
    assert (c.cycles, c.stall_until, c.hz, c.sleeping) == (0, None, 1_000_000, False)


def test_the_c_driver_reads_what_python_wrote_and_python_reads_what_it_wrote() -> None:
    s = Scheduler(10_000)                  # 10 ns steps, 1 MHz: 1 cycle per microsecond
    c = Cpu(s, hz=1_000_000_000)           # 1 GHz: 10 cycles per step
    s.add_cpu(c)
    c.stall_until = 30_000                 # Python writes, the C decides from it
    assert c.next_deadline(0, 10_000) == 30_000
    s.run_until(50_000)
    assert c.stall_until is None           # the C ended the stall: Python sees None
    assert c.machine.records[0] == ("stall_end", {"t": 30_000, "cpu": "c"})
    assert c.slice_log == [(10, 30_000, True), (10, 40_000, True)]
    assert (c.cycles, c.slices, c.instructions, c.executing) == (50, 2, 20, False)
    c.sleeping = 1                         # truthy: asleep, and the driver skips it
    assert c.sleeping is True and c.next_deadline(s.now, 10_000) is None
    c.pending = True                       # an interrupt wakes it: the C clears sleeping
    s.run_until(60_000)
    assert c.sleeping is False and c.slice_log[-1] == (10, 50_000, True)
    c.halted = True
    s.run_until(80_000)
    assert c.cycles == 80 and c.slices == 3


def test_the_driver_calls_what_the_instance_holds_and_sees_it_change() -> None:
    """The slice driver keeps the instance's own take_interrupts / interrupt_pending / _run_slice
    (cortexm.py and riscv.py set them to their C units' methods) to call them without a lookup:
    setting, replacing or deleting one on the instance is seen at the next step, and a class's
    method is used again once the instance's is deleted."""
    s = Scheduler(10_000)
    c = Cpu(s, hz=1_000_000_000)
    s.add_cpu(c)
    calls: list[str] = []
    c._run_slice = lambda n: calls.append(f"mine {n}")
    c.take_interrupts = lambda: calls.append("take") and False
    s.run_until(20_000)
    assert calls == ["take", "mine 10", "take", "mine 10"] and c.slice_log == []
    setattr(c, "".join(["_run", "_slice"]), lambda n: calls.append(f"other {n}"))  # not interned
    s.run_until(30_000)
    assert calls[-1] == "other 10"
    del c._run_slice, c.take_interrupts                 # the class's methods again
    s.run_until(40_000)
    assert calls[-1] == "other 10" and c.slice_log == [(10, 30_000, True)]
    c.sleeping, c.interrupt_pending = True, lambda: calls.append("pending") and False
    s.run_until(50_000)
    assert calls[-1] == "pending" and c.slice_log == [(10, 30_000, True)]
    with pytest.raises(AttributeError):
        del c._run_slice                                # nothing on the instance to delete

    def once(n: int) -> None:                           # replaces itself while it runs
        del c._run_slice
        calls.append(f"once {n}")
    c.sleeping, c._run_slice = False, once
    del once
    s.run_until(60_000)
    assert calls[-1] == "once 10" and c.slice_log == [(10, 30_000, True)]
    s.run_until(70_000)                                 # and the class's method again
    assert calls[-1] == "once 10" and c.slice_log[-1] == (10, 60_000, True)


def test_machine_now_reads_the_running_slice_from_the_struct() -> None:
    s = Scheduler(1_000)
    m = Machine("m", s)
    c = Cpu(s)
    c.machine, m.cpu = m, c
    s.run_until(5_000)
    assert CORE.machine_now(m) == m.now() == 5_000
    c.executing, c.slice_start_ps = True, 1_234
    assert CORE.machine_now(m) == m.now() == 1_234
    c.executing = False
    assert CORE.machine_now(m) == 5_000


def test_a_machines_cpu_and_scheduler_are_c_members_machine_now_reads() -> None:
    """Machine derives from _core.MachineState: cpu and scheduler are plain attributes for Python
    and what machine_now reads in C; replacing either is seen at once, a CPU that is not a
    CpuState or a scheduler that is not the C one still answer through their attributes, and a
    machine and its CPU (a cycle through the members) are collected together."""
    import gc
    import weakref
    s, s2 = Scheduler(1_000), Scheduler(1_000)
    m = Machine("m", s)
    assert isinstance(m, CORE.MachineState) and m.cpu is None and m.scheduler is s
    s.run_until(3_000)
    assert CORE.machine_now(m) == 3_000
    m.scheduler = s2                                   # another clock: read at once
    assert CORE.machine_now(m) == 0
    c = Cpu(s2)
    c.machine, m.cpu = m, c
    c.executing, c.slice_start_ps = True, 777
    assert CORE.machine_now(m) == m.now() == 777

    class DuckCpu:
        executing, slice_start_ps = True, 555
    m.cpu = DuckCpu()
    assert CORE.machine_now(m) == 555

    class DuckSched:
        now = 4_242
    m.cpu, m.scheduler = None, DuckSched()
    assert CORE.machine_now(m) == 4_242
    m.cpu, m.scheduler = c, s
    ref = weakref.ref(m)
    del m, c
    gc.collect()
    assert ref() is None


def test_the_c_driver_refuses_an_object_that_is_not_a_cpustate() -> None:
    class Duck:
        hz, cycles, halted, stall_until, parked, sleeping = 1, 0, False, None, False, False
    with pytest.raises(TypeError, match="needs a CpuCore .* not Duck"):
        CORE.cpu_next_deadline(Duck(), 0, 10)
    with pytest.raises(TypeError, match="needs a CpuCore"):
        CORE.cpu_settle(Duck(), 10)
    assert CORE.drives_natively(Duck()) is False


def test_a_cpu_and_its_machine_are_collected_together() -> None:
    """The CpuState's machine reference is visible to the cyclic collector (cpu -> machine ->
    cpu): a dropped pair is freed, not leaked."""
    import gc
    import weakref
    c = Cpu(Scheduler(1_000))
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None


M7_OBJ = ("_stop", "_mem_fault", "_pending_hook_removal")
M7_VEC = {"_entry_cache": (10, list), "_mask_cache": (3, list), "_ret_state": (8, tuple)}
M7_INT = ("_rate_n", "_entries", "_thread_pc", "_thread_ps")
M7_OPT = ("_pc", "_returned_to", "_hang_since")
M7_BOOL = ("_reset_pending", "_hung_reported")


def test_the_m7s_slice_and_exception_fields_are_c_fields_too() -> None:
    """CortexM7Cpu derives from _core.CortexMState: its per-slice and per-exception fields keep
    what Python stores (objects as they are, ints, int-or-None, bools), and the C entry reads
    them: an entry from thread mode stores _thread_ps/_thread_pc/_entries in the struct."""
    from builtin_helpers import build_m7
    b = build_m7()
    cpu = b.cpu
    assert isinstance(cpu, CORE.CortexMState) and isinstance(cpu, CORE.CpuState)
    marker = object()
    for name in M7_OBJ:
        setattr(cpu, name, marker)
        assert getattr(cpu, name) is marker
        setattr(cpu, name, None)
        assert getattr(cpu, name) is None
    for name in M7_INT:
        setattr(cpu, name, 12345)
        assert getattr(cpu, name) == 12345
        with pytest.raises(TypeError, match=f"{name} must be an int"):
            setattr(cpu, name, None)
    for name in M7_OPT:
        setattr(cpu, name, None)
        assert getattr(cpu, name) is None
        setattr(cpu, name, 0x0800_0101)
        assert getattr(cpu, name) == 0x0800_0101
    for name in M7_BOOL:
        setattr(cpu, name, 1)
        assert getattr(cpu, name) is True
    # the register vectors are words in the struct: None or exactly n ints of 32 bits, read back
    # as the list (or tuple) Python stored; anything else is refused naming the field
    for name, (n, kind) in M7_VEC.items():
        words = [0xFFFF_FFFF - i for i in range(n)]
        setattr(cpu, name, tuple(words))
        assert getattr(cpu, name) == kind(words) and type(getattr(cpu, name)) is kind
        setattr(cpu, name, None)
        assert getattr(cpu, name) is None
        with pytest.raises(TypeError, match=f"{name} must be None or {n} ints"):
            setattr(cpu, name, words[:-1])
        with pytest.raises(TypeError, match=f"{name} must be None or {n} ints"):
            setattr(cpu, name, marker)
        with pytest.raises(ValueError, match=f"{name}: item 1 must be an int in 0..0xFFFFFFFF"):
            setattr(cpu, name, [0, 1 << 32] + [0] * (n - 2))
        with pytest.raises(ValueError, match=f"{name}: item 0 must be an int"):
            setattr(cpu, name, [-1] + [0] * (n - 1))
        with pytest.raises(ValueError, match="not 4294967296"):       # a generator: items it made
            setattr(cpu, name, (x for x in [0, 1 << 32] + [0] * (n - 2)))
        assert getattr(cpu, name) is None               # a refused value changes nothing

    # the C entry writes them: an interrupt taken in thread mode marks the thread's time and PC
    from duohil.bench import _m7_for_exceptions
    cpu, A = _m7_for_exceptions()
    cpu._rate_n, cpu._entries, cpu._thread_ps, cpu._thread_pc = 7, 5, -1, 0
    pc = cpu.uc.reg_read(A.UC_ARM_REG_PC)
    cpu.nvic.set_pending(16)
    assert cpu.take_interrupts() is True
    assert (cpu._rate_n, cpu._entries) == (8, 0)
    assert cpu._thread_ps == cpu.machine.now() and cpu._thread_pc == pc & ~1
    assert cpu._pc is not None and cpu._pc == cpu.uc.reg_read(A.UC_ARM_REG_PC) & ~1


def test_each_architectures_fields_are_its_own() -> None:
    """The M7's names are fields of CortexMState only and the RV32's of RiscVState only: on the
    other core they stay ordinary attributes (the C reads them by attribute there)."""
    from builtin_helpers import build_m7
    from rv_helpers import build_peer
    rv = build_peer().cpu
    assert isinstance(rv, CORE.RiscVState) and not isinstance(rv, CORE.CortexMState)
    rv._pc = "anything"                  # no int rule: a plain attribute
    assert rv._pc == "anything" and "_pc" in vars(rv)
    rv.mip = 1 << 7                      # a field: an int, refused otherwise
    assert rv.mip == 128 and "mip" not in vars(rv)
    with pytest.raises(TypeError, match="mip must be an int"):
        rv.mip = None
    rv._state_cache = (1, 2, 3, 4, 5)        # a field: five words, read back as a list
    assert rv._state_cache == [1, 2, 3, 4, 5] and "_state_cache" not in vars(rv)
    with pytest.raises(TypeError, match="_state_cache must be None or 5 ints"):
        rv._state_cache = object()
    rv.last_trap = [0x8000_0007, 0x4200_0000, 0]
    assert rv.last_trap == (0x8000_0007, 0x4200_0000, 0) and "last_trap" not in vars(rv)
    m7 = build_m7().cpu
    m7.mip = "not a field here"
    assert m7.mip == "not a field here" and "mip" in vars(m7)
