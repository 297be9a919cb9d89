"""Building machines from platform files (duohil/engines/builtin/loaders/platform.py): memories, models,
IRQ/DMA wiring, the builtin-only overlay, and the errors for unknown types and properties."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil.engines.builtin.loaders import platform as plat
from duohil.engines.builtin.loaders.platform import (ConstantRange, ModelRegistry, build_machine,
                                             builtin_overlay_path, load_platform)
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ROOT / "platforms"

RV_HEADER = "cpu: CPU.RiscV32 @ sysbus\n    PerformanceInMips: 160\n"


def build(text: str, tmp_path: Path, name: str = "t.repl", **kw):
    path = tmp_path / name
    path.write_text(text)
    return build_machine(path, Scheduler(), "m", **kw)


# -- the peer -----------------------------------------------------------------------------------------------
def test_peer_platform_builds():
    m = build_machine(PLATFORMS / "esp32c3_peer.repl", Scheduler(), "peer")
    assert type(m.cpu).__name__ == "RiscV32Cpu" and m.cpu.hz == 160_000_000
    assert m.memories == [("irom", 0x42000000, 0x800000), ("dram", 0x3FC80000, 0x60000),
                          ("dram", 0x40380000, 0x60000), ("rtcmem", 0x50000000, 0x2000)]
    assert [r[0] for r in m.ram_regions()] == ["irom", "dram", "rtcmem"]
    # (a model in C may be its Python class's subclass <Class>Native: the name without the suffix)
    kinds = {n: type(p).__name__.removesuffix("Native") for n, p in m.peripherals.items()}
    assert kinds == {"uart0": "ESP32C3Uart", "uart1": "ESP32C3Uart",
                     "clint": "CoreLevelInterruptor", "plic": "PlatformLevelInterruptController"}
    assert m.peripherals["uart1"].base == 0x60010000
    assert sorted(m.wiring) == sorted([("uart0", "IRQ", "plic", 21), ("uart1", "IRQ", "plic", 22),
                                       ("clint", "0", "cpu", 3), ("clint", "1", "cpu", 7),
                                       ("plic", "0", "cpu", 11)])
    # the wires are live: CLINT output 1 (MTIP) drives mip bit 7 of the core
    m.peripherals["clint"].output(1).set(True)
    assert m.cpu.mip & (1 << 7)
    # DRAM aliases share storage
    m.write_memory(0x3FC80010, b"\x5a\xa5")
    assert m.read_memory(0x40380010, 2) == b"\x5a\xa5"


# -- the STM32 -----------------------------------------------------------------------------------------------
def test_stm32_platform_builds():
    m = build_machine(PLATFORMS / "stm32h743.repl", Scheduler(), "stm32")
    assert type(m.cpu).__name__ == "CortexM7Cpu"
    # the core runs at the RCC's reset clock (HSI 64 MHz) until the firmware reprograms it, at
    # most at PerformanceInMips
    assert m.cpu.hz == 64_000_000 and m.cpu.hz_cap == 480_000_000
    assert [(n, b, s) for n, b, s in m.memories][:10] == [
        ("itcm", 0x0, 0x10000), ("flashBank1", 0x08000000, 0x100000),
        ("flashBank2", 0x08100000, 0x100000), ("dtcm", 0x20000000, 0x20000),
        ("axisram", 0x24000000, 0x80000), ("sram1", 0x30000000, 0x20000),
        ("sram2", 0x30020000, 0x20000), ("sram3", 0x30040000, 0x8000),
        ("sram4", 0x38000000, 0x10000), ("backupsram", 0x38800000, 0x1000)]
    expected = {"nvic", "rcc", "flashController", "pwr", "usart1", "usart3", "dma1", "dma2",
                "dmamux1", "timer1", "timer2", "timer6", "timer7", "gpioPortA", "gpioPortB",
                "gpioPortC", "gpioPortD", "gpioPortE", "iwdg1", "tag:DBGMCU_IDCODE"}
    assert expected <= set(m.peripherals), expected - set(m.peripherals)
    assert type(m.peripherals["pwr"]).__name__ == "STM32H7_PWR"
    assert m.cache is not None and m.dma_port is m.cache
    w = set(m.wiring)
    for wire in [("usart1", "IRQ", "nvic", 37), ("usart3", "IRQ", "nvic", 39),
                 ("usart3", "ReceiveDmaRequest", "dmamux1", 45),
                 ("usart3", "TransmitDmaRequest", "dmamux1", 46),          # builtin overlay
                 ("usart1", "ReceiveDmaRequest", "dmamux1", 41),
                 ("usart1", "TransmitDmaRequest", "dmamux1", 42),
                 ("dma1", "7", "nvic", 47), ("dma2", "4", "nvic", 60), ("dma2", "5", "nvic", 68),
                 ("dmamux1", "8", "dma2", 0), ("timer6", "IRQ", "nvic", 54),
                 ("flashController", "IRQ", "nvic", 4)]:
        assert wire in w, wire
    # the sysbus Tag reads its constant
    assert m.bus_read(0x5C001000, 4) == 0x20036450



# RM0433: every USART/UART of the H743 with its NVIC line and DMAMUX1 RX/TX request ids
H743_UARTS = {"usart1": (0x40011000, 37, 41), "usart2": (0x40004400, 38, 43),
              "usart3": (0x40004800, 39, 45), "uart4": (0x40004C00, 52, 63),
              "uart5": (0x40005000, 53, 65), "usart6": (0x40011400, 71, 71),
              "uart7": (0x40007800, 82, 79), "uart8": (0x40007C00, 83, 81)}


def test_stm32_platform_declares_every_uart_gpio_port_syscfg_and_fmc():
    m = build_machine(PLATFORMS / "stm32h743.repl", Scheduler(), "stm32")
    w = set(m.wiring)
    for name, (base, irq, rx) in H743_UARTS.items():
        assert m.peripherals[name].base == base, name
        assert {(name, "IRQ", "nvic", irq), (name, "ReceiveDmaRequest", "dmamux1", rx),
                (name, "TransmitDmaRequest", "dmamux1", rx + 1)} <= w, name
        assert m.peripherals[name].kernel_hz == 64_000_000          # HSI at reset, APB /1
    lp = m.peripherals["lpuart1"]
    assert lp.base == 0x58000C00 and lp.low_power and ("lpuart1", "IRQ", "nvic", 142) in w
    for k in range(11):
        port = m.peripherals["gpioPort" + "ABCDEFGHIJK"[k]]
        assert port.base == 0x58020000 + 0x400 * k
    assert type(m.peripherals["syscfg"]).__name__ == "STM32H7_SYSCFG"
    assert type(m.peripherals["fmc"]).__name__ == "STM32H7_FMC"
    # SYSCFG: PWRCR.ODEN read/write, compensation cell ready follows EN, PMCR reset value
    assert m.bus_read(0x5800042C, 4) == 0
    m.bus_write(0x5800042C, 4, 1)
    assert m.bus_read(0x5800042C, 4) == 1
    assert m.bus_read(0x58000404, 4) == 0x0F000000
    m.bus_write(0x58000420, 4, 1)
    assert m.bus_read(0x58000420, 4) == 0x101
    m.bus_write(0x58000408, 4, 0x3210)                              # EXTICR1 stored
    assert m.bus_read(0x58000408, 4) == 0x3210
    # FMC: reset values, SystemInit's BCR1 write kept
    assert [m.bus_read(0x52004000 + o, 4) for o in (0x00, 0x04, 0x08, 0x84, 0x140)] == [
        0x30DB, 0x0FFFFFFF, 0x30D2, 0x40, 0x2D0]
    m.bus_write(0x52004000, 4, 0x30D2)
    assert m.bus_read(0x52004000, 4) == 0x30D2


def test_stm32_without_builtin_overlay_has_no_tx_request():
    m = build_machine(PLATFORMS / "stm32h743.repl", Scheduler(), "stm32", builtin_overlay=False)
    assert ("usart3", "TransmitDmaRequest", "dmamux1", 46) not in m.wiring


def test_builtin_overlay_path():
    assert builtin_overlay_path(PLATFORMS / "stm32h743.repl") == PLATFORMS / "stm32h743.builtin.repl"
    assert (PLATFORMS / "stm32h743.builtin.repl").is_file()
    assert not builtin_overlay_path(PLATFORMS / "esp32c3_peer.repl").exists()


def test_builtin_overlay_generic_rule(tmp_path):
    (tmp_path / "board.repl").write_text("x: Misc.Thing @ sysbus 0x1000\n    a: 1\n")
    (tmp_path / "board.builtin.repl").write_text("x:\n    a: 2\n")
    assert load_platform(tmp_path / "board.repl")["x"].prop("a") == 2
    assert load_platform(tmp_path / "board.repl", builtin_overlay=False)["x"].prop("a") == 1


# -- errors --------------------------------------------------------------------------------------------------
def test_unknown_type_names_file_line_and_type(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "\nmystery: Misc.Mystery @ sysbus 0x60020000\n", tmp_path)
    err = info.value
    assert err.file.endswith("t.repl") and err.line == 4
    assert "Misc.Mystery" in str(err) and "duohil: tag" in str(err)


def test_harmless_unknown_type_is_a_zero_range(tmp_path):
    m = build(RV_HEADER + "\nmystery: Misc.Mystery @ sysbus 0x60020000 // duohil: tag\n"
              "ranged: Misc.Other @ sysbus <0x60030000, +0x100> // duohil: tag\n", tmp_path)
    assert isinstance(m.peripherals["mystery"], ConstantRange)
    assert m.peripherals["ranged"].size == 0x100
    assert m.bus_read(0x60020004, 4) == 0


def test_python_peripheral_elsewhere_is_unknown(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "py: Python.PythonPeripheral @ sysbus 0x60040000\n    size: 0x400\n",
              tmp_path)
    assert info.value.line == 3 and "Python.PythonPeripheral" in str(info.value)


def test_unknown_property_names_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "uart0: UART.ESP32_UART @ sysbus 0x60000000\n    baud: 9600\n", tmp_path)
    assert info.value.line == 4 and "baud" in str(info.value)


def test_connection_to_unknown_target(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "uart0: UART.ESP32_UART @ sysbus 0x60000000\n    IRQ -> plic@21\n",
              tmp_path)
    assert info.value.line == 4 and "plic" in str(info.value)


def test_missing_model_module_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(plat.TYPE_HINTS, "Timers.Imaginary", "imaginary_timer")
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "t: Timers.Imaginary @ sysbus 0x60050000\n", tmp_path,
              registry=ModelRegistry())
    assert info.value.line == 3
    assert "duohil/engines/builtin/imaginary_timer.py does not exist" in str(info.value)


def test_platform_without_cpu(tmp_path):
    with pytest.raises(ConfigError, match="no CPU entry"):
        build("ram: Memory.MappedMemory @ sysbus 0x0\n    size: 0x1000\n", tmp_path)


def test_unaligned_memory(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "ram: Memory.MappedMemory @ sysbus 0x100\n    size: 0x1000\n", tmp_path)
    assert info.value.line == 3 and "4 KiB" in str(info.value)


def test_user_platform_using_ours_keeps_the_builtin_extras(tmp_path):
    (tmp_path / "board.repl").write_text(
        f'using "{PLATFORMS / "stm32h743.repl"}"\n'
        "usart2:\n    TransmitDmaRequest -> none\n"         # the user's line after `using` wins
        "sysbus:\n    unmapped: warn\n")
    plat = load_platform(tmp_path / "board.repl")
    assert str(PLATFORMS / "stm32h743.builtin.repl") in plat.files
    m = build_machine(tmp_path / "board.repl", Scheduler(), "stm32")
    assert ("usart3", "TransmitDmaRequest", "dmamux1", 46) in m.wiring
    assert ("usart1", "TransmitDmaRequest", "dmamux1", 42) in m.wiring
    assert not any(w[:2] == ("usart2", "TransmitDmaRequest") for w in m.wiring)
    assert {"syscfg", "fmc"} <= set(m.peripherals)
    assert m.unmapped_mode == "warn" and m.memory_map == "stm32h743"
    # without the builtin overlays (as Renode would see it) none of it is there
    m2 = build_machine(tmp_path / "board.repl", Scheduler(), "stm32", builtin_overlay=False)
    assert ("usart3", "TransmitDmaRequest", "dmamux1", 46) not in m2.wiring
    assert "syscfg" not in m2.peripherals


def test_sysbus_unmapped_mode_must_be_fault_or_warn(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(RV_HEADER + "sysbus:\n    unmapped: ignore\n", tmp_path)
    assert info.value.field == "unmapped" and "fault" in str(info.value)
    m = build(RV_HEADER + "sysbus:\n    unmapped: warn\n", tmp_path)
    assert m.unmapped_mode == "warn" and m.memory_map == "esp32c3"


def test_performance_in_mips_caps_the_core_clock_either_spelling(tmp_path):
    m = build("cpu: CPU.RiscV32 @ sysbus\n    performanceInMips: 50\n", tmp_path)
    assert m.cpu.hz == 50_000_000 and m.cpu.hz_cap == 50_000_000
    m.cpu.set_core_clock(80_000_000)
    assert m.cpu.hz == 50_000_000
    m.cpu.set_core_clock(20_000_000)
    assert m.cpu.hz == 20_000_000
    with pytest.raises(ConfigError) as info:
        build("cpu: CPU.RiscV32 @ sysbus\n    PerformanceInMips: 50\n    performanceInMips: 60\n",
              tmp_path)
    assert info.value.field == "performanceInMips"
    m = build("cpu: CPU.RiscV32 @ sysbus\n", tmp_path)              # no knob: Renode's 100, no cap
    assert m.cpu.hz == 100_000_000 and m.cpu.hz_cap is None


def test_parsed_platform_cache_sees_every_change(tmp_path, monkeypatch):
    """load_platform keeps parses for campaign workers; a changed file (same size, written within
    the clock's granularity), an overlay or `using` file appearing or changing, is parsed again,
    and every call returns its own copy."""
    board, inc = tmp_path / "board.repl", tmp_path / "common.repl"
    inc.write_text("y: Misc.Thing @ sysbus 0x2000\n    b: 1\n")
    board.write_text('using "common.repl"\nx: Misc.Thing @ sysbus 0x1000\n    a: 1\n')
    first = load_platform(board)
    assert first["x"].prop("a") == 1 and first["y"].prop("b") == 1
    from duohil.engines.builtin.loaders import platform as platform_mod
    parse = platform_mod._parse_platform
    monkeypatch.setattr(platform_mod, "_parse_platform", None)   # unchanged files: not parsed
    again = load_platform(board)
    assert again is not first and again["x"].prop("a") == 1
    monkeypatch.setattr(platform_mod, "_parse_platform", parse)
    again.entries.pop("x")                                # a caller's copy is its own
    assert "x" in load_platform(board)
    board.write_text('using "common.repl"\nx: Misc.Thing @ sysbus 0x1000\n    a: 2\n')
    assert load_platform(board)["x"].prop("a") == 2        # same size, same instant
    inc.write_text("y: Misc.Thing @ sysbus 0x2000\n    b: 3\n")
    assert load_platform(board)["y"].prop("b") == 3        # an included file changed
    (tmp_path / "board.builtin.repl").write_text("x:\n    a: 7\n")
    assert load_platform(board)["x"].prop("a") == 7        # an overlay appeared
    (tmp_path / "common.builtin.repl").write_text("y:\n    b: 9\n")
    assert load_platform(board)["y"].prop("b") == 9        # the included file's overlay too
    board.write_text("x: Misc.Thing @ sysbus 0x1000\n    a: !\n")
    for _ in range(2):                                     # errors are never cached
        with pytest.raises(ConfigError):
            load_platform(board)
