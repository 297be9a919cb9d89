"""STM32 general-purpose, advanced and basic timers (TIM1/2/6/7 on the H743), Renode type
``Timers.STM32_Timer``.

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
(ARR write with ARPE=0 while counting, DIR change, a clock change) keeps the prescaler phase;
stopping (CEN=0) drops a partial prescaler period.

Under ``DUOHIL_MODELS=native`` ``STM32_Timer(...)`` is a ``Stm32TimerNative``: the registers, the
counter, the preloads, the update event, the lazy mode and the encoder state live only in C
(native/stm32_timer.c, ``_core.Timer``, its base class), with the same scheduler events (times,
names, arguments, order), IRQ edges, listener calls and poll hints as this model, which stays
the reference (tests/test_native_timer.py compares the two). Listeners and ``encoder_source``
stay Python callables, called from C where this model calls them.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import W1T, Field, Register

ADVANCED_TIMER_BASES = (0x4001_0000, 0x4001_0400)     # TIM1, TIM8: outputs need BDTR.MOE
ENCODER_MODES = (1, 2, 3)

CR1_CEN, CR1_UDIS, CR1_URS, CR1_OPM, CR1_DIR = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 4
SR_UIF = 1
CR1_CMS = 3 << 5
DIER_UIE_UDE = 1 | 1 << 8

# OCxM values (4-bit, bit 3 is CCMRx bit 16/24)
OCM_TOGGLE, OCM_FORCE_INACTIVE, OCM_FORCE_ACTIVE, OCM_PWM1, OCM_PWM2 = 3, 4, 5, 6, 7


class STM32_Timer(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("Timers.STM32_Timer",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"frequency": 240_000_000, "initialLimit": 0xFFFF}

    def __new__(cls, *args: Any, **kwargs: Any) -> "STM32_Timer":
        # under DUOHIL_MODELS=native the model lives in C (Stm32TimerNative below)
        if cls is STM32_Timer and native.models() == "native":
            native_cls = native_class()
            return native_cls.__new__(native_cls)
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self._initial_limit = int(self.props["initialLimit"])
        self.width_mask = 0xFFFF_FFFF if self._initial_limit > 0xFFFF else 0xFFFF
        self.advanced = base in ADVANCED_TIMER_BASES
        self._repl_hz = int(self.props["frequency"])
        if self._repl_hz <= 0:
            raise ValueError(f"{name}: frequency must be positive, got {self._repl_hz}")
        wm = self.width_mask
        r = self.regs
        r.define(0x00, "CR1", fields=[
            Field("CEN", 0), Field("UDIS", 1), Field("URS", 2), Field("OPM", 3), Field("DIR", 4),
            Field("CMS", 5, 2), Field("ARPE", 7), Field("CKD", 8, 2), Field("UIFREMAP", 11)],
            on_write=self._cr1_written)
        r.define(0x04, "CR2")
        r.define(0x08, "SMCR", fields=[Field("SMS", 0, 3), Field("TS", 4, 3), Field("MSM", 7),
                                       Field("ETF", 8, 4), Field("ETPS", 12, 2), Field("ECE", 14),
                                       Field("ETP", 15), Field("SMS3", 16), Field("TS43", 20, 2)],
                 on_write=self._smcr_written)
        r.define(0x0C, "DIER", fields=[Field("UIE", 0), Field("CC1IE", 1), Field("CC2IE", 2),
                                       Field("CC3IE", 3), Field("CC4IE", 4), Field("UDE", 8)],
                 on_write=lambda reg, old, data: self._update_irq())
        r.define(0x10, "SR", fields=[Field("UIF", 0), Field("CC1IF", 1), Field("CC2IF", 2),
                                     Field("CC3IF", 3), Field("CC4IF", 4), Field("TIF", 6)],
                 on_write=self._sr_written, on_read=self._sr_read)
        r.define(0x14, "EGR", access=W1T, fields=[Field("UG", 0), Field("CC1G", 1), Field("CC2G", 2),
                                                  Field("CC3G", 3), Field("CC4G", 4), Field("TG", 6)],
                 on_write=self._egr_written)
        r.define(0x18, "CCMR1", fields=[
            Field("CC1S", 0, 2), Field("OC1FE", 2), Field("OC1PE", 3), Field("OC1M", 4, 3),
            Field("OC1CE", 7), Field("CC2S", 8, 2), Field("OC2FE", 10), Field("OC2PE", 11),
            Field("OC2M", 12, 3), Field("OC2CE", 15), Field("OC1M3", 16), Field("OC2M3", 24)],
            on_write=self._outputs_changed)
        r.define(0x1C, "CCMR2", fields=[
            Field("CC3S", 0, 2), Field("OC3FE", 2), Field("OC3PE", 3), Field("OC3M", 4, 3),
            Field("OC3CE", 7), Field("CC4S", 8, 2), Field("OC4FE", 10), Field("OC4PE", 11),
            Field("OC4M", 12, 3), Field("OC4CE", 15), Field("OC3M3", 16), Field("OC4M3", 24)],
            on_write=self._outputs_changed)
        r.define(0x20, "CCER", fields=[
            *(f for n in range(4) for f in (Field(f"CC{n + 1}E", 4 * n), Field(f"CC{n + 1}P", 4 * n + 1),
                                            Field(f"CC{n + 1}NE", 4 * n + 2),
                                            Field(f"CC{n + 1}NP", 4 * n + 3)))],
            on_write=self._ccer_written)
        r.define(0x24, "CNT", fields=[Field("CNT", 0, 32 if wm > 0xFFFF else 16)],
                 on_read=self._cnt_read, on_write=self._cnt_written)
        r.define(0x28, "PSC", fields=[Field("PSC", 0, 16)])
        r.define(0x2C, "ARR", reset=self._initial_limit & wm,
                 fields=[Field("ARR", 0, 32 if wm > 0xFFFF else 16)], on_write=self._arr_written)
        r.define(0x30, "RCR")
        for n in range(4):
            r.define(0x34 + 4 * n, f"CCR{n + 1}", fields=[Field(f"CCR{n + 1}", 0, 32 if wm > 0xFFFF else 16)],
                     on_write=self._ccr_written)
        r.define(0x44, "BDTR", fields=[Field("DTG", 0, 8), Field("LOCK", 8, 2), Field("OSSI", 10),
                                       Field("OSSR", 11), Field("BKE", 12), Field("BKP", 13),
                                       Field("AOE", 14), Field("MOE", 15)],
                 on_write=self._outputs_changed)
        r.define(0x48, "DCR")
        r.define(0x4C, "DMAR")
        r.define(0x54, "CCMR3")
        r.define(0x58, "CCR5")
        r.define(0x5C, "CCR6")
        r.define(0x60, "AF1")
        r.define(0x64, "AF2")
        r.define(0x68, "TISEL")

        self._cr1, self._sr, self._dier = r.CR1, r.SR, r.DIER
        self._psc, self._arr = r.PSC, r.ARR
        self._ccrs = (r.CCR1, r.CCR2, r.CCR3, r.CCR4)
        self._smcr, self._ccer, self._bdtr = r.SMCR, r.CCER, r.BDTR
        self._ccmr = (r.CCMR1, r.CCMR2)
        self._irq = self.output("IRQ")
        self._ev_name = f"{name}.update"
        self._listeners: list[Callable[["STM32_Timer"], None]] = []
        self.encoder_source: Callable[[], int] | None = None
        self.updates = 0                       # update events so far (for reports and tests)
        self._init_state()

    def _init_state(self) -> None:
        self._hz = self._repl_hz
        self._epoch_ps = self.now()
        self._running = False                  # counting kernel-clock ticks
        self._cnt = 0                          # CNT when not running; CNT at the anchor when running
        self._anchor = 0                       # kernel cycle of the anchor (prescaler phase 0)
        self._update_ev = None
        self._lazy = False                     # update events skipped: nobody can observe them
        self._psc_active = 0
        self._arr_active = self._initial_limit & self.width_mask
        self._ccr_active = [0, 0, 0, 0]
        self._enc_pos: int | None = None       # last plant position (quadrature edges)

    # -- public API (RCC, plant, reports) ----------------------------------------------------------------
    @property
    def timer_hz(self) -> int:
        return self._hz

    @timer_hz.setter
    def timer_hz(self, hz: int) -> None:
        hz = int(hz)
        if hz <= 0 or hz == self._hz:
            return
        if self._running:
            self._reanchor()
            start = self._time_of_cycle(self._anchor)      # the last counter tick, old clock
            self._hz, self._epoch_ps, self._anchor = hz, start, 0
            self._schedule_update()
        else:
            self._hz, self._epoch_ps = hz, self.now()

    def add_listener(self, fn: Callable[["STM32_Timer"], None]) -> None:
        """``fn(timer)`` after any change that may alter a channel's output (duty, enable)."""
        self._listeners.append(fn)

    def output_enabled(self, ch: int) -> bool:
        # raw words: CR1.CEN bit 0, CCER.CCxE bit 4*(ch-1), BDTR.MOE bit 15
        if not self._cr1.value & 1 or not self._ccer.value >> (4 * (ch - 1)) & 1:
            return False
        return bool(self._bdtr.value >> 15 & 1) if self.advanced else True

    def channel_duty(self, ch: int) -> float:
        """Fraction of time OCx is at its active (high) level, 0 while the output is off."""
        if not self.output_enabled(ch):
            return 0.0
        ccmr = self._ccmr[0 if ch <= 2 else 1].value
        sh = 0 if ch & 1 else 8                       # OCxM at 4/12, OCxM3 at 16/24
        mode = (ccmr >> (4 + sh) & 7) | (ccmr >> (16 + sh) & 1) << 3
        period = self._arr_active + 1
        raw = min(self._ccr_active[ch - 1], period) / period
        if mode == OCM_PWM1:
            duty = raw
        elif mode == OCM_PWM2:
            duty = 1.0 - raw
        elif mode == OCM_FORCE_ACTIVE:
            duty = 1.0
        elif mode == OCM_TOGGLE:
            duty = 0.5
        else:                                         # force inactive, frozen, others
            duty = 0.0
        return 1.0 - duty if self._ccer.value >> (4 * (ch - 1) + 1) & 1 else duty     # CCxP

    @property
    def pwm_duty(self) -> float:
        """Channel 1 duty (the motor drive on TIM1)."""
        return self.channel_duty(1)

    @property
    def encoder_mode(self) -> bool:
        v = self._smcr.value
        return ((v & 7) | (v >> 16 & 1) << 3) in ENCODER_MODES

    def counter(self) -> int:
        """CNT now, as the firmware would read it."""
        if self.encoder_mode:
            self._encoder_sync()
            return self._cnt
        return self._current_cnt()

    def update_period_ps(self) -> int:
        """Time between update events with the active PSC/ARR (rounded down to whole ps)."""
        return (self._psc_active + 1) * (self._arr_active + 1) * PS_PER_S // self._hz

    def set_encoder_count(self, position: int) -> None:
        """The axis is at ``position`` quadrature edges; count the change since the last call."""
        position = int(position)
        last, self._enc_pos = self._enc_pos, position
        if last is None or not (self.encoder_mode and self._cr1.value & 1):
            return
        sms = self._smcr.value & 7
        delta = position - last if sms == 3 else (position >> 1) - (last >> 1)
        ccer = self._ccer.value
        if (ccer >> 1 & 1) != (ccer >> 5 & 1):        # CC1P != CC2P
            delta = -delta
        if delta == 0:
            return
        self._cr1.value = (self._cr1.value & ~CR1_DIR) | (CR1_DIR if delta < 0 else 0)
        modulus = self._arr_active + 1
        total = self._cnt + delta
        wraps = total // modulus
        self._cnt = total % modulus
        if wraps:
            self._update_event(encoder=True)

    # -- time ---------------------------------------------------------------------------------------------
    def _cycle_at(self, t: int) -> int:
        return (t - self._epoch_ps) * self._hz // PS_PER_S

    def _cycle_ceil(self, t: int) -> int:
        return -((self._epoch_ps - t) * self._hz // PS_PER_S)

    def _time_of_cycle(self, c: int) -> int:
        return self._epoch_ps - ((-c * PS_PER_S) // self._hz)

    def _ticks(self) -> int:
        """Counter ticks since the anchor; 0 before it (a start off the kernel-cycle grid anchors
        at the next cycle: until then CNT holds its value, RM0433 s.39.3.2)."""
        return max(0, (self._cycle_at(self.now()) - self._anchor) // (self._psc_active + 1))

    def _current_cnt(self) -> int:
        if not self._running:
            return self._cnt
        if self._lazy:
            self._catch_up()                     # the skipped updates wrapped the counter
        # The update event wraps the counter; a read at the very picosecond of an update, before
        # its event has fired, sees the last value of the period.
        ticks = self._ticks()
        if self.regs.CR1.DIR:
            return max(self._cnt - ticks, 0)
        top = self._arr_active if self._cnt <= self._arr_active else self.width_mask
        return min(self._cnt + ticks, top)

    def _reanchor(self) -> None:
        """Move the anchor to the last counter tick (keeps the prescaler phase)."""
        cnt = self._current_cnt()                # first: in lazy mode it catches up the anchor
        ticks = self._ticks()
        self._cnt = cnt
        self._anchor += ticks * (self._psc_active + 1)

    def _ticks_to_update(self) -> int:
        if self.regs.CR1.DIR:
            return self._cnt + 1
        if self._cnt <= self._arr_active:
            return self._arr_active - self._cnt + 1
        return self.width_mask - self._cnt + 1         # above ARR: runs to the top and wraps

    def _lazy_ok(self) -> bool:
        """An update event nobody can observe needs no scheduler event (TIM1 at a 20 kHz PWM rate
        was a third of all events): no update interrupt or DMA request, nothing waiting in a
        preload register, plain up-counting. Skipped updates are applied on the next register
        access and before the counter is computed (``_catch_up``: ``counter()``, a re-anchor on
        a clock change), so everyone sees exactly what they would have."""
        if self.encoder_mode or self._dier.value & DIER_UIE_UDE:
            return False
        cr1 = self._cr1.value
        if cr1 & (CR1_DIR | CR1_OPM | CR1_UDIS) or cr1 & CR1_CMS:
            return False
        wm = self.width_mask
        if (self._arr.value & wm) != self._arr_active or (self._psc.value & 0xFFFF) != self._psc_active:
            return False
        if self._cnt > self._arr_active:
            return False
        return [r.value & wm for r in self._ccrs] == self._ccr_active

    def _catch_up(self) -> None:
        """Apply the update events skipped in lazy mode, up to now."""
        if not (self._lazy and self._running):
            return
        now = self._cycle_at(self.now())
        step = self._psc_active + 1
        first = self._anchor + step * self._ticks_to_update()
        if now < first:
            return
        period = step * (self._arr_active + 1)
        k = 1 + (now - first) // period
        self._anchor = first + (k - 1) * period
        self._cnt = 0
        self.updates += k
        self._sr.value |= SR_UIF                 # UIE is off in lazy mode: no interrupt

    def read(self, offset: int, size: int) -> int:
        if self._lazy:
            self._catch_up()
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if self._lazy:
            self._catch_up()
        super().write(offset, size, value)
        if self._lazy and self._running and not self._lazy_ok():
            self._schedule_update()              # something became observable: events again

    def _schedule_update(self) -> None:
        if self._update_ev is not None:
            self._update_ev.cancel()
            self._update_ev = None
        if self._lazy_ok():
            self._lazy = True
            return
        self._lazy = False
        cycle = self._anchor + (self._psc_active + 1) * self._ticks_to_update()
        self._update_ev = self.machine.scheduler.at(self._time_of_cycle(cycle), self._on_update,
                                                    cycle, name=self._ev_name)

    def _start(self) -> None:
        self._anchor = self._cycle_ceil(self.now())
        self._running = True
        self._schedule_update()

    def _stop(self) -> None:
        if self._running:
            self._cnt = self._current_cnt()
        self._running = False
        if self._update_ev is not None:
            self._update_ev.cancel()
            self._update_ev = None

    # -- the update event (hot: 20 kHz on a PWM timer, so raw register values, no field lookups) -------
    def _on_update(self, cycle: int) -> None:
        self._update_ev = None
        self._anchor = cycle
        down = self._cr1.value & CR1_DIR
        self._cnt = self._arr_active if down else 0
        self._update_event()
        if self._cr1.value & CR1_OPM:
            self._cr1.value &= ~CR1_CEN
            self._running = False
            self._notify()
            return
        if down:
            self._cnt = self._arr_active            # reload with the (possibly new) ARR
        self._schedule_update()

    def _update_event(self, *, encoder: bool = False, software: bool = False) -> None:
        """UEV: preload transfer and UIF (unless UDIS; UIF also not for UG when URS=1)."""
        cr1 = self._cr1.value
        if cr1 & CR1_UDIS:
            return
        self.updates += 1
        changed = self._transfer_preloads()
        if not (software and cr1 & CR1_URS):
            self._sr.value |= SR_UIF
            self._update_irq()
        if changed:
            self._notify()

    def _transfer_preloads(self) -> bool:
        wm = self.width_mask
        arr = self._arr.value & wm
        ccr = [reg.value & wm for reg in self._ccrs]
        self._psc_active = self._psc.value & 0xFFFF
        if arr == self._arr_active and ccr == self._ccr_active:
            return False
        self._arr_active, self._ccr_active = arr, ccr
        return True

    def _update_irq(self) -> None:
        self._irq.set(bool(self._sr.value & self._dier.value & SR_UIF))

    def _notify(self) -> None:
        for fn in list(self._listeners):
            fn(self)

    # -- register callbacks -------------------------------------------------------------------------------
    def _cr1_written(self, reg: Register, old: int, data: int) -> None:
        old_cen, old_dir = old & 1, (old >> 4) & 1
        if self.encoder_mode:
            reg.set(DIR=old_dir)                      # hardware-driven in encoder mode
            if reg.CEN and not old_cen:
                self._encoder_sync(counting=False)    # start counting from the present position
            elif old_cen and not reg.CEN:
                reg.set(CEN=1)
                self._encoder_sync()                  # count what happened before the stop
                reg.set(CEN=0)
        elif reg.CEN and not old_cen:
            self._start()
        elif old_cen and not reg.CEN:
            self._stop()
        elif reg.CEN and reg.DIR != old_dir and self._running:
            reg.set(DIR=old_dir)
            self._reanchor()
            reg.set(DIR=1 - old_dir)
            self._schedule_update()
        if reg.CEN != old_cen:
            self._notify()

    def _smcr_written(self, reg: Register, old: int, data: int) -> None:
        was_encoder = ((old & 7) | ((old >> 16) & 1) << 3) in ENCODER_MODES
        if was_encoder == self.encoder_mode:
            return
        if self.encoder_mode:                         # kernel clock -> plant
            self._stop()
            self._encoder_sync(counting=False)
        elif self.regs.CR1.CEN:                       # plant -> kernel clock
            self._start()

    def _sr_written(self, reg: Register, old: int, data: int) -> None:
        reg.value = old & data                        # rc_w0
        self._update_irq()

    def _sr_read(self, reg: Register) -> int:
        if not reg.UIF and self._running:
            if self._update_ev is not None:
                self.poll_hint(self._update_ev.time)
            elif self._lazy:
                nxt = self._anchor + (self._psc_active + 1) * self._ticks_to_update()
                self.poll_hint(self._time_of_cycle(nxt))
        return reg.value

    def _egr_written(self, reg: Register, old: int, data: int) -> None:
        if not data & 1:                              # only UG is modelled
            return
        restart = self._running
        self._stop()
        self._update_event(software=True)             # preloads first: CNT may reload from ARR
        self._cnt = self._arr_active if self.regs.CR1.DIR else 0
        if restart:
            self._start()
        self._notify()

    def _cnt_read(self, reg: Register) -> int:
        cnt = self.counter()
        if self.regs.CR1.UIFREMAP and self.width_mask == 0xFFFF:
            cnt |= self.regs.SR.UIF << 31
        return cnt

    def _cnt_written(self, reg: Register, old: int, data: int) -> None:
        value = reg.value & self.width_mask
        if self.encoder_mode:
            self._encoder_sync()
            self._cnt = value
        elif self._running:
            self._reanchor()
            self._cnt = value
            self._schedule_update()
        else:
            self._cnt = value

    def _arr_written(self, reg: Register, old: int, data: int) -> None:
        if self.regs.CR1.ARPE:
            return
        if self._running:
            self._reanchor()
        self._arr_active = reg.value & self.width_mask
        if self._running:
            self._schedule_update()
        self._notify()

    def _ccr_written(self, reg: Register, old: int, data: int) -> None:
        n = int(reg.name[3])
        ccmr = self.regs.CCMR1 if n <= 2 else self.regs.CCMR2
        if not ccmr.get(f"OC{n}PE"):
            self._ccr_active[n - 1] = reg.value & self.width_mask
            self._notify()

    def _ccer_written(self, reg: Register, old: int, data: int) -> None:
        self._notify()

    def _outputs_changed(self, reg: Register, old: int, data: int) -> None:
        self._notify()

    # -- encoder ------------------------------------------------------------------------------------------
    def _encoder_sync(self, counting: bool = True) -> None:
        if self.encoder_source is None:
            return
        position = int(self.encoder_source())
        if counting:
            self.set_encoder_count(position)
        else:
            self._enc_pos = position

    # -- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        if self._update_ev is not None:
            self._update_ev.cancel()
        super().reset()
        self._init_state()
        self._update_irq()
        self._notify()


#: register names by offset / 4, as the Python model's bank defines them (0x50 is a hole)
_REG_NAMES = ("CR1", "CR2", "SMCR", "DIER", "SR", "EGR", "CCMR1", "CCMR2", "CCER", "CNT", "PSC",
              "ARR", "RCR", "CCR1", "CCR2", "CCR3", "CCR4", "BDTR", "DCR", "DMAR", None, "CCMR3",
              "CCR5", "CCR6", "AF1", "AF2", "TISEL")

_native_cls: type | None = None


def native_class() -> type:
    """Stm32TimerNative: _core.Timer (registers, counter, update event, encoder in C) under this
    model's Python face; made once the native core is loaded."""
    global _native_cls
    if _native_cls is None:
        core = native.core()

        class Stm32TimerNative(core.Timer, STM32_Timer):   # type: ignore[name-defined,misc]
            """STM32_Timer with its state only in C: read/write/reset, the update event, the
            public views (timer_hz, channel_duty, counter, set_encoder_count, updates...) are
            C methods and attributes of _core.Timer."""

            renode_types: ClassVar[tuple[str, ...]] = ()   # STM32_Timer claims the type

            def __init__(self, machine, name, base, size=None, props=None) -> None:
                Peripheral.__init__(self, machine, name, base, size, props)
                repl_hz = int(self.props["frequency"])
                if repl_hz <= 0:
                    raise ValueError(f"{name}: frequency must be positive, got {repl_hz}")
                self._bind(machine, name, base, int(self.props["initialLimit"]), repl_hz,
                           base in ADVANCED_TIMER_BASES, self.output("IRQ"))

            def register_name(self, offset: int) -> str | None:
                i = offset >> 2
                return _REG_NAMES[i] if 0 <= i < len(_REG_NAMES) else None

        _native_cls = Stm32TimerNative
    return _native_cls
