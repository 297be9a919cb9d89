"""The host's end of one MCU UART (``session.stm32.uart("usart3")``): a terminal on its pins.

Receive: the UART's ``tx_sink`` is taken over, chaining to whatever had it (the console sink), so
the console keeps its lines; a byte is counted once its stop bit is out (its start time plus one
frame time). Send: characters leave one frame time apart, after the ones still on the line, at the
host's baud (given, else the MCU's programmed rate at the time of the write, like a terminal set to
match); each arrives as a scheduler event and goes through the same baud-mismatch sampling as the
link (``link.sample_mismatched``, 3 % tolerance). A character that reaches a disabled receiver is
dropped, counted with its reason; so are the UART model's own overruns and framing errors, read
from its counters. A UART joined to the link belongs to the link: it can be read here, not written.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from duohil.errors import ConfigError
from ...base import PS_PER_S, HostUart
from .link import BAUD_TOLERANCE, sample_mismatched


class BuiltinHostUart(HostUart):
    """``linked``: a callable giving what this UART sent on the link so far (the link's taps hold
    it already, so the port keeps no copy), or None for a UART of its own."""

    def __init__(self, machine: Any, uart: Any, linked: Callable[[], bytes] | None = None) -> None:
        self.name = uart.name
        self.machine = machine
        self.uart = uart
        self.linked = linked
        self._rx = bytearray()                      # bytes the MCU sent, and when each stop bit
        self._rx_t = array("q")                     # is out (ps): compact for long runs
        self._line_free = 0                         # arrival time of the host's last character
        self.sent = 0
        self.mismatched = 0                         # characters garbled by a baud mismatch
        self.mismatch_rates: tuple[int, int] | None = None     # (host baud, MCU baud), last seen
        self.dropped: dict[str, int] = {}           # reason -> characters lost
        self._chain = None
        if linked is None:
            self._chain = uart.tx_sink
            uart.tx_sink = self._on_tx

    # -- MCU -> host ------------------------------------------------------------------------------
    def _on_tx(self, src: Any, byte: int, t_start: int, bit_time: int, frame_bits: float) -> None:
        self._rx.append(byte)
        self._rx_t.append(t_start + round(frame_bits * bit_time))
        if self._chain is not None:
            self._chain(src, byte, t_start, bit_time, frame_bits)

    def received(self) -> bytes:
        if self.linked is not None:
            return self.linked()
        now = self.machine.now()
        n = len(self._rx_t)
        while n and self._rx_t[n - 1] > now:      # the last few may still be on the line
            n -= 1
        return bytes(self._rx[:n])

    # -- host -> MCU ------------------------------------------------------------------------------
    def write(self, data: bytes, baud: int | None = None) -> None:
        if self.linked:
            raise ConfigError(f"{self.machine.name}.{self.name} is the link to the other MCU: the "
                              f"host can read it but not write it", field=f"uart({self.name!r})",
                              expected="another UART, or duo.link faults")
        if baud is not None and (not isinstance(baud, int) or baud <= 0):
            raise ConfigError(f"baud {baud!r}", field=f"{self.name}.write(baud=)",
                              expected="a positive integer (e.g. 115200)")
        sched = self.machine.scheduler
        frame_bits = float(getattr(self.uart, "frame_bits", lambda: 10.0)())
        for byte in bytes(data):
            bit = round(PS_PER_S / baud) if baud else self.uart.bit_time_ps()
            if bit is None:                          # a matching terminal cannot match "off"
                why = "the UART was off (no baud rate programmed) when the host sent"
                self.dropped[why] = self.dropped.get(why, 0) + 1
                continue
            frame = round(frame_bits * bit)
            arrive = max(sched.now + frame, self._line_free + frame)
            self._line_free = arrive
            rx_start = getattr(self.uart, "rx_start", None)
            if rx_start is not None:
                sched.at(arrive - frame, rx_start, arrive, name=f"host.{self.name}.start")
            sched.at(arrive, self._arrive, byte, bit, name=f"host.{self.name}")
            self.sent += 1

    def _arrive(self, byte: int, bit: int) -> None:
        rx_bit = self.uart.bit_time_ps()
        if rx_bit is None:
            why = "the receiver was disabled when they arrived"
            self.dropped[why] = self.dropped.get(why, 0) + 1
            return
        framing = False
        if abs(rx_bit - bit) > BAUD_TOLERANCE * bit:
            byte = sample_mismatched(byte, bit, rx_bit)
            framing = True
            self.mismatched += 1
            self.mismatch_rates = (round(PS_PER_S / bit), round(PS_PER_S / rx_bit))
        self.uart.rx_char(byte, framing)

    def problems(self) -> list[str]:
        out = []
        if self.mismatched:
            host, mcu = self.mismatch_rates or (0, 0)
            out.append(f"baud mismatch: {self.mismatched} character(s) from the host at {host} baud "
                       f"reached a receiver set to {mcu} baud (garbled, framing errors)")
        for why, n in self.dropped.items():
            out.append(f"{n} character(s) from the host dropped: {why}")
        return out


def uart_problems(machine: Any) -> dict[str, list[str]]:
    """Per UART model of ``machine``: characters it lost and why, from its own counters."""
    out: dict[str, list[str]] = {}
    for name, p in machine.peripherals.items():
        if not hasattr(p, "bit_time_ps") or not hasattr(p, "rx_char"):
            continue
        lines = []
        if getattr(p, "rx_overruns", 0):
            lines.append(f"{p.rx_overruns} received character(s) dropped: overrun (the firmware did "
                         f"not read the data register in time)")
        if getattr(p, "rx_dropped", 0):
            lines.append(f"{p.rx_dropped} received character(s) dropped: receiver disabled "
                         f"(UE or RE clear)")
        if getattr(p, "rx_framing_errors", 0):
            lines.append(f"{p.rx_framing_errors} character(s) received with a framing error")
        if getattr(p, "tx_overflows", 0):
            lines.append(f"{p.tx_overflows} character(s) written to a full TX FIFO were lost")
        if lines:
            out[name] = lines
    return out
