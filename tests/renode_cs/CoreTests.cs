// duohil: runs the plain C# cores of platforms/renode/DuohilCores.cs under mono on a register-sequence
// vector (stdin), in a rig shaped like tests/test_stm32_dma.py's: USART3 + DMA1 + a DMAMUX1 channel
// map + AXI SRAM. Prints one line per observation; tests/test_renode_cs.py replays the same vector on
// the builtin Python models and compares the two transcripts line by line. Our own tiny runner: no NUnit.
//
// An ESP32-C3 UART sits at 0x6001_0000 in the same rig (its own vectors use only it).
// Vector lines:  w ADDR VALUE | r ADDR | rx BYTE (USART3) | erx BYTE [fe] (ESP32-C3 UART) | run PS |
//                lat STREAM PS | mem ADDR N | irqs
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Antmicro.Renode.Duohil;

public sealed class TestClock : IDuohilClock
{
    public ulong NowPs { get; private set; }
    public void After(ulong delayPs, Action action) { queue.Add(Tuple.Create(NowPs + delayPs, seq++, action)); }

    public void RunUntil(ulong t)
    {
        while(true)
        {
            var next = queue.Where(e => e.Item1 <= t).OrderBy(e => e.Item1).ThenBy(e => e.Item2).FirstOrDefault();
            if(next == null) break;
            queue.Remove(next);
            NowPs = next.Item1;
            next.Item3();
        }
        NowPs = t;
    }

    readonly List<Tuple<ulong, long, Action>> queue = new List<Tuple<ulong, long, Action>>();
    long seq;
}

public sealed class Rig : IDuohilDmaBus
{
    public const ulong Usart3 = 0x40004800, Dma1 = 0x40020000, Dmamux1 = 0x40020800, AxiSram = 0x24000000,
                       EspUart = 0x60010000;

    public Rig()
    {
        Clock = new TestClock();
        Dma = new H7DmaCore(Clock, this, (s, level) => dmaIrq[s] = level);
        Usart = new H7UsartCore(Clock, 120000000, level => usartIrq = level, level => Request(45, level),
                                level => Request(46, level), (b, t) => Console.WriteLine($"tx {b} {t}"));
        Esp = new Esp32C3UartCore(Clock, level => espIrq = level, (b, t) => Console.WriteLine($"etx {b} {t}"));
    }

    public Esp32C3UartCore Esp { get; }

    public TestClock Clock { get; }
    public H7DmaCore Dma { get; }
    public H7UsartCore Usart { get; }

    // DMAMUX1 (RM0433): channel c's CCR at +4*c selects DMAREQ_ID; channels 0-7 drive DMA1 streams 0-7.
    void Request(int id, bool level)
    {
        reqLevel[id] = level;
        for(var c = 0; c < 8; c++) if(muxCcr[c] == id) Dma.OnRequest(c, level);
    }

    public uint BusRead(ulong a, int size)
    {
        if(a >= Usart3 && a < Usart3 + 0x400) return Usart.Read((long)(a - Usart3));
        if(a >= EspUart && a < EspUart + 0x100) return Esp.Read((long)(a - EspUart));
        if(a >= Dma1 && a < Dma1 + 0x400) return Dma.Read((long)(a - Dma1));
        if(a >= Dmamux1 && a < Dmamux1 + 0x20) return (uint)muxCcr[(a - Dmamux1) / 4];
        uint v = 0;
        for(var i = 0; i < size; i++) v |= (uint)Mem(a + (ulong)i) << (8 * i);
        return v;
    }

    public void BusWrite(ulong a, int size, uint value)
    {
        if(a >= Usart3 && a < Usart3 + 0x400) { Usart.Write((long)(a - Usart3), value); return; }
        if(a >= EspUart && a < EspUart + 0x100) { Esp.Write((long)(a - EspUart), value); return; }
        if(a >= Dma1 && a < Dma1 + 0x400) { Dma.Write((long)(a - Dma1), value); return; }
        if(a >= Dmamux1 && a < Dmamux1 + 0x20)
        {
            var c = (int)((a - Dmamux1) / 4);
            muxCcr[c] = (int)(value & 0x7F);
            Dma.OnRequest(c, reqLevel.ContainsKey(muxCcr[c]) && reqLevel[muxCcr[c]]);
            return;
        }
        for(var i = 0; i < size; i++) memory[a + (ulong)i] = (byte)(value >> (8 * i));
    }

    public byte Mem(ulong a) { byte b; return memory.TryGetValue(a, out b) ? b : (byte)0; }

    uint IDuohilDmaBus.Read(ulong a, int size) { return BusRead(a, size); }
    void IDuohilDmaBus.Write(ulong a, int size, uint v) { BusWrite(a, size, v); }
    bool IDuohilDmaBus.Reachable(ulong a, int size)
    {
        var end = a + (ulong)size;
        if(a < 0x10000 || (a < 0x20020000 && end > 0x20000000)) return false;
        return (a >= Usart3 && end <= Usart3 + 0x400) || (a >= AxiSram && end <= AxiSram + 0x80000);
    }

    public string Irqs()
    {
        return string.Concat(dmaIrq.Select(x => x ? "1" : "0")) + " " + (usartIrq ? "1" : "0") + " " + (espIrq ? "1" : "0");
    }

    readonly bool[] dmaIrq = new bool[8];
    bool usartIrq, espIrq;
    readonly int[] muxCcr = new int[8];
    readonly Dictionary<int, bool> reqLevel = new Dictionary<int, bool>();
    readonly Dictionary<ulong, byte> memory = new Dictionary<ulong, byte>();
}

public static class CoreTests
{
    static ulong N(string s) { return s.StartsWith("0x") ? ulong.Parse(s.Substring(2), NumberStyles.HexNumber) : ulong.Parse(s); }

    public static int Main()
    {
        var rig = new Rig();
        string line;
        var lineNo = 0;
        while((line = Console.ReadLine()) != null)
        {
            lineNo++;
            var p = line.Split((char[])null, StringSplitOptions.RemoveEmptyEntries);
            if(p.Length == 0 || p[0].StartsWith("#")) continue;
            switch(p[0])
            {
                case "w": rig.BusWrite(N(p[1]), 4, (uint)N(p[2])); break;
                case "r": Console.WriteLine($"r {p[1]} {rig.BusRead(N(p[1]), 4)}"); break;
                case "rx": rig.Usart.ReceiveChar((byte)N(p[1])); break;
                case "erx": rig.Esp.ReceiveChar((byte)N(p[1]), p.Length > 2 && p[2] == "fe"); break;
                case "run": rig.Clock.RunUntil(rig.Clock.NowPs + N(p[1])); break;
                case "lat": rig.Dma.SetCompletionLatency((int)N(p[1]), N(p[2])); break;
                case "mem":
                    var a = N(p[1]);
                    Console.WriteLine($"mem {p[1]} " + string.Join(",", Enumerable.Range(0, (int)N(p[2])).Select(i => rig.Mem(a + (ulong)i).ToString())));
                    break;
                case "irqs": Console.WriteLine("irqs " + rig.Irqs()); break;
                default:
                    Console.Error.WriteLine($"vector line {lineNo}: unknown op '{p[0]}'");
                    return 2;
            }
        }
        return 0;
    }
}
