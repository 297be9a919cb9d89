"""The Renode engine as text: everything about it that can be checked without Renode.

Generated monitor commands and .resc (golden), the hand-written platforms/duohil.resc, the platform
files against the Renode types/parameters that exist in Renode's sources (a checked list below, each
with its source file), the C# link model's declarations, the renode-test suites and the CI workflows.

Sources: renode/renode-infrastructure at 0c7d076 ("I"), renode/renode at 06854d4 ("R"),
antmicro/pyrenode3 at dde4a47 ("P") — the snapshots /work/shared/reference/renode.md was written from.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from duohil.engines import base
from duohil.engines.base import PS_PER_MS, PS_PER_US, MachineSpec, RunSpec
from duohil.engines.builtin.loaders.repl import parse_file, parse_text
from duohil.engines.renode import engine as renode_engine
from duohil.engines.renode import script

ROOT = Path(__file__).resolve().parents[1]
LINK_CS = ROOT / "platforms" / "renode" / "DuohilUartLink.cs"
RESC = ROOT / "platforms" / "duohil.resc"
ROBOT_DIR = ROOT / "robot" / "renode"
WORKFLOWS = ROOT / "ci" / "workflows"
I = "renode/renode-infrastructure@0c7d076:"


# -- time strings ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ps, text", [
    (10 * PS_PER_US, "0.000010000"),
    (PS_PER_MS, "0.001000000"),
    (10 * PS_PER_MS, "0.010000000"),
    (base.PS_PER_S, "1.000000000"),
    (123_456_789_000, "0.123456789"),
    (0, "0.000000000"),
])
def test_seconds_are_plain_seconds(ps, text):
    assert script.seconds(ps) == text
    assert "ms" not in text and "us" not in text


def test_seconds_parse_back_exactly_like_renode():
    # TimeInterval.TryParse (I src/Emulator/Main/Time/TimeInterval.cs): fraction via double, truncated.
    values = list(range(0, 20000)) + [10**9 - 1, 10**9 + 7, 4_294_967_297] + \
        [k * 10**6 + j for k in range(0, 2000, 7) for j in (0, 1, 999)]
    bad = [ns for ns in values if script._renode_parses_to_ns(script.seconds(ns * 1000)) != ns]
    assert not bad
    # the half-nanosecond suffix really is needed for some values (else this guard would be dead code)
    assert any(script.seconds(ns * 1000).endswith("5") and len(script.seconds(ns * 1000)) == 12
               for ns in range(0, 20000))


def test_seconds_rejects_sub_nanosecond_and_negative():
    with pytest.raises(ValueError):
        script.seconds(1500)
    with pytest.raises(ValueError):
        script.seconds(-1000)


def test_seed_fits_renode_int():
    assert script.renode_seed(7) == 7
    assert 0 <= script.renode_seed(2**40 + 3) < 2**31


# -- generated commands and .resc -----------------------------------------------------------------------------
@pytest.fixture
def spec(tmp_path):
    files = {}
    for name in ("stm32.elf", "peer.elf"):
        (tmp_path / name).write_bytes(b"\x7fELF")
        files[name] = tmp_path / name
    return RunSpec(stm32=MachineSpec(ROOT / "platforms" / "stm32h743.repl", files["stm32.elf"]),
                   peer=MachineSpec(ROOT / "platforms" / "esp32c3_peer.repl", files["peer.elf"]),
                   quantum_ps=10 * PS_PER_US, seed=1234)


def test_commands_golden(spec):
    p = lambda path: "@" + str(Path(path).resolve())  # noqa: E731
    renode = ROOT / "platforms" / "renode"
    assert script.commands(spec) == [
        f"include {p(renode / 'DuohilCores.cs')}",
        f"include {p(renode / 'DuohilModels.cs')}",
        f"include {p(LINK_CS)}",
        "emulation SetSeed 1234",
        "emulation SetGlobalSerialExecution true",
        'mach create "stm32"',
        f"machine LoadPlatformDescription {p(renode / 'stm32h743.renode-master.repl')}",
        'machine LoadPlatformDescriptionFromString """\n'
        "// duohil overlay for Renode, machine 'stm32' (duohil/engines/renode/script.py)\n"
        "usart3Duohil:\n"
        "    ReceiveDmaRequest -> dmamux1@45\n"
        "\n"
        "cpu:\n"
        "    PerformanceInMips: 480\n"
        '"""',
        f"sysbus LoadELF {p(spec.stm32.elf)}",
        f'macro reset """\nsysbus LoadELF {p(spec.stm32.elf)}\n"""',
        'mach create "peer"',
        f"machine LoadPlatformDescription {p(renode / 'esp32c3_peer.renode-master.repl')}",
        'machine LoadPlatformDescriptionFromString """\n'
        "// duohil overlay for Renode, machine 'peer' (duohil/engines/renode/script.py)\n"
        "cpu:\n"
        "    PerformanceInMips: 160\n"
        '"""',
        f"sysbus LoadELF {p(spec.peer.elf)}",
        f'macro reset """\nsysbus LoadELF {p(spec.peer.elf)}\n"""',
        'emulation CreateDuohilUartLink "link"',
        'mach set "stm32"',
        "connector Connect sysbus.usart3Duohil link",
        'mach set "peer"',
        "connector Connect sysbus.uart1Duohil link",
        "link Seed 1234",
        'emulation SetGlobalQuantum "0.000010000"',
        "mach clear",
    ]
    # SetGlobalAdvanceImmediately only prints its argument (renode-infrastructure TimeSourceBase.cs:59,311)
    assert not any("AdvanceImmediately" in c for c in script.commands(spec))


@pytest.mark.parametrize("level", script.RENODE_LEVELS)
def test_commands_load_the_overlay_of_the_level(spec, level):
    cmds = script.commands(spec, level=level)
    loads = [c for c in cmds if c.startswith("machine LoadPlatformDescription @")]
    assert [Path(c.split("@", 1)[1]).name for c in loads] == [f"stm32h743.renode-{level}.repl",
                                                            f"esp32c3_peer.renode-{level}.repl"]


def test_a_users_own_platform_is_loaded_as_given(spec, tmp_path):
    from dataclasses import replace
    own = tmp_path / "board.repl"
    own.write_text((ROOT / "platforms" / "stm32h743.repl").read_text())
    cmds = script.commands(replace(spec, stm32=MachineSpec(own, spec.stm32.elf)))
    assert f"machine LoadPlatformDescription @{own.resolve()}" in cmds
    assert "connector Connect sysbus.usart3 link" in cmds          # no renaming on a user platform
    assert script.platform_for(own, "1.16.1") == own


def test_reset_macro_reloads_the_elf_and_the_config_patch():
    m = MachineSpec(ROOT / "platforms" / "stm32h743.repl", ROOT / "x.elf")
    assert script.reset_macro(m) == f'macro reset """\nsysbus LoadELF @{ROOT / "x.elf"}\n"""'
    if BUILT_STM32.is_file():
        patched = MachineSpec(m.platform, BUILT_STM32, "g_config", {"stat_period_ms": 100})
        macro = script.reset_macro(patched)
        writes = [w.command() for w in script.config_writes(patched)]
        lines = macro.splitlines()
        assert writes and lines[1].startswith("sysbus LoadELF") and lines[2:-1] == writes


def test_quantum_follows_the_spec(spec):
    from dataclasses import replace
    cmds = script.commands(replace(spec, quantum_ps=20 * PS_PER_US))
    assert 'emulation SetGlobalQuantum "0.000020000"' in cmds


def test_resc_has_determinism_settings_and_seconds_only(spec):
    text = script.resc(spec, duration_ps=250 * PS_PER_MS)
    assert "emulation SetGlobalSerialExecution true" in text
    assert "emulation SetSeed 1234" in text
    assert 'emulation SetGlobalQuantum "0.000010000"' in text
    assert text.rstrip().endswith('emulation RunFor "0.250000000"')
    assert "usart3Duohil:\n    ReceiveDmaRequest -> dmamux1@45" in text
    for quoted_time in re.findall(r'(?:RunFor|Quantum) "([^"]*)"', text):
        assert re.fullmatch(r"\d+\.\d{9}5?", quoted_time), quoted_time


def test_overlay_is_valid_repl_on_top_of_the_platform(spec):
    for machine, platform in (("stm32", spec.stm32.platform), ("peer", spec.peer.platform)):
        merged = parse_file(script.platform_for(platform, "master"))
        parse_text(script.overlay(machine, spec), f"<{machine} overlay>", into=merged)
        assert merged["cpu"].prop("PerformanceInMips") == script.PERFORMANCE_IN_MIPS[machine]
    merged = parse_file(script.platform_for(spec.stm32.platform, "master"))
    parse_text(script.overlay("stm32", spec), "<overlay>", into=merged)
    wire = merged["usart3Duohil"].connections["ReceiveDmaRequest"]
    assert "dmamux1@45" in str(wire.targets) or "45" in str(wire.targets)


def test_overlay_rejects_a_uart_without_dma_request(spec):
    from dataclasses import replace
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError):
        script.overlay("stm32", replace(spec, link_uarts=("lpuart1", "uart1")))


def test_stall_and_run_commands():
    assert script.stall_commands("peer", True) == ['mach set "peer"', "sysbus.cpu IsHalted true", "mach clear"]
    assert script.stall_commands("peer", False)[1] == "sysbus.cpu IsHalted false"
    assert script.run_for(20 * PS_PER_MS) == 'emulation RunFor "0.020000000"'


def test_link_fault_commands():
    assert script.link_fault_commands([("FrameFault", ("peer->stm32", 3, "LEN", "flip", 128)),
                                       ("Drop", ("stm32->peer", 40))]) == [
        'link FrameFault "peer->stm32" 3 "LEN" "flip" 128', 'link Drop "stm32->peer" 40']


def test_missing_file_is_a_config_error(spec, tmp_path):
    from dataclasses import replace
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError, match="not found"):
        script.commands(replace(spec, stm32=MachineSpec(spec.stm32.platform, tmp_path / "nope.elf")))


def test_words_split_aligned_double_words_and_edge_bytes():
    ws = script.words(0x1002, bytes(range(9)))
    assert [(w.address, w.width) for w in ws] == [(0x1002, 1), (0x1003, 1), (0x1004, 4), (0x1008, 1),
                                                  (0x1009, 1), (0x100A, 1)]
    assert ws[2].command() == "sysbus WriteDoubleWord 0x00001004 0x5040302"


BUILT_STM32 = ROOT / "build" / "stm32" / "fixed.elf"


@pytest.mark.skipif(not BUILT_STM32.is_file(), reason="firmware not built (make firmware)")
def test_config_block_is_patched_with_sysbus_writes(tmp_path):
    from duohil.engines.builtin.loaders import dwarf
    m = MachineSpec(ROOT / "platforms" / "stm32h743.repl", BUILT_STM32, "g_config", {"stat_period_ms": 100})
    writes = script.config_writes(m)
    addr, _ = dwarf.dwarf_info(BUILT_STM32).symbol("g_config")
    image = bytearray(dwarf.initial_bytes(BUILT_STM32, "g_config"))
    for w in writes:
        assert w.command().startswith("sysbus Write")
        image[w.address - addr:w.address - addr + w.width] = w.value.to_bytes(w.width, "little")
    assert dwarf.decode_struct(BUILT_STM32, "g_config", bytes(image))["stat_period_ms"] == 100
    assert script.config_writes(MachineSpec(m.platform, m.elf)) == []


@pytest.mark.skipif(not BUILT_STM32.is_file(), reason="firmware not built (make firmware)")
def test_robot_variables_file(tmp_path):
    text = script.robot_variables()
    ns: dict = {}
    exec(compile(text, "duohil_vars.py", "exec"), ns)          # what Robot's variable-file import does
    status = ns["STM32_STATUS"]
    assert set(status) == set(script.ROBOT_STM32_VARIANTS)
    for fields in status.values():
        assert set(fields) == set(script.ROBOT_STATUS_FIELDS)
        assert all(0x20000000 <= a < 0x20020000 and a % 4 == 0 for a in fields.values())   # DTCM u32


# -- the hand-written .resc -----------------------------------------------------------------------------------
def test_hand_resc_joins_both_machines_at_a_fixed_quantum():
    text = RESC.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for needed in ("include $ORIGIN/renode/DuohilCores.cs",
                   "include $ORIGIN/renode/DuohilModels.cs",
                   "include $ORIGIN/renode/DuohilUartLink.cs",
                   "emulation SetGlobalSerialExecution true",
                   "emulation SetSeed 0",
                   'mach create "stm32"', 'mach create "peer"',
                   "$stm32_platform?=@platforms/renode/stm32h743.renode-master.repl",
                   "$peer_platform?=@platforms/renode/esp32c3_peer.renode-master.repl",
                   "machine LoadPlatformDescription $stm32_platform",
                   "machine LoadPlatformDescription $peer_platform",
                   'emulation CreateDuohilUartLink "link"',
                   "connector Connect sysbus.usart3Duohil link", "connector Connect sysbus.uart1Duohil link",
                   'emulation SetGlobalQuantum "0.000010"'):
        assert needed in lines, needed
    assert lines.index("include $ORIGIN/renode/DuohilCores.cs") < \
        lines.index("include $ORIGIN/renode/DuohilModels.cs")
    assert lines.index("connector Connect sysbus.usart3Duohil link") > lines.index('mach set "stm32"')
    assert lines.index("connector Connect sysbus.uart1Duohil link") > lines.index('mach set "peer"')
    assert "SetGlobalAdvanceImmediately" not in text
    for quoted_time in re.findall(r'(?:RunFor|Quantum) "([^"]*)"', text):
        assert re.fullmatch(r"\d+(\.\d+)?", quoted_time), f"{quoted_time!r} is not plain seconds"
    for rel in re.findall(r"\$ORIGIN/(\S+)", text):
        assert (RESC.parent / rel).is_file(), rel
    for rel in re.findall(r"@(platforms/\S+\.repl)", text):
        assert (ROOT / rel).is_file(), rel


def test_hand_resc_reset_macros_reload_each_image():
    text = RESC.read_text()
    macros = re.findall(r'^macro reset\n"""\n(.*?)\n"""', text, flags=re.M | re.S)
    assert macros == ["sysbus LoadELF $stm32_bin", "sysbus LoadELF $peer_bin"]
    assert text.index('mach create "stm32"') < text.index(macros[0]) < text.index('mach create "peer"')


def test_e_usage_sets_variables_before_including_the_script():
    """`renode -e CMD file.resc` runs CMD after the file (renode-infrastructure src/UI/Options.cs,
    CommandLineInterface.cs), so a `$x=` there loses to the file's `$x?=` default."""
    texts = {p: p.read_text()
             for p in (RESC, ROOT / "platforms" / "duohil-1.16.1.resc", ROOT / "docs" / "renode.md")}
    uses = [(p, u) for p, t in texts.items() for u in re.findall(r"renode -e '([^']*)'(\s+\S+)?", t)]
    assert uses
    good = 0
    for p, (cmds, after) in uses:
        if after.strip().rstrip("`").endswith(".resc"):
            # a script after -e: only as the counter-example, which the text says keeps the defaults
            assert "keep the defaults" in texts[p], (p.name, cmds, after)
        else:
            assert re.search(r";\s*i @platforms/duohil(-1\.16\.1)?\.resc$", cmds), (p.name, cmds)
            good += 1
    assert good >= 3


def test_the_1_16_1_resc_sets_the_1_16_1_platforms_then_includes_the_main_one():
    text = (ROOT / "platforms" / "duohil-1.16.1.resc").read_text()
    assert "$stm32_platform?=@platforms/renode/stm32h743.renode-1.16.1.repl" in text
    assert "$peer_platform?=@platforms/renode/esp32c3_peer.renode-1.16.1.repl" in text
    assert text.rstrip().endswith("include $ORIGIN/duohil.resc")


# -- platform files against Renode's types --------------------------------------------------------------------
# type -> (source file in I, constructor parameters and settable properties, GPIO outputs).
# Numbered outputs ([0-7] -> ...) are checked by INumberedGPIOOutput: listed as "#".
RENODE_TYPES: dict[str, tuple[str, set[str], set[str]]] = {
    "CPU.CortexM": ("src/Emulator/Cores/Arm-M/CortexM.cs",
                    {"cpuType", "nvic", "cpuId", "id", "endianness", "fpuInterruptNumber",
                     "numberOfMPURegions", "enableTrustZone", "numberOfSAURegions", "numberOfIDAURegions",
                     "isCpuWaitSignalSet", "PerformanceInMips", "InitVectorTableOffset"}, set()),
    "IRQControllers.NVIC": ("src/Emulator/Cores/Arm-M/NVIC.cs",
                            {"systickFrequency", "priorityMask", "haltSystickOnDeepSleep"},
                            {"IRQ", "SystemResetRequest", "InSleep", "InDeepSleep", "Lockup"}),
    "Memory.MappedMemory": ("src/Emulator/Main/Peripherals/Memory/MappedMemory.cs",
                            {"size", "segmentSize", "sharedMemoryFileRoot"}, set()),
    "Miscellaneous.STM32H7_RCC": ("src/Emulator/Peripherals/Peripherals/Miscellaneous/STM32H7_RCC.cs",
                                  {"systick", "hseFrequency", "csiFrequency"}, set()),
    "MTD.STM32H7_FlashController": ("src/Emulator/Peripherals/Peripherals/MTD/STM32H7_FlashController.cs",
                                    {"flash1", "flash2"}, {"IRQ"}),
    "Python.PythonPeripheral": ("src/Emulator/Main/Peripherals/Python/PythonPeripheral.cs",
                                {"size", "initable", "script", "filename"}, set()),
    "UART.STM32F7_USART": ("src/Emulator/Peripherals/Peripherals/UART/STM32F7_USART.cs",
                           {"frequency", "lowPowerMode"}, {"IRQ", "ReceiveDmaRequest"}),
    "DMA.STM32DMA": ("src/Emulator/Peripherals/Peripherals/DMA/STM32DMA.cs", set(), {"#"}),
    "Miscellaneous.STM32_DMAMUX": ("src/Emulator/Peripherals/Peripherals/Miscellaneous/STM32_DMAMUX.cs",
                                   {"numberOfInputRequestChannels", "numberOfOutputRequestChannels",
                                    "numberOfRequestGeneratorChannels"}, {"#"}),
    "Timers.STM32_Timer": ("src/Emulator/Peripherals/Peripherals/Timers/STM32_Timer.cs",
                           {"frequency", "initialLimit"},
                           {"IRQ", "BreakInterrupt", "UpdateInterrupt", "TriggerInterrupt",
                            "CommutationInterrupt", "CaptureCompareInterrupt", "#"}),
    "GPIOPort.STM32_GPIOPort": ("src/Emulator/Peripherals/Peripherals/GPIOPort/STM32_GPIOPort.cs",
                                {"modeResetValue", "outputSpeedResetValue", "pullUpPullDownResetValue",
                                 "numberOfAFs", "invertedAFPins"}, {"#"}),
    "Timers.STM32_IndependentWatchdog": (
        "src/Emulator/Peripherals/Peripherals/Timers/STM32_IndependentWatchdog.cs",
        {"frequency", "windowOption", "defaultPrescaler"}, set()),
    "CPU.RiscV32": ("src/Emulator/Cores/RiscV/RiscV32.cs",
                    {"cpuType", "timeProvider", "hartId", "privilegedArchitecture", "privilegeArchitecture",
                     "endianness", "nmiVectorAddress", "nmiVectorLength", "allowUnalignedAccesses",
                     "pmpNumberOfAddrBits", "interruptMode", "privilegeLevels", "useMachineAtomicState",
                     "PerformanceInMips"}, set()),
    "UART.ESP32_UART": ("src/Emulator/Peripherals/Peripherals/UART/ESP32_UART.cs", set(), {"IRQ"}),
    "IRQControllers.CoreLevelInterruptor": ("src/Emulator/Cores/RiscV/CoreLevelInterruptor.cs",
                                            {"frequency", "numberOfTargets", "divider"}, {"#"}),
    "IRQControllers.PlatformLevelInterruptController": (
        "src/Emulator/Cores/RiscV/PlatformLevelInterruptController.cs",
        {"numberOfSources", "numberOfContexts", "prioritiesEnabled"}, {"#"}),
}
# duohil's own peripherals (platforms/renode/DuohilModels.cs), used by platforms/renode/*.models.repl.
OWN_TYPES: dict[str, tuple[str, set[str], set[str]]] = {
    "UART.DuohilH7USART": ("platforms/renode/DuohilModels.cs", {"frequency"},
                           {"IRQ", "ReceiveDmaRequest", "TransmitDmaRequest"}),
    "DMA.DuohilH7DMA": ("platforms/renode/DuohilModels.cs", set(), {"#"}),
    "UART.DuohilESP32C3UART": ("platforms/renode/DuohilModels.cs", set(), {"IRQ"}),
}
# Constructor parameters and properties that exist on Renode master only (renode-infrastructure 0c7d076
# vs add012a, the commit v1.16.1 pins): STM32_DMAMUX.cs:20 vs :19, STM32H7_RCC.cs:26 vs :18 (no
# arguments), CortexM.cs:226 (InitVectorTableOffset) vs absent. Master *requires* the DMAMUX one.
MASTER_ONLY = {("Miscellaneous.STM32_DMAMUX", "numberOfInputRequestChannels"),
               ("Miscellaneous.STM32H7_RCC", "systick"), ("Miscellaneous.STM32H7_RCC", "hseFrequency"),
               ("Miscellaneous.STM32H7_RCC", "csiFrequency"), ("CPU.CortexM", "InitVectorTableOffset")}
REQUIRED_ON_MASTER = {("Miscellaneous.STM32_DMAMUX", "numberOfInputRequestChannels")}
# Enum values used in the repl files, with where they are declared.
RENODE_ENUMS = {"PrivilegedArchitecture.Priv1_10": "src/Emulator/Cores/RiscV/BaseRiscV.cs"}

# Names in platforms/*.repl that Renode does not have: the platform owner is fixing them. Each
# entry says what Renode expects; strict xfail, so a fixed name makes this list fail until pruned.
KNOWN_WRONG: dict[tuple[str, str, str], str] = {}


def _repl_items():
    items = []
    for name in ("stm32h743.repl", "esp32c3_peer.repl"):
        for entry in parse_file(ROOT / "platforms" / name):
            if entry.type is None:
                continue
            for key in entry.props:
                mark = ()
                if (name, entry.name, key) in KNOWN_WRONG:
                    mark = pytest.mark.xfail(strict=True, reason=f"Renode expects "
                                             f"{KNOWN_WRONG[(name, entry.name, key)]} (repl fix pending)")
                items.append(pytest.param(name, entry.name, entry.type, "prop", key,
                                          id=f"{name}:{entry.name}.{key}", marks=mark))
            for source in entry.connections:
                items.append(pytest.param(name, entry.name, entry.type, "output", source,
                                          id=f"{name}:{entry.name}->{source}"))
            items.append(pytest.param(name, entry.name, entry.type, "type", None,
                                      id=f"{name}:{entry.name}:{entry.type}"))
    return items


@pytest.mark.parametrize("file, entry, rtype, kind, name", _repl_items())
def test_repl_uses_only_renode_names(file, entry, rtype, kind, name):
    assert rtype in RENODE_TYPES, f"{file}: {entry}: {rtype} is not in the checked list of Renode types"
    source, params, outputs = RENODE_TYPES[rtype]
    if kind == "prop":
        assert name in params, (f"{file}: {entry}.{name}: {rtype} ({I}{source}) has no constructor "
                                f"parameter or property {name!r}; it has {sorted(params)}")
    elif kind == "output":
        ok = (name is None and (outputs - {"#"}) and "IRQ" in outputs) or name in outputs or \
             (name is not None and name.isdigit() and "#" in outputs) or (name is None and "#" in outputs)
        assert ok, f"{file}: {entry}: {rtype} ({I}{source}) has no output {name!r}"


def test_repl_enum_values_exist():
    text = (ROOT / "platforms" / "esp32c3_peer.repl").read_text()
    for value in re.findall(r"\b(PrivilegedArchitecture\.\w+)", text):
        assert value in RENODE_ENUMS, value


PLATFORMS = ("stm32h743", "esp32c3_peer")


def _used_params(platform) -> set[tuple[str, str]]:
    return {(e.type, k) for e in platform if e.type for k in e.props}


@pytest.mark.parametrize("level", script.RENODE_LEVELS)
@pytest.mark.parametrize("name", PLATFORMS)
def test_renode_platform_per_level_uses_only_names_that_level_has(name, level):
    wrapper = script.platform_for(ROOT / "platforms" / f"{name}.repl", level)
    assert wrapper == ROOT / "platforms" / "renode" / f"{name}.renode-{level}.repl"
    merged = parse_file(wrapper)
    types = {**RENODE_TYPES, **OWN_TYPES}
    for e in merged:
        if e.type is None:
            continue
        assert e.type in types, f"{wrapper.name}: {e.name}: {e.type} unknown"
        _src, params, _outs = types[e.type]
        for k in e.props:
            assert k in params, f"{wrapper.name}: {e.name}.{k} not a parameter of {e.type}"
    used = _used_params(merged)
    if level == "master":
        assert REQUIRED_ON_MASTER & {(t, k) for t, k in MASTER_ONLY if t in {e.type for e in merged}} <= used
    else:
        assert not used & MASTER_ONLY, f"{wrapper.name} uses master-only {sorted(used & MASTER_ONLY)}"


def test_the_shared_platforms_use_nothing_master_only():
    for name in PLATFORMS:
        assert not _used_params(parse_file(ROOT / "platforms" / f"{name}.repl")) & MASTER_ONLY, name
    master = parse_file(ROOT / "platforms" / "renode" / "stm32h743.renode-master.repl")
    assert master["dmamux1"].prop("numberOfInputRequestChannels") == 115


@pytest.mark.parametrize("name", PLATFORMS)
def test_our_models_take_the_stock_blocks_places(name):
    base = parse_file(ROOT / "platforms" / f"{name}.repl")
    models = parse_file(ROOT / "platforms" / "renode" / f"{name}.models.repl")
    swapped = {old: new for old, new in script.RENODE_NAMES.items() if any(e.name == old for e in base)}
    assert swapped
    for old, new in swapped.items():
        assert models[old].registrations == [], f"{old} still registered on the sysbus"
        assert models[new].base == base[old].base and models[new].type in OWN_TYPES
        old_irqs = {k: str(v.targets) for k, v in base[old].connections.items()}
        new_irqs = {k: str(v.targets) for k, v in models[new].connections.items()}
        for k, v in old_irqs.items():
            assert new_irqs.get(k) == v, (old, k)
    if name == "stm32h743":
        wires = {k: str(v.targets) for k, v in models["dmamux1"].connections.items()}
        assert any("dma1Duohil" in v for v in wires.values())
        assert any("dma2Duohil" in v for v in wires.values())
        tx = models["usart3Duohil"].connections["TransmitDmaRequest"].targets
        assert [(t.dest, t.line) for t in tx] == [("dmamux1", 46)]


def test_own_types_are_declared_in_the_csharp():
    cs = (ROOT / "platforms" / "renode" / "DuohilModels.cs").read_text()
    for rtype, (_src, params, outputs) in OWN_TYPES.items():
        ns, cls = rtype.rsplit(".", 1)
        block = cs[cs.index(f"namespace Antmicro.Renode.Peripherals.{ns}"):]
        assert re.search(rf"public sealed class {cls}\b", block), rtype
        ctor = re.search(rf"public {cls}\(IMachine machine([^)]*)\)", cs)
        assert ctor, rtype
        assert {a.split()[-1] for a in ctor.group(1).split(",") if a.strip()} == params, rtype
        for out in outputs - {"#"}:
            assert re.search(rf"public GPIO {out} {{ get; }}", cs), (rtype, out)
        if "#" in outputs:
            assert "IReadOnlyDictionary<int, IGPIO> Connections" in cs


@pytest.mark.parametrize("features, level", [
    (script.RenodeFeatures("1.16.1+20260821git06854d4", True, True, True, True), "master"),
    (script.RenodeFeatures("1.16.1.12345", True, False, True, True), "1.16.1"),
])
def test_renode_level_from_the_loaded_types(features, level):
    assert script.renode_level(features) == level


@pytest.mark.parametrize("features, missing", [
    (script.RenodeFeatures("1.16.0.1", False, False, False, True), ["STM32_DMAMUX", "flash controller"]),
    (script.RenodeFeatures("1.15.3.1", False, False, False, False), ["STM32_DMAMUX", "ESP32_UART"]),
])
def test_older_renode_is_refused_in_one_line(features, missing):
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        script.renode_level(features)
    text = str(info.value)
    assert "\n" not in text and features.version in text and "1.16.1" in text
    for m in missing:
        assert m in text


def test_link_uart_rx_dma_request_is_wired_in_the_platform():
    p = parse_file(ROOT / "platforms" / "stm32h743.repl")
    wire = p["usart3"].connections.get("ReceiveDmaRequest")
    assert wire is not None and "45" in str(wire.targets)


# -- the C# link model ----------------------------------------------------------------------------------------
CS = LINK_CS.read_text()


def _public_members(text: str) -> set[str]:
    return set(re.findall(r"public\s+(?:static\s+)?(?:[\w<>\[\],?]+\s+)+(\w+)\s*(?:\(|\{|=>)", text))


def test_cs_declares_the_renode_interfaces():
    assert re.search(r"namespace\s+Antmicro\.Renode\.", CS), "TypeManager only scans Antmicro.Renode.*"
    assert re.search(r"class\s+DuohilUartLink\s*:\s*IExternal\s*,\s*IHasOwnLife\s*,\s*IConnectable<IUART>", CS)
    assert re.search(r"public\s+static\s+void\s+CreateDuohilUartLink\(\s*this\s+Emulation\s+\w+,\s*string", CS)
    assert "ExternalsManager.AddExternal(new DuohilUartLink(), name)" in CS
    assert re.search(r"public\s+void\s+AttachTo\(IUART\s+\w+\)", CS)
    assert re.search(r"public\s+void\s+DetachFrom\(IUART\s+\w+\)", CS)
    for m in ("Start", "Pause", "Resume"):
        assert re.search(rf"public\s+void\s+{m}\(\)", CS)
    assert "public bool IsPaused" in CS
    assert ".HandleTimeDomainEvent(recipient.WriteChar, value, when)" in CS
    assert "CharReceived +=" in CS and "CharReceived -=" in CS
    assert "TimeDomainsManager.Instance.VirtualTimeStamp" in CS


def test_cs_fault_api():
    sigs = {
        "FlipBit": r"string direction, int index, int bit",
        "Drop": r"string direction, int index",
        "Insert": r"string direction, int index, int value",
        "Duplicate": r"string direction, int index",
        "Delay": r"string direction, int index, ulong microseconds",
        "Noise": r"string direction, uint berPpm, ulong startUs, ulong durationUs",
        "Truncate": r"string direction, int index, int end",
        "FrameFault": r"string direction, int frame, string field, string action, long argument",
    }
    for name, args in sigs.items():
        assert re.search(rf"public\s+void\s+{name}\({args}\)", CS), name
    code = re.sub(r"//[^\n]*", "", CS)
    assert "Random(" not in code and "System.Random" not in code, "noise must not use System.Random"
    assert "SplitMix64" in CS and "0x9E3779B97F4A7C15UL" in code


def test_cs_members_used_by_driver_robot_and_resc_exist():
    members = _public_members(CS)
    used = set()
    texts = [p.read_text() for p in ROBOT_DIR.glob("*")] + [RESC.read_text(),
             (ROOT / "duohil" / "engines" / "renode" / "engine.py").read_text(),
             (ROOT / "duohil" / "engines" / "renode" / "script.py").read_text()]
    for t in texts:
        used |= set(re.findall(r"\blink ([A-Z]\w+) [\"\d$]", t))
        used |= set(re.findall(r"self\.link\.(\w+)", t))
    used = {u for u in used if u[0].isupper()}
    assert used, "found no link member uses"
    missing = sorted(u for u in used if u not in members)
    assert not missing, f"DuohilUartLink.cs lacks {missing}"


def test_cs_braces_balance():
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', re.sub(r"//[^\n]*", "", CS))
    assert code.count("{") == code.count("}")
    assert code.count("(") == code.count(")")


# -- robot suites ---------------------------------------------------------------------------------------------
# Renode's keywords (R src/Renode/RobotFrameworkEngine/{RenodeKeywords,UartKeywords}.cs) the suites use.
RENODE_KEYWORDS = {"Execute Command", "Create Terminal Tester", "Wait For Line On Uart", "Reset Emulation",
                   "Start Emulation", "Execute Python", "Should Not Be On Uart", "Wait For Next Line On Uart"}


def _robot_models():
    from robot.api import get_model, get_resource_model
    out = {p: get_model(p) for p in sorted(ROBOT_DIR.glob("*.robot"))}
    out.update({p: get_resource_model(p) for p in sorted(ROBOT_DIR.glob("*.resource"))})
    return out


def test_robot_files_parse_and_are_tagged_renode():
    from robot.api.parsing import ModelVisitor
    models = _robot_models()
    assert {p.name for p in models} >= {"nominal.robot", "cm2_resync.robot", "cm6_layout.robot"}
    for path, model in models.items():
        errors = []

        class V(ModelVisitor):
            def generic_visit(self, node):
                errors.extend(getattr(node, "errors", ()) or ())
                super().generic_visit(node)

        V().visit(model)
        assert not errors, f"{path.name}: {errors}"
        if path.suffix == ".robot":
            tags = [t.value for s in model.sections for st in s.body
                    if type(st).__name__ == "TestTags" for t in st.get_tokens("ARGUMENT")]
            assert "renode" in tags, f"{path.name} is not tagged renode"


def test_robot_keywords_exist():
    from robot.api.parsing import ModelVisitor
    from robot.libraries.BuiltIn import BuiltIn
    from robot.libraries.OperatingSystem import OperatingSystem

    def names(lib):
        return {n.replace("_", " ").lower() for n in dir(lib) if not n.startswith("_")}

    known = {k.lower() for k in RENODE_KEYWORDS} | names(BuiltIn) | names(OperatingSystem)
    defined, called = set(), []
    for path, model in _robot_models().items():
        class V(ModelVisitor):
            def visit_Keyword(self, node):
                defined.add(node.name.lower())
                self.generic_visit(node)

            def visit_KeywordCall(self, node):
                called.append((path.name, node.keyword))

        V().visit(model)
    missing = sorted({(f, k) for f, k in called if k.lower() not in known | defined})
    assert not missing, missing


def test_robot_suites_use_the_boot_line_and_seconds():
    nominal = (ROBOT_DIR / "nominal.robot").read_text()
    assert nominal.count("Wait For Line On Uart    BOOT") == 2
    for p in ROBOT_DIR.glob("*"):
        for quoted_time in re.findall(r'(?:RunFor|Quantum) "([^"]*)"', p.read_text()):
            assert quoted_time.startswith("${") or re.fullmatch(r"\d+(\.\d+)?", quoted_time)
    resource = (ROBOT_DIR / "duohil.resource").read_text()
    assert re.search(r"\$\{QUANTUM\}\s+0\.000010\b", resource)
    assert "build/renode/duohil_vars.py" in resource


def test_cm2_and_cm6_cover_both_ways():
    cm2 = (ROBOT_DIR / "cm2_resync.robot").read_text()
    cm6 = (ROBOT_DIR / "cm6_layout.robot").read_text()
    for text in (cm2, cm6):
        assert "Reproduces On Buggy" in text and "Holds On Fixed" in text and "Without The" in text
    assert 'link FrameFault "peer->stm32"' in cm2
    assert "pooled-natural" in cm6


# -- CI workflows ---------------------------------------------------------------------------------------------
def _workflow(name):
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))          # YAML 1.1 reads the key `on` as true
    return data


def _runs(job):
    return "\n".join(step.get("run", "") for step in job["steps"]).replace("\\\n", " ")


def test_renode_workflow():
    wf = _workflow("renode.yml")
    firmware, job = wf["jobs"]["firmware"], wf["jobs"]["renode"]
    assert "make firmware" in _runs(firmware)
    assert "duohil.engines.renode.script robot-vars build/renode/duohil_vars.py" in _runs(firmware)
    assert job["needs"] == "firmware"
    assert job["container"]["image"].startswith("antmicro/renode:")
    runs = _runs(job)
    for suite in ("nominal", "cm2_resync", "cm6_layout"):
        assert re.search(rf"renode-test\b[^\n]*robot/renode/{suite}\.robot", runs), suite
    assert re.search(r"pytest\b.*-m renode", runs)
    env = {**wf.get("env", {}), **job.get("env", {})}
    for step in job["steps"]:
        env.update(step.get("env", {}))
    assert env.get("PYRENODE_RUNTIME") == "coreclr"
    assert sum(k in env for k in ("PYRENODE_BIN", "PYRENODE_PKG", "PYRENODE_BUILD_DIR")) == 1
    assert wf["on"]


def test_builtin_workflow():
    wf = _workflow("builtin.yml")
    runs = "\n".join(_runs(j) for j in wf["jobs"].values())
    assert "make test" in runs and "make demo" in runs
    assert "renode" not in runs.lower().replace("--exclude renode", "")


def test_campaign_workflow_shards_every_scenario_and_gates_the_merge():
    wf = _workflow("campaign.yml")
    shard, merge = wf["jobs"]["shard"], wf["jobs"]["merge"]
    n = int(wf["env"]["SHARDS"])
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, n + 1))
    crash_modes = sorted(p.stem for p in (ROOT / "scenarios").glob("cm*.yaml")) + ["nominal"]
    assert shard["strategy"]["matrix"]["scenario"] == crash_modes
    assert merge["strategy"]["matrix"]["scenario"] == crash_modes
    runs = _runs(shard)
    assert "make firmware" in runs
    assert re.search(r"duohil campaign scenarios/\$\{\{ matrix.scenario \}\}\.yaml --trials \"\$TRIALS\" "
                     r"--shard \$\{\{ matrix.shard \}\}/\$SHARDS "
                     r"--json reports/campaign/\$\{\{ matrix.scenario \}\}-\$\{\{ matrix.shard \}\}\.json", runs)
    up = next(st for st in shard["steps"] if st.get("uses", "").startswith("actions/upload-artifact"))
    down = next(st for st in merge["steps"] if st.get("uses", "").startswith("actions/download-artifact"))
    assert up["with"]["name"] == "campaign-${{ matrix.scenario }}-${{ matrix.shard }}"
    assert down["with"]["pattern"] == "campaign-${{ matrix.scenario }}-*" and down["with"]["merge-multiple"]
    assert merge["needs"] == "shard"
    assert re.search(r"duohil merge reports/campaign/\$\{\{ matrix.scenario \}\}-\*\.json "
                     r"-o reports/campaign/\$\{\{ matrix.scenario \}\}\.json --check", _runs(merge))
    assert wf["on"]["schedule"] and "workflow_dispatch" in wf["on"]


# -- availability reasons (no Renode needed) ------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch):
    for v in ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN", "PYRENODE_RUNTIME",
              "PYRENODE_BUILD_OUTPUT"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(renode_engine.RenodeEngine, "_loaded", None)
    return monkeypatch


def test_availability_names_pyrenode3_when_missing(clean_env):
    clean_env.setattr(renode_engine.importlib.util, "find_spec", lambda name: None)
    ok, reason = renode_engine.RenodeEngine.availability()
    assert not ok and "pyrenode3" in reason and "PyPI" in reason


@pytest.mark.parametrize("env, words", [
    ({}, ["PYRENODE_BIN", "PYRENODE_PKG", "PYRENODE_BUILD_DIR"]),
    ({"PYRENODE_RUNTIME": "dotnet"}, ["PYRENODE_RUNTIME", "coreclr"]),
    ({"PYRENODE_RUNTIME": "coreclr", "PYRENODE_BIN": "/x", "PYRENODE_PKG": "/y"}, ["at most one"]),
    ({"PYRENODE_RUNTIME": "coreclr", "PYRENODE_BIN": "/nonexistent/renode"}, ["not an executable"]),
    ({"PYRENODE_RUNTIME": "mono", "PYRENODE_BIN": "/bin/sh"}, ["coreclr"]),
    ({"PYRENODE_RUNTIME": "coreclr", "PYRENODE_BUILD_DIR": "/"}, ["output/bin/Release"]),
])
def test_availability_reasons_for_pyrenode_variables(clean_env, env, words):
    clean_env.setattr(renode_engine.importlib.util, "find_spec", lambda name: object())
    for k, v in env.items():
        clean_env.setenv(k, v)
    ok, reason = renode_engine.RenodeEngine.availability()
    assert not ok
    for w in words:
        assert w in reason, reason


def test_capabilities_are_honest():
    caps = renode_engine.RenodeEngine.capabilities
    assert caps == {base.LINK_FAULTS, base.PEER_STALL, base.CRASH_RECORD, base.DMA_LATENCY}
    assert set(renode_engine.NOT_MODELLED) == base.ALL_CAPABILITIES - caps
    assert renode_engine.RenodeEngine.name == "renode"


def test_a_scenario_with_a_plant_is_skipped_on_renode_before_the_engine_is_made(monkeypatch):
    """CM1 sets plant parameters and expects runaways; Renode has no plant. The run is refused
    with the capability (a skip reason), not with a TypeError from the engine's constructor."""
    from duohil import scenario as scmod
    from duohil.duo import CapabilityMissing, Duo
    from duohil.errors import EngineUnavailable
    sc = scmod.load(scmod.REPO / "scenarios" / "cm1_cmd_timeout.yaml")
    monkeypatch.setattr(renode_engine.RenodeEngine, "availability", classmethod(lambda cls: (True, "test")))
    with pytest.raises(CapabilityMissing) as info:
        Duo.from_scenario(sc, "buggy", engine="renode")
    assert info.value.missing == ["plant"] and "scenario cm1_cmd_timeout" in str(info.value)
    with pytest.raises(CapabilityMissing) as info:
        Duo.start(engine="renode", plant={"limit_max": 9000})
    assert info.value.missing == ["plant"]
    # where Renode cannot run at all, that stays the reason given
    monkeypatch.setattr(renode_engine.RenodeEngine, "availability", classmethod(lambda cls: (False, "no Renode")))
    with pytest.raises(EngineUnavailable, match="no Renode"):
        Duo.from_scenario(sc, "buggy", engine="renode")


# -- fault plan -> monitor commands (the session's inject, with the monitor replaced) ---------------------------
def _bare_session():
    s = object.__new__(renode_engine.RenodeSession)
    s._now_ps, s._seq, s._pending, s._events = 0, 0, [], []
    s.sent = []
    s.execute = lambda cmd: s.sent.append(cmd) or ""
    return s


@pytest.mark.parametrize("params, command", [
    ({"action": "flip", "direction": "peer->stm32", "frame": 3, "field": "LEN", "bit": 7},
     'link FrameFault "peer->stm32" 3 "LEN" "flip" 128'),
    ({"action": "insert", "direction": "stm32->peer", "frame": 0, "field": "payload[2]", "value": 0x55},
     'link FrameFault "stm32->peer" 0 "payload[2]" "insert" 85'),
    ({"action": "delay", "direction": "peer->stm32", "frame": 1, "field": "CRC_HI", "delay_us": 250},
     'link FrameFault "peer->stm32" 1 "CRC_HI" "delay" 250'),
    ({"action": "truncate", "direction": "peer->stm32", "frame": 2, "field": "payload[0]"},
     'link FrameFault "peer->stm32" 2 "payload[0]" "truncate" 0'),
])
def test_link_faults_become_frame_faults(params, command):
    from duohil.faults import Fault
    s = _bare_session()
    assert s.inject(Fault("link", params)) is None
    assert s.sent == [command]


def test_noise_and_stall_faults():
    from duohil.faults import Fault
    s = _bare_session()
    t = s.inject(Fault("noise", {"direction": "peer->stm32", "ber": 0.001, "at_ms": 30, "duration_ms": 5}))
    assert t == 30 * PS_PER_MS and s.sent == ['link Noise "peer->stm32" 1000 30000 5000']
    assert s.inject(Fault("peer_stall", {"at_ms": 40, "duration_ms": 20})) == 40 * PS_PER_MS
    assert [p[0] for p in s._pending] == [40 * PS_PER_MS]
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError, match="at_ms"):
        s.inject(Fault("peer_stall", {"after_setpoints": 5, "duration_ms": 20}))
    with pytest.raises(ConfigError, match="irq_at"):
        s.inject(Fault("irq_at", {"symbol": "main", "irq": 11}))


def test_dma_latency_sets_our_models_knob_at_its_time():
    from duohil.faults import Fault
    s = _bare_session()
    t = s.inject(Fault("dma_latency", {"controller": "dma1", "stream": 0, "latency_us": 2000, "at_ms": 3}))
    assert t == 3 * PS_PER_MS and s.sent == []
    s._pending[0][3]()
    assert s.sent == ['mach set "stm32"', "sysbus.dma1Duohil SetCompletionLatencyNs 0 2000000", "mach clear"]
    assert script.dma_latency_commands("dma2", 7, 1500)[1] == "sysbus.dma2Duohil SetCompletionLatencyNs 7 2"
    from duohil.errors import ConfigError
    with pytest.raises(ConfigError, match="dma1 or dma2"):
        script.dma_latency_commands("bdma", 0, 0)


@pytest.mark.parametrize("shcsr, exception", [(0x0007_0000, 5), (0x0001_0000, 3), (0, 3)])
def test_bus_fault_pends_busfault_or_escalates(shcsr, exception):
    from duohil.faults import Fault
    s = _bare_session()
    s.execute = lambda cmd: s.sent.append(cmd) or (f"{shcsr:#010x}" if "ReadDoubleWord" in cmd else "")
    assert s.inject(Fault("bus_fault", {"at_ms": 150, "address": 0x2400_0000})) == 150 * PS_PER_MS
    s._pending[0][3]()
    assert s.sent == ['mach set "stm32"', "sysbus ReadDoubleWord 0xe000ed24", 'mach set "stm32"',
                      "sysbus.cpu FaultStatus 0x400", f"sysbus.nvic SetPendingIRQ {exception}", "mach clear"]
    assert s._events[-1][1] == "bus_fault"


@pytest.mark.parametrize("features, ok, words", [
    (script.RenodeFeatures("1.15.3.1", False, False, False, False), False, ["1.15.3.1", "older than 1.16.1"]),
    (script.RenodeFeatures("1.16.1.7", True, False, True, True), True, ["platforms for Renode 1.16.1"]),
    (script.RenodeFeatures("1.16.1+nightly", True, True, True, True), True, ["platforms for Renode master"]),
])
def test_availability_picks_the_level_or_refuses_an_old_renode(clean_env, features, ok, words):
    import sys
    import types
    clean_env.setattr(renode_engine.importlib.util, "find_spec", lambda name: object())
    clean_env.setenv("PYRENODE_RUNTIME", "coreclr")
    clean_env.setenv("PYRENODE_BIN", "/bin/sh")
    fake, wrappers = types.ModuleType("pyrenode3"), types.ModuleType("pyrenode3.wrappers")
    wrappers.Emulation = wrappers.Monitor = object
    clean_env.setitem(sys.modules, "pyrenode3", fake)
    clean_env.setitem(sys.modules, "pyrenode3.wrappers", wrappers)
    clean_env.setattr(renode_engine, "_probe_features", lambda: features)
    clean_env.setattr(renode_engine.RenodeEngine, "level", None)
    got, reason = renode_engine.RenodeEngine.availability()
    assert got == ok and "\n" not in reason
    for w in words:
        assert w in reason, reason
    assert renode_engine.RenodeEngine.level == (script.renode_level(features) if ok else None)
