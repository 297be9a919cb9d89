"""STM32 general-purpose, advanced and basic timers (TIM1/2/6/7 on the H743), Renode type
``Timers.STM32_Timer``.

The model is C, one copy (native/stm32_timer.c, ``_core.Timer``; whatever ``DUOHIL_MODELS`` says).
Counting is computed, never ticked: the counter is anchored at a kernel-clock cycle and CNT is
derived from virtual time on read; the update event (overflow/underflow) is one scheduler event at
``(PSC+1)*(ARR+1)`` kernel cycles. A CEN write anchors at the first kernel cycle at or after it
and the counter holds its value (0 after reset/UG, ARR after UG when down-counting, or what
software wrote) until the first count PSC+1 cycles after the anchor (RM0433: the counter starts
from CNT). Update events nobody can observe are skipped (the lazy mode) and applied before CNT
is computed, so ``counter()`` and a CNT read give the same wrapped value at any time. Cycles
are exact integers (cycle c happens at ``epoch + ceil(c * 1e12 / timer_hz)`` ps), so a 1 kHz
update at 240 MHz fires every 1e9 ps exactly.

Modelled (RM0433 names; stm32h7-registers.md s.6):
  - CR1.CEN/UDIS/URS/OPM/DIR/ARPE, DIER.UIE, SR.UIF (rc_w0: writing 0 clears, 1 leaves), EGR.UG
    (counter and prescaler reinitialised, preloads transferred, UIF unless URS), CNT, PSC (always
    preloaded: applies at the next update, so firmware sets UG after writing it), ARR (preloaded
    when ARPE), CCR1..4 (preloaded when CCMRx.OCxPE), up- and down-counting, one-pulse mode.
  - The update interrupt: the default output (``-> nvic@n``) is high while SR.UIF and DIER.UIE.
  - PWM (Renode's STM32_Timer has no PWM outputs): ``channel_duty(ch)`` / ``pwm_duty`` = the
    fraction of time the OCx output is active, from OCxM (PWM1: CCRx/(ARR+1) clamped to 1; PWM2:
    1 minus that; force active/inactive: 1/0; toggle: 1/2), CCER.CCxP inverting it, and 0 while the
    output is off: CR1.CEN=0, CCER.CCxE=0, or (TIM1/TIM8 only) BDTR.MOE=0. ``add_listener(fn)``
    calls ``fn(timer)`` after anything that may change a channel's duty (the plant integrates
    between those calls).
  - Encoder interface (SMCR.SMS = 1, 2, 3; Renode's model has no slave modes): CNT is driven by the
    plant, not by the kernel clock. ``set_encoder_count(n)`` gives the axis position in quadrature
    edges (4 per line); the counter moves by the change since the previous call (x4 for SMS=3,
    half for SMS=1/2), reversed when exactly one of CCER.CC1P/CC2P is set, wrapping within
    0..ARR, with an update event (UIF) on each wrap; CR1.DIR shows the last direction (read-only
    in this mode). ``encoder_source`` (a callable returning the current position) is called
    before CNT is read, so the firmware sees the position at the time of its read. Counting only
    while CR1.CEN=1. Which physical phase order counts up is a property of the plant's wiring:
    here, the plant's positive direction counts up.
  - ``timer_hz`` (kernel clock) starts at the repl ``frequency``, may be changed by the RCC model
    and returns to the repl value on reset; ``initialLimit`` is ARR's reset value and selects the
    counter width (32 bits when it exceeds 0xFFFF, as TIM2/TIM5).

Not modelled (register-only): centre-aligned modes (CMS), capture/compare flags and interrupts,
input capture, other slave modes (reset/gated/trigger/external clock: treated as the internal
clock), master mode/TRGO, DMA requests, repetition counter, break, dead time, complementary
outputs (Renode tags most of these too, renode.md s.1.5), CR1.CKD and input filters. Basic timers
(TIM6/7) expose the full register set, as Renode's single model does. Re-anchoring the counter
(a CNT write, an ARR write with ARPE=0, a DIR change, all while counting) keeps the prescaler phase; a kernel
clock change keeps the counter's value and the prescaler counter's count (the rest of its period
runs at the new clock, whose cycle 0 is the change); stopping (CEN=0) freezes the value reached
in the direction it was counting (a write that also flips DIR included) and drops a partial
prescaler period.

``STM32_Timer(...)`` builds ``Stm32TimerNative``, a subclass of ``_core.Timer`` and of this class
(made once the native core is loaded): the registers, the counter, the preloads, the update
event, the lazy mode and the encoder state live only in C; listeners and ``encoder_source`` stay
Python callables, called from C; the C bus reaches the registers through ``_native_mmio``
(ports.h) and the plant reads the duty and pushes encoder counts in C. The public face:
read/write/reset, ``timer_hz`` (the RCC), ``add_listener``, ``output_enabled``/``channel_duty``/
``pwm_duty``, ``encoder_mode``, ``encoder_source``, ``set_encoder_count``, ``counter()``,
``update_period_ps()``, ``updates``, ``width_mask``, ``advanced``, ``register_name``, ``_state()``
(inspection). Specified by tests/test_native_timer.py (RM0433's rules checked after every step
of Hypothesis programs) and tests/test_stm32_timer.py.
"""
from __future__ import annotations

import functools
from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral

ADVANCED_TIMER_BASES = (0x4001_0000, 0x4001_0400)     # TIM1, TIM8: outputs need BDTR.MOE

#: register names by offset / 4 (0x50 is a hole)
_REG_NAMES = ("CR1", "CR2", "SMCR", "DIER", "SR", "EGR", "CCMR1", "CCMR2", "CCER", "CNT", "PSC",
              "ARR", "RCR", "CCR1", "CCR2", "CCR3", "CCR4", "BDTR", "DCR", "DMAR", None, "CCMR3",
              "CCR5", "CCR6", "AF1", "AF2", "TISEL")


class STM32_Timer(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Timers.STM32_Timer",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"frequency": 240_000_000, "initialLimit": 0xFFFF}

    def __new__(cls, *args: Any, **kwargs: Any) -> "STM32_Timer":
        # the model lives in C: Stm32TimerNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def register_name(self, offset: int) -> str | None:
        """The register at ``offset`` (diagnostics: "polling timer6.SR")."""
        i = offset >> 2
        return _REG_NAMES[i] if 0 <= i < len(_REG_NAMES) else None


@functools.cache
def native_class() -> type:
    """Stm32TimerNative: _core.Timer (registers, counter, update event, encoder in C) under this
    model's name and public face; made once the native core is loaded."""
    core = native.require()

    class Stm32TimerNative(core.Timer, STM32_Timer):   # type: ignore[name-defined,misc]
        """read/write/reset, the update event (_on_update), the public views (timer_hz,
        channel_duty, counter, set_encoder_count, updates...) are C methods and attributes
        of _core.Timer."""

        renode_types: ClassVar[tuple[str, ...]] = ()   # STM32_Timer claims the type

        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            repl_hz = int(self.props["frequency"])
            if repl_hz <= 0:
                raise ValueError(f"{name}: frequency must be positive, got {repl_hz}")
            self._bind(machine, name, base, int(self.props["initialLimit"]), repl_hz,
                       base in ADVANCED_TIMER_BASES, self.output("IRQ"))

    return Stm32TimerNative
