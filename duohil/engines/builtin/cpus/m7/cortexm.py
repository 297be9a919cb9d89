"""Cortex-M7 core on unicorn 2.1.4: exception entry/return, faults, sleep.

The exception path has one implementation, split by what each language is for. C (native/
cortexm.c and _core.c's ``CortexM``, one per core): the register reads, the frame in memory
(basic and FP-extended), the vector read and the register write sequences of entry, tail-chain
and return, and, with the NVIC's state in C (nvic.py), ``take_interrupts`` (``CortexM.take``)
and the plain exception return decided in the intno-8 hook (``CortexM.fast_return``). Python,
here, in one place: the decisions that are not the plain case -- the storm and starvation checks
(``_storm_at_entry``, ``_starved``, ``_too_fast``), FPCAR for an FP frame, the MPU's stacking check
(MSTKERR), STKERR/UNSTKERR, escalation to HardFault (``_fault_target``), lockup, INVPC/IACCVIOL
returns, the event log. C hands those cases to ``_enter`` (before changing anything),
``_enter_after`` (the frame or the vector could not be written/read), ``_exc_return`` (an
invalid return, before changing anything) and ``_exc_return_rest`` (after the deactivation: the
MPU to re-enable, a tail-chain, an unreadable frame).

What unicorn 2.1.4 does on its own (read in its sources at tag v2.1.4 -- ``qemu/accel/tcg/
cpu-exec.c``, ``qemu/accel/tcg/cputlb.c``, ``qemu/target/arm/unicorn_arm.c`` -- and measured with
probes; the tests in tests/test_cortexm.py pin the behaviour this module relies on):

- No exception is ever delivered by QEMU's v7-M code (``v7m_exception_taken`` is stubbed): every
  entry is done here (stacking, IPSR, LR = EXC_RETURN, PC = vector).
- ``bx lr``/``pop {pc}``/``ldr pc`` with an EXC_RETURN value in handler mode fires
  ``UC_HOOK_INTR`` intno 8 with **PC = EXC_RETURN & ~1** (0xFFFFFFF8 for 0xFFFFFFF9, 0xFFFFFFE8 for
  0xFFFFFFE9...), nothing unstacked. We unstack (or tail-chain) in the hook; writing PC there
  continues inside the same ``emu_start``.
- ``reg_write(XPSR)`` writes IPSR, APSR and EPSR (IT, T) and swaps the banked SP when the mode
  changes (QEMU ``write_v7m_exception``). ``reg_write(CONTROL)`` is QEMU's MSR: ignored for an
  unprivileged thread, SPSEL ignored in handler mode; FPCA writable. ``reg_write(MSP/PSP/PRIMASK..)``
  are MSRs too (privileged only). So entry writes SP first, then CONTROL/XPSR; return writes
  XPSR (and CONTROL, in the order that keeps the writes privileged), then SP.
- CONTROL.FPCA is set by unicorn itself when an FP instruction runs (FPCCR.ASPEN=1 inside QEMU);
  the FP extended frame is therefore chosen from CONTROL.FPCA at entry, as on silicon.
- SVC: intno 2, PC after the SVC. BKPT: intno 7, PC at the BKPT. NOCP/INVSTATE-like QEMU
  exceptions use intno 17/22/23 (PC at the instruction).
- UDF and other undefined encodings: ``UC_HOOK_INSN_INVALID`` with PC **at** the instruction.
  WFE and YIELD both become QEMU's EXCP_YIELD, which also ends in ``UC_HOOK_INSN_INVALID``, with PC
  **after** the instruction; they are told apart by the halfword before PC (0xBF20 / 0xBF10, or the
  32-bit forms). A branch to an even address (T=0) lands there too (INVSTATE, XPSR.T=0).
- Loads/stores/fetches at unmapped addresses: ``UC_HOOK_MEM_*_UNMAPPED`` is called with PC synced
  to the faulting instruction (``cpu_restore_state``); returning False ends ``emu_start`` with
  ``UC_ERR_*_UNMAPPED``, PC still at the faulting instruction and nothing after it executed (a
  precise fault). Page-protection errors (``UC_HOOK_MEM_*_PROT``, used by the MPU) likewise; for
  a store the hook's PC is the one to trust (unicorn only ``cpu_exit``s there), so we record it.
  Returning True from a ``*_PROT`` hook does *not* let one access through: a store is dropped and
  the page then stays accessible through the TLB.
- ``emu_stop()`` inside an MMIO callback (needed to take a software-pended exception promptly)
  stops at the next instruction boundary with **PC restored to the accessing instruction and its
  register effects (writeback, load result) undone, while the device write has happened**:
  resuming would perform the write twice. The core replays that one instruction with the device
  write suppressed (``Machine.suppress_writes``), see ``_replay_store``.
- WFI: ``emu_start`` just returns (EXCP_HLT), PC after the WFI, no hook. See ``# -- slices``.
- ``uc_reg_read_batch``/``uc_reg_write_batch`` through ctypes with preallocated arrays cost about
  2.7 us for 12 registers, against about 4 us for a single ``Uc.reg_read`` on this VM; called
  without ctypes ``argtypes`` (``cpu.RAW``) about 0.8-1.4 us (the binding's per-argument
  conversion was most of it). A SysTick tick of an idle firmware costs 7 such calls plus one
  ``emu_start``: the registers read at the end of a slice (one batch in C: PC, the entry
  registers, the masks) serve the WFI test, the next wake-up test and the next exception entry.
- An exception return to the instruction after a WFI does not stop the slice: the WFI that ends
  the slice at that PC is known to have run when a register the return restored has changed
  since (``_ret_state``); when none has, the core does not sleep (a spurious wake-up,
  which WFI allows). One slice per interrupt instead of two.

Choices (deviations from silicon are marked *):
- Interrupts are taken at slice boundaries (``take_interrupts``), at exception return
  (tail-chaining in the intno-8 hook: the pending exception is entered with the frame already on
  the stack and the same EXC_RETURN), and after a software pend: the SCS model calls ``kick`` from
  the MMIO write, which stops the slice after that instruction (unicorn checks the stop request
  per instruction while the ``count`` hook is active; the store is completed by a replay, above);
  the exception is taken at the next slice start, with no instruction in between. *The slice is
  charged in full, as for WFI (a software pend costs the rest of a quantum of virtual time).
  *An interrupt unmasked by CPSIE/MSR (no MMIO) is taken at the next slice boundary (<= 1 quantum).
  *Late arrival is not modelled; stacking is instantaneous.
- SVC, UDF and the other UsageFaults are entered inside the unicorn hook (no slice end); memory
  faults and INVSTATE end the slice through the unicorn error (or a stop, for a sub-page MPU
  guard) and are entered right after it.
- A store to unmapped memory is an *imprecise* BusFault (IMPRECISERR, BFAR not valid, stacked PC
  past the store), as the M7's write buffer makes it; a load or fetch is precise.
- FP: *extended frames are stacked eagerly* (LSPEN is ignored; the 18 FP words are written at
  entry and FPCAR points at them), which gives the same register results as lazy stacking.
- Faults: BusFault (PRECISERR+BFARVALID, BFAR for a data access to unmapped memory; IBUSERR for a
  fetch), MemManage from the MPU (DACCVIOL+MMARVALID, MMFAR; IACCVIOL for XN/no-access fetch),
  UsageFault (UNDEFINSTR, INVSTATE, INVPC, NOCP, UNALIGNED, DIVBYZERO). A configurable fault that
  is disabled in SHCSR or cannot preempt the current execution priority (PRIMASK/BASEPRI count)
  escalates to HardFault with HFSR.FORCED; CFSR keeps its bits. A fault that cannot preempt
  HardFault either (in HardFault/NMI, or FAULTMASK) is a lockup: the core halts and the machine
  records ``lockup``. A failed stacking write (unmapped stack, MPU no-access) sets STKERR/MSTKERR
  and enters the fault handler with the stack pointer already moved, as silicon does.
  *CCR.DIV_0_TRP and UNALIGN_TRP have no effect (QEMU's copy of CCR is not reachable): division by
  zero returns 0. *Unaligned LDRD/STRD/LDM/STM execute (silicon: UsageFault UNALIGNED); measured.
  *CPACR does not gate the FPU. *SVC from an unprivileged thread works the same.
- BKPT halts the core and records ``bkpt``. WFE sleeps like WFI (*the event register is not
  modelled: a WFE is a WFI that also wakes on any pending interrupt). YIELD is a NOP.
- AIRCR.SYSRESETREQ: the SCS calls ``machine.system_reset``; a reset requested during a slice is
  applied when the slice has stopped (register writes from an MMIO callback are not safe).
"""
from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING, Any, Callable, Sequence

from unicorn import (UC_ARCH_ARM, UC_HOOK_CODE, UC_HOOK_INSN_INVALID,
                     UC_HOOK_MEM_PROT, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE,
                     UC_MEM_FETCH_PROT, UC_MEM_FETCH_UNMAPPED, UC_MEM_WRITE, UC_MEM_WRITE_PROT,
                     UC_MEM_WRITE_UNMAPPED, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError)
from unicorn import arm_const as A

from ... import native
from ..cpu import LIB as _RAW
from ..cpu import CpuCore, MemPort
from .nvic import (BFARVALID, BUSFAULT, DACCVIOL, DIVBYZERO, HARDFAULT, HFSR_FORCED, IACCVIOL,
                   IBUSERR, IMPRECISERR, INVPC, INVSTATE, MEMMANAGE, MMARVALID, MSTKERR, NMI, NOCP,
                   P_R, P_W, P_X, PENDSV, PRECISERR, STKERR, SVCALL, SYSTICK, UNALIGNED, UNDEFINSTR,
                   UNSTKERR, USAGEFAULT, Nvic)

if TYPE_CHECKING:  # pragma: no cover
    from ...kernel.machine import Machine

UNTIL = 0xFFFF_FFFF            # never reached by a Thumb PC: slices end by count, stop or error
XPSR_T = 1 << 24
CONTROL_NPRIV, CONTROL_SPSEL, CONTROL_FPCA = 1, 2, 4
# QEMU runs this core in its "secure" state and decides "no FP context yet" from v8-M's SFPA
# (CONTROL bit 3), not FPCA: with SFPA=0 the next FP instruction starts a new context and loads
# FPSCR from QEMU's FPDSCR (0). So SFPA must follow FPCA: cleared on entry (the handler's first FP
# instruction gets a fresh FPSCR, as on silicon), set again on an extended-frame return.
# *Firmware reads CONTROL bit 3 as a copy of FPCA (silicon: 0); SCB FPDSCR writes do not reach QEMU.
CONTROL_SFPA = 8
# WFI's encodings (0xBF30, 0x8003F3AF) are tested in C (_core.c [m7slice]); WFE and YIELD here
WFE_T1, YIELD_T1 = 0xBF20, 0xBF10
WFE_T2, YIELD_T2 = 0x8002F3AF, 0x8001F3AF     # as little-endian words
EXC_RETURN_OK = {0xFFFFFFF1, 0xFFFFFFF9, 0xFFFFFFFD, 0xFFFFFFE1, 0xFFFFFFE9, 0xFFFFFFED}

R = A
ENTRY_REGS = (R.UC_ARM_REG_R0, R.UC_ARM_REG_R1, R.UC_ARM_REG_R2, R.UC_ARM_REG_R3,
              R.UC_ARM_REG_R12, R.UC_ARM_REG_LR, R.UC_ARM_REG_PC, R.UC_ARM_REG_XPSR,
              R.UC_ARM_REG_SP, R.UC_ARM_REG_CONTROL)
# Hang and storm thresholds: one home for both cores (limits.py, where they are explained)
from ...kernel.limits import (HANG_PC_SPAN, HANG_PS, STORM_ENTRIES, STORM_RATE_ENTRIES,  # noqa: E402
                     STORM_RATE_PS, STORM_STARVE_PS)


class RegBatch:
    """One ``uc_reg_read_batch`` call over preallocated ctypes arrays (32-bit registers)."""

    def __init__(self, uc: Uc, regs: Sequence[int]) -> None:
        n = self.n = len(regs)
        self.h = uc._uch
        self.ids = (ctypes.c_int * n)(*regs)
        self.vals = (ctypes.c_uint32 * n)()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * n)(*[base + 4 * i for i in range(n)])
        self._fn = _RAW.uc_reg_read_batch

    def read(self) -> list[int]:
        err = self._fn(self.h, self.ids, self.ptrs, self.n)
        if err:
            raise UcError(err)
        return self.vals[:]


class RegWriter:
    """``uc_reg_write_batch`` for a variable sequence of (register, value), in order."""

    def __init__(self, uc: Uc, capacity: int = 48) -> None:
        self.h = uc._uch
        self.cap = capacity
        self.ids = (ctypes.c_int * capacity)()
        self.vals = (ctypes.c_uint32 * capacity)()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * capacity)(*[base + 4 * i for i in range(capacity)])
        self._fn = _RAW.uc_reg_write_batch
        self._fmt: dict[int, tuple[struct.Struct, struct.Struct]] = {}

    def write(self, regs: Sequence[int], values: Sequence[int]) -> None:
        ids, vals = self.ids, self.vals
        n = len(regs)
        fmt = self._fmt.get(n)
        if fmt is None:
            fmt = self._fmt[n] = (struct.Struct(f"<{n}i"), struct.Struct(f"<{n}I"))
        fmt[0].pack_into(ids, 0, *regs)
        try:
            fmt[1].pack_into(vals, 0, *values)
        except struct.error:                 # a value outside 0..2**32-1: keep its low 32 bits
            fmt[1].pack_into(vals, 0, *[v & 0xFFFFFFFF for v in values])
        err = self._fn(self.h, ids, self.ptrs, n)
        if err:
            raise UcError(err)


def _m7_state() -> type:
    """``_core.CortexMState``: the slice's and the exception paths' fields below (_pc, _stop,
    _entry_cache, _rate_n, ...) as C fields the native core reads without a dict lookup."""
    core = native.core()
    return core.CortexMState if core is not None else object


class CortexM7Cpu(CpuCore, _m7_state()):  # type: ignore[misc]
    arch = "cortex-m7"
    renode_types = ("CPU.CortexM",)

    def __init__(self, machine: "Machine", name: str, hz: int, nvic: Nvic | None = None,
                 cpu_type: str = "cortex-m7", props: dict[str, Any] | None = None,
                 **_ignored: Any) -> None:
        self.nvic: Nvic | None = None
        super().__init__(machine, name, hz)
        uc = self.uc
        self._pcb = RegBatch(uc, (R.UC_ARM_REG_PC,))
        # ENTRY_REGS as read at the end of the last slice (PC, the WFI test of the slice's end), kept
        # while nothing has run since: the next exception entry stacks them without a read
        self._entry_cache: list[int] | None = None
        self._ret_state: tuple[int, ...] | None = None
        # PRIMASK/BASEPRI/FAULTMASK as read between slices (nothing changes them until the next
        # slice or reset): next_deadline's wake test and take_interrupts share one read
        self._mask_cache: list[int] | None = None
        self._inv = RegBatch(uc, (R.UC_ARM_REG_PC, R.UC_ARM_REG_XPSR))
        self._w = RegWriter(uc)
        self._mem = MemPort(uc)
        # the exception path's register and memory side in C (native/cortexm.c, one per core)
        self._cm: Any = native.require().CortexM(uc._uch.value)
        # PRIMASK, BASEPRI, FAULTMASK as the core holds them (unicorn's own read gives 0 to an
        # unprivileged thread: cortexm.h, dh_cm_read_masks)
        self._read_masks = self._cm.read_masks
        self._pc: int | None = None          # PC at the end of the last slice, if nothing moved it
        self._stop: str | None = None        # why we stopped the running slice
        self._mem_fault: tuple[str, int] | None = None
        self._pending_hook_removal: list[int] = []  # one-shot code hooks that have fired
        self._returned_to: int | None = None
        self._reset_pending = False
        self._replay = False
        self._guard_hooks: list[int] = []
        self._guard_restore: tuple[int, bytes] | None = None
        self.lockup: dict[str, Any] | None = None
        self.halt_reason: str | None = None
        self.faults = 0
        self._fetch_faults = 0
        self._hang_reset()
        # UC_HOOK_INTR from C: an exception return (intno 8) without the binding's ctypes wrapper
        self._cm.hook_intr(uc, self._exc_return, self._on_intr)
        # a slice and its end in C (CortexM.run_slice): the C slice driver calls cpu._run_slice
        self._cm.bind_slice(self)
        self._run_slice = self._cm.run_slice                  # type: ignore[method-assign]
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        # [vtlb] both memory hooks bounded (cpu.py's bound_memory_hooks, set_prot_ranges)
        self.hook_unmapped(self._on_unmapped)
        self._prot_hooks: list[int] = []
        if self._vtlb is not None:
            self._cm.bind_vtlb(self._vtlb)
        if nvic is not None:
            self.attach_nvic(nvic)

    def _create_uc(self) -> Uc:
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M7)
        return uc

    def attach_nvic(self, nvic: Nvic) -> None:
        self.nvic = nvic
        nvic.cpu = self
        # the NVIC's state is C (nvic._c): plain entries and returns are decided there
        self._cm.fast_return(nvic._c, self, self._exc_return_rest, nvic._scr_reg, self.machine.now)
        self._cm.fast_entry(nvic, self._enter, self._enter_after, STORM_ENTRIES, STORM_RATE_ENTRIES,
                            nvic.regs.FPCAR)
        nvic.mpu.push_write_denied()
        self.take_interrupts = self._cm.take            # type: ignore[method-assign]
        self.interrupt_pending = self._cm.interrupt_pending   # type: ignore[method-assign]

    # -- reset --------------------------------------------------------------------------------------
    def reset(self) -> None:
        if self.executing:                   # from an MMIO write (SYSRESETREQ): after the slice
            self._reset_pending = True
            self._stop = "reset"
            self.uc.emu_stop()
            return
        self._do_reset()

    def _do_reset(self) -> None:
        self._mask_cache = None
        self._entry_cache = None
        self._reset_pending = False
        self._replay = False
        self._cm.clear_wfi()                   # the image may have changed: find WFIs again
        vtor = self.nvic.vtor if self.nvic is not None else 0x0800_0000
        try:
            sp, pc = struct.unpack("<II", self.uc.mem_read(vtor, 8))
        except UcError:
            sp = pc = 0
        r = A
        regs = [r.UC_ARM_REG_XPSR, r.UC_ARM_REG_CONTROL, r.UC_ARM_REG_FAULTMASK,
                r.UC_ARM_REG_BASEPRI, r.UC_ARM_REG_PRIMASK, r.UC_ARM_REG_PSP, r.UC_ARM_REG_MSP,
                r.UC_ARM_REG_XPSR, r.UC_ARM_REG_SP, r.UC_ARM_REG_FPSCR]
        vals = [XPSR_T | HARDFAULT, 0, 0, 0, 0, 0, sp & ~3, XPSR_T, sp & ~3, 0]
        regs += [r.UC_ARM_REG_R0 + i for i in range(13)] + [r.UC_ARM_REG_LR, r.UC_ARM_REG_PC]
        vals += [0] * 13 + [0xFFFFFFFF, pc]
        self._w.write(regs, vals)
        self._pc = pc & ~1
        self.sleeping = False
        self.halted = False
        self.lockup = None
        self.halt_reason = None
        self._hang_reset()
        self.unpark()
        self.parked = False

    # -- register helpers ---------------------------------------------------------------------------------
    def registers_changed(self) -> None:
        """Call after writing core registers through ``self.uc`` between slices: the copies read
        at the end of the last slice (PC, entry registers, masks) are then read again."""
        self._pc = None
        self._entry_cache = None
        self._mask_cache = None

    def read_reg(self, reg: int) -> int:
        return self.uc.reg_read(reg)

    def pc(self) -> int:
        return self._cm.pc()

    # -- interrupts -------------------------------------------------------------------------------------
    def interrupt_pending(self) -> bool:
        """A pending exception that could preempt if PRIMASK were clear (the WFI wake rule). With
        an NVIC attached this is the C ``CortexM.interrupt_pending`` (``attach_nvic``), the same
        test; this one serves a core without an NVIC and states the rule."""
        nv = self.nvic
        if nv is None or not nv.any_pending():
            return False
        _n, g = nv.best_pending()
        _pm, bp, _fm = self._mask_regs()
        return g < nv.execution_priority(0, bp, 0)

    def _mask_regs(self) -> list[int]:
        if self.executing:
            return self._read_masks()
        m = self._mask_cache
        if m is None:
            m = self._mask_cache = self._read_masks()
        return m

    def take_interrupts(self) -> bool:
        """Deliver any exception that may preempt now; True if one was taken. With an NVIC
        attached this is the C ``CortexM.take`` (``attach_nvic``): the selection loop, the
        preemption test with the masks, the plain entry in C, the rest by ``_enter``."""
        return False

    def interrupt_at(self, address: int, irq: int, nth: int = 1,
                     on_fire: "Callable[[int], None] | None" = None) -> None:
        """Pend IRQ ``irq`` when the core is about to execute ``address`` for the ``nth`` time, and
        take it there: the stacked return address is ``address`` (that instruction has not run).

        Measured on unicorn 2.1.4: a UC_HOOK_CODE hook added after its block was translated does
        not fire until the block is dropped from the cache (``ctl_remove_cache``), and ``emu_stop``
        inside a code hook stops *before* the hooked instruction. The pend goes through the NVIC
        like any other, so masking and priorities decide whether it preempts there. Any code hook
        slows all sliced execution, so this one is removed as soon as it has fired."""
        address &= ~1
        state: dict[str, int] = {"seen": 0, "handle": 0}

        def hook(uc: Uc, addr: int, size: int, _ud: Any) -> None:
            state["seen"] += 1
            if state["seen"] != nth:
                return
            self._pending_hook_removal.append(state["handle"])
            self.nvic.pend_irq(irq)
            if on_fire is not None:
                on_fire(addr)
            self._stop = self._stop or "irq_at"
            uc.emu_stop()

        state["handle"] = self.uc.hook_add(UC_HOOK_CODE, hook, begin=address, end=address)
        self.uc.ctl_remove_cache(address, address + 4)

    def kick(self) -> None:
        """The SCS pended something during an MMIO access: stop the slice if it can preempt."""
        nv = self.nvic
        n, g = nv.best_pending()
        if not n:
            return
        pm, bp, fm = self._read_masks()
        if g < nv.execution_priority(pm, bp, fm):
            if self._stop is None:
                self._stop = "irq"
                self._replay = self.machine.writing
            self.uc.emu_stop()

    # -- entry --------------------------------------------------------------------------------------------
    def _storm_at_entry(self, exc: int, pc: int, handler: int) -> bool:
        """The entry rate and thread-mode starvation checks of every exception entry (both
        entry paths): True when a storm stopped the CPU and the entry must not happen. Entered
        from thread mode, the thread's time and pc are noted (what starvation is measured from)."""
        self._rate_n += 1
        if self._rate_n >= STORM_RATE_ENTRIES and self._too_fast(exc):
            return True
        if not handler:
            self._thread_ps = self.machine.now()
            self._thread_pc = pc
            self._entries = 0
            return False
        self._entries += 1
        return self._entries >= STORM_ENTRIES and self._starved(exc)

    def _enter(self, exc: int, pc: int | None = None) -> None:
        """Stack a frame on the current stack and enter ``exc``. ``pc``: the return address to
        stack (the faulting instruction for a fault) instead of the current PC. The decisions are
        here (storm checks, FPCAR for an FP frame, the MPU's stacking check: MSTKERR, escalation,
        lockup); the registers, the frame, the vector and the write sequence are C
        (``CortexM.stack_enter``, native/cortexm.c). The C ``take`` does the plain entry itself and
        calls this before changing anything when a storm test is due, the frame is FP-extended or
        the MPU is on."""
        nv = self.nvic
        regs0 = self._entry_cache
        if regs0 is None:
            regs0 = self._cm.read_entry()
        else:
            self._entry_cache = None
        xpsr, sp, control = regs0[7], regs0[8], regs0[9]
        if pc is None:
            pc = regs0[6]
        fp = control & CONTROL_FPCA
        handler = xpsr & 0x1FF
        if self._storm_at_entry(exc, pc, handler):
            return
        size = 0x68 if fp else 0x20
        frame_sp = (sp - size) & ~7
        if fp:
            nv.regs.FPCAR.value = frame_sp + 0x20
        stack = True
        mpu = nv.mpu
        if mpu.enabled and mpu.denies(frame_sp, size, P_W) and not self._mpu_bypassed():
            nv.cfsr |= MSTKERR
            self._stacking_fault(MEMMANAGE, pc)
            exc = self._fault_target(MEMMANAGE)
            if exc is None:
                self._lockup("stacking fault", pc)
                return
            stack = False
        vec = self._cm.stack_enter(regs0, pc, exc, nv.vtor, stack)
        self._enter_after(regs0, pc, exc, vec)

    def _enter_after(self, regs0: list[int], pc: int, exc: int, vec: int) -> None:
        """Entry once the frame was (or could not be) written: the C take (CortexM.take) calls
        this when stack_enter failed (-1 STKERR, -2 no vector) and does the plain case itself."""
        nv = self.nvic
        if vec == -1:
            nv.cfsr |= STKERR
            self._stacking_fault(BUSFAULT, pc)
            exc = self._fault_target(BUSFAULT)
            if exc is None:
                self._lockup("stacking fault", pc)
                return
            vec = self._cm.stack_enter(regs0, pc, exc, nv.vtor, False)
        if vec == -2:
            nv.hfsr |= 1 << 1                     # VECTTBL
            self._lockup("vector table read", pc)
            return
        nv.activate(exc)
        self._pc = vec & ~1
        self._returned_to = None
        self._ret_state = None

    def _stacking_fault(self, kind: int, pc: int) -> None:
        """A derived fault on stacking: the SP has moved, the original exception is not taken."""
        self.machine.record("cpu_fault", cpu=self.name, exception=kind, pc=pc & 0xFFFFFFFF,
                            cfsr=self.nvic.cfsr, stacking=True)

    # -- return -------------------------------------------------------------------------------------------
    def _exc_return(self) -> None:
        """The intno-8 hook's exception return (PC = EXC_RETURN & ~1). The C hook
        (``CortexM.fast_return``) decides the plain return itself and calls this, before changing
        anything, for a return from thread mode (MemManage IACCVIOL: a fetch from the XN system
        region) and for the returns the integrity checks may refuse (``_invpc_return``): an
        invalid EXC_RETURN, an exception that is not active, a return to thread mode while another
        exception stays active (allowed by CCR.NONBASETHRDENA). ARMv7-M ARM B1.5.8
        ExceptionReturn(); QEMU target/arm/m_helper.c do_v7m_exception_exit (unicorn-engine/unicorn
        8c3d5f694b167fc7f9139c19e0d2100efc041316) checks the same before the pop. A return to
        handler mode has no check of its own there: with one exception active its frame was
        stacked from thread mode (IPSR 0), which the check after the pop refuses (dh_cm_unstack)."""
        nv = self.nvic
        pc, msp, psp, control, xpsr, primask, basepri, faultmask = self._cm.read_return()
        exc_ret = pc | 1
        cur = xpsr & 0x1FF
        if not cur:
            self._raise_fault(MEMMANAGE, IACCVIOL, pc)
            return
        # DeActivate() comes first on every path of ExceptionReturn(), the failing ones included
        if not nv.deactivate(cur) or exc_ret not in EXC_RETURN_OK \
                or exc_ret & 8 and nv.active and not nv.regs.CCR.value & 1:
            self._invpc_return(pc, primask, basepri, faultmask, cur)
            return
        self._exc_return_rest(pc, msp, psp, control, primask, basepri, faultmask, cur)

    def _exc_return_rest(self, pc: int, msp: int, psp: int, control: int, primask: int, basepri: int,
                         faultmask: int, cur: int) -> None:
        """An exception return after ``cur`` was deactivated. The C hook (CortexM.fast_return)
        does the plain case itself and calls this for the others: the MPU to re-enable, a
        tail-chain (storm checks), a frame that cannot be read or whose IPSR disagrees with the
        mode returned to (INVPC)."""
        nv = self.nvic
        exc_ret = pc | 1
        if nv.mpu.suspended and nv.execution_priority(primask, basepri, 0) >= 0:
            nv.mpu.apply()
        fm0 = faultmask
        clear_fm = bool(faultmask & 1 and cur != NMI)
        if clear_fm:
            faultmask = 0
        n, g = nv.best_pending()
        if n and g < nv.execution_priority(primask, basepri, faultmask):
            # (the frame is not read: its IPSR is checked when the chained handler returns)
            if self._storm_at_tail_chain(n):
                return
            vec = self._cm.tail_chain(n, exc_ret, nv.vtor, clear_fm)
            if vec == -2:
                self._lockup("vector table read", pc)
                return
            nv.activate(n)
            return
        u = self._cm.unstack(psp if exc_ret & 4 else msp, exc_ret, control, clear_fm)
        if isinstance(u, int):           # the stacked IPSR disagrees with the mode returned to
            self._invpc_return(pc, primask, basepri, fm0, cur)
            return
        to_thread = exc_ret & 8
        if to_thread:
            self._thread_ps = self.machine.now()
            self._entries = 0
        if u is None:
            nv.cfsr |= UNSTKERR
            self._raise_fault(BUSFAULT, 0, pc)
            return
        self._returned_to = u[6] & ~1
        self._ret_state = (u[0], u[1], u[2], u[3], u[4], u[5], u[7], u[8] >> 27)
        if to_thread and nv._scr_reg.value & 2 and not nv.active:         # SCR.SLEEPONEXIT
            self._stop = "sleep"
            self.uc.emu_stop()

    def _storm_at_tail_chain(self, exc: int) -> bool:
        """The storm checks of an entry by tail-chain (no thread mode ran): True when stopped."""
        self._entries += 1
        self._rate_n += 1
        return (self._entries >= STORM_ENTRIES and self._starved(exc)
                or self._rate_n >= STORM_RATE_ENTRIES and self._too_fast(exc))

    def _invpc_return(self, pc: int, primask: int, basepri: int, faultmask: int, cur: int) -> None:
        """An exception return refused by an integrity check, ``cur`` already deactivated (when
        it was active). ARMv7-M ARM B1.5.8 ExceptionReturn(): UFSR.INVPC, LR = EXC_RETURN,
        ExceptionTaken(UsageFault) -- the frame stays where it is (the check after the pop pushes
        it back: PushStack() negates PopStack()), so the handler is entered as by a tail-chain and
        the frame's return address is the interrupted code's. FAULTMASK is cleared as by any return
        but NMI's; the UsageFault escalates to HardFault (HFSR.FORCED) when disabled or unable to
        preempt the priority left after the deactivation, a HardFault at priority < 0 locks up.
        (QEMU takes the refused-after-pop case on a new frame with a fresh EXC_RETURN and the
        highest pending exception first; we follow the ARM ARM, and today's synchronous faults.)"""
        nv = self.nvic
        clear_fm = bool(faultmask & 1 and cur != NMI)
        if clear_fm:
            faultmask = 0
        ep = nv.execution_priority(primask, basepri, faultmask)
        if nv.mpu.suspended and ep >= 0:
            nv.mpu.apply()
        nv.cfsr |= INVPC
        self.faults += 1
        target = self._fault_target(USAGEFAULT, ep)
        self.machine.record("cpu_fault", cpu=self.name, exception=USAGEFAULT, taken_as=target or 0,
                            pc=pc & 0xFFFFFFFF, cfsr=nv.cfsr, hfsr=nv.hfsr)
        self._returned_to = None
        self._ret_state = None
        if target is None:
            self._lockup(f"fault {USAGEFAULT} at execution priority < 0", pc)
            return
        if self._storm_at_tail_chain(target):
            return
        vec = self._cm.tail_chain(target, pc | 1, nv.vtor, clear_fm)
        if vec == -2:
            nv.hfsr |= 1 << 1                     # VECTTBL
            self._lockup("vector table read", pc)
            return
        nv.activate(target)

    # -- faults -------------------------------------------------------------------------------------------
    def _mpu_bypassed(self) -> bool:
        """MPU off for execution priority < 0 unless MPU_CTRL.HFNMIENA."""
        nv = self.nvic
        if nv.mpu.ctrl & 2:
            return False
        pm, bp, fm = self._read_masks()
        return nv.execution_priority(pm, bp, fm) < 0

    def _fault_target(self, exc: int, ep: int | None = None) -> int | None:
        """The exception a synchronous fault of kind ``exc`` is taken as (None: lockup), at the
        execution priority ``ep`` (default: the core's now)."""
        nv = self.nvic
        if ep is None:
            pm, bp, fm = self._read_masks()
            ep = nv.execution_priority(pm, bp, fm)
        if exc != HARDFAULT and (not nv.fault_enabled(exc) or nv.group(nv.prio_of(exc)) >= ep):
            exc = HARDFAULT
            nv.hfsr |= HFSR_FORCED
        if exc == HARDFAULT and ep <= -1:
            return None
        return exc

    def _raise_fault(self, exc: int, cfsr_bits: int, pc: int, mmfar: int | None = None,
                     bfar: int | None = None) -> None:
        nv = self.nvic
        nv.cfsr |= cfsr_bits
        if mmfar is not None:
            nv.mmfar = mmfar & 0xFFFFFFFF
        if bfar is not None:
            nv.bfar = bfar & 0xFFFFFFFF
        self.faults += 1
        target = self._fault_target(exc)
        self.machine.record("cpu_fault", cpu=self.name, exception=exc, taken_as=target or 0,
                            pc=pc & 0xFFFFFFFF, cfsr=nv.cfsr, hfsr=nv.hfsr)
        if target is None:
            self._lockup(f"fault {exc} at execution priority < 0", pc)
            return
        self._enter(target, pc=pc)

    def inject_bus_error(self, address: int) -> None:
        """A bus error from outside the core (an AXI SRAM ECC double-bit error reported on a
        buffered write, as the harness's ``bus_fault`` fault): IMPRECISERR, taken as BusFault when
        enabled, else escalated to HardFault; the stacked PC is the next instruction to execute.
        Called between slices."""
        nv = self.nvic
        pc = self.pc() & ~1
        self.sleeping = False
        self.faults += 1
        nv.cfsr |= IMPRECISERR
        self.machine.record("cpu_fault", cpu=self.name, exception=BUSFAULT, pc=pc, cfsr=nv.cfsr,
                            imprecise=True, address=address, injected=True)
        if nv.fault_enabled(BUSFAULT):
            nv.set_pending(BUSFAULT)
            return
        nv.hfsr |= HFSR_FORCED
        if self._fault_target(HARDFAULT) is None:
            self._lockup("injected bus error at execution priority < 0", pc)
        else:
            self._enter(HARDFAULT, pc=pc)

    def _imprecise_bus_fault(self, pc: int, addr: int) -> None:
        """A store to unmapped memory: on the M7 stores are buffered, so the BusFault is
        asynchronous (IMPRECISERR, BFAR not valid) and the stacked PC is past the store. Unicorn
        aborted the store; we skip it (*a base-register writeback of that store is lost)."""
        nv = self.nvic
        try:
            hw = int.from_bytes(self.uc.mem_read(pc, 2), "little")
        except UcError:
            hw = 0
        nxt = pc + (4 if (hw >> 11) in (0x1D, 0x1E, 0x1F) else 2)
        self.uc.reg_write(A.UC_ARM_REG_PC, nxt | 1)
        self._entry_cache = None
        self._pc = nxt
        self.faults += 1
        nv.cfsr |= IMPRECISERR
        self.machine.record("cpu_fault", cpu=self.name, exception=BUSFAULT, pc=pc,
                            cfsr=nv.cfsr, imprecise=True, address=addr)
        if nv.fault_enabled(BUSFAULT):
            nv.set_pending(BUSFAULT)             # taken when its priority allows
            return
        nv.hfsr |= HFSR_FORCED
        target = self._fault_target(HARDFAULT)
        if target is None:
            self._lockup("imprecise BusFault at execution priority < 0", nxt)
        else:
            self._enter(HARDFAULT, pc=nxt)

    def _lockup(self, why: str, pc: int) -> None:
        self.halted = True
        self.halt_reason = "lockup"
        self.lockup = {"reason": why, "pc": pc & 0xFFFFFFFF, "cfsr": self.nvic.cfsr,
                       "hfsr": self.nvic.hfsr}
        self.machine.record("lockup", cpu=self.name, pc=pc & 0xFFFFFFFF, reason=why)
        if self.executing:
            self._stop = "halt"
            self.uc.emu_stop()

    # -- hangs and storms ---------------------------------------------------------------------------------
    #: virtual time a masked spin must last to be a hang (limits.HANG_PS; engine option hang_ms)
    hang_ps = HANG_PS

    def _hang_reset(self) -> None:
        self._hang_since: int | None = None
        self._hang_pc = 0
        self._hang_reads = 0
        self._hang_writes = -1                   # machine.mmio_writes when the spin was noted
        self._hung_reported = False
        self._thread_ps = 0
        self._thread_pc = 0
        self._entries = 0
        self._rate_n = 0
        self._rate_ps = 0

    def _check_masked_spin(self) -> None:
        """Called after a slice that ended with PRIMASK or FAULTMASK set."""
        pc = self._pc or 0
        reads = self.machine.mmio_reads
        t = self.slice_start_ps
        writes = self.machine.mmio_writes
        if self._hang_since is None or writes != self._hang_writes \
                or reads != self._hang_reads \
                or abs(pc - self._hang_pc) > HANG_PC_SPAN:
            self._hang_since, self._hang_pc, self._hang_reads = t, pc, reads
            self._hang_writes = writes
            return
        if t - self._hang_since >= self.hang_ps:
            self._hang_since = None
            self.machine.record("cpu_hung", cpu=self.name, pc=pc,
                                reason=f"spinning with interrupts masked and no peripheral access "
                                       f"for {self.hang_ps // 1_000_000_000} ms")
            self.halt_for("hung: spinning with interrupts masked", {"pc": pc})

    def _check_wfi_hang(self) -> None:
        """Asleep with nothing that could ever wake the core: no IRQ line enabled, SysTick not
        interrupting, nothing pending. Recorded once (the core sleeps at no cost anyway)."""
        nv = self.nvic
        if nv is None or nv.pending or nv.enabled & nv._irq_bits:
            return
        if nv.regs.SYST_CSR.value & 3 == 3:             # ENABLE + TICKINT
            return
        self._hung_reported = True
        self.machine.record("cpu_hung", cpu=self.name, pc=self._pc or 0,
                            reason="asleep in WFI with no interrupt enabled: nothing can wake it")

    def _too_fast(self, exc: int) -> bool:
        """Storm test every STORM_RATE_ENTRIES exception entries: were they within STORM_RATE_PS?"""
        now = self.machine.now()
        fast = now - self._rate_ps < STORM_RATE_PS
        self._rate_n, self._rate_ps = 0, now
        if not fast:
            return False
        return self._storm_stop(exc, f"{STORM_RATE_ENTRIES} exception entries within "
                                     f"{STORM_RATE_PS // 1_000_000_000} ms")

    def _starved(self, exc: int) -> bool:
        """Storm test at an exception entry: thread mode has not run for STORM_STARVE_PS."""
        self._entries = 0
        if self.machine.now() - self._thread_ps < STORM_STARVE_PS:
            return False                         # busy, not starved (yet): count again
        return self._storm_stop(exc, f"thread mode starved for {STORM_STARVE_PS // 1_000_000_000} "
                                     f"ms by {STORM_ENTRIES} exception entries")

    def _storm_stop(self, exc: int, why: str) -> bool:
        name = {SYSTICK: "SysTick", HARDFAULT: "HardFault", PENDSV: "PendSV"}.get(
            exc, f"IRQ {exc - 16}" if exc >= 16 else f"exception {exc}")
        self.machine.record("cpu_stopped", cpu=self.name, pc=self._thread_pc, exception=exc,
                            reason=f"interrupt storm ({name}): {why}")
        self.halted = True
        self.halt_reason = "interrupt storm"
        if self.executing:
            self._stop = "halt"
            self.uc.emu_stop()
        return True

    # -- unicorn hooks ------------------------------------------------------------------------------------
    def _on_intr(self, uc: Uc, intno: int, _ud: Any) -> None:
        if intno == 8:
            self._exc_return()
        elif intno == 2:                                 # SVC, PC after the instruction
            pc = self._pcb.read()[0]
            nv = self.nvic
            pm, bp, fm = self._read_masks()
            if nv.group(nv.prio_of(SVCALL)) < nv.execution_priority(pm, bp, fm):
                self._enter(SVCALL, pc=pc)
            else:                                         # SVC that cannot preempt: HardFault
                nv.hfsr |= HFSR_FORCED
                target = self._fault_target(HARDFAULT)
                if target is None:
                    self._lockup("SVC at execution priority < 0", pc)
                else:
                    self._enter(HARDFAULT, pc=pc)
        elif intno == 7:                                 # BKPT
            pc = self._pcb.read()[0]
            self.halted = True
            self.halt_reason = "bkpt"
            self.machine.record("bkpt", cpu=self.name, pc=pc)
            self._stop = "halt"
            uc.emu_stop()
        elif intno == 3:
            # QEMU's prefetch abort: a fetch from an Execute Never region of the default memory
            # map (0xA0000000-0xDFFFFFFF device, 0xE0000000+ system): MemManage IACCVIOL
            pc = self._pcb.read()[0]
            self._raise_fault(MEMMANAGE, IACCVIOL, pc)
        elif intno in (17, 22, 23):                     # NOCP, UNALIGNED, DIVBYZERO
            pc = self._pcb.read()[0]
            bits = {17: NOCP, 22: UNALIGNED, 23: DIVBYZERO}[intno]
            self._raise_fault(USAGEFAULT, bits, pc)
        else:
            pc = self._pcb.read()[0]
            self.halted = True
            self.halt_reason = f"exception {intno}"
            self.machine.record("cpu_halt", cpu=self.name, pc=pc, intno=intno)
            self._stop = "halt"
            uc.emu_stop()

    def _on_invalid(self, uc: Uc, _ud: Any) -> bool:
        pc, xpsr = self._inv.read()
        if not xpsr & XPSR_T:
            # unicorn ends emu_start with UC_ERR_EXCEPTION after an INVSTATE even when the hook
            # handles it: let it stop and enter the fault after emu_start (_after_error)
            self._mem_fault = ("invstate", pc)
            return False
        try:
            here = bytes(uc.mem_read(pc, 4))
        except UcError:
            here = b"\0\0\0\0"
        hw = int.from_bytes(here[:2], "little")
        udf = (hw & 0xFF00) == 0xDE00 or ((hw & 0xFFF0) == 0xF7F0 and here[3] & 0xF0 == 0xA0)
        if not udf:
            try:
                before = int.from_bytes(uc.mem_read(pc - 4, 4), "little")
            except UcError:
                before = 0
            prev = before >> 16
            if prev == WFE_T1 or before == WFE_T2:
                self._stop = "wfe"
                uc.emu_stop()
                return True
            if prev == YIELD_T1 or before == YIELD_T2:
                return True
        self._raise_fault(USAGEFAULT, UNDEFINSTR, pc)
        return True

    def _on_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        kind = "fetch" if access == UC_MEM_FETCH_UNMAPPED else (
            "write" if access == UC_MEM_WRITE_UNMAPPED else "read")
        m = self.machine
        if kind != "fetch" and m.unmapped_mode == "warn" and m.map_hole(address):
            return True              # retried: the access reaches bus_read/bus_write as a hole
        m.unmapped_access(address, kind, pc=address if kind == "fetch" else self._pcb.read()[0])
        self._mem_fault = ("bus_" + kind, address)
        return False

    def bus_error(self, address: int, access: str) -> None:
        """A bus error on an MMIO access inside a slice (machine.py: a hole in ``fault`` mode):
        the slice stops and the fault is taken as for an unmapped address (_after_stop)."""
        self._mem_fault = ("bus_" + access, address)
        self._stop = "bus"
        self.uc.emu_stop()

    def _on_prot(self, uc: Uc, access: int, address: int, size: int, value: int,
                 _ud: Any) -> bool:
        mpu = self.nvic.mpu
        need = P_X if access == UC_MEM_FETCH_PROT else (P_W if access == UC_MEM_WRITE_PROT else P_R)
        if not mpu.enabled or self._mpu_bypassed():
            # HardFault/NMI/FAULTMASK with HFNMIENA=0: the MPU is off for this access; unicorn
            # cannot pass it through a protected page (see Mpu), so lift the page rights
            mpu.suspend()
            self._mem_fault = ("retry", address)
            return False
        self._guard_pc = pc = self._pcb.read()[0]
        # a fetch is refused while unicorn translates the block at PC, which never crosses a page
        # but for its one instruction that straddles two: PC is the fetching instruction (the
        # stacked PC), ``address`` that instruction's second half in the XN page then
        self._mem_fault = ("mpu_fetch", pc) if need == P_X else ("mpu_data", address)
        return False

    def set_prot_ranges(self, ranges: list[tuple[int, int]]) -> None:
        """The page-protection hook (``_on_prot``) over the pages the MPU took rights from
        (``Mpu.apply``), and nowhere else: a page under any memory hook never gets unicorn's
        inline stores (native/vtlb.h), and only those pages can fail a rights check."""
        for h in self._prot_hooks:
            self.uc.hook_del(h)
        self._prot_hooks = [self.uc.hook_add(UC_HOOK_MEM_PROT, self._on_prot, begin=lo, end=hi - 1)
                            for lo, hi in ranges]

    def protect_pages(self, address: int, size: int, perms: int) -> None:
        """``uc.mem_protect`` for the MPU (``Mpu.apply``/``suspend``), through the TLB fill when
        there is one: unicorn's region split looks a page up as a fetch, which must neither mark
        it executable (its stores would stay slow) nor be refused (native/vtlb.h)."""
        if self._vtlb is None:
            self.uc.mem_protect(address, size, perms)
        else:
            self._vtlb.mem_protect(address, size, perms)

    def set_xn_ranges(self, ranges: list[tuple[int, int]]) -> bool:
        """The pages the MPU makes Execute Never and nothing else (``Mpu.apply``), enforced by
        the TLB fill (native/vtlb.h: a fetch there is refused and ends the slice as ``xn_mpu``,
        ``_after_error``); no page rights, no hook, so their loads and stores stay inline. False
        without the native fill: the caller keeps those pages on page rights and ``_on_prot``."""
        if self._vtlb is None:
            return False
        self._vtlb.set_xn(ranges)
        return True

    def set_mpu_guards(self, ranges: list[tuple[int, int]]) -> None:
        """Watch sub-page MPU no-access/read-only ranges with bounded memory hooks."""
        for h in self._guard_hooks:
            self.uc.hook_del(h)
        self._guard_hooks = [self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._on_guard,
                                              begin=lo, end=hi - 1) for lo, hi in ranges]

    def _on_guard(self, uc: Uc, access: int, address: int, size: int, value: int,
                  _ud: Any) -> None:
        mpu = self.nvic.mpu
        need = P_W if access == UC_MEM_WRITE else P_R
        if mpu.perms_at(address) & need == need or self._stop is not None or \
                not mpu.enabled or self._mpu_bypassed():
            return
        pc = self._pcb.read()[0]                 # synced to the access for memory hooks
        if need == P_W:                          # the store still happens: undo it afterwards
            self._guard_restore = (address, bytes(uc.mem_read(address, size)))
        self._mem_fault = ("mpu_data", address)
        self._guard_pc = pc
        self._stop = "mpu"
        uc.emu_stop()

    # -- slices -------------------------------------------------------------------------------------------
    # A slice is C: ``self._run_slice`` is ``CortexM.run_slice`` (native/_core.c, [m7slice]). It
    # runs the slice and, with no Python in the common case, does its end, in this order:
    # - _pc (None: read), _stop, _mem_fault, _returned_to, _ret_state, _mask_cache, _entry_cache
    #   cleared; emu_start(pc | 1, count); fired one-shot code hooks removed (_remove_fired_hooks);
    # - a unicorn error (or a UcError a hook raised): _pc = None, _slice_error; nothing more. Any
    #   other exception a hook raised is raised again;
    # - a reset requested inside the slice: _do_reset, then the hang checks below;
    # - one register batch: _entry_cache (ENTRY_REGS, the next exception entry stacks them without
    #   a read), _mask_cache (PRIMASK, BASEPRI, FAULTMASK, as the core holds them: the next
    #   wake-up test and take_interrupts) and _pc;
    # - a stop a hook asked for: "wfe"/"sleep" sleep, "irq"/"bus"/"mpu" go to _after_stop;
    # - else the WFI test. WFI: emu_start returned early with PC after it. PC right after a WFI
    #   means the WFI was the last instruction executed (a slice whose count ran out exactly there
    #   has executed it too), unless an exception return just landed on that PC. No code hook marks
    #   WFI sites: any UC_HOOK_CODE slows all sliced execution about 2x (measured), and a hook added
    #   after translation does not even fire until the block is dropped from unicorn's cache. So a
    #   PC is a WFI site when pc - 2 or pc - 4 is one seen before, or the word at pc - 4 has the T1
    #   encoding (0xBF30) in its upper half (site pc - 2) or is the T2 encoding (site pc - 4);
    #   sites are remembered until reset (CortexM.wfi_sites, clear_wfi). An exception return to
    #   this very PC (_returned_to) makes it ambiguous (the slice may have ended by count right at
    #   the return): the WFI is known to have run only if a register the return restored
    #   (_ret_state: R0-R3, R12, LR, SP, xPSR[31:27]) has changed since; if none did, the core does
    #   not sleep (a spurious wake-up, which WFI allows: the next slice runs the loop and the WFI
    #   again). One slice per interrupt instead of two;
    # - the hang checks: asleep and not yet reported -> _check_wfi_hang unless something is
    #   pending or an IRQ line is enabled (its own first tests); awake with PRIMASK or FAULTMASK set
    #   in _mask_cache and not parked -> _check_masked_spin; else _hang_since = None.

    def _slice_error(self, err: "int | UcError") -> None:
        """A slice ended by a unicorn error (the code, or a UcError a hook raised)."""
        self._after_error(err if isinstance(err, UcError) else UcError(err))

    def _remove_fired_hooks(self) -> None:
        while self._pending_hook_removal:
            self.uc.hook_del(self._pending_hook_removal.pop())

    def _after_error(self, exc: UcError) -> None:
        if self._reset_pending:
            self._do_reset()
            return
        info = self._mem_fault
        self._mem_fault = None
        pc = self._pcb.read()[0]
        if info is None:
            self.halted = True
            self.halt_reason = f"unicorn error: {exc}"
            self.machine.record("cpu_halt", cpu=self.name, pc=pc, error=str(exc))
            return
        kind, addr = info
        if kind == "retry":                     # the access runs again with the MPU suspended
            return
        if kind.startswith("mpu_"):
            pc = self._guard_pc
        if kind == "invstate":
            self._raise_fault(USAGEFAULT, INVSTATE, addr)
        elif kind == "bus_write":
            self._imprecise_bus_fault(pc, addr)
        elif kind == "bus_fetch":
            self._fetch_faults += 1
            if self._fetch_faults % 1024 == 0:
                # unicorn 2.1.4 keeps ~200 B of translation state per fetch from unmapped memory
                # until its translation cache is flushed (measured; see riscv.FLUSH_TB_EVERY)
                self.uc.ctl_flush_tb()
            self._raise_fault(BUSFAULT, IBUSERR, addr)
        elif kind.startswith("bus_"):
            self._raise_fault(BUSFAULT, PRECISERR | BFARVALID, pc, bfar=addr)
        elif kind == "xn_mpu" and (not self.nvic.mpu.enabled or self._mpu_bypassed()):
            # the MPU's XN pages, refused by the TLB fill, at execution priority < 0 with
            # HFNMIENA=0: the MPU is off for this fetch, as in _on_prot (apply() at the return)
            self.nvic.mpu.suspend()
        elif kind in ("mpu_fetch", "xn_fetch", "xn_mpu"):
            # xn_fetch: the default map's Execute Never regions, refused by the TLB fill
            # (native/vtlb.h) where QEMU's own fill raised its prefetch abort (intno 3 below);
            # xn_mpu: the MPU's XN pages refused there (set_xn_ranges), as mpu_fetch from _on_prot
            self._raise_fault(MEMMANAGE, IACCVIOL, addr)
        else:
            self._raise_fault(MEMMANAGE, DACCVIOL | MMARVALID, pc, mmfar=addr)

    def _replay_store(self, pc: int) -> None:
        """Finish the store whose MMIO write stopped the slice: unicorn left PC at it with its
        register effects (writeback) undone, so run it once more with that write dropped."""
        self._replay = False
        self._stop = None
        self._mask_cache = None
        self._entry_cache = None
        m = self.machine
        m.suppress_writes = 1
        try:
            self._emu_start(pc | 1, 1)
        except UcError as exc:
            m.suppress_writes = 0
            self._pc = None
            self._after_error(exc)
            return
        m.suppress_writes = 0
        self._pc = self._pcb.read()[0]

    def _after_stop(self, stop: str) -> None:
        """The end of a slice a hook stopped: an MMIO write that pended an exception (replayed
        without the write), a bus error on an MMIO access, a sub-page MPU guard. The end-of-slice
        registers are read (_pc, _entry_cache, _mask_cache)."""
        pc = self._pc
        if stop == "irq":
            if self._replay:
                self._replay_store(pc)
        elif stop == "bus":
            kind, addr = self._mem_fault
            self._mem_fault = None
            if kind == "bus_write":
                self._imprecise_bus_fault(pc, addr)
            else:
                self._raise_fault(BUSFAULT, PRECISERR | BFARVALID, pc, bfar=addr)
        elif stop == "mpu":
            if self._guard_restore is not None:
                self.uc.mem_write(*self._guard_restore)
                self._guard_restore = None
            _kind, addr = self._mem_fault
            self._mem_fault = None
            self._raise_fault(MEMMANAGE, DACCVIOL | MMARVALID, self._guard_pc, mmfar=addr)
