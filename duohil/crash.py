"""Crash capture: turn a crash record into words a firmware engineer acts on.

CFSR/HFSR bits become sentences ("PRECISERR: precise data bus error at 0x..."), the faulting PC and
LR become function + file:line from the ELF's DWARF line table, and a short backtrace is recovered
from the stacked frame where the stack allows. RISC-V mcause/mepc/mtval get the same treatment.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any


# (bit, name, sentence); "{mmfar}" / "{bfar}" are filled in when the VALID bit says they hold
CFSR_BITS = [
    (0, "IACCVIOL", "instruction access violation (MPU or XN region)"),
    (1, "DACCVIOL", "data access violation (MPU){mmfar}"),
    (3, "MUNSTKERR", "MemManage fault while unstacking on exception return"),
    (4, "MSTKERR", "MemManage fault while stacking on exception entry"),
    (5, "MLSPERR", "MemManage fault during lazy FP state preservation"),
    (7, "MMARVALID", "MMFAR holds the faulting address"),
    (8, "IBUSERR", "instruction bus error (fetch from an invalid address)"),
    (9, "PRECISERR", "precise data bus error{bfar}"),
    (10, "IMPRECISERR", "imprecise data bus error (the stacked PC is after the access)"),
    (11, "UNSTKERR", "bus fault while unstacking on exception return"),
    (12, "STKERR", "bus fault while stacking on exception entry (stack overflow?)"),
    (13, "LSPERR", "bus fault during lazy FP state preservation"),
    (15, "BFARVALID", "BFAR holds the faulting address"),
    (16, "UNDEFINSTR", "undefined instruction"),
    (17, "INVSTATE", "invalid state (Thumb bit clear: a bad function pointer or return address?)"),
    (18, "INVPC", "invalid EXC_RETURN on exception return"),
    (19, "NOCP", "coprocessor access with the coprocessor disabled (FPU off?)"),
    (24, "UNALIGNED", "unaligned access with CCR.UNALIGN_TRP set"),
    (25, "DIVBYZERO", "divide by zero with CCR.DIV_0_TRP set"),
]
HFSR_BITS = [
    (1, "VECTTBL", "bus fault on a vector table read"),
    (30, "FORCED", "a configurable fault escalated to HardFault (disabled or priority too low)"),
    (31, "DEBUGEVT", "debug event"),
]
RISCV_CAUSES = {
    0: "instruction address misaligned", 1: "instruction access fault", 2: "illegal instruction",
    3: "breakpoint", 4: "load address misaligned", 5: "load access fault",
    6: "store/AMO address misaligned", 7: "store/AMO access fault", 8: "environment call from U-mode",
    11: "environment call from M-mode",
}


def describe_cfsr(cfsr: int, mmfar: int | None = None, bfar: int | None = None) -> list[str]:
    out = []
    for bit, name, text in CFSR_BITS:
        if name in ("MMARVALID", "BFARVALID"):
            continue
        if cfsr >> bit & 1:
            m = f" at {mmfar:#010x}" if mmfar is not None and cfsr >> 7 & 1 else ""
            b = f" at {bfar:#010x}" if bfar is not None and cfsr >> 15 & 1 else ""
            out.append(f"{name}: {text.format(mmfar=m, bfar=b)}")
    return out


def describe_hfsr(hfsr: int) -> list[str]:
    return [f"{name}: {text}" for bit, name, text in HFSR_BITS if hfsr >> bit & 1]


@dataclass
class SourceLocation:
    address: int
    function: str | None
    file: str | None
    line: int | None

    def __str__(self) -> str:
        where = f"{self.function or '??'}"
        if self.file:
            where += f" ({self.file}:{self.line})"
        return f"{self.address:#010x} {where}"


class ElfSymbolizer:
    """Address -> function + file:line from an ELF's symbols and DWARF line program."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._funcs: list[tuple[int, int, str]] = []
        # (start, end, file, line): each line-table row covers the addresses up to the next row of
        # its sequence, the last row up to the sequence's end. An address in no range has no line
        # (as addr2line says ??:0): a wild PC must not borrow the line of the nearest row below it.
        self._lines: list[tuple[int, int, str, int]] = []
        # pyelftools only here: every run imports this module (diagnose.py), few decode a crash
        from elftools.elf.constants import SH_FLAGS
        from elftools.elf.elffile import ELFFile
        with self.path.open("rb") as fh:
            elf = ELFFile(fh)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is not None:
                for s in symtab.iter_symbols():
                    if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]:
                        start = s["st_value"] & ~1
                        self._funcs.append((start, start + s["st_size"], s.name))
            self._funcs.sort()
            # sequences of functions the linker dropped (--gc-sections) stay in the line table,
            # relocated to 0: only code inside a loaded section counts
            loaded = [(sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]) for sec in elf.iter_sections()
                      if sec["sh_flags"] & SH_FLAGS.SHF_ALLOC and sec["sh_size"]]
            if elf.has_dwarf_info():
                dwarf = elf.get_dwarf_info()
                for cu in dwarf.iter_CUs():
                    lp = dwarf.line_program_for_CU(cu)
                    if lp is not None:
                        self._lines += [r for r in _line_ranges(lp)
                                        if any(lo <= r[0] < hi for lo, hi in loaded)]
        self._lines.sort()
        self._line_addrs = [a for a, _, _, _ in self._lines]

    def locate(self, address: int) -> SourceLocation:
        address &= ~1
        func = None
        for start, end, name in self._funcs:
            if start <= address < end:
                func = name
                break
        file = line = None
        i = bisect.bisect_right(self._line_addrs, address) - 1
        if i >= 0 and address < self._lines[i][1]:
            _, _, file, line = self._lines[i]
        return SourceLocation(address, func, file, line)

    def is_code(self, address: int) -> bool:
        address &= ~1
        return any(s <= address < e for s, e, _ in self._funcs)


def _line_ranges(lp: Any) -> list[tuple[int, int, str, int]]:
    """One CU's line program as address ranges. Rows sharing an address: the last one holds (the
    earlier ones cover nothing), as in the DWARF line-table model."""
    files = lp["file_entry"]
    version = lp.header["version"]
    out: list[tuple[int, int, str, int]] = []
    seq: list[tuple[int, str, int]] = []
    for entry in lp.get_entries():
        st = entry.state
        if st is None:
            continue
        if st.end_sequence:
            for (a, f, n), nxt in zip(seq, [r[0] for r in seq[1:]] + [st.address]):
                if nxt > a:
                    out.append((a, nxt, f, n))
            seq = []
            continue
        idx = st.file if version >= 5 else st.file - 1
        name = files[idx].name.decode() if 0 <= idx < len(files) else "?"
        seq.append((st.address, name, st.line))
    return out


@lru_cache(maxsize=16)
def symbolizer(path: str) -> ElfSymbolizer:
    return ElfSymbolizer(path)


@dataclass
class CrashReport:
    machine: str
    exception: str
    summary: list[str] = field(default_factory=list)
    pc: SourceLocation | None = None
    lr: SourceLocation | None = None
    backtrace: list[SourceLocation] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        where = f" in {self.pc}" if self.pc else ""
        first = f": {self.summary[0]}" if self.summary else ""
        return f"{self.machine} {self.exception}{first}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "exception": self.exception, "summary": self.summary,
            "pc": str(self.pc) if self.pc else None, "lr": str(self.lr) if self.lr else None,
            "pc_function": self.pc.function if self.pc else None,
            "pc_file": self.pc.file if self.pc else None,
            "pc_line": self.pc.line if self.pc else None,
            "backtrace": [str(b) for b in self.backtrace], "raw": self.raw,
        }

    def text(self) -> str:
        lines = [self.headline()] + [f"  {s}" for s in self.summary]
        if self.lr:
            lines.append(f"  lr {self.lr}")
        lines += [f"  #{i} {b}" for i, b in enumerate(self.backtrace)]
        return "\n".join(lines)


def decode_cortexm(rec: dict[str, Any], elf: str | Path, stack_words: list[int] | None = None,
                   exception: str = "HardFault") -> CrashReport:
    """``rec`` holds at least cfsr, hfsr, pc, lr (and mmfar, bfar when known). ``stack_words`` is the
    stack above the exception frame, scanned for return addresses into code (a heuristic backtrace)."""
    cfsr = int(rec.get("cfsr", 0))
    hfsr = int(rec.get("hfsr", 0))
    mmfar = rec.get("mmfar")
    bfar = rec.get("bfar")
    summary = describe_cfsr(cfsr, mmfar, bfar) + describe_hfsr(hfsr)
    sym = symbolizer(str(elf))
    pc = sym.locate(int(rec["pc"])) if "pc" in rec else None
    lr = sym.locate(int(rec["lr"])) if rec.get("lr") is not None and sym.is_code(int(rec["lr"])) \
        else None
    bt = []
    if pc is not None:
        bt.append(pc)
    if lr is not None:
        bt.append(lr)
    for w in stack_words or []:
        if len(bt) >= 8:
            break
        if w & 1 and sym.is_code(w - 1):       # Thumb return addresses have bit 0 set
            loc = sym.locate(w - 1)
            if not bt or loc.function != bt[-1].function:
                bt.append(loc)
    return CrashReport("stm32", exception, summary, pc, lr, bt, dict(rec))


def decode_riscv(rec: dict[str, Any], elf: str | Path) -> CrashReport:
    mcause = int(rec.get("mcause", 0))
    interrupt = bool(mcause >> 31)
    code = mcause & 0x7FFFFFFF
    what = ("interrupt " if interrupt else "") + RISCV_CAUSES.get(code, f"cause {code}")
    summary = [f"mcause={mcause:#x}: {what}"]
    if "mtval" in rec:
        summary.append(f"mtval={int(rec['mtval']):#010x}")
    sym = symbolizer(str(elf))
    pc = sym.locate(int(rec["mepc"])) if "mepc" in rec else None
    return CrashReport("peer", "trap", summary, pc, None, [pc] if pc else [], dict(rec))


FAULT_KINDS = ("cpu_fault", "lockup", "cpu_halt", "cpu_trap", "cpu_hung", "cpu_stopped")
HISTORY_MAX = 16


def fault_history(events: list[tuple[int, str, dict]], elf: str | Path | None = None,
                  limit: int = HISTORY_MAX, ps_per_ms: int = 1_000_000_000) -> list[str]:
    """Every fault-like event of a run as one line each (time, machine, what, where), so a
    lockup or a stacking fault after the first fault is shown too; at most ``limit`` lines plus
    one saying how many more there were. Aggregated repeats (``repeated``) say their count."""
    out: list[str] = []
    more = 0
    sym = None
    if elf is not None:
        try:
            sym = symbolizer(str(elf))
        except (OSError, ValueError):
            sym = None
    for t, kind, d in events:
        of = d.get("of") if kind == "repeated" else kind
        if of not in FAULT_KINDS:
            continue
        if len(out) >= limit:
            more += 1 if kind != "repeated" else int(d.get("count", 1))
            continue
        what = d.get("exception", d.get("what", d.get("reason", of)))
        if isinstance(what, int):
            what = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}.get(
                what, f"exception {what}")
        line = f"{t / ps_per_ms:.3f} ms {d.get('machine', '?')} {of}: {what}"
        pc = d.get("pc", d.get("mepc"))
        if isinstance(pc, int):
            line += f" at {sym.locate(pc) if sym is not None and d.get('machine') == 'stm32' else hex(pc)}"
        words = describe_cfsr(int(d["cfsr"])) if isinstance(d.get("cfsr"), int) else []
        if words:
            line += " (" + "; ".join(w.split(":")[0] for w in words) + ")"
        if kind == "repeated":
            line += (f", repeated {d.get('count')} more times until "
                     f"{int(d.get('last_ps', t)) / ps_per_ms:.3f} ms")
        out.append(line)
    if more:
        out.append(f"... and {more} more fault events")
    return out
