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
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ....base import PS_PER_S
from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, W1T, Field, Register

#: RM0433 USART_PRESC.PRESCALER codes 0..11 -> kernel clock divider (codes 12..15 behave as 256).
PRESC_DIV = (1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256)
#: BRR values below this are invalid (RM0433: BRR must be >= 16); the USART then does not run.
BRR_MIN = 16
#: LPUART: BRR below 0x300 is invalid (RM0433).
LPUART_BRR_MIN = 0x300
#: Both FIFOs are 16 deep (stm32h7-registers.md s.3).
FIFO_DEPTH = 16
#: CR3.TXFTCFG/RXFTCFG code -> number of FIFO slots (free for TX, filled for RX) that sets TXFT/RXFT.
FIFO_THRESHOLD = (2, 4, 8, 12, 14, 16)

# ISR bit positions (also the bit positions of the matching ICR clear bits, except where noted).
_ISR_FIELDS = [Field("PE", 0), Field("FE", 1), Field("NE", 2), Field("ORE", 3), Field("IDLE", 4),
               Field("RXNE", 5), Field("TC", 6, reset=1), Field("TXE", 7, reset=1), Field("LBDF", 8),
               Field("CTSIF", 9), Field("CTS", 10), Field("RTOF", 11), Field("EOBF", 12),
               Field("UDR", 13), Field("ABRE", 14), Field("ABRF", 15), Field("BUSY", 16),
               Field("CMF", 17), Field("SBKF", 18), Field("RWU", 19), Field("WUF", 20),
               Field("TEACK", 21), Field("REACK", 22), Field("TXFE", 23), Field("RXFF", 24),
               Field("TCBGT", 25), Field("RXFT", 26), Field("TXFT", 27)]
#: ICR clear bit -> ISR flag it clears.
_ICR_CLEARS = {"PECF": "PE", "FECF": "FE", "NECF": "NE", "ORECF": "ORE", "IDLECF": "IDLE",
               "TXFECF": "TXFE", "TCCF": "TC", "TCBGTCF": "TCBGT", "LBDCF": "LBDF", "CTSCF": "CTSIF",
               "RTOCF": "RTOF", "EOBCF": "EOBF", "UDRCF": "UDR", "CMCF": "CMF", "WUCF": "WUF"}
_ICR_FIELDS = [Field("PECF", 0), Field("FECF", 1), Field("NECF", 2), Field("ORECF", 3),
               Field("IDLECF", 4), Field("TXFECF", 5), Field("TCCF", 6), Field("TCBGTCF", 7),
               Field("LBDCF", 8), Field("CTSCF", 9), Field("RTOCF", 11), Field("EOBCF", 12),
               Field("UDRCF", 13), Field("CMCF", 17), Field("WUCF", 20)]
#: CR1 fields that RM0433 lets software change only while UE=0.
_CR1_LOCKED = ("M0", "M1", "OVER8", "FIFOEN")


class Stm32Usart(Peripheral):
    """One USART/UART instance (USART1..3, 6, UART4/5/7/8 share the register layout)."""

    renode_types: ClassVar[tuple[str, ...]] = ("UART.STM32F7_USART",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"frequency": 120_000_000, "lowPowerMode": False}

    def __new__(cls, *args: Any, **kwargs: Any) -> "Stm32Usart":
        # under DUOHIL_MODELS=native the whole state lives in C (Stm32UsartNative below)
        if cls is Stm32Usart and native.models() == "native":
            cls = Stm32UsartNative
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self._irq_out = self.output("IRQ")
        self._bit_key: tuple | None = None
        self._bit_val: int | None = None
        self._fhb_key: tuple | None = None
        self._fhb_val = 20
        self._tm_key: tuple | None = None
        self._tm_val: tuple = (None, 10, None, 8)
        self._n_idle = f"{name}._idle_elapsed"
        self._n_rto = f"{name}._rto_elapsed"
        self._n_tx = f"{name}._tx_done"
        self._rx_req = self.output("ReceiveDmaRequest")
        self._tx_req = self.output("TransmitDmaRequest")
        self._dma_warned: set[str] = set()
        #: Kernel clock in Hz (usart_ker_ck). The RCC model may assign it; it is read at every use.
        self.kernel_hz: int = int(self.props["frequency"])
        #: LPUART1: the 256 x f_ck / BRR baud formula
        self.low_power = bool(self.props["lowPowerMode"])
        #: Set by the link or a console sink: fn(uart, byte, t_start_ps, bit_time_ps, frame_bits).
        self.tx_sink: Callable[..., None] | None = None
        # counters for the harness (not registers)
        self.tx_count = 0
        self.rx_count = 0
        self.rx_overruns = 0
        self.rx_framing_errors = 0
        self.rx_dropped = 0          # characters that arrived while UE=0 or RE=0

        r = self.regs
        self.cr1 = r.define(0x00, "CR1", fields=[
            Field("UE", 0), Field("UESM", 1), Field("RE", 2), Field("TE", 3), Field("IDLEIE", 4),
            Field("RXNEIE", 5), Field("TCIE", 6), Field("TXEIE", 7), Field("PEIE", 8), Field("PS", 9),
            Field("PCE", 10), Field("WAKE", 11), Field("M0", 12), Field("MME", 13), Field("CMIE", 14),
            Field("OVER8", 15), Field("DEDT", 16, 5), Field("DEAT", 21, 5), Field("RTOIE", 26),
            Field("EOBIE", 27), Field("M1", 28), Field("FIFOEN", 29), Field("TXFEIE", 30),
            Field("RXFFIE", 31)], on_write=self._cr1_written)
        self.cr2 = r.define(0x04, "CR2", fields=[
            Field("SLVEN", 0), Field("DIS_NSS", 3), Field("ADDM7", 4), Field("LBDL", 5),
            Field("LBDIE", 6), Field("LBCL", 8), Field("CPHA", 9), Field("CPOL", 10),
            Field("CLKEN", 11), Field("STOP", 12, 2), Field("LINEN", 14), Field("SWAP", 15),
            Field("RXINV", 16), Field("TXINV", 17), Field("DATAINV", 18), Field("MSBFIRST", 19),
            Field("ABREN", 20), Field("ABRMOD", 21, 2), Field("RTOEN", 23), Field("ADD", 24, 8)],
            on_write=self._cr2_written)
        self.cr3 = r.define(0x08, "CR3", fields=[
            Field("EIE", 0), Field("IREN", 1), Field("IRLP", 2), Field("HDSEL", 3), Field("NACK", 4),
            Field("SCEN", 5), Field("DMAR", 6), Field("DMAT", 7), Field("RTSE", 8), Field("CTSE", 9),
            Field("CTSIE", 10), Field("ONEBIT", 11), Field("OVRDIS", 12), Field("DDRE", 13),
            Field("DEM", 14), Field("DEP", 15), Field("SCARCNT", 17, 3), Field("WUS", 20, 2),
            Field("WUFIE", 22), Field("TXFTIE", 23), Field("TCBGTIE", 24), Field("RXFTCFG", 25, 3),
            Field("RXFTIE", 28), Field("TXFTCFG", 29, 3)], on_write=self._cr3_written)
        self.brr = r.define(0x0C, "BRR", fields=[Field("BRR", 0, 20 if self.low_power else 16)],
                            on_write=self._locked_write)
        self.gtpr = r.define(0x10, "GTPR", fields=[Field("PSC", 0, 8), Field("GT", 8, 8)])
        self.rtor = r.define(0x14, "RTOR", fields=[Field("RTO", 0, 24), Field("BLEN", 24, 8)])
        self.rqr = r.define(0x18, "RQR", access=W1T, fields=[
            Field("ABRRQ", 0), Field("SBKRQ", 1), Field("MMRQ", 2), Field("RXFRQ", 3),
            Field("TXFRQ", 4)], on_write=self._rqr_written)
        self.isr = r.define(0x1C, "ISR", access=RO, fields=_ISR_FIELDS, on_read=self._isr_read)
        self.icr = r.define(0x20, "ICR", access=W1T, fields=_ICR_FIELDS, on_write=self._icr_written)
        self.rdr = r.define(0x24, "RDR", access=RO, fields=[Field("RDR", 0, 9)],
                            on_read=self._rdr_read)
        self.tdr = r.define(0x28, "TDR", fields=[Field("TDR", 0, 9)], on_write=self._tdr_written)
        self.presc = r.define(0x2C, "PRESC", fields=[Field("PRESCALER", 0, 4)],
                              on_write=self._locked_write)
        self._init_state()

    # -- state -------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        self._tdr_full = False          # TDR holds a character not yet in the shift register
        self._txq: list[int] = []       # FIFO mode: the TX FIFO (oldest first)
        self._rxq: list[tuple[int, bool]] = []   # FIFO mode: the RX FIFO (byte, framing error)
        self._shift_free_at = 0         # end (ps) of the character in the shift register
        self._tx_event = None
        self._idle_event = None
        self._rto_event = None

    def reset(self) -> None:
        for ev in (self._tx_event, self._idle_event, self._rto_event):
            if ev is not None:
                ev.cancel()
        super().reset()
        self.kernel_hz = int(self.props["frequency"])
        self._init_state()
        self._update()

    # -- timing ------------------------------------------------------------------------------------
    def _timing(self) -> tuple:
        """(bit_ps, frame_bits, char_ps, data_bits), memoised on every register bit they depend
        on (BRR, PRESC, CR1.OVER8/M1/M0, CR2.STOP, kernel_hz): asked for several times per
        character."""
        key = (self.brr.value, self.presc.value, self.cr1.value & 0x1000_9000,
               self.cr2.value & 0x3000, self.kernel_hz)
        if key != self._tm_key:
            bit = self._compute_bit_ps()
            fb = self.frame_bits()
            self._tm_key = key
            self._tm_val = (bit, fb, None if bit is None else round(fb * bit), self._data_bits())
        return self._tm_val

    def _bit_ps(self) -> int | None:
        """One bit time from kernel_hz, PRESC, BRR and OVER8; None if the divider is invalid.
        Memoised on what it depends on: it is asked for several times per character."""
        key = (self.brr.value, self.presc.value, self.cr1.value & (1 << 15), self.kernel_hz)
        if key != self._bit_key:
            self._bit_key, self._bit_val = key, self._compute_bit_ps()
        return self._bit_val

    def _compute_bit_ps(self) -> int | None:
        brr = self.brr.BRR
        if self.kernel_hz <= 0:
            return None
        presc = PRESC_DIV[min(self.presc.PRESCALER, len(PRESC_DIV) - 1)]
        if self.low_power:
            if brr < LPUART_BRR_MIN:
                return None
            return brr * presc * PS_PER_S // (256 * self.kernel_hz)
        if brr < BRR_MIN:
            return None
        if self.cr1.OVER8:
            usartdiv = (brr & 0xFFF0) | ((brr & 0x7) << 1)     # BRR[2:0] = USARTDIV[3:0] >> 1
            return usartdiv * presc * PS_PER_S // (2 * self.kernel_hz)
        return brr * presc * PS_PER_S // self.kernel_hz

    def bit_time_ps(self) -> int | None:
        """The receiver's programmed bit time, or None when the receiver is disabled."""
        if self.cr1.value & 5 != 5:                  # UE and RE
            return None
        return self._timing()[0]

    def _data_bits(self) -> int:
        """Bits between start and stop (parity included), from CR1.M1:M0."""
        m = (self.cr1.M1 << 1) | self.cr1.M0
        return {0: 8, 1: 9, 2: 7}.get(m, 8)

    def _frame_half_bits(self) -> int:
        key = (self.cr1.value & 0x1000_1000, self.cr2.value & 0x3000)     # M1:M0, STOP
        if key != self._fhb_key:
            self._fhb_key, self._fhb_val = key, self._compute_frame_half_bits()
        return self._fhb_val

    def _compute_frame_half_bits(self) -> int:
        stop_half = {0: 2, 1: 1, 2: 4, 3: 3}[self.cr2.STOP]     # 1, 0.5, 2, 1.5 stop bits
        return 2 * (1 + self._data_bits()) + stop_half

    def frame_bits(self) -> float:
        """Bits per character (start + data incl. parity + stop): 10 for 8N1, 10.5 with 1.5 stop
        bits (the link computes the arrival as ``t_start + round(frame_bits * bit_time)``)."""
        half = self._frame_half_bits()
        return half // 2 if half % 2 == 0 else half / 2

    def char_time_ps(self) -> int | None:
        """One character on the line, rounded exactly as the link rounds it."""
        return self._timing()[2]

    # -- interrupt and DMA request outputs --------------------------------------------------------------
    def _update(self) -> None:
        # Hot (several times per character): raw words, not field lookups. ISR.IDLE/RXNE/TC/TXE
        # (bits 4-7) sit at the same positions as their enables CR1.IDLEIE/RXNEIE/TCIE/TXEIE.
        c1, c3, s = self.cr1.value, self.cr3.value, self.isr.value
        eie = c3 & 1                                               # CR3.EIE
        irq = ((s & c1 & 0xF0)
               or (s & 1 and c1 >> 8 & 1)                           # PE & PEIE
               or (s >> 11 & 1 and c1 >> 26 & 1)                    # RTOF & RTOIE
               or (s >> 3 & 1 and (c1 >> 5 & 1 or eie))             # ORE & (RXNEIE | EIE)
               or (s & 0x6 and eie))                                # FE/NE & EIE
        if c1 >> 29 & 1 and not irq:                                 # FIFOEN
            irq = ((s >> 23 & 1 and c1 >> 30 & 1)                    # TXFE & TXFEIE
                   or (s >> 24 & 1 and c1 >> 31 & 1)                 # RXFF & RXFFIE
                   or (s >> 27 & 1 and c3 >> 23 & 1)                 # TXFT & TXFTIE
                   or (s >> 26 & 1 and c3 >> 28 & 1))                # RXFT & RXFTIE
        sig = self._irq_out
        if bool(irq) != sig.level:
            sig.set(bool(irq))
        sig = self._rx_req
        if bool(c3 >> 6 & 1 and s >> 5 & 1) != sig.level:
            sig.set(not sig.level)                                   # DMAR & RXNE
        sig = self._tx_req
        if bool(c3 >> 7 & 1 and s >> 7 & 1 and c1 & 9 == 9) != sig.level:
            sig.set(not sig.level)                                   # DMAT & TXE & UE & TE

    def _cr3_written(self, reg: Register, old: int, data: int) -> None:
        rising = reg.value & ~old
        if rising & 0xC0:                            # DMAR / DMAT turned on
            self._check_dma_wiring(rising)
        self._update_write(reg, old, data)

    def _check_dma_wiring(self, rising: int) -> None:
        """A firmware that asks for a DMA request the platform does not wire would wait forever
        for a transfer: say so once per line (a user platform that copied ours without its
        builtin overlay lost the TX request lines, platforms/stm32h743.builtin.repl)."""
        for bit, sig, out in ((6, self._rx_req, "ReceiveDmaRequest"),
                              (7, self._tx_req, "TransmitDmaRequest")):
            if rising >> bit & 1 and not sig.connected and out not in self._dma_warned:
                self._dma_warned.add(out)
                self.machine.record(
                    "warning", source=self.name, what="dma_request_not_wired",
                    message=f"{self.name}: the firmware set CR3.{'DMAR' if bit == 6 else 'DMAT'} "
                            f"but the platform wires no {out} for it: no DMA transfer will happen "
                            f"(add `{self.name}: {out} -> dmamux1@<request id>`, or pull our "
                            f"platform in with `using` so its .builtin.repl overlay comes along)")

    def _update_write(self, reg: Register, old: int, data: int) -> None:
        if self.cr1.value >> 29 & 1:
            self._fifo_flags()                       # CR3 thresholds may have changed
        self._update()

    def _fifo_flags(self) -> None:
        """FIFO mode: ISR.TXFNF/TXFE/TXFT and RXFNE/RXFF/RXFT from the FIFO levels."""
        c3 = self.cr3.value
        ntx, nrx = len(self._txq), len(self._rxq)
        free = FIFO_DEPTH - ntx
        s = self.isr.value & ~((1 << 7) | (1 << 23) | (1 << 27) | (1 << 5) | (1 << 24) | (1 << 26))
        if free:
            s |= 1 << 7                                              # TXFNF
        if not ntx:
            s |= 1 << 23                                             # TXFE
        if free >= FIFO_THRESHOLD[min(c3 >> 29 & 7, 5)]:
            s |= 1 << 27                                             # TXFT
        if nrx:
            s |= 1 << 5                                              # RXFNE
        if nrx >= FIFO_DEPTH:
            s |= 1 << 24                                             # RXFF
        if nrx >= FIFO_THRESHOLD[min(c3 >> 25 & 7, 5)]:
            s |= 1 << 26                                             # RXFT
        self.isr.value = s

    # -- configuration writes ----------------------------------------------------------------------
    def _locked_write(self, reg: Register, old: int, data: int) -> None:
        """BRR and PRESC can be written only while UE=0 (RM0433); writes with UE=1 are ignored."""
        if self.cr1.UE:
            reg.value = old

    def _cr1_written(self, reg: Register, old: int, data: int) -> None:
        was_ue = old & 1
        if was_ue:                                   # M, OVER8, FIFOEN frozen while UE=1
            for name in _CR1_LOCKED:
                f = reg.fields[name]
                reg.value = (reg.value & ~f.mask) | (old & f.mask)
        c1 = self.cr1
        if not c1.UE:
            if was_ue:
                self._disable()
        else:
            self.isr.set(TEACK=c1.TE, REACK=c1.RE)
            if c1.FIFOEN:
                self._fifo_flags()
            if c1.TE:
                self._tx_try_start()
        self._update()

    def _cr2_written(self, reg: Register, old: int, data: int) -> None:
        if not self.cr2.RTOEN and self._rto_event is not None:
            self._rto_event.cancel()
            self._rto_event = None
        self._update()

    def _disable(self) -> None:
        """UE cleared: current operations are discarded and every ISR flag returns to reset
        (RM0433: "all the USART_ISR status flags are reset")."""
        for ev in (self._tx_event, self._idle_event, self._rto_event):
            if ev is not None:
                ev.cancel()
        self._tx_event = self._idle_event = self._rto_event = None
        self._tdr_full = False
        self._txq.clear()
        self._rxq.clear()
        self.isr.reset()

    def _rqr_written(self, reg: Register, old: int, data: int) -> None:
        if self.cr1.value >> 29 & 1:                 # FIFO mode: flush the FIFOs
            if data & (1 << 3):
                self._rxq.clear()
            if data & (1 << 4):
                self._txq.clear()
            self._fifo_flags()
            self._update()
            return
        if data & (1 << 3):                          # RXFRQ: drop RDR, clear RXNE
            self.isr.set(RXNE=0)
        if data & (1 << 4) and self._tdr_full:       # TXFRQ: drop the character waiting in TDR
            self._tdr_full = False
            self.isr.set(TXE=1)
        self._update()

    def _icr_written(self, reg: Register, old: int, data: int) -> None:
        clear = {flag: 0 for cf, flag in _ICR_CLEARS.items() if data & reg.fields[cf].mask}
        if clear:
            self.isr.set(**clear)
            self._update()

    # -- status reads ------------------------------------------------------------------------------
    def _isr_read(self, reg: Register) -> int:
        s, c1 = reg.value, self.cr1.value
        if c1 & 1 and ((c1 & 8 and s & 0xC0 != 0xC0) or (c1 & 4 and not s & 0x20)):
            # UE and ((TE and not (TXE and TC)) or (RE and not RXNE)):
            # a firmware spinning here cannot see a change before our next event.
            pending = [ev.time for ev in (self._tx_event, self._idle_event, self._rto_event)
                       if ev is not None and not ev.cancelled]
            self.poll_hint(min(pending) if pending else None)
        return reg.value

    # -- transmit ----------------------------------------------------------------------------------
    # Hot (one pass per character): raw register words, not field lookups.
    def _tdr_written(self, reg: Register, old: int, data: int) -> None:
        c1 = self.cr1.value
        if not c1 & 1:                            # UE
            return
        if c1 >> 29 & 1:                          # FIFOEN: into the TX FIFO (lost when full)
            if len(self._txq) < FIFO_DEPTH:
                self._txq.append(self.tdr.value & 0x1FF)
            self.isr.value &= ~0x40               # TC=0
            self._fifo_flags()
            self._tx_try_start()
            self._update()
            return
        self._tdr_full = True                     # a write with TXE=0 overwrites TDR (data lost)
        self.isr.value &= ~0xC0                   # TXE=0, TC=0
        self._tx_try_start()
        self._update()

    def _tx_try_start(self) -> None:
        """Move TDR into the shift register if it is free; the character starts now."""
        c1 = self.cr1.value
        fifo = c1 >> 29 & 1
        if not ((self._txq if fifo else self._tdr_full) and c1 & 9 == 9):  # UE and TE
            return
        ev = self._tx_event
        if ev is not None and not ev.cancelled:
            return                                 # shift register busy: _tx_done starts it
        bit_ps, frame_bits, char_ps, data_bits = self._timing()
        if char_ps is None:
            return                                 # no valid baud rate: the character waits
        byte = (self._txq[0] if fifo else self.tdr.value) & 0x1FF & ((1 << data_bits) - 1)
        if c1 & (1 << 10):                         # PCE
            byte &= (1 << (data_bits - 1)) - 1     # the MSB is the parity bit
        t0 = self.machine.now()
        if t0 < self._shift_free_at:
            t0 = self._shift_free_at
        if fifo:
            del self._txq[0]
            self._fifo_flags()
        else:
            self._tdr_full = False
            self.isr.value |= 0x80                 # TXE=1
        self._shift_free_at = t0 + char_ps
        self.tx_count += 1
        if self.tx_sink is not None:
            self.tx_sink(self, byte, t0, bit_ps, frame_bits)
        self._tx_event = self.machine.scheduler.at(self._shift_free_at, self._tx_done,
                                                   name=self._n_tx)

    def _tx_done(self) -> None:
        """Stop bit of the character in the shift register is out."""
        self._tx_event = None
        waiting = self._txq if self.cr1.value >> 29 & 1 else self._tdr_full
        if waiting and self.cr1.value & 8:         # TE
            self._tx_try_start()
            waiting = self._txq if self.cr1.value >> 29 & 1 else self._tdr_full
        if not waiting and self._tx_event is None:
            self.isr.value |= 0x40                 # TC=1
        self._update()

    # -- receive -----------------------------------------------------------------------------------
    def rx_char(self, byte: int, framing_error: bool = False) -> None:
        """A character whose stop bit arrives now (called by the link, inside an event)."""
        if self.cr1.value & 5 != 5:                # UE and RE
            self.rx_dropped += 1
            return
        self.rx_count += 1
        isr = self.isr
        _bit, _fb, char_ps, data_bits = self._timing()
        if self.cr1.value >> 29 & 1:               # FIFOEN
            if len(self._rxq) >= FIFO_DEPTH:
                self.rx_overruns += 1
                if not self.cr3.value & (1 << 12):  # OVRDIS: dropped without ORE
                    isr.value |= 0x08              # ORE: this character is lost
            else:
                self._rxq.append((byte & ((1 << data_bits) - 1) & 0x1FF, framing_error))
                if len(self._rxq) == 1:
                    self.rdr.value = self._rxq[0][0]
                if framing_error:
                    isr.value |= 0x02              # FE
                    self.rx_framing_errors += 1
            self._fifo_flags()
        elif isr.value & 0x20 and not self.cr3.value & (1 << 12):     # RXNE and not OVRDIS
            isr.value |= 0x08                      # ORE: RDR keeps its data; this character is lost
            self.rx_overruns += 1
        else:
            rdr = self.rdr
            rdr.value = (rdr.value & ~0x1FF) | (byte & ((1 << data_bits) - 1) & 0x1FF)
            isr.value |= 0x20                      # RXNE
            if framing_error:
                isr.value |= 0x02                  # FE
                self.rx_framing_errors += 1
        # IDLE: one timer per character, restarted by the next one, so it fires once per burst
        sched = self.machine.scheduler
        now = self.machine.now()
        if self._idle_event is not None:
            self._idle_event.cancel()
        self._idle_event = sched.at(now + max(0, int(char_ps or 0)), self._idle_elapsed,
                                    name=self._n_idle)
        if self._rto_event is not None:
            self._rto_event.cancel()
            self._rto_event = None
        if self.cr2.value & (1 << 23):             # RTOEN
            self._rto_event = sched.at(now + max(0, int((self.rtor.value & 0xFF_FFFF) * (_bit or 0))),
                                       self._rto_elapsed, name=self._n_rto)
        self._update()

    def _idle_elapsed(self) -> None:
        self._idle_event = None
        if self.cr1.value & 5 == 5:                # UE and RE
            self.isr.value |= 0x10                 # IDLE
            self._update()

    def _rto_elapsed(self) -> None:
        self._rto_event = None
        if self.cr2.RTOEN and self.cr1.UE and self.cr1.RE:
            self.isr.set(RTOF=1)
            self._update()

    def _rdr_read(self, reg: Register) -> int:
        """Reading RDR (CPU or DMA) empties it (FIFO mode: pops the RX FIFO's head)."""
        if self.cr1.value >> 29 & 1:
            if not self._rxq:
                return reg.value
            value = self._rxq.pop(0)[0]
            reg.value = self._rxq[0][0] if self._rxq else value
            self._fifo_flags()
            self._update()
            return value
        isr = self.isr
        if isr.value & 0x20:                       # RXNE
            isr.value &= ~0x20
            self._update()
        return reg.value


def _c_attr(name: str, doc: str) -> property:
    return property(lambda self: getattr(self._c, name),
                    lambda self, v: setattr(self._c, name, v), doc=doc)


class Stm32UsartNative(Stm32Usart):
    """The Stm32Usart of DUOHIL_MODELS=native: registers, FIFOs, TX pacing, IDLE/RTO, the events
    it holds, the counters and the kernel clock live in C (native/usart.c, the ``_core.Usart``
    object ``_c``), the one copy of that state. The bus, the link and the scheduler call C
    directly (``read``/``write``/``rx_char``/``bit_time_ps``/``reset`` are the C object's bound
    methods; ``_native_mmio`` and ``_native_uart_rx`` are its ports.h capsules; the events'
    functions are C methods). Stm32Usart above stays the reference."""

    renode_types = ()                   # Stm32Usart claims the Renode type and picks this class
    kernel_hz = _c_attr("kernel_hz", "kernel clock in Hz (usart_ker_ck); the RCC model assigns it")
    tx_sink = _c_attr("tx_sink", "fn(uart, byte, t_start_ps, bit_time_ps, frame_bits) or None")
    tx_count = _c_attr("tx_count", "characters started on the line")
    rx_count = _c_attr("rx_count", "characters received with UE and RE set")
    rx_overruns = _c_attr("rx_overruns", "characters lost to an overrun")
    rx_framing_errors = _c_attr("rx_framing_errors", "characters received with a framing error")
    rx_dropped = _c_attr("rx_dropped", "characters that arrived while UE=0 or RE=0")

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        Peripheral.__init__(self, machine, name, base, size, props)
        self._irq_out = self.output("IRQ")
        self._rx_req = self.output("ReceiveDmaRequest")
        self._tx_req = self.output("TransmitDmaRequest")
        self.low_power = bool(self.props["lowPowerMode"])
        c = self._c = native.core().Usart(self, machine, name, base, self.low_power,
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

    _REG_NAMES = ("CR1", "CR2", "CR3", "BRR", "GTPR", "RTOR", "RQR", "ISR", "ICR", "RDR", "TDR",
                  "PRESC")

    def register_name(self, offset: int) -> str | None:
        i = offset >> 2
        return self._REG_NAMES[i] if 0 <= i < len(self._REG_NAMES) else None

    # read-only views of the C state, for tests and inspection
    def _timing(self) -> tuple:
        return self._c.timing()

    def _bit_ps(self) -> int | None:
        return self._c.timing()[0]

    def frame_bits(self) -> float:
        return self._c.timing()[1]

    def char_time_ps(self) -> int | None:
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
