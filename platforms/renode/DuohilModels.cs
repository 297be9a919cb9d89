//
// duohil: Renode peripherals for both ends of the link, wrapping the cores in DuohilCores.cs:
//   DMA.DuohilH7DMA      replaces DMA.STM32DMA (no circular mode, no HT/TE, EN never cleared, instant
//                        copies: renode-infrastructure 0c7d076 src/Emulator/Peripherals/Peripherals/DMA/
//                        STM32DMA.cs) with circular/HT/TC/TE, EN cleared at the end, paced M2P and a
//                        completion latency per stream (`sysbus.dma1d SetCompletionLatencyNs 0 5000`).
//   UART.DuohilH7USART   replaces UART.STM32F7_USART (no IDLE, no ORE, TX not paced, RTOEN ignored:
//                        .../UART/STM32F7_USART.cs at the same commit) for the link UART.
//   UART.DuohilESP32C3UART (at the end of this file) replaces UART.ESP32_UART on the peer.
// Loaded with `include @platforms/renode/DuohilCores.cs`, then `include` of this file, before the
// platforms (the platforms/renode/*.repl overlays swap them in). A second include can use the types of
// the first: Renode loads each compiled assembly into the process (renode-infrastructure 0c7d076
// src/Emulator/Extensions/UserInterface/Monitor.cs:433-440, TryCompilePlugin; the same in add012a). Interfaces as in Renode's sources
// (tests/renode_stubs/RenodeApi.cs names each file); compiled against that stub in `make test`.
//
// Time: the cores count picoseconds; Renode's virtual time has 1 ns ticks (TimeInterval.cs), so delays
// are rounded up to the next nanosecond (at least 1 ns) and machine.ScheduleAction runs them in virtual
// time (RenodeMachineClock below).
//
using System;
using System.Collections.Generic;

using Antmicro.Renode.Core;
using Antmicro.Renode.Logging;
using Antmicro.Renode.Peripherals;
using Antmicro.Renode.Peripherals.Bus;
using Antmicro.Renode.Peripherals.UART;
using Antmicro.Renode.Time;

namespace Antmicro.Renode.Duohil
{
    // IDuohilClock on a Renode machine's virtual time.
    public sealed class RenodeMachineClock : IDuohilClock
    {
        public RenodeMachineClock(IMachine machine)
        {
            this.machine = machine;
        }

        public ulong NowPs => machine.ElapsedVirtualTime.TimeElapsed.Ticks * 1000UL;

        // machine.ScheduleAction adds a one-shot entry to the machine's clock source, which the CPU
        // advances as it executes (renode-infrastructure 0c7d076 src/Emulator/Main/Core/Machine.cs:588-617),
        // so the action runs at its virtual time on the CPU thread, not at the next quantum boundary.
        // A zero delay (the cores' "later at the same instant") becomes 1 ns: a clock entry's period is
        // its delay, and a zero period is not something to rely on.
        public void After(ulong delayPs, Action action)
        {
            var ns = Math.Max(1UL, (delayPs + 999UL) / 1000UL);
            machine.ScheduleAction(TimeInterval.FromNanoseconds(ns), _ => action(), "duohil");
        }

        // `action` at `startPs`: now when that is not in the future (the UART wrappers hand a
        // character to the link at the time the core started it, never earlier than now).
        public void AtOrNow(ulong startPs, Action action)
        {
            var now = NowPs;
            if(startPs <= now)
            {
                action();
                return;
            }
            After(startPs - now, action);
        }

        private readonly IMachine machine;
    }
}

namespace Antmicro.Renode.Peripherals.DMA
{
    using Antmicro.Renode.Duohil;

    // Byte and half-word accesses become double-word ones (the sysbus translates them; without this
    // attribute it refuses them), as Renode's own STM32 peripherals declare.
    [AllowedTranslations(AllowedTranslation.ByteToDoubleWord | AllowedTranslation.WordToDoubleWord)]
    public sealed class DuohilH7DMA : IDoubleWordPeripheral, IKnownSize, IGPIOReceiver, INumberedGPIOOutput, IDuohilDmaBus
    {
        public DuohilH7DMA(IMachine machine)
        {
            this.machine = machine;
            var outputs = new Dictionary<int, IGPIO>();
            for(var i = 0; i < H7DmaCore.Streams; i++)
            {
                outputs[i] = new GPIO();
            }
            Connections = outputs;
            core = new H7DmaCore(new RenodeMachineClock(machine), this, (s, level) => Connections[s].Set(level));
        }

        public uint ReadDoubleWord(long offset) => core.Read(offset);

        public void WriteDoubleWord(long offset, uint value) => core.Write(offset, value);

        public void Reset() => core.Reset();

        // DMAMUX1 output channel n -> request of stream n (`[0-7] -> dma1@[0-7]` in the platform).
        public void OnGPIO(int number, bool value)
        {
            if(number < 0 || number >= H7DmaCore.Streams)
            {
                this.Log(LogLevel.Warning, "Request line {0} does not exist (streams 0..7)", number);
                return;
            }
            core.OnRequest(number, value);
        }

        // `sysbus.dma1 SetCompletionLatencyNs 0 5000`: HTIF/TCIF/EN-clear of stream 0 land 5 us after the data.
        public void SetCompletionLatencyNs(int stream, ulong nanoseconds) => core.SetCompletionLatency(stream, nanoseconds * 1000UL);

        public ulong GetCompletionLatencyNs(int stream) => core.CompletionLatency(stream) / 1000UL;

        public long Size => 0x400;

        public IReadOnlyDictionary<int, IGPIO> Connections { get; }

        uint IDuohilDmaBus.Read(ulong address, int size)
        {
            var bus = machine.GetSystemBus(this);
            return size == 1 ? bus.ReadByte(address) : size == 2 ? bus.ReadWord(address) : bus.ReadDoubleWord(address);
        }

        void IDuohilDmaBus.Write(ulong address, int size, uint value)
        {
            var bus = machine.GetSystemBus(this);
            if(size == 1) bus.WriteByte(address, (byte)value);
            else if(size == 2) bus.WriteWord(address, (ushort)value);
            else bus.WriteDoubleWord(address, value);
        }

        // ITCM (0x0000_0000, 64 KiB) and DTCM (0x2000_0000, 128 KiB) are not on DMA1/2's bus (RM0433
        // "System architecture"); elsewhere, anything registered on the sysbus.
        bool IDuohilDmaBus.Reachable(ulong address, int size)
        {
            var end = address + (ulong)size;
            if(address < 0x10000UL || (address < 0x20020000UL && end > 0x20000000UL))
            {
                return false;
            }
            return machine.GetSystemBus(this).WhatIsAt(address) != null;
        }

        private readonly IMachine machine;
        private readonly H7DmaCore core;
    }
}

namespace Antmicro.Renode.Peripherals.UART
{
    using Antmicro.Renode.Duohil;

    // The DMA reads RDR and writes TDR with PSIZE = byte: as STM32F7_USART, byte and half-word accesses
    // are translated to double-word ones (renode-infrastructure 0c7d076 .../UART/STM32F7_USART.cs:18).
    [AllowedTranslations(AllowedTranslation.ByteToDoubleWord | AllowedTranslation.WordToDoubleWord)]
    public sealed class DuohilH7USART : IDoubleWordPeripheral, IKnownSize, IUART
    {
        public DuohilH7USART(IMachine machine, ulong frequency)
        {
            IRQ = new GPIO();
            ReceiveDmaRequest = new GPIO();
            TransmitDmaRequest = new GPIO();
            clock = new RenodeMachineClock(machine);
            core = new H7UsartCore(clock, frequency, level => IRQ.Set(level), level => ReceiveDmaRequest.Set(level),
                                   level => TransmitDmaRequest.Set(level), OnTransmit);
        }

        public uint ReadDoubleWord(long offset) => core.Read(offset);

        public void WriteDoubleWord(long offset, uint value) => core.Write(offset, value);

        public void Reset() => core.Reset();

        // A character received (the link calls this at the stop bit's arrival time).
        public void WriteChar(byte value) => core.ReceiveChar(value);

        public event Action<byte> CharReceived;

        public uint BaudRate => core.BaudRate;

        public Bits StopBits => core.StopCode == 1 ? Bits.Half : core.StopCode == 2 ? Bits.Two
                                : core.StopCode == 3 ? Bits.OneAndAHalf : Bits.One;

        public Parity ParityBit => !core.ParityEnabled ? Parity.None : core.ParityOdd ? Parity.Odd : Parity.Even;

        public GPIO IRQ { get; }

        public GPIO ReceiveDmaRequest { get; }

        public GPIO TransmitDmaRequest { get; }

        public long Size => 0x400;

        // The core starts a character at `startPs` (now, or when the shift register frees). The link stamps
        // a byte with the sender's time at CharReceived, so a later start is handed over at that time.
        private void OnTransmit(byte value, ulong startPs) => clock.AtOrNow(startPs, () => CharReceived?.Invoke(value));

        private readonly RenodeMachineClock clock;
        private readonly H7UsartCore core;
    }
}

namespace Antmicro.Renode.Peripherals.UART
{
    using Antmicro.Renode.Duohil;

    //   UART.DuohilESP32C3UART replaces UART.ESP32_UART (raw interrupt bits only ever cleared, INT_ST not
    //                          mapped, RXFIFO_CNT reads 0, always 115200: renode-infrastructure 0c7d076
    //                          src/Emulator/Peripherals/Peripherals/UART/ESP32_UART.cs) on the peer.
    // As ESP32_UART (.../UART/ESP32_UART.cs:17): byte accesses become double-word ones. A byte *write*
    // is a read-modify-write there, and reading FIFO pops a byte: the peer writes FIFO with 32-bit stores.
    [AllowedTranslations(AllowedTranslation.ByteToDoubleWord)]
    public sealed class DuohilESP32C3UART : IDoubleWordPeripheral, IKnownSize, IUART
    {
        public DuohilESP32C3UART(IMachine machine)
        {
            IRQ = new GPIO();
            clock = new RenodeMachineClock(machine);
            core = new Esp32C3UartCore(clock, level => IRQ.Set(level), OnTransmit);
        }

        public uint ReadDoubleWord(long offset) => core.Read(offset);

        public void WriteDoubleWord(long offset, uint value) => core.Write(offset, value);

        public void Reset() => core.Reset();

        public void WriteChar(byte value) => core.ReceiveChar(value);

        public event Action<byte> CharReceived;

        public uint BaudRate => core.BaudRate;

        public Bits StopBits => core.StopCode == 2 ? Bits.OneAndAHalf : core.StopCode == 3 ? Bits.Two : Bits.One;

        public Parity ParityBit => !core.ParityEnabled ? Parity.None : core.ParityOdd ? Parity.Odd : Parity.Even;

        public GPIO IRQ { get; }

        public long Size => 0x100;

        private void OnTransmit(byte value, ulong startPs) => clock.AtOrNow(startPs, () => CharReceived?.Invoke(value));

        private readonly RenodeMachineClock clock;
        private readonly Esp32C3UartCore core;
    }
}
