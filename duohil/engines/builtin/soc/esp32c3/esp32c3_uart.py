"""ESP32-C3 UART (Renode ``UART.ESP32_UART``), with FIFOs, interrupts and baud-rate timing.

Register block and bits: ESP-IDF ``soc/esp32c3/register/soc/uart_reg.h`` (summary in
shared/reference/esp32c3-peer.md section 2; firmware header ``esp32_firmware/esp32c3_uart.h``).

**Baud rate and the UART source clock** (what the peer firmware must program):

    f_sclk = {SCLK_SEL 1: APB 80 MHz, 2: RC_FAST 17.5 MHz, 3: XTAL 40 MHz}   (CLK_CONF[21:20])
    baud   = f_sclk / ((SCLK_DIV_NUM + 1 + SCLK_DIV_A/SCLK_DIV_B) * (CLKDIV + FRAG/16))

Reset values are the silicon register reset values: CLK_CONF = 0x0370_1000 (XTAL, SCLK_DIV_NUM 1)
and CLKDIV = 694, i.e. about 28 818 baud. There is no ROM here, so a firmware that wants 115200
must do what ESP-IDF does: CLK_CONF.SCLK_SEL = 1 (APB), SCLK_DIV_NUM = 0, CLKDIV = 694, FRAG = 7
(80 MHz / 694.4375 = 115 201 baud, bit time 8 680 469 ps). SCLK_EN / RX_SCLK_EN = 0 disables the
receiver (bytes on the wire are lost). The A/B fractional part of the SCLK divider is (unverified)
against the TRM; ESP-IDF leaves it 0. Frame = start + 5..8 data bits (CONF0.BIT_NUM) + parity
(CONF0.PARITY_EN) + 1 / 1.5 / 2 stop bits (CONF0.STOP_BIT_NUM).

**What it does beyond Renode's ESP32_UART** (which transmits at once, has an unbounded RX queue,
INT_RAW always 0, STATUS always 0xE000C000, and reports 115200 whatever CLKDIV says):

- 128-byte RX and TX FIFOs; STATUS.RXFIFO_CNT / TXFIFO_CNT are live; CONF0.RXFIFO_RST /
  TXFIFO_RST flush them; FSM_STATUS.ST_UTX_OUT is non-zero while a character is shifting out.
- TX drains one character time per byte at the programmed baud (the byte in the shift register
  has left the FIFO). A write to a full TX FIFO is lost (counted in ``tx_overflows``).
- RX: a byte arriving at a full FIFO is lost and sets RXFIFO_OVF (``rx_overruns``; not flagged with
  CONF1.DIS_RX_DAT_OVF). A framing error from the link sets FRM_ERR; the byte is stored unless
  CONF0.ERR_WR_MASK.
- Interrupts INT_RAW / INT_ST / INT_ENA / INT_CLR drive ``IRQ`` (= INT_ST != 0). Level bits, as in
  Espressif's own QEMU model (``esp32_uart_update_irq``, read through code search; uart_reg.h
  says "more than" / "less than", and which edge the silicon uses is unverified):
  RXFIFO_FULL = RXFIFO_CNT >= RXFIFO_FULL_THRHD (never with an empty FIFO), TXFIFO_EMPTY =
  TXFIFO_CNT <= TXFIFO_EMPTY_THRHD. They re-assert at once after INT_CLR while the condition
  holds (so an ISR masks them in INT_ENA, as ESP-IDF does). Latched until INT_CLR: RXFIFO_TOUT
  (RX_TOUT_EN and MEM_CONF.RX_TOUT_THRHD bit times, at the receiver's baud, of idle line after
  the last received byte with data still in the FIFO; 0 = off; a start bit restarts the idle
  time when the link reports it through ``rx_start``), RXFIFO_OVF, FRM_ERR, TX_DONE (the last
  byte of the FIFO has left). Reset INT_RAW = 0x2 (TXFIFO_EMPTY).
- The transmitter waits while CLK_CONF.TX_SCLK_EN (or SCLK_EN) is 0 and starts when it is set.
- CONF0.LOOPBACK sends TX bytes to this UART's own receiver instead of the wire.
- Poll-skip: reads of STATUS / INT_RAW / INT_ST / FSM_STATUS hint the CPU that nothing changes
  before the next TX event (or any event); a FIFO read breaks the run, so draining never parks.

Not modelled: parity generation/checking (the bit only lengthens the frame), break, flow control
(RTS/CTS, XON/XOFF), autobaud, RS485, AT_CMD, glitch filter, wake-up, the shared-memory FIFO
resizing of MEM_CONF.RX_SIZE/TX_SIZE.

The model is C, one copy (native/esp32c3_uart.c, ``_core.Esp32c3Uart``; the Python copy was deleted
once proven equal, issue 13): ``ESP32C3Uart`` is a Python subclass of ``_core.Esp32c3Uart`` and of
``Peripheral``. C holds the registers, FIFOs, interrupt state, RX timeout and TX pacing, and
schedules its events (``<name>.tx``, ``<name>.rx_tout``, ``<name>.loopback``); its
``read``/``write`` are C, and it has a ``_native_mmio`` port (for a C bus) and a
``_native_uart_rx`` port (for the native link). A ``tx_sink`` that is a native link's ``tx_sink``
is called through the link's ``_native_tx_sink`` port, any other callable from C as
``tx_sink(uart, byte, t_ps, bit_time_ps, frame_bits)``. tests/test_native_esp32c3_uart.py and
tests/test_esp32c3_uart.py check it against this description.
"""
from __future__ import annotations

from collections import deque
from fractions import Fraction

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral

FIFO_LEN = 128
SCLK_HZ = {1: 80_000_000, 2: 17_500_000, 3: 40_000_000}     # CLK_CONF.SCLK_SEL -> source clock

# INT_RAW / INT_ST / INT_ENA / INT_CLR bits
RXFIFO_FULL = 1 << 0
TXFIFO_EMPTY = 1 << 1
PARITY_ERR = 1 << 2
FRM_ERR = 1 << 3
RXFIFO_OVF = 1 << 4
RXFIFO_TOUT = 1 << 8
TX_DONE = 1 << 14
INT_ALL = 0x7FFFF
STATUS_IDLE_BITS = 0xE000_C000       # CTSN, RXD, DTRN, RTSN, TXD high (idle lines)
#: the register block (uart_reg.h); other offsets up to 0x80 are unmodelled
REGISTERS = {0x00: "FIFO", 0x04: "INT_RAW", 0x08: "INT_ST", 0x0C: "INT_ENA", 0x10: "INT_CLR",
             0x14: "CLKDIV", 0x18: "RX_FILT", 0x1C: "STATUS", 0x20: "CONF0", 0x24: "CONF1",
             0x34: "FLOW_CONF", 0x38: "SLEEP_CONF", 0x3C: "SWFC_CONF0", 0x40: "SWFC_CONF1",
             0x44: "TXBRK_CONF", 0x48: "IDLE_CONF", 0x4C: "RS485_CONF", 0x60: "MEM_CONF",
             0x6C: "FSM_STATUS", 0x78: "CLK_CONF", 0x7C: "DATE", 0x80: "ID"}

_core = native.core()
#: without the native core the class still exists (imports, the model registry) but refuses to
#: be built, with native.require()'s one line
_BASES: tuple[type, ...] = (_core.Esp32c3Uart,) if _core is not None else ()


class ESP32C3Uart(*_BASES, Peripheral):                     # type: ignore[misc]
    renode_types = ("UART.ESP32_UART",)
    default_size = 0x100

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        native.require()
        Peripheral.__init__(self, machine, name, base, size, props)
        self._irq = self.output("IRQ")
        self._native_setup(machine, self._irq, name, base)

    def register_name(self, offset: int) -> str | None:
        return REGISTERS.get(offset & ~3)

    @property
    def rx_fifo(self) -> deque[int]:
        """The RX FIFO's bytes, oldest first (a copy)."""
        return deque(self._rx_bytes)

    @property
    def tx_fifo(self) -> deque[int]:
        """The TX FIFO's bytes waiting behind the shift register, oldest first (a copy)."""
        return deque(self._tx_bytes)

    def frame_bits(self) -> Fraction:
        """Start + data + parity + stop bits of one character (CONF0)."""
        return Fraction(self._frame2(), 2)

    def baud(self) -> float | None:
        bt = self._bit_time()
        return None if bt is None else PS_PER_S / bt
