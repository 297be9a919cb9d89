// duohil: a compile-only stub of the part of Renode's API that platforms/renode/*.cs use, so `make test`
// can compile our C# with Debian's mono-mcs where no Renode is installed (tests/test_renode_cs.py).
//
// Signatures only, transcribed from renode/renode-infrastructure at 0c7d076 (the infrastructure renode
// master 06854d4 pins; "M") and checked against add012a (the one tag v1.16.1 pins; "V"): each line says
// the file (under src/Emulator/) it comes from. Where M and V differ, the comment says so. Bodies are
// placeholders that throw: nothing here runs. Members the models do not use are left out.
// Two simplifications mcs needs: IUART<T>'s `where T : IBinaryInteger<T>` (M and V, .NET 7 generic
// math) is dropped, and default-interface members are not used.
using System;
using System.Collections.Generic;

namespace Antmicro.Renode
{
    // Main/Peripherals/IEmulationElement.cs (M, V): marker interface
    public interface IEmulationElement { }
}

namespace Antmicro.Renode.Exceptions
{
    // Main/Exceptions/RecoverableException.cs:12,22 (M, V)
    public class RecoverableException : Exception
    {
        public RecoverableException(string message) : base(message) { }
    }
}

namespace Antmicro.Renode.Logging
{
    // Main/Logging/LogLevel.cs:18,56-60 (M, V): a class with static instances, not an enum
    public sealed class LogLevel
    {
        public static LogLevel Noisy = new LogLevel();
        public static LogLevel Debug = new LogLevel();
        public static LogLevel Info = new LogLevel();
        public static LogLevel Warning = new LogLevel();
        public static LogLevel Error = new LogLevel();
    }

    // Main/Logging/Logger.cs:306 (M; same extension in V): this.Log(level, format, args)
    public static class Logger
    {
        public static void Log(this IEmulationElement e, LogLevel type, string message, params object[] args) { }
    }
}

namespace Antmicro.Renode.Time
{
    // Main/Time/ITimeDomain.cs (M, V)
    public interface ITimeDomain { }

    // Main/Time/TimeInterval.cs:22,72,117,147,277 (M, V): ticks are nanoseconds
    public struct TimeInterval
    {
        private ulong ticks;
        public static TimeInterval FromNanoseconds(ulong v) { return new TimeInterval { ticks = v }; }
        public static TimeInterval FromTicks(ulong ticks) { return new TimeInterval { ticks = ticks }; }
        public static TimeInterval operator +(TimeInterval t1, TimeInterval t2) { return FromTicks(t1.ticks + t2.ticks); }
        public ulong Ticks { get { return ticks; } }
    }

    // Main/Time/TimeStamp.cs:15,27,38,40 (M, V)
    public struct TimeStamp
    {
        public TimeStamp(TimeInterval interval, ITimeDomain domain) { TimeElapsed = interval; Domain = domain; }
        public TimeInterval TimeElapsed { get; private set; }
        public ITimeDomain Domain { get; private set; }
    }

    // Main/Time/TimeDomainsManager.cs:18,20,59 (M, V)
    public class TimeDomainsManager
    {
        public static TimeDomainsManager Instance = new TimeDomainsManager();
        public TimeStamp VirtualTimeStamp { get { throw new NotImplementedException(); } }
    }
}

namespace Antmicro.Renode.Peripherals
{
    // Main/Peripherals/IAnalyzable.cs (M, V): marker
    public interface IAnalyzable { }

    // Main/Peripherals/IPeripheral.cs:22,24 (M, V)
    public interface IPeripheral : IEmulationElement, IAnalyzable
    {
        void Reset();
    }

    // Main/Peripherals/IPeripheral.cs:83 (M; V has the same extension)
    public static class IPeripheralExtensions
    {
        public static Antmicro.Renode.Core.IMachine GetMachine(this IPeripheral @this) { throw new NotImplementedException(); }
    }

    // Main/Peripherals/IKnownSize.cs (M, V)
    public interface IKnownSize : Antmicro.Renode.Peripherals.Bus.IBusPeripheral
    {
        long Size { get; }
    }

    // Main/Peripherals/IHasOwnLife.cs:11 (M, V)
    public interface IHasOwnLife
    {
        void Start();
        void Pause();
        void Resume();
        bool IsPaused { get; }
    }
}

namespace Antmicro.Renode.Peripherals.Bus
{
    // Main/Peripherals/Bus/IBusPeripheral.cs:10 (M, V)
    public interface IBusPeripheral : IPeripheral { }

    // Main/Peripherals/Bus/IDoubleWordPeripheral.cs (M, V)
    public interface IDoubleWordPeripheral : IBusPeripheral
    {
        uint ReadDoubleWord(long offset);
        void WriteDoubleWord(long offset, uint value);
    }

    // Main/Peripherals/Bus/AllowedTranslation.cs:13 (M, V)
    [Flags]
    public enum AllowedTranslation
    {
        ByteToWord = 1 << 0, ByteToDoubleWord = 1 << 1, ByteToQuadWord = 1 << 2, WordToByte = 1 << 3,
        WordToDoubleWord = 1 << 4, WordToQuadWord = 1 << 5, DoubleWordToByte = 1 << 6, DoubleWordToWord = 1 << 7,
        DoubleWordToQuadWord = 1 << 8, QuadWordToByte = 1 << 9, QuadWordToWord = 1 << 10, QuadWordToDoubleWord = 1 << 11,
    }

    // Main/Peripherals/Bus/AllowedTranslationsAttribute.cs:6,8 (M, V)
    public class AllowedTranslationsAttribute : Attribute
    {
        public AllowedTranslationsAttribute(AllowedTranslation allowedTranslations) { }
    }

    // Main/Peripherals/Bus/IBusRegistered.cs:15 (M, V), reduced to the marker the models test for null
    public interface IBusRegistered<out T> where T : IBusPeripheral { }

    // Main/Peripherals/Bus/IBusController.cs:29-51,79 (M; the same in V). Only the accessors the DMA uses.
    public interface IBusController
    {
        byte ReadByte(ulong address, IPeripheral context = null, ulong? cpuState = null);
        void WriteByte(ulong address, byte value, IPeripheral context = null, ulong? cpuState = null);
        ushort ReadWord(ulong address, IPeripheral context = null, ulong? cpuState = null);
        void WriteWord(ulong address, ushort value, IPeripheral context = null, ulong? cpuState = null);
        uint ReadDoubleWord(ulong address, IPeripheral context = null, ulong? cpuState = null);
        void WriteDoubleWord(ulong address, uint value, IPeripheral context = null, ulong? cpuState = null);
        IBusRegistered<IBusPeripheral> WhatIsAt(ulong address, IPeripheral context = null);
    }
}

namespace Antmicro.Renode.Core
{
    using Antmicro.Renode.Peripherals;
    using Antmicro.Renode.Peripherals.Bus;
    using Antmicro.Renode.Time;

    // Main/Core/IGPIOReceiver.cs (M, V)
    public interface IGPIOReceiver : IPeripheral
    {
        void OnGPIO(int number, bool value);
    }

    // Main/Core/IGPIO.cs:12 (M, V), the members the models use
    public interface IGPIO
    {
        bool IsSet { get; }
        void Set(bool value);
    }

    // Main/Core/GPIO.cs:18,20,42,106 (M, V)
    public sealed class GPIO : IGPIO
    {
        public GPIO() { }
        public void Set(bool value) { throw new NotImplementedException(); }
        public bool IsSet { get { throw new NotImplementedException(); } }
    }

    // Main/Core/INumberedGPIOOutput.cs (M, V)
    public interface INumberedGPIOOutput : IPeripheral
    {
        IReadOnlyDictionary<int, IGPIO> Connections { get; }
    }

    // Main/Peripherals/IMachine.cs:23 (namespace Antmicro.Renode.Core), members at :63,65,97,103,173 (M, V)
    public interface IMachine : IEmulationElement
    {
        IBusController GetSystemBus(IBusPeripheral peripheral);
        void HandleTimeDomainEvent<T>(Action<T> handler, T handlerArgument, TimeStamp eventTime, Action postAction = null);
        void RequestReset();
        void ScheduleAction(TimeInterval delay, Action<TimeInterval> action, string name = null);
        TimeStamp ElapsedVirtualTime { get; }
    }

    // Main/Core/IExternal.cs:13 (M, V)
    public interface IExternal : IEmulationElement { }

    // Main/Core/IConnectable.cs:10 (M, V)
    public interface IConnectable { }
    // Main/Core/IConnectable.cs:10 (M, V)
    public interface IConnectable<T> : IConnectable
    {
        void AttachTo(T obj);
        void DetachFrom(T obj);
    }

    // Main/Core/ExternalsManager.cs:22,125 (M, V)
    public sealed class ExternalsManager
    {
        public void AddExternal(IExternal external, string name) { throw new NotImplementedException(); }
    }

    // Main/Core/Emulation.cs:26,251,617 (M, V)
    public class Emulation
    {
        public ExternalsManager ExternalsManager { get; private set; }
        public bool TryGetMachineName(IMachine machine, out string name) { throw new NotImplementedException(); }
    }

    // Main/Core/EmulationManager.cs:29,50,288 (M, V)
    public sealed class EmulationManager
    {
        public static EmulationManager Instance { get; private set; }
        public Emulation CurrentEmulation { get { throw new NotImplementedException(); } }
    }
}

namespace Antmicro.Renode.Peripherals.UART
{
    // Main/Peripherals/UART/IUART.cs:16-30 (M, V; the generic math constraint on T is dropped here)
    public interface IUART<T> : IPeripheral
    {
        event Action<T> CharReceived;
        void WriteChar(T value);
        uint BaudRate { get; }
        Bits StopBits { get; }
        Parity ParityBit { get; }
    }
    // Main/Peripherals/UART/IUART.cs:30 (M, V)
    public interface IUART : IUART<byte> { }

    // Main/Peripherals/UART/IUART.cs (M, V)
    public enum Parity { Odd, Even, None, Forced1, Forced0, Multidrop, Unsupported }
    // Main/Peripherals/UART/IUART.cs (M, V)
    public enum Bits { None, One, Half, OneAndAHalf, Two }
}
