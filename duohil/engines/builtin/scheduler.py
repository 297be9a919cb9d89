"""Deterministic virtual time for the builtin engine.

Time is an integer number of picoseconds. Device events sit in one heap keyed by (time, sequence);
the sequence number breaks ties in the order events were scheduled, so a run never depends on
anything but its inputs. CPUs advance in slices bounded by the quantum; a CPU that sleeps (WFI),
is parked on a status register (poll-skip) or is stalled (GC pause) asks for no quantum, so idle
time is skipped straight to the next event (conservative lookahead, unicorn.md section 8).

Three traps this loop avoids (unicorn.md section 7):
  (a) timers are heap events, so their expiry is seen before any CPU is let sleep past it;
  (b) a sleeping CPU with an interrupt pending is awake and bounds the step by the quantum;
  (c) a wake-up at or before ``now`` is treated as awake, never as a 1 ps step.

This file is the reference: ``Scheduler(...)`` gives the same scheduler with its heap and loop in C
(``native/_core.c``) when ``DUOHIL_MODELS`` selects the native models (the default once built).
Both give the same firing order, sequence numbers and event log; ``PythonScheduler`` is this one
whatever the switch says.
"""
from __future__ import annotations

import functools

from heapq import heapify, heappop, heappush
from typing import Any, Callable, Protocol

from ..base import DEFAULT_QUANTUM_PS
from . import native


_NEVER = float("inf")

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


class Event:
    __slots__ = ("time", "seq", "fn", "args", "name", "cancelled")

    def __init__(self, time: int, seq: int, fn: Callable[..., Any], args: tuple, name: str) -> None:
        self.time = time
        self.seq = seq
        self.fn = fn
        self.args = args
        self.name = name
        self.cancelled = False

    def __lt__(self, other: "Event") -> bool:
        return (self.time, self.seq) < (other.time, other.seq)

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        return f"Event({self.name or self.fn.__name__} @ {self.time} ps)"


class Clocked(Protocol):
    """What the scheduler needs from a CPU."""

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
    """The run's event log with repeats bounded (LOG_REPEATS, LOG_MAX, AGG_MAX) and storms seen:
    one implementation for both schedulers (the native one keeps its heap and loop in C and
    this in Python: ``record`` runs a few thousand times per virtual second, not per event)."""

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


class Scheduler(EventLog):
    #: set (to a reason) from outside a run, e.g. a signal handler: every scheduler raises
    #: StopRequested at its next step (the host's request, not part of any run's state). The
    #: native scheduler reads this same attribute (native.core().Scheduler is told of it).
    stop_request: str | None = None

    def __new__(cls, quantum_ps: int = DEFAULT_QUANTUM_PS) -> "Scheduler":
        if cls is Scheduler and native.models() == "native":
            return native_scheduler()(quantum_ps)      # same interface, heap and loop in C
        return super().__new__(cls)

    def __init__(self, quantum_ps: int = DEFAULT_QUANTUM_PS) -> None:
        if quantum_ps <= 0:
            raise ValueError(f"quantum must be a positive number of picoseconds, got {quantum_ps}")
        self.quantum = quantum_ps
        self.now = 0
        # entries (time, seq, event): tuples compare in C, which matters at ~30 events per ms
        self._heap: list[tuple[int, int, Event]] = []
        self._compact_at = 1024                 # heap length that triggers _compact
        self._seq = 0
        self.cpus: list[Clocked] = []
        # (t_ps, kind, details): the run's observable event log; part of the fingerprint.
        self.log: list[tuple[int, str, dict]] = []
        # key -> occurrences logged so far; key -> [kind, details, count, first_t, last_t] for
        # the occurrences only counted (see LOG_REPEATS)
        self._seen: dict[Any, int] = {}
        self._aggregated: dict[Any, list] = {}
        self.steps = 0
        self._listeners: list[Callable[[Event], None]] = []
        # CPUs parked on a status register (poll-skip): any fired event may change what they
        # poll, so the next one unparks them (contract: Time / CPUs)
        self._parked: list[Any] = []
        # Deferred events (``defer``): [t_lb, fn, alive] entries whose event is only computed
        # when time could reach t_lb; ``_lazy_min`` is the smallest live t_lb.
        self._lazy: list[list] = []
        self._lazy_min = _NEVER

    # -- events ---------------------------------------------------------------------------------
    def at(self, t: int, fn: Callable[..., Any], *args: Any, name: str = "") -> Event:
        """Schedule ``fn(*args)`` at absolute time t (clamped to now: the past cannot be changed)."""
        if t < self.now:
            t = self.now
        seq = self._seq = self._seq + 1
        t = int(t)
        ev = Event(t, seq, fn, args, name)
        heap = self._heap
        heappush(heap, (t, seq, ev))
        if len(heap) > self._compact_at:
            self._compact()
        return ev

    def _compact(self) -> None:
        """Drop cancelled events from the heap. A cancelled event stays in the heap until it
        reaches the top, and one re-armed far in the future (a CLINT compare written high word
        first, once per tick) would never get there: the heap grew ~0.3 MB per virtual second.
        (time, seq) keys are unique, so the pop order does not depend on the heap's layout."""
        live = [e for e in self._heap if not e[2].cancelled]
        heapify(live)
        self._heap[:] = live                    # the same list: run_until holds a reference
        self._compact_at = max(1024, 2 * len(live))

    def after(self, delay: int, fn: Callable[..., Any], *args: Any, name: str = "") -> Event:
        return self.at(self.now + max(0, int(delay)), fn, *args, name=name)

    # -- deferred events: an event whose time is costly to compute and usually cancelled first --
    def reserve_seq(self) -> int:
        """A sequence number for an event pushed later with ``at_seq``: it then sorts among
        same-time events exactly as if it had been scheduled now."""
        self._seq += 1
        return self._seq

    def at_seq(self, t: int, seq: int, fn: Callable[..., Any], *args: Any, name: str = "") -> Event:
        """Push an event with a reserved sequence number at absolute time t (not clamped: the
        caller clamped it when it reserved the number)."""
        t = int(t)
        ev = Event(t, seq, fn, args, name)
        heappush(self._heap, (t, seq, ev))
        return ev

    def defer(self, t_lb: int, fn: Callable[[], None]) -> list:
        """Call ``fn()`` before anything observes time >= ``t_lb`` (the loop's horizon, an event
        at or after it, ``next_event_time``). ``fn`` may push an event (``at_seq``) at a time
        >= t_lb; nothing else sees the difference. Returns a handle for ``cancel_deferred``."""
        item = [t_lb, fn, True]
        lazy = self._lazy
        if len(lazy) >= 64:                      # drop cancelled entries now and then
            lazy = self._lazy = [it for it in lazy if it[2]]
            self._lazy_min = min((it[0] for it in lazy), default=_NEVER)
        lazy.append(item)
        if t_lb < self._lazy_min:
            self._lazy_min = t_lb
        return item

    def cancel_deferred(self, item: list) -> None:
        item[2] = False

    def _materialize(self, upto: float) -> None:
        due = [it for it in self._lazy if it[2] and it[0] <= upto]
        self._lazy = [it for it in self._lazy if it[2] and it[0] > upto]
        self._lazy_min = min((it[0] for it in self._lazy), default=_NEVER)
        for it in due:
            it[2] = False
            it[1]()

    def next_event_time(self) -> int | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heappop(heap)
        if self._lazy_min != _NEVER:
            if self._lazy_min <= (heap[0][0] if heap else _NEVER):
                self._materialize(heap[0][0] if heap else _NEVER)
                while heap and heap[0][2].cancelled:
                    heappop(heap)
        return heap[0][0] if heap else None

    def park(self, cpu: Any) -> None:
        """``cpu`` parked itself: unpark it (``cpu.unpark()``) after the next event fires."""
        self._parked.append(cpu)

    def on_event(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` after each event fires (e.g. to unpark polling CPUs)."""
        self._listeners.append(listener)

    # -- the loop ---------------------------------------------------------------------------------
    def add_cpu(self, cpu: Clocked) -> None:
        self.cpus.append(cpu)

    def run_until(self, t_end: int) -> None:
        t_end = int(t_end)
        heap = self._heap
        cpus = self.cpus
        fire = self._fire_due
        active: list[Clocked] = []
        try:
            while True:
                if Scheduler.stop_request is not None:
                    raise StopRequested(Scheduler.stop_request)
                now = self.now
                if (heap and heap[0][0] <= now) or self._lazy_min <= now:
                    fire(now)                    # (events at <= now never move now)
                if now >= t_end:
                    return
                horizon = t_end
                while heap and heap[0][2].cancelled:
                    heappop(heap)
                if self._lazy_min != _NEVER:
                    nxt = self.next_event_time()
                    if nxt is not None and nxt < horizon:
                        horizon = nxt
                elif heap and heap[0][0] < horizon:
                    horizon = heap[0][0]
                quantum = self.quantum
                active.clear()
                for cpu in cpus:
                    d = cpu.next_deadline(now, quantum)
                    if d is not None:
                        active.append(cpu)
                        if d <= now:             # trap (c): due now means awake, not a 1 ps step
                            d = now + quantum
                        if d < horizon:
                            horizon = d
                if horizon > now:
                    # A CPU that asked for no time (asleep with nothing pending, parked until
                    # an event, halted) is not advanced step by step: its clock catches up
                    # when it next runs (advance_to) or when the loop returns (settle). Nothing
                    # can wake it inside this step: CPUs of different machines meet only
                    # through events, which fire after the step.
                    for cpu in active:
                        cpu.advance_to(horizon)
                    self.steps += 1
                # Events the CPUs scheduled inside this step (at their slice-start times) fire
                # now, in (time, seq) order; then time is the horizon.
                if (heap and heap[0][0] <= horizon) or self._lazy_min <= horizon:
                    fire(horizon)
                self.now = horizon
        finally:
            for cpu in cpus:
                cpu.settle(self.now)

    def _fire_due(self, upto: int) -> None:
        heap = self._heap
        listeners = self._listeners
        while True:
            if self._lazy_min <= upto:
                self._materialize(upto)
            if not heap or heap[0][0] > upto:
                return
            ev = heappop(heap)[2]
            if ev.cancelled:
                continue
            if ev.time > self.now:
                self.now = ev.time
            ev.fn(*ev.args)
            if self._parked:
                for cpu in self._parked:
                    if cpu.parked:
                        cpu.unpark()
                self._parked.clear()
            for listener in listeners:
                listener(ev)

    def run_for(self, duration: int) -> None:
        self.run_until(self.now + duration)


class PythonScheduler(Scheduler):
    """The Python scheduler whatever ``DUOHIL_MODELS`` says (differential tests, the diverge tool)."""


@functools.cache
def native_scheduler() -> type:
    """The C scheduler with this file's event log (``EventLog``) and stop request."""
    core = native.core()
    core.set_stop_source(Scheduler, StopRequested)

    class NativeScheduler(EventLog, core.Scheduler):
        """``_core.Scheduler`` (heap, time loop, slice driver in C) + ``EventLog``."""

        def __init__(self, quantum_ps: int = DEFAULT_QUANTUM_PS) -> None:
            self._seen = {}
            self._aggregated = {}

    return NativeScheduler
