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

The model is C, one copy (native/iwdg.c, ``_core.Iwdg``): registers, keys, SR busy bits, the window
check and the expiry deadline, so a kick from the C bus is handled without a Python call.
``STM32_IndependentWatchdog(...)`` builds ``STM32_IndependentWatchdogNative``, a subclass of
``_core.Iwdg`` and of this class (made once the native core is loaded); ``windowOption`` is read
once, when built. Specified by tests/test_native_iwdg.py and tests/test_stm32_gpio_iwdg.py.
"""
from __future__ import annotations

import functools
from typing import Any, ClassVar

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral

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
        # the model lives in C: STM32_IndependentWatchdogNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def register_name(self, offset: int) -> str | None:
        """The register at ``offset`` (diagnostics: "polling iwdg1.SR")."""
        i = (offset & ~3) >> 2
        return REG_NAMES[i] if 0 <= i < len(REG_NAMES) else None


@functools.cache
def native_class() -> type:
    """STM32_IndependentWatchdogNative: _core.Iwdg (the whole state and logic in C) under this
    model's name and public face; made once the native core is loaded."""
    core = native.require()

    class STM32_IndependentWatchdogNative(core.Iwdg, STM32_IndependentWatchdog):  # type: ignore[misc]
        """read/write/reset, the events (_check, _sr_done), divider(), timeout_ps(), counter(),
        deadline_ps, running and unlocked are _core.Iwdg's; ``registers()`` gives the raw
        words [KR, PR, RLR, SR, WINR]; ``_native_mmio`` is its ports.h capsule."""

        renode_types: ClassVar[tuple[str, ...]] = ()   # STM32_IndependentWatchdog claims it

        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            self.lsi_hz, prescaler = _timing_props(name, self.props)
            self._bind(machine, self.name, base, self.lsi_hz, prescaler,
                       bool(self.props["windowOption"]))

    return STM32_IndependentWatchdogNative
