"""Differential tests: Cortex-M7 exception entry, tail-chain and return in C (native/cortexm.c)
against the Python reference (cortexm.py's _enter/_exc_return).

Two hand-built M7 machines (tests/builtin_helpers.build_m7), one per DUOHIL_MODELS value, get the
same synthetic register state (thread or handler mode, MSP or PSP, privileged or not, FP context
active or not, masks, a stack that may run off the bottom of the DTCM) and the same NVIC state;
Hypothesis then drives both with the same sequence of exception entries, pends + takes, handler
register changes and returns (good and bad EXC_RETURN values). After every step both must hold
the same core registers (FP included), the same stack memory, the same NVIC state (pending,
active, the active stack, CFSR, HFSR, FPCAR), the same core state (halt, lockup, where the next
slice starts, what a return restored) and the same event log.
"""
from __future__ import annotations


import pytest
from builtin_helpers import build_m7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UcError
from unicorn import arm_const as A

from duohil.engines.builtin import native
from duohil.engines.builtin.cortexm import EXC_RETURN_OK
from duohil.engines.builtin.nvic import BUSFAULT, HARDFAULT, MEMMANAGE, NMI, PENDSV, SVCALL, SYSTICK

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

DTCM = 0x2000_0000
STACK_LO, STACK_HI = DTCM, DTCM + 0x800           # compared byte for byte
VTOR = 0x0800_0000
COMPARED = ([A.UC_ARM_REG_R0 + i for i in range(13)] +
            [A.UC_ARM_REG_SP, A.UC_ARM_REG_MSP, A.UC_ARM_REG_PSP, A.UC_ARM_REG_LR, A.UC_ARM_REG_PC,
             A.UC_ARM_REG_XPSR, A.UC_ARM_REG_CONTROL, A.UC_ARM_REG_PRIMASK, A.UC_ARM_REG_BASEPRI,
             A.UC_ARM_REG_FAULTMASK, A.UC_ARM_REG_FPSCR] +
            [A.UC_ARM_REG_S0 + i for i in range(32)])
EXCS = (NMI, HARDFAULT, MEMMANAGE, BUSFAULT, 6, SVCALL, PENDSV, SYSTICK, 16, 17, 18, 19)
PRIOS = (0x00, 0x40, 0x80, 0xC0, 0xF0)

u32 = st.integers(0, 0xFFFF_FFFF)
# stack pointers: well inside the DTCM, or close enough to its bottom that a frame (0x20/0x68
# bytes) runs into unmapped memory (STKERR), word-aligned or only 4-aligned
SP = st.one_of(st.integers((DTCM + 0x300) // 4, (DTCM + 0x7F0) // 4).map(lambda w: 4 * w),
               st.integers(DTCM // 4, (DTCM + 0x80) // 4).map(lambda w: 4 * w))
STATE = st.fixed_dictionaries({
    "gpr": st.lists(u32, min_size=13, max_size=13),
    "lr": u32,
    "pc": st.integers(0x0800_0200 // 2, 0x0800_0400 // 2).map(lambda h: 2 * h),
    "apsr": st.integers(0, 31).map(lambda f: f << 27),
    "ipsr": st.sampled_from((0, 0, 0, SVCALL, 16, 17)),
    "msp": SP, "psp": SP,
    "control": st.integers(0, 15),
    "primask": st.integers(0, 1), "basepri": st.sampled_from((0, 0x40, 0x80)),
    "faultmask": st.sampled_from((0, 0, 0, 1)),
    "fp": st.lists(u32, min_size=16, max_size=16), "fpscr": st.integers(0, 0xF7C0009F),
    "prio": st.lists(st.sampled_from(PRIOS), min_size=len(EXCS), max_size=len(EXCS)),
    "prigroup_mask": st.sampled_from((0xF0, 0xC0, 0x80)),
    "enabled": st.integers(0, 0xF).map(lambda b: (b << 16) | (1 << 4) | (1 << 5) | (1 << 6)),
    "vtor_bad": st.sampled_from((False,) * 9 + (True,)),
    "mpu_guard": st.sampled_from((False,) * 4 + (True,)),
})
OP = st.one_of(
    st.tuples(st.just("enter"), st.sampled_from(EXCS), st.one_of(st.none(), st.integers(0x0800_0200 // 2,
                                                                                          0x0800_0300 // 2))),
    st.tuples(st.just("pend_take"), st.sampled_from(EXCS)),
    st.tuples(st.just("pend"), st.sampled_from(EXCS)),
    st.tuples(st.just("work"), st.lists(u32, min_size=4, max_size=4), st.booleans()),
    st.tuples(st.just("return"),),
    st.tuples(st.just("return_to"), st.sampled_from((0xFFFFFFF1, 0xFFFFFFF9, 0xFFFFFFFD, 0xFFFFFFE1,
                                                     0xFFFFFFE9, 0xFFFFFFED, 0xFFFFFFF5, 0xFFFFFF01))),
    # the handler's own ``bx lr`` run by unicorn: the return comes through the UC_HOOK_INTR hook
    # (decided in C under native, cortexm.py's _on_intr under python)
    st.tuples(st.just("bx_lr"), st.sampled_from((None, 0xFFFFFFF1, 0xFFFFFFF9, 0xFFFFFFFD, 0xFFFFFFE1,
                                                 0xFFFFFFE9, 0xFFFFFFED, 0xFFFFFFF5))),
)
BX_LR = 0x0800_0180                                # a ``bx lr`` just past the vector table


def board(models: str):
    with native.using(models):
        b = build_m7()
    assert (b.cpu._cm is not None) == (models == "native")
    return b


def setup(b, s) -> None:
    uc, nv = b.cpu.uc, b.nvic
    table = b"".join((0x0800_1001 + 0x40 * i).to_bytes(4, "little") for i in range(64))
    b.machine.write_memory(VTOR, table)
    b.machine.write_memory(BX_LR, b"\x70\x47")
    nv.vtor = 0x9000_0000 if s["vtor_bad"] else VTOR
    for exc, p in zip(EXCS, s["prio"]):
        if exc >= 4:
            nv.prio[exc] = p
    nv.group_mask = s["prigroup_mask"]
    nv.enabled |= s["enabled"]
    if s["mpu_guard"]:          # the MPU's no-access guard over the lowest 256 bytes of the DTCM
        nv.mpu.write_rbar(DTCM | 0x10)                  # region 0
        nv.mpu.write_rasr(1 | 7 << 1)                   # enabled, 256 bytes, AP = no access
        nv.mpu.write_ctrl(1 | 4)                        # ENABLE, PRIVDEFENA
    uc.reg_write(A.UC_ARM_REG_XPSR, (1 << 24) | s["apsr"] | s["ipsr"])
    for exc in (s["ipsr"],) if s["ipsr"] else ():
        nv.active |= 1 << exc
        nv.stack = list(nv.stack) + [exc]
    uc.reg_write(A.UC_ARM_REG_MSP, s["msp"])
    uc.reg_write(A.UC_ARM_REG_PSP, s["psp"])
    for i, v in enumerate(s["gpr"]):
        uc.reg_write(A.UC_ARM_REG_R0 + i, v)
    for i, v in enumerate(s["fp"]):
        uc.reg_write(A.UC_ARM_REG_S0 + i, v)
    uc.reg_write(A.UC_ARM_REG_FPSCR, s["fpscr"])
    uc.reg_write(A.UC_ARM_REG_LR, s["lr"])
    uc.reg_write(A.UC_ARM_REG_PC, s["pc"] | 1)
    uc.reg_write(A.UC_ARM_REG_BASEPRI, s["basepri"])
    uc.reg_write(A.UC_ARM_REG_FAULTMASK, s["faultmask"])
    uc.reg_write(A.UC_ARM_REG_PRIMASK, s["primask"])
    uc.reg_write(A.UC_ARM_REG_CONTROL, s["control"])     # last: it may drop privilege
    b.cpu.registers_changed()


def apply(b, op) -> None:
    cpu, nv, uc = b.cpu, b.nvic, b.cpu.uc
    if cpu.halted:
        return
    kind = op[0]
    if kind == "enter":
        cpu._enter(op[1], pc=None if op[2] is None else 2 * op[2])
    elif kind == "pend_take":
        nv.set_pending(op[1])
        cpu.take_interrupts()
    elif kind == "pend":
        nv.set_pending(op[1])
    elif kind == "work":                 # the handler ran: changed r0-r3, maybe used the FPU
        for i, v in enumerate(op[1]):
            uc.reg_write(A.UC_ARM_REG_R0 + i, v)
        if op[2]:
            ctl = uc.reg_read(A.UC_ARM_REG_CONTROL)
            uc.reg_write(A.UC_ARM_REG_CONTROL, ctl | 4)
        cpu.registers_changed()
    elif kind in ("return", "return_to"):   # what the intno-8 hook sees: PC = EXC_RETURN & ~1
        target = uc.reg_read(A.UC_ARM_REG_LR) if kind == "return" else op[1]
        uc.reg_write(A.UC_ARM_REG_PC, target & ~1)
        cpu.registers_changed()
        cpu._exc_return()
    elif kind == "bx_lr" and nv.active >> (uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF) & 1:
        # in the handler of an active exception, returning with a valid EXC_RETURN (what QEMU
        # itself refuses, it faults on without the hook: the direct "return" ops cover those)
        if op[1] is not None:
            uc.reg_write(A.UC_ARM_REG_LR, op[1])
        if uc.reg_read(A.UC_ARM_REG_LR) in EXC_RETURN_OK:
            cpu.registers_changed()
            try:
                cpu._emu_start(BX_LR | 1, 1)
            except UcError as exc:          # e.g. returned to an unmapped PC: both boards alike
                cpu.test_errors = getattr(cpu, "test_errors", []) + [exc.errno]
    cpu.registers_changed()


def state(b) -> dict:
    cpu, nv, uc = b.cpu, b.nvic, b.cpu.uc
    return {
        "regs": [uc.reg_read(r) for r in COMPARED],
        "stack": bytes(uc.mem_read(STACK_LO, STACK_HI - STACK_LO)),
        "nvic": (nv.pending, nv.active, list(nv.stack), nv.cfsr, nv.hfsr, nv.regs.FPCAR.value,
                 nv.exceptions_taken),
        "cpu": (cpu.halted, cpu.halt_reason, cpu.lockup, cpu._pc, cpu._returned_to, cpu._ret_state,
                cpu._stop, cpu._entries, cpu._rate_n, cpu.faults, getattr(cpu, "test_errors", None),
                cpu._thread_pc, cpu._thread_ps, cpu._mask_cache, cpu._entry_cache),
        "log": list(b.scheduler.log),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=STATE, ops=st.lists(OP, min_size=1, max_size=12))
def test_entry_and_return_in_c_equal_the_python_reference(s, ops) -> None:
    py, nat = board("python"), board("native")
    for b in (py, nat):
        setup(b, s)
    assert state(py) == state(nat)
    for i, op in enumerate(ops):
        for b in (py, nat):
            apply(b, op)
        a, c = state(py), state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def test_a_frame_is_stacked_and_unstacked_by_c() -> None:
    """The native path is the one under test (not the Python methods by another name): a basic and
    an FP-extended frame land in memory where the architecture puts them, and come back."""
    b = board("native")
    assert b.cpu._enter.__func__ is type(b.cpu)._enter_native
    s = {"gpr": list(range(0x100, 0x10D)), "lr": 0x0800_0201, "pc": 0x0800_0300, "apsr": 0,
         "ipsr": 0, "msp": DTCM + 0x404, "psp": DTCM + 0x600, "control": 4, "primask": 0,
         "basepri": 0, "faultmask": 0, "fp": [0x3F80_0000 + i for i in range(16)], "fpscr": 0x0300_0000,
         "prio": [0] * len(EXCS), "prigroup_mask": 0xF0, "enabled": 1 << 16, "vtor_bad": False,
         "mpu_guard": False}
    setup(b, s)
    b.cpu._enter(16)
    uc = b.cpu.uc
    sp = uc.reg_read(A.UC_ARM_REG_MSP)
    assert sp == (DTCM + 0x404 - 0x68) & ~7                       # aligned: 4 bytes of padding
    words = [int.from_bytes(uc.mem_read(sp + 4 * i, 4), "little") for i in range(26)]
    assert words[:7] == [0x100, 0x101, 0x102, 0x103, 0x10C, 0x0800_0201, 0x0800_0300]
    assert words[7] & 0x200 and words[7] & 0x1FF == 0             # realigned, from thread mode
    assert words[8:24] == s["fp"] and words[24] == 0x0300_0000
    assert uc.reg_read(A.UC_ARM_REG_LR) == 0xFFFFFFE9             # FP frame, MSP, thread
    assert uc.reg_read(A.UC_ARM_REG_PC) == 0x0800_1000 + 0x40 * 16
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 16
    uc.reg_write(A.UC_ARM_REG_PC, 0xFFFFFFE8)
    b.cpu.registers_changed()
    b.cpu._exc_return()
    assert uc.reg_read(A.UC_ARM_REG_MSP) == DTCM + 0x404
    assert uc.reg_read(A.UC_ARM_REG_PC) == 0x0800_0300
    assert uc.reg_read(A.UC_ARM_REG_XPSR) & 0x1FF == 0
    assert uc.reg_read(A.UC_ARM_REG_CONTROL) & 4
    assert b.nvic.active == 0


def test_the_bench_takes_and_returns_every_interrupt_under_both_switches() -> None:
    """`make bench`'s M7 interrupt figures come from loops that really enter and return (the bench
    raises when an interrupt was not taken or not returned from, e.g. a storm stop)."""
    from duohil.bench import Report, bench_exceptions
    rep = Report()
    costs = bench_exceptions(rep, k=100)
    assert set(costs) == {"python", "native", "python_hooked", "native_hooked"}



def _returning_board():
    """A native M7 inside IRQ0's handler, about to run its ``bx lr`` (EXC_RETURN 0xFFFFFFF9)."""
    b = board("native")
    b.machine.write_memory(VTOR + 4 * 16, (0x0800_0401).to_bytes(4, "little"))
    b.machine.write_memory(0x0800_0300, b"\xfe\xe7")          # thread: b .
    b.machine.write_memory(0x0800_0400, b"\x70\x47")          # handler: bx lr
    uc = b.cpu.uc
    uc.reg_write(A.UC_ARM_REG_MSP, DTCM + 0x400)
    uc.reg_write(A.UC_ARM_REG_PC, 0x0800_0301)
    b.cpu.registers_changed()
    b.nvic.enabled |= 1 << 16
    b.nvic.set_pending(16)
    assert b.cpu.take_interrupts()
    return b


def test_the_c_intr_hook_returns_and_passes_hook_exceptions_on() -> None:
    """The exception return runs from the C UC_HOOK_INTR hook; an exception raised under it ends
    emu_start and is re-raised by the caller, as with the binding's own hook wrapper."""
    b = _returning_board()
    b.cpu._emu_start(0x0800_0401, 1)
    assert b.cpu.uc.reg_read(A.UC_ARM_REG_PC) == 0x0800_0300 and b.nvic.active == 0
    b.nvic.set_pending(16)
    assert b.cpu.take_interrupts()

    assert b.cpu._emu_start(0x0800_0401, 1) is None and b.cpu._returned_to == 0x0800_0300

    # the plain return is decided in C: Python's rest of the return is not called; a return that
    # tail-chains is handed to it, and an exception it raises ends emu_start and is re-raised
    calls = []

    def broken(*args: int) -> None:
        calls.append(args)
        raise ZeroDivisionError("from the return hook")
    b.cpu._exc_return_rest = broken
    b.cpu.attach_nvic(b.nvic)
    b.nvic.set_pending(16)
    assert b.cpu.take_interrupts()
    b.cpu._emu_start(0x0800_0401, 1)
    assert calls == [] and b.nvic.active == 0
    b.nvic.set_pending(16)
    assert b.cpu.take_interrupts()
    b.nvic.enabled |= 1 << 17
    b.nvic.set_pending(17)                          # pending at return: a tail-chain
    with pytest.raises(ZeroDivisionError, match="from the return hook"):
        b.cpu._emu_start(0x0800_0401, 1)
    assert len(calls) == 1 and calls[0][-1] == 16


def test_dropped_cores_are_collected_and_new_ones_work() -> None:
    """The C hook holds the core's bound methods (a cycle through the CPU object): the collector
    must still free dropped machines (a campaign worker builds hundreds), closing their engines
    around the hook without touching freed memory."""
    import gc
    import weakref
    cores, engines = [], []
    for _ in range(20):
        b = _returning_board()
        b.cpu._emu_start(0x0800_0401, 1)
        cores.append(weakref.ref(b.cpu))
        engines.append(weakref.ref(b.cpu.uc))
        del b
    gc.collect()
    assert not any(c() for c in cores) and not any(e() for e in engines), "dropped cores leaked"
    b = _returning_board()
    b.cpu._emu_start(0x0800_0401, 1)
    assert b.cpu.uc.reg_read(A.UC_ARM_REG_PC) == 0x0800_0300


# -- the NVIC's exception state in C (native/nvic.c) against nvic.py's Nvic ----------------------------
# Register-level sequences through the SCS (ISER/ICER/ISPR/ICPR, IPR/SHPR, AIRCR.PRIGROUP, ICSR,
# SHCSR, STIR), IRQ input lines, entries and returns as the core makes them, and the masks the
# execution priority is asked for; after every step both models read the same registers, pick the
# same exception with the same group priority and hold the same state.
NV_EXC = st.sampled_from((2, 3, 4, 5, 6, 11, 12, 14, 15, 16, 17, 18, 47, 48, 80, 165))
NV_IRQ = st.sampled_from((0, 1, 2, 31, 32, 64, 149))
NV_OP = st.one_of(
    st.tuples(st.just("write"), st.sampled_from((0x100, 0x104, 0x180, 0x184, 0x200, 0x204, 0x280,
                                                 0x284, 0x108, 0x110, 0x210, 0x290)), u32),
    st.tuples(st.just("ipr"), st.integers(0, 37), u32),
    st.tuples(st.just("write"), st.sampled_from((0xD18, 0xD1C, 0xD20, 0xD24)), u32),
    st.tuples(st.just("write"), st.just(0xD0C), st.integers(0, 7).map(lambda g: 0x05FA_0000 | g << 8)),
    st.tuples(st.just("write"), st.just(0xD04), st.sampled_from((1 << 28, 1 << 27, 1 << 26, 1 << 25,
                                                                  1 << 31))),
    st.tuples(st.just("write"), st.just(0xF00), st.integers(0, 160)),
    st.tuples(st.just("line"), NV_IRQ, st.booleans()),
    st.tuples(st.just("pend"), NV_EXC),
    st.tuples(st.just("unpend"), NV_EXC),
    st.tuples(st.just("take"),),
    st.tuples(st.just("activate"), NV_EXC),
    st.tuples(st.just("deactivate"), NV_EXC),
    st.tuples(st.just("return"),),
    st.tuples(st.just("reset"),),
)
NV_READS = (0x100, 0x104, 0x114, 0x200, 0x204, 0x214, 0x300, 0x304, 0x314, 0x400, 0x404, 0x420,
            0xD04, 0xD0C, 0xD18, 0xD1C, 0xD20, 0xD24)
MASKS = [(pm, bp, fm) for pm in (0, 1) for bp in (0, 0x10, 0x40, 0x80, 0xF0) for fm in (0, 1)]


def nvic_apply(nv, op) -> None:
    kind = op[0]
    if kind == "write":
        nv.write(op[1], 4, op[2])
    elif kind == "ipr":
        nv.write(0x400 + 4 * op[1], 4, op[2])
    elif kind == "line":
        nv.set_input(op[1], op[2])
    elif kind == "pend":
        nv.set_pending(op[1])
    elif kind == "unpend":
        nv.clear_pending(op[1])
    elif kind == "take":
        n, _g = nv.best_pending()
        if n:
            nv.activate(n)
    elif kind == "activate":
        nv.activate(op[1])
    elif kind == "deactivate":
        nv.deactivate(op[1])
    elif kind == "return" and nv.stack:
        nv.deactivate(nv.stack[-1])
    elif kind == "reset":
        nv.reset()


def nvic_state(nv) -> dict:
    return {
        "bits": (nv.pending, nv.enabled, nv.active, nv.level, list(nv.stack), nv.exceptions_taken,
                 nv.group_mask, nv.any_pending()),
        "prio": [nv.prio[n] for n in range(nv.n_exc)],
        "best": nv.best_pending(),
        "exec": [nv.execution_priority(*m) for m in MASKS],
        "regs": [nv.read(off, 4) for off in NV_READS],
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(NV_OP, min_size=1, max_size=40))
def test_nvic_state_in_c_equals_the_python_reference(ops) -> None:
    py, nat = board("python").nvic, board("native").nvic
    assert type(nat).__name__ == "NvicNative" and type(py).__name__ == "Nvic"
    assert nvic_state(py) == nvic_state(nat)
    for i, op in enumerate(ops):
        for nv in (py, nat):
            nvic_apply(nv, op)
        a, c = nvic_state(py), nvic_state(nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def test_nvic_picks_by_priority_then_number_and_groups_with_prigroup() -> None:
    """Hand-checked cases of the C selection: lowest priority byte wins, a tie goes to the lowest
    exception number, and execution priority compares group priorities only."""
    nv = board("native").nvic
    nv.enabled |= (1 << 16) | (1 << 17) | (1 << 80)
    nv.prio[16], nv.prio[17], nv.prio[80] = 0x50, 0x40, 0x40
    for n in (80, 17, 16):
        nv.set_pending(n)
    assert nv.best_pending() == (17, 0x40)          # 0x40 beats 0x50; 17 beats 80 on the tie
    nv.write(0xD0C, 4, 0x05FA_0000 | 5 << 8)         # PRIGROUP 5: group = bits [7:6]
    assert nv.best_pending() == (17, 0x40)
    nv.activate(17)
    assert nv.active == 1 << 17 and nv.stack == [17] and not nv.pending >> 17 & 1
    assert nv.execution_priority(0, 0, 0) == 0x40
    n, g = nv.best_pending()
    assert (n, g) == (80, 0x40) and not g < nv.execution_priority(0, 0, 0)   # same group: no preemption
    assert nv.execution_priority(1, 0, 0) == 0 and nv.execution_priority(0, 0, 1) == -1
    assert nv.deactivate(17) and not nv.deactivate(17) and nv.stack == []


def test_nvic_reset_keeps_high_lines_pending() -> None:
    """A system reset clears the exception state, but an IRQ line that is still high pends again at
    once (the input levels are the peripherals', not the NVIC's reset state)."""
    for models in ("python", "native"):
        nv = board(models).nvic
        nv.set_input(37, True)
        nv.activate(16 + 37)
        nv.reset()
        assert nv.pending == 1 << (16 + 37) and nv.active == 0 and list(nv.stack) == [], models
