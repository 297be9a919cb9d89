"""RISC-V PLIC (Renode ``IRQControllers.PlatformLevelInterruptController``).

Map (as Renode): priority 4*id (3 bits, reset 1, 0 = never), pending array 0x1000 (read-only),
enables 0x2000 + 0x80*ctx, threshold 0x200000 + 0x1000*ctx, claim/complete 0x200004 + 0x1000*ctx.
Output k = context k (repl ``0 -> cpu@11``: context 0 drives MEIP).

Gateway (level-sensitive, PLIC spec 1.0): a source whose input is high becomes pending unless it
is already pending or claimed (in flight); a claim clears pending; a completion ends the flight
and, if the input is still high, the source is pending again at once. A pulse (high then low)
therefore latches one request.

Beyond Renode: the threshold is implemented (Renode ignores it and behaves as 0): a context is
notified of, and claims, only sources with priority > threshold. Completion of an id that is not in
flight is ignored, as the spec says (Renode logs an error when it does not match its LIFO top);
the count is kept in ``bad_completions``. Ties: the lowest id wins (as Renode). A byte or halfword
access reads or merges the byte lanes of the word (a byte read of the claim register claims). With
``prioritiesEnabled: false`` priority writes are ignored (every source stays at 1). Reset:
priorities 1, enables and thresholds 0, nothing in flight, the lines still high pending again.

The model is C, one copy (native/plic.c, ``_core.Plic``; the Python copy was deleted once proven
equal, issue 13): the state (lines, pending, in flight, priorities, enables, thresholds, bad
completions), the gateway rule, claim/complete and the register map. A register access, from the C
bus (``_native_mmio``, native/ports.h) or through ``read``/``write``, is decoded in C, which sets
the context outputs where their level changes; ``level``, ``pending``... read the C state back
(tests, inspection). The register bank only names the registers (diagnostics) and counts
unmodelled offsets. tests/test_native_plic.py checks it against the PLIC spec.
"""
from __future__ import annotations

from typing import Any, ClassVar

from duohil.errors import ConfigError
from ... import native
from ...kernel.peripheral import Peripheral

PENDING_BASE = 0x1000
ENABLE_BASE, ENABLE_STRIDE = 0x2000, 0x80
CONTEXT_BASE, CONTEXT_STRIDE = 0x20_0000, 0x1000


class PlatformLevelInterruptController(Peripheral):
    renode_types = ("IRQControllers.PlatformLevelInterruptController",)
    default_size = 0x400_0000
    properties: ClassVar[dict[str, Any]] = {"numberOfSources": None, "numberOfContexts": 1,
                                  "prioritiesEnabled": True}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        if self.props["numberOfSources"] is None:
            raise ConfigError(f"{name}: property 'numberOfSources' is required",
                              field="numberOfSources", expected="1..1023")
        self.sources = int(self.props["numberOfSources"])
        self.contexts = int(self.props["numberOfContexts"])
        self.priorities_enabled = str(self.props["prioritiesEnabled"]).lower() not in ("false", "0")
        if not 1 <= self.sources <= 1023:
            raise ConfigError(f"{name}: numberOfSources {self.sources}", field="numberOfSources",
                              expected="1..1023")
        self._c = c = native.require().Plic(self.sources, self.contexts, self.priorities_enabled)
        words = (self.sources + 1 + 31) // 32
        # names only (diagnostics): C serves these offsets
        for i in range(1, self.sources + 1):
            self.regs.define(4 * i, f"PRIORITY{i}")
        for w in range(words):
            self.regs.define(PENDING_BASE + 4 * w, f"PENDING{w}")
        for k in range(self.contexts):
            for w in range(words):
                self.regs.define(ENABLE_BASE + ENABLE_STRIDE * k + 4 * w, f"ENABLE{k}_{w}")
            self.regs.define(CONTEXT_BASE + CONTEXT_STRIDE * k, f"THRESHOLD{k}")
            self.regs.define(CONTEXT_BASE + CONTEXT_STRIDE * k + 4, f"CLAIM{k}")
        # the register map in C: the bus calls it through _native_mmio (ports.h) and so do
        # read/write; the register bank only counts unmodelled offsets
        c.bind([self.output(k) for k in range(self.contexts)], self.regs.read, self.regs.write)
        self.read = c.read                                      # type: ignore[method-assign]
        self.write = c.write                                    # type: ignore[method-assign]
        self._native_mmio = c.port()

    # the C register map (__init__ binds these on the object; the class-level ones say to a bus that
    # the model has its own read/write, not its register bank's)
    def read(self, offset: int, size: int) -> int:
        return self._c.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self._c.write(offset, size, value)

    def set_input(self, line: int, level: bool) -> None:
        """Source ``line``'s input (the gateway); lines outside 1..numberOfSources are ignored."""
        if self._c.set_input(line, level):
            self._c.update()

    def reset(self) -> None:
        super().reset()
        self._c.reset()
        self._c.update()

    # -- read-only views of the C state (tests, inspection) -------------------------------------------
    @property
    def level(self) -> int:
        """The input lines, bit n = source n."""
        return self._c.bits("level")

    @property
    def pending(self) -> int:
        return self._c.bits("pending")

    @property
    def in_flight(self) -> int:
        """Claimed and not yet completed, bit n = source n."""
        return self._c.bits("in_flight")

    @property
    def bad_completions(self) -> int:
        """Completions of an id that was not in flight (ignored)."""
        return self._c.bad_completions

    @property
    def priority(self) -> list[int]:
        """Index = source (0 unused)."""
        return [self._c.priority(i) for i in range(self.sources + 1)]

    @property
    def enable(self) -> list[int]:
        """Per context, bit n = source n."""
        return [self._c.bits("enable", k) for k in range(self.contexts)]

    @property
    def threshold(self) -> list[int]:
        return [self._c.threshold(k) for k in range(self.contexts)]
