"""The exception-return integrity checks of the ARMv7-M ARM (B1.5.8 ExceptionReturn()) on a guest
firmware's own broken return path: it must fault as silicon does (UsageFault INVPC), not run on.

- to Thread mode while another exception stays active, CCR.NONBASETHRDENA = 0: refused before the
  pop (NestedActivation), the returning exception deactivated;
- the IPSR restored from the frame must be 0 in Thread mode and not 0 in Handler mode: refused
  after the pop (a return to Handler with only one exception active is this case: its frame was
  stacked from Thread mode, IPSR 0);
- then UFSR.INVPC, LR = EXC_RETURN and the UsageFault taken on the frame still on the stack (as a
  tail-chain: nothing pushed, the frame's return address the interrupted code's); escalated to
  HardFault (HFSR.FORCED) when disabled or unable to preempt what stays active.

The valid counterparts run on: a nested return to Handler with two exceptions active, and a
return to Thread with one still active under NONBASETHRDENA = 1 (its frame's xPSR made a thread's).
Each refused case failed before the checks were modelled (the return ran on)."""
from __future__ import annotations

from builtin_helpers import build_m7
from unicorn import arm_const as A

from duohil.engines.base import PS_PER_US
from duohil.engines.builtin.cpus.m7.nvic import HARDFAULT, HFSR_FORCED, INVPC, SVCALL, USAGEFAULT

VTOR = 0x0800_0000
DTCM = 0x2000_0000
CODE = 0x0800_0300                 # thread: r1 += 1 forever
HF, UF = 0x0800_0400, 0x0800_0420  # HardFault: r7 = 0x77, UsageFault: r7 = 0x66 (then spin)
IRQ0, SVC = 0x0800_0440, 0x0800_0480
THREAD2 = 0x0800_0500              # where a NONBASETHRDENA return resumes: r5 = 0x33, spin
IRQ0_BIT = 1 << 16

ADDS_R1_1 = b"\x01\x31"
BX_LR = b"\x70\x47"
SVC_0 = b"\x00\xdf"
MOVS_R6_0X44 = b"\x44\x26"
STACKED_XPSR_THREAD = b"\x4f\xf0\x80\x70" + b"\x07\x90"   # mov.w r0, #0x01000000; str r0, [sp, #28]
STACKED_PC_THREAD2 = b"\x40\xf2\x00\x50\xc0\xf6\x00\x00" + b"\x06\x90"   # movw/movt r0; str [sp, #24]
IRQ0_CALLS_SVC = SVC_0 + MOVS_R6_0X44 + BX_LR           # r6 = 0x44 once the SVC came back


def mvn_lr(imm: int) -> bytes:
    """mvn.w lr, #imm: LR = ~imm (0xE: 0xFFFFFFF1, 6: 0xFFFFFFF9)."""
    return b"\x6f\xf0" + bytes((imm, 0x0E))


def spin(reg: int, value: int) -> bytes:
    """movs r<reg>, #value; b ."""
    return bytes((value, 0x20 | reg)) + b"\xfe\xe7"


def board(irq0: bytes, svc: bytes = BX_LR, usagefault: bool = True, nonbasethrdena: bool = False,
          usagefault_prio: int = 0):
    """IRQ 0 (priority 0x80) runs ``irq0``; SVCall (priority 0) runs ``svc``."""
    b = build_m7()
    m, uc, nv = b.machine, b.cpu.uc, b.nvic
    for exc, addr in ((HARDFAULT, HF), (USAGEFAULT, UF), (SVCALL, SVC), (16, IRQ0)):
        m.write_memory(VTOR + 4 * exc, (addr | 1).to_bytes(4, "little"))
    m.write_memory(CODE, ADDS_R1_1 + b"\xfd\xe7")             # adds r1, #1; b CODE
    m.write_memory(HF, spin(7, 0x77))
    m.write_memory(UF, spin(7, 0x66))
    m.write_memory(THREAD2, spin(5, 0x33))
    m.write_memory(IRQ0, irq0)
    m.write_memory(SVC, svc)
    uc.reg_write(A.UC_ARM_REG_MSP, DTCM + 0x400)
    uc.reg_write(A.UC_ARM_REG_PC, CODE | 1)
    b.cpu.registers_changed()
    m.bus_write(0xE000E400, 4, 0x80)                          # IPR0: IRQ 0 at 0x80
    m.bus_write(0xE000E100, 4, 1)                             # ISER0
    m.bus_write(0xE000ED18, 4, usagefault_prio << 16)         # SHPR1: UsageFault's priority
    if usagefault:
        m.bus_write(0xE000ED24, 4, 1 << 18)                   # SHCSR.USGFAULTENA
    if nonbasethrdena:
        m.bus_write(0xE000ED14, 4, nv.regs.CCR.value | 1)     # CCR.NONBASETHRDENA
    b.scheduler.run_until(10 * PS_PER_US)
    return b


def fire(b) -> int:
    """Pend IRQ 0 from thread mode and run on; the MSP the IRQ's frame lies at."""
    uc = b.cpu.uc
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 0 and uc.reg_read(A.UC_ARM_REG_R1) > 0
    msp = uc.reg_read(A.UC_ARM_REG_MSP)
    b.machine.bus_write(0xE000E200, 4, 1)                     # ISPR0
    b.scheduler.run_until(50 * PS_PER_US)
    return (msp - 0x20) & ~7


def frame(b, sp: int) -> list[int]:
    data = bytes(b.cpu.uc.mem_read(sp, 0x20))
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, 0x20, 4)]


def faults(b) -> list[dict]:
    return [e[2] for e in b.scheduler.log if e[1] == "cpu_fault"]


def assert_invpc(b, exc_return: int, taken_as: int, active: int, frame_sp: int) -> None:
    """The refused return: INVPC, ``taken_as`` entered with LR = EXC_RETURN on the frame at
    ``frame_sp`` (MSP unchanged: nothing pushed or popped), ``active`` left active."""
    uc, nv = b.cpu.uc, b.nvic
    assert nv.cfsr & INVPC and nv.cfsr == INVPC
    assert uc.reg_read(A.UC_ARM_REG_R7) == (0x66 if taken_as == USAGEFAULT else 0x77)
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == taken_as
    assert uc.reg_read(A.UC_ARM_REG_LR) == exc_return
    assert uc.reg_read(A.UC_ARM_REG_MSP) == frame_sp
    assert nv.active == active | 1 << taken_as and nv.stack[-1] == taken_as
    assert bool(nv.hfsr & HFSR_FORCED) == (taken_as == HARDFAULT)
    log = faults(b)
    assert len(log) == 1 and log[0]["exception"] == USAGEFAULT and log[0]["taken_as"] == taken_as
    assert log[0]["pc"] == exc_return & ~1 and log[0]["cfsr"] & INVPC


# -- a return to Handler with only one exception active ---------------------------------------------

def test_return_to_handler_with_one_active_takes_usagefault_on_its_frame():
    b = board(mvn_lr(0xE) + BX_LR)                 # IRQ 0 returns with 0xFFFFFFF1
    sp = fire(b)
    assert_invpc(b, 0xFFFFFFF1, USAGEFAULT, 0, sp)  # IRQ 0 deactivated
    f = frame(b, sp)
    assert f[6] in (CODE, CODE + 2) and f[7] & 0x1FF == 0   # the thread's frame, still there


def test_return_to_handler_with_one_active_escalates_when_usagefault_is_off():
    b = board(mvn_lr(0xE) + BX_LR, usagefault=False)
    sp = fire(b)
    assert_invpc(b, 0xFFFFFFF1, HARDFAULT, 0, sp)


def test_nested_return_to_handler_with_two_active_is_fine():
    b = board(IRQ0_CALLS_SVC, svc=mvn_lr(0xE) + BX_LR)   # the SVC returns to IRQ 0's handler
    fire(b)
    uc, nv = b.cpu.uc, b.nvic
    assert uc.reg_read(A.UC_ARM_REG_R6) == 0x44 and uc.reg_read(A.UC_ARM_REG_R7) == 0
    assert nv.active == 0 and nv.cfsr == 0 and not faults(b)
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 0      # and IRQ 0 back to the thread


# -- a return to Thread with another exception active ---------------------------------------------

def test_return_to_thread_with_another_active_is_invpc():
    b = board(IRQ0_CALLS_SVC, svc=mvn_lr(6) + BX_LR)     # the SVC returns to Thread (0xFFFFFFF9)
    irq_sp = fire(b)
    svc_sp = (irq_sp - 0x20) & ~7
    assert_invpc(b, 0xFFFFFFF9, USAGEFAULT, IRQ0_BIT, svc_sp)    # SVCall deactivated, IRQ 0 not
    f = frame(b, svc_sp)
    assert f[6] == IRQ0 + 2 and f[7] & 0x1FF == 16                # the SVC's frame, still there
    assert b.cpu.uc.reg_read(A.UC_ARM_REG_R6) != 0x44


def test_return_to_thread_with_another_active_escalates_when_usagefault_cannot_preempt():
    # UsageFault at 0xC0 cannot preempt IRQ 0 (0x80), still active: HardFault, FORCED
    b = board(IRQ0_CALLS_SVC, svc=mvn_lr(6) + BX_LR, usagefault_prio=0xC0)
    irq_sp = fire(b)
    assert_invpc(b, 0xFFFFFFF9, HARDFAULT, IRQ0_BIT, (irq_sp - 0x20) & ~7)


def test_return_to_thread_with_another_active_is_refused_before_the_pop():
    # the same return with a frame made a thread's (IPSR 0): only NestedActivation refuses it,
    # before anything is popped
    svc = STACKED_XPSR_THREAD + STACKED_PC_THREAD2 + mvn_lr(6) + BX_LR
    b = board(IRQ0_CALLS_SVC, svc=svc)
    irq_sp = fire(b)
    svc_sp = (irq_sp - 0x20) & ~7
    assert_invpc(b, 0xFFFFFFF9, USAGEFAULT, IRQ0_BIT, svc_sp)
    assert frame(b, svc_sp)[6:] == [THREAD2, 0x0100_0000]
    assert b.cpu.uc.reg_read(A.UC_ARM_REG_R5) != 0x33


def test_nonbasethrdena_allows_the_return_to_thread():
    # the SVC makes its frame a thread's (xPSR IPSR 0, PC = THREAD2) and returns to Thread:
    # THREAD2 runs in Thread mode with IRQ 0 still active
    svc = STACKED_XPSR_THREAD + STACKED_PC_THREAD2 + mvn_lr(6) + BX_LR
    b = board(IRQ0_CALLS_SVC, svc=svc, nonbasethrdena=True)
    fire(b)
    uc, nv = b.cpu.uc, b.nvic
    assert uc.reg_read(A.UC_ARM_REG_R5) == 0x33 and uc.reg_read(A.UC_ARM_REG_PC) == THREAD2 + 2
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 0
    assert nv.active == IRQ0_BIT and nv.cfsr == 0 and not faults(b)


# -- the frame's IPSR against the mode returned to ---------------------------------------------

def test_return_to_thread_with_a_handler_frame_is_invpc():
    # NONBASETHRDENA passes the nesting check; the SVC's frame (stacked in IRQ 0's handler,
    # IPSR 16) fails the check after the pop
    b = board(IRQ0_CALLS_SVC, svc=mvn_lr(6) + BX_LR, nonbasethrdena=True)
    irq_sp = fire(b)
    svc_sp = (irq_sp - 0x20) & ~7
    assert_invpc(b, 0xFFFFFFF9, USAGEFAULT, IRQ0_BIT, svc_sp)
    assert frame(b, svc_sp)[7] & 0x1FF == 16


def test_return_to_handler_with_a_thread_frame_is_invpc():
    # two active, so the nesting is fine; the SVC's frame made a thread's (IPSR 0) fails it
    b = board(IRQ0_CALLS_SVC, svc=STACKED_XPSR_THREAD + BX_LR)   # LR: 0xFFFFFFF1 from the entry
    irq_sp = fire(b)
    svc_sp = (irq_sp - 0x20) & ~7
    assert_invpc(b, 0xFFFFFFF1, USAGEFAULT, IRQ0_BIT, svc_sp)
    assert frame(b, svc_sp)[7] == 0x0100_0000 and frame(b, svc_sp)[6] == IRQ0 + 2
