"""The UART wire between two UartEndpoints, in virtual time, with taps and fault hooks.

Timing: a character that starts leaving the sender at ``t`` with the sender's bit time ``bt``
arrives (stop bit complete) at ``t + frame_bits * bt`` plus any delay faults so far in that
direction; arrivals in one direction never overlap (each takes one frame time of line), which is
how inserted and duplicated bytes push the following ones back.

Baud mismatch: the receiver samples the sender's waveform at the middle of each of *its* bit
times, measured from the start edge (the sender's wave is start bit 0, data LSB first, then stop /
idle 1s). If the two bit times differ by more than ``BAUD_TOLERANCE`` (3 %), the receiver gets the
byte those samples make, and a framing error. That is deterministic and what a wire does for one
isolated character; between 3 % and about 5 % the value may still come through intact, but it is
still flagged (a conservative reading of the usual +-2..3 % budget). One sent character always
gives one received character (a real receiver much faster than the sender could see several).

Faults (``LinkFault``; byte index k counts the bytes *sent* in one direction, from 0):
  flip(k, mask)        received value = sent ^ mask
  drop(k)              byte k never arrives
  insert(k, value)     an extra byte ``value`` arrives one frame after byte k
  duplicate(k)         byte k arrives twice
  delay(k, delay_ps)   the gap before byte k grows by delay_ps; every later byte shifts too
  truncate(k, end)     bytes k..end-1 never arrive (the rest of a frame; the caller gives indices)
  noise(t0, t1, ber)   each bit (start, data, parity, stop) of every byte whose arrival falls in
                       [t0, t1) flips with probability ber, drawn from the link's own
                       ``random.Random(seed)``; a flipped start or stop bit is a framing error
``add_tx_observer(fn)``: ``fn(direction, k, byte, t_start_ps)`` sees every byte as it starts,
before faults are looked up (the fault layer arms frame-aware faults from there, just in time).
Receivers that define ``rx_start(arrival_ps)`` (optional, e.g. the ESP32-C3 UART for its RX
timeout) are also told when a character's start bit reaches them.
Noise and baud-mismatch sampling assume 8 data bits (the link's frames are 8N1); a parity bit
hit by noise counts as a framing error.
Every fault that touches a byte is recorded in the run's event log (``link_fault``) and named in
its tap. Taps (``link.taps``): one ``LinkByte`` per byte, both directions, in arrival order;
dropped bytes appear with ``value=None`` at the time they would have arrived.

Under ``DUOHIL_MODELS=native`` ``UartLink(...)`` is a ``UartLinkNative``: the same wire in C
(native/link.c, ``_core.UartLink``), the noise drawn from the same ``self.rng``; this file's
``UartLink`` and ``TapLog`` are the reference (tests/test_native_link.py compares them).
"""
from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...base import ConsoleLine, LinkByte
from .. import native

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel.peripheral import UartEndpoint
    from ..kernel.scheduler import Scheduler

BAUD_TOLERANCE = 0.03
FAULT_KINDS = ("flip", "drop", "insert", "duplicate", "delay", "truncate", "noise")


@dataclass(frozen=True)
class LinkFault:
    kind: str
    index: int = 0                 # byte k (per direction, sent bytes, from 0)
    mask: int = 0x01               # flip
    value: int = 0x00              # insert
    delay_ps: int = 0              # delay
    end: int | None = None         # truncate: first index that arrives again (None: all later)
    t_start: int = 0               # noise window [t_start, t_end)
    t_end: int = 0
    ber: float = 0.0               # noise bit-error rate

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown link fault kind {self.kind!r} (expected one of "
                             f"{', '.join(FAULT_KINDS)})")

    def covers(self, k: int) -> bool:
        if self.kind == "truncate":
            return k >= self.index and (self.end is None or k < self.end)
        return self.kind != "noise" and k == self.index


class _Direction:
    def __init__(self, name: str, src: UartEndpoint, dst: UartEndpoint) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.sent = 0                  # bytes sent so far (the next one's index)
        self.shift_ps = 0              # accumulated delay faults
        self.line_free = 0             # arrival time of the last character on this side
        self.faults: list[LinkFault] = []
        self.ev_start = f"link.{name}.start"     # event names, built once
        self.ev_arrive = f"link.{name}"


class UartLink:
    """Joins endpoints ``a`` and ``b``; direction names are ``"<na>-><nb>"`` and ``"<nb>-><na>"``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> UartLink:
        # under DUOHIL_MODELS=native the per-byte path is C (UartLinkNative below)
        if cls is UartLink and native.models() == "native":
            return super().__new__(UartLinkNative)
        return super().__new__(cls)

    def __init__(self, scheduler: Scheduler, a: UartEndpoint, b: UartEndpoint,
                 names: tuple[str, str] | None = None, seed: int = 0) -> None:
        self.scheduler = scheduler
        na, nb = names or (a.name, b.name)
        self.directions = {f"{na}->{nb}": _Direction(f"{na}->{nb}", a, b),
                           f"{nb}->{na}": _Direction(f"{nb}->{na}", b, a)}
        self._by_src = {id(a): self.directions[f"{na}->{nb}"], id(b): self.directions[f"{nb}->{na}"]}
        self.rng = random.Random(seed)
        self.taps = TapLog()
        self._tx_observers: list[Callable[[str, int, int, int], None]] = []
        a.tx_sink = self._on_tx
        b.tx_sink = self._on_tx

    # -- faults ----------------------------------------------------------------------------------------
    def add_fault(self, direction: str, fault: LinkFault) -> None:
        if direction not in self.directions:
            raise ValueError(f"unknown link direction {direction!r} (expected one of "
                             f"{', '.join(self.directions)})")
        self.directions[direction].faults.append(fault)

    def add_tx_observer(self, fn: Callable[[str, int, int, int], None]) -> None:
        """Call ``fn(direction, k, byte, t_start_ps)`` for every byte as the sender starts it,
        before any fault is looked up, so a fault added from ``fn`` for index k applies to it."""
        self._tx_observers.append(fn)

    def clear_faults(self) -> None:
        for d in self.directions.values():
            d.faults.clear()

    # -- the wire --------------------------------------------------------------------------------------
    def _on_tx(self, src: Any, byte: int, t_start: int, bit_time: int, frame_bits: float) -> None:
        d = self._by_src[id(src)]
        k = d.sent
        d.sent += 1
        for observe in self._tx_observers:
            observe(d.name, k, byte, t_start)
        frame_ps = round(frame_bits * bit_time)
        if not d.faults:                                   # fast path: a clean wire
            arrive = t_start + frame_ps + d.shift_ps
            if arrive < d.line_free + frame_ps:
                arrive = d.line_free + frame_ps
            d.line_free = arrive
            self._schedule(d, k, arrive, byte, byte, False, bit_time, frame_bits, None)
            return
        touched: list[str] = []
        value, framing, dropped, extra = byte, False, False, []
        for f in d.faults:
            if f.kind == "noise" or not f.covers(k):
                continue
            if f.kind not in ("insert", "duplicate"):      # those name the extra byte only
                touched.append(f.kind)
            if f.kind == "flip":
                value ^= f.mask & 0xFF
            elif f.kind in ("drop", "truncate"):
                dropped = True
            elif f.kind == "insert":
                extra.append((f.value & 0xFF, "insert"))
            elif f.kind == "duplicate":
                extra.append((None, "duplicate"))
            elif f.kind == "delay":
                d.shift_ps += f.delay_ps
        arrive = max(t_start + frame_ps + d.shift_ps, d.line_free + frame_ps)
        for f in d.faults:
            if f.kind == "noise" and f.t_start <= arrive < f.t_end:
                value, framing, flipped = self._noise(value, framing, frame_bits, f.ber)
                if flipped:
                    touched.append("noise")
        d.line_free = arrive
        fault = "+".join(touched) or None
        self._schedule(d, k, arrive, byte, None if dropped else value, framing, bit_time,
                       frame_bits, fault)
        for extra_value, kind in extra:
            arrive += frame_ps
            d.line_free = arrive
            self._schedule(d, k, arrive, byte, value if extra_value is None else extra_value,
                           framing, bit_time, frame_bits, kind)

    def _noise(self, value: int, framing: bool, frame_bits: float, ber: float) -> tuple[int, bool, bool]:
        nbits = int(frame_bits + 0.5)
        flipped = False
        for i in range(nbits):
            if self.rng.random() < ber:
                flipped = True
                if 1 <= i <= 8:
                    value ^= 1 << (i - 1)
                else:
                    framing = True
        return value, framing, flipped

    def _schedule(self, d: _Direction, k: int, t: int, sent: int, value: int | None,
                  framing: bool, bit_time: int, frame_bits: float, fault: str | None) -> None:
        if value is not None:
            rx_start = getattr(d.dst, "rx_start", None)
            if rx_start is not None:            # optional: the start bit reaches the receiver
                self.scheduler.at(t - round(frame_bits * bit_time), rx_start, t,
                                  name=d.ev_start)
        self.scheduler.at(t, self._arrive, d, k, sent, value, framing, bit_time, frame_bits, fault,
                          name=d.ev_arrive)

    def _arrive(self, d: _Direction, k: int, sent: int, value: int | None, framing: bool,
                bit_time: int, frame_bits: float, fault: str | None) -> None:
        t = self.scheduler.now
        if fault is not None:                       # an injected fault: part of the event log
            self.scheduler.record("link_fault", direction=d.name, index=k, fault=fault,
                                  sent=sent, value=value)
        if value is not None:
            rx_bt = d.dst.bit_time_ps()
            if rx_bt is None:
                value, fault = None, "receiver_off"
            elif abs(rx_bt - bit_time) > BAUD_TOLERANCE * bit_time:
                value = sample_mismatched(value, bit_time, rx_bt)
                framing = True
                fault = fault or "baud_mismatch"
        self.taps.append(LinkByte(t_ps=t, direction=d.name, value=value,
                                  sent=sent if value != sent else None, fault=fault))
        if value is not None:
            d.dst.rx_char(value, framing)

    def bytes(self, direction: str | None = None) -> list[LinkByte]:
        return [b for b in self.taps if direction is None or b.direction == direction]


class _NativeDirection(_Direction):
    """A direction of UartLinkNative: its counters live in C (read here for inspection)."""

    def __init__(self, name: str, src: UartEndpoint, dst: UartEndpoint, c: Any, i: int) -> None:
        super().__init__(name, src, dst)
        self._c, self._i = c, i

    sent = property(lambda self: self._c.dir_state(self._i)[0], lambda self, v: None)
    shift_ps = property(lambda self: self._c.dir_state(self._i)[1], lambda self, v: None)
    line_free = property(lambda self: self._c.dir_state(self._i)[2], lambda self, v: None)


class UartLinkNative(UartLink):
    """The UartLink of DUOHIL_MODELS=native: the per-byte path (directions' counters, faults,
    seeded noise drawn from this link's ``rng``, arrivals as C events, receiver-off and baud
    mismatch, the taps' columns) is ``_core.UartLink`` (native/link.c); this class keeps the
    Python faces (``directions``, ``add_fault``, ``taps``). The UARTs call ``_c.tx_sink``, or the
    ``_native_tx_sink`` port from C."""

    def __init__(self, scheduler: Scheduler, a: UartEndpoint, b: UartEndpoint,
                 names: tuple[str, str] | None = None, seed: int = 0) -> None:
        self.scheduler = scheduler
        na, nb = names or (a.name, b.name)
        n_ab, n_ba = f"{na}->{nb}", f"{nb}->{na}"
        self.rng = random.Random(seed)
        self._tx_observers = []
        f_ab: list[LinkFault] = []
        f_ba: list[LinkFault] = []
        c = self._c = native.core().UartLink(scheduler, a, b, n_ab, n_ba, self.rng, f_ab, f_ba,
                                             self._tx_observers)
        self.directions = {n_ab: _NativeDirection(n_ab, a, b, c, 0),
                           n_ba: _NativeDirection(n_ba, b, a, c, 1)}
        self.directions[n_ab].faults = f_ab
        self.directions[n_ba].faults = f_ba
        self.taps = _NativeTapLog(c, [n_ab, n_ba])
        self._native_tx_sink = c._native_tx_sink
        self.tx_sink = c.tx_sink
        a.tx_sink = c.tx_sink
        b.tx_sink = c.tx_sink

    def add_fault(self, direction: str, fault: LinkFault) -> None:
        super().add_fault(direction, fault)
        self._c.sync_faults()

    def clear_faults(self) -> None:
        super().clear_faults()
        self._c.sync_faults()

    def _on_tx(self, src: Any, byte: int, t_start: int, bit_time: int, frame_bits: float) -> None:
        self._c.tx_sink(src, byte, t_start, bit_time, frame_bits)


class _NativeTapLog(Sequence):
    """TapLog's read API over the C columns of ``_core.UartLink`` (times as 64-bit words, the
    direction and value per byte; ``sent`` and ``fault`` only where a byte has them)."""

    _CHUNK = 4096
    #: rows kept as LinkBytes once read (~10 s of traffic, ~16 MB): a run's result reads the taps
    #: four to six times (fingerprint, wire oracles, diagnosis), and a row never changes once on
    #: the wire; beyond this (a soak) rows are made again on each read, as memory matters more
    _CACHE_ROWS = 1 << 16

    def __init__(self, c: Any, names: list[str]) -> None:
        self._c = c
        self._names = names
        self._cache: list[LinkByte] = []

    def _fill(self, stop: int) -> None:
        cache = self._cache
        stop = min(stop, self._CACHE_ROWS)
        names = self._names
        while len(cache) < stop:
            rows = self._c.taps(len(cache), min(stop, len(cache) + self._CHUNK))
            if not rows:
                break
            cache.extend([LinkByte(t, names[d], v, s, f) for t, d, v, s, f in rows])

    def _rows(self, start: int, stop: int) -> Iterator[LinkByte]:
        self._fill(stop)
        cache = self._cache
        if start < len(cache):
            mid = min(stop, len(cache))
            yield from cache[start:mid]
            start = mid
        names = self._names
        for lo in range(start, stop, self._CHUNK):
            for t, d, v, s, f in self._c.taps(lo, min(stop, lo + self._CHUNK)):
                yield LinkByte(t, names[d], v, s, f)

    def __len__(self) -> int:
        return self._c.ntaps()

    def __getitem__(self, i: Any) -> Any:
        n = self._c.ntaps()
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                self._fill(stop)
                if stop <= len(self._cache):
                    return self._cache[start:stop]
                return list(self._rows(start, stop))
            return [self[k] for k in range(start, stop, step)]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("tap index out of range")
        return next(self._rows(i, i + 1))

    def __iter__(self) -> Iterator[LinkByte]:
        return self._rows(0, self._c.ntaps())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]


#: TapLog keeps the absolute time of every _T_BLOCK-th byte and 32-bit steps in between
_T_BLOCK = 256
_T_ESC = 0xFFFF_FFFF              # a step that does not fit (> 4.29 ms): its time is in _t_abs


class TapLog(Sequence):
    """The link's taps, one LinkByte per byte, stored in columns (~7 bytes per byte instead of
    ~200 for the objects): a long soak keeps every byte on the wire for the fingerprint and the
    wire oracles. Times are 32-bit steps from the byte before (with the absolute time of every
    _T_BLOCK-th byte, and of any byte after a longer gap); ``sent`` and ``fault`` are kept only
    where a byte has them. Reads give LinkByte objects made on the fly; equal to a list of the
    same."""

    def __init__(self) -> None:
        self._dt = array("I")                  # ps since the byte before; _T_ESC: see _t_abs
        self._t_abs: dict[int, int] = {}       # index -> time, where the step does not fit
        self._marks = array("q")               # time of byte k * _T_BLOCK
        self._last_t = 0
        self._dir = bytearray()
        self._value = array("h")               # -1: None (dropped)
        self._sent: dict[int, int] = {}        # index -> sent, where not None (a byte changed)
        self._faults: dict[int, str] = {}      # index -> fault name (most bytes have none)
        self._names: list[str] = []

    def append(self, b: LinkByte) -> None:
        try:
            d = self._names.index(b.direction)
        except ValueError:
            d = len(self._names)
            self._names.append(b.direction)
        i = len(self._dt)
        if b.fault is not None:
            self._faults[i] = b.fault
        t = b.t_ps
        step = t - self._last_t
        if 0 <= step < _T_ESC:
            self._dt.append(step)
        else:
            self._dt.append(_T_ESC)
            self._t_abs[i] = t
        if i % _T_BLOCK == 0:
            self._marks.append(t)
        self._last_t = t
        self._dir.append(d)
        self._value.append(-1 if b.value is None else b.value)
        if b.sent is not None:
            self._sent[i] = b.sent

    def _times(self, start: int, stop: int) -> Iterator[int]:
        """The times of bytes start..stop-1, walked from the block mark before start."""
        if start >= stop:
            return
        dt, t_abs = self._dt, self._t_abs
        k = start - start % _T_BLOCK
        t = self._marks[k // _T_BLOCK]
        if k == start:
            yield t
        for j in range(k + 1, stop):
            step = dt[j]
            t = t_abs[j] if step == _T_ESC else t + step
            if j >= start:
                yield t

    def _row(self, i: int, t: int) -> LinkByte:
        v = self._value[i]
        return LinkByte(t_ps=t, direction=self._names[self._dir[i]],
                        value=None if v < 0 else v, sent=self._sent.get(i),
                        fault=self._faults.get(i))

    def _rows(self, start: int, stop: int) -> Iterator[LinkByte]:
        return (self._row(i, t) for i, t in zip(range(start, stop), self._times(start, stop)))

    def __len__(self) -> int:
        return len(self._dt)

    def __getitem__(self, i: Any) -> Any:
        n = len(self._dt)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return list(self._rows(start, stop))
            return [self[k] for k in range(start, stop, step)]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("tap index out of range")
        return self._row(i, next(self._times(i, i + 1)))

    def __iter__(self) -> Iterator[LinkByte]:
        return self._rows(0, len(self._dt))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]


def sample_mismatched(byte: int, tx_bit: int, rx_bit: int) -> int:
    """The byte a receiver with bit time ``rx_bit`` reads from one 8-bit character sent with
    ``tx_bit`` (mid-bit sampling from the start edge; line idle-high after the frame)."""
    def level(t2: int) -> int:                    # t2 = twice the time since the start edge
        j = t2 // (2 * tx_bit)
        if j == 0:
            return 0
        if 1 <= j <= 8:
            return (byte >> (j - 1)) & 1
        return 1
    value = 0
    for i in range(1, 9):
        value |= level((2 * i + 1) * rx_bit) << (i - 1)
    return value


class ConsoleSink:
    """Collects a console UART's bytes into lines (``lines``: ConsoleLine), each stamped with the
    time its last character, the ``\n``, has completely left the UART; ``\r`` is dropped."""

    def __init__(self, endpoint: UartEndpoint, machine_name: str) -> None:
        self.machine = machine_name
        self.lines: list[ConsoleLine] = []
        self.partial = ""
        self.raw = bytearray()
        endpoint.tx_sink = self._on_tx

    def _on_tx(self, src: Any, byte: int, t_start: int, bit_time: int, frame_bits: float) -> None:
        self.raw.append(byte)
        t_end = t_start + round(frame_bits * bit_time)
        ch = chr(byte)
        if ch == "\n":
            self.lines.append(ConsoleLine(t_ps=t_end, machine=self.machine,
                                          text=self.partial.rstrip("\r")))
            self.partial = ""
        else:
            self.partial += ch
