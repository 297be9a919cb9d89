"""The Renode engine: both MCUs as two Renode machines driven through pyrenode3.

    engine = RenodeEngine()                 # get_engine("renode") checks availability() first
    with engine.start(spec) as s:           # script.commands(spec) through the monitor
        s.link_fault("FrameFault", "peer->stm32", 3, "LEN", "flip", 0x80)
        s.peer.stall(5 * PS_PER_MS)         # sysbus.cpu IsHalted true ... false, across RunFor slices
        s.run_until(200 * PS_PER_MS)
        s.stm32.read_block("g_status")

What it does and what it honestly cannot (docs/renode.md has the table per crash mode and version):
  * Renode 1.16.1 or master (script.MIN_RENODE): availability() reads the loaded Renode's types and
    picks platforms/renode/<platform>.renode-<level>.repl (script.renode_level); older ones are refused
    with one line naming what they lack.
  * Our own models replace Renode's on the link path (platforms/renode/DuohilModels.cs): the H7 DMA
    (circular, HT/TC/TE, EN cleared at the end, paced M2P, completion latency), the H7 USART (IDLE,
    ORE, RTO, paced TX) and the ESP32-C3 UART (FIFO counts, interrupts).
  * link_faults: platforms/renode/DuohilUartLink.cs (flip, drop, insert, duplicate, delay, truncate,
    noise; frame-addressed too), baud-paced delivery in virtual time, rounded up to the quantum.
  * peer_stall: ``cpu IsHalted true`` / ``false`` between ``RunFor`` slices; virtual time keeps flowing
    for both machines and the peer's peripherals (renode/renode#463: ``machine Pause`` would stop all).
  * dma_latency: ``SetCompletionLatencyNs`` on our DMA model, data first, flags/IRQ/EN-clear later.
  * crash_record: ``bus_fault`` sets CFSR.IMPRECISERR and pends BusFault (HardFault when BusFault is
    disabled); the IWDG reset runs the machine's ``macro reset``, which reloads the ELF (and the config
    patch) so the Cortex-M finds its vector table again; MappedMemory keeps the no-init record.
  * Not claimed: ``dcache`` (Renode has no cache model), ``nested_irq`` (instruction-count time, no
    cycle-accurate ISR latency), ``irq_at_pc``: a ``cpu AddHook`` ends translation at the hooked
    instruction and pending interrupts are checked before each block (tlib translate-all.c, cpu-exec.c),
    so an interrupt raised in the hook is taken *before* the hooked instruction; CM5's chain needs the
    interrupt after a given instruction of the handler body, and a hook-based trigger has not been
    built and checked against the builtin engine's irq_at, so it is not claimed.

One Renode per process (pyrenode3 loads it into the interpreter): sessions run one after another;
each starts by clearing the emulation.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from ...errors import ConfigError, EngineError
from ..base import (CRASH_RECORD, DCACHE, DMA_LATENCY, IRQ_AT_PC, LINK_FAULTS, LINK_REPLAY, NESTED_IRQ,
                    PEER_STALL, PLANT, PS_PER_MS, PS_PER_US, ConsoleLine, Engine, LinkByte, MachineHandle, RunSpec, Session)
from . import script

PYRENODE_VARS = ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN")
INSTALL_HINT = ("pip install 'pyrenode3 @ git+https://github.com/antmicro/pyrenode3.git' "
                "(pyrenode3 is not on PyPI); see docs/renode.md")

# Why each capability the builtin engine has is missing here (docs/renode.md repeats these).
NOT_MODELLED = {
    DCACHE: "Renode has no functional cache model: memory is always coherent, stale D-cache lines "
            "cannot occur (renode.md 1.5)",
    NESTED_IRQ: "Renode's time is instruction counts (PerformanceInMips), not cycle-accurate ISR "
                "latency; nested-interrupt timing is not modelled (renode.md 1.5)",
    IRQ_AT_PC: "an interrupt raised from a cpu AddHook is taken before the hooked instruction (tlib ends "
               "the block there and checks interrupts before each block); no hook-based irq_at that "
               "matches the builtin engine's has been built, so interleavings are not forced",
    PLANT: "no motor plant is modelled on Renode: TIM2's encoder inputs never move, so every run "
           "ends in a following-error ESTOP and a runaway cannot be observed (docs/renode.md, CM1)",
    LINK_REPLAY: "no recorded-peer source is built for Renode's link: a `peer: {replay: ...}` scenario "
                 "(duohil replay, docs/replay.md) runs on the builtin engine only",
}

_KIND_CAPABILITY = {"irq_at": IRQ_AT_PC}


def _which_pyrenode_source() -> tuple[str | None, str]:
    """(variable, problem) for the PYRENODE_* set-up, as pyrenode3's __init__/loader read it."""
    runtime = os.environ.get("PYRENODE_RUNTIME", "mono")
    if runtime not in ("mono", "coreclr"):
        return None, f"PYRENODE_RUNTIME={runtime!r}; pyrenode3 accepts only 'mono' or 'coreclr'"
    set_vars = [v for v in PYRENODE_VARS if os.environ.get(v)]
    if len(set_vars) > 1:
        return None, f"{' and '.join(set_vars)} are all set; pyrenode3 accepts at most one of them"
    if not set_vars:
        return None, ("no Renode runtime located: set PYRENODE_RUNTIME=coreclr and one of "
                      "PYRENODE_BIN (portable renode binary), PYRENODE_PKG (renode-*.linux.tar.gz) or "
                      "PYRENODE_BUILD_DIR (a Renode source build); without them pyrenode3 assumes a "
                      "Mono install in /opt/renode, which current .NET-only Renode packages are not")
    var = set_vars[0]
    path = Path(os.environ[var])
    if var == "PYRENODE_BIN":
        if runtime != "coreclr":
            return var, "PYRENODE_BIN needs PYRENODE_RUNTIME=coreclr (pyrenode3 has no Mono portable loader)"
        if not path.is_file() or not os.access(path, os.X_OK):
            return var, f"PYRENODE_BIN={path} is not an executable file"
    elif var == "PYRENODE_PKG":
        if not path.is_file():
            return var, f"PYRENODE_PKG={path} is not a file"
        if runtime == "coreclr" and not path.name.endswith(".tar.gz"):
            return var, f"PYRENODE_PKG={path}: with coreclr it must be a renode-*.linux.tar.gz package"
        if runtime == "mono" and not path.name.endswith(".pkg.tar.xz"):
            return var, f"PYRENODE_PKG={path}: with mono it must be an Arch .pkg.tar.xz package"
    else:
        if not path.is_dir():
            return var, f"PYRENODE_BUILD_DIR={path} is not a directory"
        out = os.environ.get("PYRENODE_BUILD_OUTPUT", "output/bin/Release")
        if not (path / out).is_dir():
            return var, f"PYRENODE_BUILD_DIR={path} has no {out} (build Renode, or set PYRENODE_BUILD_OUTPUT)"
    if runtime == "coreclr" and var != "PYRENODE_BIN" and not (
            os.environ.get("DOTNET_ROOT") or shutil.which("dotnet")):
        return var, f"{var} with coreclr needs a host .NET runtime (dotnet on PATH or DOTNET_ROOT)"
    return var, ""


class RenodeEngine(Engine):
    """Renode through pyrenode3; capabilities limited to what Renode really models (module doc)."""

    name = "renode"
    capabilities = frozenset({LINK_FAULTS, PEER_STALL, CRASH_RECORD, DMA_LATENCY})
    not_modelled = NOT_MODELLED
    _loaded: tuple[bool, str] | None = None
    level: str | None = None                 # script.RENODE_LEVELS entry of the loaded Renode

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        if cls._loaded is not None:
            return cls._loaded
        for module, what in (("pyrenode3", "pyrenode3"), ("pythonnet", "pythonnet (a pyrenode3 dependency)")):
            if importlib.util.find_spec(module) is None:
                return False, f"the Python package {what} is not installed: {INSTALL_HINT}"
        _var, problem = _which_pyrenode_source()
        if problem:
            return False, problem
        for cs in script.INCLUDES:
            if not cs.is_file():
                return False, f"the Renode model {cs} is missing"
        try:                                   # loads Renode into this process (once)
            import pyrenode3  # noqa: F401
            from pyrenode3.wrappers import Emulation, Monitor  # noqa: F401
        except SystemExit as exc:              # pyrenode3's loader calls sys.exit on a bad build dir
            cls._loaded = (False, f"pyrenode3 could not load Renode (exit {exc.code}); check PYRENODE_*")
            return cls._loaded
        except Exception as exc:  # noqa: BLE001 - ImportError, pythonnet/clr_loader errors, ...
            cls._loaded = (False, f"pyrenode3 could not load Renode: {type(exc).__name__}: {exc}")
            return cls._loaded
        try:
            features = _probe_features()
            cls.level = script.renode_level(features)
        except ConfigError as exc:             # too old: one line naming the version and what is missing
            cls._loaded = (False, str(exc))
            return cls._loaded
        except Exception as exc:  # noqa: BLE001 - pythonnet reflection errors
            cls._loaded = (False, f"could not read the loaded Renode's types: {type(exc).__name__}: {exc}")
            return cls._loaded
        runtime = os.environ.get("PYRENODE_RUNTIME", "mono")
        cls._loaded = (True, f"Renode {features.version or '(version unknown)'} via pyrenode3 ({_var}, "
                             f"runtime {runtime}); platforms for Renode {cls.level}")
        return cls._loaded

    def start(self, spec: RunSpec) -> "RenodeSession":
        ok, reason = self.availability()
        if not ok:
            from ...errors import EngineUnavailable
            raise EngineUnavailable(self.name, reason)
        if spec.peer is None:          # the session and its script build both machines
            raise ConfigError("the renode engine runs both MCUs; a run without a peer is not "
                              "supported there", field="peer", expected="a peer image, or --engine builtin")
        return RenodeSession(spec)


def _probe_features() -> script.RenodeFeatures:
    """Read what the loaded Renode has from its .NET types (pythonnet, after pyrenode3 loaded it)."""
    import System  # noqa: F401 - pythonnet's CLR namespace

    def find(name: str) -> Any:
        for asm in System.AppDomain.CurrentDomain.GetAssemblies():
            t = asm.GetType(name)
            if t is not None:
                return t
        return None

    dmamux = find("Antmicro.Renode.Peripherals.Miscellaneous.STM32_DMAMUX")
    flash = find("Antmicro.Renode.Peripherals.MTD.STM32H7_FlashController")
    params = {str(p.Name) for c in (dmamux.GetConstructors() if dmamux is not None else [])
              for p in c.GetParameters()}
    version = ""
    manager = find("Antmicro.Renode.Core.EmulationManager")
    if manager is not None:                  # for messages only: never let it fail the probe
        try:
            attr = System.Type.GetType("System.Reflection.AssemblyInformationalVersionAttribute")
            found = manager.Assembly.GetCustomAttributes(attr, False)
            version = (str(found[0].InformationalVersion) if len(found)
                       else str(manager.Assembly.GetName().Version))
        except Exception:  # noqa: BLE001 - reflection through pythonnet; the version is cosmetic
            version = ""
    return script.RenodeFeatures(
        version=version, dmamux=dmamux is not None,
        dmamux_input_channels="numberOfInputRequestChannels" in params,
        flash_irq=flash is not None and flash.GetProperty("IRQ") is not None,
        esp32_uart=find("Antmicro.Renode.Peripherals.UART.ESP32_UART") is not None)


# -- handles ------------------------------------------------------------------------------------------------
class RenodeMachine(MachineHandle):
    def __init__(self, session: "RenodeSession", name: str, mach: Any, elf: Path, platform: Path) -> None:
        self.name = name
        self._session = session
        self._mach = mach                      # pyrenode3.wrappers.Machine
        self.elf = Path(elf)
        self.platform = Path(platform)
        self._symbols: dict[str, int] = {}
        self._console: list[ConsoleLine] = []
        self._partial = bytearray()
        self._handler: Callable[[Any], None] | None = None

    # symbols and memory
    def symbol(self, name: str) -> int:
        if name not in self._symbols:
            from ..builtin.elf import read_elf
            self._symbols[name] = read_elf(self.elf).symbol(name).address
        return self._symbols[name]

    def read_memory(self, address: int, size: int) -> bytes:
        from System import UInt64
        data = self._mach.sysbus.internal.ReadBytes(UInt64(address), int(size), True)
        return bytes(data)

    def write_memory(self, address: int, data: bytes) -> None:
        from System import Array, Byte, UInt64
        self._mach.sysbus.internal.WriteBytes(Array[Byte](list(data)), UInt64(address))

    def read_block(self, symbol: str) -> dict[str, object]:
        from ..builtin.loaders import dwarf
        size = dwarf.struct_size(self.elf, symbol)
        return dwarf.decode_struct(self.elf, symbol, self.read_memory(self.symbol(symbol), size))

    # console
    def _attach_console(self, uart_name: str) -> None:
        uart = getattr(self._mach.sysbus, uart_name).internal

        def on_char(value: Any) -> None:     # runs on the emulated CPU's thread: keep it short
            b = int(value)
            if b == 0x0A:                     # stamped when the '\n' is written, as the builtin does
                text = self._partial.decode("latin-1").rstrip("\r")   # (Renode's USART TX is instant)
                t = self._session._machine_time_ps(self._mach)
                self._console.append(ConsoleLine(t, self.name, text))
                self._partial.clear()
            else:
                self._partial.append(b)

        self._handler = on_char
        uart.CharReceived += on_char
        self._uart = uart

    def _detach_console(self) -> None:
        if self._handler is not None:
            self._uart.CharReceived -= self._handler
            self._handler = None

    def console(self) -> list[ConsoleLine]:
        return list(self._console)

    # CPU
    def stall(self, duration_ps: int) -> None:
        if duration_ps <= 0:
            raise ConfigError(f"stall of {duration_ps} ps", field="duration", expected="> 0")
        s = self._session
        s._set_halted(self.name, True)
        s.at(s.now_ps + duration_ps, lambda: s._set_halted(self.name, False), name=f"{self.name} resume")

    def pc(self) -> int:
        return int(self._mach.sysbus.cpu.internal.PC.RawValue)


# -- the session --------------------------------------------------------------------------------------------
class RenodeSession(Session):
    def __init__(self, spec: RunSpec) -> None:
        from pyrenode3.wrappers import Emulation, Monitor
        self.spec = spec
        self._emu = Emulation()
        self._mon = Monitor()
        self._emu.clear()
        self._now_ps = 0
        self._seq = 0
        self._pending: list[tuple[int, int, str, Callable[[], None]]] = []
        self._events: list[tuple[int, str, dict]] = []
        self._link_bytes: list[LinkByte] = []
        self.level = RenodeEngine.level or script.RENODE_LEVELS[0]
        self.commands = script.commands(spec, level=self.level)
        for cmd in self.commands:
            self.execute(cmd)
        self.stm32 = RenodeMachine(self, "stm32", self._emu.get_mach("stm32"), spec.stm32.elf,
                                   spec.stm32.platform)
        self.peer = RenodeMachine(self, "peer", self._emu.get_mach("peer"), spec.peer.elf,
                                  spec.peer.platform)
        self.stm32._attach_console(spec.console_uarts[0])
        self.peer._attach_console(spec.console_uarts[1])
        self.link = self._emu.externals.get_external(script.LINK_NAME)
        if self.link is None:
            raise EngineError("the DuohilUartLink external was not created (include of "
                              f"{script.LINK_CS} failed?)")

    # monitor
    def execute(self, command: str) -> str:
        out, err = self._mon.execute(command)
        if err:
            raise EngineError(f"Renode monitor: {command.splitlines()[0]}: {err.strip()}")
        return out

    def link_fault(self, method: str, *args: object) -> None:
        """Arm a link fault now (see DuohilUartLink.cs), e.g. ("Drop", "peer->stm32", 40)."""
        self.execute(script.link_fault_commands([(method, args)])[0])
        self._events.append((self._now_ps, "link_fault", {"method": method, "args": list(args)}))

    def inject(self, fault: Any) -> int | None:
        """Schedule one realised fault (duohil.faults.Fault), the kinds this engine's capabilities
        cover: ``link`` (FrameFault on the C# link, resolved as the frame passes), ``noise`` (a
        time window on the link), ``peer_stall``, ``bus_fault`` and ``dma_latency`` at ``at_ms``.
        Returns the time it takes effect when known now."""
        kind, p = getattr(fault, "kind", None), dict(getattr(fault, "params", {}) or {})
        if kind == "link":
            action = p["action"]
            arg = {"flip": 1 << int(p.get("bit", 0)), "insert": int(p.get("value", 0xA5)),
                   "delay": int(round(float(p.get("delay_us", 0))))}.get(action, 0)
            self.link_fault("FrameFault", p["direction"], int(p["frame"]), p.get("field", "LEN"),
                            action, arg)
            return None
        if kind == "noise":
            t0 = int(round(float(p["at_ms"]) * PS_PER_MS))
            dur = int(round(float(p["duration_ms"]) * PS_PER_MS))
            self.link_fault("Noise", p["direction"], int(round(float(p["ber"]) * 1_000_000)),
                            t0 // PS_PER_US, dur // PS_PER_US)
            return t0
        if kind == "bus_fault":
            t = int(round(float(p["at_ms"]) * PS_PER_MS))
            self.at(t, self._bus_fault, name="bus_fault")
            return t
        if kind == "dma_latency":
            t = int(round(float(p.get("at_ms", 0)) * PS_PER_MS))
            cmds = script.dma_latency_commands(p.get("controller", "dma1"), int(p["stream"]),
                                               int(round(float(p["latency_us"]) * PS_PER_US)))

            def arm() -> None:
                for cmd in cmds:
                    self.execute(cmd)
                self._events.append((self._now_ps, "dma_latency", dict(p)))
            self.at(t, arm, name="dma_latency")
            return t
        if kind == "peer_stall":
            if "at_ms" not in p or p.get("at_ms") is None:
                raise ConfigError("the renode engine stalls the peer at a time only (at_ms): "
                                  "'after_setpoints' needs a trigger inside the link model that "
                                  "halts a CPU mid-slice, which DuohilUartLink does not have",
                                  field="faults.peer_stall.after_setpoints", expected="at_ms")
            t = int(round(float(p["at_ms"]) * PS_PER_MS))
            dur = int(round(float(p["duration_ms"]) * PS_PER_MS))
            self.at(t, lambda: self.peer.stall(dur), name="peer_stall")
            return t
        raise ConfigError(f"the renode engine cannot inject fault kind {kind!r}: "
                          f"{NOT_MODELLED.get(_KIND_CAPABILITY.get(kind, ''), 'unknown kind')}",
                          field="faults", expected="link, noise, peer_stall, bus_fault or dma_latency")

    def _bus_fault(self) -> None:
        self.execute('mach set "stm32"')
        shcsr = int(self.execute(f"sysbus ReadDoubleWord {script.SHCSR:#x}").split()[0], 0)
        for cmd in script.bus_fault_commands(shcsr):
            self.execute(cmd)
        self._events.append((self._now_ps, "bus_fault", {"shcsr": shcsr}))

    # time
    @property
    def now_ps(self) -> int:
        return self._now_ps

    def _machine_time_ps(self, mach: Any) -> int:
        return int(mach.internal.ElapsedVirtualTime.TimeElapsed.Ticks) * 1000

    def _run_slice(self, duration_ps: int) -> None:
        ns = -(-duration_ps // 1000)              # Renode's resolution is 1 ns: round up
        if ns > 0:
            self.execute(script.run_for(ns * 1000))     # emulation RunFor "<seconds>"; blocks, then pauses
            self._now_ps += ns * 1000
        self._collect_link()

    def run_until(self, t_ps: int) -> None:
        while True:
            self._pending.sort()
            if not self._pending or self._pending[0][0] > t_ps:
                break
            te, _seq, name, action = self._pending.pop(0)
            if te > self._now_ps:
                self._run_slice(te - self._now_ps)
            action()
            self._events.append((self._now_ps, "action", {"name": name}))
        if t_ps > self._now_ps:
            self._run_slice(t_ps - self._now_ps)

    def at(self, t_ps: int, action: Callable[[], None], name: str = "") -> None:
        if t_ps < self._now_ps:
            raise ConfigError(f"event {name!r} at {t_ps} ps is in the past (now {self._now_ps} ps)")
        self._seq += 1
        self._pending.append((t_ps, self._seq, name, action))

    def _set_halted(self, machine: str, halted: bool) -> None:
        for cmd in script.stall_commands(machine, halted):
            self.execute(cmd)
        self._events.append((self._now_ps, "halt" if halted else "resume", {"machine": machine}))

    # observations
    def _collect_link(self) -> None:
        for line in self.link.TakeLog():
            t_ns, direction, index, sent, value, fault = str(line).split(" ")
            v, s = int(value), int(sent)
            self._link_bytes.append(LinkByte(
                t_ps=int(t_ns) * 1000, direction=direction, value=None if v < 0 else v,
                sent=None if (fault == "-" or s < 0) else s, fault=None if fault == "-" else fault))
            if fault != "-":
                self._events.append((int(t_ns) * 1000, "link_fault",
                                     {"direction": direction, "index": int(index), "fault": fault}))

    def link_bytes(self) -> list[LinkByte]:
        return sorted(self._link_bytes, key=lambda b: b.t_ps)

    def events(self) -> list[tuple[int, str, dict]]:
        return sorted(self._events, key=lambda e: e[0])

    def console(self) -> list[ConsoleLine]:
        return sorted(self.stm32.console() + self.peer.console(), key=lambda c: (c.t_ps, c.machine))

    def fingerprint(self) -> str:
        from ..builtin.repl import parse_file
        h = hashlib.sha256()

        def section(tag: str, data: bytes) -> None:
            h.update(tag.encode() + len(data).to_bytes(8, "little") + data)

        section("t", str(self._now_ps).encode())
        for m in (self.stm32, self.peer):
            for entry in parse_file(m.platform):
                if entry.type == "Memory.MappedMemory" and entry.base is not None:
                    section(f"{m.name}.{entry.name}", m.read_memory(entry.base, int(entry.prop("size"))))
            section(f"{m.name}.pc", str(m.pc()).encode())
        section("events", json.dumps(self.events(), sort_keys=True, default=str).encode())
        section("console", json.dumps([c.__dict__ for c in self.console()], sort_keys=True).encode())
        section("link", json.dumps([b.__dict__ for b in self.link_bytes()], sort_keys=True).encode())
        return h.hexdigest()

    def close(self) -> None:
        for m in (getattr(self, "stm32", None), getattr(self, "peer", None)):
            if m is not None:
                m._detach_console()
        self._emu.clear()
