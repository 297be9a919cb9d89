"""Cortex-M7 exception entry, tail-chain and return (native/cortexm.c, _core.c's CortexM, the
decisions in cortexm.py) and the NVIC's exception state (native/nvic.c, nvic.py's Nvic).

One implementation each; these tests state what it must do, from the ARMv7-M ARM. A hand-built M7
(tests/builtin_helpers.build_m7) gets a synthetic register state (thread or handler mode, MSP or
PSP, privileged or not, FP context active or not, masks, a stack that may run off the bottom of
the DTCM, an MPU no-access guard, an unreadable vector table) and NVIC state; Hypothesis then drives
it with exception entries, pends + takes, handler register changes and returns (good and bad
EXC_RETURN values, direct and through the handler's own ``bx lr`` and the C hook). Every entry is
checked against the frame the architecture stacks (8 words, or 26 with S0-S15/FPSCR, at
(SP - size) & ~7, the realignment bit in the stacked xPSR), the EXC_RETURN, the vector, IPSR and
the NVIC; every return against the registers the frame restores, a tail-chain (frame kept, same
EXC_RETURN) or the fault it must raise (INVPC, IACCVIOL, UNSTKERR), with escalation to HardFault
(HFSR.FORCED) and lockup (STKERR/MSTKERR/VECTTBL at priority < 0); and the event log entries.
"""
from __future__ import annotations


import pytest
from builtin_helpers import build_m7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UcError
from unicorn import arm_const as A

from duohil.engines.builtin.cpus.m7.cortexm import EXC_RETURN_OK
from duohil.engines.builtin.kernel.limits import STORM_ENTRIES, STORM_RATE_ENTRIES
from duohil.engines.builtin.cpus.m7.nvic import (BUSFAULT, HARDFAULT, HFSR_FORCED, HFSR_VECTTBL, IACCVIOL,
                                         INVPC, MEMMANAGE, MSTKERR, NMI, PENDSV, STKERR, SVCALL,
                                         SYSTICK, UNSTKERR, USAGEFAULT)

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
    "nonbasethrdena": st.sampled_from((False, False, True)),
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


def board():
    b = build_m7()
    assert b.cpu.take_interrupts == b.cpu._cm.take        # the C take, attached with the NVIC
    return b


def setup(b, s) -> None:
    uc, nv = b.cpu.uc, b.nvic
    table = b"".join((0x0800_1001 + 0x40 * i).to_bytes(4, "little") for i in range(64))
    b.machine.write_memory(VTOR, table)
    b.machine.write_memory(BX_LR, b"\x70\x47")
    nv.vtor = 0x9000_0000 if s["vtor_bad"] else VTOR
    if s.get("nonbasethrdena"):                          # CCR.NONBASETHRDENA
        b.machine.bus_write(0xE000_ED14, 4, nv.regs.CCR.value | 1)
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


# -- what the architecture says an entry and a return do ---------------------------------------------

GPRS = [A.UC_ARM_REG_R0 + i for i in range(13)]
FPREGS = [A.UC_ARM_REG_S0 + i for i in range(16)]


def snap(b) -> dict:
    uc = b.cpu.uc
    r = {name: uc.reg_read(getattr(A, f"UC_ARM_REG_{name.upper()}"))
         for name in ("sp", "msp", "psp", "lr", "pc", "xpsr", "control", "primask", "basepri",
                      "faultmask", "fpscr")}
    # the masks as the core holds them (unicorn's own read gives 0 to an unprivileged thread;
    # masks set before CONTROL.nPRIV still mask: test_m7_unprivileged_masks.py)
    r["primask"], r["basepri"], r["faultmask"] = b.cpu._read_masks()
    r["gpr"] = [uc.reg_read(g) for g in GPRS]
    r["fp"] = [uc.reg_read(f) for f in FPREGS]
    r["active"] = b.nvic.active
    if not r["xpsr"] & 0x1FF and r["control"] & 1:
        # an unprivileged thread reads MSP/PSP as 0 (MRS is privileged): only the current SP is known
        on_psp = r["control"] & 2
        r["msp"], r["psp"] = (None, r["sp"]) if on_psp else (r["sp"], None)
    return r


def words(b, addr: int, n: int) -> list[int]:
    data = bytes(b.cpu.uc.mem_read(addr, 4 * n))
    return [int.from_bytes(data[4 * i:4 * i + 4], "little") for i in range(n)]


def exec_prio(b, r: dict) -> int:
    """The execution priority in the state ``r`` (its registers and active exceptions)."""
    return spec_exec_prio(b, r["active"], r["primask"], r["basepri"], r["faultmask"])


def fault_target(b, r: dict, kind: int, hfsr: int) -> tuple[int | None, int]:
    """(the exception a synchronous fault of ``kind`` is taken as, or None: lockup; HFSR)."""
    nv = b.nvic
    ep = exec_prio(b, r)
    if kind != HARDFAULT and (not nv.fault_enabled(kind) or nv.group(nv.prio[kind]) >= ep):
        kind, hfsr = HARDFAULT, hfsr | HFSR_FORCED
    return (None if kind == HARDFAULT and ep <= -1 else kind), hfsr


def vector(b, exc: int) -> int | None:
    try:
        return words(b, b.nvic.vtor + 4 * exc, 1)[0]
    except UcError:
        return None


def check_entry(b, r: dict, exc: int, pc: int, cfsr: int, hfsr: int, log0: int,
                stacking_fault: int | None = None) -> None:
    """After an entry into ``exc`` from the registers ``r`` (stacking ``pc``): the frame, the
    registers, the NVIC, CFSR/HFSR, a lockup or the derived stacking fault, the event log."""
    cpu, nv = b.cpu, b.nvic
    handler = r["xpsr"] & 0x1FF
    fp = r["control"] & 4
    size = 0x68 if fp else 0x20
    frame_sp = (r["sp"] - size) & ~7
    ep = exec_prio(b, r)
    bypass = not nv.mpu.ctrl & 2 and ep < 0
    kind = 0
    if nv.mpu.enabled and not bypass and frame_sp < DTCM + 0x100 and frame_sp + size > DTCM:
        kind, cfsr = MEMMANAGE, cfsr | MSTKERR
    elif frame_sp < DTCM:                        # below the DTCM: nothing is mapped
        kind, cfsr = BUSFAULT, cfsr | STKERR
    target = exc
    if kind:
        target, hfsr = fault_target(b, r, kind, hfsr)
        log = b.scheduler.log[log0:]
        assert log and log[0][1] == "cpu_fault" and log[0][2]["stacking"] is True
        assert log[0][2]["exception"] == kind and log[0][2]["cfsr"] == cfsr
    assert nv.cfsr == cfsr
    now = snap(b)
    if target is None:
        assert cpu.halted and cpu.lockup["reason"] == "stacking fault" and nv.hfsr == hfsr
        assert (now["msp"], now["psp"], now["pc"]) == (r["msp"], r["psp"], r["pc"])
        return
    vec = vector(b, target)
    if vec is None:
        assert cpu.halted and cpu.lockup["reason"] == "vector table read"
        assert nv.hfsr == hfsr | HFSR_VECTTBL
        assert (now["msp"], now["psp"], now["pc"]) == (r["msp"], r["psp"], r["pc"])
        return
    assert not cpu.halted and nv.hfsr == hfsr
    # the frame, on the stack in use before the entry (PSP: thread mode with SPSEL)
    on_psp = not handler and r["control"] & 2
    moved, kept = ("psp", "msp") if on_psp else ("msp", "psp")
    assert now[moved] == frame_sp and r[kept] in (None, now[kept])
    if not kind:
        stacked_xpsr = (r["xpsr"] & ~0x200) | (0x200 if (r["sp"] - size) & 4 else 0)
        want = r["gpr"][:4] + [r["gpr"][12], r["lr"], pc & ~1, stacked_xpsr]
        if fp:
            want += r["fp"] + [r["fpscr"], 0]
            assert nv.regs.FPCAR.value == frame_sp + 0x20
        assert words(b, frame_sp, len(want)) == want
    exc_return = 0xFFFFFFF1 if handler else (0xFFFFFFFD if r["control"] & 2 else 0xFFFFFFF9)
    if fp:
        exc_return &= ~0x10
    assert now["lr"] == exc_return and now["pc"] == vec & ~1 and cpu._pc == vec & ~1
    assert now["xpsr"] & 0x1FF == target and now["xpsr"] & (1 << 24)
    assert not now["control"] & (4 | 8)                   # FPCA, SFPA: a fresh FP context
    assert now["control"] & 1 == r["control"] & 1         # nPRIV kept (privileged by IPSR)
    assert now["gpr"] == r["gpr"] and now["sp"] == now["msp"]        # handler mode: MSP
    assert nv.stack[-1] == target and nv.active >> target & 1 and not nv.pending >> target & 1
    assert cpu._returned_to is None and cpu._ret_state is None


def raise_fault(b, r: dict, kind: int, bits: int, pc: int, cfsr: int, hfsr: int, log0: int) -> None:
    """After a synchronous fault of ``kind`` (CFSR ``bits``) at ``pc``: logged, then taken as
    itself, as HardFault (HFSR.FORCED) or a lockup."""
    cfsr |= bits
    target, hfsr2 = fault_target(b, r, kind, hfsr)
    log = b.scheduler.log[log0:]
    assert log[0][1] == "cpu_fault" and log[0][2]["exception"] == kind
    assert log[0][2]["taken_as"] == (target or 0) and log[0][2]["cfsr"] == cfsr
    if target is None:
        assert b.cpu.halted and b.cpu.lockup["reason"].startswith(f"fault {kind}")
        assert b.nvic.hfsr == hfsr2 and b.nvic.cfsr == cfsr
        return
    check_entry(b, r, target, pc, cfsr, hfsr2, log0 + 1)


def spec_exec_prio(b, active: int, primask: int, basepri: int, faultmask: int) -> int:
    """ARMv7-M ExecutionPriority(): the lowest group priority of the active exceptions, BASEPRI's
    group priority if lower, 0 with PRIMASK, -1 with FAULTMASK (256: nothing active or masked)."""
    nv = b.nvic
    prio = min([nv.group(nv.prio[e]) for e in range(nv.n_exc) if active >> e & 1] + [256])
    bp = basepri & nv.prio_mask & nv.group_mask
    if bp and bp < prio:
        prio = bp
    if primask & 1 and prio > 0:
        prio = 0
    if faultmask & 1 and prio > -1:
        prio = -1
    return prio


def spec_best(b, pending: int) -> tuple[int, int]:
    """The pending enabled exception taken next: lowest priority byte, then lowest number."""
    nv = b.nvic
    cands = [(nv.prio[e], e) for e in range(nv.n_exc) if (pending & nv.enabled) >> e & 1]
    if not cands:
        return 0, 256
    p, e = min(cands)
    return e, nv.group(p)


def unstacked(stack: list[int], cur: int) -> list[int]:
    """The active stack once ``cur`` returned: the innermost entry, else its first one."""
    out = list(stack)
    if out and out[-1] == cur:
        out.pop()
    elif cur in out:
        out.remove(cur)
    return out


def check_invpc(b, r: dict, exc_ret: int, before: dict, log0: int, active: int, fm: int,
                ran_on: bool) -> None:
    """After an exception return an integrity check refused (ARMv7-M ARM B1.5.8
    ExceptionReturn()): the returning exception deactivated, FAULTMASK cleared (but for NMI),
    UFSR.INVPC, and the UsageFault -- or HardFault (HFSR.FORCED) when it is disabled or cannot
    preempt what is left active, or a lockup at priority < 0 -- entered on the frame already on the
    stack (nothing pushed, nothing popped) with LR = EXC_RETURN, as a tail-chain."""
    cpu, nv = b.cpu, b.nvic
    pc = exc_ret & ~1
    cfsr = before["cfsr"] | INVPC
    ep = spec_exec_prio(b, active, r["primask"], r["basepri"], fm)
    target, hfsr = USAGEFAULT, before["hfsr"]
    if not nv.fault_enabled(USAGEFAULT) or nv.group(nv.prio[USAGEFAULT]) >= ep:
        target, hfsr = HARDFAULT, hfsr | HFSR_FORCED
    if ep <= -1 and target == HARDFAULT:
        target = None
    log = b.scheduler.log[log0:]
    assert log[0][1] == "cpu_fault" and log[0][2]["exception"] == USAGEFAULT
    assert log[0][2]["taken_as"] == (target or 0) and log[0][2]["cfsr"] == cfsr
    assert log[0][2]["pc"] == pc
    assert nv.cfsr & INVPC and nv.cfsr == cfsr
    now = snap(b)
    if target is None:
        assert cpu.halted and cpu.lockup["reason"] == f"fault {USAGEFAULT} at execution priority < 0"
        assert nv.hfsr == hfsr and nv.active == active
        return
    vec = vector(b, target)
    if vec is None:
        assert cpu.halted and cpu.lockup["reason"] == "vector table read"
        return
    cur = r["xpsr"] & 0x1FF
    # (an exception that was not active leaves the active stack as it was)
    exp = (unstacked(before["stack"], cur) if before["active"] >> cur & 1 else before["stack"]) + [target]
    if not ran_on:                               # (the handler's first instruction may run)
        assert nv.hfsr == hfsr and nv.active == active | 1 << target and nv.stack == exp
    else:
        assert nv.stack[:len(exp)] == exp
    slack = (0, 2) if ran_on else (0,)
    assert now["lr"] == exc_ret and now["pc"] - (vec & ~1) in slack and now["xpsr"] & 0x1FF == target
    assert (now["msp"], now["psp"]) == (r["msp"], r["psp"]) and now["gpr"][1:] == r["gpr"][1:]
    assert now["faultmask"] == fm and now["control"] & 3 == r["control"] & 3
    assert cpu._returned_to is None and cpu._ret_state is None


def check_return(b, r: dict, exc_ret: int, before: dict, log0: int, ran_on: bool = False) -> None:
    """After an exception return with ``exc_ret`` from the registers ``r`` and the NVIC state
    ``before`` it. ``ran_on``: the return came from the handler's ``bx lr`` run by unicorn, which
    may execute one more instruction where it returned to (zeroed memory: ``movs r0, r0``, which
    sets N and Z; elsewhere a fault taken there)."""
    cpu, nv = b.cpu, b.nvic
    cur = r["xpsr"] & 0x1FF
    pc = exc_ret & ~1
    cfsr, hfsr = before["cfsr"], before["hfsr"]
    if not cur:                                  # thread mode: a fetch from the XN system region
        raise_fault(b, r, MEMMANAGE, IACCVIOL, pc, cfsr, hfsr, log0)
        return
    fm = 0 if cur != NMI else r["faultmask"]
    # deactivated; a level-sensitive line still high pends again
    active = before["active"] & ~(1 << cur)
    if exc_ret not in EXC_RETURN_OK or not before["active"] >> cur & 1 \
            or exc_ret & 8 and active and not before["nonbasethrdena"]:
        # the integrity checks before the pop (NestedActivation: NONBASETHRDENA allows it)
        check_invpc(b, r, exc_ret, before, log0, active, fm, ran_on)
        return
    now = snap(b)
    pending = before["pending"] | (1 << cur if before["level"] >> cur & 1 else 0)
    n, g = spec_best(b, pending)
    tail = n and g < spec_exec_prio(b, active, r["primask"], r["basepri"], fm)
    use_psp, to_thread, fp = exc_ret & 4, exc_ret & 8, not exc_ret & 0x10
    size = 0x68 if fp else 0x20
    sp = r["psp"] if use_psp else r["msp"]
    try:
        f = words(b, sp, size // 4)
    except UcError:
        f = None
    if not tail and f is not None and (f[7] & 0x1FF == 0) != bool(to_thread):
        # the integrity check after the pop: the stacked IPSR must be 0 in thread mode, not 0 in
        # handler mode (a return to handler with nothing else active always fails it)
        check_invpc(b, r, exc_ret, before, log0, active, fm, ran_on)
        return
    went = (vector(b, n) or 0) & ~1 if tail else (f[6] & ~1 if f else None)
    log = b.scheduler.log[log0:]
    if ran_on and log and not tail and f is not None:
        # it returned, then faulted on the instruction it returned to
        assert log[0][1] == "cpu_fault" and log[0][2]["pc"] in (went, went + 2), (log, went)
        return
    slack = (0, 2) if ran_on else (0,)
    if not (ran_on and log):
        assert now["faultmask"] == fm
    if tail:
        # tail-chain: the frame stays, the new handler gets the same EXC_RETURN
        vec = vector(b, n)
        if vec is None:
            assert cpu.halted and cpu.lockup["reason"] == "vector table read"
            return
        assert nv.stack == unstacked(before["stack"], cur) + [n] and nv.active == active | 1 << n
        assert now["lr"] == exc_ret and now["pc"] - (vec & ~1) in slack and now["xpsr"] & 0x1FF == n
        assert (now["msp"], now["psp"]) == (r["msp"], r["psp"]) and now["gpr"][1:] == r["gpr"][1:]
        return
    exp = unstacked(before["stack"], cur)
    if ran_on and (nv.stack != exp or nv.active != active):
        # the core ran on after the return and entered an exception there (one pending, or what
        # the instruction it returned to raised, e.g. an SVC): the return's own stack is underneath
        assert nv.stack[:len(exp)] == exp
        return
    if f is None:                                # UNSTKERR: a BusFault at the return, taken
        assert nv.cfsr & UNSTKERR                # (or escalated) on top of what was left active
        assert log[0][1] == "cpu_fault" and log[0][2]["exception"] == BUSFAULT
        assert nv.stack[:len(exp)] == exp
        return
    assert nv.active == active and nv.stack == exp
    new_sp = sp + size + (4 if f[7] & 0x200 else 0)
    assert now["gpr"][:4] == f[:4] and now["gpr"][12] == f[4] and now["lr"] == f[5]
    assert now["pc"] - (f[6] & ~1) in slack and cpu._returned_to == f[6] & ~1
    want_ipsr = 0 if to_thread else f[7] & 0x1FF
    flags = 0x3 if ran_on else 0x1F             # APSR N Z C V Q; movs r0, r0 may set N and Z
    assert now["xpsr"] & 0x1FF == want_ipsr and (now["xpsr"] >> 27) & flags == (f[7] >> 27) & flags
    assert now["sp"] == new_sp                   # the stack returned to is the current one
    assert bool(now["control"] & 4) == bool(fp)
    if to_thread:
        assert bool(now["control"] & 2) == bool(use_psp)
    if fp:
        # FPSCR keeps its writable bits (NZCV QC AHP DN FZ RMode, the cumulative flags): a frame
        # that was not stacked by an FP entry may hold anything there
        assert now["fp"] == f[8:24] and now["fpscr"] == f[24] & 0xF7C0009F
    assert cpu._ret_state[:7] == (f[0], f[1], f[2], f[3], f[4], f[5], new_sp)
    assert cpu._ret_state[7] & flags == (f[7] >> 27) & flags


def apply(b, op) -> None:
    cpu, nv, uc = b.cpu, b.nvic, b.cpu.uc
    if cpu.halted:
        return
    kind = op[0]
    r = snap(b)
    before = {"cfsr": nv.cfsr, "hfsr": nv.hfsr, "active": nv.active, "pending": nv.pending,
              "nonbasethrdena": nv.regs.CCR.value & 1,
              "level": nv.level, "stack": list(nv.stack), "taken": nv.exceptions_taken,
              "rate_n": cpu._rate_n, "entries": cpu._entries}
    log0 = len(b.scheduler.log)
    stack, taken = before["stack"], before["taken"]
    if kind == "enter":
        pc = None if op[2] is None else 2 * op[2]
        cpu._enter(op[1], pc=pc)
        check_entry(b, r, op[1], r["pc"] if pc is None else pc, before["cfsr"], before["hfsr"],
                    log0)
        # the storm counters of every entry: the rate count, and entries since thread mode last
        # ran (from thread mode: reset, with the thread's pc and time noted for starvation)
        assert cpu._rate_n == before["rate_n"] + 1
        if r["xpsr"] & 0x1FF:
            assert cpu._entries == before["entries"] + 1
        else:
            want_pc = r["pc"] if pc is None else pc
            assert (cpu._entries, cpu._thread_pc, cpu._thread_ps) == (0, want_pc, b.machine.now())
    elif kind == "pend_take":
        nv.set_pending(op[1])
        n, g = nv.best_pending()
        preempts = n and g < exec_prio(b, r)
        took = cpu.take_interrupts()
        assert took == bool(preempts)
        if not preempts:
            assert snap(b) == r and nv.stack == stack
        elif len(nv.stack) == len(stack) + (not cpu.halted):
            # one entry, the C take's (plain: FP frame, MPU on) or the Python one's: the frame, or
            # the stacking fault it derives (MSTKERR from the guard, STKERR below the DTCM), or
            # the lockup that fault escalates to
            check_entry(b, r, n, r["pc"], before["cfsr"], before["hfsr"], log0)
        elif not cpu.halted and not any(e[1] == "cpu_fault" for e in b.scheduler.log[log0:]):
            # (CFSR bits are sticky: a stacking fault during this entry may set a bit an earlier op
            # already set, so the event log says whether one happened, not a change of CFSR)
            # entered, possibly nested (each entry raises the execution priority): the innermost
            # runs, nothing pending can preempt it any more
            assert len(nv.stack) > len(stack) and nv.stack[len(stack)] == n
            assert nv.exceptions_taken - taken == len(nv.stack) - len(stack)
            top = nv.stack[-1]
            assert cpu.uc.reg_read(A.UC_ARM_REG_PC) == vector(b, top) & ~1
            m, g2 = nv.best_pending()
            assert not m or g2 >= exec_prio(b, snap(b))
    elif kind == "pend":
        nv.set_pending(op[1])
        assert nv.pending >> op[1] & 1
    elif kind == "work":                 # the handler ran: changed r0-r3, maybe used the FPU
        for i, v in enumerate(op[1]):
            uc.reg_write(A.UC_ARM_REG_R0 + i, v)
        if op[2]:
            ctl = uc.reg_read(A.UC_ARM_REG_CONTROL)
            uc.reg_write(A.UC_ARM_REG_CONTROL, ctl | 4)
        cpu.registers_changed()
    elif kind in ("return", "return_to"):   # what the intno-8 hook sees: PC = EXC_RETURN & ~1
        target = r["lr"] if kind == "return" else op[1]
        uc.reg_write(A.UC_ARM_REG_PC, target & ~1)
        cpu.registers_changed()
        r = snap(b)
        cpu._exc_return()
        check_return(b, r, target | 1, before, log0)
    elif kind == "bx_lr" and nv.active >> (r["xpsr"] & 0x1FF) & 1:
        # in the handler of an active exception, returning with a valid EXC_RETURN (what QEMU
        # itself refuses, it faults on without the hook: the direct "return" ops cover those)
        if op[1] is not None:
            uc.reg_write(A.UC_ARM_REG_LR, op[1])
        lr = uc.reg_read(A.UC_ARM_REG_LR)
        if lr in EXC_RETURN_OK:
            cpu.registers_changed()
            r = snap(b)
            # as a slice runs it (executing: a lockup inside the hook stops emu_start; without
            # it a fetch fault at priority < 0 re-faults forever at the same PC)
            cpu.executing = True
            try:
                cpu._emu_start(BX_LR | 1, 1)
            except UcError:                  # e.g. returned to an unmapped PC
                return
            finally:
                cpu.executing = False
            check_return(b, r, lr, before, log0, ran_on=True)
    cpu.registers_changed()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=STATE, ops=st.lists(OP, min_size=1, max_size=12))
def test_entries_and_returns_do_what_the_architecture_says(s, ops) -> None:
    b = board()
    setup(b, s)
    for op in ops:
        apply(b, op)
        nv = b.nvic                              # every active exception is on the active stack
        assert {e for e in range(nv.n_exc) if nv.active >> e & 1} <= set(nv.stack)
        # the WFI wake rule (the C CortexM.interrupt_pending the scheduler asks around slices):
        # something pending and enabled that would preempt with PRIMASK clear, BASEPRI counted
        r = snap(b)
        n, g = spec_best(b, nv.pending)
        assert b.cpu.interrupt_pending() == (bool(n) and g < spec_exec_prio(b, r["active"], 0,
                                                                              r["basepri"], 0))


@pytest.mark.parametrize("fp", [False, True], ids=["basic", "fp"])
@pytest.mark.parametrize("msp", [DTCM + 0x404, DTCM + 0x40], ids=["clear", "guarded"])
def test_take_under_the_mpu_stacks_in_c_or_derives_mstkerr(fp: bool, msp: int) -> None:
    """The C take (``CortexM.take``) enters an IRQ itself with an FP frame and the MPU on, and
    hands the entry to the Python decisions only when the frame would touch a range without
    write access (the guard over the DTCM's lowest 256 bytes): then MSTKERR and a MemManage."""
    b = board()
    s = {"gpr": list(range(0x200, 0x20D)), "lr": 0x0800_0201, "pc": 0x0800_0300, "apsr": 0,
         "ipsr": 0, "msp": msp, "psp": DTCM + 0x600, "control": 4 if fp else 0, "primask": 0,
         "basepri": 0, "faultmask": 0, "fp": [0x4000_0000 + i for i in range(16)], "fpscr": 0,
         "prio": [0x80] * len(EXCS), "prigroup_mask": 0xF0, "enabled": 1 << 16 | 0x70,
         "vtor_bad": False, "mpu_guard": True}
    setup(b, s)
    cpu, nv = b.cpu, b.nvic
    python_entries = []
    enter = cpu._enter
    cpu._enter = lambda exc, pc=None: (python_entries.append(exc), enter(exc, pc))[1]
    # the C take holds the bound method given to fast_entry: hand it the spy
    cpu._cm.fast_entry(nv, cpu._enter, cpu._enter_after, STORM_ENTRIES, STORM_RATE_ENTRIES,
                       nv.regs.FPCAR)
    r = snap(b)
    log0 = len(b.scheduler.log)
    nv.set_pending(16)
    assert cpu.take_interrupts()
    check_entry(b, r, 16, r["pc"], 0, 0, log0)
    guarded = msp < DTCM + 0x100 + 0x68
    assert python_entries == ([16] if guarded else [])
    assert bool(nv.cfsr & MSTKERR) == guarded and nv.stack == ([MEMMANAGE] if guarded else [16])


def test_a_frame_is_stacked_and_unstacked_by_c() -> None:
    """The native path is the one under test (not the Python methods by another name): a basic and
    an FP-extended frame land in memory where the architecture puts them, and come back."""
    b = board()
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


def test_the_bench_takes_and_returns_every_interrupt() -> None:
    """`make bench`'s M7 interrupt figures come from loops that really enter and return (the bench
    raises when an interrupt was not taken or not returned from, e.g. a storm stop)."""
    from duohil.bench import Report, bench_exceptions
    rep = Report()
    costs = bench_exceptions(rep, k=100)
    assert set(costs) == {"native"}                 # the difference of two timings: any sign



def _returning_board():
    """A native M7 inside IRQ0's handler, about to run its ``bx lr`` (EXC_RETURN 0xFFFFFFF9)."""
    b = board()
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


# -- the NVIC's exception state (native/nvic.c) through nvic.py's SCS registers -------------------------
# Register-level sequences through the SCS (ISER/ICER/ISPR/ICPR, IPR/SHPR, AIRCR.PRIGROUP, ICSR,
# SHCSR, STIR), IRQ input lines, entries and returns as the core makes them, resets; after every
# step the state is what the operation must make of the state before it (ARMv7-M ARM), the
# selection and the execution priority are the architecture's (lowest priority byte, then lowest
# number; group priorities under PRIGROUP; masks), and the registers read back that state.
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


IRQ0 = 16
ALWAYS = (1 << NMI) | (1 << HARDFAULT) | (1 << SVCALL) | (1 << 12) | (1 << PENDSV) | (1 << SYSTICK)


def nv_model(nv) -> dict:
    return {"pending": nv.pending, "enabled": nv.enabled, "active": nv.active, "level": nv.level,
            "stack": list(nv.stack), "taken": nv.exceptions_taken, "gm": nv.group_mask,
            "prio": [nv.prio[n] for n in range(nv.n_exc)]}


def nv_expect(nv, m: dict, op) -> dict:
    """The state ``op`` must leave, from the state ``m`` before it."""
    m = {k: (list(v) if isinstance(v, list) else v) for k, v in m.items()}
    irqs = ((1 << nv.n_irq) - 1) << IRQ0
    kind = op[0]

    def pend(n: int) -> None:
        m["pending"] |= 1 << n

    def unpend(n: int) -> None:
        m["pending"] &= ~(1 << n)
        m["pending"] |= m["level"] & (1 << n)          # a high line pends again at once

    def activate(n: int) -> None:
        m["pending"] &= ~(1 << n)
        m["active"] |= 1 << n
        m["stack"].append(n)
        m["taken"] += 1

    def deactivate(n: int) -> None:
        if m["active"] >> n & 1:
            m["active"] &= ~(1 << n)
            if m["stack"] and m["stack"][-1] == n:
                m["stack"].pop()
            elif n in m["stack"]:
                m["stack"].remove(n)
            m["pending"] |= m["level"] & (1 << n)
    if kind in ("write", "ipr"):
        off, v = (op[1], op[2]) if kind == "write" else (0x400 + 4 * op[1], op[2])
        if 0x100 <= off < 0x300:
            bits = (v << (IRQ0 + 32 * ((off & 0x7F) // 4))) & irqs
            if off < 0x180:
                m["enabled"] |= bits
            elif off < 0x200:
                m["enabled"] &= ~bits
            for n in range(nv.n_exc):
                if bits >> n & 1:
                    pend(n) if 0x200 <= off < 0x280 else unpend(n) if off >= 0x280 else None
        elif 0x400 <= off < 0x4F0:
            for j in range(4):
                n = IRQ0 + off - 0x400 + j
                if n < nv.n_exc:
                    m["prio"][n] = (v >> 8 * j) & 0xF0
        elif 0xD18 <= off <= 0xD20:
            excs = ((4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))[(off - 0xD18) // 4]
            keep = ((0, 1, 2), (3,), (0, 2, 3))[(off - 0xD18) // 4]
            for j in keep:
                m["prio"][excs[j]] = (v >> 8 * j) & 0xF0
        elif off == 0xD24:                                   # SHCSR: enables, then pended bits
            m["enabled"] = (m["enabled"] & ~0x70) | sum(1 << e for b_, e in ((16, 4), (17, 5), (18, 6))
                                                        if v >> b_ & 1)
            for b_, e in ((12, USAGEFAULT), (13, MEMMANAGE), (14, BUSFAULT), (15, SVCALL)):
                if v >> b_ & 1:
                    pend(e)
                else:
                    m["pending"] &= ~(1 << e)
        elif off == 0xD0C and v >> 16 == 0x05FA:             # AIRCR.PRIGROUP, with the key
            m["gm"] = (0xFF << (((v >> 8) & 7) + 1)) & 0xF0
        elif off == 0xD04:                                   # ICSR: clears first, then sets
            for bit, n, on in ((27, PENDSV, False), (25, SYSTICK, False), (31, NMI, True),
                               (28, PENDSV, True), (26, SYSTICK, True)):
                if v >> bit & 1:
                    pend(n) if on else unpend(n)
        elif off == 0xF00 and (v & 0x1FF) < nv.n_irq:         # STIR
            pend(IRQ0 + (v & 0x1FF))
    elif kind == "line":
        bit = 1 << (IRQ0 + op[1])
        if op[2]:
            m["level"] |= bit
            pend(IRQ0 + op[1])
        else:
            m["level"] &= ~bit
    elif kind == "pend":
        pend(op[1])
    elif kind == "unpend":
        unpend(op[1])
    elif kind == "take":
        n, _g = spec_nv_best(m)
        if n:
            activate(n)
    elif kind == "activate":
        activate(op[1])
    elif kind == "deactivate":
        deactivate(op[1])
    elif kind == "return" and m["stack"]:
        deactivate(m["stack"][-1])
    elif kind == "reset":
        m.update(pending=m["level"] & irqs, enabled=ALWAYS, active=0, stack=[], taken=0, gm=0xF0,
                 prio=[0, -3, -2, -1] + [0] * (nv.n_exc - 4))
    return m


def spec_nv_group(m: dict, p: int) -> int:
    return p if p < 0 else p & m["gm"]


def spec_nv_best(m: dict) -> tuple[int, int]:
    cands = [(m["prio"][n], n) for n in range(len(m["prio"])) if (m["pending"] & m["enabled"]) >> n & 1]
    if not cands:
        return 0, 256
    p, n = min(cands)
    return n, spec_nv_group(m, p)


def spec_nv_exec(m: dict, primask: int, basepri: int, faultmask: int) -> int:
    prio = min([spec_nv_group(m, m["prio"][n]) for n in range(len(m["prio"])) if m["active"] >> n & 1]
               + [256])
    bp = basepri & 0xF0 & m["gm"]
    if bp and bp < prio:
        prio = bp
    if primask & 1 and prio > 0:
        prio = 0
    if faultmask & 1 and prio > -1:
        prio = -1
    return prio


def spec_nv_reads(nv, m: dict) -> dict:
    """What the SCS registers read for the state ``m``."""
    irqs = ((1 << nv.n_irq) - 1) << IRQ0

    def arr(bits: int, i: int) -> int:
        return ((bits & irqs) >> (IRQ0 + 32 * i)) & 0xFFFFFFFF
    best, _g = spec_nv_best(m)
    icsr = (m["stack"][-1] if m["stack"] else 0) | (best & 0x1FF) << 12
    icsr |= (1 << 11 if len(m["stack"]) <= 1 else 0) | (1 << 22 if m["pending"] & irqs else 0)
    icsr |= (m["pending"] >> PENDSV & 1) << 28 | (m["pending"] >> SYSTICK & 1) << 26
    icsr |= (m["pending"] >> NMI & 1) << 31
    shcsr = sum(1 << b_ for b_, e in ((16, 4), (17, 5), (18, 6)) if m["enabled"] >> e & 1)
    shcsr |= sum(1 << b_ for b_, e in ((0, 4), (1, 5), (3, 6), (7, 11), (8, 12), (10, 14), (11, 15))
                 if m["active"] >> e & 1)
    shcsr |= sum(1 << b_ for b_, e in ((12, 6), (13, 4), (14, 5), (15, 11)) if m["pending"] >> e & 1)
    out = {}
    for off in NV_READS:
        if off in (0xD04, 0xD0C, 0xD24):
            continue
        if off < 0x300:
            out[off] = arr(m["enabled" if off < 0x200 else "pending"], (off & 0x7F) // 4)
        elif off < 0x400:
            out[off] = arr(m["active"], (off & 0x7F) // 4)
        elif off < 0xD00:
            n = IRQ0 + off - 0x400
            out[off] = sum((m["prio"][n + j] & 0xFF) << 8 * j for j in range(4) if n + j < nv.n_exc)
        else:
            excs = ((4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))[(off - 0xD18) // 4]
            out[off] = sum((m["prio"][e] & 0xFF) << 8 * j for j, e in enumerate(excs) if e >= 4)
    out[0xD04] = icsr
    out[0xD24] = shcsr
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(NV_OP, min_size=1, max_size=40))
def test_nvic_state_selection_and_registers_follow_the_architecture(ops) -> None:
    nv = board().nvic
    assert type(nv._c).__name__ == "Nvic"                  # the state is the C object's
    m = nv_model(nv)
    for i, op in enumerate(ops):
        want = nv_expect(nv, m, op)
        nvic_apply(nv, op)
        m = nv_model(nv)
        assert m == want, f"step {i} {op}"
        assert nv.best_pending() == spec_nv_best(m), f"step {i} {op}"
        assert nv.any_pending() == bool(m["pending"] & m["enabled"])
        for masks in MASKS:
            assert nv.execution_priority(*masks) == spec_nv_exec(m, *masks), f"step {i} {op} {masks}"
        reads = spec_nv_reads(nv, m)
        for off in NV_READS:
            if off == 0xD0C:
                assert nv.read(off, 4) & 0xFFFF_F8FF == 0xFA05_0000
                g = (nv.read(off, 4) >> 8) & 7
                assert (0xFF << (g + 1)) & 0xF0 == m["gm"]
                continue
            assert nv.read(off, 4) == reads[off], f"step {i} {op}: register {off:#x}"


def test_nvic_picks_by_priority_then_number_and_groups_with_prigroup() -> None:
    """Hand-checked cases of the C selection: lowest priority byte wins, a tie goes to the lowest
    exception number, and execution priority compares group priorities only."""
    nv = board().nvic
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
    nv = board().nvic
    nv.set_input(37, True)
    nv.activate(16 + 37)
    nv.reset()
    assert nv.pending == 1 << (16 + 37) and nv.active == 0 and list(nv.stack) == []


def test_bench_steps_refuses_what_it_cannot_run() -> None:
    """``_core.bench_steps`` (make bench's interrupt figures) names what is wrong with its input."""
    from duohil.bench import _m7_for_exceptions
    from duohil.engines.builtin.native import _core
    cpu, _ = _m7_for_exceptions()
    with pytest.raises(TypeError, match="bench_steps\\(cpu, n, count, nvic, exc\\)"):
        _core.bench_steps(cpu, 1, 1)
    with pytest.raises(ValueError, match="count >= 1"):
        _core.bench_steps(cpu, 1, 0, None, 0)
    with pytest.raises(TypeError, match="nvic is a _core.Nvic or None"):
        _core.bench_steps(cpu, 1, 1, cpu.nvic, 16)
    with pytest.raises(ValueError, match="no exception 300"):
        _core.bench_steps(cpu, 1, 1, cpu.nvic._c, 300)
    taken = cpu.nvic.exceptions_taken
    _core.bench_steps(cpu, 3, 1, cpu.nvic._c, 16)           # three steps, three interrupts
    assert cpu.nvic.exceptions_taken - taken == 3 and not cpu.nvic.active
