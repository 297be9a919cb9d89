"""The .repl parser (duohil/engines/builtin/loaders/repl.py): every syntax form our platforms use, both real
platform files, and errors that name the file and line (tests/data/bad_repl/)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from duohil.engines.builtin.loaders.repl import (EMPTY, EnumValue, Range, Ref, Registration, parse_file,
                                         parse_text)
from duohil.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ROOT / "platforms"
BAD = Path(__file__).resolve().parent / "data" / "bad_repl"


def wires(entry):
    return {src: [(t.dest, t.line) for t in c.targets] for src, c in entry.connections.items()}


# -- entries and registrations ---------------------------------------------------------------------------
def test_registration_forms():
    p = parse_text("""
cpu: CPU.RiscV32 @ sysbus
uart0: UART.ESP32_UART @ sysbus 0x60000000
dram: Memory.MappedMemory @ { sysbus 0x3FC80000; sysbus 0x40380000 }
    size: 0x60000
gpio: GPIOPort.STM32_GPIOPort @ sysbus <0x58020000, +0x400>
gpio2: GPIOPort.STM32_GPIOPort @ sysbus <0x58020400, 0x580207FF>
ghost: Misc.Thing @ none
loose: Misc.Other
""", "t.repl")
    assert [r.address for r in p["cpu"].registrations] == [None]
    assert p["uart0"].registrations == [Registration("sysbus", 0x60000000, None, p["uart0"].registrations[0].pos)]
    assert [r.address for r in p["dram"].registrations] == [0x3FC80000, 0x40380000]
    assert (p["gpio"].base, p["gpio"].reg_size) == (0x58020000, 0x400)
    assert (p["gpio2"].base, p["gpio2"].reg_size) == (0x58020400, 0x400)
    assert p["ghost"].registrations == []
    assert p["loose"].registrations is None
    assert p["uart0"].pos.line == 3 and p["uart0"].pos.file == "t.repl"
    assert list(p.entries) == ["cpu", "uart0", "dram", "gpio", "gpio2", "ghost", "loose"]


def test_property_values():
    p = parse_text("""
x: Misc.Thing @ sysbus 0x1000
    dec: 480
    hex: 0xF0
    neg: -3
    text: "rv32imc_zicsr_zifencei"
    escaped: "a \\"quoted\\" word"
    yes: true
    no: false
    arch: PrivilegedArchitecture.Priv1_10
    ref: clint
    none: empty
    window: <0x1000, +0x100>
    mips: 1.5
""", "t.repl")
    e = p["x"]
    assert e.prop("dec") == 480 and e.prop("hex") == 0xF0 and e.prop("neg") == -3
    assert e.prop("text") == "rv32imc_zicsr_zifencei"
    assert e.prop("escaped") == 'a "quoted" word'
    assert e.prop("yes") is True and e.prop("no") is False
    arch = e.prop("arch")
    assert isinstance(arch, EnumValue) and arch == "PrivilegedArchitecture.Priv1_10"
    assert arch.member == "Priv1_10"
    assert e.prop("ref") == Ref("clint")
    assert e.prop("none") is EMPTY
    assert e.prop("window") == Range(0x1000, 0x100)
    assert e.prop("mips") == 1.5
    assert e.props["hex"].pos.line == 4


def test_connection_forms():
    p = parse_text("""
timer6: Timers.STM32_Timer @ sysbus 0x40001000
    -> nvic@54
usart3: UART.STM32F7_USART @ sysbus 0x40004800
    IRQ -> nvic@39
    ReceiveDmaRequest -> dmamux1@45
dma1: DMA.STM32DMA @ sysbus 0x40020000
    [0-7] -> nvic@[11-17, 47]
clint: IRQControllers.CoreLevelInterruptor @ sysbus 0x02000000
    [0,1] -> cpu@[3,7]
plic: IRQControllers.PlatformLevelInterruptController @ sysbus 0x0C000000
    0 -> cpu@11
fan: Misc.Fan @ sysbus 0x5000
    IRQ -> nvic@1 | nvic2@2
    [2-3] -> a@[4-5] | b@[6,7]
    Spare -> none
""", "t.repl")
    assert wires(p["timer6"]) == {None: [("nvic", 54)]}
    assert wires(p["usart3"]) == {"IRQ": [("nvic", 39)], "ReceiveDmaRequest": [("dmamux1", 45)]}
    assert wires(p["dma1"]) == {str(s): [("nvic", n)] for s, n in
                                zip(range(8), [11, 12, 13, 14, 15, 16, 17, 47])}
    assert wires(p["clint"]) == {"0": [("cpu", 3)], "1": [("cpu", 7)]}
    assert wires(p["plic"]) == {"0": [("cpu", 11)]}
    assert wires(p["fan"]) == {"IRQ": [("nvic", 1), ("nvic2", 2)],
                               "2": [("a", 4), ("b", 6)], "3": [("a", 5), ("b", 7)],
                               "Spare": []}
    assert p["dma1"].connections["7"].pos.line == 8


def test_comments_and_tag_marker():
    p = parse_text("""
// a line comment
/* a block
   comment spanning lines */
cpu: CPU.CortexM @ sysbus  /* inline */
    cpuType: "cortex-m7" // trailing "quote" in a comment
    script: "not // a comment"
hrtim: Timers.STM32H7_HRTIM @ sysbus 0x40017400 // duohil: tag
dac: Analog.STM32_DAC @ sysbus 0x40007400 // plain comment
""", "t.repl")
    assert p["cpu"].prop("cpuType") == "cortex-m7"
    assert p["cpu"].prop("script") == "not // a comment"
    assert p["hrtim"].harmless and not p["dac"].harmless
    assert p["cpu"].pos.line == 5


def test_sysbus_init_tags():
    p = parse_text("""
sysbus:
    init:
        Tag <0x5C001000, 0x5C001003> "DBGMCU_IDCODE" 0x20036450
        Tag <0x40017400, +0x400> "HRTIM"
""", "t.repl")
    tags = p["sysbus"].tags
    assert [(t.start, t.size, t.name, t.value) for t in tags] == [
        (0x5C001000, 4, "DBGMCU_IDCODE", 0x20036450), (0x40017400, 0x400, "HRTIM", None)]
    assert tags[1].pos.line == 5


def test_overlay_updates_entry():
    p = parse_text("""
usart3: UART.STM32F7_USART @ sysbus 0x40004800
    frequency: 120000000
    IRQ -> nvic@39
    ReceiveDmaRequest -> dmamux1@45
""", "base.repl")
    parse_text("""
usart3:
    frequency: 100000000
    TransmitDmaRequest -> dmamux1@46
    ReceiveDmaRequest -> none
""", "overlay.repl", into=p)
    e = p["usart3"]
    assert e.type == "UART.STM32F7_USART" and e.base == 0x40004800
    assert e.prop("frequency") == 100000000
    assert e.props["frequency"].pos.file == "overlay.repl"
    assert wires(e) == {"IRQ": [("nvic", 39)], "ReceiveDmaRequest": [], "TransmitDmaRequest": [("dmamux1", 46)]}
    assert e.updates[0].file == "overlay.repl"


def test_inline_overlay_form():
    p = parse_text("usart1: UART.STM32F7_USART @ sysbus 0x40011000\n", "a.repl")
    parse_text("usart1: { frequency: 1; IRQ -> nvic@37 }\n", "b.repl", into=p)
    assert p["usart1"].prop("frequency") == 1
    assert wires(p["usart1"]) == {"IRQ": [("nvic", 37)]}


def test_using_is_relative_to_the_including_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "common.repl").write_text("nvic: IRQControllers.NVIC @ sysbus 0xE000E000\n")
    (tmp_path / "board.repl").write_text('using "sub/common.repl"\nnvic:\n    priorityMask: 0xF0\n')
    p = parse_file(tmp_path / "board.repl")
    assert p["nvic"].type == "IRQControllers.NVIC" and p["nvic"].prop("priorityMask") == 0xF0
    assert p["nvic"].pos.file.endswith("common.repl")


def test_using_cycle_is_an_error(tmp_path):
    (tmp_path / "a.repl").write_text('using "b.repl"\n')
    (tmp_path / "b.repl").write_text('using "a.repl"\n')
    with pytest.raises(ConfigError, match="cycle"):
        parse_file(tmp_path / "a.repl")


# -- the real platform files ---------------------------------------------------------------------------------
def test_stm32h743_platform_parses():
    p = parse_file(PLATFORMS / "stm32h743.repl")
    assert p["cpu"].type == "CPU.CortexM" and p["cpu"].prop("PerformanceInMips") == 480
    assert p["cpu"].prop("nvic") == Ref("nvic")
    assert p["flashBank1"].base == 0x08000000 and p["flashBank1"].prop("size") == 0x100000
    assert p["flashController"].prop("flash2") == Ref("flashBank2")
    assert wires(p["usart3"]) == {"IRQ": [("nvic", 39)], "ReceiveDmaRequest": [("dmamux1", 45)]}
    assert wires(p["dma2"])["7"] == [("nvic", 70)]
    assert wires(p["dmamux1"])["15"] == [("dma2", 7)]
    assert p["gpioPortD"].reg_size == 0x400
    assert [t.name for t in p["sysbus"].tags] == ["DBGMCU_IDCODE"]


def test_stm32h743_builtin_overlay_parses():
    p = parse_file(PLATFORMS / "stm32h743.repl")
    parse_file(PLATFORMS / "stm32h743.builtin.repl", into=p)
    assert wires(p["usart3"])["TransmitDmaRequest"] == [("dmamux1", 46)]
    assert wires(p["usart3"])["ReceiveDmaRequest"] == [("dmamux1", 45)]
    assert wires(p["usart1"]) == {"IRQ": [("nvic", 37)], "ReceiveDmaRequest": [("dmamux1", 41)],
                                  "TransmitDmaRequest": [("dmamux1", 42)]}


def test_esp32c3_peer_platform_parses():
    p = parse_file(PLATFORMS / "esp32c3_peer.repl")
    assert p["cpu"].type == "CPU.RiscV32" and p["cpu"].prop("timeProvider") == Ref("clint")
    assert p["cpu"].prop("privilegedArchitecture").member == "Priv1_10"
    assert [r.address for r in p["dram"].registrations] == [0x3FC80000, 0x40380000]
    assert wires(p["clint"]) == {"0": [("cpu", 3)], "1": [("cpu", 7)]}
    assert wires(p["uart1"]) == {"IRQ": [("plic", 22)]}


# -- errors -----------------------------------------------------------------------------------------------------
BAD_FILES = sorted(BAD.glob("*.repl"))


def _expectation(path: Path) -> tuple[str, int, str]:
    m = re.match(r"// expect: (?:(\S+):)?(\d+) (.+)", path.read_text().splitlines()[0])
    assert m, f"{path.name}: first line must be `// expect: [file:]<line> <text>`"
    return (m.group(1) or path.name), int(m.group(2)), m.group(3).strip()


def test_bad_repl_collection_is_not_empty():
    assert len(BAD_FILES) >= 15


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_repl_names_file_and_line(path):
    file, line, text = _expectation(path)
    with pytest.raises(ConfigError) as info:
        parse_file(path)
    err = info.value
    assert err.file is not None and Path(err.file).name == file, str(err)
    assert err.line == line, str(err)
    assert text in str(err), str(err)
    assert str(err).startswith(f"{err.file}:{line}: ")


def test_missing_platform_file():
    with pytest.raises(ConfigError, match="platform file not found"):
        parse_file(BAD / "does_not_exist.repl")


def test_update_without_type_is_an_error():
    with pytest.raises(ConfigError) as info:
        parse_text("\n\nusart1: { frequency: 1 }\n", "x.repl")
    assert info.value.line == 3 and "no earlier entry" in str(info.value)
