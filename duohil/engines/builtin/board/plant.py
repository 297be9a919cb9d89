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

The model is C, one copy (native/plant.c, ``_core.Plant``): ``DcMotorPlant(...)`` builds a
``DcMotorPlantNative``, a subclass of ``_core.Plant`` and of this class (made once the native core
is loaded). The state (t, x, v, the drive, pinned, the end-stop event or its deferred prediction,
history, trace) lives only in C, and the drive change (the PWM timer's listener, the direction
pin's subscription), ``advance``, the periodic sample and ``count_now`` (the encoder timer's
source) run there with no Python call; the crossing search (``_first_crossing_from``, ``_bisect``
below) and ``machine.record`` stay Python, called from C. An end stop that cannot be reached before
2**63 ps (a crawling axis) is not predicted at all. ``MotorParams`` refuses, when configured, what
the C arithmetic cannot hold exactly (integer end stops beyond 2**53, non-finite speeds or time
constant, a non-integer sample period or history length); an end stop of +-inf means no stop on
that side. Specified by tests/test_plant.py and tests/test_native_plant.py.

The plant is physics, not a peripheral: a machine reset does not move it (the timer and GPIO
resets drop the drive to 0 and the axis coasts to rest). Float arithmetic (IEEE double, math.exp)
makes results bit-identical on one platform; the run stays deterministic because nothing else
enters. History is a bounded ring (``history_len`` samples); the position trace for reports is
a decimated record of the whole run, bounded whatever its length (``Trace``).
"""
from __future__ import annotations

import functools
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

        def number(field: str) -> bool:
            v = getattr(self, field)
            return type(v) in (int, float)

        def finite(field: str) -> bool:
            v = getattr(self, field)
            return number(field) and (type(v) is int and abs(v) < 2 ** 1023 or math.isfinite(v))

        def whole(field: str, top: int) -> bool:
            v = getattr(self, field)
            return type(v) is int and 0 < v <= top

        if not (finite("max_speed") and self.max_speed > 0):
            raise bad("max_speed", "a finite number > 0 counts/s")
        if not (finite("tau_s") and self.tau_s >= 0):
            raise bad("tau_s", "a finite number >= 0 s")
        if not (number("friction_duty") and 0 <= self.friction_duty < 1):
            raise bad("friction_duty", "a number, 0 <= friction_duty < 1")
        for f in ("limit_min", "limit_max"):
            v = getattr(self, f)
            if not (type(v) is float and not math.isnan(v) or type(v) is int and abs(v) <= 2 ** 53):
                raise bad(f, "an integer of magnitude <= 2**53 or a float (-inf/inf: no stop on "
                             "that side), in counts")
        if not (finite("initial_position") and self.limit_min < self.initial_position < self.limit_max):
            raise bad("initial_position", f"a finite number strictly between limit_min={self.limit_min} "
                                          f"and limit_max={self.limit_max}")
        if type(self.direction_positive_level) is not int or self.direction_positive_level not in (0, 1):
            raise bad("direction_positive_level", "0 or 1 (the pin level that drives towards +counts)")
        if not whole("sample_period_ps", 2 ** 62):
            raise bad("sample_period_ps", "a whole number of picoseconds, 1 .. 2**62")
        if not whole("history_len", 2 ** 40):
            raise bad("history_len", "a whole number of samples, 1 .. 2**40")

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
    """The axis: see the module docstring. Every instance is a DcMotorPlantNative (below): t, x,
    v, drive, pinned, end_stops, advance(), count_now(), position_now(), velocity_now(),
    target_velocity() and the event paths are _core.Plant's (C); this class holds the wiring, the
    Python views of the C history and trace, and the crossing search the C calls."""

    def __new__(cls, machine: "Machine" = None, params: MotorParams | None = None,  # type: ignore[assignment]
                **_kw: Any) -> "DcMotorPlant":
        # the model lives in C: DcMotorPlantNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def _wire(self, machine: "Machine", params: MotorParams | None, pwm: "STM32_Timer",
              pwm_channel: int, direction: "STM32_GPIOPort", direction_pin: int,
              encoder: "STM32_Timer | None") -> MotorParams:
        """The plant's connections and parameters (kept in Python)."""
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

    # -- the end-stop crossing search (called from C) ----------------------------------------------------
    @staticmethod
    def _x_after(x0: float, v0: float, vt: float, tau: float, dt_ps: int) -> float:
        """x(dt_ps) from an explicit state: x0 + vt t + (v0 - vt) tau (1 - e^(-t/tau)), or
        x0 + vt t when tau is 0 (the C's _state_after, the same arithmetic)."""
        dt = dt_ps / PS_PER_S
        if tau <= 0:
            return x0 + vt * dt
        e = math.exp(-dt / tau)
        return x0 + vt * dt + (v0 - vt) * tau * (1.0 - e)

    def _first_crossing_from(self, x0: float, v0: float, vt: float) -> tuple[int, str] | None:
        """(ps from the state (x0, v0) until x reaches a limit under the target velocity vt, the
        side "min"/"max"), or None when the trajectory never reaches one. It has at most one
        turning point, so each monotone segment is searched by bisection on integer ps."""
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
            if math.isinf(limit):
                return None                              # no stop on that side
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


@functools.cache
def native_class() -> type:
    """DcMotorPlantNative: _core.Plant (the state and the common paths in C) under this model's
    Python face; made once the native core is loaded."""
    core = native.require()
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

    return DcMotorPlantNative
