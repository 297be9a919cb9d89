"""PRIMASK/BASEPRI set before a thread drops privilege still mask interrupts (ARMv7-M B1.4.3: the
masks are core state; only their writes are privileged). unicorn reads them with MRS semantics,
which give 0 to unprivileged thread code: the engine used to take a masked interrupt there
(found by test_native_cortexm's spec draw, seed 23). cortexm.h's dh_cm_read_masks reads them as
the core holds them."""
from __future__ import annotations

from builtin_helpers import build_m7
from unicorn import arm_const as A

from duohil.engines.base import PS_PER_US

VTOR = 0x0800_0000
DTCM = 0x2000_0000
CODE = 0x0800_0300
HANDLER = 0x0800_0400
CPSID_I = b"\x72\xb6"
MOVS_R0_1 = b"\x01\x20"
MOVS_R0_0X40 = b"\x40\x20"
MSR_CONTROL_R0 = b"\x80\xf3\x14\x88"
MSR_BASEPRI_R0 = b"\x80\xf3\x11\x88"
ISB = b"\xbf\xf3\x6f\x8f"
ADDS_R1_1 = b"\x01\x31"
MOVS_R7_0X55_BX_LR = b"\x55\x27\x70\x47"


def b_to(src: int, dst: int) -> bytes:
    off = (dst - (src + 4)) >> 1
    return (0xE000 | (off & 0x7FF)).to_bytes(2, "little")


def board(prologue: bytes):
    """Run ``prologue`` privileged, drop privilege (CONTROL.nPRIV = 1), then count in r1 forever;
    IRQ 0 (priority 0x80) and IRQ 1 (priority 0x20) share a handler that sets r7 = 0x55."""
    b = build_m7()
    m, uc = b.machine, b.cpu.uc
    for irq in (0, 1):
        m.write_memory(VTOR + 4 * (16 + irq), (HANDLER | 1).to_bytes(4, "little"))
    m.write_memory(HANDLER, MOVS_R7_0X55_BX_LR)
    code = prologue + MOVS_R0_1 + MSR_CONTROL_R0 + ISB
    loop = CODE + len(code)
    m.write_memory(CODE, code + ADDS_R1_1 + b_to(loop + 2, loop))
    uc.reg_write(A.UC_ARM_REG_MSP, DTCM + 0x400)
    uc.reg_write(A.UC_ARM_REG_PC, CODE | 1)
    b.cpu.registers_changed()
    m.bus_write(0xE000E400, 4, 0x2080)                 # IPR0: IRQ0 0x80, IRQ1 0x20
    m.bus_write(0xE000E100, 4, 0b11)                   # ISER0: both enabled
    return b


def test_primask_set_before_dropping_privilege_keeps_masking():
    b = board(CPSID_I)
    uc, cpu, nv = b.cpu.uc, b.cpu, b.nvic
    b.scheduler.run_until(20 * PS_PER_US)
    assert uc.reg_read(A.UC_ARM_REG_CONTROL) & 1 and uc.reg_read(A.UC_ARM_REG_R1) > 0
    assert uc.reg_read(A.UC_ARM_REG_PRIMASK) == 0      # what unicorn's own read says there
    sp = uc.reg_read(A.UC_ARM_REG_SP)
    b.machine.bus_write(0xE000E200, 4, 0b11)           # ISPR0: both pending
    b.scheduler.run_until(60 * PS_PER_US)
    assert uc.reg_read(A.UC_ARM_REG_R7) != 0x55 and nv.active == 0
    assert nv.pending >> 16 & 0b11 == 0b11             # still pending: PRIMASK masks both
    assert uc.reg_read(A.UC_ARM_REG_SP) == sp and uc.reg_read(A.UC_ARM_REG_CONTROL) == 1
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 0 # the masks' read left the thread mode alone
    assert cpu._read_masks() == [1, 0, 0]


def test_basepri_set_before_dropping_privilege_masks_by_priority():
    b = board(MOVS_R0_0X40 + MSR_BASEPRI_R0)
    uc, cpu, nv = b.cpu.uc, b.cpu, b.nvic
    b.scheduler.run_until(20 * PS_PER_US)
    assert uc.reg_read(A.UC_ARM_REG_CONTROL) & 1
    b.machine.bus_write(0xE000E200, 4, 0b01)           # IRQ0 (0x80): masked by BASEPRI 0x40
    b.scheduler.run_until(60 * PS_PER_US)
    assert uc.reg_read(A.UC_ARM_REG_R7) != 0x55 and nv.pending >> 16 & 1
    b.machine.bus_write(0xE000E200, 4, 0b10)           # IRQ1 (0x20): above BASEPRI, taken
    b.scheduler.run_until(100 * PS_PER_US)
    assert uc.reg_read(A.UC_ARM_REG_R7) == 0x55 and not nv.pending >> 17 & 1
    assert nv.pending >> 16 & 1                        # IRQ0 still waits
    assert cpu._read_masks() == [0, 0x40, 0]
