"""RISC-V CLINT (Renode ``IRQControllers.CoreLevelInterruptor``): msip, mtimecmp and mtime per hart.

mtime is not a counter that ticks: it is derived from virtual time,
``mtime = offset + floor(t_ps * frequency / (divider * 1e12))``, so reading it costs nothing and
idle time can be skipped. MTIP is a scheduled event at the first picosecond where
``mtime >= mtimecmp``. Register map (Renode's, hart n): msip 0x0000 + 4n (bit 0), mtimecmp
0x4000 + 8n (low) / +4 (high), mtime 0xBFF8 / 0xBFFC (writable: sets every hart's time base).
Outputs: ``output(2n)`` = hart n MSIP, ``output(2n + 1)`` = MTIP (repl ``[0,1] -> cpu@[3,7]``).
As in Renode, writing either half of mtimecmp re-evaluates MTIP at once, so on RV32 write the high
word as all ones first. The first CPU of the machine gets ``time_source`` (the ``time`` CSR, repl
``timeProvider: clint``). Reset: mtime restarts at 0, mtimecmp = all ones, msip = 0.

Under ``DUOHIL_MODELS=native`` the timer state (offset, mtimecmp) and the register map live in C
(native/clint.c, ``_core.Clint``) and only there: a register access, from the C bus
(``_native_mmio``, native/ports.h) or through ``read``/``write``, is decoded in C, which decides
what MTIP needs and does it (the output signals and the scheduler events stay Python objects, called
from C only when a line changes or an event moves); the register bank only counts unmodelled
offsets. tests/test_native_clint.py compares the two, through both buses.
"""
from __future__ import annotations

from typing import Any, ClassVar

from duohil.errors import ConfigError
from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import Field

MTIMECMP_BASE = 0x4000
MTIME_LO, MTIME_HI = 0xBFF8, 0xBFFC
MASK64 = (1 << 64) - 1
#: compare values further ahead than this (2**40 ticks: 19 h at 16 MHz) are not scheduled; they
#: appear while an RV32 firmware writes mtimecmp in halves (high word all ones first)
FAR_TICKS = 1 << 40
#: a due tick at least this far counts as far without computing mtime: virtual time stays below
#: 2**61 ticks (73 years at 1 GHz), so due - now > FAR_TICKS holds
HUGE_TICKS = 1 << 62
#: a due time past this picosecond (106 days) is not scheduled either: virtual time never gets
#: there, and the native scheduler keeps times in 64 bits (a slow mtime, e.g. 32 kHz, reaches it
#: within FAR_TICKS)
MAX_PS = (1 << 63) - 1
#: what _core.Clint.update asks for (native/clint.h), done in this order
CL_LOWER, CL_CANCEL, CL_RAISE, CL_SCHEDULE = 1, 2, 4, 8


class CoreLevelInterruptor(Peripheral):
    renode_types = ("IRQControllers.CoreLevelInterruptor",)
    default_size = 0x10000
    properties: ClassVar[dict[str, Any]] = {"frequency": None, "numberOfTargets": 1, "divider": 1}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        if self.props["frequency"] is None:
            raise ConfigError(f"{name}: property 'frequency' is required", field="frequency",
                              expected="mtime rate in Hz, e.g. 16000000")
        self.frequency = int(self.props["frequency"])
        self.divider = int(self.props["divider"])
        self.harts = int(self.props["numberOfTargets"])
        #: the timer state in C under DUOHIL_MODELS=native (then offset/mtimecmp exist only there)
        self._c = None
        if native.models() == "native":
            self._c = native.core().Clint(self.frequency, self.divider, self.harts)
            self.mtime = self._mtime_native                     # type: ignore[method-assign]
            self._update_mtip = self._c.update_hart             # type: ignore[method-assign]
            self.compare = self._c.cmp                          # type: ignore[method-assign]
        else:
            self.offset = 0                     # mtime = offset + ticks(t)
            self.mtimecmp = [MASK64] * self.harts
        self._events: list[Any] = [None] * self.harts
        self._ev_names = [f"{name}.mtip{n}" for n in range(self.harts)]
        self._ps_per_tick_div = self.divider * PS_PER_S
        self._msip = [self.output(2 * n) for n in range(self.harts)]
        self._mtip = [self.output(2 * n + 1) for n in range(self.harts)]
        #: offset -> (register, hart, shift) of the mtimecmp halves, for the fast path of write()
        self._cmp_regs: dict[int, tuple[Any, int, int]] = {}
        for n in range(self.harts):
            self.regs.define(4 * n, f"MSIP{n}", fields=[Field("MSIP", 0)],
                             on_write=lambda r, old, new, n=n: self._msip[n].set(r.MSIP))
            lo = self.regs.define(MTIMECMP_BASE + 8 * n, f"MTIMECMP{n}_LO",
                             on_read=lambda r, n=n: self.compare(n) & 0xFFFF_FFFF,
                             on_write=lambda r, old, new, n=n: self._set_cmp(n, new, 0))
            hi = self.regs.define(MTIMECMP_BASE + 8 * n + 4, f"MTIMECMP{n}_HI",
                             on_read=lambda r, n=n: self.compare(n) >> 32,
                             on_write=lambda r, old, new, n=n: self._set_cmp(n, new, 32))
            self._cmp_regs[MTIMECMP_BASE + 8 * n] = (lo, n, 0, ~0xFFFF_FFFF & MASK64)
            self._cmp_regs[MTIMECMP_BASE + 8 * n + 4] = (hi, n, 32, 0xFFFF_FFFF)
        self.regs.define(MTIME_LO, "MTIME_LO", on_read=lambda r: self.mtime() & 0xFFFF_FFFF,
                         on_write=lambda r, old, new: self._set_mtime(new, 0))
        self.regs.define(MTIME_HI, "MTIME_HI", on_read=lambda r: self.mtime() >> 32,
                         on_write=lambda r, old, new: self._set_mtime(new, 32))
        if self._c is not None:
            # the register map in C: the bus calls it through _native_mmio (ports.h) and so do
            # read/write; the register bank only counts unmodelled offsets
            self._c.bind(machine, machine.scheduler, self._msip, self._mtip, self._events, self._fire,
                         self._ev_names, self.regs.read, self.regs.write)
            self.read = self._c.read                            # type: ignore[method-assign]
            self.write = self._c.write                          # type: ignore[method-assign]
            self._native_mmio = self._c.port()
        cpu = machine.cpu
        if cpu is not None and hasattr(cpu, "time_source"):
            cpu.time_source = self.mtime

    def write(self, offset: int, size: int, value: int) -> None:
        # word writes of mtimecmp (three per tick of an RV32 firmware) skip the register bank's
        # decoding; the effect is the bank's for these plain 32-bit registers
        hit = self._cmp_regs.get(offset) if size == 4 else None
        if hit is None:
            self.regs.write(offset, size, value)
            return
        reg, n, shift, keep = hit
        reg.value = value = value & 0xFFFF_FFFF
        self.mtimecmp[n] = (self.mtimecmp[n] & keep) | (value << shift)     # = _set_cmp
        self._update_mtip(n)

    def compare(self, n: int) -> int:
        """Hart n's mtimecmp (64 bits)."""
        return self.mtimecmp[n]

    # -- time ------------------------------------------------------------------------------------------
    def _ticks(self, t_ps: int) -> int:
        return t_ps * self.frequency // (self.divider * PS_PER_S)

    def _time_of_tick(self, tick: int) -> int:
        """The first picosecond at which ``_ticks(t) >= tick``."""
        return -((-tick * self.divider * PS_PER_S) // self.frequency)

    def mtime(self) -> int:
        return (self.offset + self._ticks(self.now())) & MASK64

    def _set_mtime(self, value: int, shift: int) -> None:
        cur = self.mtime()
        keep = ~(0xFFFF_FFFF << shift) & MASK64
        new = (cur & keep) | ((value & 0xFFFF_FFFF) << shift)
        self.offset = new - self._ticks(self.now())
        for n in range(self.harts):
            self._update_mtip(n)

    def _set_cmp(self, n: int, value: int, shift: int) -> None:
        keep = ~(0xFFFF_FFFF << shift) & MASK64
        self.mtimecmp[n] = (self.mtimecmp[n] & keep) | ((value & 0xFFFF_FFFF) << shift)
        self._update_mtip(n)

    def _update_mtip(self, n: int) -> None:
        # hot: three times per tick of an RV32 firmware (mtimecmp written in halves), so the
        # helpers (_ticks, now, schedule_at) are inlined
        due_tick = self.mtimecmp[n] - self.offset          # in ticks of virtual time
        sig = self._mtip[n]
        if due_tick >= HUGE_TICKS:                         # the high word written all ones first
            if sig.level:
                sig.set(False)
            return
        now_tick = self.machine.now() * self.frequency // self._ps_per_tick_div
        ev = self._events[n]
        if due_tick <= now_tick:
            if ev is not None:
                ev.cancel()
                self._events[n] = None
            sig.set(True)
            return
        if sig.level:
            sig.set(False)
        if due_tick - now_tick > FAR_TICKS:
            return             # an event already scheduled re-checks when it fires (see _fire)
        t = self._time_of_tick(due_tick)
        if t > MAX_PS:
            return             # as far as FAR_TICKS: an event already scheduled re-checks
        if ev is not None:
            if ev.time == t:
                return
            ev.cancel()
        self._events[n] = self.machine.scheduler.at(t, self._fire, n, name=self._ev_names[n])

    def _fire(self, n: int) -> None:
        self._events[n] = None
        self._update_mtip(n)

    def reset(self) -> None:
        super().reset()
        if self._c is not None:
            self._c.reset(self.now())
        else:
            self.offset = -self._ticks(self.now())
        for n in range(self.harts):
            if self._c is None:
                self.mtimecmp[n] = MASK64
            self.output(2 * n).set(False)
            self._update_mtip(n)

    # -- the same with the state in C (DUOHIL_MODELS=native) ------------------------------------------
    def _mtime_native(self) -> int:
        return self._c.mtime(self.now())
