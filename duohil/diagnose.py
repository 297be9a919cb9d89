"""Say what went wrong at the end of a run, in words: for any firmware, contract or not.

``diagnose`` reads what the engine recorded and the cores' state now and returns lines such as

    stm32 BusFault (taken as HardFault) at 5.261 ms at pc 0x080001fc main (echo.c:64)
      PRECISERR: precise data bus error at 0x90000000 (QUADSPI memory-mapped window: not modelled)
    stm32 end state at 20.000 ms: pc 0x08000100 Default_Handler (startup.c:7),
        in the HardFault handler (IPSR 3)                                  [one line]
    stm32 usart3: baud mismatch: 2 character(s) from the host at 9600 baud reached a
        receiver set to 115108 baud (garbled, framing errors)              [one line]
    stm32 CPU spinning at PC 0x080001ea main (echo.c:49) polling usart3.ISR (0x4000481c)

The poll loop is found from the pc samples the Duo takes every SAMPLE_MS (the last few must lie in
one small loop) and the loop's code: a backward branch at or after the pc whose body holds a load
from one MMIO address (its base register's value now plus the offset). Thumb only (the M7); the
loads decoded are LDR/LDRB/LDRH with an immediate offset, 16- and 32-bit forms.
"""
from __future__ import annotations

from typing import Any

from . import crash as crashmod
from .engines import base

# The STM32H743's memory map, coarse (RM0433 section 2.3.2), for addresses no model answers.
H743_REGIONS = [
    (0x0000_0000, 0x0001_0000, "ITCM RAM"),
    (0x0800_0000, 0x0820_0000, "flash"),
    (0x1FF0_0000, 0x1FF2_0000, "system memory"),
    (0x2000_0000, 0x2002_0000, "DTCM RAM"),
    (0x2400_0000, 0x2408_0000, "AXI SRAM"),
    (0x3000_0000, 0x3004_8000, "AHB SRAM (D2)"),
    (0x3800_0000, 0x3801_0000, "AHB SRAM (D3)"),
    (0x3880_0000, 0x3880_1000, "backup SRAM"),
    (0x4000_0000, 0x6000_0000, "peripheral space"),
    (0x6000_0000, 0x9000_0000, "FMC banks (external memory)"),
    (0x9000_0000, 0xA000_0000, "QUADSPI memory-mapped window"),
    (0xA000_0000, 0xE000_0000, "external device space (execute never)"),
    (0xE000_0000, 0xE010_0000, "Cortex-M7 private peripheral bus"),
]
FAULT_HANDLERS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}
LOOP_MAX_BYTES = 48          # a poll loop's body: a load, a test, a branch (and a little more)


def region_name(handle: base.MachineHandle | None, address: int) -> str:
    """``usart3.ISR``, ``AXI SRAM``, or the map region with ``: not modelled``."""
    if handle is not None:
        name = handle.describe_address(address)
        if name:
            return name
    below = None
    for lo, hi, name in H743_REGIONS:
        if lo <= address < hi:
            return f"{name}: not modelled"
        if hi <= address:
            below = (hi, name)
    if below is not None and address - below[0] < 0x0100_0000:
        return f"reserved: {address - below[0]:#x} past the end of {below[1]} ({below[0]:#010x})"
    return "reserved: no memory or peripheral there"


def _where(handle: base.MachineHandle, elf: Any, pc: int) -> str:
    if elf is None:
        return f"{pc:#010x}"
    try:
        loc = crashmod.symbolizer(str(elf)).locate(pc & ~1)
    except Exception:              # noqa: BLE001 - an image without symbols still gets its pc
        return f"{pc:#010x}"
    return str(loc)                # "0x080001ea main (echo.c:49)"


def _exc_name(e: Any) -> str:
    return FAULT_HANDLERS.get(e, str(e)) if isinstance(e, int) else str(e)


def fault_lines(machine: str, handle: base.MachineHandle, elf: Any,
                events: list[tuple[int, str, dict]], state: dict[str, Any], limit: int = 3) -> list[str]:
    """The machine's faults and lockups, each decoded once (repeats counted), at most ``limit``."""
    seen: dict[tuple[Any, ...], list[Any]] = {}
    for t, kind, d in events:
        if kind not in ("cpu_fault", "lockup", "cpu_halt") or d.get("machine", "stm32") != machine:
            continue
        key = (kind, d.get("exception"), d.get("pc"))
        if key in seen:
            seen[key][1] += 1
            continue
        seen[key] = [(t, kind, d), 1]
    out: list[str] = []
    for (t, kind, d), n in list(seen.values())[:limit]:
        when = f"at {t / base.PS_PER_MS:.3f} ms"
        pc = d.get("pc")
        where = f" at pc {_where(handle, elf, pc)}" if isinstance(pc, int) else ""
        again = f" ({n} times)" if n > 1 else ""
        if kind == "lockup":
            out.append(f"{machine} LOCKED UP {when}{where}: {d.get('reason', '')}{again}")
            continue
        if kind == "cpu_halt":
            out.append(f"{machine} CPU halted {when}{where}: {d.get('error') or d.get('intno', '')}{again}")
            continue
        exc = _exc_name(d.get("exception"))
        taken = d.get("taken_as")
        as_ = f" (taken as {_exc_name(taken)})" if taken and taken != d.get("exception") else ""
        out.append(f"{machine} {exc}{as_} {when}{where}{again}")
        cfsr = int(d.get("cfsr", 0) or 0)
        # the address registers hold the last fault's address: valid for this one when its
        # CFSR says so and it is the only kind of fault seen
        bfar = state.get("bfar") if len(seen) == 1 else None
        mmfar = state.get("mmfar") if len(seen) == 1 else None
        words = crashmod.describe_cfsr(cfsr, mmfar, bfar) + \
            crashmod.describe_hfsr(int(d.get("hfsr", 0) or 0))
        for s in words:
            addr = bfar if "PRECISERR" in s else mmfar if "DACCVIOL" in s else None
            if addr is not None and f"{addr:#010x}" in s:
                s += f" ({region_name(handle, addr)})"
            out.append(f"  {s}")
        if d.get("address") is not None and not cfsr & (1 << 15):
            out.append(f"  address {int(d['address']):#010x} ({region_name(handle, int(d['address']))})")
    if len(seen) > limit:
        out.append(f"{machine}: {len(seen) - limit} more distinct fault(s) in the event log")
    return out


def end_state(machine: str, handle: base.MachineHandle, elf: Any, state: dict[str, Any],
              now_ps: int) -> str:
    where = _where(handle, elf, int(state["pc"]))
    what = "thread mode"
    ipsr = state.get("ipsr")
    if state.get("lockup"):
        what = f"LOCKED UP ({state['lockup'].get('reason', '')})"
    elif state.get("halted"):
        what = f"halted ({state.get('halt_reason') or 'stopped'})"
    elif isinstance(ipsr, int) and ipsr in FAULT_HANDLERS:
        what = f"in the {FAULT_HANDLERS[ipsr]} handler (IPSR {ipsr})"
    elif isinstance(ipsr, int) and ipsr:
        what = f"in exception {ipsr}" + (f" (IRQ {ipsr - 16})" if ipsr >= 16 else "")
    return f"{machine} end state at {now_ps / base.PS_PER_MS:.3f} ms: pc {where}, {what}"


def fatal(state: dict[str, Any]) -> str | None:
    """Why this core will not go on by itself (locked up, halted, stuck in a fault handler)."""
    if state.get("lockup"):
        return "locked up"
    if state.get("halted") and state.get("halt_reason") not in (None, "wfi", "sleep"):
        return f"halted ({state.get('halt_reason')})"
    ipsr = state.get("ipsr")
    if isinstance(ipsr, int) and ipsr in FAULT_HANDLERS:
        return f"stuck in the {FAULT_HANDLERS[ipsr]} handler"
    return None


# -- poll loops -------------------------------------------------------------------------------------
def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _thumb_at(code: bytes, base_addr: int, a: int) -> tuple[int, int, int]:
    """(size, first halfword, second halfword or 0) of the Thumb instruction at ``a``."""
    i = a - base_addr
    hw = int.from_bytes(code[i:i + 2], "little")
    if hw >> 11 in (0x1D, 0x1E, 0x1F):
        return 4, hw, int.from_bytes(code[i + 2:i + 4], "little")
    return 2, hw, 0


def _branch_target(a: int, hw: int) -> int | None:
    if hw & 0xF000 == 0xD000 and (hw >> 8) & 0xF < 0xE:       # B<cond> T1
        return a + 4 + 2 * _sext(hw & 0xFF, 8)
    if hw & 0xF800 == 0xE000:                                  # B T2
        return a + 4 + 2 * _sext(hw & 0x7FF, 11)
    return None


def _load(hw: int, hw2: int, size: int) -> tuple[int, int] | None:
    """(base register, offset) of an immediate-offset load, else None."""
    if size == 2:
        op = hw >> 11
        scale = {0x0D: 4, 0x0F: 1, 0x11: 2}.get(op)         # LDR, LDRB, LDRH (T1)
        if scale is not None:
            return (hw >> 3) & 7, ((hw >> 6) & 0x1F) * scale
        return None
    if hw & 0xFFF0 in (0xF8D0, 0xF890, 0xF8B0):             # LDR.W, LDRB.W, LDRH.W (T2/T3)
        return hw & 0xF, hw2 & 0xFFF
    return None


def poll_loop(handle: base.MachineHandle, state: dict[str, Any]) -> tuple[int, int, list[int]] | None:
    """(loop start, loop end, MMIO addresses its loads read) of the small loop around the pc."""
    regs = state.get("regs")
    if not regs:
        return None
    pc = int(state["pc"]) & ~1
    lo = pc - LOOP_MAX_BYTES
    try:
        code = handle.read_memory(lo, 2 * LOOP_MAX_BYTES + 4)
    except Exception:              # noqa: BLE001 - pc outside readable memory: no loop to show
        return None
    a = pc
    while a < pc + LOOP_MAX_BYTES:
        size, hw, _ = _thumb_at(code, lo, a)
        t = _branch_target(a, hw)
        if t is not None and lo <= t <= pc:
            loads = []
            b = t
            while b <= a:
                sz, h1, h2 = _thumb_at(code, lo, b)
                ld = _load(h1, h2, sz)
                if ld is not None and ld[0] < 13:
                    addr = (regs[ld[0]] + ld[1]) & 0xFFFFFFFF
                    if 0x4000_0000 <= addr < 0x6000_0000 or addr >= 0xE000_0000:
                        loads.append(addr)
                b += sz
            return t, a, sorted(set(loads))
        a += size
    return None


def spin_line(machine: str, handle: base.MachineHandle, elf: Any, state: dict[str, Any],
              pcs: list[int]) -> str | None:
    """"CPU spinning at PC ... polling <register>" when the last pc samples and the pc now lie in
    one small loop."""
    loop = poll_loop(handle, state)
    if loop is None or len(pcs) < 2:
        return None
    start, end, loads = loop
    if not all(start <= (p & ~1) <= end for p in pcs):
        return None
    where = _where(handle, elf, int(state["pc"]))
    if len(loads) == 1:
        return (f"{machine} CPU spinning at PC {where} polling {region_name(handle, loads[0])} "
                f"({loads[0]:#010x})")
    if loads:
        return f"{machine} CPU spinning at PC {where} polling " + ", ".join(
            f"{region_name(handle, x)} ({x:#010x})" for x in loads)
    return f"{machine} CPU spinning at PC {where} in a tight loop that reads no register"


# -- UARTs and the link -----------------------------------------------------------------------------
def link_lines(link: list[base.LinkByte], uarts: tuple[str, str]) -> list[str]:
    """Baud mismatches and characters lost on the link, per direction."""
    out = []
    names = {"stm32->peer": f"{uarts[0]} -> {uarts[1]}", "peer->stm32": f"{uarts[1]} -> {uarts[0]}"}
    mismatched: dict[str, int] = {}
    dropped: dict[str, dict[str, int]] = {}          # direction -> why -> count, in first-seen order
    for _t, d, value, _sent, fault in base.link_rows(link):      # one pass, no LinkByte made
        if fault == "baud_mismatch":
            mismatched[d] = mismatched.get(d, 0) + 1
        if value is None:
            lost = dropped.setdefault(d, {})
            lost[fault or "unknown"] = lost.get(fault or "unknown", 0) + 1
    for d in ("stm32->peer", "peer->stm32"):
        mism = mismatched.get(d, 0)
        if mism:
            out.append(f"link {d} ({names[d]}): {mism} character(s) garbled by a baud mismatch "
                       f"(sender and receiver more than 3 % apart)")
        for why, n in dropped.get(d, {}).items():
            text = {"receiver_off": "the receiver was disabled"}.get(why, f"injected fault {why}")
            out.append(f"link {d} ({names[d]}): {n} character(s) dropped: {text}")
    return out


def diagnose(session: base.Session, spec: base.RunSpec, pcs: dict[str, list[int]]) -> list[str]:
    """Every line worth telling a firmware engineer about how the run ended."""
    events = session.events()
    out: list[str] = []
    for name, mspec in (("stm32", spec.stm32), ("peer", spec.peer)):
        if mspec is None:
            continue
        handle = getattr(session, name)
        try:
            state = handle.cpu_state()
        except Exception as exc:   # noqa: BLE001 - a broken engine still gets its other lines said
            out.append(f"{name}: cannot read the core's state: {exc}")
            continue
        out += fault_lines(name, handle, mspec.elf, events, state)
        if state.get("lockup") or state.get("halted") or state.get("ipsr") in FAULT_HANDLERS or any(
                k in ("cpu_fault", "lockup") and d.get("machine", "stm32") == name for _t, k, d in events):
            out.append(end_state(name, handle, mspec.elf, state, session.now_ps))
        spin = spin_line(name, handle, mspec.elf, state, pcs.get(name, []))
        if spin:
            out.append(spin)
        for uart, lines in handle.uart_problems().items():
            out += [f"{name} {uart}: {ln}" for ln in lines]
    out += link_lines(session.link_bytes(), spec.link_uarts)
    return out
