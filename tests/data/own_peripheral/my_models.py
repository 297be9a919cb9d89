"""A user's own peripheral model, outside duohil (docs/own-peripheral.md): a "doubler".

Write a number to IN, then CTRL.GO: ``latencyUs`` later OUT = 2 * IN and STATUS.DONE is set; the
IRQ output is STATUS.DONE and CTRL.IE; writing 1 to STATUS.DONE clears it (and the IRQ). Each
result is recorded in the run's event log.
"""
from __future__ import annotations

from typing import Any, ClassVar

from duohil.engines.builtin.kernel.peripheral import Peripheral
from duohil.engines.builtin.kernel.regs import RO, W1C, W1T, Field


class Doubler(Peripheral):
    renode_types = ("Miscellaneous.Doubler",)      # the repl type, when registered (register_model)
    default_size = 0x100
    properties: ClassVar[dict[str, Any]] = {"latencyUs": 2}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self.latency_ps = int(self.props["latencyUs"]) * 1_000_000
        self.regs.define(0x0, "IN")
        self.regs.define(0x4, "OUT", access=RO)
        self.regs.define(0x8, "CTRL", fields=[Field("GO", 0, access=W1T), Field("IE", 1)],
                         on_write=self._ctrl_written)
        self.regs.define(0xC, "STATUS", access=W1C, fields=[Field("DONE", 0)],
                         on_write=lambda reg, old, new: self._update_irq())
        self._busy = None

    def _ctrl_written(self, reg, old: int, new: int) -> None:
        if new & 1 and self._busy is None:              # GO: the result after the latency
            self._busy = self.schedule(self.latency_ps, self._done)
        self._update_irq()

    def _done(self) -> None:
        self._busy = None
        self.regs.OUT.value = (2 * self.regs.IN.value) & 0xFFFF_FFFF
        self.regs.STATUS.set(DONE=1)
        self.machine.record("doubler_done", doubler=self.name, out=self.regs.OUT.value)
        self._update_irq()

    def _update_irq(self) -> None:
        self.output("IRQ").set(bool(self.regs.STATUS.DONE and self.regs.CTRL.IE))

    def reset(self) -> None:
        super().reset()
        if self._busy is not None:
            self._busy.cancel()
            self._busy = None
        self._update_irq()
