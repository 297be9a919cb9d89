"""RV32IMC core (the ESP32-C3-class peer) on unicorn, with machine-mode traps.

One implementation of the trap entry: the register side (single reads/writes, the trap-state
batch read at M privilege, the trap-entry write sequence) is C (native/riscv.c, _core.c's
``RiscV``, one per core); the decisions are here (the mip shadow, gating by mie/mstatus/
privilege, MEI > MSI > MTI, ECALL/illegal/EBREAK/access-fault decoding, the emulated
``time``/0x7E2 reads, the event log).

What unicorn 2.1.4 does on its own, measured with throw-away probes (and read in its sources,
``qemu/accel/tcg/cpu-exec.c`` and ``qemu/target/riscv/unicorn.c`` at tag 2.1.4):

- No exception or interrupt is ever delivered through ``mtvec``: ``riscv_cpu_do_interrupt`` is
  never called, and ``mcause``/``mepc``/``mtval``/``mstatus`` are left untouched. Every trap entry
  below is done by Python; ``mret`` runs natively and is architecturally right (MIE <- MPIE,
  MPIE <- 1, MPP <- U, privilege <- old MPP, pc <- mepc).
- ECALL and illegal instructions (including CSRs QEMU does not implement, e.g. ``time`` and the
  C3's 0x7E2) fire ``UC_HOOK_INTR`` with the QEMU exception number (ECALL always 8 = U-ECALL,
  illegal 2). Before the hook runs, unicorn adds **4 to the pc, whatever the instruction length**
  (also after a 16-bit illegal instruction), so the faulting pc is ``pc - 4``. Writing the pc in
  the hook continues execution there inside the same ``emu_start``.
- EBREAK / C.EBREAK fire ``UC_HOOK_INSN_INVALID`` (pc at the instruction) and end ``emu_start`` with
  ``UC_ERR_EXCEPTION`` even when the hook handles them; without the hook: ``UC_ERR_INSN_INVALID``.
- Loads, stores and fetches at unmapped addresses fire ``UC_HOOK_MEM_UNMAPPED`` (access 19/20/21,
  pc exact: the load/store itself, or the fetch target) and end ``emu_start`` with
  ``UC_ERR_{READ,WRITE,FETCH}_UNMAPPED``. Misaligned loads and stores do not trap (QEMU performs
  them); misaligned fetches cannot happen with the C extension.
- WFI makes ``emu_start`` return with pc = WFI + 4 (no hook, no error); WFI is always 32-bit
  (0x10500073), so a slice that ended with that word at pc - 4 ended in WFI.
- ``emu_stop()`` called inside an MMIO *write* callback leaves pc **at the store** although the
  write has happened: resuming from that pc writes again (a duplicated UART byte). Inside a read
  callback the load is likewise re-executed (the device is read twice). This core therefore steps
  over the store when it stopped itself from a write (pc read in the callback is exact while
  ``count`` is set). Any model calling ``emu_stop`` from a write callback must do the same.
- Below M-mode (priv 0/1), reading a machine CSR through ``uc_reg_read`` fails silently and
  leaves the output untouched by the CSR (measured: ``reg_read(MSTATUS)`` in U-mode returns a
  different garbage value from run to run), and ``uc_reg_write`` of one is dropped: QEMU's CSR
  privilege check applies to unicorn's register API. This core therefore reads the trap state
  at M privilege (``RiscV.read`` in C: raise, read, put back) and raises the privilege to M
  *before* writing the trap CSRs.
- ``mip`` is not writable from outside (``reg_write(MIP)`` is masked to nothing), so ``mip`` is
  a Python shadow driven by ``set_input`` and QEMU never takes an interrupt itself; a firmware
  ``csrr mip`` reads 0 (deviation). ``mtvec`` keeps MODE 0/1 and ignores writes with MODE >= 2.
  ``UC_RISCV_REG_PRIV`` reads and writes the privilege level (3 = M).
- ``cycle``/``mcycle``/``instret``/``minstret`` (and the ``h`` halves) read the *host* tick counter,
  which is not deterministic. At reset this core scans the loaded memories for instructions that
  read them and puts a one-address ``UC_HOOK_CODE`` on each; writing the pc inside a code hook
  skips the instruction (measured), so the hook returns the core's own cycle count instead (as of
  the slice start; instret = cycles under 1 instruction = 1 cycle). Code that appears in RAM
  after reset is not scanned, and CSR *writes* to the counters are not intercepted.
- Costs: ``reg_read``/``reg_write`` of a CSR about 2.8 / 3.1 us each through the Python binding,
  1.5 us through raw ctypes ``uc_reg_read``, 2.9 us for five registers with ``uc_reg_read_batch``
  (measured before the register side moved to C, where a call costs well under 1 us).
  Caution: ``uc_reg_write_batch`` does not set ``skip_sync_pc_on_exit`` as
  ``uc_reg_write`` does, so a pc written by the batch call inside a code hook is lost when the
  translation block exits (uc.c at 2.1.4; measured): the pc is always written on its own inside
  a hook (between slices it goes in the batch). Register calls go through ``RiscV.rd``/``wr``
  (C, no ctypes); the registers read at the end of a slice (mie, priv,
  mstatus, pc, mtvec) serve the next wake-up test and interrupt entry. A whole 1 kHz tick of
  idle.elf (entry, ISR with three CLINT writes, ``mret``, WFI, two scheduler steps) costs about
  30 us of CPU time, so 1 s of idle virtual time takes about 0.03 s. The counter scan at reset reads every
  memory once (about 50 ms for the 8 MiB IROM).
- **Any** ``UC_HOOK_CODE`` hook, even on one address that never executes, slows everything down
  while slices use ``count=`` (unicorn then walks the code-hook list on every instruction):
  busy.elf measured 109 MIPS with none, 54 with 1, 38 with 10, 13 with 30. Firmware that reads
  cycle/instret pays this (use the C3's CSR 0x7E2 or ``mtime`` instead); ``counter_sites`` lists
  the reads found.
- WFI detection reads the word before the stop pc once per pc and caches it (cleared at reset):
  code is assumed not to change under a pc that already ended a slice.

What this module adds: trap entry for interrupts (MEI 11 > MSI 3 > MTI 7, at slice boundaries and
on WFI wake-up; direct and vectored ``mtvec``), for ECALL (cause 8 + privilege, i.e. 11 from M),
illegal instruction (2, mtval = the instruction bits), EBREAK (3, mtval = pc) and access faults
(1 fetch / 5 load / 7 store, mtval = address). ECALL and illegal instructions continue in the
same slice; EBREAK and access faults end it (charged in full, as a WFI). ``csrr`` of
``time``/``timeh`` returns the CLINT's ``mtime`` (``time_source``), and of the C3 cycle counter
CSR 0x7E2 (``mpccr``) this core's cycle count, both as of the slice start; writes to them stay
illegal.
Interrupt latency (all paths exact to the instruction, except the first):
- raised by an event (CLINT tick, PLIC from a UART): taken at the slice boundary at the event's
  time (the scheduler ends every slice at the next event), or at once from WFI;
- raised by the firmware's own MMIO write (msip, a past mtimecmp, PLIC enable...): that write
  stops the slice (``emu_stop``) and it is taken right after the store;
- unmasked by the firmware (CSR write to mstatus/mie, or ``mret`` restoring MIE while still
  pending): by default at the next slice boundary (at most one quantum later) or at the next WFI,
  which is a legal (if late) interrupt latency. With ``exact_unmask=True`` a one-address code hook
  on each such instruction (found by the same scan at reset) executes it in Python and takes the
  interrupt right after it when something is pending and now takeable; otherwise QEMU runs it.
  It is off by default because of the cost of code hooks below.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from unicorn import (
    UC_ARCH_RISCV,
    UC_ERR_EXCEPTION,
    UC_HOOK_CODE,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_UNMAPPED,
    UC_MODE_RISCV32,
    Uc,
    UcError,
)
from unicorn import riscv_const as rv

from duohil.errors import EngineError
from ... import native
from ..cpu import CpuCore
from ...kernel.limits import HANG_PC_SPAN, HANG_PS

if TYPE_CHECKING:  # pragma: no cover
    import mmap

    from ...kernel.machine import Machine

# mstatus / mip bits
MSTATUS_MIE = 1 << 3
MSTATUS_MPIE = 1 << 7
MSTATUS_MPP = 3 << 11
IRQ_MSI, IRQ_MTI, IRQ_MEI = 3, 7, 11
# which interrupt is taken (MEI > MSI > MTI, then platform causes >= 16 highest first) and when:
# native/riscv.c (dh_rv_pick_cause, dh_rv_takeable), applied by _core.c's RiscV.take_interrupts
MCAUSE_INTERRUPT = 0x8000_0000

# exception causes
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL = 2
CAUSE_BREAKPOINT = 3
CAUSE_LOAD_ACCESS = 5
CAUSE_STORE_ACCESS = 7
CAUSE_ECALL_U = 8                                    # + privilege: 11 = ECALL from M
#: fetch faults from unmapped memory between two flushes of unicorn's translation cache
FLUSH_TB_EVERY = 1024
#: synchronous exceptions recorded as ``cpu_trap`` events (ECALL is a call, not a fault)
TRAP_NAMES = {0: "instruction address misaligned", CAUSE_FETCH_ACCESS: "instruction access fault",
              CAUSE_ILLEGAL: "illegal instruction", CAUSE_BREAKPOINT: "breakpoint",
              4: "load address misaligned", CAUSE_LOAD_ACCESS: "load access fault",
              6: "store/AMO address misaligned", CAUSE_STORE_ACCESS: "store/AMO access fault"}

# QEMU exception numbers seen in UC_HOOK_INTR (they equal the RISC-V cause codes)
QEMU_EXCP_ILLEGAL = 2
QEMU_EXCP_U_ECALL = 8


WFI = 0x1050_0073
MRET = 0x3020_0073
CSR_MSTATUS, CSR_MIE = 0x300, 0x304
CSR_TIME, CSR_TIMEH, CSR_C3_PCCR = 0xC01, 0xC81, 0x7E2
PRIV_M = 3
# cycle/instret (user and machine, low and high halves): QEMU returns host ticks for these
COUNTER_CSRS = frozenset({0xB00, 0xB02, 0xB80, 0xB82, 0xC00, 0xC02, 0xC80, 0xC82})
_UNTIL = 0xFFFF_FFFF          # odd, so never a pc: slices end by count, WFI or a stop


def _counter_read(insn: int) -> int | None:
    """The counter CSR that ``insn`` only reads (csrrs/csrrc rd, csr, x0 or the immediate forms
    with 0), else None."""
    if insn & 0x7F != 0x73 or (insn >> 15) & 0x1F or ((insn >> 12) & 7) not in (2, 3, 6, 7):
        return None
    csr = insn >> 20
    return csr if csr in COUNTER_CSRS else None


def _unmask_csr(insn: int) -> int | None:
    """mstatus (0x300) or mie (0x304) if ``insn`` is a CSR instruction that may write it."""
    funct3 = (insn >> 12) & 7
    if insn & 0x7F != 0x73 or funct3 in (0, 4):
        return None
    csr = insn >> 20
    if csr not in (CSR_MSTATUS, CSR_MIE):
        return None
    if funct3 in (2, 3, 6, 7) and not (insn >> 15) & 0x1F:
        return None                                    # csrr: a read only
    return csr


def _system_words(data: "bytes | mmap.mmap") -> list[tuple[int, int]]:
    """(offset, word) of every SYSTEM opcode site in ``data``: an even offset whose byte is a
    SYSTEM opcode byte (0x73 / 0xF3) with a whole word after it. ``data.find`` is C speed, and an
    mmap (the memory itself, Machine.memory_store) is scanned without a copy: reading the peer's
    9.5 MiB of memories through unicorn for this cost ~20 ms per reset."""
    out = []
    size = len(data)
    for first in (b"\x73", b"\xf3"):
        i = data.find(first)
        while i != -1:
            if not i & 1 and i + 4 <= size:
                out.append(i)
            i = data.find(first, i + 1)
    out.sort()
    return [(o, int.from_bytes(data[o:o + 4], "little")) for o in out]


def _store_size(insn: int) -> int:
    """Length of ``insn`` if it is a store (SB/SH/SW, C.SW, C.SWSP), else 0."""
    if insn & 3 == 3:
        return 4 if insn & 0x7F == 0x23 else 0
    funct3 = (insn >> 13) & 7
    if funct3 == 6 and insn & 3 in (0, 2):          # C.SW (quadrant 0), C.SWSP (quadrant 2)
        return 2
    return 0


def _rv_state() -> type:
    """``_core.RiscVState``: mip, interrupts_taken, _stop_pc, _next_pc, _ebreak_taken,
    _state_cache, _bus_fault and last_trap as C fields the native core reads without a dict
    lookup."""
    core = native.core()
    return core.RiscVState if core is not None else object


class RiscV32Cpu(CpuCore, _rv_state()):  # type: ignore[misc]
    arch = "rv32"

    def __init__(self, machine: Machine, name: str, hz: int, reset_pc: int = 0,
                 exact_unmask: bool = False) -> None:
        self.reset_pc = reset_pc
        #: hook mstatus/mie writes and mret so an interrupt they unmask is taken right after them
        #: (costly: see the module docstring); off, it is taken at the next slice boundary / WFI
        self.exact_unmask = exact_unmask
        self.mip = 0                    # shadow of the external mip bits (MSIP/MTIP/MEIP...)
        #: callable returning the CLINT's mtime for ``csrr time`` (set by clint.py)
        self.time_source: Callable[[], int] | None = None
        self._fault: tuple[int, int, int] | None = None     # (cause, epc, tval) from a hook
        self._bus_fault: tuple[int, int, int] | None = None  # the same, from an MMIO hole
        self._ebreak_taken = False
        self._stop_pc: int | None = None    # pc of the store whose MMIO write stopped the slice
        self._counter_hooks: list[int] = []
        self.counter_sites: list[int] = []   # addresses of counter-CSR reads found at reset
        self.unmask_sites: list[int] = []    # addresses of mstatus/mie writes and mret
        self.interrupts_taken = 0
        self.exceptions_taken = 0
        self.last_trap: tuple[int, int, int] | None = None  # (mcause, mepc, mtval)
        super().__init__(machine, name, hz)
        self.hook_unmapped(self._on_unmapped)     # [vtlb] bounded to where no memory is

    # -- unicorn ---------------------------------------------------------------------------------
    def _create_uc(self) -> Uc:
        uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
        uc.ctl_set_cpu_model(rv.UC_CPU_RISCV32_SIFIVE_E31)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_insn_invalid)
        #: the pc the next slice starts at, when known without reading it (None: read it)
        self._next_pc: int | None = None
        #: [mie, priv, mstatus, pc, mtvec] as read at the end of the last slice (None: read them);
        #: valid while nothing has run or been written since (interrupt_pending, take_interrupts)
        self._state_cache: list[int] | None = None
        #: register access and the trap-entry writes in C (native/riscv.c)
        rvc = self._rv = native.require().RiscV(uc._uch.value)
        self._rd, self._wr = rvc.rd, rvc.wr
        #: .read() -> [mie, priv, mstatus, pc, mtvec], the CSRs read at M privilege (below M,
        #: unicorn 2.1.4's register API reads machine CSRs as garbage: see the module docstring)
        self._trap_in = rvc
        # a slice and its end in C (RiscV.run_slice): the C slice driver calls cpu._run_slice
        rvc.bind_slice(self, uc)
        self._run_slice = rvc.run_slice                       # type: ignore[method-assign]
        # the WFI wake rule, asked around every step of a sleeping core: pending (mip) and enabled
        # in mie (mstatus.MIE does not matter there), mie from _state_cache while it holds
        self.interrupt_pending = rvc.interrupt_pending         # type: ignore[method-assign]
        self.set_input = rvc.set_input                         # type: ignore[method-assign]
        # interrupt entry between slices, asked by the C slice driver (~1 400 times per virtual
        # second of nominal traffic): in C, no Python runs for it (RiscV.take_interrupts, _core.c
        # [rvtake]: mip & mie, below M or mstatus.MIE; MEI > MSI > MTI then the highest platform
        # cause; _state_cache read and kept; interrupts_taken, _next_pc, last_trap as _enter_trap)
        self.take_interrupts = rvc.take_interrupts             # type: ignore[method-assign]
        return uc

    def reset(self) -> None:
        for r in range(rv.UC_RISCV_REG_X1, rv.UC_RISCV_REG_X31 + 1):
            self._wr(r, 0)
        for csr in (rv.UC_RISCV_REG_MSTATUS, rv.UC_RISCV_REG_MIE, rv.UC_RISCV_REG_MTVEC,
                    rv.UC_RISCV_REG_MEPC, rv.UC_RISCV_REG_MCAUSE, rv.UC_RISCV_REG_MTVAL):
            self._wr(csr, 0)
        self._wr(rv.UC_RISCV_REG_PRIV, PRIV_M)
        self._wr(rv.UC_RISCV_REG_PC, self.reset_pc)
        self._next_pc = None
        self._state_cache = None
        self.sleeping = False
        self.halted = False                  # a reset ends a stop (storm) as it does on the M7
        self.halt_reason = None
        self.unpark()
        self._rv.forget()          # the regions and the WFI answers by pc are found again
        self._fault = None
        self._ebreak_taken = False
        self._bus_fault = None
        self._fetch_faults = 0
        self._flush_tb = False
        self._stop_pc = None
        self._hang_reset()
        self._hook_counter_reads()

    def _hook_counter_reads(self) -> None:
        """Scan the loaded memories (at reset) for two kinds of SYSTEM instructions and put a
        one-address code hook on each: reads of cycle/instret (made deterministic, see
        ``_on_counter_read``) and writes that can unmask a pending interrupt (CSR writes to
        mstatus/mie, ``mret``; see ``_on_unmask``)."""
        uc = self.uc
        for h in self._counter_hooks:
            uc.hook_del(h)
        self._counter_hooks = []
        self.counter_sites = []
        self.unmask_sites = []
        aliases: dict[tuple[str, int], list[int]] = {}
        for name, base, size in self.machine.memories:
            aliases.setdefault((name, size), []).append(base)
        for (_name, size), bases in aliases.items():
            for off, insn in _system_words(self.machine.memory_store(bases[0])):
                if _counter_read(insn) is not None:
                    fn, sites = self._on_counter_read, self.counter_sites
                elif self.exact_unmask and (insn == MRET or _unmask_csr(insn) is not None):
                    fn, sites = self._on_unmask, self.unmask_sites
                else:
                    continue
                for b in bases:
                    sites.append(b + off)
                    self._counter_hooks.append(uc.hook_add(UC_HOOK_CODE, fn, begin=b + off,
                                                           end=b + off))

    def _on_unmask(self, uc: Uc, address: int, _size: int, _data: object) -> None:
        """Before a CSR write to mstatus/mie or an ``mret``: if an interrupt is pending and the
        instruction would make it takeable, execute the instruction here and take the interrupt
        right after it (mepc = the next instruction, or mepc's target for mret), as hardware
        does. Otherwise (the usual case, and always when nothing is pending) QEMU runs it."""
        if not self.mip:
            return
        insn = int.from_bytes(uc.mem_read(address, 4), "little")
        mie, priv, mstatus, _pc, mtvec = self._trap_in.read()
        if insn == MRET:
            mpp = (mstatus & MSTATUS_MPP) >> 11
            new_mstatus = ((mstatus & ~(MSTATUS_MIE | MSTATUS_MPP))
                           | (MSTATUS_MIE if mstatus & MSTATUS_MPIE else 0) | MSTATUS_MPIE)
            if not self._takeable(self.mip & mie, mpp, new_mstatus):
                return
            epc = self._rd(rv.UC_RISCV_REG_MEPC)          # at M: mret runs in M-mode
            self._wr(rv.UC_RISCV_REG_MSTATUS, new_mstatus)
            if mpp != priv:
                self._wr(rv.UC_RISCV_REG_PRIV, mpp)
        else:
            csr = _unmask_csr(insn)
            if csr is None:                       # the code changed since reset
                return
            reg = rv.UC_RISCV_REG_MSTATUS if csr == CSR_MSTATUS else rv.UC_RISCV_REG_MIE
            old = mstatus if csr == CSR_MSTATUS else mie
            funct3, src = (insn >> 12) & 7, (insn >> 15) & 0x1F
            if funct3 < 4:
                src = self._rd(rv.UC_RISCV_REG_X0 + src) if src else 0
            new = {1: src, 2: old | src, 3: old & ~src}[funct3 & 3]
            if csr == CSR_MSTATUS:
                will = self._takeable(self.mip & mie, priv, new)
            else:
                will = self._takeable(self.mip & new, priv, mstatus)
            if not will:
                return
            rd = (insn >> 7) & 0x1F
            self._wr(reg, new)
            if rd:
                self._wr(rv.UC_RISCV_REG_X0 + rd, old)
            epc = address + 4
        mie, priv, mstatus, _pc, mtvec = self._trap_in.read()      # as QEMU stored them
        # the interrupt entry take_interrupts does (C, the one copy): cause, counters, last_trap
        self._rv.enter_interrupt(self.mip & mie, epc, priv, mstatus, mtvec)

    @staticmethod
    def _takeable(pending: int, priv: int, mstatus: int) -> bool:
        return bool(pending) and (priv < PRIV_M or bool(mstatus & MSTATUS_MIE))

    def _on_counter_read(self, uc: Uc, address: int, _size: int, _data: object) -> None:
        insn = int.from_bytes(uc.mem_read(address, 4), "little")
        csr = _counter_read(insn)
        if csr is None:                       # the code changed since reset: let QEMU run it
            return
        value = self.cycles_at(self.machine.now()) >> (32 if csr & 0x080 else 0)
        rd = (insn >> 7) & 0x1F
        if rd:
            self._wr(rv.UC_RISCV_REG_X0 + rd, value)
        self._wr(rv.UC_RISCV_REG_PC, address + 4)          # skip it (continues in this slice)

    # -- interrupt inputs (CLINT MSIP/MTIP -> 3/7, PLIC context 0 -> 11) --------------------------
    # set_input(line, level) is RiscV.set_input (native/_core.c, bound in _create_uc): the mip
    # shadow bit; a line raised by the firmware's own MMIO write that could be taken at once
    # (enabled in mie, below M or mstatus.MIE) stops the slice right after that instruction
    # (_stop_pc = its pc, exact under count=; emu_stop) unless a stop is already pending.

    def _enter_trap(self, cause: int, epc: int, tval: int,
                    state: tuple[int, int, int] | None = None) -> None:
        """Trap entry: mepc/mcause/mtval, MPIE <- MIE, MIE <- 0, MPP <- privilege, M-mode, pc <-
        mtvec base (+ 4 * cause for interrupts in vectored mode); the synchronous traps' path
        (interrupts are entered by RiscV.take_interrupts / enter_interrupt, in C, with the same
        writes and fields and no event-log record). ``state``: (priv, mstatus,
        mtvec) already read. The writes are one C call (``RiscV.enter``): below M the privilege is
        raised first (the CSR writes would be dropped), and inside a hook the pc is written on its
        own (``uc_reg_write_batch`` does not set skip_sync_pc_on_exit)."""
        if state is None:
            _mie, priv, mstatus, _pc, mtvec = self._rv.read()
        else:
            priv, mstatus, mtvec = state
        epc &= 0xFFFF_FFFE
        tval &= 0xFFFF_FFFF
        self._state_cache = None
        in_hook = self.executing or priv != PRIV_M
        target = self._rv.enter(cause, epc, tval, priv, mstatus, mtvec, in_hook)
        self._next_pc = None if in_hook else target
        self.last_trap = (cause, epc, tval)
        if not cause & MCAUSE_INTERRUPT and cause in TRAP_NAMES:
            self.machine.record("cpu_trap", cpu=self.name, cause=cause, what=TRAP_NAMES[cause],
                                mepc=epc, mtval=tval)

    # -- synchronous exceptions ---------------------------------------------------------------------
    def _on_intr(self, uc: Uc, intno: int, _data: object) -> None:
        epc = (self._rd(rv.UC_RISCV_REG_PC) - 4) & 0xFFFF_FFFF     # unicorn added 4 (see above)
        if intno == QEMU_EXCP_U_ECALL:
            cause, tval = CAUSE_ECALL_U + self._rd(rv.UC_RISCV_REG_PRIV), 0
        elif intno == QEMU_EXCP_ILLEGAL:
            insn = self._insn_at(epc)
            if self._emulate_csr_read(insn, epc):
                return
            cause, tval = CAUSE_ILLEGAL, insn
        else:
            cause, tval = intno, 0
        self.exceptions_taken += 1
        self._enter_trap(cause, epc, tval)

    def _on_insn_invalid(self, uc: Uc, _data: object) -> bool:
        pc = self._rd(rv.UC_RISCV_REG_PC)
        insn = self._insn_at(pc)
        if insn in (0x0010_0073, 0x9002):               # EBREAK, C.EBREAK
            self.exceptions_taken += 1
            self._enter_trap(CAUSE_BREAKPOINT, pc, pc)
            self._ebreak_taken = True                    # emu_start still reports UC_ERR_EXCEPTION
            return True
        self._fault = (CAUSE_ILLEGAL, pc, insn)
        return False

    def _on_unmapped(self, uc: Uc, access: int, address: int, _size: int, _value: int,
                     _data: object) -> bool:
        m = self.machine
        if access == UC_MEM_FETCH_UNMAPPED:
            m.unmapped_access(address, "fetch", pc=address)
            self._fault = (CAUSE_FETCH_ACCESS, address, address)
            self._fetch_faults += 1
            if self._fetch_faults % FLUSH_TB_EVERY == 0:
                self._flush_tb = True
            return False
        kind = "read" if access == UC_MEM_READ_UNMAPPED else "write"
        if m.unmapped_mode == "warn" and m.map_hole(address):
            return True              # retried: the access reaches bus_read/bus_write as a hole
        pc = self._rd(rv.UC_RISCV_REG_PC)
        m.unmapped_access(address, kind, pc=pc)
        cause = CAUSE_LOAD_ACCESS if kind == "read" else CAUSE_STORE_ACCESS
        self._fault = (cause, pc, address)
        return False

    def bus_error(self, address: int, access: str) -> None:
        """A bus error on an MMIO access inside a slice (machine.py: a hole in ``fault`` mode):
        a load/store access fault at the accessing instruction, taken when the slice stops."""
        cause = CAUSE_LOAD_ACCESS if access == "read" else CAUSE_STORE_ACCESS
        self._bus_fault = (cause, self._rd(rv.UC_RISCV_REG_PC), address)
        self.uc.emu_stop()

    def _insn_at(self, pc: int) -> int:
        try:
            lo = int.from_bytes(self.uc.mem_read(pc, 2), "little")
            if lo & 3 != 3:
                return lo
            return int.from_bytes(self.uc.mem_read(pc, 4), "little")
        except UcError:
            return 0

    def _emulate_csr_read(self, insn: int, epc: int) -> bool:
        """``csrr rd, time/timeh/0x7E2``: read-only counters QEMU leaves unimplemented here."""
        if insn & 0x7F != 0x73:
            return False
        funct3 = (insn >> 12) & 7
        rs1 = (insn >> 15) & 0x1F
        csr = insn >> 20
        if funct3 not in (2, 3, 6, 7) or rs1 != 0:      # only reads (CSRRS/CSRRC with x0/0)
            return False
        if csr in (CSR_TIME, CSR_TIMEH):
            if self.time_source is None:
                return False
            value = self.time_source() >> (32 if csr == CSR_TIMEH else 0)
        elif csr == CSR_C3_PCCR:
            value = self.cycles_at(self.machine.now())
        else:
            return False
        rd = (insn >> 7) & 0x1F
        if rd:
            self._wr(rv.UC_RISCV_REG_X0 + rd, value & 0xFFFF_FFFF)
        self._wr(rv.UC_RISCV_REG_PC, epc + 4)
        return True

    # -- running ------------------------------------------------------------------------------------
    # A slice is C: ``self._run_slice`` is ``RiscV.run_slice`` (native/_core.c, [m7slice]). In order:
    # - _stop_pc = None; pc = _next_pc (None: read); _next_pc, _state_cache = None;
    # - pc in no unicorn region (the regions as at the first slice after reset, _load_spans):
    #   _fetch_fault(pc) instead of emu_start. unicorn 2.1.4 keeps ~200 B of native memory per
    #   fetch from unmapped memory (measured: 200k emu_start calls at an unmapped pc grow RSS by
    #   ~40 MB; loads do not): a trap loop through an unmapped mtvec or a jump to 0 would grow
    #   without end. The fault is the same without asking unicorn;
    # - emu_start(pc, count); a unicorn error (or a UcError a hook raised): _slice_error, nothing
    #   more; any other exception a hook raised is raised again;
    # - _ebreak_taken = False; a bus fault from an MMIO hole: _slice_bus_fault, nothing more;
    # - _state_cache = [mie, priv, mstatus, pc, mtvec], _next_pc = pc; a slice stopped by an MMIO
    #   write at that very store (_stop_pc == pc): _step_over_store (emu_stop inside an MMIO write
    #   leaves pc *at* the store although the write is done; resuming there would write twice);
    # - WFI: the word before pc is WFI (remembered per pc until reset: static code) -> sleeping,
    #   and with mie = 0 _report_wfi_hang once; else in M-mode with mstatus.MIE clear and not
    #   parked -> _check_masked_spin(pc); else _hang_since = None.

    def _load_spans(self) -> None:
        self._rv.set_spans(sorted((b, e) for b, e, _perms in self.uc.mem_regions()))

    def _fetch_fault(self, pc: int) -> None:
        self.exceptions_taken += 1
        self._enter_trap(CAUSE_FETCH_ACCESS, pc, pc)

    def _slice_error(self, err: "int | UcError") -> None:
        exc = err if isinstance(err, UcError) else UcError(err)
        fault, self._fault = self._fault, None
        if self._flush_tb:
            # each fetch from unmapped memory leaves ~200 B of translation state in unicorn
            # 2.1.4 (measured, linear, no plateau) until the translation cache is flushed
            self._flush_tb = False
            self.uc.ctl_flush_tb()
        if fault is not None:
            self.exceptions_taken += 1
            self._enter_trap(*fault)
            return
        if self._ebreak_taken and exc.errno == UC_ERR_EXCEPTION:
            self._ebreak_taken = False
            return
        raise EngineError(f"{self.machine.name}/{self.name}: unicorn stopped with {exc} at "
                          f"pc={self._rd(rv.UC_RISCV_REG_PC):#010x}") from None

    def _slice_bus_fault(self) -> None:
        """A hole in `fault` mode (bus_error) ended the slice."""
        bus_fault, self._bus_fault = self._bus_fault, None
        self._stop_pc = None
        self.exceptions_taken += 1
        self._enter_trap(*bus_fault)

    def _step_over_store(self, pc: int) -> bool:
        size = _store_size(self._insn_at(pc))
        if not size:
            return False
        self._wr(rv.UC_RISCV_REG_PC, pc + size)
        self._next_pc = pc + size
        self._state_cache = None
        return True

    def _report_wfi_hang(self, pc: int) -> None:
        self._hung_reported = True
        self.machine.record("cpu_hung", cpu=self.name, pc=pc - 4,
                            reason="asleep in WFI with no interrupt enabled (mie = 0): "
                                   "nothing can wake it")

    # -- hangs (limits.py) ------------------------------------------------------------------------
    #: virtual time a masked spin must last to be a hang (limits.HANG_PS; engine option hang_ms)
    hang_ps = HANG_PS

    def _hang_reset(self) -> None:
        self._hang_since: int | None = None
        self._hang_pc = 0
        self._hang_reads = 0
        # machine.mmio_writes when the spin was noted: a bus write and a state-changing read (the
        # UART's FIFO pop, counted there by the C model) both move it
        self._hang_writes = -1
        self._hang_regs: list[int] | None = None
        self._hung_reported = False

    def _regs(self) -> list[int]:
        rd = self._rd
        return [rd(r) for r in range(rv.UC_RISCV_REG_X1, rv.UC_RISCV_REG_X31 + 1)]

    def _check_masked_spin(self, pc: int) -> None:
        """After a slice that ended in M-mode with mstatus.MIE clear: the same test as the M7's
        (no peripheral read or write, pc within HANG_PC_SPAN, for hang_ps), and the registers
        x1..x31 unchanged over that time: MIE is clear from reset, so a delay loop that counts
        (or any loop that computes) is not a hang, only one that can never leave. The registers
        are read once the conditions held for a whole slice (a polling loop never gets there)."""
        reads = self.machine.mmio_reads
        t = self.slice_start_ps
        writes = self.machine.mmio_writes
        if self._hang_since is None or writes != self._hang_writes \
                or reads != self._hang_reads or abs(pc - self._hang_pc) > HANG_PC_SPAN:
            self._hang_since, self._hang_pc, self._hang_reads = t, pc, reads
            self._hang_writes = writes
            self._hang_regs = None
            return
        if self._hang_regs is None:
            self._hang_since, self._hang_regs = t, self._regs()
            return
        if t - self._hang_since < self.hang_ps:
            return
        regs = self._regs()
        if regs != self._hang_regs:        # it computes: a new window from these registers
            self._hang_since, self._hang_regs = t, regs
            return
        self._hang_since = None
        self._hang_regs = None
        self.machine.record("cpu_hung", cpu=self.name, pc=pc,
                            reason=f"spinning with interrupts masked (mstatus.MIE = 0) and no "
                                   f"peripheral access for {self.hang_ps // 1_000_000_000} ms")
        self.halt_for("hung: spinning with interrupts masked", {"pc": pc})

    # -- convenience for tests and the harness -----------------------------------------------------
    def registers_changed(self) -> None:
        """Call after writing registers/CSRs through ``self.uc`` between slices: the copies read
        at the end of the last slice (pc, mie, mstatus...) are then read again."""
        self._next_pc = None
        self._state_cache = None

    @property
    def pc(self) -> int:
        return self._rd(rv.UC_RISCV_REG_PC)

    def csr(self, name: str) -> int:
        """Read a machine CSR by name (``"mcause"``, ``"mepc"``...)."""
        return self._rd(getattr(rv, f"UC_RISCV_REG_{name.upper()}"))
