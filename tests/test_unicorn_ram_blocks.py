"""unicorn 2.1.4 overlaps RAM blocks in ram_addr space until a block has been freed (cpu.py,
``_separate_ram_blocks``): a store to one memory then invalidates translated code in another.

Observed through a documented unicorn behaviour (unicorn.md, cortexm.interrupt_at): a code hook
added after a block was translated does not fire until the block is retranslated. So a hook that
fires after an unrelated store proves the store threw the translated code away."""
from __future__ import annotations

import ctypes

import pytest

unicorn = pytest.importorskip("unicorn")
from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn.arm_const import UC_ARM_REG_R0, UC_ARM_REG_R1

from duohil.engines.builtin.cpus.cpu import _separate_ram_blocks

CODE = 0x0800_0100          # two NOPs in flash
STORE = 0x0800_1000         # str r1, [r0]
RAM_TWIN = 0x2000_0100      # DTCM at the same offset from its base as CODE from the flash's


def _retranslated_after_store(separate: bool) -> bool:
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    if separate:
        _separate_ram_blocks(uc)
    keep = []
    for base, size in ((0x0, 0x1_0000), (0x0800_0000, 0x10_0000), (0x2000_0000, 0x2_0000)):
        buf = ctypes.create_string_buffer(size)           # as machine.add_memory maps them
        keep.append(buf)
        uc.mem_map_ptr(base, size, 7, ctypes.addressof(buf))
    uc.mem_write(CODE, bytes.fromhex("00bf00bf"))
    uc.mem_write(STORE, bytes.fromhex("0160"))
    uc.emu_start(CODE | 1, 0xFFFF_FFFF, 0, 2)              # translate the NOPs
    seen: list[int] = []
    uc.hook_add(UC_HOOK_CODE, lambda _uc, addr, _size, _ud: seen.append(addr),
                begin=CODE, end=CODE + 3)
    uc.reg_write(UC_ARM_REG_R0, RAM_TWIN)
    uc.reg_write(UC_ARM_REG_R1, 0x1234_5678)
    uc.emu_start(STORE | 1, 0xFFFF_FFFF, 0, 1)             # a guest store to the DTCM
    assert bytes(uc.mem_read(RAM_TWIN, 4)) == (0x1234_5678).to_bytes(4, "little")
    uc.emu_start(CODE | 1, 0xFFFF_FFFF, 0, 2)
    return bool(seen)


def test_the_unicorn_bug_is_real():
    # the control: without the work-around the store invalidates the flash code
    assert _retranslated_after_store(separate=False)


def test_stores_to_ram_leave_translated_flash_code_alone():
    assert not _retranslated_after_store(separate=True)
