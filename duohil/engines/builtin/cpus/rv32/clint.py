"""RISC-V CLINT (Renode ``IRQControllers.CoreLevelInterruptor``): msip, mtimecmp and mtime per hart.

mtime is not a counter that ticks: it is derived from virtual time,
``mtime = offset + floor(t_ps * frequency / (divider * 1e12))``, so reading it costs nothing and
idle time can be skipped. MTIP is a scheduled event at the first picosecond where
``mtime >= mtimecmp``. Register map (Renode's, hart n): msip 0x0000 + 4n (bit 0), mtimecmp
0x4000 + 8n (low) / +4 (high), mtime 0xBFF8 / 0xBFFC (writable: sets every hart's time base).
Outputs: ``output(2n)`` = hart n MSIP, ``output(2n + 1)`` = MTIP (repl ``[0,1] -> cpu@[3,7]``).
As in Renode, writing either half of mtimecmp re-evaluates MTIP at once, so on RV32 write the high
word as all ones first. The first CPU of the machine gets ``time_source`` (the ``time`` CSR, repl
``timeProvider: clint``). Reset: mtime restarts at 0, mtimecmp = all ones, msip = 0. A byte or
halfword write merges into the register's last written word (as a RegisterBank does).

The model is C, one copy (native/clint.c, ``_core.Clint``; the Python copy was deleted once proven
equal, issue 13): the timer state (offset, mtimecmp), the register map and the MTIP decision.
A register access, from the C bus (``_native_mmio``, native/ports.h) or through ``read``/``write``,
is decoded in C; the output signals and the scheduler events stay Python objects, called from C
only when a line changes or an event moves. Compares further ahead than 2**40 ticks, or due past
2**63 ps, are not scheduled (virtual time never gets there; they appear while an RV32 firmware
writes mtimecmp in halves). The register bank only names the registers (diagnostics) and counts
unmodelled offsets. tests/test_native_clint.py checks it against the map and the privileged spec.
"""
from __future__ import annotations

from typing import Any, ClassVar

from duohil.errors import ConfigError
from ... import native
from ...kernel.peripheral import Peripheral

MTIMECMP_BASE = 0x4000
MTIME_LO, MTIME_HI = 0xBFF8, 0xBFFC


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
        self._c = native.require().Clint(self.frequency, self.divider, self.harts)
        #: each hart's pending MTIP event (or None), kept by C
        self._events: list[Any] = [None] * self.harts
        self._msip = [self.output(2 * n) for n in range(self.harts)]
        self._mtip = [self.output(2 * n + 1) for n in range(self.harts)]
        for n in range(self.harts):              # names only (diagnostics): C serves these offsets
            self.regs.define(4 * n, f"MSIP{n}")
            self.regs.define(MTIMECMP_BASE + 8 * n, f"MTIMECMP{n}_LO")
            self.regs.define(MTIMECMP_BASE + 8 * n + 4, f"MTIMECMP{n}_HI")
        self.regs.define(MTIME_LO, "MTIME_LO")
        self.regs.define(MTIME_HI, "MTIME_HI")
        # the register map in C: the bus calls it through _native_mmio (ports.h) and so do
        # read/write; the register bank only counts unmodelled offsets
        self._c.bind(machine, machine.scheduler, self._msip, self._mtip, self._events, self._c.fire,
                     [f"{name}.mtip{n}" for n in range(self.harts)], self.regs.read, self.regs.write)
        self.read = self._c.read                                # type: ignore[method-assign]
        self.write = self._c.write                              # type: ignore[method-assign]
        self._native_mmio = self._c.port()
        cpu = machine.cpu
        if cpu is not None and hasattr(cpu, "time_source"):
            cpu.time_source = self.mtime

    # the C register map (__init__ binds these on the object; the class-level ones say to a bus that
    # the model has its own read/write, not its register bank's)
    def read(self, offset: int, size: int) -> int:
        return self._c.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self._c.write(offset, size, value)

    def compare(self, n: int) -> int:
        """Hart n's mtimecmp (64 bits)."""
        return self._c.cmp(n)

    def mtime(self) -> int:
        return self._c.mtime(self.now())

    def _fire(self, n: int) -> None:
        """Hart n's MTIP event: due now, so C raises the line (or reschedules a far compare). The
        event itself calls ``_c.fire`` (the same in C); this is its Python face."""
        self._c.fire(n)

    def reset(self) -> None:
        super().reset()
        self._c.reset(self.now())
        for n in range(self.harts):
            self._msip[n].set(False)
            self._c.update_hart(n)
