"""STM32 independent watchdog (IWDG1, 0x5800_4800), Renode type ``Timers.STM32_IndependentWatchdog``.

Registers (RM0433 names; stm32h7-registers.md s.8): KR (write-only keys), PR, RLR, SR (PVU, RVU,
WVU), WINR. Keys: 0xCCCC starts the watchdog (only a reset stops it), 0x5555 unlocks PR/RLR/WINR
(any other key locks them again), 0xAAAA reloads the counter from RLR. Writing WINR reloads the
counter as well (HAL_IWDG_Init relies on it).

Timing: the LSI runs at the repl ``frequency`` (32 kHz); the divider is ``defaultPrescaler``
(4) x 2^PR, with PR=7 treated as PR=6 (/256, unverified). The counter expires
``divider * (RLR + 1) / f_LSI`` after the last start/reload; PR and RLR written in between take
effect at the next reload (on silicon a PR change propagates on its own; HAL always reloads
after it). Expiry calls ``machine.system_reset("iwdg")``; the RCC model sets RSR.IWDG1RSTF from
that cause. SR.PVU/RVU/WVU read 1 for ``SR_UPDATE_LSI_CYCLES`` LSI periods after a write to
PR/RLR/WINR (the value crossing into the LSI domain), so HAL's "poll SR == 0" proceeds quickly.

Window (``windowOption`` true and WINR < 0xFFF): a reload while the down-counter is still above
WINR resets the chip, like an expiry (unverified RM wording). The watchdog keeps counting while the
CPU is halted or stalled; DBGMCU freezing is not modelled. One scheduler event per expiry
deadline: a reload only moves the deadline, and the pending event re-arms itself when it fires
early, so a firmware kicking every millisecond costs no events.

Under ``DUOHIL_MODELS=native`` ``STM32_IndependentWatchdog(...)`` is a
``STM32_IndependentWatchdogNative``: registers, keys, SR busy bits, the window check and the
expiry deadline in C (native/iwdg.c, ``_core.Iwdg``, its base class), so a kick from the C bus
is handled without a Python call. This model stays the reference (tests/test_native_iwdg.py).
The native model reads ``windowOption`` once, when built (this one at every reload).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, W1T, Field, Register

KEY_START, KEY_RELOAD, KEY_UNLOCK = 0xCCCC, 0xAAAA, 0x5555
SR_UPDATE_LSI_CYCLES = 5          # PVU/RVU/WVU busy time (RM: up to 5 LSI periods; unverified)
RLR_MAX = 0xFFF
PRESCALER_MAX = 1 << 24           # bounds that keep the ps arithmetic in 128 bits (native/iwdg.c)
REG_NAMES = ("KR", "PR", "RLR", "SR", "WINR")


def _timing_props(name: str, props: dict[str, Any]) -> tuple[int, int]:
    """(LSI frequency in Hz, defaultPrescaler) from the repl properties, checked."""
    lsi_hz = int(props["frequency"])
    if lsi_hz <= 0:
        raise ValueError(f"{name}: frequency must be positive, got {lsi_hz}")
    if lsi_hz > PS_PER_S:
        raise ValueError(f"{name}: frequency must be at most 1 THz (10**12 Hz), got {lsi_hz}")
    prescaler = int(props["defaultPrescaler"])
    if not 0 < prescaler <= PRESCALER_MAX:
        raise ValueError(f"{name}: defaultPrescaler must be 1 .. {PRESCALER_MAX}, got {prescaler}")
    return lsi_hz, prescaler


class STM32_IndependentWatchdog(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Timers.STM32_IndependentWatchdog",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"frequency": 32_000, "windowOption": True,
                                            "defaultPrescaler": 4}

    def __new__(cls, *args: Any, **kwargs: Any) -> "STM32_IndependentWatchdog":
        # under DUOHIL_MODELS=native the model lives in C (STM32_IndependentWatchdogNative below)
        if cls is STM32_IndependentWatchdog and native.models() == "native":
            native_cls = native_class()
            return native_cls.__new__(native_cls)
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self.lsi_hz, _ = _timing_props(name, self.props)
        r = self.regs
        r.define(0x00, "KR", access=W1T, fields=[Field("KEY", 0, 16)], on_write=self._kr_written)
        r.define(0x04, "PR", fields=[Field("PR", 0, 3)], on_write=self._protected_written)
        r.define(0x08, "RLR", reset=RLR_MAX, fields=[Field("RL", 0, 12)],
                 on_write=self._protected_written)
        r.define(0x0C, "SR", access=RO, fields=[Field("PVU", 0), Field("RVU", 1), Field("WVU", 2)],
                 on_read=self._sr_read)
        r.define(0x10, "WINR", reset=RLR_MAX, fields=[Field("WIN", 0, 12)],
                 on_write=self._protected_written)
        self._init_state()

    def _init_state(self) -> None:
        self.running = False
        self.unlocked = False
        self._reload_ps = 0               # time of the last start/reload
        self._period_ps = 0               # timeout counted from _reload_ps
        self._divider = 0
        self._reload_value = RLR_MAX
        self._timing_key: tuple[int, int] | None = None
        self._ev = None                   # the pending expiry check
        self._sr_ev = None

    # -- public -------------------------------------------------------------------------------------
    def divider(self) -> int:
        return int(self.props["defaultPrescaler"]) << min(self.regs.PR.PR, 6)

    def timeout_ps(self) -> int:
        """Expiry delay a reload would give with the present PR and RLR."""
        return self.divider() * (self.regs.RLR.RL + 1) * PS_PER_S // self.lsi_hz

    @property
    def deadline_ps(self) -> int | None:
        return self._reload_ps + self._period_ps if self.running else None

    def counter(self) -> int:
        """The down-counter now (RLR .. 0); RLR_MAX when stopped."""
        if not self.running:
            return RLR_MAX
        ticks = (self.now() - self._reload_ps) * self.lsi_hz // (self._divider * PS_PER_S)
        return max(self._reload_value - ticks, 0)

    def registers(self) -> list[int]:
        """The raw words [KR, PR, RLR, SR, WINR] (KR: the last word written; the bus reads 0)."""
        return [reg.value for reg in self.regs]

    # -- keys ----------------------------------------------------------------------------------------
    def _kr_written(self, reg: Register, old: int, data: int) -> None:
        key = data & 0xFFFF
        self.unlocked = key == KEY_UNLOCK
        if key == KEY_START:
            if not self.running:
                self.running = True
                self._reload()
        elif key == KEY_RELOAD and self.running:
            self._checked_reload()

    def _checked_reload(self) -> None:
        win = self.regs.WINR.value & RLR_MAX
        if win < RLR_MAX and self.props["windowOption"] and self.counter() > win:
            self.machine.record("iwdg_window_violation", counter=self.counter(), winr=win)
            self.machine.system_reset("iwdg")
            return
        self._reload()

    def _reload(self) -> None:
        # hot: firmware may kick from every main-loop pass, so PR/RLR are decoded only on change
        key = (self.regs.PR.value, self.regs.RLR.value)
        if key != self._timing_key:
            self._timing_key = key
            self._divider = self.divider()
            self._reload_value = self.regs.RLR.RL
            self._period_ps = self.timeout_ps()
        self._reload_ps = self.now()
        deadline = self._reload_ps + self._period_ps
        if self._ev is None or self._ev.time > deadline:
            if self._ev is not None:
                self._ev.cancel()
            self._ev = self.schedule_at(deadline, self._check, name=f"{self.name}.expiry")

    def _check(self) -> None:
        self._ev = None
        if not self.running:
            return
        deadline = self._reload_ps + self._period_ps
        if self.now() < deadline:                     # reloaded since: re-arm at the new deadline
            self._ev = self.schedule_at(deadline, self._check, name=f"{self.name}.expiry")
            return
        self.machine.system_reset("iwdg")

    # -- protected registers ---------------------------------------------------------------------------
    def _protected_written(self, reg: Register, old: int, data: int) -> None:
        if not self.unlocked:
            reg.value = old
            return
        bit = {"PR": 0, "RLR": 1, "WINR": 2}[reg.name]
        self.regs.SR.value |= 1 << bit
        if self._sr_ev is not None:
            self._sr_ev.cancel()
        self._sr_ev = self.schedule(SR_UPDATE_LSI_CYCLES * PS_PER_S // self.lsi_hz, self._sr_done,
                                    name=f"{self.name}.sr")
        if reg.name == "WINR" and self.running:
            self._reload()                            # a WINR write reloads, with no window check

    def _sr_read(self, reg: Register) -> int:
        if reg.value and self._sr_ev is not None:
            self.poll_hint(self._sr_ev.time)          # HAL spins on SR == 0
        return reg.value

    def _sr_done(self) -> None:
        self._sr_ev = None
        self.regs.SR.value = 0

    def reset(self) -> None:
        for ev in (self._ev, self._sr_ev):
            if ev is not None:
                ev.cancel()
        super().reset()
        self._init_state()


_native_cls: type | None = None


def native_class() -> type:
    """STM32_IndependentWatchdogNative: _core.Iwdg (the whole state and logic in C) under this
    model's name and public face; made once the native core is loaded."""
    global _native_cls
    if _native_cls is None:
        core = native.core()

        class STM32_IndependentWatchdogNative(core.Iwdg, STM32_IndependentWatchdog):  # type: ignore
            """read/write/reset, the events (_check, _sr_done), divider(), timeout_ps(), counter(),
            deadline_ps, running and unlocked are _core.Iwdg's; ``registers()`` gives the raw
            words [KR, PR, RLR, SR, WINR]; ``_native_mmio`` is its ports.h capsule."""

            renode_types: ClassVar[tuple[str, ...]] = ()   # the Python model claims the type

            def __init__(self, machine, name, base, size=None, props=None) -> None:
                from ...kernel.machine import Machine
                Peripheral.__init__(self, machine, name, base, size, props)
                self.lsi_hz, prescaler = _timing_props(name, self.props)
                plain_now = getattr(type(machine), "now", None) is Machine.now
                self._bind(machine, self.name, base, self.lsi_hz, prescaler,
                           bool(self.props["windowOption"]), plain_now)

            def register_name(self, offset: int) -> str | None:
                i = (offset & ~3) >> 2
                return REG_NAMES[i] if 0 <= i < len(REG_NAMES) else None

        _native_cls = STM32_IndependentWatchdogNative
    return _native_cls
