"""Deterministic virtual time for the builtin engine: the public face of the C scheduler.

Time is an integer number of picoseconds. Device events sit in one heap keyed by (time, sequence);
the sequence number breaks ties in the order events were scheduled, so a run never depends on
anything but its inputs. CPUs advance in slices bounded by the quantum; a CPU that sleeps (WFI),
is parked on a status register (poll-skip) or is stalled (GC pause) asks for no quantum, so idle
time is skipped straight to the next event (conservative lookahead, unicorn.md section 8).

Three traps the loop avoids (unicorn.md section 7):
  (a) timers are heap events, so their expiry is seen before any CPU is let sleep past it;
  (b) a sleeping CPU with an interrupt pending is awake and bounds the step by the quantum;
  (c) a wake-up at or before ``now`` is treated as awake, never as a 1 ps step.

The heap, the time loop and the slice driver (CpuCore's next_deadline / advance_to / settle) are
C (``native/_core.c``: ``_core.Scheduler``, ``_core.Event``), the one implementation; this file
keeps what is Python by design: the event log (``EventLog``), the stop request and the class
the models use (``Scheduler``). The order of one step, as the C loop runs it: fire what is due
at ``now``; the horizon is the earliest of ``t_end``, the next live event (deferred events
materialised first) and every awake CPU's ``next_deadline``; each CPU that asked for time is
advanced to the horizon; the events due by then fire in (time, seq) order; ``now`` = horizon.
When the loop returns (or raises), every CPU is settled to ``now``. Without the native core the
builtin engine does not start (``native.require``: one line saying why and how to fix it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from ...base import DEFAULT_QUANTUM_PS
from .. import native

# Event-log bounds and event storms (limits.py explains them): each distinct event (kind +
# details, time left out) is logged individually LOG_REPEATS times; after that, and for every event
# once the log holds LOG_MAX entries, occurrences are only counted (count, first and last time)
# under their key; past AGG_MAX keys, under (kind, machine) alone. A run with no event repeated
# more than LOG_REPEATS times logs exactly what it always did (same fingerprint). A storm:
# STORM_EVENTS more occurrences of one counted event within STORM_WINDOW_PS; ``record`` says so
# and the machine then stops its CPU (cpu.storm).
from .limits import AGG_MAX, LOG_MAX, LOG_REPEATS, STORM_EVENTS, STORM_WINDOW_PS  # noqa: E402,F401


def _event_key(kind: str, details: dict) -> Any:
    try:
        key = (kind, tuple(sorted(details.items())))
        hash(key)
        return key
    except TypeError:                              # a list/dict detail: its repr is stable
        return (kind, repr(sorted(details.items(), key=lambda kv: kv[0])))


class StopRequested(BaseException):
    """Raised by ``run_until`` at a step boundary when ``Scheduler.stop_request`` is set (by a
    signal handler: Ctrl-C, a wall-clock budget). Raising there, never inside an emulator
    callback, means the request cannot be lost and prints no ctypes traceback."""


class Event(Protocol):
    """What ``at``/``after``/``at_seq`` return (``_core.Event``): ordered by (time, seq)."""

    time: int
    seq: int
    fn: Callable[..., Any]
    args: tuple
    name: str
    cancelled: bool

    def cancel(self) -> None:
        """The event will not fire (it leaves the heap when it reaches the top, or at compaction)."""


class Clocked(Protocol):
    """What the scheduler needs from a CPU (CpuCore's are run in C, cpu.py)."""

    name: str

    def next_deadline(self, now: int, quantum: int) -> int | None:
        """The latest time this CPU may be advanced to without missing something of its own:
        ``now + quantum`` when it runs (or has an interrupt pending), its wake-up time when it is
        parked or stalled, ``None`` when it sleeps until an event wakes it."""

    def advance_to(self, t: int) -> None:
        """Run (or sleep) until local time >= t."""

    def settle(self, t: int) -> None:
        """Bring a clock left behind (the CPU asked for no time) up to t without running."""


class EventLog:
    """The run's event log with repeats bounded (LOG_REPEATS, LOG_MAX, AGG_MAX) and storms seen,
    in Python by design (``record`` runs a few thousand times per virtual second, not per
    event); the scheduler's ``log`` list and clock ``now`` are the C object's."""

    log: list[tuple[int, str, dict]]
    now: int
    _seen: dict[Any, int]
    _aggregated: dict[Any, list]

    def record(self, kind: str, t: int | None = None, **details: Any) -> bool:
        """Append an observation to the event log (plant end stops, resets, injected faults...);
        an event repeated more than LOG_REPEATS times is counted instead (``aggregated``).
        Returns True when this occurrence shows a storm (STORM_EVENTS within STORM_WINDOW_PS)."""
        t = self.now if t is None else int(t)
        key = _event_key(kind, details)
        n = self._seen.get(key, 0)
        if n < LOG_REPEATS and len(self.log) < LOG_MAX:
            self._seen[key] = n + 1
            self.log.append((t, kind, details))
            return False
        agg = self._aggregated.get(key)
        if agg is None:
            if len(self._aggregated) >= AGG_MAX:
                details = {"machine": details["machine"]} if "machine" in details else {}
                key = (kind, "*", details.get("machine"))
                agg = self._aggregated.get(key)
            if agg is None:
                # kind, details, count, first, last; then the storm window: its start, count
                agg = self._aggregated[key] = [kind, details, 0, t, t, t, 0]
        agg[2] += 1
        agg[4] = t
        if agg[2] - agg[6] >= STORM_EVENTS:
            storm = t - agg[5] <= STORM_WINDOW_PS
            agg[5], agg[6] = t, agg[2]
            return storm
        return False

    def aggregated(self) -> list[tuple[int, str, dict]]:
        """The occurrences only counted, one ``repeated`` event per key (at its last time, in
        order of first occurrence): ``{"of": kind, **details, "count", "first_ps", "last_ps"}``
        (``count`` excludes the LOG_REPEATS occurrences logged individually)."""
        return [(last, "repeated", {"of": kind, **details, "count": count, "first_ps": first,
                                    "last_ps": last})
                for kind, details, count, first, last, _w, _n in self._aggregated.values()]

    def events(self) -> list[tuple[int, str, dict]]:
        """The log, then the aggregated repeats (none for most runs)."""
        return self.log + self.aggregated() if self._aggregated else list(self.log)


class _NoCore:
    """Stands in for ``_core.Scheduler`` when the native core is not built or not usable: making
    a scheduler raises EngineUnavailable with the one line ``native.require`` gives."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        native.require()
        raise AssertionError("unreachable: native.require() raises without a core")


_CORE = native.core()
_Base: Any = _CORE.Scheduler if _CORE is not None else _NoCore


class Scheduler(EventLog, _Base):
    """``_core.Scheduler`` (heap, time loop, slice driver in C) with this file's ``EventLog``.

    ``at(t, fn, *args, name="")`` (clamped to now), ``after(delay, ...)``, ``reserve_seq()`` +
    ``at_seq(t, seq, ...)`` (an event pushed later that sorts as if scheduled at the
    reservation), ``defer(t_lb, fn)`` / ``cancel_deferred`` (``fn()`` runs before anything
    observes time >= t_lb), ``next_event_time()``, ``park(cpu)`` (unparked after the next event),
    ``on_event(listener)``, ``add_cpu``, ``run_until``/``run_for``, ``record`` (EventLog); the
    attributes ``now``, ``quantum``, ``steps``, ``cpus``, ``log`` and ``_heap`` (a snapshot of the
    heap array, ``[(time, seq, event)]``, in heapq's layout). A quantum <= 0 is a ValueError."""

    #: set (to a reason) from outside a run, e.g. a signal handler: every scheduler raises
    #: StopRequested at its next step (the host's request, not part of any run's state). The C
    #: loop reads this attribute (``set_stop_source`` below).
    stop_request: str | None = None

    if TYPE_CHECKING:  # pragma: no cover - the C type's members, for readers and checkers
        now: int
        quantum: int
        steps: int
        cpus: list[Clocked]
        log: list[tuple[int, str, dict]]

    def __init__(self, quantum_ps: int = DEFAULT_QUANTUM_PS) -> None:
        self._seen = {}
        self._aggregated = {}


if _CORE is not None:
    _CORE.set_stop_source(Scheduler, StopRequested)
