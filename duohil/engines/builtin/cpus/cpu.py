"""The architecture-neutral half of a builtin CPU: virtual time, slices, sleep, stall and parking.

An architecture (cortexm.py, riscv.py) subclasses ``CpuCore`` and supplies the unicorn instance,
reset, interrupt delivery and the detection of WFI. Everything about time lives here so both cores
advance under exactly the same rules; the slice driver itself is C (native/_core.c), described
above ``next_deadline``.

Time accounting: the CPU keeps a cycle counter (1 instruction = 1 cycle, unicorn.md section 9).
A slice of n cycles runs ``emu_start(count=n)``; a slice that ends early (WFI, a poll park, an
exception hook that stops emulation) is charged in full, because unicorn cannot say how many
instructions ran. That makes results depend on the quantum, and the quantum is therefore part of
every run's configuration.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...base import PS_PER_S
from .. import native
# (LIB, RAW, U64, _UNTIL, _NO_TIMEOUT... are imported from here by cortexm.py and bench.py)
from ..kernel.ucraw import (LIB, RAW, U64, _FOUR, _NO_TIMEOUT, _THIRTY_TWO, _UNPACK8,  # noqa: F401
                            _UNTIL, MemPort, UcError, _separate_ram_blocks)

if TYPE_CHECKING:  # pragma: no cover
    from unicorn import Uc

    from ..kernel.machine import Machine


def _poll_park_after() -> int:
    """Same-status-register reads in a row, with no write, before the core parks: the native
    core's rule (CpuState.poll_hint); 4 when the core is not built (nothing parks then)."""
    from .. import native
    core = native.core()
    return int(core.POLL_PARK_AFTER) if core is not None else 4


POLL_PARK_AFTER = _poll_park_after()


def _state_base() -> type:
    """``_core.CpuState``: the time state below (hz, cycles, sleeping, stall_until, ...) as C
    fields the slice driver reads without a dict lookup; ``object`` when the core is not built
    (then the builtin engine says why it cannot run, and nothing here is used)."""
    from .. import native
    core = native.core()
    return core.CpuState if core is not None else object


class CpuCore(_state_base()):  # type: ignore[misc]
    arch = "?"

    def __init__(self, machine: "Machine", name: str, hz: int) -> None:
        self.machine = machine
        self.name = name
        self.hz = int(hz)
        self.cycles = 0
        self._unmapped_cb: Any = None       # [vtlb] see bound_memory_hooks
        self._unmapped_hooks: list[int] = []
        self._unmapped_ranges: list[tuple[int, int]] = []
        self.uc: "Uc" = self._create_uc()
        _separate_ram_blocks(self.uc)
        # a step started from Python (_emu_start) starts from C with the GIL held, as the C slices
        # do: the C MMIO bus (machine.py) then serves an access without taking the GIL back
        self._emu_native = native.require().emu_start
        self._uch_int = self.uc._uch.value
        self.sleeping = False              # in WFI, woken by an interrupt becoming pending
        self.stall_until: int | None = None    # halted by the harness (peer GC pause) until t
        self.halted = False                # stopped for good (lockup, or halted by a test)
        self.halt_reason: str | None = None
        self.parked = False                # poll-skip: spinning on a register that cannot change
        self.park_until: int | None = None
        self.executing = False
        self.slice_start_ps = 0
        self.slices = 0
        self.instructions = 0              # charged cycles of slices that ran code
        #: instructions per second at most (the platform's PerformanceInMips), None: no cap
        self.hz_cap: int | None = None
        self._pending_hz: int | None = None
        self._poll_addr: int | None = None
        self._poll_count = 0
        self._poll_writes = -1             # machine.mmio_writes at the last hint
        # [vtlb] the TLB filled by the native core so that stores to RAM run inline (native/vtlb.h:
        # unicorn 2.1.4 kept every RAM store on its slow path); the unmapped-access hooks are
        # bounded to where no memory is (any memory hook over a page keeps its stores slow)
        self._vtlb = None
        # Every slice is emu_start(pc, until=0xFFFFFFFF, count=n) and ends by its count, a stop or
        # WFI, never at `until`; but unicorn 2.1.4 invalidates the translation at `until` after
        # every emu_start (resume_all_vcpus -> uc_invalidate_tb -> get_page_addr_code: a TLB fill
        # of that unmapped page, ~250 ns a slice, one fill of two on the M7 in nominal traffic).
        # With its "exits" switched on and none given, `until` is ignored and nothing is
        # invalidated (qemu/softmmu/cpus.c, unicorn 2.1.4); a PC cannot be 0xFFFFFFFF (Thumb and
        # RV32C fetch from even addresses), so no slice behaves differently.
        self.uc.ctl_exits_enabled(True)
        self.uc.ctl_set_exits([])
        core = native.core()
        if core is not None:
            from unicorn import UC_QUERY_PAGE_SIZE
            self._vtlb = core.Vtlb(self.uc._uch.value, self.uc.query(UC_QUERY_PAGE_SIZE),
                                   self.arch.startswith("cortex-m"), self.uc)

    # -- memory hooks -------------------------------------------------------------------------------
    def hook_unmapped(self, callback: Any) -> None:
        """``callback`` as unicorn's UC_HOOK_MEM_UNMAPPED hook, over the address space outside
        the machine's memories (refreshed by ``bound_memory_hooks`` as memories are added)."""
        self._unmapped_cb = callback
        self.bound_memory_hooks()

    def bound_memory_hooks(self) -> None:
        """Re-add the unmapped-access hook over the gaps between the machine's memories (RAM,
        flash): unicorn 2.1.4 never lets a store to a page run inline while any memory hook's
        range covers it (uc_mem_hook_installed), and an unmapped access can only happen outside
        them. MMIO regions stay covered (their accesses are callbacks anyway)."""
        cb = self._unmapped_cb
        if cb is None:
            return
        from unicorn import UC_HOOK_MEM_UNMAPPED
        for h in self._unmapped_hooks:
            self.uc.hook_del(h)
        spans = sorted((a, a + n) for _name, a, n in getattr(self.machine, "memories", ()))
        gaps, at = [], 0
        for lo, hi in spans:
            if lo > at:
                gaps.append((at, lo))
            at = max(at, hi)
        if at < 1 << 32:
            gaps.append((at, 1 << 32))
        self._unmapped_ranges = gaps
        self._unmapped_hooks = [self.uc.hook_add(UC_HOOK_MEM_UNMAPPED, cb, begin=lo, end=hi - 1)
                                for lo, hi in gaps]

    # -- to be provided by the architecture --------------------------------------------------------
    def _create_uc(self) -> "Uc":
        raise NotImplementedError

    def reset(self) -> None:
        """Architectural reset (registers, interrupt state). Memory is left alone."""
        raise NotImplementedError

    def interrupt_pending(self) -> bool:
        """True when an enabled interrupt could be taken (or would wake the core from WFI)."""
        raise NotImplementedError

    def take_interrupts(self) -> bool:
        """Deliver any interrupt that may preempt now. Returns True if one was taken."""
        raise NotImplementedError

    def _run_slice(self, count: int) -> None:
        """Run up to ``count`` instructions from the current PC; set ``self.sleeping`` on WFI."""
        raise NotImplementedError

    def _emu_start(self, begin: int, count: int) -> None:
        """``uc.emu_start(begin, 0xFFFFFFFF, 0, count)`` from C (``_core.emu_start``, without the
        binding's per-argument conversions); like the binding, re-raises an exception a Python
        hook raised."""
        uc = self.uc
        uc._hook_exception = None
        err = self._emu_native(self._uch_int, begin, 0xFFFF_FFFF, 0, count)
        if err:
            raise UcError(err)
        exc = uc._hook_exception
        if exc is not None:
            raise exc

    # -- time ------------------------------------------------------------------------------------------
    def set_core_clock(self, hz: int) -> None:
        """The core clock changed (the RCC model): 1 instruction = 1 cycle, so the instruction rate
        becomes ``hz``, capped by ``hz_cap``. Inside a slice the change waits for its end (the
        slice's instruction count was computed at the old rate)."""
        hz = int(hz)
        if self.hz_cap:
            hz = min(hz, self.hz_cap)
        if hz <= 0:
            return
        if self.executing:
            self._pending_hz = hz
            return
        self._apply_hz(hz)

    def _apply_hz(self, hz: int) -> None:
        self._pending_hz = None
        if hz == self.hz:
            return
        t = self.now_ps()
        self.hz = hz
        self.cycles = self.cycles_at(t)                # the same instant at the new rate

    def now_ps(self) -> int:
        return self.cycles * PS_PER_S // self.hz

    def cycles_at(self, t_ps: int) -> int:
        return -((-t_ps * self.hz) // PS_PER_S)           # ceil: the first cycle at or after t

    # The slice driver is C (native/_core.c: c_next_deadline, c_advance_to, c_settle), the one
    # implementation: the C scheduler runs it directly for every CPU that keeps these three
    # methods (register_cpu_class below); they are here for callers outside the loop and for
    # subclasses that wrap them. What it does, in this order (attributes of this object):
    #   next_deadline(now, q): None if halted; stall_until if stalled; park_until if parked (None:
    #     until an event); None if sleeping with no interrupt_pending(); else now + q.
    #   advance_to(t): cycles caught up to the scheduler's now (the steps it skipped), target =
    #     cycles_at(t); a sleeping core first takes an interrupt (awake) or, with nothing pending,
    #     sleeps through. Then until cycles >= target: halted -> jump; stalled -> jump if the stall
    #     outlasts t, else end it at stall_until (record "stall_end"); parked -> the same with
    #     park_until (unpark()); take_interrupts() (wakes); still sleeping -> jump if nothing is
    #     pending; else one slice: executing, slice_start_ps = now_ps(), the poll state cleared,
    #     _run_slice(target - cycles) (executing cleared whatever happens), cycles, instructions
    #     and slices charged in full, a clock change made inside the slice applied at its end.
    #   settle(t): cycles raised to cycles_at(t) (a CPU that asked for no time).
    def next_deadline(self, now: int, quantum: int) -> int | None:
        return _core().cpu_next_deadline(self, now, quantum)

    def settle(self, t: int) -> None:
        """The scheduler skips a CPU that asked for no time (``next_deadline`` None); its clock
        is brought up to ``t`` here, as advancing it through every step would have done."""
        _core().cpu_settle(self, t)

    def advance_to(self, t: int) -> None:
        _core().cpu_advance_to(self, t)

    # -- storms ---------------------------------------------------------------------------------------
    def storm(self, kind: str, details: dict) -> None:
        """The machine saw the same event (reset, fault, trap) at >= 10 kHz for 100 ms
        (scheduler.STORM_EVENTS): the CPU is stopped, after the current step, until a reset
        from outside it (a watchdog); the run goes on at the cost of the peripherals only.
        Silicon would go on storming: what it would do in that time is not modelled."""
        if not self.halted:
            self.machine.scheduler.at(self.machine.now(), self.halt_for, f"{kind} storm", details)

    def halt_for(self, what: str, details: dict | None = None) -> None:
        """Stop this CPU for ``what`` (a storm, a hang) and record it once, with the PC."""
        if self.halted:
            return
        d = details or {}
        pc = d.get("pc", d.get("mepc"))
        self.halted = True
        self.halt_reason = what
        self.machine.record("cpu_stopped", cpu=self.name, reason=what,
                            pc=pc if isinstance(pc, int) else self.pc_now())
        if self.executing:
            self.uc.emu_stop()

    def pc_now(self) -> int:
        """The PC (for reports)."""
        pc = getattr(self, "pc")
        return int(pc() if callable(pc) else pc)

    # -- harness controls --------------------------------------------------------------------------------
    def stall(self, until_ps: int) -> None:
        """Halt the core until ``until_ps`` (virtual); peripherals keep running."""
        self.stall_until = max(until_ps, self.stall_until or 0)
        self.machine.record("stall_begin", cpu=self.name, until_ps=until_ps)

    # -- poll-skip ------------------------------------------------------------------------------------------
    # poll_hint(addr, wake_ps) is CpuState's, in C (native/_core.c [pollc]): a status-register read
    # whose value cannot change before wake_ps (None: before some event); after POLL_PARK_AFTER
    # reads of one address in a row with no MMIO write between and no interrupt pending, the
    # executing core parks until then (unicorn.md section 7).

    def unpark(self) -> None:
        self.parked = False
        self.park_until = None
        self._poll_addr = None
        self._poll_count = 0


def _core():
    from .. import native
    return native.require()


def _register_native() -> None:
    """The C scheduler drives CPUs that keep CpuCore's time methods with its C slice driver."""
    from .. import native
    core = native.core()
    if core is not None:
        core.register_cpu_class(CpuCore)


_register_native()
