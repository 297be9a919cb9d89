"""STM32H7 USART (RM0433 "USART/UART"), the block behind Renode's ``UART.STM32F7_USART``.

What this model does that Renode's STM32F7_USART does not (renode.md section 1.3):
  - bytes leave at the programmed baud rate: TDR -> shift register -> line, TXE low while TDR is
    full, TC only after the stop bit of the last character (Renode: TXE always 1, TC at once);
  - the baud rate comes from ``kernel_hz`` / PRESC / BRR (PRESC at +0x2C is modelled; Renode has
    no PRESC), with OVER8; ``kernel_hz`` starts at the repl ``frequency`` and the RCC model may
    update it when the firmware re-routes the kernel clock;
  - a bounded receive path: RDR holds one character; a character that completes while RXNE=1 is
    lost and sets ISR.ORE (unless CR3.OVRDIS) (Renode: an unbounded queue, ORE tagged);
  - ISR.IDLE one character time after the last stop bit, once per burst (Renode: IDLE tagged);
  - ISR.RTOF after CR2.RTOEN and RTOR.RTO bit times (Renode: RTOEN ignored, 8x the delay);
  - ISR.FE from the link's framing-error flag;
  - DMA request lines for RX (``ReceiveDmaRequest``, while CR3.DMAR and RXNE) and TX
    (``TransmitDmaRequest``, while CR3.DMAT and TXE; Renode raises no TX request); setting DMAR
    or DMAT when the platform wires no such line records one ``warning`` event per line.

  - FIFO mode (CR1.FIFOEN, which HAL_UART_Init turns on): 16-deep TX and RX FIFOs; ISR bit 7
    reads TXFNF (TX FIFO not full) and bit 5 RXFNE (RX FIFO not empty); TXFE, RXFF and the
    threshold flags TXFT (at least TXFTCFG's share of the TX FIFO free) and RXFT (at least
    RXFTCFG's share of the RX FIFO filled; codes 0..5 = 1/8, 1/4, 1/2, 3/4, 7/8, full/empty) with
    their interrupts CR1.TXFNFIE/RXFNEIE/TXFEIE/RXFFIE and CR3.TXFTIE/RXFTIE; a character that
    arrives with the RX FIFO full is lost and sets ORE (with OVRDIS it is dropped silently);
    RQR.TXFRQ/RXFRQ flush the FIFOs; DMA requests follow TXFNF/RXFNE.
  - LPUART1 (repl ``lowPowerMode: true``, Renode's flag of the same name): the baud rate is
    256 x f_ck / (PRESC x BRR) with BRR[19:0] >= 0x300, and no OVER8.

Not modelled (documented, nothing is rejected):
  - FIFO mode: PE/FE/NE are set when the character enters the RX FIFO (silicon: when it reaches
    its head); the TX/RX FIFO threshold configuration takes effect at once (silicon: RM0433 says
    change it only with the FIFO in a known state).
  - Parity checking (PE never set; with PCE the parity bit just counts in the frame length),
    noise (NE), break (SBKRQ), LIN, smartcard, IrDA, synchronous mode, auto-baud, mute/address
    match (CMF), wake-up from Stop, RS-485 driver enable, hardware flow control, ISR.BUSY.
  - The idle frame sent when TE goes 0 -> 1, and the few kernel clocks TEACK/REACK take.
  - RTOF is set exactly RTO bit times after the stop bit (silicon: up to 2 samples later).

Time: every instant is an integer number of ps (``bit_ps`` is floored); MMIO accesses happen at the
CPU's slice-start time (cpu.py), so TX start times are accurate to one quantum.

The model is C, one copy (native/usart.c, held by a ``_core.Usart``): registers with the register
bank's bus semantics, FIFOs, TX pacing, IDLE/RTO, its events, counters and kernel clock. This class
is its Python face for the platform loader, the RCC model, the link and the tests.
tests/test_native_usart.py and tests/test_stm32_usart.py specify it.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral


class Stm32Usart(Peripheral):
    """One USART/UART instance (USART1..3, 6, UART4/5/7/8 share the register layout; LPUART1 with
    ``lowPowerMode``). Its state lives in C (``_c``, a ``_core.Usart``): ``read``/``write``/
    ``rx_char``/``bit_time_ps``/``reset`` are the C object's bound methods, its events' functions
    are C methods, ``kernel_hz``/``tx_sink``/the counters are C properties; ``_native_mmio`` and
    ``_native_uart_rx`` are its ports.h capsules (the C bus and a native link call it without
    Python)."""

    renode_types: ClassVar[tuple[str, ...]] = ("UART.STM32F7_USART",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"frequency": 120_000_000, "lowPowerMode": False}

    kernel_hz = native.c_attr("kernel_hz", "kernel clock in Hz (usart_ker_ck); the RCC model assigns it")
    tx_sink = native.c_attr("tx_sink", "fn(uart, byte, t_start_ps, bit_time_ps, frame_bits) or None")
    tx_count = native.c_attr("tx_count", "characters started on the line")
    rx_count = native.c_attr("rx_count", "characters received with UE and RE set")
    rx_overruns = native.c_attr("rx_overruns", "characters lost to an overrun")
    rx_framing_errors = native.c_attr("rx_framing_errors", "characters received with a framing error")
    rx_dropped = native.c_attr("rx_dropped", "characters that arrived while UE=0 or RE=0")

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self._irq_out = self.output("IRQ")
        self._rx_req = self.output("ReceiveDmaRequest")
        self._tx_req = self.output("TransmitDmaRequest")
        #: LPUART1: the 256 x f_ck / BRR baud formula
        self.low_power = bool(self.props["lowPowerMode"])
        c = self._c = native.require().Usart(self, machine, name, base, self.low_power,
                                             int(self.props["frequency"]), self._irq_out,
                                             self._rx_req, self._tx_req)
        self.read = c.read                              # type: ignore[method-assign]
        self.write = c.write                            # type: ignore[method-assign]
        self.rx_char = c.rx_char                        # type: ignore[method-assign]
        self.bit_time_ps = c.bit_time_ps                # type: ignore[method-assign]
        self.reset = c.reset                            # type: ignore[method-assign]
        self._native_mmio = c._native_mmio
        self._native_uart_rx = c._native_uart_rx

    # the bus finds these on the class (machine.bus_target), the instance's C methods answer
    def read(self, offset: int, size: int) -> int:            # pragma: no cover - shadowed
        return self._c.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:   # pragma: no cover - shadowed
        self._c.write(offset, size, value)

    def rx_char(self, byte: int, framing_error: bool = False) -> None:   # pragma: no cover
        """A character whose stop bit arrives now (called by the link, inside an event)."""
        self._c.rx_char(byte, framing_error)

    def bit_time_ps(self) -> int | None:                     # pragma: no cover - shadowed
        """The receiver's programmed bit time, or None when the receiver is disabled."""
        return self._c.bit_time_ps()

    def reset(self) -> None:                                  # pragma: no cover - shadowed
        self._c.reset()

    _REG_NAMES = ("CR1", "CR2", "CR3", "BRR", "GTPR", "RTOR", "RQR", "ISR", "ICR", "RDR", "TDR",
                  "PRESC")

    def register_name(self, offset: int) -> str | None:
        i = offset >> 2
        return self._REG_NAMES[i] if 0 <= i < len(self._REG_NAMES) else None

    # read-only views of the C state, for tests and inspection
    def _timing(self) -> tuple:
        """(bit_ps, frame_bits, char_ps, data_bits) from BRR, PRESC, CR1, CR2 and kernel_hz."""
        return self._c.timing()

    def _bit_ps(self) -> int | None:
        return self._c.timing()[0]

    def frame_bits(self) -> float:
        """Bits per character (start + data incl. parity + stop): 10 for 8N1, 10.5 with 1.5 stop
        bits (the link computes the arrival as ``t_start + round(frame_bits * bit_time)``)."""
        return self._c.timing()[1]

    def char_time_ps(self) -> int | None:
        """One character on the line, rounded exactly as the link rounds it."""
        return self._c.timing()[2]

    @property
    def _txq(self) -> list[int]:
        return self._c.fifos()[0]

    @property
    def _rxq(self) -> list[tuple[int, bool]]:
        return self._c.fifos()[1]

    @property
    def _tx_event(self):
        return self._c.events[0]

    @property
    def _idle_event(self):
        return self._c.events[1]

    @property
    def _rto_event(self):
        return self._c.events[2]
