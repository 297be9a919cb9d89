//
// duohil: a fault-injecting UART link between exactly two UARTs, for Renode.
//
// Load it with `include @platforms/renode/DuohilUartLink.cs` (Renode compiles it in-process with Roslyn,
// no SDK needed), then:
//
//     emulation CreateDuohilUartLink "link"
//     mach set "stm32"; connector Connect sysbus.usart3 link
//     mach set "peer";  connector Connect sysbus.uart1 link
//     link Seed 7
//     link FrameFault "peer->stm32" 3 "LEN" "flip" 0x80
//
// Why not Renode's UARTHub: the hub cannot delay, insert, duplicate or address a byte by its index
// (its routing method is private), and its random faults draw from the emulation-wide generator.
// This link does what duohil's builtin engine does (duohil/engines/builtin/board/link.py), so a fault plan
// means the same thing on both engines.
//
// Timing. A byte the sender transmits at virtual time t (the sender's CharReceived event, fired on its
// CPU thread) arrives at  max(t + shift, lineFree) + frameBits * 1e9 / baud  ns, where `baud` is the
// sender's IUART.BaudRate (DefaultBaud when the model reports 0), frameBits is 10 (8N1) by default,
// `shift` is the sum of Delay faults so far in that direction and lineFree is the arrival time of the
// previous byte in that direction (arrivals never overlap, so inserted and duplicated bytes push the
// following ones back). The arrival is handed to recipient.GetMachine().HandleTimeDomainEvent(...), so in
// Renode's default SynchronizedIO mode it is delivered in the first sync phase at or after that time:
// latency is rounded up to the global quantum (renode.md section 3).
//
// Directions are named after the machines: "<sender machine>-><receiver machine>", e.g. "stm32->peer".
// Byte indices count the bytes *sent* in one direction, from 0.
//
// Faults (all callable from the monitor and through pyrenode3):
//     FlipBit(direction, index, bit)         received value = sent ^ (1 << bit)
//     Drop(direction, index)                 byte never arrives
//     Insert(direction, index, value)        an extra byte `value` arrives one character after byte index
//     Duplicate(direction, index)            byte index arrives twice
//     Delay(direction, index, microseconds)  the gap before byte index grows; later bytes shift too
//     Truncate(direction, index, end)        bytes index..end-1 never arrive (end < 0: all later bytes)
//     Noise(direction, berPpm, startUs, durationUs)
//                                            every bit (start, 8 data, stop) of each byte arriving in
//                                            [startUs, startUs + durationUs) flips with probability
//                                            berPpm / 1e6; a flipped start/stop bit is a framing error
//                                            (logged: STM32F7_USART has no frame-info input to receive it)
//     FrameFault(direction, frame, field, action, argument)
//                                            the same, addressed by protocol frame (SOF 0xFE | LEN |
//                                            payload | CRC16): field SOF, LEN, CRC_LO, CRC_HI or payload[i];
//                                            action flip (argument = XOR mask), drop, insert (argument =
//                                            value), duplicate, delay (argument = microseconds), truncate
//                                            (rest of the frame from that field)
//     ClearFaults()
//
// Randomness: Noise draws from SplitMix64 seeded by the Seed property, not System.Random: .NET does not
// promise the same System.Random sequence across runtime versions (see the comment in renode's
// tests/platforms/nucleo_h753zi.robot, "UART Hub Should Flip Bits"), and SplitMix64 is a fixed algorithm
// that duohil's Python side can reproduce bit for bit. Draw order is the order in which bytes are sent,
// which is deterministic under `emulation SetGlobalSerialExecution true`.
//
// Taps: every byte (delivered, dropped, inserted) is recorded as one line
//     "<arrival_ns> <direction> <index> <sent> <value> <fault>"
// (value -1 = dropped, sent -1 = inserted, fault "-" = none), returned by TakeLog() (and cleared) or
// GetLog(); the ByteRouted event carries the same line as it happens.
//
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

using Antmicro.Renode.Core;
using Antmicro.Renode.Exceptions;
using Antmicro.Renode.Logging;
using Antmicro.Renode.Peripherals;
using Antmicro.Renode.Peripherals.UART;
using Antmicro.Renode.Time;

namespace Antmicro.Renode.Duohil
{
    public static class DuohilUartLinkExtensions
    {
        // `emulation CreateDuohilUartLink "link"`: the same registration pattern as UARTHubExtensions.
        public static void CreateDuohilUartLink(this Emulation emulation, string name)
        {
            emulation.ExternalsManager.AddExternal(new DuohilUartLink(), name);
        }
    }

    public sealed class DuohilUartLink : IExternal, IHasOwnLife, IConnectable<IUART>
    {
        public DuohilUartLink()
        {
            locker = new object();
            endpoints = new List<Endpoint>();
            directions = new Dictionary<string, Direction>();
            log = new List<string>();
            FrameBits = 10;
            DefaultBaud = 115200;
            Seed = 0;
            started = true;
        }

        // ---- IConnectable<IUART>: `connector Connect sysbus.usart3 link` ------------------------------
        public void AttachTo(IUART uart)
        {
            lock(locker)
            {
                if(endpoints.Any(e => e.Uart == uart))
                {
                    throw new RecoverableException("This UART is already connected to the link.");
                }
                if(endpoints.Count == 2)
                {
                    throw new RecoverableException("DuohilUartLink joins exactly two UARTs; disconnect one first.");
                }
                var endpoint = new Endpoint(uart, MachineNameOf(uart));
                if(endpoints.Count == 1 && endpoints[0].Name == endpoint.Name)
                {
                    throw new RecoverableException($"Both UARTs belong to machine '{endpoint.Name}'; the link names its directions after the machines.");
                }
                endpoint.Handler = value => OnTransmit(endpoint, value);
                uart.CharReceived += endpoint.Handler;
                endpoints.Add(endpoint);
                if(endpoints.Count == 2)
                {
                    var a = endpoints[0];
                    var b = endpoints[1];
                    directions[$"{a.Name}->{b.Name}"] = new Direction($"{a.Name}->{b.Name}", a, b);
                    directions[$"{b.Name}->{a.Name}"] = new Direction($"{b.Name}->{a.Name}", b, a);
                }
            }
        }

        public void DetachFrom(IUART uart)
        {
            lock(locker)
            {
                var endpoint = endpoints.FirstOrDefault(e => e.Uart == uart);
                if(endpoint == null)
                {
                    throw new RecoverableException("This UART is not connected to the link.");
                }
                uart.CharReceived -= endpoint.Handler;
                endpoints.Remove(endpoint);
                directions.Clear();
            }
        }

        // ---- IHasOwnLife: started with the emulation; while paused bytes are discarded (cable unplugged)
        public void Start()
        {
            Resume();
        }

        public void Pause()
        {
            started = false;
        }

        public void Resume()
        {
            started = true;
        }

        public bool IsPaused => !started;

        // ---- configuration ---------------------------------------------------------------------------
        // Bits per character on the wire: start + 8 data + stop = 10 (8N1).
        public uint FrameBits { get; set; }

        // Used when a UART model reports BaudRate 0 (not configured yet).
        public uint DefaultBaud { get; set; }

        public int Seed
        {
            get => seed;
            set
            {
                lock(locker)
                {
                    seed = value;
                    rngState = unchecked((ulong)(long)value);
                }
            }
        }

        public string[] DirectionNames
        {
            get
            {
                lock(locker)
                {
                    return directions.Keys.OrderBy(x => x, StringComparer.Ordinal).ToArray();
                }
            }
        }

        // ---- faults ----------------------------------------------------------------------------------
        public void FlipBit(string direction, int index, int bit)
        {
            if(bit < 0 || bit > 7)
            {
                throw new RecoverableException($"bit must be 0..7, got {bit}");
            }
            AddFault(direction, new Fault(FaultKind.Flip, index) { Mask = (byte)(1 << bit) });
        }

        public void FlipMask(string direction, int index, int mask)
        {
            AddFault(direction, new Fault(FaultKind.Flip, index) { Mask = (byte)(mask & 0xFF) });
        }

        public void Drop(string direction, int index)
        {
            AddFault(direction, new Fault(FaultKind.Drop, index));
        }

        public void Insert(string direction, int index, int value)
        {
            AddFault(direction, new Fault(FaultKind.Insert, index) { Value = (byte)(value & 0xFF) });
        }

        public void Duplicate(string direction, int index)
        {
            AddFault(direction, new Fault(FaultKind.Duplicate, index));
        }

        public void Delay(string direction, int index, ulong microseconds)
        {
            AddFault(direction, new Fault(FaultKind.Delay, index) { DelayNs = microseconds * 1000UL });
        }

        public void Truncate(string direction, int index, int end)
        {
            AddFault(direction, new Fault(FaultKind.Truncate, index) { End = end });
        }

        public void Noise(string direction, uint berPpm, ulong startUs, ulong durationUs)
        {
            if(berPpm > 1000000)
            {
                throw new RecoverableException($"berPpm must be 0..1000000, got {berPpm}");
            }
            AddFault(direction, new Fault(FaultKind.Noise, -1)
            {
                BerPpm = berPpm,
                StartNs = startUs * 1000UL,
                EndNs = (startUs + durationUs) * 1000UL,
            });
        }

        public void FrameFault(string direction, int frame, string field, string action, long argument)
        {
            var kind = ParseAction(action);
            if(kind == FaultKind.Noise)
            {
                throw new RecoverableException("noise is not a frame fault; use Noise");
            }
            var fieldOffset = ParseField(field);    // validates
            lock(locker)
            {
                Get(direction).FrameFaults.Add(new FrameFaultSpec
                {
                    Frame = frame, Field = field, FieldOffset = fieldOffset, Kind = kind, Argument = argument,
                });
            }
        }

        public void ClearFaults()
        {
            lock(locker)
            {
                foreach(var d in directions.Values)
                {
                    d.Faults.Clear();
                    d.FrameFaults.Clear();
                }
            }
        }

        // ---- taps ------------------------------------------------------------------------------------
        public event Action<string> ByteRouted;

        public string[] TakeLog()
        {
            lock(locker)
            {
                var result = log.ToArray();
                log.Clear();
                return result;
            }
        }

        public string[] GetLog()
        {
            lock(locker)
            {
                return log.ToArray();
            }
        }

        public int Sent(string direction)
        {
            lock(locker)
            {
                return Get(direction).Sent;
            }
        }

        public int Delivered(string direction)
        {
            lock(locker)
            {
                return Get(direction).Delivered;
            }
        }

        // Complete protocol frames the sender has put on the wire (before faults).
        public int FramesSent(string direction)
        {
            lock(locker)
            {
                return Get(direction).FramesCompleted;
            }
        }

        // Complete frames whose last byte is among the first `byteCount` bytes sent: what a receiver whose
        // DMA ring stops after byteCount bytes (stock Renode's STM32DMA has no circular mode) can hold.
        public int FramesCompletedBefore(string direction, int byteCount)
        {
            lock(locker)
            {
                return Get(direction).Tracker.FrameEnds.Count(end => end < byteCount);
            }
        }

        // ---- the wire --------------------------------------------------------------------------------
        private void OnTransmit(Endpoint sender, byte value)
        {
            if(!started)
            {
                return;
            }
            var now = TimeDomainsManager.Instance.VirtualTimeStamp;
            lock(locker)
            {
                var d = directions.Values.FirstOrDefault(x => x.Sender == sender);
                if(d == null)
                {
                    this.Log(LogLevel.Warning, "Byte 0x{0:X2} from '{1}' dropped: only one UART is connected", value, sender.Name);
                    return;
                }
                var k = d.Sent++;
                var frameField = d.Tracker.Feed(value);
                ResolveFrameFaults(d, k, frameField);

                var baud = sender.Uart.BaudRate != 0 ? sender.Uart.BaudRate : DefaultBaud;
                var charNs = (ulong)FrameBits * 1000000000UL / baud;
                var tSend = now.TimeElapsed.Ticks;          // TimeInterval ticks are nanoseconds

                var faults = d.Faults.Where(f => f.Covers(k)).ToList();
                foreach(var f in faults.Where(f => f.Kind == FaultKind.Delay))
                {
                    d.ShiftNs += f.DelayNs;
                }

                var arrival = Math.Max(tSend + d.ShiftNs, d.LineFreeNs) + charNs;
                d.LineFreeNs = arrival;

                if(faults.Any(f => f.Kind == FaultKind.Drop || f.Kind == FaultKind.Truncate))
                {
                    var why = faults.First(f => f.Kind == FaultKind.Drop || f.Kind == FaultKind.Truncate).Kind;
                    Record(d, k, value, -1, why == FaultKind.Drop ? "drop" : "truncate", arrival);
                    return;
                }

                var received = value;
                var names = new List<string>();
                foreach(var f in faults.Where(f => f.Kind == FaultKind.Flip))
                {
                    received ^= f.Mask;
                    names.Add("flip");
                }
                foreach(var f in d.Faults.Where(f => f.Kind == FaultKind.Noise && arrival >= f.StartNs && arrival < f.EndNs))
                {
                    var flips = 0;
                    var framing = false;
                    for(var bit = 0; bit < FrameBits; bit++)
                    {
                        if(NextUnit() * 1000000.0 < f.BerPpm)
                        {
                            flips++;
                            if(bit >= 1 && bit <= 8)
                            {
                                received ^= (byte)(1 << (bit - 1));
                            }
                            else
                            {
                                framing = true;
                            }
                        }
                    }
                    if(flips > 0)
                    {
                        names.Add(framing ? "noise-framing" : "noise");
                    }
                }

                Deliver(d, k, value, received, names.Count == 0 ? null : string.Join("+", names), arrival, now);

                foreach(var f in faults.Where(f => f.Kind == FaultKind.Duplicate))
                {
                    var again = d.LineFreeNs + charNs;
                    d.LineFreeNs = again;
                    Deliver(d, k, value, received, "duplicate", again, now);
                }
                foreach(var f in faults.Where(f => f.Kind == FaultKind.Insert))
                {
                    var extra = d.LineFreeNs + charNs;
                    d.LineFreeNs = extra;
                    Deliver(d, k, -1, f.Value, "insert", extra, now);
                }
            }
        }

        private void Deliver(Direction d, int index, int sent, byte value, string fault, ulong arrivalNs, TimeStamp now)
        {
            var recipient = d.Receiver.Uart;
            var when = new TimeStamp(TimeInterval.FromTicks(arrivalNs), now.Domain);
            d.Delivered++;
            Record(d, index, sent, value, fault, arrivalNs);
            recipient.GetMachine().HandleTimeDomainEvent(recipient.WriteChar, value, when);
        }

        private void Record(Direction d, int index, int sent, int value, string fault, ulong arrivalNs)
        {
            var line = string.Format(CultureInfo.InvariantCulture, "{0} {1} {2} {3} {4} {5}",
                arrivalNs, d.Name, index, sent, value, fault ?? "-");
            log.Add(line);
            ByteRouted?.Invoke(line);
        }

        private void ResolveFrameFaults(Direction d, int k, FrameField field)
        {
            if(field == null)
            {
                return;
            }
            foreach(var spec in d.FrameFaults.Where(s => s.Frame == field.Frame && !s.Resolved))
            {
                var offset = spec.FieldOffset >= 0 ? spec.FieldOffset : field.Length + spec.FieldOffset;
                if(field.Offset != offset)
                {
                    continue;
                }
                spec.Resolved = true;
                var f = new Fault(spec.Kind, k);
                switch(spec.Kind)
                {
                case FaultKind.Flip:
                    f.Mask = (byte)(spec.Argument & 0xFF);
                    break;
                case FaultKind.Insert:
                    f.Value = (byte)(spec.Argument & 0xFF);
                    break;
                case FaultKind.Delay:
                    f.DelayNs = (ulong)spec.Argument * 1000UL;
                    break;
                case FaultKind.Truncate:
                    f.End = k + (field.Length - field.Offset);
                    break;
                }
                d.Faults.Add(f);
                this.Log(LogLevel.Info, "{0}: frame {1} {2} is byte {3}: {4}", d.Name, spec.Frame, spec.Field, k, spec.Kind);
            }
        }

        // SplitMix64 (Steele, Lea, Flood 2014): a fixed algorithm, unlike System.Random.
        private double NextUnit()
        {
            rngState = unchecked(rngState + 0x9E3779B97F4A7C15UL);
            var z = rngState;
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            z ^= z >> 31;
            return (z >> 11) * (1.0 / (1UL << 53));
        }

        private void AddFault(string direction, Fault fault)
        {
            lock(locker)
            {
                Get(direction).Faults.Add(fault);
            }
        }

        private Direction Get(string direction)
        {
            if(!directions.TryGetValue(direction ?? "", out var d))
            {
                var known = directions.Count == 0 ? "none: connect two UARTs first" : string.Join(", ", directions.Keys);
                throw new RecoverableException($"Unknown link direction '{direction}' (known: {known})");
            }
            return d;
        }

        private static string MachineNameOf(IUART uart)
        {
            var machine = uart.GetMachine();
            if(EmulationManager.Instance.CurrentEmulation.TryGetMachineName(machine, out var name))
            {
                return name;
            }
            throw new RecoverableException("The UART's machine has no name in this emulation.");
        }

        private static FaultKind ParseAction(string action)
        {
            switch((action ?? "").ToLowerInvariant())
            {
            case "flip": return FaultKind.Flip;
            case "drop": return FaultKind.Drop;
            case "insert": return FaultKind.Insert;
            case "duplicate": return FaultKind.Duplicate;
            case "delay": return FaultKind.Delay;
            case "truncate": return FaultKind.Truncate;
            default:
                throw new RecoverableException($"Unknown frame fault action '{action}' (flip, drop, insert, duplicate, delay, truncate)");
            }
        }

        // Offset of a field in a frame; negative = from the end (CRC_LO -2, CRC_HI -1).
        private static int ParseField(string field)
        {
            switch(field)
            {
            case "SOF": return 0;
            case "LEN": return 1;
            case "CRC":
            case "CRC_LO": return -2;
            case "CRC_HI": return -1;
            }
            if(field != null && field.StartsWith("payload[", StringComparison.Ordinal) && field.EndsWith("]", StringComparison.Ordinal)
               && int.TryParse(field.Substring(8, field.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var i))
            {
                return 2 + i;
            }
            throw new RecoverableException($"Unknown frame field '{field}' (SOF, LEN, CRC_LO, CRC_HI or payload[i])");
        }

        private readonly object locker;
        private readonly List<Endpoint> endpoints;
        private readonly Dictionary<string, Direction> directions;
        private readonly List<string> log;
        private bool started;
        private int seed;
        private ulong rngState;

        private const byte StartOfFrame = 0xFE;

        private enum FaultKind
        {
            Flip,
            Drop,
            Insert,
            Duplicate,
            Delay,
            Truncate,
            Noise,
        }

        private sealed class Endpoint
        {
            public Endpoint(IUART uart, string name)
            {
                Uart = uart;
                Name = name;
            }

            public IUART Uart { get; }
            public string Name { get; }
            public Action<byte> Handler { get; set; }
        }

        private sealed class Fault
        {
            public Fault(FaultKind kind, int index)
            {
                Kind = kind;
                Index = index;
                End = -1;
            }

            public bool Covers(int k)
            {
                if(Kind == FaultKind.Noise)
                {
                    return false;
                }
                if(Kind == FaultKind.Truncate)
                {
                    return k >= Index && (End < 0 || k < End);
                }
                return k == Index;
            }

            public FaultKind Kind { get; }
            public int Index { get; }
            public byte Mask { get; set; }
            public byte Value { get; set; }
            public ulong DelayNs { get; set; }
            public int End { get; set; }
            public uint BerPpm { get; set; }
            public ulong StartNs { get; set; }
            public ulong EndNs { get; set; }
        }

        private sealed class FrameFaultSpec
        {
            public int Frame { get; set; }
            public string Field { get; set; }
            public int FieldOffset { get; set; }
            public FaultKind Kind { get; set; }
            public long Argument { get; set; }
            public bool Resolved { get; set; }
        }

        private sealed class FrameField
        {
            public int Frame { get; set; }
            public int Offset { get; set; }
            public int Length { get; set; }
        }

        // Follows the sender's clean byte stream (before faults): SOF 0xFE | LEN | LEN payload bytes | CRC16.
        private sealed class FrameTracker
        {
            public int FramesCompleted { get; private set; }

            // Index (among the bytes sent) of each complete frame's last byte.
            public List<int> FrameEnds { get; } = new List<int>();

            public FrameField Feed(byte value)
            {
                sent++;
                if(offset < 0)
                {
                    if(value != StartOfFrame)
                    {
                        return null;
                    }
                    offset = 0;
                    length = -1;
                    return new FrameField { Frame = frame, Offset = 0, Length = int.MaxValue };
                }
                offset++;
                if(offset == 1)
                {
                    length = value + 4;
                }
                var field = new FrameField { Frame = frame, Offset = offset, Length = length };
                if(offset == length - 1)
                {
                    offset = -1;
                    frame++;
                    FramesCompleted++;
                    FrameEnds.Add(sent - 1);
                }
                return field;
            }

            private int frame;
            private int sent;
            private int offset = -1;
            private int length = -1;
        }

        private sealed class Direction
        {
            public Direction(string name, Endpoint sender, Endpoint receiver)
            {
                Name = name;
                Sender = sender;
                Receiver = receiver;
                Faults = new List<Fault>();
                FrameFaults = new List<FrameFaultSpec>();
                Tracker = new FrameTracker();
            }

            public int FramesCompleted => Tracker.FramesCompleted;

            public string Name { get; }
            public Endpoint Sender { get; }
            public Endpoint Receiver { get; }
            public List<Fault> Faults { get; }
            public List<FrameFaultSpec> FrameFaults { get; }
            public FrameTracker Tracker { get; }
            public int Sent { get; set; }
            public int Delivered { get; set; }
            public ulong ShiftNs { get; set; }
            public ulong LineFreeNs { get; set; }
        }
    }
}
