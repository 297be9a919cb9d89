"""The peer core's reset-time scan for SYSTEM instructions reads memory a chunk at a time: it must
find exactly the sites a scan of the whole region finds, across chunk edges and at the end."""
from __future__ import annotations

from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, Uc

from duohil.engines.builtin.cpus.rv32 import riscv
from duohil.engines.builtin.kernel.ucraw import MemPort


def test_chunked_scan_finds_what_a_whole_region_scan_finds():
    ch = riscv._SCAN_CHUNK
    base, size = 0x4200_0000, 4 * ch + 0x1000
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
    uc.mem_map(base, size)
    marks = [0, 1, 2, ch - 4, ch - 3, ch - 2, ch - 1, ch, ch + 1, ch + 2, 2 * ch - 2, 3 * ch,
             size - 6, size - 4, size - 3, size - 2, size - 1]
    for i, off in enumerate(marks):
        uc.mem_write(base + off, bytes([0x73 if i % 2 else 0xF3]))
    # a whole SYSTEM word straddling the first chunk edge
    uc.mem_write(base + ch - 2, (0xC0102573).to_bytes(4, "little"))    # csrr a0, time
    data = bytes(uc.mem_read(base, size))
    want = [(o, int.from_bytes(data[o:o + 4], "little")) for o in riscv._system_opcode_offsets(data)]
    got = riscv._system_words(MemPort(uc, ch + 4), base, size)
    assert got == want
    assert (ch - 2, 0xC0102573) in got                 # found across the edge, with its word
    assert all(o % 2 == 0 and o + 4 <= size for o, _ in got) and len(got) >= 8
