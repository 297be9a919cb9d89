"""The peer core's reset-time scan for SYSTEM instructions reads the memory's own storage (the
mmap unicorn's pages are, Machine.memory_store) without copying it: it must find exactly the even
offsets holding a SYSTEM opcode byte with a whole word after them, with the word as the CPU wrote
it, and a reset must hook what the CPU wrote since the last one."""
from __future__ import annotations

import struct

from duohil.engines.builtin.cpus.rv32 import riscv
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.loaders.platform import build_machine
from pathlib import Path

PLATFORMS = Path(__file__).resolve().parents[1] / "platforms"
CSRR_A0_CYCLE = 0xC0002573        # csrr a0, cycle (a counter read: hooked)
CSRR_A0_TIME = 0xC0102573         # csrr a0, time  (a SYSTEM word, not a counter read)


def test_scan_of_bytes_finds_every_even_site_with_a_whole_word():
    size = 0x40
    data = bytearray(size)
    marks = {0: 0x73, 1: 0x73, 2: 0xF3, 7: 0xF3, 0x20: 0x73, size - 6: 0x73, size - 4: 0xF3,
             size - 3: 0x73, size - 2: 0x73, size - 1: 0xF3}
    for off, b in marks.items():
        data[off] = b
    got = riscv._system_words(bytes(data))
    want = sorted(o for o in marks if o % 2 == 0 and o + 4 <= size)
    assert [o for o, _ in got] == want == [0, 2, 0x20, size - 6, size - 4]
    assert all(w == struct.unpack_from("<I", data, o)[0] for o, w in got)


def test_scan_reads_the_memory_the_cpu_wrote_and_a_reset_hooks_it():
    m = build_machine(PLATFORMS / "esp32c3_peer.repl", Scheduler(), "peer")
    cpu = m.cpu
    name, base, size = next(r for r in m.ram_regions() if r[0] == "dram")   # IRAM is its alias
    store = m.memory_store(base)
    assert store is not None and len(store) == size
    sites = [0x100, size - 4, 0x4002]                  # the end of the region; 2-aligned only
    for off in sites:
        cpu.uc.mem_write(base + off, CSRR_A0_CYCLE.to_bytes(4, "little"))
    cpu.uc.mem_write(base + 0x200, CSRR_A0_TIME.to_bytes(4, "little"))
    found = dict(riscv._system_words(store))
    assert {o: found.get(o) for o in sites} == {o: CSRR_A0_CYCLE for o in sites}
    assert found.get(0x200) == CSRR_A0_TIME
    cpu.reset()
    aliases = [b for n, b, _ in m.memories if n == name]
    assert sorted(cpu.counter_sites) == sorted(b + o for b in aliases for o in sites)
