"""How both cores' C slices (_core.c: ms_slice_failure) end when a hook raises: a UcError is handed
to the core's _slice_error as emu_start's own error would be, any other exception is raised again
to the caller (as the unicorn binding does with its hook wrapper)."""
from __future__ import annotations

import pytest
from builtin_helpers import build_m7
from rv_helpers import build_peer
from unicorn import UC_ERR_EXCEPTION, UC_HOOK_CODE, UcError
from unicorn import arm_const as A
from unicorn import riscv_const as rv

M7_CODE, RV_CODE = 0x0800_0300, 0x4200_0000


def m7():
    b = build_m7()
    b.machine.write_memory(M7_CODE, b"\x00\xbf" * 8 + b"\xfe\xe7")     # nops, b .
    b.cpu.uc.reg_write(A.UC_ARM_REG_MSP, 0x2000_0400)
    b.cpu.uc.reg_write(A.UC_ARM_REG_PC, M7_CODE | 1)
    b.cpu.registers_changed()
    return b.cpu, M7_CODE


def peer():
    p = build_peer()
    p.machine.write_memory(RV_CODE, (0x13).to_bytes(4, "little") * 8 + (0x6F).to_bytes(4, "little"))
    p.cpu.uc.reg_write(rv.UC_RISCV_REG_PC, RV_CODE)
    p.cpu.registers_changed()
    return p.cpu, RV_CODE


@pytest.mark.parametrize("make", [m7, peer], ids=["m7", "rv32"])
def test_a_hook_raising_ends_the_slice_as_the_binding_would(make):
    cpu, code = make()
    seen = []
    cpu._slice_error = lambda err: seen.append(err)            # type: ignore[method-assign]

    def raise_uc(uc, address, size, data):
        raise UcError(UC_ERR_EXCEPTION)

    h = cpu.uc.hook_add(UC_HOOK_CODE, raise_uc, begin=code + 4, end=code + 4)
    cpu.executing = True
    assert cpu._run_slice(6) is None
    assert len(seen) == 1 and isinstance(seen[0], UcError) and seen[0].errno == UC_ERR_EXCEPTION
    cpu.uc.hook_del(h)

    def raise_other(uc, address, size, data):
        raise ValueError("from a hook")

    cpu.uc.hook_add(UC_HOOK_CODE, raise_other, begin=code + 8, end=code + 8)
    cpu.registers_changed()
    with pytest.raises(ValueError, match="from a hook"):
        cpu._run_slice(6)
    assert len(seen) == 1                                      # not handed to _slice_error
    cpu.executing = False
