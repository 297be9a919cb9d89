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

Under ``DUOHIL_MODELS=native`` ``ESP32C3Uart(...)`` is an ``ESP32C3UartNative``: this model in C
(native/esp32c3_uart.c, ``_core.Esp32c3Uart``) with ``_native_mmio`` and ``_native_uart_rx``
ports; the class above is the reference (tests/test_native_esp32c3_uart.py compares them).
"""
from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, W1T, Field

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
_INT_FIELDS = [Field(n, b) for n, b in (("RXFIFO_FULL", 0), ("TXFIFO_EMPTY", 1), ("PARITY_ERR", 2),
                                        ("FRM_ERR", 3), ("RXFIFO_OVF", 4), ("DSR_CHG", 5),
                                        ("CTS_CHG", 6), ("BRK_DET", 7), ("RXFIFO_TOUT", 8),
                                        ("SW_XON", 9), ("SW_XOFF", 10), ("GLITCH_DET", 11),
                                        ("TX_BRK_DONE", 12), ("TX_BRK_IDLE_DONE", 13),
                                        ("TX_DONE", 14), ("RS485_PARITY_ERR", 15),
                                        ("RS485_FRM_ERR", 16), ("RS485_CLASH", 17),
                                        ("AT_CMD_CHAR_DET", 18), ("WAKEUP", 19))]
STATUS_IDLE_BITS = 0xE000_C000       # CTSN, RXD, DTRN, RTSN, TXD high (idle lines)


class ESP32C3Uart(Peripheral):
    renode_types = ("UART.ESP32_UART",)
    default_size = 0x100

    def __new__(cls, *args: Any, **kwargs: Any) -> ESP32C3Uart:
        # under DUOHIL_MODELS=native the whole model is C (ESP32C3UartNative below)
        if cls is ESP32C3Uart and native.models() == "native":
            ncls = esp32c3_uart_native()
            return ncls.__new__(ncls)
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self._bt_key: tuple[int, int] | None = None
        self._bt_val: int | None = None
        self._fb_key: int | None = None
        self._fb_val: Fraction = Fraction(10)
        self.tx_sink: Callable[..., None] | None = None
        self.rx_fifo: deque[int] = deque()
        self.tx_fifo: deque[int] = deque()
        self.latched = 0                 # latched INT_RAW bits (TOUT, OVF, FRM_ERR, TX_DONE...)
        self.tx_busy = False
        self.tx_end_ps = 0
        self._tx_event: Any = None
        self._tout_event: Any = None
        self._rx_busy_until = 0           # stop-bit time of a character being received
        self.rx_overruns = 0
        self.tx_overflows = 0
        self.frame_errors = 0
        r = self.regs
        r.define(0x00, "FIFO", fields=[Field("RXFIFO_RD_BYTE", 0, 8)],
                 on_read=self._fifo_read, on_write=lambda reg, old, new: self._fifo_write(new))
        r.define(0x04, "INT_RAW", reset=TXFIFO_EMPTY, access=RO, fields=_INT_FIELDS,
                 on_read=lambda reg: self._polled(self.int_raw()))
        r.define(0x08, "INT_ST", access=RO, fields=_INT_FIELDS,
                 on_read=lambda reg: self._polled(self.int_raw() & self.regs.INT_ENA.value))
        r.define(0x0C, "INT_ENA", fields=_INT_FIELDS, on_write=lambda *a: self._update())
        r.define(0x10, "INT_CLR", access=W1T, fields=_INT_FIELDS,
                 on_write=lambda reg, old, new: self._int_clear(new))
        r.define(0x14, "CLKDIV", fields=[Field("CLKDIV", 0, 12, reset=694), Field("FRAG", 20, 4)],
                 on_write=lambda *a: self._kick_tx())
        r.define(0x18, "RX_FILT", fields=[Field("GLITCH_FILT", 0, 8, reset=8),
                                          Field("GLITCH_FILT_EN", 8)])
        r.define(0x1C, "STATUS", access=RO, fields=[Field("RXFIFO_CNT", 0, 10),
                                                    Field("TXFIFO_CNT", 16, 10)],
                 on_read=lambda reg: self._polled(self.status()))
        r.define(0x20, "CONF0", fields=[Field("PARITY", 0), Field("PARITY_EN", 1),
                                        Field("BIT_NUM", 2, 2, reset=3),
                                        Field("STOP_BIT_NUM", 4, 2, reset=1),
                                        Field("LOOPBACK", 14), Field("RXFIFO_RST", 17),
                                        Field("TXFIFO_RST", 18), Field("ERR_WR_MASK", 26),
                                        Field("MEM_CLK_EN", 28, reset=1)],
                 on_write=self._conf0_written)
        r.define(0x24, "CONF1", fields=[Field("RXFIFO_FULL_THRHD", 0, 9, reset=0x60),
                                        Field("TXFIFO_EMPTY_THRHD", 9, 9, reset=0x60),
                                        Field("DIS_RX_DAT_OVF", 18), Field("RX_TOUT_FLOW_DIS", 19),
                                        Field("RX_FLOW_EN", 20), Field("RX_TOUT_EN", 21)],
                 on_write=lambda *a: self._update())
        for off, nm, reset in ((0x34, "FLOW_CONF", 0), (0x38, "SLEEP_CONF", 0xF0),
                               (0x3C, "SWFC_CONF0", 0x13_E0), (0x40, "SWFC_CONF1", 0x11_00),
                               (0x44, "TXBRK_CONF", 0xA), (0x48, "IDLE_CONF", 0x40100),
                               (0x4C, "RS485_CONF", 0), (0x7C, "DATE", 0x0200_8270),
                               (0x80, "ID", 0x4000_0500)):
            r.define(off, nm, reset=reset)
        r.define(0x60, "MEM_CONF", fields=[Field("RX_SIZE", 1, 3, reset=1),
                                           Field("TX_SIZE", 4, 3, reset=1),
                                           Field("RX_FLOW_THRHD", 7, 9),
                                           Field("RX_TOUT_THRHD", 16, 10, reset=10),
                                           Field("MEM_FORCE_PD", 26), Field("MEM_FORCE_PU", 27)])
        r.define(0x6C, "FSM_STATUS", access=RO, fields=[Field("ST_URX_OUT", 0, 4),
                                                        Field("ST_UTX_OUT", 4, 4)],
                 on_read=lambda reg: self._polled(0x10 if self.tx_busy else 0))
        r.define(0x78, "CLK_CONF", fields=[Field("SCLK_DIV_B", 0, 6), Field("SCLK_DIV_A", 6, 6),
                                           Field("SCLK_DIV_NUM", 12, 8, reset=1),
                                           Field("SCLK_SEL", 20, 2, reset=3),
                                           Field("SCLK_EN", 22, reset=1), Field("RST_CORE", 23),
                                           Field("TX_SCLK_EN", 24, reset=1),
                                           Field("RX_SCLK_EN", 25, reset=1),
                                           Field("TX_RST_CORE", 26), Field("RX_RST_CORE", 27)],
                 on_write=lambda *a: self._kick_tx())
        # hot paths use raw register words (bit positions from the field lists above)
        self._irq = self.output("IRQ")
        self._r_conf0 = r.CONF0
        self._r_conf1 = r.CONF1
        self._r_clk = r.CLK_CONF
        self._r_div = r.CLKDIV
        self._r_ena = r.INT_ENA
        self._r_mem = r.MEM_CONF
        self._ch_key: tuple | None = None
        self._ch_val: tuple = (None, 10, None)
        self._n_tx = f"{name}.tx"
        self._n_tout = f"{name}.rx_tout"

    # -- timing ------------------------------------------------------------------------------------
    def _bit_time(self) -> int | None:
        # memoised on the two registers it depends on: it is asked for on every character
        key = (self.regs.CLK_CONF.value, self.regs.CLKDIV.value)
        if key != self._bt_key:
            self._bt_key, self._bt_val = key, self._compute_bit_time()
        return self._bt_val

    def _compute_bit_time(self) -> int | None:
        clk = self.regs.CLK_CONF
        sclk = SCLK_HZ.get(clk.SCLK_SEL)
        div = self.regs.CLKDIV
        if not sclk or not clk.SCLK_EN or (div.CLKDIV == 0 and div.FRAG == 0):
            return None
        pre = Fraction(clk.SCLK_DIV_NUM + 1)
        if clk.SCLK_DIV_B:
            pre += Fraction(clk.SCLK_DIV_A, clk.SCLK_DIV_B)
        return round(pre * Fraction(16 * div.CLKDIV + div.FRAG, 16) * PS_PER_S / sclk)

    def bit_time_ps(self) -> int | None:
        """The receiver's bit time; None while its clock is off (UartEndpoint)."""
        clk = self._r_clk.value
        if not clk >> 25 & 1:                       # RX_SCLK_EN
            return None
        key = (clk, self._r_div.value)
        if key != self._bt_key:
            self._bt_key, self._bt_val = key, self._compute_bit_time()
        return self._bt_val

    def _char(self) -> tuple:
        """(bit time, frame bits as handed to the tx sink, char time): memoised on CONF0,
        CLK_CONF and CLKDIV (asked for on every character; Fraction arithmetic is slow)."""
        key = (self._r_conf0.value, self._r_clk.value, self._r_div.value)
        if key != self._ch_key:
            bt = self._bit_time()
            frame = self.frame_bits()
            self._ch_key = key
            self._ch_val = (bt, int(frame) if frame.denominator == 1 else float(frame),
                            None if bt is None else round(frame * bt))
        return self._ch_val

    def baud(self) -> float | None:
        bt = self._bit_time()
        return None if bt is None else PS_PER_S / bt

    def frame_bits(self) -> Fraction:
        c0 = self.regs.CONF0
        if c0.value == self._fb_key:
            return self._fb_val
        self._fb_key, self._fb_val = c0.value, self._compute_frame_bits()
        return self._fb_val

    def _compute_frame_bits(self) -> Fraction:
        c0 = self.regs.CONF0
        stop = {0: Fraction(1), 1: Fraction(1), 2: Fraction(3, 2), 3: Fraction(2)}[c0.STOP_BIT_NUM]
        return 1 + (5 + c0.BIT_NUM) + c0.PARITY_EN + stop

    def char_time_ps(self) -> int | None:
        bt = self._bit_time()
        return None if bt is None else round(self.frame_bits() * bt)

    # -- TX ------------------------------------------------------------------------------------------
    def _fifo_write(self, value: int) -> None:
        if self._r_conf0.value >> 18 & 1:           # TXFIFO_RST
            return
        if len(self.tx_fifo) >= FIFO_LEN:
            self.tx_overflows += 1
            return
        self.tx_fifo.append(value & 0xFF)
        if not self.tx_busy:
            self._tx_start(self.now())
        self._update()

    def _kick_tx(self) -> None:
        """A clock change may let a stalled transmitter (clock was off) start."""
        if not self.tx_busy and self.tx_fifo:
            self._tx_start(self.now())
            self._update()

    def _tx_start(self, t: int) -> None:
        bt, frame, char = self._char()
        if not self.tx_fifo or char is None or not self._r_clk.value >> 24 & 1:   # TX_SCLK_EN
            self.tx_busy = False
            return
        byte = self.tx_fifo.popleft()
        self.tx_busy = True
        self.tx_end_ps = t + char
        if self._r_conf0.value >> 14 & 1:           # LOOPBACK
            self.schedule_at(self.tx_end_ps, self.rx_char, byte, False, name=f"{self.name}.loopback")
        elif self.tx_sink is not None:
            self.tx_sink(self, byte, t, bt, frame)
        self._tx_event = self.machine.scheduler.at(self.tx_end_ps, self._tx_done, name=self._n_tx)

    def _tx_done(self) -> None:
        self._tx_event = None
        self.tx_busy = False
        if self.tx_fifo:
            self._tx_start(self.tx_end_ps)
        else:
            self.latched |= TX_DONE
        self._update()

    # -- RX ------------------------------------------------------------------------------------------
    def rx_char(self, byte: int, framing_error: bool = False) -> None:
        """A character whose stop bit has just arrived (UartEndpoint, called at that time)."""
        if self.bit_time_ps() is None:
            return
        c0 = self._r_conf0.value
        if framing_error:
            self.frame_errors += 1
            self.latched |= FRM_ERR
        if c0 >> 17 & 1 or (framing_error and c0 >> 26 & 1):     # RXFIFO_RST, ERR_WR_MASK
            pass
        elif len(self.rx_fifo) >= FIFO_LEN:
            self.rx_overruns += 1
            if not self._r_conf1.value >> 18 & 1:                # DIS_RX_DAT_OVF
                self.latched |= RXFIFO_OVF
        else:
            self.rx_fifo.append(byte & 0xFF)
        self._arm_timeout()
        self._update()

    def rx_start(self, arrival_ps: int) -> None:
        """A start bit reached the receiver (optional link hook): the line is busy until
        ``arrival_ps``, so the idle time the RX timeout measures restarts."""
        self._rx_busy_until = max(self._rx_busy_until, arrival_ps)
        if self._tout_event is not None:
            self._tout_event.cancel()
            self._tout_event = None

    def _arm_timeout(self) -> None:
        if self._tout_event is not None:
            self._tout_event.cancel()
            self._tout_event = None
        if self.now() < self._rx_busy_until:
            return                            # another character is already on its way in
        thr = self._r_mem.value >> 16 & 0x3FF                    # RX_TOUT_THRHD
        bt = self.bit_time_ps()
        if self._r_conf1.value >> 21 & 1 and thr and bt:        # RX_TOUT_EN
            self._tout_event = self.machine.scheduler.at(
                self.machine.now() + max(0, int(thr * bt)), self._timeout, name=self._n_tout)

    def _timeout(self) -> None:
        self._tout_event = None
        if self.rx_fifo and self.regs.CONF1.RX_TOUT_EN:
            self.latched |= RXFIFO_TOUT
            self._update()

    def _fifo_read(self, reg: Any) -> int:
        cpu = self.machine.cpu
        if cpu is not None:
            cpu.note_write()                 # a state-changing read: never part of a poll run
        if not self.rx_fifo:
            return 0
        byte = self.rx_fifo.popleft()
        self._update()
        return byte

    # -- status and interrupts -------------------------------------------------------------------------
    def status(self) -> int:
        return STATUS_IDLE_BITS | min(len(self.rx_fifo), 0x3FF) | (len(self.tx_fifo) << 16)

    def int_raw(self) -> int:
        c1 = self._r_conf1.value
        raw = self.latched
        if self.rx_fifo and len(self.rx_fifo) >= c1 & 0x1FF:      # RXFIFO_FULL_THRHD
            raw |= RXFIFO_FULL
        if len(self.tx_fifo) <= c1 >> 9 & 0x1FF:                 # TXFIFO_EMPTY_THRHD
            raw |= TXFIFO_EMPTY
        return raw

    def _int_clear(self, bits: int) -> None:
        self.latched &= ~bits
        self._update()

    def _update(self) -> None:
        level = bool(self.int_raw() & self._r_ena.value & INT_ALL)
        if level != self._irq.level:
            self._irq.set(level)

    def _polled(self, value: int) -> int:
        self.poll_hint(self.tx_end_ps if self.tx_busy else None)
        return value

    def _conf0_written(self, reg: Any, old: int, new: int) -> None:
        if reg.RXFIFO_RST:
            self.rx_fifo.clear()
        if reg.TXFIFO_RST:
            self.tx_fifo.clear()
        self._update()

    def reset(self) -> None:
        super().reset()
        for ev in (self._tx_event, self._tout_event):
            if ev is not None:
                ev.cancel()
        self._tx_event = self._tout_event = None
        self.rx_fifo.clear()
        self.tx_fifo.clear()
        self.latched = 0
        self.tx_busy = False
        self._rx_busy_until = 0
        self._update()


@functools.cache
def esp32c3_uart_native() -> type:
    """The ESP32C3Uart of DUOHIL_MODELS=native: ``_core.Esp32c3Uart`` (native/esp32c3_uart.c)
    holds the registers, FIFOs, interrupt state, RX timeout and TX pacing, and schedules its
    events (``<name>.tx``, ``<name>.rx_tout``, ``<name>.loopback``) like the model above; its
    ``read``/``write`` are C, and it exposes ``_native_mmio`` (for a C bus) and
    ``_native_uart_rx`` (for the native link). A ``tx_sink`` that is a native link's ``tx_sink``
    is called through the link's ``_native_tx_sink`` port."""
    core = native.core()

    class ESP32C3UartNative(core.Esp32c3Uart, ESP32C3Uart):
        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            self._irq = self.output("IRQ")
            self._native_setup(machine, self._irq, name, base)

        @property
        def rx_fifo(self) -> deque[int]:
            return deque(self._rx_bytes)

        @property
        def tx_fifo(self) -> deque[int]:
            return deque(self._tx_bytes)

        def frame_bits(self) -> Fraction:
            return Fraction(self._frame2(), 2)

    return ESP32C3UartNative
