"""A recorded peer: captured peer->STM32 bytes put back on the link at their captured times.

``duohil replay`` turns a field capture into a scenario whose peer is this source (scenario
``peer: {replay: capture.csv}``). It stands where the peer's UART would: the link (link.py) owns
its ``tx_sink``, so replayed bytes go through the same wire as a live peer's (link faults, taps,
the oracles' view of what the peer meant), and what the STM32 sends back is received and counted.
Each byte starts leaving at its captured start-bit time. Its bit time is the sender's, read from
the capture: back-to-back bytes start one frame (10 bits) apart, so the shortest spacing is the
peer's frame time; used when within 5 % of the STM32 receiver's bit time (else the receiver's: a
capture with no back-to-back bytes says nothing about the sender's rate). A byte due while the line
is still busy follows the one before it, as on a wire. One pending scheduler event at a time.
"""
from __future__ import annotations

import itertools
from typing import Any

from ...base import PS_PER_S

FRAME_BITS = 10.0                       # 8N1, as the link's frames are
FALLBACK_BAUD = 115_200                 # only if the STM32 receiver is off when a byte is due
SAME_RATE = 0.05                        # the capture's bit time is the sender's if this close


class ReplaySource:
    """``schedule``: (start-bit time in ps, byte) in time order; ``peer_uart``: the STM32 UART it
    talks to (its bit time is the wire's)."""

    name = "replay"

    def __init__(self, scheduler: Any, peer_uart: Any, schedule: tuple[tuple[int, int], ...]) -> None:
        self.scheduler = scheduler
        self.peer_uart = peer_uart
        self.schedule = schedule
        self.tx_sink: Any = None
        self.received = 0
        self._next = 0
        self._line_free = 0
        spacing = [b[0] - a[0] for a, b in itertools.pairwise(schedule) if b[0] > a[0]]
        self.capture_bit_ps = round(min(spacing) / FRAME_BITS) if spacing else None
        self._arm()

    def _bit_ps(self) -> int:
        rx = self.peer_uart.bit_time_ps()
        cap = self.capture_bit_ps
        if cap is not None and (rx is None or abs(cap - rx) <= SAME_RATE * rx):
            return cap
        return rx or round(PS_PER_S / FALLBACK_BAUD)

    def _arm(self) -> None:
        if self._next < len(self.schedule):
            t, _ = self.schedule[self._next]
            self.scheduler.at(max(t, self.scheduler.now), self._emit, name="replay.tx")

    def _emit(self) -> None:
        t, byte = self.schedule[self._next]
        self._next += 1
        bit = self._bit_ps()
        start = max(t, self._line_free)
        self._line_free = start + round(FRAME_BITS * bit)
        if self.tx_sink is not None:
            self.tx_sink(self, byte, start, bit, FRAME_BITS)
        self._arm()

    # -- the receiving side of the link (what the STM32 sends to the peer) -------------------------
    def rx_char(self, byte: int, framing_error: bool = False) -> None:
        self.received += 1

    def bit_time_ps(self) -> int | None:
        return self.peer_uart.bit_time_ps()
