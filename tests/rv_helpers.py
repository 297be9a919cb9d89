"""Hand-built ESP32-C3-class peer machines for the builtin engine's RISC-V tests.

Mirrors platforms/esp32c3_peer.repl (same addresses, sizes, IRQ wiring) without the repl builder,
so these tests depend only on the models under test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from duohil.engines.base import DEFAULT_QUANTUM_PS
from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
from duohil.engines.builtin.loaders.elf import ElfImage, load_segments, read_elf
from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController
from duohil.engines.builtin.cpus.rv32.riscv import RiscV32Cpu
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import MachineAccess

ROOT = Path(__file__).resolve().parent.parent
TESTFW_RV = ROOT / "build" / "testfw" / "rv"
PEER_HZ = 160_000_000


@dataclass
class Peer(MachineAccess):
    scheduler: Scheduler
    machine: Machine
    cpu: RiscV32Cpu
    clint: CoreLevelInterruptor
    plic: PlatformLevelInterruptController
    uart0: ESP32C3Uart
    uart1: ESP32C3Uart
    image: ElfImage | None = None

    def sym(self, name: str) -> int:
        assert self.image is not None
        return self.image.symbol(name).address



def build_peer(elf: str | Path | None = None, *, quantum_ps: int = DEFAULT_QUANTUM_PS,
               hz: int = PEER_HZ, scheduler: Scheduler | None = None, name: str = "peer",
               exact_unmask: bool = False) -> Peer:
    sched = scheduler or Scheduler(quantum_ps)
    m = Machine(name, sched, platform=__file__)
    cpu = RiscV32Cpu(m, "cpu", hz, exact_unmask=exact_unmask)
    m.attach_cpu(cpu)
    m.add_memory("irom", [0x4200_0000], 0x80_0000)
    m.add_memory("dram", [0x3FC8_0000, 0x4038_0000], 0x6_0000)
    m.add_memory("rtcmem", [0x5000_0000], 0x2000)
    uart0 = ESP32C3Uart(m, "uart0", 0x6000_0000)
    uart1 = ESP32C3Uart(m, "uart1", 0x6001_0000)
    clint = CoreLevelInterruptor(m, "clint", 0x0200_0000, props={"frequency": 16_000_000})
    plic = PlatformLevelInterruptController(m, "plic", 0x0C00_0000,
                                            props={"numberOfSources": 62, "numberOfContexts": 1})
    for p in (uart0, uart1, clint, plic):
        m.add_peripheral(p)
    clint.output(0).connect(cpu, 3)
    clint.output(1).connect(cpu, 7)
    plic.output(0).connect(cpu, 11)
    uart0.output("IRQ").connect(plic, 21)
    uart1.output("IRQ").connect(plic, 22)
    m.finish()
    sched.on_event(lambda ev: cpu.unpark() if cpu.parked else None)
    image = None
    if elf is not None:
        image = read_elf(elf)

        def mapped(addr: int, size: int) -> bool:
            return any(b <= addr and addr + size <= b + s for _, b, s in m.memories)

        load_segments(image, m.write_memory, mapped)
        cpu.reset_pc = image.entry
    cpu.reset()
    return Peer(sched, m, cpu, clint, plic, uart0, uart1, image)


def fw_path(name: str) -> Path:
    path = TESTFW_RV / name
    if not path.is_file():
        import pytest
        pytest.fail(f"{path} is missing: run `make -C tests/fw` first")
    return path
