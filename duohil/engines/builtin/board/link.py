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
before faults are looked up. Each direction also follows its sender's frames (the protocol's
SOF, LEN, payload, CRC-16) from the link's first byte, in C: ``direction.frames`` counts them and
``direction.byte_listeners`` / ``frame_listeners`` are called, before the faults are looked up,
with ``(k, field, frame, LEN)`` per byte (field "SOF", "LEN", "payload[i]", "CRC_LO", "CRC_HI" or
None outside a frame) and ``(frame, payload, t_start_ps)`` per frame; the fault layer arms
frame-aware faults from there, just in time, and no Python runs for a byte nobody listens to.
Receivers that define ``rx_start(arrival_ps)`` (optional, e.g. the ESP32-C3 UART for its RX
timeout) are also told when a character's start bit reaches them.
Noise and baud-mismatch sampling assume 8 data bits (the link's frames are 8N1); a parity bit
hit by noise counts as a framing error.
Every fault that touches a byte is recorded in the run's event log (``link_fault``) and named in
its tap. Taps (``link.taps``): one ``LinkByte`` per byte, both directions, in arrival order;
dropped bytes appear with ``value=None`` at the time they would have arrived.

The wire is C, one copy (native/link.c, ``_core.UartLink``): the directions' counters, the faults,
the noise (drawn by calling this link's own ``rng``, a ``random.Random(seed)``, once per frame bit
of each byte in a noise window), arrivals as C events, receiver-off and baud mismatch, and the
taps as C columns (64-bit time, direction, value; ``sent`` and ``fault`` only where a byte has
them). ``UartLink`` keeps the Python faces (``directions``, ``add_fault``, ``taps``); a UART calls
``tx_sink`` (``_native_tx_sink`` from C). Specified by tests/test_native_link.py and
tests/test_link.py.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from duohil.protocol import SOF as FRAME_SOF
from ...base import ConsoleLine, LinkByte, LinkRow
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
    """One direction of the wire; its counters live in C (read here for inspection)."""

    def __init__(self, name: str, src: UartEndpoint, dst: UartEndpoint, c: Any, i: int,
                 faults: list[LinkFault]) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.faults = faults
        self._c, self._i = c, i
        #: fn(k, field, frame, length) for every byte this direction's sender starts
        self.byte_listeners: list[Callable[[int, str | None, int, int], None]] = []
        #: fn(frame, payload, t_start_ps) after each frame's last CRC byte
        self.frame_listeners: list[Callable[[int, bytes, int], None]] = []
        c.frame_listeners(i, self.byte_listeners, self.frame_listeners)

    @property
    def frames(self) -> int:
        """Frames the sender has completed (the next one's index, counted from 0)."""
        return self._c.frames(self._i)

    @property
    def sent(self) -> int:
        """Bytes sent so far (the next one's index)."""
        return self._c.dir_state(self._i)[0]

    @property
    def shift_ps(self) -> int:
        """Accumulated delay faults."""
        return self._c.dir_state(self._i)[1]

    @property
    def line_free(self) -> int:
        """Arrival time of the last character on this side."""
        return self._c.dir_state(self._i)[2]


class UartLink:
    """Joins endpoints ``a`` and ``b``; direction names are ``"<na>-><nb>"`` and ``"<nb>-><na>"``.
    The per-byte path is ``_c``, a ``_core.UartLink``."""

    def __init__(self, scheduler: Scheduler, a: UartEndpoint, b: UartEndpoint,
                 names: tuple[str, str] | None = None, seed: int = 0) -> None:
        self.scheduler = scheduler
        na, nb = names or (a.name, b.name)
        n_ab, n_ba = f"{na}->{nb}", f"{nb}->{na}"
        self.rng = random.Random(seed)
        self._tx_observers: list[Callable[[str, int, int, int], None]] = []
        f_ab: list[LinkFault] = []             # the directions' fault lists, read by the C
        f_ba: list[LinkFault] = []             # again at sync_faults()
        c = self._c = native.require().UartLink(scheduler, a, b, n_ab, n_ba, self.rng, f_ab, f_ba,
                                                self._tx_observers, FRAME_SOF)
        self.directions = {n_ab: _Direction(n_ab, a, b, c, 0, f_ab),
                           n_ba: _Direction(n_ba, b, a, c, 1, f_ba)}
        self.taps = _TapLog(c, [n_ab, n_ba])
        self._native_tx_sink = c._native_tx_sink
        self.tx_sink = c.tx_sink
        a.tx_sink = c.tx_sink
        b.tx_sink = c.tx_sink

    # -- faults ----------------------------------------------------------------------------------------
    def add_fault(self, direction: str, fault: LinkFault) -> None:
        if direction not in self.directions:
            raise ValueError(f"unknown link direction {direction!r} (expected one of "
                             f"{', '.join(self.directions)})")
        self.directions[direction].faults.append(fault)
        self._c.sync_faults()

    def add_tx_observer(self, fn: Callable[[str, int, int, int], None]) -> None:
        """Call ``fn(direction, k, byte, t_start_ps)`` for every byte as the sender starts it,
        before any fault is looked up, so a fault added from ``fn`` for index k applies to it."""
        self._tx_observers.append(fn)

    def clear_faults(self) -> None:
        for d in self.directions.values():
            d.faults.clear()
        self._c.sync_faults()

    def bytes(self, direction: str | None = None) -> list[LinkByte]:
        return [b for b in self.taps if direction is None or b.direction == direction]


class _TapLog(Sequence):
    """The link's taps, one LinkByte per byte, both directions, in arrival order: a Sequence over
    the C columns of ``_core.UartLink`` (LinkByte rows made as they are read, the first
    ``_CACHE_ROWS`` kept), equal to a list of the same. A long soak keeps every byte on the wire
    for the fingerprint and the wire oracles."""

    _CHUNK = 4096
    #: rows kept as LinkBytes once read through the Sequence (~10 s of traffic, ~16 MB: a test or
    #: ``Duo.bytes`` reading them again; a row never changes once on the wire); beyond this (a
    #: soak) rows are made again on each read. A run's own result reads ``chunk``/``rows`` instead
    _CACHE_ROWS = 1 << 16
    #: rows kept as plain tuples (~2.7 s of traffic, ~1.8 MB): a campaign run's whole link
    _PLAIN_ROWS = 1 << 14

    def __init__(self, c: Any, names: list[str]) -> None:
        self._c = c
        self._names = names
        self._cache: list[LinkByte] = []
        self._plain: list[LinkRow] = []             # the first _PLAIN_ROWS as tuples (chunk)

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

    def _read(self, start: int, stop: int) -> list[LinkRow]:
        names = self._names
        return [(t, names[d], v, s, f) for t, d, v, s, f in self._c.taps(start, stop)]

    def chunk(self, start: int, stop: int) -> list[LinkRow]:
        """Rows ``start:stop`` as plain tuples ``(t_ps, direction, value, sent, fault)``,
        LinkByte's fields in order, straight from the C columns (no LinkByte made: ~0.1 us a row
        against ~2 us). The first ``_PLAIN_ROWS`` are kept once read (a campaign run's result
        walks them three times); past that they are made again at each read, so what a soak
        keeps does not grow with it."""
        stop = min(stop, self._c.ntaps())
        if start >= stop:
            return []
        plain = self._plain
        while len(plain) < min(stop, self._PLAIN_ROWS):
            got = self._read(len(plain), min(stop, self._PLAIN_ROWS, len(plain) + self._CHUNK))
            if not got:
                break
            plain.extend(got)
        if stop <= len(plain):
            return plain[start:stop]
        if start >= len(plain):
            return self._read(start, stop)
        return plain[start:] + self._read(len(plain), stop)

    def rows(self) -> Iterator[LinkRow]:
        """Every row as ``chunk`` gives it, in arrival order: what the engine's own readers (the
        fingerprint, the wire oracles, the diagnosis) walk (``base.link_rows``)."""
        n = self._c.ntaps()
        for lo in range(0, n, self._CHUNK):
            yield from self.chunk(lo, min(n, lo + self._CHUNK))

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
