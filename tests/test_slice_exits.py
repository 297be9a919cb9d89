"""Slices never end at emu_start's `until`, and unicorn is told so (cpu.py: its exits switched on,
none given): a slice costs no TLB fill of the `until` page and still runs exactly its count."""
from __future__ import annotations

from duohil.bench import _m7_for_exceptions
from duohil.engines.builtin import native

native.require()


def test_a_slice_fills_no_tlb_entry_for_until_and_runs_its_count() -> None:
    cpu, A = _m7_for_exceptions()
    uc, vt = cpu.uc, cpu._vtlb
    nops = 0x0800_0500
    cpu.machine.write_memory(nops, b"\x00\xbf" * 64 + b"\xfe\xe7")       # 64 Thumb NOPs, b .
    cpu._emu_start(nops | 1, 1)                                         # first fills: code page
    before = vt.stats()["fills"]
    pcs = []
    for n in (1, 3, 7, 20):
        cpu._emu_start(nops | 1, n)
        pcs.append(uc.reg_read(A.UC_ARM_REG_PC))
    # each slice stopped after exactly n instructions, and none asked for a TLB entry (unicorn
    # 2.1.4 invalidated the translation at `until`, 0xFFFFFFFF, after every emu_start: one fill
    # of that unmapped page per slice)
    assert pcs == [nops + 2 * n for n in (1, 3, 7, 20)]
    assert vt.stats()["fills"] == before
    # the run ends where the code says, whatever `until` is given
    cpu._emu_start(nops | 1, 200)
    assert uc.reg_read(A.UC_ARM_REG_PC) == nops + 128
