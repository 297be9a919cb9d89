"""What lives at an address on the real chips: block names for events about unmapped accesses.

An access to an address no model claims is reported with the name of the silicon block it falls
in ("FMC control registers", "reserved (D2 APB1)"), so a user reading the event knows whether their
image touched a peripheral duohil does not model or an address where silicon has nothing.

STM32H743: RM0433 Table 7/8 (memory map and register boundary addresses), from the reference
manual as we know it (stm32h7-registers.md section 1; a few boundaries unverified). ESP32-C3:
esp32c3-peer.md sections 1 and 1.1 (soc.h ranges; the peer's PLIC/CLINT stand-ins included).
Each table is sorted (start, end exclusive, name); ``block_name`` falls back to the enclosing bus
window, then to "reserved".
"""
from __future__ import annotations

import bisect

Table = tuple[tuple[int, int, str], ...]


def _t(rows: list[tuple[int, int, str]]) -> Table:
    return tuple(sorted(rows))


def _blocks(bus_base: int, entries: list[tuple[int, str]], size: int = 0x400) -> list:
    return [(bus_base + off, bus_base + off + size, name) for off, name in entries]


#: Memories and external-memory windows (blocks in their own right).
STM32H743_MEMORIES = [
    (0x0000_0000, 0x0001_0000, "ITCM"),
    (0x0800_0000, 0x0820_0000, "Flash memory (bank 1 and 2)"),
    (0x1FF0_0000, 0x1FF2_0000, "System memory"),
    (0x2000_0000, 0x2002_0000, "DTCM"),
    (0x2400_0000, 0x2408_0000, "AXI SRAM"),
    (0x3000_0000, 0x3004_8000, "SRAM1..3 (D2)"),
    (0x3800_0000, 0x3801_0000, "SRAM4 (D3)"),
    (0x3880_0000, 0x3880_1000, "Backup SRAM"),
    (0x6000_0000, 0x7000_0000, "FMC bank 1 (NOR/PSRAM/SRAM)"),
    (0x8000_0000, 0x9000_0000, "FMC bank 3 (NAND)"),
    (0x9000_0000, 0xA000_0000, "QUADSPI memory"),
    (0xC000_0000, 0xD000_0000, "FMC SDRAM bank 1"),
    (0xD000_0000, 0xE000_0000, "FMC SDRAM bank 2"),
]

#: Peripheral bus windows (a hit here and in no block is "reserved (<bus>)").
STM32H743_BUSES: Table = _t([
    (0x4000_0000, 0x4001_0000, "D2 APB1"),
    (0x4001_0000, 0x4002_0000, "D2 APB2"),
    (0x4002_0000, 0x4010_0000, "D2 AHB1"),
    (0x4802_0000, 0x4802_4000, "D2 AHB2"),
    (0x5000_0000, 0x5000_4000, "D1 APB3"),
    (0x5200_0000, 0x5300_0000, "D1 AHB3"),
    (0x5800_0000, 0x5800_6000, "D3 APB4"),
    (0x5802_0000, 0x5802_8000, "D3 AHB4"),
    (0x5C00_0000, 0x5C00_2000, "Debug (DBGMCU)"),
    (0xE000_0000, 0xE010_0000, "Cortex-M7 private peripheral bus"),
])

STM32H743_BLOCKS: Table = _t(
    STM32H743_MEMORIES
    + _blocks(0x4000_0000, [
        (0x0000, "TIM2"), (0x0400, "TIM3"), (0x0800, "TIM4"), (0x0C00, "TIM5"), (0x1000, "TIM6"),
        (0x1400, "TIM7"), (0x1800, "TIM12"), (0x1C00, "TIM13"), (0x2000, "TIM14"),
        (0x2400, "LPTIM1"), (0x3800, "SPI2/I2S2"), (0x3C00, "SPI3/I2S3"), (0x4000, "SPDIFRX"),
        (0x4400, "USART2"), (0x4800, "USART3"), (0x4C00, "UART4"), (0x5000, "UART5"),
        (0x5400, "I2C1"), (0x5800, "I2C2"), (0x5C00, "I2C3"), (0x6C00, "HDMI-CEC"),
        (0x7400, "DAC1"), (0x7800, "UART7"), (0x7C00, "UART8"), (0x8400, "CRS"),
        (0x8800, "SWPMI"), (0x9000, "OPAMP"), (0x9400, "MDIOS"), (0xA000, "FDCAN1"),
        (0xA400, "FDCAN2"), (0xA800, "FDCAN CCU")])
    + [(0x4000_AC00, 0x4000_D400, "FDCAN message RAM")]
    + _blocks(0x4001_0000, [
        (0x0000, "TIM1"), (0x0400, "TIM8"), (0x1000, "USART1"), (0x1400, "USART6"),
        (0x3000, "SPI1/I2S1"), (0x3400, "SPI4"), (0x4000, "TIM15"), (0x4400, "TIM16"),
        (0x4800, "TIM17"), (0x5000, "SPI5"), (0x5800, "SAI1"), (0x5C00, "SAI2"), (0x6000, "SAI3"),
        (0x7000, "DFSDM1"), (0x7400, "HRTIM")])
    + _blocks(0x4002_0000, [(0x0000, "DMA1"), (0x0400, "DMA2"), (0x0800, "DMAMUX1"),
                            (0x2000, "ADC1/ADC2")])
    + [(0x4002_8000, 0x4002_9400, "Ethernet MAC"), (0x4004_0000, 0x4008_0000, "USB1 OTG_HS"),
       (0x4008_0000, 0x400C_0000, "USB2 OTG_FS")]
    + _blocks(0x4802_0000, [(0x0000, "DCMI"), (0x1000, "CRYP"), (0x1400, "HASH"),
                            (0x1800, "RNG"), (0x2400, "SDMMC2"), (0x2800, "SDMMC2 delay block"),
                            (0x3000, "RAMECC2")])
    + _blocks(0x5000_0000, [(0x1000, "LTDC"), (0x3000, "WWDG1")])
    + [(0x5100_0000, 0x5110_0000, "AXI interconnect (GPV)")]
    + _blocks(0x5200_0000, [(0x0000, "MDMA"), (0x1000, "DMA2D"), (0x2000, "Flash interface"),
                            (0x3000, "JPEG"), (0x4000, "FMC control registers"),
                            (0x5000, "QUADSPI control registers"),
                            (0x6000, "QUADSPI delay block"), (0x7000, "SDMMC1"),
                            (0x8000, "SDMMC1 delay block"), (0x9000, "RAMECC1")], size=0x1000)
    + _blocks(0x5800_0000, [
        (0x0000, "EXTI"), (0x0400, "SYSCFG"), (0x0C00, "LPUART1"), (0x1400, "SPI6"),
        (0x1C00, "I2C4"), (0x2400, "LPTIM2"), (0x2800, "LPTIM3"), (0x2C00, "LPTIM4"),
        (0x3000, "LPTIM5"), (0x3800, "COMP1/COMP2"), (0x3C00, "VREFBUF"), (0x4000, "RTC/TAMP"),
        (0x4800, "IWDG1"), (0x5400, "SAI4")])
    + _blocks(0x5802_0000, [(0x400 * k, f"GPIO{chr(65 + k)}") for k in range(11)]
              + [(0x4400, "RCC"), (0x4800, "PWR"), (0x4C00, "CRC"), (0x5400, "BDMA"),
                 (0x5800, "DMAMUX2"), (0x6000, "ADC3"), (0x6400, "HSEM"), (0x7000, "RAMECC3")])
    + [(0x5C00_1000, 0x5C00_1400, "DBGMCU"),
       (0xE000_0000, 0xE000_1000, "ITM"), (0xE000_1000, 0xE000_2000, "DWT"),
       (0xE000_2000, 0xE000_3000, "FPB"), (0xE000_E000, 0xE000_F000, "System control space"),
       (0xE004_0000, 0xE004_1000, "TPIU"), (0xE00F_F000, 0xE010_0000, "ROM table")])

ESP32C3_BUSES: Table = _t([(0x6000_0000, 0x6010_0000, "peripherals")])

ESP32C3_MEMORIES = [
    (0x0200_0000, 0x0201_0000, "CLINT (duohil stand-in for SYSTIMER)"),
    (0x0C00_0000, 0x1000_0000, "PLIC (duohil stand-in for the interrupt matrix)"),
    (0x2000_0000, 0x2800_0000, "debug window"),
    (0x3C00_0000, 0x3C80_0000, "DROM (flash through the cache, data bus)"),
    (0x3FC8_0000, 0x3FCE_0000, "SRAM1 (DRAM alias)"),
    (0x3FF0_0000, 0x3FF2_0000, "mask ROM (data bus)"),
    (0x4000_0000, 0x4006_0000, "mask ROM (instruction bus)"),
    (0x4037_C000, 0x4038_0000, "SRAM0 (IRAM, instruction cache)"),
    (0x4038_0000, 0x403E_0000, "SRAM1 (IRAM alias)"),
    (0x4200_0000, 0x4280_0000, "IROM (flash through the cache)"),
    (0x5000_0000, 0x5000_2000, "RTC memory"),
]

ESP32C3_BLOCKS: Table = _t(
    ESP32C3_MEMORIES
    + [(0x6000_0000 + off, 0x6000_0000 + off + 0x1000, name) for off, name in [
        (0x0_0000, "UART0"), (0x0_2000, "SPI1"), (0x0_3000, "SPI0"), (0x0_4000, "GPIO"),
        (0x0_9000, "IO_MUX"), (0x1_0000, "UART1"), (0x1_3000, "I2C0"),
        (0x1_4000, "UHCI0"), (0x1_6000, "RMT"), (0x1_9000, "LEDC"), (0x1_F000, "TIMG0"),
        (0x2_0000, "TIMG1"), (0x2_3000, "SYSTIMER"), (0x2_4000, "SPI2"),
        (0x2_6000, "SYSCON (APB_CTRL)"), (0x2_B000, "TWAI"), (0x2_D000, "I2S"),
        (0x3_A000, "AES"), (0x3_B000, "SHA"), (0x3_C000, "RSA"), (0x3_D000, "DS"),
        (0x3_E000, "HMAC"), (0x3_F000, "GDMA"), (0x4_0000, "APB_SARADC"),
        (0x4_3000, "USB_SERIAL_JTAG"), (0xC_0000, "SYSTEM"), (0xC_1000, "SENSITIVE"),
        (0xC_2000, "INTERRUPT matrix"), (0xC_4000, "EXTMEM"), (0xC_5000, "MMU table"),
        (0xC_C000, "XTS_AES"), (0xC_E000, "ASSIST_DEBUG"), (0xC_F000, "DEDICATED_GPIO"),
        (0xD_0000, "WORLD_CNTL")]]
    + [(0x6000_8000, 0x6000_8800, "RTC_CNTL"), (0x6000_8800, 0x6000_9000, "EFUSE")])

#: memory map name -> (blocks, bus windows)
MAPS: dict[str, tuple[Table, Table]] = {
    "stm32h743": (STM32H743_BLOCKS, STM32H743_BUSES),
    "esp32c3": (ESP32C3_BLOCKS, ESP32C3_BUSES),
}


def _find(table: Table, address: int) -> str | None:
    """The entry holding ``address`` (entries of one table never overlap)."""
    i = bisect.bisect_right(table, (address, 1 << 40, "")) - 1
    if i >= 0:
        start, end, name = table[i]
        if start <= address < end:
            return name
    return None


def block_name(map_name: str | None, address: int) -> str:
    """The block at ``address`` in the named chip's memory map, e.g. "FMC control registers",
    "reserved (D2 APB1)" or "reserved"."""
    if map_name not in MAPS:
        return "unknown (no memory map for this platform)"
    blocks, buses = MAPS[map_name]
    name = _find(blocks, address)
    if name is not None:
        return name
    bus = _find(buses, address)
    return f"reserved ({bus})" if bus else "reserved"
