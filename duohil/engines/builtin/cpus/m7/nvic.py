"""Cortex-M7 system control space (0xE000_E000-0xE000_EFFF): NVIC, SysTick, SCB, MPU, cache ops.

Renode type ``IRQControllers.NVIC``. One model for the whole SCS, because the blocks share state
(ICSR shows SysTick/PendSV pending bits, SHPR feeds the same priority table as the NVIC IPRs, the
MPU CTRL register sits in the SCB page). Names follow the ARMv7-M ARM and ``core_cm7.h``.

Exception state is kept by exception number (0..15 system, 16+n for IRQn) in C (native/nvic.c,
``_core.Nvic``: bitmaps of 8 words, the one copy), seen from Python as ints used as bit sets:
``pending``, ``active``, ``enabled``, ``level``; ``prio`` is the priority byte per exception (-3,
-2, -1 for Reset, NMI, HardFault), ``stack`` the active exceptions innermost last. Entry and
return are done by the core (cortexm.py, mostly in C), which asks for ``best_pending()`` (lowest
priority byte, ties to the lowest number; its group priority) and ``execution_priority()``
(ARMv7-M ExecutionPriority: active group priorities, BASEPRI, PRIMASK, FAULTMASK; 256 = none) and
calls ``activate``/``deactivate`` (a line still high pends again). The SCS registers, the MPU,
CFSR/HFSR/MMFAR/BFAR stay Python here. SysTick is C, one copy (native/systick.c,
``_core.SysTick``, the ``_st`` object): its four registers, the counter, COUNTFLAG, the reload
rules and the wrap event; specified by tests/test_native_systick.py.

Facts and choices:
  - 4 priority bits (``priorityMask`` 0xF0): IPR/SHPR keep bits [7:4]; BASEPRI compares its group
    priority; AIRCR.PRIGROUP splits group/sub priority as in the ARM ARM (ExecutionPriority).
  - External IRQ inputs are level sensitive: high -> pending; at exception return a line that is
    still high pends again; ICPR on a high line re-pends at once (as on silicon).
  - Software pends (ISPR, STIR, ICSR.PENDSVSET/PENDSTSET/NMIPENDSET, an ISER write enabling a
    pending IRQ, a peripheral raising its line during an MMIO access) that can preempt right now
    stop the running slice (``CortexM7Cpu.kick``), so the exception is taken right after the
    instruction that caused it (virtual time: the slice is still charged in full).
  - SysTick counts the core clock (CLKSOURCE=1: the clock the RCC model pushed with
    ``set_core_clock``, else ``systickFrequency``, else the CPU clock) or core/8
    (CLKSOURCE=0, unverified on the H743). The counter is computed from virtual time; the wrap that
    pends the exception is a scheduler event (only while ENABLE and TICKINT; wraps while SysTick
    is still pending are coalesced: no event until it is taken or unpended). COUNTFLAG is computed
    lazily, and a CTRL read that finds it clear gives the CPU a poll hint up to the next wrap.
    A rate change (CLKSOURCE, ``set_core_clock``) keeps the current value and counts on at the new
    rate. The CPU clock, when it is the source, is read once and kept until CLKSOURCE or the core
    clock changes (the RCC pushes clock changes with ``set_core_clock``).
    Simplifications: RVR = 0 stops the counter at its next wrap without COUNTFLAG or an exception;
    after an RVR write while counting, the wrap keeps its time but CVR reads (ticks to that wrap)
    mod (RVR+1) until it (the ARM ARM: the count goes on from its value).
  - AIRCR.SYSRESETREQ (with VECTKEY 0x05FA) -> ``machine.system_reset("sysresetreq")``.
  - CCR.DC/IC and the cache maintenance registers are forwarded to ``machine.cache``
    (docs/ENGINE_CONTRACT.md); the I-cache operations are accepted and ignored.
  - CCSIDR/CLIDR/CTR read the H743 values: D-cache 16 KiB 4-way 128 sets (0xF00FE019), I-cache
    16 KiB 2-way 256 sets (0xF01FE009; the M7's I-cache is 2-way), CLIDR 0x09000003,
    CTR 0x8303C003.
  - CPACR is storage only: unicorn executes FP instructions whatever CP10/CP11 say (no NOCP).
  - MPU: see ``Mpu`` below.
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Protocol

from ... import native
from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, RW, W1C, WO, Field, Register

if TYPE_CHECKING:  # pragma: no cover
    from ...kernel.machine import Machine


class CoreSide(Protocol):
    """What the NVIC needs of its core (cortexm.py's CortexM7Cpu attaches itself as ``cpu``):
    whether a slice is running, the core clock (SysTick's default source) and the kick that stops
    the slice so a pended exception is taken right after the accessing instruction. The core
    imports the NVIC, never the other way round."""

    executing: bool
    hz: int

    def kick(self) -> None: ...

# exception numbers
RESET, NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT = 1, 2, 3, 4, 5, 6
SVCALL, DEBUGMON, PENDSV, SYSTICK = 11, 12, 14, 15
IRQ0 = 16

# SHCSR
SHCSR_ACT = {0: MEMMANAGE, 1: BUSFAULT, 3: USAGEFAULT, 7: SVCALL, 8: DEBUGMON, 10: PENDSV,
             11: SYSTICK}
SHCSR_PENDED = {12: USAGEFAULT, 13: MEMMANAGE, 14: BUSFAULT, 15: SVCALL}
SHCSR_ENA = {16: MEMMANAGE, 17: BUSFAULT, 18: USAGEFAULT}

# CFSR bits (MMFSR | BFSR << 8 | UFSR << 16)
IACCVIOL, DACCVIOL, MUNSTKERR, MSTKERR, MLSPERR, MMARVALID = 1 << 0, 1 << 1, 1 << 3, 1 << 4, \
    1 << 5, 1 << 7
IBUSERR, PRECISERR, IMPRECISERR, UNSTKERR, STKERR, LSPERR, BFARVALID = 1 << 8, 1 << 9, 1 << 10, \
    1 << 11, 1 << 12, 1 << 13, 1 << 15
UNDEFINSTR, INVSTATE, INVPC, NOCP, UNALIGNED, DIVBYZERO = 1 << 16, 1 << 17, 1 << 18, 1 << 19, \
    1 << 24, 1 << 25
# HFSR
HFSR_VECTTBL, HFSR_FORCED, HFSR_DEBUGEVT = 1 << 1, 1 << 30, 1 << 31

CPUID_M7_R1P1 = 0x411FC271
SYST_CALIB = 0x4000_0000 | 4_799_999  # NOREF=0, SKEW=1, TENMS = 10 ms at 480 MHz (unverified)
SYST_CSR_FIELDS = (Field("ENABLE", 0), Field("TICKINT", 1), Field("CLKSOURCE", 2, reset=1),
                   Field("COUNTFLAG", 16, access=RO))
SYST_RVR_FIELDS = (Field("RELOAD", 0, 24),)
CCSIDR_DCACHE = 0xF00FE019          # WT|WB|RA|WA, 128 sets, 4 ways, 8 words per line
CCSIDR_ICACHE = 0xF01FE009          # 256 sets, 2 ways, 8 words per line
CLIDR_M7 = 0x09000003               # LoUU=1, LoC=1, level 1: separate I and D
CTR_M7 = 0x8303C003                 # format ARMv7, CWG/ERG 8 words, Dmin/Imin line 8 words
MVFR = (0x10110221, 0x12000011, 0x00000040)   # FPv5 double precision
VECTKEY = 0x05FA
SYSTEM_ALWAYS_ENABLED = (1 << NMI) | (1 << HARDFAULT) | (1 << SVCALL) | (1 << DEBUGMON) | \
    (1 << PENDSV) | (1 << SYSTICK)

# unicorn protection bits (UC_PROT_*)
P_R, P_W, P_X = 1, 2, 4
P_ALL = 7
#: privileged data permissions per RASR.AP (4 is reserved: no access)
AP_PERMS = {0: 0, 1: P_R | P_W, 2: P_R | P_W, 3: P_R | P_W, 4: 0, 5: P_R, 6: P_R, 7: P_R}


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class Mpu:
    """ARMv7-M PMSA with ``regions`` regions, privileged view (the firmware runs privileged).

    ``attributes(addr)`` serves the D-cache model. Enforcement uses unicorn page protections:
    unicorn's target page on ARM is **1 KiB** (``UC_QUERY_PAGE_SIZE``). Pages entirely inside a
    region with less than full access get that region's rights (AP: none / read-only; XN: no
    fetch); an access there stops the slice with a precise ``*_PROT`` error, which the core turns
    into MemManage. A page only *partly* restricted (a 32..512-byte guard region, subregions)
    keeps full rights in unicorn; the restricted bytes get a ``UC_HOOK_MEM_READ|WRITE`` hook
    bounded to exactly that range (the core stops at the access, restores the bytes a store
    overwrote and raises a precise MemManage). Unicorn cannot let one access through a protected
    page: returning True from a ``*_PROT`` hook drops a store and leaves the page readable in the
    TLB (measured), hence the hooks. Any memory hook moves every load/store onto unicorn's slow
    path while it exists (cost measured in tests/test_cortexm.py), and so do page rights (the PROT
    hook over them). A page whose only restriction is XN (full access, XN=1: CubeH7's
    ``MPU_Config`` over its RAM) gets neither: the core's TLB fill refuses fetches there
    (``cpu.set_xn_ranges``, native/vtlb.h), so its loads and stores stay inline. XN is enforced
    per 1 KiB page only (a sub-page XN region is not: code there still runs). Only RAM/flash
    (``machine.memories``) is enforced:
    peripherals and the PPB always behave as the default map. With CTRL.HFNMIENA=0, accesses at
    execution priority < 0 (HardFault, NMI, FAULTMASK) bypass the MPU, as on silicon. Unicorn's own
    ``mem_write`` (exception stacking) ignores page rights, so stacking into a no-access region is
    checked explicitly by the core (MSTKERR).
    """

    # MPU_CTRL and the bypass live in the NVIC's C object (the C entry and return read them)
    ctrl = native.c_attr("mpu_ctrl", "MPU_CTRL (ENABLE, HFNMIENA, PRIVDEFENA)", holder="_nvic_c")
    suspended = native.c_attr("mpu_suspended", "bypassed at priority < 0 until apply()",
                              holder="_nvic_c")

    def __init__(self, scs: "Nvic", regions: int = 16) -> None:
        self.scs = scs
        self._nvic_c = scs._c
        self.machine = scs.machine
        self.regions = regions
        self.ctrl = 0
        self.rnr = 0
        self.rbar = [0] * regions
        self.rasr = [0] * regions
        self._segments: list[tuple[int, int, int]] = []     # (start, end, perms), sorted, !=P_ALL
        self._starts: list[int] = []
        self._protected: dict[int, int] = {}                # page -> perms applied in unicorn
        self.partial_pages: set[int] = set()
        self.page = 1024
        self.changes = 0
        self.suspended = False

    def reset(self) -> None:
        self.ctrl = 0
        self.rnr = 0
        self.rbar = [0] * self.regions
        self.rasr = [0] * self.regions
        self.apply()

    # -- decoding -----------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.ctrl & 1)

    def _region(self, i: int) -> tuple[int, int, int, int] | None:
        """(base, size, rasr, srd) of an enabled region."""
        rasr = self.rasr[i]
        if not rasr & 1:
            return None
        size_f = (rasr >> 1) & 0x1F
        if size_f < 4:                      # sizes below 32 bytes are UNPREDICTABLE
            return None
        size = 1 << (size_f + 1)
        base = self.rbar[i] & ~(size - 1) & 0xFFFFFFE0
        srd = (rasr >> 8) & 0xFF if size >= 256 else 0
        return base, size, rasr, srd

    def region_at(self, addr: int) -> int | None:
        """Highest-numbered enabled region covering ``addr`` (subregions honoured)."""
        for i in range(self.regions - 1, -1, -1):
            r = self._region(i)
            if r is None:
                continue
            base, size, _rasr, srd = r
            if base <= addr < base + size:
                if srd and (srd >> ((addr - base) // (size >> 3))) & 1:
                    continue
                return i
        return None

    @staticmethod
    def _perms(rasr: int) -> int:
        p = AP_PERMS[(rasr >> 24) & 7]
        if p and not rasr & (1 << 28):
            p |= P_X
        return p

    @staticmethod
    def _cacheable(rasr: int) -> bool:
        tex, c, s = (rasr >> 19) & 7, (rasr >> 17) & 1, (rasr >> 18) & 1
        b = (rasr >> 16) & 1
        if tex & 4:
            inner = (c << 1) | b                 # 00 NC, 01 WBWA, 10 WT, 11 WB
            normal_cached = inner != 0
        elif tex == 1:
            normal_cached = bool(c and b)        # 001 1 1: WB RW-allocate; 001 0 0: NC
        elif tex == 0:
            normal_cached = bool(c)              # 000 1 x: WT / WB; 000 0 x: SO / device
        else:
            normal_cached = False
        # The M7 does not hold shareable normal memory in the D-cache by default (CACR.SIWT=0)
        return normal_cached and not s

    @staticmethod
    def default_cacheable(addr: int) -> bool:
        """ARMv7-M default memory map: code, SRAM and external RAM are normal cacheable memory."""
        return addr < 0x4000_0000 or 0x6000_0000 <= addr < 0xA000_0000

    def attributes(self, addr: int) -> tuple[bool, bool]:
        """(cacheable, access_ok) for a privileged data access to ``addr``."""
        if not self.enabled:
            return self.default_cacheable(addr), True
        i = self.region_at(addr)
        if i is None:
            if self.ctrl & 4:                    # PRIVDEFENA: background = default map
                return self.default_cacheable(addr), True
            return False, False
        rasr = self.rasr[i]
        return self._cacheable(rasr), AP_PERMS[(rasr >> 24) & 7] != 0

    def perms_at(self, addr: int) -> int:
        """Unicorn-style rights (R/W/X) of a privileged access to ``addr`` under the MPU."""
        i = bisect.bisect(self._starts, addr) - 1
        if i >= 0:
            s, e, p = self._segments[i]
            if addr < e:
                return p
        return P_ALL

    def denies(self, addr: int, size: int, need: int) -> bool:
        """True when some byte of [addr, addr+size) lacks one of the rights ``need``."""
        if not self._segments:
            return False
        i = max(0, bisect.bisect(self._starts, addr) - 1)
        end = addr + size
        while i < len(self._segments):
            s, e, p = self._segments[i]
            if s >= end:
                break
            if e > addr and (p & need) != need:
                return True
            i += 1
        return False

    # -- register side -----------------------------------------------------------------------------
    def write_rbar(self, value: int) -> None:
        if value & 0x10:                         # VALID: REGION field selects the region
            self.rnr = (value & 0xF) % self.regions
        self.rbar[self.rnr] = value & 0xFFFFFFE0
        self.changed()

    def write_rasr(self, value: int) -> None:
        self.rasr[self.rnr] = value & 0x173FFF3F
        self.changed()

    def write_ctrl(self, value: int) -> None:
        old = self.ctrl
        self.ctrl = value & 7
        if old != self.ctrl:
            self.changed(force=True)

    def changed(self, force: bool = False) -> None:
        self.changes += 1
        if self.enabled or force:
            self.apply()
        cache = getattr(self.machine, "cache", None)
        if cache is not None and (self.enabled or force):
            cache.mpu_changed()

    # -- enforcement --------------------------------------------------------------------------------
    def _compute_segments(self) -> list[tuple[int, int, int]]:
        if not self.enabled:
            return []
        regs = [r for r in (self._region(i) for i in range(self.regions))]
        cuts = {0, 1 << 32}
        for r in regs:
            if r is None:
                continue
            base, size, _rasr, srd = r
            cuts.add(base)
            cuts.add(min(base + size, 1 << 32))
            if srd:
                for k in range(1, 8):
                    cuts.add(base + k * (size >> 3))
        background = P_ALL if self.ctrl & 4 else 0
        points = sorted(cuts)
        segs: list[tuple[int, int, int]] = []
        for s, e in zip(points, points[1:]):
            p = background
            for i in range(self.regions - 1, -1, -1):
                r = regs[i]
                if r is None:
                    continue
                base, size, rasr, srd = r
                if base <= s < base + size:
                    if srd and (srd >> ((s - base) // (size >> 3))) & 1:
                        continue
                    p = self._perms(rasr)
                    break
            if p == P_ALL:
                continue
            if segs and segs[-1][1] == s and segs[-1][2] == p:
                segs[-1] = (segs[-1][0], e, p)
            else:
                segs.append((s, e, p))
        return segs

    def push_write_denied(self) -> None:
        """Hand the core's C entry (``CortexM.set_write_denied``) the ranges without write
        access, so that it decides ``denies(frame, size, P_W)`` itself: a copy of ``_segments``,
        refreshed wherever they are recomputed (here and in ``apply``)."""
        cm = getattr(self.machine.cpu, "_cm", None)
        if cm is not None:
            cm.set_write_denied([(s, e) for s, e, p in self._segments if not p & P_W])

    def suspend(self) -> None:
        """Lift every page right (MPU bypassed at priority < 0); ``apply`` restores them."""
        cpu = self.machine.cpu
        protect = getattr(cpu, "protect_pages", cpu.uc.mem_protect)
        for start, end, _p in _runs({pg: P_ALL for pg in self._protected}, self.page):
            protect(start, end - start, P_ALL)
        self._protected = {}
        set_xn = getattr(cpu, "set_xn_ranges", None)
        if set_xn is not None:
            set_xn([])
        self.suspended = True

    def apply(self) -> None:
        """Bring unicorn's page rights in line with the MPU (only RAM/flash pages)."""
        self.suspended = False
        cpu = self.machine.cpu
        self._segments = self._compute_segments()
        self._starts = [s for s, _e, _p in self._segments]
        if cpu is None:
            return
        self.push_write_denied()
        from unicorn import UC_QUERY_PAGE_SIZE
        page = self.page = cpu.uc.query(UC_QUERY_PAGE_SIZE)
        want: dict[int, int] = {}
        partial: set[int] = set()
        for _name, mbase, msize in self.machine.memories:
            mend = mbase + msize
            for s, e, p in self._segments:
                lo, hi = max(s, mbase), min(e, mend)
                if lo >= hi:
                    continue
                first, last = lo - lo % page, hi - 1 - (hi - 1) % page
                for pg in range(first, last + 1, page):
                    want[pg] = want.get(pg, P_ALL) & p
                    if pg < lo or pg + page > hi:
                        partial.add(pg)
        # pages split between several segments or with unrestricted parts stay "partial": they keep
        # full rights in unicorn and their restricted bytes are watched by ranged memory hooks
        for pg in partial.copy():
            if all(self.perms_at(a) == want[pg] for a in range(pg, pg + page, 32)):
                partial.discard(pg)
        guards: list[tuple[int, int]] = []
        for pg in partial:
            want.pop(pg, None)
        for s, e, p in self._segments:
            for pg in partial:
                lo, hi = max(s, pg), min(e, pg + page)
                if lo < hi and p & (P_R | P_W) != (P_R | P_W):
                    guards.append((lo, hi))
        # pages that only lose execute rights: the TLB fill refuses fetches there (no page rights,
        # no PROT hook: their stores stay inline); the others keep page rights and _on_prot
        set_xn = getattr(cpu, "set_xn_ranges", None)
        xn = sorted(pg for pg, p in want.items() if p == P_R | P_W) if set_xn is not None else []
        if set_xn is not None and set_xn([(s, e) for s, e, _p in _runs(dict.fromkeys(xn, 0), page)]):
            for pg in xn:
                del want[pg]
        changes: dict[int, int] = {}
        for pg, p in self._protected.items():
            if pg not in want:
                changes[pg] = P_ALL
        for pg, p in want.items():
            if self._protected.get(pg, P_ALL) != p:
                changes[pg] = p
        protect = getattr(cpu, "protect_pages", cpu.uc.mem_protect)
        for start, end, p in _runs(changes, page):
            protect(start, end - start, p)
        self._protected = {pg: p for pg, p in want.items() if p != P_ALL}
        set_prot = getattr(cpu, "set_prot_ranges", None)
        if set_prot is not None:                  # the rights hook over exactly these pages
            set_prot([(s, e) for s, e, _p in _runs(self._protected, page)])
        self.partial_pages = partial
        set_guards = getattr(cpu, "set_mpu_guards", None)
        if set_guards is not None:
            set_guards(sorted(set(guards)))


def _runs(pages: dict[int, int], page: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for pg in sorted(pages):
        p = pages[pg]
        if out and out[-1][1] == pg and out[-1][2] == p:
            out[-1] = (out[-1][0], pg + page, p)
        else:
            out.append((pg, pg + page, p))
    return out


class _PrioView:
    """``Nvic.prio``: the priority bytes as they are in C, indexed like a list."""
    __slots__ = ("_get", "_set", "_n")

    def __init__(self, c: Any, n: int) -> None:
        self._get, self._set, self._n = c.get_prio, c.set_prio, n

    def __getitem__(self, exc: int) -> int:
        if not 0 <= exc < self._n:
            raise IndexError(exc)
        return self._get(exc)

    def __setitem__(self, exc: int, p: int) -> None:
        if not 0 <= exc < self._n:
            raise IndexError(exc)
        self._set(exc, p)

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        return (self._get(n) for n in range(self._n))


def _st_view(attr: str, doc: str) -> property:
    """A read-only view of the C SysTick's state (``_core.SysTick``)."""
    return native.c_attr(attr, doc, holder="_st", writable=False)


class Nvic(Peripheral):
    renode_types = ("IRQControllers.NVIC",)
    default_size = 0x1000
    properties: dict[str, Any] = {"priorityMask": 0xF0, "systickFrequency": None,
                                  "numberOfInterrupts": 150, "size": None}
    VTOR_RESET = 0x0800_0000          # H743 boot address (BOOT_ADD0 = 0x0800)

    # The exception state is C (native/nvic.c, the ``_core.Nvic`` object ``_c``), its one copy;
    # the SCS registers below read and write it through these properties, and the core's hot
    # calls (best_pending, execution_priority, deactivate, any_pending, prio_of) go straight to C.
    pending = native.c_attr("pending", "pending exceptions (bit n)")
    enabled = native.c_attr("enabled", "enabled exceptions (bit n)")
    active = native.c_attr("active", "active exceptions (bit n)")
    level = native.c_attr("level", "IRQ input lines that are high (bit 16 + n)")
    group_mask = native.c_attr("group_mask", "AIRCR.PRIGROUP's group-priority bits")
    stack = native.c_attr("stack", "active exceptions, innermost last (a copy; assign to replace)")
    exceptions_taken = native.c_attr("exceptions_taken", "exception entries so far")
    vtor = native.c_attr("vtor", "SCB.VTOR, the vector table's address (read by the C entry)")
    cpu = native.c_attr("cpu", "the core this NVIC interrupts, None before the core attaches it "
                               "(read by a pend's kick in C)")
    _st_waiting = native.c_attr("st_waiting", "a wrap found SysTick still pending: no event until taken")

    def __init__(self, machine: "Machine", name: str, base: int | None = 0xE000E000,
                 size: int | None = None, props: dict[str, Any] | None = None) -> None:
        c = self._c = native.require().Nvic(0xF0)
        self.best_pending = c.best_pending                  # type: ignore[method-assign]
        self.execution_priority = c.execution_priority      # type: ignore[method-assign]
        self.deactivate = c.deactivate                      # type: ignore[method-assign]
        self.any_pending = c.any_pending                    # type: ignore[method-assign]
        self.prio_of = c.get_prio                           # type: ignore[method-assign]
        super().__init__(machine, name, base, size or 0x1000, props)
        self.cpu = None                 # a CoreSide once the core attaches this NVIC
        self.n_irq = int(self.props["numberOfInterrupts"])
        self.n_exc = IRQ0 + self.n_irq
        c.bind_inputs(self, self.n_irq)                     # C Signals raise IRQ lines in C
        self.prio_mask = int(self.props["priorityMask"]) & 0xFF
        self.mpu = Mpu(self, 16)
        machine.mpu = self.mpu
        if not hasattr(machine, "cache"):
            machine.cache = None
        self._irq_bits = ((1 << self.n_irq) - 1) << IRQ0
        self._st_setup()
        self._define()
        self._init_state()

    def _st_setup(self) -> None:
        """SysTick: the C model (``_core.SysTick``) bound to this SCS and the machine; SYST_*
        accesses reach it, the other SCS registers come back to this bank."""
        st = self._st = native.require().SysTick(self._c)
        freq = self.props.get("systickFrequency")
        st._bind(self, self.machine, self.name, self.base, int(freq) if freq else 0)
        st.set_fallback(self.regs.read, self.regs.write)
        self._st_name = f"{self.name}.systick"
        # the C methods themselves on the paths the core calls (cortexm.c's entry: _st_resume)
        self._st_resume = st.resume
        self._st_wrap = st._st_wrap
        self._st_hz = st.hz

    # -- state ------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        c = self._c
        level = c.level                     # the input lines are not part of the reset state
        c.prio_mask = self.prio_mask
        c.reset()                           # priorities 0 (Reset/NMI/HardFault -3/-2/-1), no stack
        c.level = level
        self.pending = level & self._irq_bits
        self.active = 0
        self.enabled = SYSTEM_ALWAYS_ENABLED
        self.prigroup = 0
        self.group_mask = 0xFE & self.prio_mask
        self.vtor = self.VTOR_RESET
        self.cfsr = 0
        self.hfsr = 0
        self.mmfar = 0
        self.bfar = 0
        self.shcsr_ena = 0
        self._st_init_state()
        self.exceptions_taken = 0

    def _st_init_state(self) -> None:
        """SysTick's part of the reset state: CSR = CLKSOURCE, RVR = CVR = 0, stopped, the wrap
        event cancelled (the pushed core clock is kept)."""
        self._st.reset()

    def reset(self) -> None:
        super().reset()
        self._init_state()
        self.mpu.reset()

    # -- priorities ---------------------------------------------------------------------------------
    def group(self, p: int) -> int:
        return p if p < 0 else p & self.group_mask

    def fault_enabled(self, exc: int) -> bool:
        """SHCSR.MEMFAULTENA/BUSFAULTENA/USGFAULTENA for exceptions 4/5/6 (others: True)."""
        return bool(self.enabled & (1 << exc))

    @property
    def prio(self) -> _PrioView:
        """The priority byte per exception (-3, -2, -1 for Reset, NMI, HardFault), as in C."""
        return _PrioView(self._c, self.n_exc)

    @prio.setter
    def prio(self, values: list[int]) -> None:
        for n, p in enumerate(values):
            self._c.set_prio(n, p)

    # -- the core's entry/return bookkeeping (deactivate is the C one: False if not active) -----
    def activate(self, exc: int) -> None:
        """``exc`` entered: not pending, active, on the stack, counted; SysTick's coalesced
        wraps resume when it is SysTick."""
        if self._c.activate(exc):
            self._st_resume()

    # -- pending ------------------------------------------------------------------------------------
    def set_pending(self, exc: int) -> None:
        """Pend ``exc``; a newly pending enabled exception stops the running slice if it can
        preempt (``CortexM7Cpu.kick``)."""
        if self._c.set_pending(exc):
            self._kick()

    def clear_pending(self, exc: int) -> None:
        """Unpend ``exc`` (a high IRQ line pends it again at once)."""
        if self._c.clear_pending(exc):
            self._st_resume()

    def _kick(self) -> None:
        """A new pend that may preempt: ``cpu.kick()`` when the CPU is executing (C, the rule
        the C Signals' path applies too: ``_core.Nvic.kick``)."""
        self._c.kick()

    @property
    def _native_input(self) -> Any:
        """ports.h's input capsule: a C Signal (``_core.Signal``) drives an IRQ line straight
        into the C state, as ``set_input`` does (``_core.Nvic.bind_inputs``)."""
        return self._c._native_input

    def set_input(self, line: int, level: bool) -> None:
        """IRQn's input line, set from Python (a user's own line, a test): its level; rising, it
        pends IRQn and kicks the core if that can preempt. One implementation with the C Signals'
        port (``_core.Nvic.set_input``)."""
        self._c.set_input(line, level)

    def pend_irq(self, irq: int) -> None:
        """Pend IRQn once (an edge, or a test poking the NVIC)."""
        self.set_pending(IRQ0 + irq)

    # -- registers -----------------------------------------------------------------------------------
    def _define(self) -> None:
        r = self.regs
        r.define(0x004, "ICTR", (self.n_irq + 31) // 32 - 1, access=RO)
        r.define(0x008, "ACTLR")
        self._define_systick()
        # NVIC arrays
        for i in range(8):
            r.define(0x100 + 4 * i, f"ISER{i}", on_write=self._arr_write(i, "iser"),
                     on_read=self._arr_read(i, "enabled"))
            r.define(0x180 + 4 * i, f"ICER{i}", on_write=self._arr_write(i, "icer"),
                     on_read=self._arr_read(i, "enabled"))
            r.define(0x200 + 4 * i, f"ISPR{i}", on_write=self._arr_write(i, "ispr"),
                     on_read=self._arr_read(i, "pending"))
            r.define(0x280 + 4 * i, f"ICPR{i}", on_write=self._arr_write(i, "icpr"),
                     on_read=self._arr_read(i, "pending"))
            r.define(0x300 + 4 * i, f"IABR{i}", access=RO, on_read=self._arr_read(i, "active"))
        for i in range((self.n_irq + 3) // 4):
            r.define(0x400 + 4 * i, f"IPR{i}", on_write=self._ipr_write(i))
        # SCB
        r.define(0xD00, "CPUID", CPUID_M7_R1P1, access=RO)
        r.define(0xD04, "ICSR", on_write=self._icsr_write, on_read=self._icsr_read)
        r.define(0xD08, "VTOR", self.VTOR_RESET, on_write=self._vtor_write,
                 on_read=lambda reg: self.vtor)
        r.define(0xD0C, "AIRCR", on_write=self._aircr_write, on_read=self._aircr_read)
        self._scr_reg = r.define(0xD10, "SCR", fields=[Field("SLEEPONEXIT", 1), Field("SLEEPDEEP", 2),
                                       Field("SEVONPEND", 4)])
        r.define(0xD14, "CCR", 0x0004_0200, on_write=self._ccr_write,
                 fields=[Field("NONBASETHRDENA", 0), Field("USERSETMPEND", 1),
                         Field("UNALIGN_TRP", 3), Field("DIV_0_TRP", 4), Field("BFHFNMIGN", 8),
                         Field("STKALIGN", 9, access=RO), Field("DC", 16), Field("IC", 17),
                         Field("BP", 18)])
        for i in range(3):
            r.define(0xD18 + 4 * i, f"SHPR{i + 1}", on_write=self._shpr_write(i))
        r.define(0xD24, "SHCSR", on_write=self._shcsr_write, on_read=self._shcsr_read)
        r.define(0xD28, "CFSR", on_write=self._cfsr_write, on_read=lambda reg: self.cfsr)
        r.define(0xD2C, "HFSR", on_write=self._hfsr_write, on_read=lambda reg: self.hfsr)
        r.define(0xD30, "DFSR", access=W1C)
        r.define(0xD34, "MMFAR", on_write=self._far_write("mmfar"), on_read=lambda reg: self.mmfar)
        r.define(0xD38, "BFAR", on_write=self._far_write("bfar"), on_read=lambda reg: self.bfar)
        r.define(0xD3C, "AFSR", access=W1C)
        for i, v in enumerate((0x30, 0x200, 0x100000, 0, 0x100000, 0x40000, 0, 0x01000000,
                               0x01101110, 0x02112000, 0x20232231, 0x01111131, 0x01310132)):
            r.define(0xD40 + 4 * i, f"ID_{i}", v, access=RO)    # ID_PFR0..ID_ISAR4 (M7 values)
        r.define(0xD78, "CLIDR", CLIDR_M7, access=RO)
        r.define(0xD7C, "CTR", CTR_M7, access=RO)
        r.define(0xD80, "CCSIDR", access=RO, on_read=self._ccsidr_read)
        r.define(0xD84, "CSSELR", fields=[Field("IND", 0), Field("LEVEL", 1, 3)])
        r.define(0xD88, "CPACR", fields=[Field("CP10", 20, 2), Field("CP11", 22, 2)])
        # MPU
        r.define(0xD90, "MPU_TYPE", self.mpu.regions << 8, access=RO)
        r.define(0xD94, "MPU_CTRL", on_write=lambda reg, old, v: self.mpu.write_ctrl(v),
                 on_read=lambda reg: self.mpu.ctrl)
        r.define(0xD98, "MPU_RNR", on_write=self._rnr_write, on_read=lambda reg: self.mpu.rnr)
        for k, off in enumerate((0xD9C, 0xDA4, 0xDAC, 0xDB4)):
            sfx = "" if k == 0 else f"_A{k}"
            r.define(off, "MPU_RBAR" + sfx, on_write=lambda reg, old, v: self.mpu.write_rbar(v),
                     on_read=lambda reg: self.mpu.rbar[self.mpu.rnr] | self.mpu.rnr)
            r.define(off + 4, "MPU_RASR" + sfx, on_write=lambda reg, old, v: self.mpu.write_rasr(v),
                     on_read=lambda reg: self.mpu.rasr[self.mpu.rnr])
        # debug (storage only: DEMCR.TRCENA is written by firmware enabling DWT)
        r.define(0xDF0, "DHCSR", access=RO)
        r.define(0xDFC, "DEMCR")
        r.define(0xF00, "STIR", access=WO, on_write=self._stir_write)
        r.define(0xF34, "FPCCR", 0xC000_0000)
        r.define(0xF38, "FPCAR")
        r.define(0xF3C, "FPDSCR")
        for i, v in enumerate(MVFR):
            r.define(0xF40 + 4 * i, f"MVFR{i}", v, access=RO)
        for off, name, op in ((0xF50, "ICIALLU", None), (0xF58, "ICIMVAU", None),
                              (0xF5C, "DCIMVAC", "invalidate"), (0xF60, "DCISW", "invalidate_all"),
                              (0xF64, "DCCMVAU", "clean"), (0xF68, "DCCMVAC", "clean"),
                              (0xF6C, "DCCSW", "clean_all"),
                              (0xF70, "DCCIMVAC", "clean_invalidate"),
                              (0xF74, "DCCISW", "clean_invalidate_all"), (0xF78, "BPIALL", None)):
            r.define(off, name, access=WO, on_write=self._cache_op(op))

    def _define_systick(self) -> None:
        r, st = self.regs, self._st
        # CALIB: NOREF=0, SKEW=1, TENMS = 10 ms at 480 MHz (the H743 value is unverified)
        self._csr_reg = r.add(_SysTickReg(r, 0x010, "SYST_CSR", st, 0, fields=SYST_CSR_FIELDS))
        self._rvr_reg = r.add(_SysTickReg(r, 0x014, "SYST_RVR", st, 1, fields=SYST_RVR_FIELDS))
        r.add(_SysTickReg(r, 0x018, "SYST_CVR", st, 2))
        r.add(_SysTickReg(r, 0x01C, "SYST_CALIB", st, 3, SYST_CALIB, access=RO))

    # NVIC arrays: state lives in the bit sets; the register's own value is kept at 0 so that the
    # bytes a narrow write does not touch read as 0 in ``on_write``.
    def _arr_read(self, i: int, attr: str):
        shift = IRQ0 + 32 * i

        def read(reg) -> int:
            return (getattr(self, attr) >> shift) & 0xFFFFFFFF & (self._irq_bits >> shift)
        return read

    def _arr_write(self, i: int, kind: str):
        shift = IRQ0 + 32 * i

        def write(reg, old: int, value: int) -> None:
            reg.value = 0
            bits = (value << shift) & self._irq_bits
            if not bits:
                return
            if kind == "iser":
                newly = bits & ~self.enabled
                self.enabled |= bits
                if newly & self.pending:
                    self._kick()
            elif kind == "icer":
                self.enabled &= ~bits
            elif kind == "ispr":
                for n in _bits(bits):
                    self.set_pending(n)
            else:
                for n in _bits(bits):
                    self.clear_pending(n)
        return write

    def _ipr_write(self, i: int):
        def write(reg, old: int, value: int) -> None:
            reg.value &= 0x01010101 * self.prio_mask
            for j in range(4):
                n = IRQ0 + 4 * i + j
                if n < self.n_exc:
                    self.prio[n] = (reg.value >> (8 * j)) & 0xFF
        return write

    def _shpr_write(self, i: int):
        mask = (0x00FFFFFF, 0xFF000000, 0xFFFF00FF)[i]
        excs = ((4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))[i]

        def write(reg, old: int, value: int) -> None:
            reg.value &= mask & (0x01010101 * self.prio_mask)
            for j, n in enumerate(excs):
                if mask >> (8 * j) & 0xFF:
                    self.prio[n] = (reg.value >> (8 * j)) & 0xFF
        return write

    def _icsr_read(self, reg) -> int:
        v = self.stack[-1] if self.stack else 0
        n, _g = self.best_pending()
        v |= (n & 0x1FF) << 12
        if len(self.stack) <= 1:
            v |= 1 << 11                                   # RETTOBASE
        if self.pending & self._irq_bits:
            v |= 1 << 22                                   # ISRPENDING
        if self.pending & (1 << PENDSV):
            v |= 1 << 28
        if self.pending & (1 << SYSTICK):
            v |= 1 << 26
        if self.pending & (1 << NMI):
            v |= 1 << 31
        return v

    def _icsr_write(self, reg, old: int, value: int) -> None:
        reg.value = 0
        if value & (1 << 27):
            self.clear_pending(PENDSV)
        if value & (1 << 25):
            self.clear_pending(SYSTICK)
        if value & (1 << 31):
            self.set_pending(NMI)
        if value & (1 << 28):
            self.set_pending(PENDSV)
        if value & (1 << 26):
            self.set_pending(SYSTICK)

    def _vtor_write(self, reg, old: int, value: int) -> None:
        self.vtor = value & 0xFFFFFF80
        reg.value = self.vtor

    def _aircr_read(self, reg) -> int:
        return 0xFA05_0000 | (self.prigroup << 8)

    def _aircr_write(self, reg, old: int, value: int) -> None:
        reg.value = 0
        if (value >> 16) != VECTKEY:
            return
        self.prigroup = (value >> 8) & 7
        self.group_mask = (0xFF << (self.prigroup + 1)) & 0xFF & self.prio_mask
        if value & 4:                                      # SYSRESETREQ
            self.machine.system_reset("sysresetreq")

    def _ccr_write(self, reg, old: int, value: int) -> None:
        reg.value = (reg.value | 0x200) & 0x0007_031B
        cache = getattr(self.machine, "cache", None)
        if cache is not None and (old ^ reg.value) & (1 << 16):
            cache.set_enabled(bool(reg.value & (1 << 16)))

    def _shcsr_read(self, reg) -> int:
        v = self.shcsr_ena
        for bit, exc in SHCSR_ACT.items():
            if self.active & (1 << exc):
                v |= 1 << bit
        for bit, exc in SHCSR_PENDED.items():
            if self.pending & (1 << exc):
                v |= 1 << bit
        return v

    def _shcsr_write(self, reg, old: int, value: int) -> None:
        reg.value = 0
        self.shcsr_ena = value & (7 << 16)
        en = 0
        for bit, exc in SHCSR_ENA.items():
            if value & (1 << bit):
                en |= 1 << exc
        self.enabled = (self.enabled & ~0x70) | en
        for bit, exc in SHCSR_PENDED.items():             # software may pend/unpend these
            if value & (1 << bit):
                self.set_pending(exc)
            else:
                self.pending &= ~(1 << exc)

    def _cfsr_write(self, reg, old: int, value: int) -> None:
        reg.value = 0
        self.cfsr &= ~value

    def _hfsr_write(self, reg, old: int, value: int) -> None:
        reg.value = 0
        self.hfsr &= ~value

    def _far_write(self, attr: str):
        def write(reg, old: int, value: int) -> None:
            setattr(self, attr, value)
        return write

    def _ccsidr_read(self, reg) -> int:
        return CCSIDR_ICACHE if self.regs.CSSELR.value & 1 else CCSIDR_DCACHE

    def _rnr_write(self, reg, old: int, value: int) -> None:
        self.mpu.rnr = (value & 0xFF) % self.mpu.regions

    def _stir_write(self, reg, old: int, value: int) -> None:
        irq = value & 0x1FF
        if irq < self.n_irq:
            self.set_pending(IRQ0 + irq)

    def _cache_op(self, op: str | None):
        def write(reg, old: int, value: int) -> None:
            reg.value = 0
            cache = getattr(self.machine, "cache", None)
            if op is None or cache is None:
                return
            if op.endswith("_all"):
                getattr(cache, op)()
            else:
                getattr(cache, op)(value & ~0x1F)
        return write

    # -- SysTick (C: native/systick.c) ----------------------------------------------------------------
    _st_running = _st_view("running", "the counter runs")
    _st_zero = _st_view("zero", "SysTick-clock tick of the next wrap to 0")
    _st_val = _st_view("val", "the value while stopped")
    _countflag = _st_view("countflag", "a wrap since SYST_CSR was last read")
    _st_event = _st_view("event", "the wrap event held, or None")
    _st_core_hz = _st_view("core_hz", "the core clock the RCC model pushed, or None")
    _st_hz_cache = _st_view("hz_cache", "the rate for CLKSOURCE = _st_hz_csr, or None")
    _st_hz_csr = _st_view("hz_csr", "the CLKSOURCE bit the rate cache is for")

    def set_core_clock(self, hz: int) -> None:
        """The core clock changed (the RCC model): SysTick counts it (CLKSOURCE=1) or it /8 from
        now on; a running counter keeps its current value and continues at the new rate."""
        self._st.set_core_clock(int(hz))

    @property
    def _native_mmio(self) -> Any:
        """ports.h's register block for the C bus: the SCS page, SysTick served in C."""
        return self._st._native_mmio


class _SysTickReg(Register):
    """A SysTick register: its word is the C model's (``_core.SysTick``), the one
    copy. The bank finds it at its offset like any register; a bus read or write goes to C with
    the bank's byte mask, ``value`` reads and sets the raw word (as a Register's does), fields
    read from it, and the bank's reset leaves it alone (Nvic's reset resets the C model)."""

    def __init__(self, bank: Any, offset: int, name: str, st: Any, idx: int, reset: int = 0,
                 fields: tuple[Field, ...] = (), access: str = RW) -> None:
        self.__dict__["_st"] = st
        self.__dict__["_idx"] = idx
        super().__init__(bank, offset, name, reset, 32, access, fields, None, None)

    @property                                                   # type: ignore[override]
    def value(self) -> int:
        return self._st.get_reg(self._idx)

    @value.setter
    def value(self, v: int) -> None:
        self._st.set_reg(self._idx, int(v) & 0xFFFF_FFFF)

    def __getattr__(self, name: str) -> int:
        fm = self.__dict__.get("_fm")
        if fm is not None and name in fm:
            mask, lsb = fm[name]
            return (self.value & mask) >> lsb
        raise AttributeError(f"register {self.__dict__.get('name')} has no field {name}")

    def bus_read(self) -> int:
        return self._st.read_reg(self._idx)

    def bus_write(self, data: int, byte_mask: int) -> None:
        self._st.write_reg(self._idx, data, byte_mask)

    def reset(self) -> None:
        pass
