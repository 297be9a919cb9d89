"""Renode monitor text from a RunSpec: the overlays, the command sequence and a runnable .resc.

Pure Python, no Renode needed: the pyrenode3 driver (engine.py) executes exactly ``commands(spec)``
through the monitor, and ``resc(spec)`` writes the same sequence as a script a user can run with
``renode`` directly, so both are golden-tested as text (tests/test_renode_text.py).

Facts this relies on (renode.md, checked against Renode's sources):
  * Times are strings parsed by TimeInterval.TryParse (renode-infrastructure
    src/Emulator/Main/Time/TimeInterval.cs): ``[[h:]m:]s[.frac]``, any suffix ignored, so "10ms" means
    10 *seconds*. ``seconds()`` always writes plain seconds with nanosecond resolution (TimeInterval's
    tick is 1 ns). The fraction is parsed as a double and multiplied by 1e9, then truncated, so for a
    few values (e.g. 0.000000007 s) the plain string would lose a nanosecond; ``seconds()`` appends a
    trailing 5 (half a nanosecond) exactly then, so the parsed value is always the intended one.
  * ``emulation SetSeed`` takes an int (Emulation.cs ``SetSeed(int seed)``): the run's seed is folded
    into 0..2**31-1.
  * The STM32F7_USART's ``ReceiveDmaRequest`` is wired in none of Renode's H7 files; the DMAMUX1
    request numbers are RM0433's (renode.md 1.3). STM32_DMAMUX routes input number == DMAREQ_ID
    (STM32_DMAMUX.cs ``OnGPIO``), so ``usart3: ReceiveDmaRequest -> dmamux1@45``.
  * Re-declaring a connection in an overlay replaces the earlier one with the same source (renode
    src/Renode/PlatformDescription/Syntax/Entry.cs ``FlattenIrqAttributes``), so the overlay is safe
    even when the base .repl already has the wire.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ...errors import ConfigError
from ..base import MachineSpec, RunSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
RENODE_DIR = REPO_ROOT / "platforms" / "renode"
LINK_CS = RENODE_DIR / "DuohilUartLink.cs"
# Included in this order before any platform: the plain cores, the Renode peripherals that wrap them
# (a later include can use an earlier one's types: renode-infrastructure Monitor.cs TryCompilePlugin
# loads each compiled assembly into the process), then the link.
MODEL_CS = (RENODE_DIR / "DuohilCores.cs", RENODE_DIR / "DuohilModels.cs")
INCLUDES = (*MODEL_CS, LINK_CS)
LINK_NAME = "link"
MACHINES = ("stm32", "peer")

# -- Renode versions ------------------------------------------------------------------------------------
# The oldest release the platforms load on, and what each older one lacks (renode-audit.md; checked in
# renode-infrastructure at the tags' pinned commits: v1.16.1 add012a, v1.16.0 7edd96d, v1.15.3 9736cf5).
MIN_RENODE = "1.16.1"
# Levels the platforms/renode/<platform>.renode-<level>.repl overlays exist for, newest first.
RENODE_LEVELS = ("master", "1.16.1")
# Our own peripherals replace these stock blocks in platforms/renode/*.models.repl, under new names.
RENODE_NAMES = {"usart3": "usart3Duohil", "dma1": "dma1Duohil", "dma2": "dma2Duohil", "uart1": "uart1Duohil"}


@dataclass(frozen=True)
class RenodeFeatures:
    """What the loaded Renode provides, read from its types (engine._probe_features), not from its
    version number: master's tools/version still says 1.16.1, so only the types tell them apart."""
    version: str                    # the informational version, for messages only
    dmamux: bool                    # Miscellaneous.STM32_DMAMUX exists (from 1.16.1)
    dmamux_input_channels: bool     # ...and its constructor takes numberOfInputRequestChannels (master)
    flash_irq: bool                 # MTD.STM32H7_FlashController has an IRQ output (from 1.16.1)
    esp32_uart: bool                # UART.ESP32_UART exists (from 1.16.0)


def renode_level(f: RenodeFeatures) -> str:
    """The overlay level for a Renode ("master" or "1.16.1"), or ConfigError with one line naming the
    version and what it lacks when it is older than MIN_RENODE."""
    missing = [what for ok, what in (
        (f.dmamux, "Miscellaneous.STM32_DMAMUX (added in 1.16.1)"),
        (f.flash_irq, "the STM32H7 flash controller's IRQ (added in 1.16.1)"),
        (f.esp32_uart, "UART.ESP32_UART (added in 1.16.0)")) if not ok]
    if missing:
        raise ConfigError(f"Renode {f.version or '(unknown version)'} is older than {MIN_RENODE}, the oldest "
                          f"duohil's platforms load on: it lacks {'; '.join(missing)}",
                          expected=f"Renode {MIN_RENODE} or a master nightly")
    return "master" if f.dmamux_input_channels else "1.16.1"


def platform_for(platform: str | Path, level: str) -> Path:
    """The file Renode loads for ``platform`` at ``level``: platforms/renode/<stem>.renode-<level>.repl
    when duohil ships one (it `using`s the platform and swaps in our models), else the file itself (a
    user's own platform is loaded as given)."""
    if level not in RENODE_LEVELS:
        raise ConfigError(f"unknown Renode level {level!r}", expected=" or ".join(RENODE_LEVELS))
    p = Path(platform)
    wrapper = p.parent / "renode" / f"{p.stem}.renode-{level}.repl"
    return wrapper if wrapper.is_file() else p


def renode_name(platform: str | Path, name: str) -> str:
    """A peripheral's name on the sysbus as loaded: ours when platforms/renode swapped it in."""
    wrapped = platform_for(platform, RENODE_LEVELS[0]) != Path(platform)
    return RENODE_NAMES.get(name, name) if wrapped else name

# RM0433 DMAMUX1 request numbers of the U(S)ART receivers (renode.md 1.3, renode/renode#994).
DMAMUX1_RX_REQUEST = {"usart1": 41, "usart2": 43, "usart3": 45, "uart4": 63, "uart5": 65,
                      "usart6": 71, "uart7": 79, "uart8": 81}

# Instructions per virtual second (BaseCPU.PerformanceInMips; Renode's default is 100).
PERFORMANCE_IN_MIPS = {"stm32": 480, "peer": 160}

NS_PER_S = 1_000_000_000
SEED_MODULUS = 2 ** 31


# -- time ---------------------------------------------------------------------------------------------------
def _renode_parses_to_ns(text: str) -> int:
    """What TimeInterval.TryParse makes of ``S.FFFF`` (seconds and a fraction), in nanoseconds:
    the fraction goes through a double (IEEE-754, the same in .NET and CPython) and is truncated."""
    whole, _, frac = text.partition(".")
    ns = int(whole) * NS_PER_S
    if frac:
        ns += int(float("0." + frac) * NS_PER_S)
    return ns


def seconds(ps: int) -> str:
    """A Renode time string for ``ps`` picoseconds: seconds with 9 decimals ("0.000010000" = 10 us).
    ``ps`` must be a whole number of nanoseconds (Renode's time resolution)."""
    if not isinstance(ps, int) or ps < 0:
        raise ValueError(f"time must be a non-negative integer of picoseconds, got {ps!r}")
    if ps % 1000:
        raise ValueError(f"{ps} ps is not a whole number of nanoseconds (Renode's time resolution)")
    ns = ps // 1000
    text = f"{ns // NS_PER_S}.{ns % NS_PER_S:09d}"
    if _renode_parses_to_ns(text) != ns:
        text += "5"                      # half a nanosecond: truncation now lands on ns
    assert _renode_parses_to_ns(text) == ns, text
    return text


def renode_seed(seed: int) -> int:
    return seed % SEED_MODULUS


# -- paths and quoting --------------------------------------------------------------------------------------
def at_path(path: str | Path) -> str:
    """``@/absolute/path``: the monitor's file-path token (no quoting exists for it, so no spaces)."""
    p = str(Path(path).resolve())
    if any(c.isspace() for c in p) or '"' in p:
        raise ConfigError("Renode's monitor cannot take a path with spaces or quotes", file=p,
                          expected="a path without whitespace")
    return "@" + p


def quoted(text: str) -> str:
    if '"' in text:
        raise ConfigError(f"cannot pass {text!r} to the monitor", expected="text without double quotes")
    return f'"{text}"'


def multiline(text: str) -> str:
    """A monitor multi-line string literal (triple quotes, as in renode's scripts and robot tests)."""
    if '"""' in text:
        raise ConfigError("overlay text contains triple quotes", expected="plain .repl text")
    return '"""\n' + text.rstrip("\n") + '\n"""'


# -- overlays -----------------------------------------------------------------------------------------------
def overlay(machine: str, spec: RunSpec) -> str:
    """The Renode-only .repl overlay for one machine: the link UART's RX DMA request on the STM32 and
    each CPU's PerformanceInMips (also in the base files; repeated so a user repl without it still
    gets the time base duohil assumes)."""
    lines = [f"// duohil overlay for Renode, machine {machine!r} (duohil/engines/renode/script.py)"]
    if machine == "stm32":
        uart = spec.link_uarts[0]
        request = DMAMUX1_RX_REQUEST.get(uart)
        if request is None:
            raise ConfigError(f"no DMAMUX1 RX request number known for {uart!r}", field="link_uarts",
                              expected="one of " + ", ".join(sorted(DMAMUX1_RX_REQUEST)))
        lines += [f"{renode_name(spec.stm32.platform, uart)}:",
                  f"    ReceiveDmaRequest -> dmamux1@{request}", ""]
    lines += ["cpu:", f"    PerformanceInMips: {PERFORMANCE_IN_MIPS[machine]}"]
    return "\n".join(lines) + "\n"


# -- config blocks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Write:
    address: int
    value: int
    width: int              # 1 or 4 bytes

    def command(self) -> str:
        verb = "WriteDoubleWord" if self.width == 4 else "WriteByte"
        return f"sysbus {verb} {self.address:#010x} {self.value:#x}"


def config_writes(m: MachineSpec) -> list[Write]:
    """The sysbus writes that put ``m.config`` into ``m.config_symbol``'s struct after LoadELF: the
    whole patched block (struct layout from the ELF's DWARF, duohil/engines/builtin/loaders/dwarf.py), as
    aligned double words, bytes at unaligned edges."""
    if not m.config:
        return []
    if not m.config_symbol:
        raise ConfigError("config overrides given without a config symbol", file=m.elf, field="config",
                          expected="config_symbol naming the firmware's config block")
    from ..builtin.loaders import dwarf
    address, _size = dwarf.dwarf_info(m.elf).symbol(m.config_symbol)
    data = dwarf.patch_struct(m.elf, m.config_symbol, dict(m.config))
    return words(address, data)


def words(address: int, data: bytes) -> list[Write]:
    out: list[Write] = []
    i = 0
    while i < len(data):
        a = address + i
        if a % 4 == 0 and i + 4 <= len(data):
            out.append(Write(a, int.from_bytes(data[i:i + 4], "little"), 4))
            i += 4
        else:
            out.append(Write(a, data[i], 1))
            i += 1
    return out


# -- the command sequence -----------------------------------------------------------------------------------
def reset_macro(m: MachineSpec) -> str:
    """``macro reset``: what the monitor runs after this machine resets (renode-infrastructure
    Monitor.cs ResetMachine runs the selected machine's `reset` macro; Renode's own scripts reload the
    ELF there, e.g. renode scripts/single-node/ramn.resc). A system reset (the IWDG, SYSRESETREQ)
    clears the bus's ELF lookup and tlib zeroes VTOR, so without it the Cortex-M boots from 0x0
    (renode-audit.md). LoadELF writes only the ELF's load segments: no-init RAM (the crash record)
    keeps its contents; the config block lives in flash, so its patch is written again."""
    body = [f"sysbus LoadELF {at_path(m.elf)}", *(w.command() for w in config_writes(m))]
    # one command: `macro NAME VALUE` with a multi-line string value (Monitor SetCommand's
    # Run(LiteralToken, Token) overload, renode-infrastructure 0c7d076 Commands/SetCommand.cs:57)
    return "macro reset " + multiline("\n".join(body))


def machine_commands(name: str, m: MachineSpec, spec: RunSpec, level: str = RENODE_LEVELS[0]) -> list[str]:
    return [
        f"mach create {quoted(name)}",
        f"machine LoadPlatformDescription {at_path(platform_for(m.platform, level))}",
        f"machine LoadPlatformDescriptionFromString {multiline(overlay(name, spec))}",
        f"sysbus LoadELF {at_path(m.elf)}",
        *(w.command() for w in config_writes(m)),
        reset_macro(m),
    ]


def commands(spec: RunSpec, *, level: str = RENODE_LEVELS[0],
             includes: Iterable[Path] = INCLUDES) -> list[str]:
    """Every monitor command that builds a run on a Renode of ``level`` (renode_level), in order.
    Nothing here starts the emulation."""
    for m in (spec.stm32, spec.peer):
        for p in (m.platform, m.elf):
            if not Path(p).is_file():
                raise ConfigError("file not found", file=p, expected="an existing platform / ELF file")
    if spec.quantum_ps <= 0:
        raise ConfigError(f"quantum {spec.quantum_ps} ps", field="quantum_ps", expected="> 0")
    stm32_uart = renode_name(spec.stm32.platform, spec.link_uarts[0])
    peer_uart = renode_name(spec.peer.platform, spec.link_uarts[1])
    out = [f"include {at_path(p)}" for p in includes]
    out += [
        f"emulation SetSeed {renode_seed(spec.seed)}",
        "emulation SetGlobalSerialExecution true",
    ]
    out += machine_commands("stm32", spec.stm32, spec, level)
    out += machine_commands("peer", spec.peer, spec, level)
    out += [
        f"emulation CreateDuohilUartLink {quoted(LINK_NAME)}",
        f"mach set {quoted('stm32')}",
        f"connector Connect sysbus.{stm32_uart} {LINK_NAME}",
        f"mach set {quoted('peer')}",
        f"connector Connect sysbus.{peer_uart} {LINK_NAME}",
        f"{LINK_NAME} Seed {renode_seed(spec.seed)}",
        f"emulation SetGlobalQuantum {quoted(seconds(spec.quantum_ps))}",
        "mach clear",
    ]
    return out


def stall_commands(machine: str, halted: bool) -> list[str]:
    """Halt or release one CPU: time keeps flowing, only that core stops (renode.md 3, 4.4)."""
    return [f"mach set {quoted(machine)}", f"sysbus.cpu IsHalted {'true' if halted else 'false'}",
            "mach clear"]


# SCB_SHCSR (RM0433 / ARMv7-M): BUSFAULTENA is bit 17. CFSR.IMPRECISERR is bit 10.
SHCSR, SHCSR_BUSFAULTENA, CFSR_IMPRECISERR = 0xE000ED24, 1 << 17, 1 << 10
EXC_HARDFAULT, EXC_BUSFAULT = 3, 5


def bus_fault_commands(shcsr: int) -> list[str]:
    """An asynchronous bus error on the STM32, as the builtin engine's ``inject_bus_error``:
    CFSR.IMPRECISERR, then BusFault pending, or HardFault when the firmware left BusFault disabled
    (SHCSR.BUSFAULTENA; master's NVIC would escalate by itself, 1.16.1's SetPendingIRQ does not:
    renode-infrastructure NVIC.cs SetPending at 0c7d076 vs add012a). Writing FaultStatus replaces the
    whole CFSR (a fresh CFSR is 0). HFSR.FORCED is not set for the escalated case."""
    exc = EXC_BUSFAULT if shcsr & SHCSR_BUSFAULTENA else EXC_HARDFAULT
    return [f"mach set {quoted('stm32')}", f"sysbus.cpu FaultStatus {CFSR_IMPRECISERR:#x}",
            f"sysbus.nvic SetPendingIRQ {exc}", "mach clear"]


def dma_latency_commands(controller: str, stream: int, latency_ps: int) -> list[str]:
    """The completion latency of one stream of our DMA model (DuohilModels.cs SetCompletionLatencyNs)."""
    if controller not in ("dma1", "dma2"):
        raise ConfigError(f"no DMA controller {controller!r}", field="controller", expected="dma1 or dma2")
    ns = -(-int(latency_ps) // 1000)
    return [f"mach set {quoted('stm32')}",
            f"sysbus.{RENODE_NAMES[controller]} SetCompletionLatencyNs {int(stream)} {ns}", "mach clear"]


def run_for(duration_ps: int) -> str:
    return f"emulation RunFor {quoted(seconds(duration_ps))}"


def resc(spec: RunSpec, *, duration_ps: int | None = None, name: str = "duohil run",
         level: str = RENODE_LEVELS[0]) -> str:
    """A complete .resc for ``spec`` (what the engine runs, for a user to replay in Renode)."""
    lines = [f":name: {name}",
             ":description: generated by duohil/engines/renode/script.py; replays one duohil run "
             f"on Renode {level}",
             ""]
    lines += commands(spec, level=level)
    lines += ["", f"# consoles: stm32 sysbus.{spec.console_uarts[0]}, peer sysbus.{spec.console_uarts[1]}"]
    if duration_ps is not None:
        lines.append(run_for(duration_ps))
    return "\n".join(lines) + "\n"


def link_fault_commands(faults: Iterable[tuple[str, tuple]]) -> list[str]:
    """Monitor lines for link faults given as (method, args): ("FrameFault", ("peer->stm32", 3, "LEN",
    "flip", 128)) -> 'link FrameFault "peer->stm32" 3 "LEN" "flip" 128'."""
    out = []
    for method, args in faults:
        rendered = [quoted(a) if isinstance(a, str) else str(int(a)) for a in args]
        out.append(" ".join([LINK_NAME, method, *rendered]))
    return out


# -- robot variables ----------------------------------------------------------------------------------------
# g_status fields the Renode robot suites read with `sysbus ReadDoubleWord` (all 4-byte aligned u32/i32).
ROBOT_STATUS_FIELDS = ("frames_ok", "crc_errors", "resyncs", "len_errors", "rejected", "setpoints",
                       "sensor_reports", "sensor_flags", "rx_bytes")
ROBOT_STM32_VARIANTS = ("buggy", "fixed", "fixed-no-resync", "fixed-no-layout")


def robot_variables(build: Path = REPO_ROOT / "build") -> str:
    """A Robot Framework variable file (Python) with the address of each g_status field the Renode
    suites read, per STM32 image, from the images' DWARF: the suites never hard-code an offset."""
    from ..builtin.loaders import dwarf
    status: dict[str, dict[str, int]] = {}
    for variant in ROBOT_STM32_VARIANTS:
        elf = build / "stm32" / f"{variant}.elf"
        info = dwarf.dwarf_info(elf)
        base, _ = info.symbol("g_status")
        layout = info.type_of("g_status")
        offsets = {m.name: m.offset for m in getattr(layout, "members", [])}
        missing = [f for f in ROBOT_STATUS_FIELDS if f not in offsets]
        if missing:
            raise ConfigError(f"g_status has no field(s) {', '.join(missing)}", file=elf, field="g_status")
        status[variant] = {f: base + offsets[f] for f in ROBOT_STATUS_FIELDS}
    lines = ['"""Generated by `python -m duohil.engines.renode.script robot-vars`: do not edit.',
             'Addresses of g_status fields per STM32 image, from DWARF (robot/renode/*.robot)."""', "",
             "STM32_STATUS = {"]
    for variant, fields in status.items():
        inner = ", ".join(f'"{f}": {a:#010x}' for f, a in fields.items())
        lines.append(f'    "{variant}": {{{inner}}},')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m duohil.engines.renode.script robot-vars [OUT]`` (default build/renode/duohil_vars.py)
    or ``resc STM32_ELF PEER_ELF [SECONDS] [--level master|1.16.1]`` (prints a .resc replaying a
    default run on that Renode)."""
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["robot-vars"]:
        out = Path(args[1]) if len(args) > 1 else REPO_ROOT / "build" / "renode" / "duohil_vars.py"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(robot_variables())
        print(out)
        return 0
    level = RENODE_LEVELS[0]
    if "--level" in args:
        i = args.index("--level")
        level = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
        if level not in RENODE_LEVELS:
            print(f"--level: expected {' or '.join(RENODE_LEVELS)}, got {level!r}", file=sys.stderr)
            return 2
    if args[:1] == ["resc"] and len(args) in (3, 4):
        spec = RunSpec(MachineSpec(REPO_ROOT / "platforms" / "stm32h743.repl", Path(args[1])),
                       MachineSpec(REPO_ROOT / "platforms" / "esp32c3_peer.repl", Path(args[2])))
        duration = None if len(args) == 3 else round(float(args[3]) * 1e9) * 1000
        sys.stdout.write(resc(spec, duration_ps=duration, level=level))
        return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
