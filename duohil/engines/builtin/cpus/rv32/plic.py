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
the count is kept in ``bad_completions``. Ties: the lowest id wins (as Renode).

Under ``DUOHIL_MODELS=native`` the state (lines, pending, in flight, priorities, enables,
thresholds, bad completions) and the register map live only in C (native/plic.c, ``_core.Plic``):
a register access, from the C bus (``_native_mmio``, native/ports.h) or through ``read``/``write``,
is decoded in C (a claim or a completion included), which sets the context outputs where their
level changes; the input lines come through the ``*_native`` methods; ``level``, ``pending``...
read back from C. tests/test_native_plic.py compares the two, through both buses.
"""
from __future__ import annotations

from typing import Any, ClassVar

from duohil.errors import ConfigError
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO

PENDING_BASE = 0x1000
ENABLE_BASE, ENABLE_STRIDE = 0x2000, 0x80
CONTEXT_BASE, CONTEXT_STRIDE = 0x20_0000, 0x1000
PRIORITY_MASK = 7


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
        words = (self.sources + 1 + 31) // 32
        self._valid = ((1 << (self.sources + 1)) - 1) & ~1
        #: the state in C under DUOHIL_MODELS=native (then the attributes below exist only there)
        self._c = None
        if native.models() == "native":
            self._c = native.core().Plic(self.sources, self.contexts, self.priorities_enabled)
            for name in ("set_input", "_set_priority", "_set_enable", "_set_threshold", "_best", "claim",
                         "complete", "_update", "reset"):
                setattr(self, name, getattr(self, f"{name}_native"))
        else:
            self.level = 0            # input lines (bit n = source n)
            self.pending = 0
            self.in_flight = 0
            self.bad_completions = 0
            self.priority = [1] * (self.sources + 1)
            self.enable = [0] * self.contexts
            self.threshold = [0] * self.contexts
        for i in range(1, self.sources + 1):
            self.regs.define(4 * i, f"PRIORITY{i}", on_read=lambda r, i=i: self._priority(i),
                             on_write=lambda r, old, new, i=i: self._set_priority(i, new))
        for w in range(words):
            self.regs.define(PENDING_BASE + 4 * w, f"PENDING{w}", access=RO,
                             on_read=lambda r, w=w: (self._bits("pending") >> (32 * w)) & 0xFFFF_FFFF)
        for c in range(self.contexts):
            for w in range(words):
                self.regs.define(ENABLE_BASE + ENABLE_STRIDE * c + 4 * w, f"ENABLE{c}_{w}",
                                 on_read=lambda r, c=c, w=w: (self._enable(c) >> (32 * w)) & 0xFFFF_FFFF,
                                 on_write=lambda r, old, new, c=c, w=w: self._set_enable(c, w, new))
            base = CONTEXT_BASE + CONTEXT_STRIDE * c
            self.regs.define(base, f"THRESHOLD{c}", on_read=lambda r, c=c: self._threshold(c),
                             on_write=lambda r, old, new, c=c: self._set_threshold(c, new))
            self.regs.define(base + 4, f"CLAIM{c}", on_read=lambda r, c=c: self.claim(c),
                             on_write=lambda r, old, new, c=c: self.complete(c, new))
        if self._c is not None:
            # the register map in C: the bus calls it through _native_mmio (ports.h) and so do
            # read/write; the register bank only counts unmodelled offsets
            self._c.bind([self.output(c) for c in range(self.contexts)], self.regs.read, self.regs.write)
            self.read = self._c.read                            # type: ignore[method-assign]
            self.write = self._c.write                          # type: ignore[method-assign]
            self._native_mmio = self._c.port()

    # -- register reads, either state ------------------------------------------------------------------
    def _priority(self, i: int) -> int:
        return self._c.priority(i) if self._c is not None else self.priority[i]

    def _bits(self, name: str) -> int:
        return self._c.bits(name) if self._c is not None else getattr(self, name)

    def _enable(self, c: int) -> int:
        return self._c.bits("enable", c) if self._c is not None else self.enable[c]

    def _threshold(self, c: int) -> int:
        return self._c.threshold(c) if self._c is not None else self.threshold[c]

    # -- inputs ----------------------------------------------------------------------------------------
    def set_input(self, line: int, level: bool) -> None:
        if not 1 <= line <= self.sources:
            return
        bit = 1 << line
        if level:
            self.level |= bit
            if not (self.pending | self.in_flight) & bit:
                self.pending |= bit
                self._update()
        else:
            self.level &= ~bit

    # -- registers -----------------------------------------------------------------------------------
    def _set_priority(self, i: int, value: int) -> None:
        if self.priorities_enabled:
            self.priority[i] = value & PRIORITY_MASK
            self._update()

    def _set_enable(self, c: int, w: int, value: int) -> None:
        mask = 0xFFFF_FFFF << (32 * w)
        self.enable[c] = ((self.enable[c] & ~mask) | ((value & 0xFFFF_FFFF) << (32 * w))) & self._valid
        self._update()

    def _set_threshold(self, c: int, value: int) -> None:
        self.threshold[c] = value & PRIORITY_MASK
        self._update()

    def _best(self, c: int) -> int:
        cand = self.pending & self.enable[c]
        best, best_prio = 0, self.threshold[c]
        while cand:
            low = cand & -cand
            i = low.bit_length() - 1
            if self.priority[i] > best_prio:
                best, best_prio = i, self.priority[i]
            cand ^= low
        return best

    def claim(self, c: int) -> int:
        i = self._best(c)
        if i:
            self.pending &= ~(1 << i)
            self.in_flight |= 1 << i
            self._update()
        return i

    def complete(self, c: int, value: int) -> None:
        bit = 1 << (value & 0x3FF) if 0 < value <= self.sources else 0
        if not bit & self.in_flight:
            self.bad_completions += 1
            return
        self.in_flight &= ~bit
        if self.level & bit:
            self.pending |= bit
        self._update()

    def _update(self) -> None:
        for c in range(self.contexts):
            self.output(c).set(self._best(c) != 0)

    def reset(self) -> None:
        super().reset()
        self.pending = self.level & self._valid      # lines that are still high re-request
        self.in_flight = 0
        self.priority = [1] * (self.sources + 1)
        self.enable = [0] * self.contexts
        self.threshold = [0] * self.contexts
        self._update()

    # -- the same with the state in C (DUOHIL_MODELS=native) ------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """Read-only views of the C state under native (tests, inspection): ``level``,
        ``pending``, ``in_flight`` as ints, ``priority``/``enable``/``threshold`` as lists."""
        c = self.__dict__.get("_c")
        if c is None:
            raise AttributeError(name)
        if name in ("level", "pending", "in_flight"):
            return c.bits(name)
        if name == "bad_completions":
            return c.bad_completions
        if name == "priority":
            return [c.priority(i) for i in range(self.sources + 1)]
        if name == "enable":
            return [c.bits("enable", k) for k in range(self.contexts)]
        if name == "threshold":
            return [c.threshold(k) for k in range(self.contexts)]
        raise AttributeError(name)

    def set_input_native(self, line: int, level: bool) -> None:
        if self._c.set_input(line, level):
            self._update_native()

    def _set_priority_native(self, i: int, value: int) -> None:
        if self._c.set_priority(i, value):
            self._update_native()

    def _set_enable_native(self, c: int, w: int, value: int) -> None:
        self._c.set_enable(c, w, value)
        self._update_native()

    def _set_threshold_native(self, c: int, value: int) -> None:
        self._c.set_threshold(c, value)
        self._update_native()

    def _best_native(self, c: int) -> int:
        return self._c.best(c)

    def claim_native(self, c: int) -> int:
        i = self._c.claim(c)
        if i:
            self._update_native()
        return i

    def complete_native(self, c: int, value: int) -> None:
        if self._c.complete(value):
            self._update_native()

    def _update_native(self) -> None:
        self._c.update()

    def reset_native(self) -> None:
        Peripheral.reset(self)
        self._c.reset()
        self._update_native()
