"""STM32H7 DMA1/DMA2 stream controller (RM0433 "DMA controller"), Renode's ``DMA.STM32DMA``.

Eight streams, each driven by one request line from DMAMUX1 (``set_input(stream, level)``), with
the real LISR/HISR flag layout. What this model does that Renode's STM32DMA does not
(renode.md section 1.4):
  - circular mode (SxCR.CIRC; DBM implies circular and toggles CT between M0AR and M1AR);
  - HTIF, TEIF (and their interrupts) besides TCIF; hardware clears EN at the end of a normal-mode
    transfer and on a transfer error;
  - memory-to-peripheral is paced by the request line (USART TXE), one item per request, instead
    of copying the whole block when EN is written;
  - a transfer error (TEIF, EN cleared) when the stream touches ITCM/DTCM, which DMA1/2 cannot
    reach (stm32h7-registers.md section 1), or an address where nothing is mapped;
  - memory goes through ``machine.dma_read/dma_write`` (the D-cache model's bus view when the
    cache is on), peripheral registers through ``machine.bus_read/bus_write`` (so reading RDR
    clears RXNE exactly as a DMA read does);
  - a completion-latency knob per stream, ``set_completion_latency(stream, ps)``: data lands at
    once (NDTR counts down at once), HTIF/TCIF, their interrupt and the end-of-transfer EN clear
    follow ``ps`` later, in order. Used to inject DMA timing faults.

Not modelled: FIFO mode (DMDIS=1 behaves as direct mode: one PSIZE item per request, MSIZE
forced to PSIZE; FEIF/DMEIF never set), bursts, PINCOS, priorities and arbitration between streams
(a request is served as an event at the time it rises, in request order), per-beat bus time, the
"stream still busy after EN=0" window (EN reads 0 at once), and NDTR=0 at enable (no transfer).
A software EN clear of an active stream sets TCIF (RM0090 wording; unverified for RM0433).

Under ``DUOHIL_MODELS=native`` ``Stm32Dma(...)`` is a ``Stm32DmaNative``: the registers, the
streams' counters and the transfer engine live only in C (native/dma.c, ``_core.Dma``, its base
class), with the same bus accesses, scheduler events (times, names, order), IRQ edges and event log
as this model, which stays the reference (tests/test_native_dma.py compares the two).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

from ... import native
from ...kernel.peripheral import Peripheral, Signal
from ...kernel.regs import RO, W1T, Field, Register

N_STREAMS = 8
#: Bit offset of each stream's flag group within LISR/HISR (streams 0/4, 1/5, 2/6, 3/7).
GROUP_SHIFT = (0, 6, 16, 22)
#: Flag offsets inside a group.
FLAG_BITS = {"FEIF": 0, "DMEIF": 2, "TEIF": 3, "HTIF": 4, "TCIF": 5}
#: Memory DMA1/DMA2 cannot reach (ITCM, DTCM): an access there is a transfer error.
UNREACHABLE = ((0x0000_0000, 0x0001_0000), (0x2000_0000, 0x2002_0000))
#: Items a stream moves per service event before yielding (a request line stuck high in circular
#: mode must not hang the scheduler at one instant).
MAX_ITEMS_PER_SERVICE = 256

DIR_P2M, DIR_M2P, DIR_M2M = 0, 1, 2


class _Stream:
    """Internal counters of one stream (the registers hold what software programmed)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.request = False        # level of the DMAMUX request line
        self.span_ok = False        # the whole programmed span is reachable (checked at start)
        self.reload = 0             # NDTR programmed at enable (circular reload value)
        self.p_off = 0              # bytes advanced on the peripheral side (PINC)
        self.m_off = 0              # bytes advanced on the memory side (MINC)
        self.service_event = None
        self.latency_ps = 0
        self.last_delivery = 0      # keeps delayed flag deliveries in order
        self.pending: list = []     # delayed flag events not yet delivered
        self.transfers = 0          # items moved since reset (harness statistics)
        self.gen = 0                # incremented at each enable: a late EN clear hits only its own


class Stm32Dma(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("DMA.STM32DMA",)
    default_size: ClassVar[int] = 0x400

    def __new__(cls, *args: Any, **kwargs: Any) -> "Stm32Dma":
        # under DUOHIL_MODELS=native the whole model lives in C (Stm32DmaNative below)
        if cls is Stm32Dma and native.models() == "native":
            native_cls = native_class()
            return native_cls.__new__(native_cls)
        return super().__new__(cls)

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self._servicing = False         # inside _service: defer nested requests
        r = self.regs
        lo_fields, hi_fields, lo_clr, hi_clr = [], [], [], []
        for s in range(N_STREAMS):
            fl, cl = (lo_fields, lo_clr) if s < 4 else (hi_fields, hi_clr)
            for flag, bit in FLAG_BITS.items():
                fl.append(Field(f"{flag}{s}", GROUP_SHIFT[s % 4] + bit))
                cl.append(Field(f"C{flag}{s}", GROUP_SHIFT[s % 4] + bit))
        self.lisr = r.define(0x00, "LISR", access=RO, fields=lo_fields)
        self.hisr = r.define(0x04, "HISR", access=RO, fields=hi_fields)
        r.define(0x08, "LIFCR", access=W1T, fields=lo_clr, on_write=self._ifcr_written)
        r.define(0x0C, "HIFCR", access=W1T, fields=hi_clr, on_write=self._ifcr_written)
        self.cr: list[Register] = []
        self.ndtr: list[Register] = []
        self.par: list[Register] = []
        self.m0ar: list[Register] = []
        self.m1ar: list[Register] = []
        self.fcr: list[Register] = []
        for s in range(N_STREAMS):
            b = 0x10 + 0x18 * s
            self.cr.append(r.define(b, f"S{s}CR", fields=[
                Field("EN", 0), Field("DMEIE", 1), Field("TEIE", 2), Field("HTIE", 3),
                Field("TCIE", 4), Field("PFCTRL", 5), Field("DIR", 6, 2), Field("CIRC", 8),
                Field("PINC", 9), Field("MINC", 10), Field("PSIZE", 11, 2), Field("MSIZE", 13, 2),
                Field("PINCOS", 15), Field("PL", 16, 2), Field("DBM", 18), Field("CT", 19),
                Field("TRBUFF", 20), Field("PBURST", 21, 2), Field("MBURST", 23, 2)],
                on_write=self._cr_written))
            self.ndtr.append(r.define(b + 4, f"S{s}NDTR", fields=[Field("NDT", 0, 16)],
                                      on_write=self._locked_write))
            self.par.append(r.define(b + 8, f"S{s}PAR", fields=[Field("PA", 0, 32)],
                                     on_write=self._locked_write))
            self.m0ar.append(r.define(b + 0xC, f"S{s}M0AR", fields=[Field("M0A", 0, 32)],
                                      on_write=self._locked_write))
            self.m1ar.append(r.define(b + 0x10, f"S{s}M1AR", fields=[Field("M1A", 0, 32)],
                                      on_write=self._locked_write))
            self.fcr.append(r.define(b + 0x14, f"S{s}FCR", reset=0x21, fields=[
                Field("FTH", 0, 2, reset=1), Field("DMDIS", 2), Field("FS", 3, 3, access=RO, reset=4),
                Field("FEIE", 7)], on_write=self._locked_write))
        self._reg_stream = {}
        for s in range(N_STREAMS):
            for reg in (self.cr[s], self.ndtr[s], self.par[s], self.m0ar[s], self.m1ar[s], self.fcr[s]):
                self._reg_stream[reg.name] = s
        self.streams = [_Stream(s) for s in range(N_STREAMS)]
        self._irq_sig = [self.output(s) for s in range(N_STREAMS)]
        self._svc_names = [f"{self.name}.S{s}" for s in range(N_STREAMS)]

    # -- public knobs -------------------------------------------------------------------------------
    def set_completion_latency(self, stream: int, ps: int) -> None:
        """Delay between data landing and HTIF/TCIF (+ interrupt, + EN clear) on ``stream``."""
        if not 0 <= stream < N_STREAMS:
            raise ValueError(f"{self.name}: stream must be 0..{N_STREAMS - 1}, got {stream}")
        if ps < 0:
            raise ValueError(f"{self.name}: completion latency must be >= 0 ps, got {ps}")
        self.streams[stream].latency_ps = int(ps)

    def completion_latency(self, stream: int) -> int:
        return self.streams[stream].latency_ps

    # -- flags ------------------------------------------------------------------------------------------
    def _flag_reg(self, s: int) -> Register:
        return self.lisr if s < 4 else self.hisr

    def flag(self, s: int, name: str) -> int:
        """Current value of flag ``name`` (TCIF, HTIF, TEIF, DMEIF, FEIF) of stream ``s``."""
        return self._flag_reg(s).get(f"{name}{s}")

    def _set_flag(self, s: int, name: str) -> None:
        (self.lisr if s < 4 else self.hisr).value |= 1 << (GROUP_SHIFT[s % 4] + FLAG_BITS[name])

    def _update_irq(self, s: int) -> None:
        # raw words: flags of stream s shifted down to bit 0 (FEIF 0, DMEIF 2, TEIF 3, HTIF 4,
        # TCIF 5); SxCR enables DMEIE 1, TEIE 2, HTIE 3, TCIE 4; FCR.FEIE 7
        f = (self.lisr if s < 4 else self.hisr).value >> GROUP_SHIFT[s % 4]
        c = self.cr[s].value
        level = bool((f >> 5 & 1 and c >> 4 & 1) or (f >> 4 & 1 and c >> 3 & 1)
                     or (f >> 3 & 1 and c >> 2 & 1) or (f >> 2 & 1 and c >> 1 & 1)
                     or (f & 1 and self.fcr[s].value >> 7 & 1))
        sig = self._irq_sig[s]
        if level != sig.level:
            sig.set(level)

    def _ifcr_written(self, reg: Register, old: int, data: int) -> None:
        target = self.lisr if reg.name == "LIFCR" else self.hisr
        target.value &= ~data
        for s in (range(4) if reg.name == "LIFCR" else range(4, 8)):
            self._update_irq(s)

    # -- register writes -------------------------------------------------------------------------------
    def _locked_write(self, reg: Register, old: int, data: int) -> None:
        """NDTR, PAR, M0AR, M1AR and FCR are writable only while EN=0 (in DBM the idle memory
        address register may change on the fly)."""
        s = self._reg_stream[reg.name]
        cr = self.cr[s]
        if cr.EN:
            idle_mar = self.m1ar[s] if cr.CT == 0 else self.m0ar[s]
            if not (cr.DBM and reg is idle_mar):
                reg.value = old

    def _cr_written(self, reg: Register, old: int, data: int) -> None:
        s = self._reg_stream[reg.name]
        was_en = old & 1
        if was_en:
            # every field is frozen while the stream is enabled; only EN (and CT in DBM) move
            reg.value = (old & ~1) | (reg.value & 1)
            if not reg.EN:
                self._stop(s, software=True)
        elif reg.EN:
            self._start(s)
        self._update_irq(s)

    # -- the transfer engine -----------------------------------------------------------------------------
    def _start(self, s: int) -> None:
        st = self.streams[s]
        cr = self.cr[s]
        st.reload = self.ndtr[s].NDT
        st.gen += 1
        st.p_off = st.m_off = 0
        st.span_ok = self._span_ok(s)
        if cr.DIR == DIR_M2M or st.request:
            self._schedule_service(s)

    def _stop(self, s: int, software: bool) -> None:
        st = self.streams[s]
        if st.service_event is not None:
            st.service_event.cancel()
            st.service_event = None
        if software and self.ndtr[s].NDT != 0:
            self._set_flag(s, "TCIF")

    def set_input(self, line: int, level: bool) -> None:
        """Request line of stream ``line`` (from DMAMUX1 channel line or line + 8)."""
        st = self.streams[line]
        st.request = bool(level)
        if st.request and self.cr[line].value & 1:
            if self._servicing:
                self._schedule_service(line)     # a request raised by our own bus access
            else:
                self._service(line)              # at once: one event less per byte

    def _schedule_service(self, s: int) -> None:
        st = self.streams[s]
        if st.service_event is None:
            st.service_event = self.schedule(0, self._service, s, name=self._svc_names[s])

    def _service(self, s: int) -> None:
        st = self.streams[s]
        if st.service_event is not None:
            st.service_event.cancel()
            st.service_event = None
        cr = self.cr[s]
        ndtr = self.ndtr[s]
        m2m = (cr.value >> 6) & 3 == DIR_M2M
        move_one = self._move_one
        self._servicing = True
        try:
            for _ in range(MAX_ITEMS_PER_SERVICE):
                if not cr.value & 1 or not ndtr.value & 0xFFFF or not (m2m or st.request):
                    return
                if not move_one(s):
                    return
        finally:
            self._servicing = False
        if cr.value & 1 and ndtr.value & 0xFFFF and (m2m or st.request):
            self._schedule_service(s)

    def _move_one(self, s: int) -> bool:
        """Move one item; count NDTR; raise HT/TC. False after a transfer error.

        Hot (one call per UART byte): SxCR is read as a raw word, since every field is frozen
        while the stream is enabled (RM0433), and the reachability of the whole programmed span
        is checked once per start (``_span_ok``) instead of per item."""
        st = self.streams[s]
        cr = self.cr[s]
        c = cr.value
        size = 1 << min((c >> 11) & 3, 2)    # PSIZE; direct mode: MSIZE is forced to PSIZE
        direction = (c >> 6) & 3
        dbm = c >> 18 & 1
        par = (self.par[s].value + st.p_off) & 0xFFFF_FFFF
        mbase = self.m1ar[s].value if (dbm and c >> 19 & 1) else self.m0ar[s].value
        mar = (mbase + st.m_off) & 0xFFFF_FFFF
        if direction == DIR_P2M:
            src, dst = par, mar
        else:                                 # M2P and M2M: PAR is the source in M2M
            src, dst = (mar, par) if direction == DIR_M2P else (par, mar)
        if not st.span_ok and not (self._reachable(src, size) and self._reachable(dst, size)):
            self._transfer_error(s)
            return False
        self._bus_write(dst, self._bus_read(src, size))
        st.transfers += 1
        if c >> 9 & 1:                        # PINC
            st.p_off += size
        if c >> 10 & 1:                       # MINC
            st.m_off += size
        ndtr = self.ndtr[s]
        ndt = (ndtr.value & 0xFFFF) - 1
        ndtr.value = (ndtr.value & ~0xFFFF) | ndt
        if ndt == st.reload // 2 and st.reload >= 2:
            self._complete(s, "HTIF")
        if ndt == 0:
            if c >> 8 & 1 or dbm:             # CIRC or DBM
                ndtr.value = (ndtr.value & ~0xFFFF) | st.reload
                st.p_off = st.m_off = 0
                if dbm:
                    cr.set(CT=cr.CT ^ 1)
                    st.span_ok = self._span_ok(s)
                self._complete(s, "TCIF")
            else:
                self._complete(s, "TCIF", end=True)
        return True

    def _span_ok(self, s: int) -> bool:
        """True when every item of the programmed transfer is reachable by this DMA, so the
        per-item check can be skipped; False means check each item (a TE happens at its item)."""
        cr = self.cr[s]
        size = 1 << min(cr.PSIZE, 2)
        n = self.streams[s].reload
        if n == 0:
            return False
        par = self.par[s].PA
        mar = self.m1ar[s].M1A if (cr.DBM and cr.CT) else self.m0ar[s].M0A
        pspan = n * size if cr.PINC else size
        mspan = n * size if cr.MINC else size
        if cr.DBM:
            other = self.m0ar[s].M0A if cr.CT else self.m1ar[s].M1A
            if not self._reachable(other, mspan):
                return False
        return self._reachable(par, pspan) and self._reachable(mar, mspan)

    def _complete(self, s: int, flag: str, end: bool = False) -> None:
        """HTIF/TCIF (and, for ``end``, EN cleared), now or after the stream's latency."""
        st = self.streams[s]
        if st.latency_ps == 0 and not st.pending:
            self._deliver(s, flag, end, st.gen, None)
            return
        t = max(self.now() + st.latency_ps, st.last_delivery)
        st.last_delivery = t
        ev = self.schedule_at(t, self._deliver, s, flag, end, st.gen, None,
                              name=f"{self.name}.S{s}.{flag}")
        ev.args = (s, flag, end, st.gen, ev)
        st.pending.append(ev)

    def _deliver(self, s: int, flag: str, end: bool, gen: int, ev) -> None:
        st = self.streams[s]
        if ev is not None and ev in st.pending:
            st.pending.remove(ev)
        self._set_flag(s, flag)
        if end and gen == st.gen:
            self.cr[s].set(EN=0)
        self._update_irq(s)

    def _transfer_error(self, s: int) -> None:
        self._set_flag(s, "TEIF")
        self.cr[s].set(EN=0)
        self._stop(s, software=False)
        self.machine.record("dma_transfer_error", dma=self.name, stream=s)
        self._update_irq(s)

    def _bus_read(self, address: int, size: int) -> bytes:
        """A peripheral register through the bus (side effects such as RXNE clearing happen),
        memory through the DMA port (the D-cache's bus view)."""
        m = self.machine
        hit = m.bus_target(address)
        if hit is not None:
            return hit[0](hit[2], size).to_bytes(size, "little")
        return m.dma_port.read(address, size)

    def _bus_write(self, address: int, data: bytes) -> None:
        m = self.machine
        if m.bus_target(address) is not None:
            m.bus_write(address, len(data), int.from_bytes(data, "little"))
        else:
            m.dma_port.write(address, data)

    def _reachable(self, address: int, size: int) -> bool:
        end = address + size
        for lo, hi in UNREACHABLE:
            if address < hi and lo < end:
                return False
        if self.machine.peripheral_at(address) is not None:
            return True
        return any(b <= address and end <= b + n for _name, b, n in self.machine.memories)

    def reset(self) -> None:
        for st in self.streams:
            if st.service_event is not None:
                st.service_event.cancel()
            for ev in st.pending:
                ev.cancel()
        super().reset()
        latencies = [st.latency_ps for st in self.streams]
        requests = [st.request for st in self.streams]
        self.streams = [_Stream(s) for s in range(N_STREAMS)]
        for st, lat, req in zip(self.streams, latencies, requests):
            st.latency_ps = lat        # a harness knob, not chip state: survives a chip reset
            st.request = req           # request lines are wires: the source resets them itself
        for s in range(N_STREAMS):
            self.output(s).set(False)


_native_cls: type | None = None


def native_class() -> type:
    """Stm32DmaNative: _core.Dma (the registers, counters and transfer engine in C) under this
    model's Python face (its knobs and views); made once the native core is loaded."""
    global _native_cls
    if _native_cls is None:
        core = native.core()

        class Stm32DmaNative(core.Dma, Stm32Dma):      # type: ignore[name-defined,misc]
            """Stm32Dma with its state only in C: read/write/set_input/reset are C methods of
            _core.Dma; ``streams`` and ``flag`` read the C state back."""

            renode_types: ClassVar[tuple[str, ...]] = ()   # Stm32Dma claims the type and picks us

            def __init__(self, machine, name, base, size=None, props=None) -> None:
                Peripheral.__init__(self, machine, name, base, size, props)
                self._bind(machine, self.name, [self.output(s) for s in range(N_STREAMS)], Signal)
                # a transfer to or from a register finds it in the machine's C bus table, as
                # MachineNative's bus_target/bus_write would (a machine that overrides them is
                # still called)
                from ...kernel.machine import MachineNative
                cls = type(machine)
                if isinstance(machine, MachineNative) and cls.bus_target is MachineNative.bus_target \
                        and cls.bus_write is MachineNative.bus_write:
                    self._set_bus(machine._bus)

            def set_completion_latency(self, stream: int, ps: int) -> None:
                if not 0 <= stream < N_STREAMS:
                    raise ValueError(f"{self.name}: stream must be 0..{N_STREAMS - 1}, got {stream}")
                if ps < 0:
                    raise ValueError(f"{self.name}: completion latency must be >= 0 ps, got {ps}")
                self._set_latency(stream, int(ps))

            def completion_latency(self, stream: int) -> int:
                return self.stream_state(stream)["latency_ps"]

            @property
            def streams(self) -> list[SimpleNamespace]:     # type: ignore[override]
                """Snapshots of the streams' counters (read-only views of the C state)."""
                return [SimpleNamespace(n=s, **self.stream_state(s)) for s in range(N_STREAMS)]

        _native_cls = Stm32DmaNative
    return _native_cls
