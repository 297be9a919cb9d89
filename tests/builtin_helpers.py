"""Hand-built Cortex-M7 machines for the builtin engine's core tests (tests/test_cortexm.py).

Same core, SCS and memory addresses as platforms/stm32h743.repl (flash, ITCM, DTCM, AXI SRAM,
backup SRAM), no other peripherals, built without the repl builder so these tests depend only on
the models under test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from duohil.engines.base import DEFAULT_QUANTUM_PS
from duohil.engines.builtin.cpus.m7.cortexm import CortexM7Cpu
from duohil.engines.builtin.loaders.elf import ElfImage, load_segments, read_elf
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.cpus.m7.nvic import Nvic
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import MachineAccess

ROOT = Path(__file__).resolve().parent.parent
TESTFW_M7 = ROOT / "build" / "testfw" / "m7"
M7_HZ = 480_000_000

M7_MEMORIES = (
    ("itcm", 0x0000_0000, 0x1_0000),
    ("flash", 0x0800_0000, 0x20_0000),
    ("dtcm", 0x2000_0000, 0x2_0000),
    ("axisram", 0x2400_0000, 0x8_0000),
    ("backupsram", 0x3880_0000, 0x1000),
)


@dataclass
class M7(MachineAccess):
    scheduler: Scheduler
    machine: Machine
    cpu: CortexM7Cpu
    nvic: Nvic
    image: ElfImage | None = None

    def sym(self, name: str) -> int:
        assert self.image is not None
        return self.image.symbol(name).address & ~1

    def words(self, symbol: str, n: int) -> list[int]:
        data = self.machine.read_memory(self.sym(symbol), 4 * n)
        return [int.from_bytes(data[i:i + 4], "little") for i in range(0, 4 * n, 4)]

    def patch_u32(self, symbol: str, value: int) -> None:
        self.machine.write_memory(self.sym(symbol), value.to_bytes(4, "little"))



def build_m7(elf: str | Path | None = None, *, quantum_ps: int = DEFAULT_QUANTUM_PS,
             hz: int = M7_HZ, scheduler: Scheduler | None = None, name: str = "stm32",
             config: dict[str, int] | None = None, cache: object | None = None) -> M7:
    """A Cortex-M7 machine; with ``elf``: loaded, ``config`` symbols patched, CPU reset."""
    sched = scheduler or Scheduler(quantum_ps)
    m = Machine(name, sched, platform=__file__)
    m.cache = cache
    nvic = Nvic(m, "nvic", 0xE000_E000, 0x1000, {"priorityMask": 0xF0,
                                                 "systickFrequency": hz})
    cpu = CortexM7Cpu(m, "cpu", hz, nvic=nvic)
    m.attach_cpu(cpu)
    for mem, base, size in M7_MEMORIES:
        m.add_memory(mem, [base], size)
    m.add_peripheral(nvic)
    m.finish()
    board = M7(sched, m, cpu, nvic)
    if elf is not None:
        img = read_elf(elf)
        load_segments(img, m.write_memory, lambda a, n: any(
            b <= a and a + n <= b + s for _nm, b, s in m.memories))
        board.image = img
        for sym, value in (config or {}).items():
            board.patch_u32(sym, value)
        cpu.reset()
    return board
