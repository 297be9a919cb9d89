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
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...errors import ConfigError
from .peripheral import Peripheral
from .regs import RO

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
        self.level = 0            # input lines (bit n = source n)
        self.pending = 0
        self.in_flight = 0
        self.bad_completions = 0
        self.priority = [1] * (self.sources + 1)
        self.enable = [0] * self.contexts
        self.threshold = [0] * self.contexts
        self._valid = ((1 << (self.sources + 1)) - 1) & ~1
        for i in range(1, self.sources + 1):
            self.regs.define(4 * i, f"PRIORITY{i}", on_read=lambda r, i=i: self.priority[i],
                             on_write=lambda r, old, new, i=i: self._set_priority(i, new))
        for w in range(words):
            self.regs.define(PENDING_BASE + 4 * w, f"PENDING{w}", access=RO,
                             on_read=lambda r, w=w: (self.pending >> (32 * w)) & 0xFFFF_FFFF)
        for c in range(self.contexts):
            for w in range(words):
                self.regs.define(ENABLE_BASE + ENABLE_STRIDE * c + 4 * w, f"ENABLE{c}_{w}",
                                 on_read=lambda r, c=c, w=w: (self.enable[c] >> (32 * w)) & 0xFFFF_FFFF,
                                 on_write=lambda r, old, new, c=c, w=w: self._set_enable(c, w, new))
            base = CONTEXT_BASE + CONTEXT_STRIDE * c
            self.regs.define(base, f"THRESHOLD{c}", on_read=lambda r, c=c: self.threshold[c],
                             on_write=lambda r, old, new, c=c: self._set_threshold(c, new))
            self.regs.define(base + 4, f"CLAIM{c}", on_read=lambda r, c=c: self.claim(c),
                             on_write=lambda r, old, new, c=c: self.complete(c, new))

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
