//
// duohil: the register behaviour of our Renode models, in plain C# that touches no Renode type.
//
// The Renode-facing classes (DuohilH7Dma.cs, DuohilH7Usart.cs) wrap these cores; tests/renode_cs/
// CoreTests.cs runs them under mono against register-sequence vectors that tests/test_renode_cs.py
// replays on the builtin engine's Python models (duohil/engines/builtin/soc/stm32h7/stm32_dma.py, stm32_usart.py),
// so both engines' models answer the same writes with the same reads. Names are RM0433's.
//
// Time is integer picoseconds, as in the builtin engine; the host (Renode or the test clock) supplies
// "now" and runs a callback after a delay. Cancelling is done with generation counters: a callback
// whose generation is stale does nothing.
//
using System;
using System.Collections.Generic;

namespace Antmicro.Renode.Duohil
{
    public interface IDuohilClock
    {
        ulong NowPs { get; }
        // Run `action` `delayPs` from now; same-time callbacks run in the order they were scheduled.
        void After(ulong delayPs, Action action);
    }

    public interface IDuohilDmaBus
    {
        uint Read(ulong address, int size);
        void Write(ulong address, int size, uint value);
        // False: the DMA cannot reach it (ITCM/DTCM, or nothing mapped) -> transfer error.
        bool Reachable(ulong address, int size);
    }

    // STM32H7 DMA1/DMA2 (RM0433 "DMA controller"): 8 streams, LISR/HISR/LIFCR/HIFCR, SxCR/NDTR/PAR/M0AR/
    // M1AR/FCR. Circular mode (and DBM), HTIF/TCIF/TEIF with their interrupts, EN cleared at the end of a
    // normal transfer and on a transfer error, one PSIZE item per request (memory-to-peripheral paced by
    // the peripheral's request, as on silicon), and a completion latency per stream: data and NDTR move at
    // once, HTIF/TCIF, the interrupt and the EN clear follow `latency` later, in order.
    // Not modelled (as the builtin model): FIFO mode (DMDIS=1 acts as direct mode), bursts, PINCOS,
    // priorities, FEIF/DMEIF.
    public sealed class H7DmaCore
    {
        public const int Streams = 8;
        public const int MaxItemsPerService = 256;
        static readonly int[] GroupShift = { 0, 6, 16, 22 };
        const int FEIF = 0, DMEIF = 2, TEIF = 3, HTIF = 4, TCIF = 5;

        public H7DmaCore(IDuohilClock clock, IDuohilDmaBus bus, Action<int, bool> irq)
        {
            this.clock = clock;
            this.bus = bus;
            this.irq = irq;
            latency = new ulong[Streams];
            request = new bool[Streams];
            Reset();
        }

        public void Reset()
        {
            lisr = hisr = 0;
            cr = new uint[Streams];
            ndtr = new uint[Streams];
            par = new uint[Streams];
            m0ar = new uint[Streams];
            m1ar = new uint[Streams];
            fcr = new uint[Streams];
            reload = new uint[Streams];
            pOff = new uint[Streams];
            mOff = new uint[Streams];
            gen = new int[Streams];
            lastDelivery = new ulong[Streams];
            pending = new int[Streams];
            serviceQueued = new bool[Streams];
            irqLevel = new bool[Streams];
            epoch++;
            for(var s = 0; s < Streams; s++)
            {
                fcr[s] = 0x21;
                irq(s, false);
            }
            // latency (a harness knob) and request levels (wires) survive a reset
        }

        public void SetCompletionLatency(int stream, ulong ps)
        {
            if(stream < 0 || stream >= Streams)
            {
                throw new ArgumentException($"stream must be 0..{Streams - 1}, got {stream}");
            }
            latency[stream] = ps;
        }

        public ulong CompletionLatency(int stream) { return latency[stream]; }

        public uint Read(long offset)
        {
            if(offset == 0x00) return lisr;
            if(offset == 0x04) return hisr;
            if(offset < 0x10 || offset >= 0x10 + 0x18 * Streams) return 0;
            var s = (int)((offset - 0x10) / 0x18);
            switch((offset - 0x10) % 0x18)
            {
                case 0x00: return cr[s];
                case 0x04: return ndtr[s];
                case 0x08: return par[s];
                case 0x0C: return m0ar[s];
                case 0x10: return m1ar[s];
                case 0x14: return fcr[s];
            }
            return 0;
        }

        public void Write(long offset, uint value)
        {
            if(offset == 0x08 || offset == 0x0C)            // LIFCR / HIFCR
            {
                if(offset == 0x08) lisr &= ~value; else hisr &= ~value;
                var first = offset == 0x08 ? 0 : 4;
                for(var s = first; s < first + 4; s++) UpdateIrq(s);
                return;
            }
            if(offset < 0x10 || offset >= 0x10 + 0x18 * Streams) return;
            var n = (int)((offset - 0x10) / 0x18);
            var en = (cr[n] & 1) != 0;
            switch((offset - 0x10) % 0x18)
            {
                case 0x00: WriteCr(n, value); return;
                case 0x04: if(!en) ndtr[n] = value; return;
                case 0x08: if(!en) par[n] = value; return;
                case 0x0C: if(!en || IdleMarWritable(n, false)) m0ar[n] = value; return;
                case 0x10: if(!en || IdleMarWritable(n, true)) m1ar[n] = value; return;
                case 0x14: if(!en) fcr[n] = (value & ~0x38u) | (fcr[n] & 0x38u); return;   // FS is read-only
            }
        }

        // A DMAMUX request line (stream number).
        public void OnRequest(int stream, bool level)
        {
            request[stream] = level;
            if(level && (cr[stream] & 1) != 0)
            {
                if(servicing) QueueService(stream); else Service(stream);
            }
        }

        public bool IrqLevel(int stream) { return irqLevel[stream]; }

        public ulong Transfers { get; private set; }

        bool IdleMarWritable(int s, bool m1)
        {
            var dbm = (cr[s] >> 18 & 1) != 0;
            var ct = (cr[s] >> 19 & 1) != 0;
            return dbm && (m1 ? !ct : ct);
        }

        void WriteCr(int s, uint value)
        {
            var old = cr[s];
            if((old & 1) != 0)
            {
                cr[s] = (old & ~1u) | (value & 1);             // every field but EN is frozen while enabled
                if((value & 1) == 0) Stop(s, true);
            }
            else
            {
                cr[s] = value;
                if((value & 1) != 0) Start(s);
            }
            UpdateIrq(s);
        }

        void Start(int s)
        {
            reload[s] = ndtr[s] & 0xFFFF;
            gen[s]++;
            pOff[s] = mOff[s] = 0;
            if(Dir(s) == 2 || request[s]) QueueService(s);
        }

        void Stop(int s, bool software)
        {
            serviceQueued[s] = false;
            gen[s]++;                                           // a queued service of the old run is void
            if(software && (ndtr[s] & 0xFFFF) != 0) SetFlag(s, TCIF);
        }

        uint Dir(int s) { return cr[s] >> 6 & 3; }

        void QueueService(int s)
        {
            if(serviceQueued[s]) return;
            serviceQueued[s] = true;
            var g = gen[s];
            var e = epoch;
            clock.After(0, () =>
            {
                if(e != epoch || g != gen[s] || !serviceQueued[s]) return;
                Service(s);
            });
        }

        void Service(int s)
        {
            serviceQueued[s] = false;
            var m2m = Dir(s) == 2;
            servicing = true;
            try
            {
                for(var i = 0; i < MaxItemsPerService; i++)
                {
                    if((cr[s] & 1) == 0 || (ndtr[s] & 0xFFFF) == 0 || !(m2m || request[s])) return;
                    if(!MoveOne(s)) return;
                }
            }
            finally
            {
                servicing = false;
            }
            if((cr[s] & 1) != 0 && (ndtr[s] & 0xFFFF) != 0 && (m2m || request[s])) QueueService(s);
        }

        bool MoveOne(int s)
        {
            var c = cr[s];
            var psize = (int)Math.Min(c >> 11 & 3, 2u);
            var size = 1 << psize;
            var dir = c >> 6 & 3;
            var dbm = (c >> 18 & 1) != 0;
            var pa = par[s] + pOff[s];
            var ma = ((dbm && (c >> 19 & 1) != 0) ? m1ar[s] : m0ar[s]) + mOff[s];
            uint src, dst;
            if(dir == 0) { src = pa; dst = ma; }
            else if(dir == 1) { src = ma; dst = pa; }
            else { src = pa; dst = ma; }                        // M2M: PAR is the source
            if(!bus.Reachable(src, size) || !bus.Reachable(dst, size))
            {
                TransferError(s);
                return false;
            }
            bus.Write(dst, size, bus.Read(src, size));
            Transfers++;
            if((c >> 9 & 1) != 0) pOff[s] += (uint)size;
            if((c >> 10 & 1) != 0) mOff[s] += (uint)size;
            var ndt = (ndtr[s] & 0xFFFF) - 1;
            ndtr[s] = (ndtr[s] & ~0xFFFFu) | ndt;
            if(ndt == reload[s] / 2 && reload[s] >= 2) Complete(s, HTIF, false);
            if(ndt == 0)
            {
                if((c >> 8 & 1) != 0 || dbm)
                {
                    ndtr[s] = (ndtr[s] & ~0xFFFFu) | reload[s];
                    pOff[s] = mOff[s] = 0;
                    if(dbm) cr[s] ^= 1u << 19;                  // CT toggles
                    Complete(s, TCIF, false);
                }
                else
                {
                    Complete(s, TCIF, true);
                }
            }
            return true;
        }

        void Complete(int s, int flag, bool end)
        {
            var g = gen[s];
            if(latency[s] == 0 && pending[s] == 0)
            {
                Deliver(s, flag, end, g);
                return;
            }
            var now = clock.NowPs;
            var t = Math.Max(now + latency[s], lastDelivery[s]);
            lastDelivery[s] = t;
            pending[s]++;
            var e = epoch;
            clock.After(t - now, () =>
            {
                if(e != epoch) return;
                pending[s]--;
                Deliver(s, flag, end, g);
            });
        }

        void Deliver(int s, int flag, bool end, int g)
        {
            SetFlag(s, flag);
            if(end && g == gen[s]) cr[s] &= ~1u;
            UpdateIrq(s);
        }

        void TransferError(int s)
        {
            SetFlag(s, TEIF);
            cr[s] &= ~1u;
            Stop(s, false);
            UpdateIrq(s);
        }

        void SetFlag(int s, int bit)
        {
            var mask = 1u << (GroupShift[s % 4] + bit);
            if(s < 4) lisr |= mask; else hisr |= mask;
        }

        void UpdateIrq(int s)
        {
            var f = (s < 4 ? lisr : hisr) >> GroupShift[s % 4];
            var c = cr[s];
            var level = ((f >> TCIF & 1) != 0 && (c >> 4 & 1) != 0) || ((f >> HTIF & 1) != 0 && (c >> 3 & 1) != 0)
                || ((f >> TEIF & 1) != 0 && (c >> 2 & 1) != 0) || ((f >> DMEIF & 1) != 0 && (c >> 1 & 1) != 0)
                || ((f >> FEIF & 1) != 0 && (fcr[s] >> 7 & 1) != 0);
            if(level != irqLevel[s])
            {
                irqLevel[s] = level;
                irq(s, level);
            }
        }

        readonly IDuohilClock clock;
        readonly IDuohilDmaBus bus;
        readonly Action<int, bool> irq;
        readonly ulong[] latency;
        readonly bool[] request;
        uint lisr, hisr;
        uint[] cr, ndtr, par, m0ar, m1ar, fcr, reload, pOff, mOff;
        int[] gen, pending;
        ulong[] lastDelivery;
        bool[] serviceQueued, irqLevel;
        bool servicing;
        int epoch;
    }

    // STM32H7 USART (RM0433 "USART/UART"), FIFO off: TX paced at the programmed baud (TDR -> shift
    // register; TXE low while TDR is full, TC after the last stop bit), baud from kernel clock / PRESC /
    // BRR with OVER8, a one-character RDR with ORE (unless CR3.OVRDIS), IDLE one character time after the
    // last stop bit (once per burst), RTOF after CR2.RTOEN and RTOR.RTO bit times, and the DMA request
    // lines (RX: DMAR and RXNE; TX: DMAT, TXE, UE and TE). The same behaviour as the builtin model.
    // Not modelled: FIFO mode, parity checking, noise, break, LIN, smartcard, IrDA, auto-baud, flow control.
    public sealed class H7UsartCore
    {
        static readonly uint[] PrescDiv = { 1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256 };
        const ulong PsPerS = 1000000000000UL;
        // ICR bits that clear the ISR flag at the same position: PE FE NE ORE IDLE TC LBD CTS RTO EOB UDR CM WU
        const uint SameBitClears = 0x1Fu | 1u << 6 | 1u << 8 | 1u << 9 | 1u << 11 | 1u << 12 | 1u << 13 | 1u << 17 | 1u << 20;

        public H7UsartCore(IDuohilClock clock, ulong kernelHz, Action<bool> irq, Action<bool> rxRequest,
                           Action<bool> txRequest, Action<byte, ulong> transmit)
        {
            this.clock = clock;
            this.defaultKernelHz = kernelHz;
            this.irq = irq;
            this.rxRequest = rxRequest;
            this.txRequest = txRequest;
            this.transmit = transmit;
            Reset();
        }

        public ulong KernelHz { get; set; }
        public ulong RxCount { get; private set; }
        public ulong RxOverruns { get; private set; }
        public ulong RxDropped { get; private set; }

        public void Reset()
        {
            cr1 = cr2 = cr3 = brr = gtpr = rtor = rdr = tdr = presc = 0;
            isr = 0xC0;                                       // TC, TXE
            KernelHz = defaultKernelHz;
            tdrFull = false;
            shiftFreeAt = 0;
            txGen++; idleGen++; rtoGen++;
            txBusy = false;
            irqLevel = rxReqLevel = txReqLevel = true;        // force the first update to drive the lines
            Update();
        }

        public uint Read(long offset)
        {
            switch(offset)
            {
                case 0x00: return cr1;
                case 0x04: return cr2;
                case 0x08: return cr3;
                case 0x0C: return brr;
                case 0x10: return gtpr;
                case 0x14: return rtor;
                case 0x1C: return isr;
                case 0x24:
                    if((isr & 0x20) != 0) { isr &= ~0x20u; Update(); }
                    return rdr;
                case 0x28: return tdr;
                case 0x2C: return presc;
            }
            return 0;                                          // RQR, ICR: write-only
        }

        public void Write(long offset, uint value)
        {
            switch(offset)
            {
                case 0x00: WriteCr1(value); break;
                case 0x04:
                    cr2 = value;
                    if((cr2 & (1u << 23)) == 0) rtoGen++;
                    Update();
                    break;
                case 0x08: cr3 = value; Update(); break;
                case 0x0C: if((cr1 & 1) == 0) brr = value; break;
                case 0x10: gtpr = value; break;
                case 0x14: rtor = value; break;
                case 0x18:                                     // RQR
                    if((value & (1u << 3)) != 0) isr &= ~0x20u;
                    if((value & (1u << 4)) != 0 && tdrFull) { tdrFull = false; isr |= 0x80; }
                    Update();
                    break;
                case 0x20:                                     // ICR: xxCF clears the ISR flag at the same bit
                    var clear = value & SameBitClears;
                    if((value & (1u << 5)) != 0) clear |= 1u << 23;        // TXFECF -> TXFE
                    if((value & (1u << 7)) != 0) clear |= 1u << 25;        // TCBGTCF -> TCBGT
                    if(clear != 0) { isr &= ~clear; Update(); }
                    break;
                case 0x28: WriteTdr(value); break;
                case 0x2C: if((cr1 & 1) == 0) presc = value; break;
            }
        }

        // A character whose stop bit arrives now (the link calls this at the arrival time).
        public void ReceiveChar(byte value)
        {
            if((cr1 & 5) != 5) { RxDropped++; return; }        // UE and RE
            RxCount++;
            var dataBits = DataBits();
            if((isr & 0x20) != 0 && (cr3 & (1u << 12)) == 0)
            {
                isr |= 0x08;                                   // ORE: RDR keeps its byte, this one is lost
                RxOverruns++;
            }
            else
            {
                rdr = (rdr & ~0x1FFu) | ((uint)value & ((1u << dataBits) - 1) & 0x1FF);
                isr |= 0x20;
            }
            var bit = BitPs();
            var charPs = CharPs(bit);
            var g = ++idleGen;
            clock.After(charPs ?? 0, () =>
            {
                if(g != idleGen) return;
                if((cr1 & 5) == 5) { isr |= 0x10; Update(); }
            });
            rtoGen++;
            if((cr2 & (1u << 23)) != 0)
            {
                var r = ++rtoGen;
                clock.After((rtor & 0xFFFFFF) * (bit ?? 0), () =>
                {
                    if(r != rtoGen) return;
                    if((cr2 & (1u << 23)) != 0 && (cr1 & 5) == 5) { isr |= 1u << 11; Update(); }
                });
            }
            Update();
        }

        // Bits per character, doubled (21 for 1.5 stop bits with 8 data bits).
        public int FrameHalfBits()
        {
            var stopHalf = new[] { 2, 1, 4, 3 }[(int)(cr2 >> 12 & 3)];
            return 2 * (1 + DataBits()) + stopHalf;
        }

        public ulong? BitPs()
        {
            var b = brr & 0xFFFF;
            if(b < 16 || KernelHz == 0) return null;
            var div = PrescDiv[Math.Min((int)(presc & 0xF), PrescDiv.Length - 1)];
            if((cr1 & (1u << 15)) != 0)
            {
                var usartdiv = (b & 0xFFF0) | ((b & 7) << 1);
                return usartdiv * div * PsPerS / (2 * KernelHz);
            }
            return b * div * PsPerS / KernelHz;
        }

        public uint BaudRate
        {
            get { var b = BitPs(); return b == null ? 0 : (uint)(PsPerS / b.Value); }
        }

        // CR2.STOP: 0 = 1, 1 = 0.5, 2 = 2, 3 = 1.5 stop bits.
        public int StopCode => (int)(cr2 >> 12 & 3);

        // CR1.PCE and CR1.PS (1 = odd).
        public bool ParityEnabled => (cr1 >> 10 & 1) != 0;
        public bool ParityOdd => (cr1 >> 9 & 1) != 0;

        ulong? CharPs(ulong? bit)
        {
            if(bit == null) return null;
            // round(half / 2 * bit), ties to even like the builtin model's round()
            var twice = (ulong)FrameHalfBits() * bit.Value;
            var q = twice / 2;
            if(twice % 2 == 1 && q % 2 == 1) q++;
            return q;
        }

        int DataBits()
        {
            var m = (int)((cr1 >> 28 & 1) << 1 | (cr1 >> 12 & 1));
            return m == 1 ? 9 : m == 2 ? 7 : 8;
        }

        void WriteCr1(uint value)
        {
            var old = cr1;
            var wasUe = (old & 1) != 0;
            cr1 = value;
            if(wasUe)
            {
                const uint locked = (1u << 12) | (1u << 28) | (1u << 15) | (1u << 29);   // M0 M1 OVER8 FIFOEN
                cr1 = (cr1 & ~locked) | (old & locked);
            }
            if((cr1 & 1) == 0)
            {
                if(wasUe)
                {
                    txGen++; idleGen++; rtoGen++;
                    txBusy = false;
                    tdrFull = false;
                    isr = 0xC0;
                }
            }
            else
            {
                isr = (isr & ~(3u << 21)) | ((cr1 >> 3 & 1) << 21) | ((cr1 >> 2 & 1) << 22);   // TEACK REACK
                if((cr1 & 8) != 0) TxTryStart();
            }
            Update();
        }

        void WriteTdr(uint value)
        {
            tdr = value;
            if((cr1 & 1) == 0) return;
            tdrFull = true;
            isr &= ~0xC0u;
            TxTryStart();
            Update();
        }

        void TxTryStart()
        {
            if(!(tdrFull && (cr1 & 9) == 9)) return;
            if(txBusy) return;
            var bit = BitPs();
            var charPs = CharPs(bit);
            if(charPs == null) return;
            var dataBits = DataBits();
            var b = tdr & 0x1FF & ((1u << dataBits) - 1);
            if((cr1 & (1u << 10)) != 0) b &= (1u << (dataBits - 1)) - 1;
            var now = clock.NowPs;
            var t0 = Math.Max(now, shiftFreeAt);
            tdrFull = false;
            isr |= 0x80;
            shiftFreeAt = t0 + charPs.Value;
            transmit((byte)b, t0);
            txBusy = true;
            var g = ++txGen;
            clock.After(shiftFreeAt - now, () =>
            {
                if(g != txGen) return;
                txBusy = false;
                if(tdrFull && (cr1 & 8) != 0) TxTryStart();
                if(!tdrFull && !txBusy) isr |= 0x40;
                Update();
            });
        }

        void Update()
        {
            var eie = (cr3 & 1) != 0;
            var level = (isr & cr1 & 0xF0) != 0
                || ((isr & 1) != 0 && (cr1 >> 8 & 1) != 0)
                || ((isr >> 11 & 1) != 0 && (cr1 >> 26 & 1) != 0)
                || ((isr >> 3 & 1) != 0 && ((cr1 >> 5 & 1) != 0 || eie))
                || ((isr & 6) != 0 && eie);
            if(level != irqLevel) { irqLevel = level; irq(level); }
            var rx = (cr3 >> 6 & 1) != 0 && (isr >> 5 & 1) != 0;
            if(rx != rxReqLevel) { rxReqLevel = rx; rxRequest(rx); }
            var tx = (cr3 >> 7 & 1) != 0 && (isr >> 7 & 1) != 0 && (cr1 & 9) == 9;
            if(tx != txReqLevel) { txReqLevel = tx; txRequest(tx); }
        }

        readonly IDuohilClock clock;
        readonly ulong defaultKernelHz;
        readonly Action<bool> irq, rxRequest, txRequest;
        readonly Action<byte, ulong> transmit;
        uint cr1, cr2, cr3, brr, gtpr, rtor, isr, rdr, tdr, presc;
        bool tdrFull, txBusy, irqLevel, rxReqLevel, txReqLevel;
        ulong shiftFreeAt;
        int txGen, idleGen, rtoGen;
    }

    // ESP32-C3 UART (ESP-IDF soc/esp32c3/register/soc/uart_reg.h names): 128-byte RX and TX FIFOs with
    // live STATUS counts, INT_RAW/INT_ST/INT_ENA/INT_CLR driving IRQ, TX drained one character time per
    // byte at the programmed baud (CLK_CONF source and divider, CLKDIV + FRAG/16), RXFIFO_FULL and
    // TXFIFO_EMPTY as level conditions, RXFIFO_TOUT / RXFIFO_OVF / FRM_ERR / TX_DONE latched until
    // INT_CLR, FIFO resets and LOOPBACK. The same behaviour as duohil/engines/builtin/soc/esp32c3/esp32c3_uart.py.
    // Not modelled: parity, break, flow control, autobaud, RS485, AT_CMD, glitch filter, wake-up.
    public sealed class Esp32C3UartCore
    {
        public const int FifoLength = 128;
        public const uint RxFifoFull = 1u << 0, TxFifoEmpty = 1u << 1, FrmErr = 1u << 3, RxFifoOvf = 1u << 4,
                          RxFifoTout = 1u << 8, TxDone = 1u << 14, IntAll = 0x7FFFF;
        const ulong PsPerS = 1000000000000UL;

        public Esp32C3UartCore(IDuohilClock clock, Action<bool> irq, Action<byte, ulong> transmit)
        {
            this.clock = clock;
            this.irq = irq;
            this.transmit = transmit;
            Reset();
        }

        public ulong RxOverruns { get; private set; }
        public ulong TxOverflows { get; private set; }

        public void Reset()
        {
            regs = new Dictionary<long, uint>
            {
                { 0x0C, 0 }, { 0x14, 694 }, { 0x18, 8 }, { 0x20, 0x1000001C }, { 0x24, 0xC060 },
                { 0x34, 0 }, { 0x38, 0xF0 }, { 0x3C, 0x13E0 }, { 0x40, 0x1100 }, { 0x44, 0xA },
                { 0x48, 0x40100 }, { 0x4C, 0 }, { 0x60, 0xA0012 }, { 0x78, 0x3701000 },
                { 0x7C, 0x02008270 }, { 0x80, 0x40000500 },
            };
            rx.Clear();
            tx.Clear();
            latched = 0;
            txBusy = false;
            txGen++; toutGen++;
            irqLevel = true;
            Update();
        }

        public uint Read(long offset)
        {
            switch(offset)
            {
                case 0x00:
                    if(rx.Count == 0) return 0;
                    var b = rx.Dequeue();
                    Update();
                    return b;
                case 0x04: return IntRaw();
                case 0x08: return IntRaw() & regs[0x0C];
                case 0x10: return 0;
                case 0x1C: return 0xE000C000u | (uint)Math.Min(rx.Count, 0x3FF) | ((uint)tx.Count << 16);
                case 0x6C: return txBusy ? 0x10u : 0u;
            }
            uint v;
            return regs.TryGetValue(offset, out v) ? v : 0;
        }

        public void Write(long offset, uint value)
        {
            switch(offset)
            {
                case 0x00: WriteFifo(value); return;
                case 0x04: case 0x08: case 0x1C: case 0x6C: return;          // read-only
                case 0x10: latched &= ~value; Update(); return;             // INT_CLR
            }
            if(!regs.ContainsKey(offset)) return;
            regs[offset] = value;
            if(offset == 0x20)
            {
                if((value >> 17 & 1) != 0) rx.Clear();
                if((value >> 18 & 1) != 0) tx.Clear();
                Update();
            }
            else if(offset == 0x0C || offset == 0x24)
            {
                Update();
            }
            else if(offset == 0x14 || offset == 0x78)
            {
                if(!txBusy && tx.Count > 0) { TxStart(clock.NowPs); Update(); }
            }
        }

        // A character whose stop bit arrives now.
        public void ReceiveChar(byte value, bool framingError = false)
        {
            if(RxBitPs() == null) return;
            var c0 = regs[0x20];
            if(framingError) latched |= FrmErr;
            if((c0 >> 17 & 1) != 0 || (framingError && (c0 >> 26 & 1) != 0))
            {
            }
            else if(rx.Count >= FifoLength)
            {
                RxOverruns++;
                if((regs[0x24] >> 18 & 1) == 0) latched |= RxFifoOvf;
            }
            else
            {
                rx.Enqueue(value);
            }
            var g = ++toutGen;
            var thr = regs[0x60] >> 16 & 0x3FF;
            var bt = RxBitPs();
            if((regs[0x24] >> 21 & 1) != 0 && thr != 0 && bt != null)
            {
                clock.After(thr * bt.Value, () =>
                {
                    if(g != toutGen) return;
                    if(rx.Count > 0 && (regs[0x24] >> 21 & 1) != 0) { latched |= RxFifoTout; Update(); }
                });
            }
            Update();
        }

        // The transmitter's bit time in ps (null: clock off or divider 0).
        public ulong? BitPs()
        {
            var clk = regs[0x78];
            ulong sclk;
            switch(clk >> 20 & 3)
            {
                case 1: sclk = 80000000; break;
                case 2: sclk = 17500000; break;
                case 3: sclk = 40000000; break;
                default: return null;
            }
            var div = regs[0x14];
            var clkdiv = div & 0xFFF;
            var frag = div >> 20 & 0xF;
            if((clk >> 22 & 1) == 0 || (clkdiv == 0 && frag == 0)) return null;
            decimal b = clk & 0x3F, a = clk >> 6 & 0x3F, num = (clk >> 12 & 0xFF) + 1;
            decimal pre = b != 0 ? num * b + a : num, preDen = b != 0 ? b : 1;
            var n = pre * (16 * (decimal)clkdiv + frag) * PsPerS;
            var d = preDen * 16 * sclk;
            return RoundHalfEven(n, d);
        }

        public ulong? RxBitPs()
        {
            return (regs[0x78] >> 25 & 1) == 0 ? null : BitPs();
        }

        public uint BaudRate { get { var b = BitPs(); return b == null ? 0 : (uint)(PsPerS / b.Value); } }

        public ulong? CharPs()
        {
            var bt = BitPs();
            if(bt == null) return null;
            var c0 = regs[0x20];
            var half = 2 * (1 + 5 + (c0 >> 2 & 3) + (c0 >> 1 & 1)) + new uint[] { 2, 2, 3, 4 }[c0 >> 4 & 3];
            return RoundHalfEven((decimal)half * bt.Value, 2);
        }

        public int RxCount => rx.Count;

        // CONF0.STOP_BIT_NUM: 1 = 1, 2 = 1.5, 3 = 2 stop bits (0 behaves as 1). CONF0.PARITY_EN, PARITY (1 = odd).
        public int StopCode => (int)(regs[0x20] >> 4 & 3);
        public bool ParityEnabled => (regs[0x20] >> 1 & 1) != 0;
        public bool ParityOdd => (regs[0x20] & 1) != 0;

        static ulong RoundHalfEven(decimal n, decimal d)
        {
            var q = decimal.Floor(n / d);
            var r = n - q * d;
            if(2 * r > d || (2 * r == d && q % 2 == 1)) q += 1;
            return (ulong)q;
        }

        uint IntRaw()
        {
            var c1 = regs[0x24];
            var raw = latched;
            if(rx.Count > 0 && rx.Count >= (c1 & 0x1FF)) raw |= RxFifoFull;
            if(tx.Count <= (c1 >> 9 & 0x1FF)) raw |= TxFifoEmpty;
            return raw;
        }

        void WriteFifo(uint value)
        {
            if((regs[0x20] >> 18 & 1) != 0) return;
            if(tx.Count >= FifoLength) { TxOverflows++; return; }
            tx.Enqueue((byte)value);
            if(!txBusy) TxStart(clock.NowPs);
            Update();
        }

        void TxStart(ulong t)
        {
            var charPs = CharPs();
            if(tx.Count == 0 || charPs == null || (regs[0x78] >> 24 & 1) == 0)
            {
                txBusy = false;
                return;
            }
            var b = tx.Dequeue();
            txBusy = true;
            txEnd = t + charPs.Value;
            var now = clock.NowPs;
            if((regs[0x20] >> 14 & 1) != 0)
            {
                clock.After(txEnd - now, () => ReceiveChar(b));
            }
            else
            {
                transmit(b, t);
            }
            var g = ++txGen;
            clock.After(txEnd - now, () =>
            {
                if(g != txGen) return;
                txBusy = false;
                if(tx.Count > 0) TxStart(txEnd); else latched |= TxDone;
                Update();
            });
        }

        void Update()
        {
            var level = (IntRaw() & regs[0x0C] & IntAll) != 0;
            if(level != irqLevel) { irqLevel = level; irq(level); }
        }

        readonly IDuohilClock clock;
        readonly Action<bool> irq;
        readonly Action<byte, ulong> transmit;
        readonly Queue<byte> rx = new Queue<byte>();
        readonly Queue<byte> tx = new Queue<byte>();
        Dictionary<long, uint> regs;
        uint latched;
        bool txBusy, irqLevel;
        ulong txEnd;
        int txGen, toutGen;
    }
}

