"""The DC-motor axis the STM32 drives: one joint with hard mechanical end stops.

Inputs: the PWM duty of a timer channel (TIM1 CH1, already 0 unless CR1.CEN, CCER.CC1E and
BDTR.MOE; ``STM32_Timer.channel_duty``) and a direction GPIO pin. Output: the position in encoder
counts (quadrature edges), fed to the encoder timer (TIM2 in encoder mode).

Model: a first-order velocity response to the drive,
    v_target = s * v_max * max(0, d - f) / (1 - f)        s = +1/-1 from the direction pin
    dv/dt = (v_target - v) / tau,  dx/dt = v
with d the duty, f the load friction expressed as the duty that just balances it (a dead band), so
between two drive changes the motion is analytic (t measured from the last state):
    v(t) = vt + (v0 - vt) e^(-t/tau),   x(t) = x0 + vt t + (v0 - vt) tau (1 - e^(-t/tau)).

Evaluation points: the plant is advanced analytically to "now" whenever the drive may change (a
timer listener and a GPIO subscription), whenever the firmware reads the encoder counter
(``encoder_source``), and at a periodic sample event (``sample_period_ps``, 1 ms by default) that
also pushes the count into the encoder timer and stores a history sample.

End stops: at each drive change the next time the trajectory reaches ``limit_min``/``limit_max`` is
solved from the formula above (bisection on integer picoseconds; the trajectory has at most one
turning point) and scheduled as an event, so a crossing is recorded at its exact virtual time (to
1 ps) and in time order, not at the next periodic check. A crossing is recorded once, as
``machine.record("end_stop", side="min"|"max", position=<limit>, velocity=<impact counts/s>)``,
and the axis stops there (v = 0; a hard stop). It stays pinned while the drive pushes into the
stop and leaves it as soon as the drive points away; reaching a stop again is a new crossing.
These records are the ground truth for "runaway" (CRASH_MODES.md CM1), independent of what the
firmware believes.

Under ``DUOHIL_MODELS=native`` ``DcMotorPlant(...)`` is a ``DcMotorPlantNative``: the state (t, x,
v, the drive, pinned, the end-stop event or its deferred prediction, history, trace) lives only in
C (native/plant.c, ``_core.Plant``), and the drive change (the PWM timer's listener, the direction
pin's subscription), ``advance``, the periodic sample and ``count_now`` (the encoder timer's
source) run there with no Python call; the crossing search (``_first_crossing_from``,
``_bisect``) and ``machine.record`` stay these Python methods, called from C where this model
calls them. This class stays the reference (tests/test_native_plant.py compares the two: the same
floats bit for bit, records, samples and scheduled events). Parameters the C arithmetic cannot
reproduce exactly (end stops beyond 2**53, non-finite speeds, non-int periods) keep this class.

The plant is physics, not a peripheral: a machine reset does not move it (the timer and GPIO
resets drop the drive to 0 and the axis coasts to rest). Float arithmetic (IEEE double, math.exp)
makes results bit-identical on one platform; the run stays deterministic because nothing else
enters. History is a bounded ring (``history_len`` samples); the position trace for reports is
a decimated record of the whole run, bounded whatever its length (``Trace``).
"""
from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from ...base import PS_PER_MS, PS_PER_S
from .. import native
from duohil.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel.machine import Machine
    from ..soc.stm32h7.stm32_gpio import STM32_GPIOPort
    from ..soc.stm32h7.stm32_timer import STM32_Timer


#: plant samples a Trace keeps at most (then every other one is dropped and the stride doubles)
TRACE_POINTS = 12_000


class Trace:
    """The plant position over the whole run for reports, bounded: every sample is kept until
    TRACE_POINTS, then every other one is dropped and only every 2nd (4th, ...) sample is kept
    from then on, so a soak of any length holds at most TRACE_POINTS evenly spaced points
    (16 bytes each). Runs of up to TRACE_POINTS samples keep them all."""

    def __init__(self, cap: int = TRACE_POINTS) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self._n = 0                               # samples offered so far
        self.t = array("q")
        self.x = array("d")

    def append(self, t_ps: int, x: float) -> None:
        n, self._n = self._n, self._n + 1
        if n % self.stride:
            return
        if len(self.t) >= self.cap:
            self.t, self.x = self.t[::2], self.x[::2]
            self.stride *= 2
            if n % self.stride:
                return
        self.t.append(t_ps)
        self.x.append(x)

    def points(self, limit: int) -> list[tuple[int, float]]:
        """At most ``limit`` (t_ps, position) points, evenly decimated from what is kept."""
        n = len(self.t)
        step = -(-n // limit) if n > limit else 1
        return list(zip(self.t[::step], self.x[::step]))


@dataclass(frozen=True)
class MotorParams:
    """Axis parameters; positions in encoder counts (quadrature edges), speeds in counts/s."""

    max_speed: float = 20_000.0        # steady speed at 100 % duty, counts/s
    tau_s: float = 0.02                # mechanical time constant, s (0: speed follows at once)
    friction_duty: float = 0.0         # duty that just balances the load (dead band), 0..1
    limit_min: int = -50_000           # mechanical end stops, counts
    limit_max: int = 50_000
    initial_position: float = 0.0
    direction_positive_level: int = 1  # direction-pin level that drives towards +counts
    sample_period_ps: int = PS_PER_MS  # periodic evaluation + history sample
    history_len: int = 1_000           # recent samples kept whole (1 s at 1 ms); see Trace

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> ConfigError:
            return ConfigError(f"motor plant: {field}={getattr(self, field)!r}", field=field,
                               expected=expected)
        if not self.max_speed > 0:
            raise bad("max_speed", "> 0 counts/s")
        if not self.tau_s >= 0:
            raise bad("tau_s", ">= 0 s")
        if not 0 <= self.friction_duty < 1:
            raise bad("friction_duty", "0 <= friction_duty < 1")
        if not self.limit_min < self.initial_position < self.limit_max:
            raise bad("initial_position", f"strictly between limit_min={self.limit_min} and "
                                          f"limit_max={self.limit_max}")
        if self.sample_period_ps <= 0:
            raise bad("sample_period_ps", "> 0")
        if self.history_len <= 0:
            raise bad("history_len", "> 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MotorParams":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"motor plant: unknown parameter(s) {', '.join(unknown)}",
                              field=unknown[0], expected="one of " + ", ".join(sorted(known)))
        return cls(**d)


class Sample(NamedTuple):
    t_ps: int
    position: float      # counts
    velocity: float      # counts/s
    drive: float         # signed duty (-1..1) as applied


class DcMotorPlant:
    def __new__(cls, machine: "Machine" = None, params: MotorParams | None = None,  # type: ignore[assignment]
                **_kw: Any) -> "DcMotorPlant":
        # under DUOHIL_MODELS=native the state lives in C (DcMotorPlantNative below)
        if cls is DcMotorPlant and native.models() == "native" and _native_fits(params or MotorParams()):
            native_cls = native_class()
            return native_cls.__new__(native_cls)
        return super().__new__(cls)

    def __init__(self, machine: "Machine", params: MotorParams | None = None, *,
                 pwm: "STM32_Timer", pwm_channel: int = 1,
                 direction: "STM32_GPIOPort", direction_pin: int,
                 encoder: "STM32_Timer | None" = None) -> None:
        p = self._wire(machine, params, pwm, pwm_channel, direction, direction_pin, encoder)
        self.t = machine.now()
        self.x = float(p.initial_position)
        self.v = 0.0
        self.pinned: str | None = None            # "min" / "max" while resting against a stop
        self.end_stops: list[dict[str, Any]] = []
        self.history: deque[Sample] = deque(maxlen=p.history_len)
        self.trace = Trace()                      # (t, position) of the whole run, decimated
        self.drive = 0.0                          # signed duty in effect
        self._vt = 0.0                            # target velocity in effect
        self._cross_ev = None
        self._lazy_cross = None                   # deferred prediction: [t_lb, seq, state, handle]
        pwm.add_listener(lambda _timer: self._drive_changed())
        direction.subscribe(self._pin_changed)
        if encoder is not None:
            encoder.encoder_source = self.count_now
            encoder.set_encoder_count(self.count)
        self._drive_changed(force=True)
        self._sample_ev = machine.scheduler.at(self.t + p.sample_period_ps, self._sample,
                                               name="plant.sample")

    def _wire(self, machine: "Machine", params: MotorParams | None, pwm: "STM32_Timer",
              pwm_channel: int, direction: "STM32_GPIOPort", direction_pin: int,
              encoder: "STM32_Timer | None") -> MotorParams:
        """The plant's connections and parameters (both implementations keep them in Python)."""
        self.machine = machine
        self.params = p = params or MotorParams()
        self.pwm, self.pwm_channel = pwm, pwm_channel
        self.direction, self.direction_pin = direction, direction_pin
        self.encoder = encoder
        return p

    # -- public -----------------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Position in whole encoder counts at the last evaluation."""
        return math.floor(self.x)

    def count_now(self) -> int:
        self.advance(self.machine.now())
        return self.count

    def position_now(self) -> float:
        self.advance(self.machine.now())
        return self.x

    def velocity_now(self) -> float:
        self.advance(self.machine.now())
        return self.v

    def samples(self) -> list[Sample]:
        return list(self.history)

    def target_velocity(self) -> float:
        return self._vt

    # -- the drive ---------------------------------------------------------------------------------------
    def _read_drive(self) -> tuple[float, float]:
        p = self.params
        duty = self.pwm.channel_duty(self.pwm_channel)
        level = self.direction.pin_level(self.direction_pin)
        sign = 1.0 if level == p.direction_positive_level else -1.0
        effective = max(0.0, duty - p.friction_duty) / (1.0 - p.friction_duty)
        return sign * duty, sign * p.max_speed * effective

    def _pin_changed(self, port: Any, pin: int, level: int, t_ps: int) -> None:
        if pin == self.direction_pin:
            self._drive_changed()

    def _drive_changed(self, force: bool = False) -> None:
        self.advance(self.machine.now())
        drive, vt = self._read_drive()
        if not force and vt == self._vt and drive == self.drive:
            return
        self.drive, self._vt = drive, vt
        self._release_if_pulled_away()
        self._predict()

    def _release_if_pulled_away(self) -> None:
        if self.pinned == "max" and self._vt < 0 or self.pinned == "min" and self._vt > 0:
            self.pinned = None

    # -- integration --------------------------------------------------------------------------------------
    def _state_after(self, dt_ps: int) -> tuple[float, float]:
        """(x, v) dt_ps after the current state under the current drive (ignoring the stops)."""
        dt = dt_ps / PS_PER_S
        vt, tau = self._vt, self.params.tau_s
        if tau <= 0:
            return self.x + vt * dt, vt
        e = math.exp(-dt / tau)
        return self.x + vt * dt + (self.v - vt) * tau * (1.0 - e), vt + (self.v - vt) * e

    @staticmethod
    def _x_after(x0: float, v0: float, vt: float, tau: float, dt_ps: int) -> float:
        """Position part of ``_state_after`` from an explicit state (the same arithmetic)."""
        dt = dt_ps / PS_PER_S
        if tau <= 0:
            return x0 + vt * dt
        e = math.exp(-dt / tau)
        return x0 + vt * dt + (v0 - vt) * tau * (1.0 - e)

    def advance(self, t: int) -> None:
        """Bring the state to virtual time t (never backwards)."""
        while t > self.t:
            if self.pinned is not None:
                self.t = t
                return
            lazy = self._lazy_cross
            if lazy is not None and t >= lazy[0]:
                self._materialize_cross()
            cross = self._cross_ev.time if self._cross_ev is not None else None
            if cross is not None and cross <= t:
                self._hit(cross)
                continue
            x, v = self._state_after(t - self.t)
            p = self.params
            self.x, self.v, self.t = min(max(x, p.limit_min), p.limit_max), v, t

    def _hit(self, t: int) -> None:
        ev, self._cross_ev = self._cross_ev, None
        if ev is not None:
            ev.cancel()
        self._drop_lazy_cross()
        x, v = self._state_after(t - self.t)
        side = "max" if v > 0 or (v == 0 and x >= self.params.limit_max) else "min"
        limit = self.params.limit_max if side == "max" else self.params.limit_min
        self.x, self.v, self.t, self.pinned = float(limit), 0.0, t, side
        rec = {"side": side, "position": limit, "velocity": v}
        self.end_stops.append({"t_ps": t, **rec})
        self.machine.record("end_stop", t=t, **rec)
        self._release_if_pulled_away()
        self._predict()

    def _on_cross(self) -> None:
        self.advance(self.machine.now())

    def _sample(self) -> None:
        now = self.machine.now()
        self.advance(now)
        self.history.append(Sample(now, self.x, self.v, self.drive))
        self.trace.append(now, self.x)
        if self.encoder is not None:
            self.encoder.set_encoder_count(self.count)
        self._sample_ev = self.machine.scheduler.at(now + self.params.sample_period_ps, self._sample,
                                                    name="plant.sample")

    # -- end-stop prediction ------------------------------------------------------------------------------
    def _drop_lazy_cross(self) -> None:
        lazy, self._lazy_cross = self._lazy_cross, None
        if lazy is not None:
            self.machine.scheduler.cancel_deferred(lazy[3])

    def _crossing_lower_bound(self) -> int | None:
        """A time (ps from the current state) before which neither limit can be reached under
        the current drive, or None when there is no useful bound. The speed stays between v0
        and vt (a first-order response), so |x(t) - x0| <= max(|v0|, |vt|) * t; margins cover
        the float rounding of the trajectory formula."""
        p = self.params
        speed = max(abs(self.v), abs(self._vt))
        if not 0 < speed < math.inf:
            return None
        room = min(p.limit_max - self.x, self.x - p.limit_min)
        if not 0 < room < math.inf:
            return None
        lb = int((room * 0.999 - 1e-6 * (abs(self.x) + 1.0)) / speed * PS_PER_S) - PS_PER_MS
        return lb if lb > PS_PER_MS else None

    def _materialize_cross(self) -> None:
        """Compute a deferred prediction (from the state it was made in) and push its event with
        the sequence number reserved then: the same event at the same place in the order as an
        eager prediction."""
        lazy, self._lazy_cross = self._lazy_cross, None
        if lazy is None:
            return
        _t_lb, seq, (t0, x0, v0, vt, floor_t), handle = lazy
        self.machine.scheduler.cancel_deferred(handle)
        crossing = self._first_crossing_from(x0, v0, vt)
        if crossing is None:
            return
        t = t0 + crossing[0]
        self._cross_ev = self.machine.scheduler.at_seq(max(t, floor_t), seq, self._on_cross,
                                                       name="plant.end_stop")

    def _predict(self) -> None:
        if self._cross_ev is not None:
            self._cross_ev.cancel()
            self._cross_ev = None
        self._drop_lazy_cross()
        if self.pinned is not None:
            return
        lb = self._crossing_lower_bound()
        if lb is not None:
            # Deferred: a crossing this far ahead is almost always overtaken by the next drive
            # change (1 kHz), and the search costs ~50 trajectory evaluations.
            sched = self.machine.scheduler
            seq = sched.reserve_seq()
            state = (self.t, self.x, self.v, self._vt, sched.now)
            self._lazy_cross = [self.t + lb, seq, state, None]
            self._lazy_cross[3] = sched.defer(self.t + lb, self._materialize_cross)
            return
        crossing = self._first_crossing()
        if crossing is None:
            return
        dt, side = crossing
        if dt == 0 and self.v == 0:
            # resting against that stop already (released and pushed back at the same instant):
            # not a new crossing
            self.pinned = side
            return
        self._cross_ev = self.machine.scheduler.at(self.t + dt, self._on_cross, name="plant.end_stop")

    def _first_crossing(self) -> tuple[int, str] | None:
        """(ps from the current state until x reaches a limit under the current drive, side)."""
        return self._first_crossing_from(self.x, self.v, self._vt)

    def _first_crossing_from(self, x0: float, v0: float, vt: float) -> tuple[int, str] | None:
        """``_first_crossing`` from an explicit state (x0, v0) and target velocity vt."""
        p, tau = self.params, self.params.tau_s
        x_after = self._x_after
        sv0 = v0                                         # the state's velocity (trajectory)
        if tau <= 0:
            v0 = vt                                      # the speed follows the drive at once
        segments: list[tuple[int, int | None]] = []      # (direction, end of segment in ps or None)
        if v0 != 0 and vt != 0 and (v0 > 0) != (vt > 0) and tau > 0:
            turn = round(tau * math.log(1.0 - v0 / vt) * PS_PER_S)
            segments = [(1 if v0 > 0 else -1, turn), (1 if vt > 0 else -1, None)]
        elif v0 != 0 or vt != 0:
            segments = [(1 if (v0 if v0 != 0 else vt) > 0 else -1, None)]
        start = 0
        for direction, end in segments:
            limit = p.limit_max if direction > 0 else p.limit_min

            def reached(s: int, limit: float = limit, direction: int = direction) -> bool:
                x = x_after(x0, sv0, vt, tau, s)
                return x >= limit if direction > 0 else x <= limit

            side = "max" if direction > 0 else "min"
            if end is not None:
                if reached(end):
                    return self._bisect(start, end, reached), side
                start = end
                continue
            # unbounded segment: find a time beyond the crossing, if the trajectory gets there
            if vt == 0:
                asymptote = x0 + v0 * tau
                if not (asymptote > limit if direction > 0 else asymptote < limit):
                    return None
            hi = max(start + 1, PS_PER_MS)
            for _ in range(200):
                if reached(hi):
                    return self._bisect(start, hi, reached), side
                hi *= 2
            return None
        return None

    @staticmethod
    def _bisect(lo: int, hi: int, reached: Any) -> int:
        """Smallest s in (lo, hi] with reached(s), given reached(hi) and monotone in between."""
        if reached(lo):
            return lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if reached(mid):
                hi = mid
            else:
                lo = mid
        return hi


def _native_fits(p: MotorParams) -> bool:
    """The C arithmetic is this model's, bit for bit, for these parameters: end stops that are
    exact doubles (Python compares them with floats exactly), finite speeds and time constant,
    integer period and history length of sane size."""
    def num(v: Any, bound: float = math.inf) -> bool:
        return type(v) in (int, float) and math.isfinite(v) and abs(v) <= bound
    return (num(p.limit_min, 2.0 ** 53) and num(p.limit_max, 2.0 ** 53) and num(p.max_speed)
            and num(p.tau_s) and num(p.friction_duty) and num(p.initial_position)
            and type(p.sample_period_ps) is int and p.sample_period_ps < 2 ** 62
            and type(p.history_len) is int and p.history_len < 2 ** 40)


_native_cls: type | None = None


def native_class() -> type:
    """DcMotorPlantNative: _core.Plant (the state and the common paths in C) under this model's
    Python face; made once the native core is loaded."""
    global _native_cls
    if _native_cls is None:
        core = native.core()
        from ..soc.stm32h7.stm32_gpio import STM32_GPIOPort

        def c_timer(obj: Any, method: str) -> bool:
            """obj is a _core.Timer whose ``method`` is the C one: the plant may use its C state."""
            return (isinstance(obj, core.Timer) and getattr(type(obj), method) is getattr(core.Timer, method)
                    and method not in vars(obj))

        def levels_word(port: Any, pin: Any) -> int:
            """pin when ``port.pin_level(pin)`` is STM32_GPIOPort's ``(port._levels >> pin) & 1``
            (the plant reads that word), else -1."""
            plain = (getattr(type(port), "pin_level", None) is STM32_GPIOPort.pin_level
                     and "pin_level" not in getattr(port, "__dict__", {}) and hasattr(port, "_levels"))
            return pin if plain and type(pin) is int and 0 <= pin < 63 else -1

        class DcMotorPlantNative(core.Plant, DcMotorPlant):   # type: ignore[name-defined,misc]
            """DcMotorPlant with its state only in C: advance, the drive change, the sample, the
            end-stop prediction and hit, the public views are C methods and attributes of
            _core.Plant; _first_crossing_from/_bisect are DcMotorPlant's (called from C)."""

            def __init__(self, machine: "Machine", params: MotorParams | None = None, *,
                         pwm: "STM32_Timer", pwm_channel: int = 1,
                         direction: "STM32_GPIOPort", direction_pin: int,
                         encoder: "STM32_Timer | None" = None) -> None:
                p = self._wire(machine, params, pwm, pwm_channel, direction, direction_pin, encoder)
                self._bind(machine, p, pwm, pwm_channel, direction, direction_pin, encoder,
                           c_timer(pwm, "channel_duty"),
                           encoder is not None and c_timer(encoder, "set_encoder_count"),
                           levels_word(direction, direction_pin))
                pwm.add_listener(self._on_pwm)
                direction.subscribe(self._pin_changed)
                if encoder is not None:
                    encoder.encoder_source = self.count_now
                    encoder.set_encoder_count(self.count)
                self._drive_changed(force=True)
                self._start()

            @property
            def history(self) -> deque[Sample]:
                """The recent samples (a copy: the ring lives in C)."""
                return deque((Sample(*s) for s in self._history()), maxlen=self.params.history_len)

            def samples(self) -> list[Sample]:
                return [Sample(*s) for s in self._history()]

            @property
            def trace(self) -> Trace:
                """The whole run's decimated positions (a copy: the trace lives in C)."""
                cap, stride, offered, t, x = self._trace_state()
                tr = Trace(cap)
                tr.stride, tr._n = stride, offered
                tr.t.frombytes(t)
                tr.x.frombytes(x)
                return tr

        _native_cls = DcMotorPlantNative
    return _native_cls
