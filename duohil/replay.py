"""From a field crash report to a failing test (`duohil replay`, docs/replay.md).

A report (CRASHREC / HARDFAULT line, console log, g_crash_record bytes, or a stacked-register dump)
is decoded against the ELF of the build that crashed; the ELF is checked against the report (pc and
lr inside its code, lr right after a call, the BOOT line's build name in its strings). Candidate
crash modes come from the report's signature and the capture, each with its evidence. A scenario is
written that replays the captured peer->STM32 bytes at their times plus the inferred faults; it is
run on the crashed build and the emulated crash is compared with the field one.
"""
from __future__ import annotations

import itertools
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import capture as capmod
from . import crash as crashmod
from . import protocol
from .engines.base import PS_PER_MS
from .errors import ConfigError

RECORD_SIZE = 80
RECORD_MAGICS = {0x43525348: "written, not yet reported", 0x43525352: "reported at boot"}
RECORD_FIELDS = ("magic", "version", "size", "count", "exception", "cfsr", "hfsr", "mmfar", "bfar",
                 "r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr", "exc_return", "sp", "uptime_ms",
                 "fix_mask")
CRASHREC_KEYS = ("n", "exc", "pc", "lr", "cfsr", "hfsr", "bfar", "mmfar", "xpsr", "sp", "t")
HARDFAULT_KEYS = ("pc", "lr", "cfsr", "hfsr", "bfar", "mmfar", "exc")
DUMP_KEYS = ("r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr", "cfsr", "hfsr", "mmfar", "bfar")
EXC_NAMES = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
             0x100: "StackGuard"}
PACKED_LEN = {protocol.MSG_SETPOINT: protocol.MSG_SETPOINT_LEN,
              protocol.MSG_PID_PARAMS: protocol.MSG_PID_PARAMS_LEN,
              protocol.MSG_HEARTBEAT: protocol.MSG_HEARTBEAT_LEN,
              protocol.MSG_SENSOR_REPORT: protocol.MSG_SENSOR_REPORT_LEN}
CONFIG_FIELDS = {"fresh_ms": "freshness_ms", "soft_min": "soft_limit_min", "soft_max": "soft_limit_max",
                 "vmax": "max_velocity", "ferr": "following_error_max"}
DEFAULT_FRESH_MS = 20
RX_RING = 256                       # the STM32's RX ring (stm32_firmware/README.md, CM4)
RX_PATH = ("link_poll", "link_rx_snapshot", "link_rx_pending", "link_rx_dma_offset")
TS_LINE = re.compile(r"^\s*(?:\[?\s*(\d+(?:\.\d+)?)\s*(?:ms)?\s*\]?\s+)?([A-Z][A-Z0-9]+)(?:\s(.*))?$")
KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")
REG_LINE = re.compile(r"\b(r0|r1|r2|r3|r12|lr|pc|xpsr|psr|cfsr|hfsr|mmfar|bfar)\s*[:=]\s*"
                      r"(0x[0-9a-fA-F]+|\d+)\b", re.IGNORECASE)


# -- the report -----------------------------------------------------------------------------------------
@dataclass
class FieldReport:
    """What the field unit left: a fault (exception + registers), an ESTOP, or only its console."""

    path: Path
    form: str                                     # crashrec, hardfault, console, record, dump
    regs: dict[str, int] = field(default_factory=dict)     # pc, lr, cfsr, hfsr, ... as known
    exc: int | None = None                        # exception number, if the report says
    t_ms: float | None = None                     # uptime at the fault, if known
    estop: str | None = None                      # ESTOP reason
    config: dict[str, int] = field(default_factory=dict)   # from a CONFIG line
    build: str | None = None                      # BOOT build=<variant>
    fix_mask: int | None = None
    console: list[tuple[float | None, str]] = field(default_factory=list)
    recovered: bool | None = None                 # a BOOT followed the HARDFAULT (console only)

    @property
    def has_fault(self) -> bool:
        return "pc" in self.regs


def _bad(path: Path, what: str, fld: str, expected: str) -> ConfigError:
    return ConfigError(what, file=path, field=fld, expected=expected)


def _num(text: str, path: Path, fld: str) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise _bad(path, f"{text!r} is not a number", fld, "0x<hex> or decimal") from None


def _kv_line(body: str, keys: tuple[str, ...], path: Path, what: str) -> dict[str, int]:
    got = dict(KV.findall(body))
    missing = [k for k in keys if k not in got]
    if missing:
        raise _bad(path, f"truncated {what} line: no {', '.join(missing)}", what,
                   f"a complete line: {what} " + " ".join(f"{k}=..." for k in keys))
    return {k: _num(got[k], path, f"{what}.{k}") for k in keys}


def parse_report(path: str | Path) -> FieldReport:
    """Read any accepted report form (docs/replay.md); one ConfigError for anything else."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _bad(path, f"cannot read the report: {exc.strerror}", "report", "a readable file") from None
    if not raw.strip():
        raise _bad(path, "empty report", "report", "a CRASHREC/HARDFAULT line, console log, "
                   "g_crash_record bytes or a register dump")
    try:
        text = raw.decode("utf-8")
        binary = any(c < 9 or 13 < c < 32 for c in raw)
    except UnicodeDecodeError:
        text, binary = "", True
    if binary or path.suffix == ".bin":
        return _from_record(raw, path, "record")
    lines = text.splitlines()
    parsed = [(m, ln) for ln in lines if (m := TS_LINE.match(ln))]
    words = {m.group(2) for m, _ in parsed}
    if words & {"CRASHREC", "HARDFAULT", "BOOT", "ESTOP", "CONFIG", "STAT", "STATE"}:
        return _from_console(parsed, path)
    if REG_LINE.search(text):
        return _from_dump(text, path)
    hexdata = _hex_dump(lines, path)
    if hexdata is not None:
        return _from_record(hexdata, path, "record")
    raise _bad(path, "not a report duohil knows", "report",
               "a CRASHREC/HARDFAULT line, an STM32 console log, g_crash_record as hex or binary, "
               "or a register dump (pc=0x..., cfsr: 0x...)")


def _from_console(parsed: list, path: Path) -> FieldReport:
    rep = FieldReport(path, "console")
    fault_at: int | None = None
    for m, line in parsed:
        t = float(m.group(1)) if m.group(1) else None
        word, body = m.group(2), m.group(3) or ""
        rep.console.append((t, f"{word} {body}".strip()))
        if word == "CRASHREC":
            v = _kv_line(body, CRASHREC_KEYS, path, "CRASHREC")
            rep.form, rep.exc, rep.t_ms = "crashrec", v["exc"], float(v["t"])
            rep.regs = {k: v[k] for k in ("pc", "lr", "cfsr", "hfsr", "bfar", "mmfar", "xpsr", "sp")}
        elif word == "HARDFAULT":
            v = _kv_line(body, HARDFAULT_KEYS, path, "HARDFAULT")
            if rep.form != "crashrec":
                rep.form, rep.exc = "hardfault", v["exc"]
                rep.regs = {k: v[k] for k in ("pc", "lr", "cfsr", "hfsr", "bfar", "mmfar")}
                rep.t_ms = t
            fault_at = len(rep.console)
        elif word == "BOOT":
            b = dict(KV.findall(body))
            rep.build = b.get("build", rep.build)
            if "fixes" in b:
                rep.fix_mask = _num(b["fixes"], path, "BOOT.fixes")
            if fault_at is not None:
                rep.recovered = True
        elif word == "ESTOP" and rep.estop is None:
            rep.estop = dict(KV.findall(body)).get("reason", "?")
        elif word == "CONFIG":
            for k, v2 in KV.findall(body):
                if k in CONFIG_FIELDS:
                    rep.config[CONFIG_FIELDS[k]] = _num(v2, path, f"CONFIG.{k}")
    if fault_at is not None and rep.recovered is None:
        rep.recovered = False
    if rep.form == "console" and rep.exc is None and rep.estop is None and not rep.console:
        raise _bad(path, "no console line", "report", "STM32 console lines")
    return rep


def _from_dump(text: str, path: Path) -> FieldReport:
    regs: dict[str, int] = {}
    for name, val in REG_LINE.findall(text):
        name = "xpsr" if name.lower() == "psr" else name.lower()
        regs.setdefault(name, _num(val, path, name))
    missing = [k for k in ("pc", "lr", "cfsr") if k not in regs]
    if missing:
        raise _bad(path, f"truncated register dump: no {', '.join(missing)}", "dump",
                   "r0-r3, r12, lr, pc, xpsr and cfsr/hfsr/mmfar/bfar as name=0x... or name: 0x...")
    rep = FieldReport(path, "dump", regs=regs)
    rep.exc = _exception_from_status(regs.get("cfsr", 0), regs.get("hfsr", 0))
    return rep


def _hex_dump(lines: list[str], path: Path) -> bytes | None:
    """``x/20wx``-style words (0x12345678, little-endian) or byte pairs, an address prefix allowed."""
    out = bytearray()
    for ln in lines:
        body = ln.split(":", 1)[1] if ":" in ln else ln
        toks = body.split()
        if not toks:
            continue
        for tok in toks:
            t = tok.lower().removeprefix("0x")
            if not re.fullmatch(r"[0-9a-f]+", t) or len(t) not in (2, 8):
                return None
            out += bytes([int(t, 16)]) if len(t) == 2 else struct.pack("<I", int(t, 16))
    return bytes(out) if out else None


def _from_record(data: bytes, path: Path, form: str) -> FieldReport:
    if len(data) != RECORD_SIZE:
        raise _bad(path, f"{len(data)} bytes of g_crash_record", "record",
                   f"all {RECORD_SIZE} bytes of crash_record_t (truncated?)")
    vals = struct.unpack("<IHH" + "I" * 18, data)
    rec = dict(zip(RECORD_FIELDS, vals))
    if rec["magic"] not in RECORD_MAGICS:
        raise _bad(path, f"magic {rec['magic']:#010x} is not a crash record's", "record.magic",
                   "0x43525348 (CRSH) or 0x43525352 (CRSR): the record may be corrupted or never written")
    if rec["version"] != 1 or rec["size"] != RECORD_SIZE:
        raise _bad(path, f"version {rec['version']} size {rec['size']}", "record.version",
                   "version 1, size 80 (a corrupted record or another layout)")
    if rec["exception"] not in EXC_NAMES and not 16 <= rec["exception"] < 16 + 150:
        raise _bad(path, f"exception {rec['exception']}", "record.exception",
                   "2..6, 16+IRQ or 256 (corrupted record?)")
    rep = FieldReport(path, form, exc=rec["exception"], t_ms=float(rec["uptime_ms"]),
                      fix_mask=rec["fix_mask"])
    rep.regs = {k: rec[k] for k in ("pc", "lr", "cfsr", "hfsr", "mmfar", "bfar", "r0", "r1", "r2", "r3",
                                    "r12", "xpsr", "sp")}
    return rep


def _exception_from_status(cfsr: int, hfsr: int) -> int:
    """The configurable fault class CFSR names (MemManage, BusFault, UsageFault), else HardFault."""
    if cfsr & 0xFF:
        return 4
    if cfsr & 0xFF00:
        return 5
    if cfsr & 0xFFFF0000:
        return 6
    return 3


def fault_class(exc: int | None, cfsr: int) -> str:
    """A comparable exception name: the class CFSR names (a BusFault escalated to HardFault on a
    build with the configurable faults off is still a BusFault), else the exception number's."""
    if cfsr:
        return EXC_NAMES[_exception_from_status(cfsr, 0)]
    return EXC_NAMES.get(exc or 3, f"IRQ{(exc or 0) - 16}")


# -- decoding and the ELF check ---------------------------------------------------------------------------
@dataclass
class Decoded:
    exception: str
    words: list[str]
    pc: crashmod.SourceLocation | None
    lr: crashmod.SourceLocation | None
    checks: list[str]

    @property
    def function(self) -> str | None:
        return self.pc.function if self.pc else None


def _wild_pc(cfsr: int) -> bool:
    return bool(cfsr & ((1 << 8) | (1 << 17) | (1 << 0)))      # IBUSERR, INVSTATE, IACCVIOL


def _after_call(elf: Path, lr: int) -> bool:
    """Is the instruction before the return address ``lr`` a BL or BLX (Thumb-2)?"""
    from elftools.elf.elffile import ELFFile
    a = (lr & ~1)
    with elf.open("rb") as fh:
        for sec in ELFFile(fh).iter_sections():
            lo = sec["sh_addr"]
            hi = lo + sec["sh_size"]
            if sec["sh_type"] != "SHT_PROGBITS" or not lo <= a - 4 or not a <= hi:
                continue
            data = sec.data()
            hw1, hw2 = struct.unpack_from("<HH", data, a - 4 - lo)
            blx_reg = struct.unpack_from("<H", data, a - 2 - lo)[0]
            if (hw1 & 0xF800) == 0xF000 and (hw2 & 0xC000) == 0xC000:       # BL / BLX imm
                return True
            return (blx_reg & 0xFF87) == 0x4780                               # BLX Rm
    return False


def decode(rep: FieldReport, elf: str | Path) -> Decoded:
    """Exception, CFSR/HFSR in words, pc/lr as function + file:line; the ELF checked against the
    report (ConfigError, exit 2, when it does not fit)."""
    elf = Path(elf)
    if not elf.is_file():
        raise ConfigError(f"ELF {elf} not found", field="--elf", expected="the ELF of the build that crashed")
    try:
        sym = crashmod.symbolizer(str(elf.resolve()))
    except Exception as exc:         # noqa: BLE001 - pyelftools raises many kinds on a bad file
        raise ConfigError(f"{elf} is not a readable ELF: {exc}", field="--elf",
                          expected="an ARM ELF with symbols") from None
    r = rep.regs
    checks: list[str] = []
    if rep.build is not None:
        strings = elf.read_bytes()
        if rep.build.encode() + b"\0" not in strings:
            raise ConfigError(f"the report's BOOT line says build={rep.build}, which {elf.name} does not "
                              f"contain", file=rep.path, field="--elf",
                              expected="the ELF of the build that printed the report")
        checks.append(f"BOOT build={rep.build}: the string is in {elf.name}")
    cfsr = r.get("cfsr", 0)
    exc = fault_class(rep.exc, cfsr)
    pc = lr = None
    if "pc" in r:
        pc = sym.locate(r["pc"])
        if _wild_pc(cfsr):
            checks.append(f"pc {r['pc']:#010x}: not checked (CFSR says the fetch itself failed)")
        elif not sym.is_code(r["pc"]):
            raise ConfigError(f"pc {r['pc']:#010x} is in no function of {elf.name}", file=rep.path,
                              field="--elf", expected="the ELF of the build that crashed (its text "
                              "holds the faulting pc)")
        else:
            checks.append(f"pc {r['pc']:#010x} is inside {pc.function} in {elf.name}")
        lrv = r.get("lr", 0)
        if lrv and lrv < 0xF0000000:
            if not sym.is_code(lrv & ~1) or not _after_call(elf, lrv):
                raise ConfigError(f"lr {lrv:#010x} is not a return address in {elf.name} (no call "
                                  f"before it)", file=rep.path, field="--elf",
                                  expected="the ELF of the build that crashed")
            lr = sym.locate(lrv)
            checks.append(f"lr {lrv:#010x} follows a call in {lr.function}")
        elif lrv:
            checks.append(f"lr {lrv:#010x} is an EXC_RETURN value (the fault hit in a handler)")
    words = crashmod.describe_cfsr(cfsr, r.get("mmfar"), r.get("bfar")) + \
        crashmod.describe_hfsr(r.get("hfsr", 0))
    return Decoded(exc, words, pc, lr, checks)


# -- the capture ----------------------------------------------------------------------------------------
@dataclass
class FrameIssue:
    frame: int            # index among the sender's frames (as link faults count them)
    t_ps: int
    kind: str             # "corrupt_len" (CRC fails, the type's LEN fits) or "layout" (CRC ok)
    msg_type: int
    got: int
    want: int


def scan_frames(data: list[capmod.CapturedByte]) -> tuple[list[tuple[int, bytes]], list[FrameIssue],
                                                           list[int]]:
    """Frames of one direction as captured: (time, payload) of every good frame, the frames whose
    LEN disagrees with their type, and the stream repaired (each corrupt LEN set back)."""
    vals = [b.value for b in data]
    frames: list[tuple[int, bytes]] = []
    issues: list[FrameIssue] = []
    fixed = list(vals)
    i, n = 0, len(vals)
    while i < n:
        if vals[i] != protocol.SOF or i + 1 >= n:
            i += 1
            continue
        ln = vals[i + 1]
        end = i + 2 + ln + 2
        if ln <= protocol.MAX_PAYLOAD and end <= n and _crc_ok(ln, vals[i + 2:end]):
            payload = bytes(vals[i + 2:i + 2 + ln])
            if payload and payload[0] in PACKED_LEN and ln != PACKED_LEN[payload[0]]:
                issues.append(FrameIssue(len(frames), data[end - 1].t_ps, "layout", payload[0], ln,
                                         PACKED_LEN[payload[0]]))
            frames.append((data[end - 1].t_ps, payload))
            i = end
            continue
        if i + 2 < n and vals[i + 2] in PACKED_LEN:
            want = PACKED_LEN[vals[i + 2]]
            end2 = i + 2 + want + 2
            if want != ln and end2 <= n and _crc_ok(want, vals[i + 2:end2]):
                issues.append(FrameIssue(len(frames), data[i + 1].t_ps, "corrupt_len", vals[i + 2],
                                         ln, want))
                fixed[i + 1] = want
                frames.append((data[end2 - 1].t_ps, bytes(vals[i + 2:i + 2 + want])))
                i = end2
                continue
        i += 1
    return frames, issues, fixed


def _crc_ok(length: int, body: list[int]) -> bool:
    """``body`` = payload + CRC lo, hi; the CRC covers LEN and the payload."""
    if len(body) < 2:
        return False
    crc = protocol.crc16_modbus(bytes([length] + body[:-2]))
    return crc == body[-2] | body[-1] << 8


def _gaps(data: list[capmod.CapturedByte], over_ms: float) -> list[tuple[int, int]]:
    return [(a.t_ps, b.t_ps) for a, b in itertools.pairwise(data) if b.t_ps - a.t_ps > over_ms * PS_PER_MS]


def _seq_stall(s2p: list[tuple[int, bytes]], max_lost: int = 2) -> str | None:
    """The STM32's telemetry ``last_seq`` stuck, then jumping past setpoints it never applied."""
    last = None
    since = 0
    for t, p in s2p:
        if not p or p[0] != protocol.MSG_TELEMETRY:
            continue
        try:
            tm = protocol.Telemetry.decode(p)
        except ValueError:
            continue
        if last is None or tm.last_seq != last:
            skipped = None if last is None else ((tm.last_seq - last) & 0xFFFF) - 1
            if skipped is not None and max_lost < skipped < 0x8000:
                return (f"the STM32's telemetry shows last_seq stuck at {last} from "
                        f"{since / PS_PER_MS:.1f} ms, then {tm.last_seq} at {t / PS_PER_MS:.1f} ms: "
                        f"{skipped} setpoints the peer sent were never applied")
            last, since = tm.last_seq, t
    return None


# -- inference ------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    mode: str
    evidence: list[str]
    faults: list[dict[str, Any]] = field(default_factory=list)


def parse_peer_log(path: str | Path) -> list[tuple[float, float]]:
    """GC lines of the peer's console (``<t_ms> GC n=.. pause_us=..``): (end time ms, pause ms)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the peer log: {exc}", file=path, field="--peer-log",
                          expected="the peer's console lines with timestamps") from None
    out = []
    for i, ln in enumerate(lines, start=1):
        m = TS_LINE.match(ln)
        if not m or m.group(2) != "GC":
            continue
        kv = dict(KV.findall(m.group(3) or ""))
        if m.group(1) is None or "pause_us" not in kv:
            raise ConfigError(f"GC line without {'a timestamp' if m.group(1) is None else 'pause_us'}",
                              file=path, line=i, field="GC", expected="<t_ms> GC n=<n> pause_us=<us> ...")
        out.append((float(m.group(1)), _num(kv["pause_us"], path, "GC.pause_us") / 1000.0))
    return out


def infer(rep: FieldReport, dec: Decoded | None, cap: capmod.Capture | None,
          gc: list[tuple[float, float]] | None = None) -> list[Candidate]:
    """Candidate crash modes, each with the evidence that names it (strongest first)."""
    out: list[Candidate] = []
    fresh = rep.config.get("freshness_ms", DEFAULT_FRESH_MS)
    p2s = cap.direction(capmod.P2S) if cap else []
    s2p = cap.direction(capmod.S2P) if cap else []
    issues = scan_frames(p2s)[1] if p2s else []
    # CM1: the peer went quiet longer than the freshness window, and the axis was not stopped
    gaps = _gaps(p2s, fresh)
    if gaps and not rep.has_fault:
        a, b = max(gaps, key=lambda g: g[1] - g[0])
        ev = [(f"the peer->STM32 stream stops for {(b - a) / PS_PER_MS:.1f} ms at {a / PS_PER_MS:.1f} ms, "
              f"longer than the freshness window ({fresh} ms)")]
        for end, pause in gc or []:
            if pause > fresh and a / PS_PER_MS - 5 <= end <= b / PS_PER_MS + 5:
                ev.append(f"the peer log reports a GC pause of {pause:.1f} ms ending at {end:.1f} ms")
        if rep.estop:
            ev.append(f"the STM32 then stopped with ESTOP reason={rep.estop}")
        out.append(Candidate("CM1", ev))
    # CM2 / CM6: frames whose LEN disagrees with their type
    corrupt = [x for x in issues if x.kind == "corrupt_len"]
    if corrupt and not rep.has_fault:
        x = corrupt[0]
        ev = [(f"peer frame {x.frame} (type {x.msg_type:#04x}) arrived with LEN {x.got}; its type "
              f"has LEN {x.want} and its CRC checks with {x.want}: LEN was corrupted on the wire")]
        stall = _seq_stall(scan_frames(s2p)[0]) if s2p else None
        if stall:
            ev.append(stall)
        diff = x.got ^ x.want
        faults = [{"kind": "link", "action": "flip", "direction": "peer->stm32", "frame": x.frame,
                   "field": "LEN", "bit": bit} for bit in range(8) if diff >> bit & 1]
        out.append(Candidate("CM2", ev, faults))
    layout = [x for x in issues if x.kind == "layout"]
    if layout:
        x = layout[0]
        out.append(Candidate("CM6", [(f"{len(layout)} peer frame(s) with a good CRC but a LEN their "
                                     f"type does not have (first: frame {x.frame}, type "
                                     f"{x.msg_type:#04x}, LEN {x.got}, packed {x.want}): the peer "
                                     f"serializes another layout")]))
    if rep.has_fault and dec is not None:
        r = rep.regs
        fn = dec.function or "?"
        callers = {loc.function for loc in (dec.pc, dec.lr) if loc is not None}
        in_rx = bool(callers & set(RX_PATH))
        copy = fn in ("memcpy", "memmove")
        if in_rx or (copy and dec.lr is not None and dec.lr.function in RX_PATH):
            ev = [f"the fault is in {fn}, on the RX ring reader's path ({', '.join(sorted(callers))})"]
            if "r2" in r and copy and r["r2"] > RX_RING:
                ev.append(f"the copy length r2={r['r2']:#x} exceeds the {RX_RING}-byte RX ring: the "
                          f"DMA position it used was a lap behind the parser's read position")
            if "r2" not in r and not copy:
                ev.append("(no r2 in the report: the copy length cannot be checked)")
            out.append(Candidate("CM4", ev, [{"kind": "dma_latency", "controller": "dma1", "stream": 0,
                                              "latency_us": 2000}]))
        elif copy and dec.lr is None and "r2" in r and r["r2"] > RX_RING:
            out.append(Candidate("CM4", [(f"a {fn} of r2={r['r2']:#x} bytes (more than the {RX_RING}-byte "
                                         f"RX ring) ran off the end of RAM")],
                                 [{"kind": "dma_latency", "controller": "dma1", "stream": 0,
                                   "latency_us": 2000}]))
        cfsr = r.get("cfsr", 0)
        imprecise = bool(cfsr >> 10 & 1)
        if not out or out[-1].mode != "CM4":
            ev = []
            if imprecise and not copy and not in_rx:
                ev.append(f"an imprecise bus error while the core was in {fn}, which makes no access "
                          f"that could fault: a bus/ECC error from outside the code")
            if rep.recovered is False:
                ev.append("the console shows HARDFAULT and no BOOT after it: the device stayed down")
            if rep.form == "dump":
                ev.append("the report is a debugger's register dump: the device printed nothing")
            if rep.form in ("crashrec", "record") and ev:
                ev.append("the fault handler recorded it and the device rebooted (this build has the "
                          "CM7 fix; the scenario checks the others still die silently)")
            if ev and imprecise:
                # uptime counts whole SysTick ms from shortly after reset: a fault at 150.0 ms
                # records 149 (measured on the CM7 example)
                at = max(0.0, (rep.t_ms or 0.0) + 1.0)
                out.append(Candidate("CM7", ev, [{"kind": "bus_fault", "at_ms": round(at, 3)}]))
    return out


# -- the scenario ---------------------------------------------------------------------------------------
EXPECT = {
    "CM1": ({"buggy": ["estop", "runaway"], "fixed": "ok", "fixed-no-cmd_timeout": ["estop", "runaway"]}),
    "CM2": {"buggy": "desync", "fixed": "ok", "fixed-no-resync": "desync"},
    "CM4": {"buggy": "hardfault", "fixed": "ok", "fixed-no-atomic": "hardfault"},
    "CM6": {"buggy": "misparse", "fixed": "ok", "fixed-no-layout": "misparse"},
    "CM7": {"buggy": "hang", "fixed": {"any": ["hardfault"], "none": ["hang"]},
            "fixed-no-fault_handler": "hang"},
}


def scenario_text(name: str, cand: Candidate, rep: FieldReport, capture_name: str | None,
                  duration_ms: float) -> str:
    """An ordinary scenario (docs/scenarios.md) as YAML text."""
    import json

    def y(v: Any) -> str:
        return json.dumps(v)

    lines = [f"# written by `duohil replay {rep.path.name}`: the field capture replayed on the link,",
             "# plus the faults its evidence implies; `duohil ab` runs it like any scenario.",
             f"name: {name}", f"crash_mode: {cand.mode}",
             f"title: {y('Field report ' + rep.path.name + ' replayed')}",
             "description: >"]
    lines += [f"  {ev}" for ev in cand.evidence]
    lines += [f"duration_ms: {duration_ms:g}", "seed: 1"]
    if rep.config:
        lines.append("stm32:")
        lines.append("  config: {" + ", ".join(f"{k}: {v}" for k, v in sorted(rep.config.items())) + "}")
    if capture_name is None:
        lines.append("peer: {image: pooled-packed}    # no capture: a live peer of ours instead")
    else:
        lines.append(f"peer: {{replay: {y(capture_name)}}}")
    if cand.faults:
        lines.append("faults:")
        for f in cand.faults:
            lines.append("  - {" + ", ".join(f"{k}: {y(v)}" for k, v in f.items()) + "}")
    lines.append("expect:")
    for v, want in EXPECT[cand.mode].items():
        lines.append(f"  {v}: {y(want)}")
    return "\n".join(lines) + "\n"


# -- signatures -----------------------------------------------------------------------------------------
@dataclass
class Signature:
    kind: str                  # fault, estop, desync, none
    exception: str | None = None
    function: str | None = None
    detail: str = ""

    def text(self) -> str:
        if self.kind == "fault":
            detail = f" ({self.detail})" if self.detail else ""
            return f"{self.exception} in {self.function or '??'}{detail}"
        if self.kind == "estop":
            return f"ESTOP reason={self.detail}"
        if self.kind == "desync":
            return f"link dead: {self.detail}"
        return "no crash"


def field_signature(rep: FieldReport, dec: Decoded | None, cands: list[Candidate]) -> Signature:
    if rep.has_fault and dec is not None:
        return Signature("fault", dec.exception, dec.function, dec.words[0] if dec.words else "")
    if rep.estop:
        return Signature("estop", detail=rep.estop)
    for c in cands:
        if c.mode == "CM2":
            return Signature("desync", detail=c.evidence[-1])
    return Signature("none")


def run_signature(result: Any, events: list, elf: Path) -> Signature:
    """The emulated run's first STM32 fault (the engine's record of it), else its ESTOP, else desync."""
    sym = crashmod.symbolizer(str(elf.resolve()))
    for _t, kind, d in events:
        if kind in ("cpu_fault", "lockup") and d.get("machine", "stm32") == "stm32" and "pc" in d:
            cfsr = int(d.get("cfsr") or 0)
            exc = d.get("exception")
            exc_n = exc if isinstance(exc, int) else next((k for k, v in EXC_NAMES.items() if v == exc), 3)
            addr = d.get("address")
            words = crashmod.describe_cfsr(cfsr, addr, addr)
            return Signature("fault", fault_class(exc_n, cfsr), sym.locate(int(d["pc"])).function,
                             words[0] if words else "")
    for line in result.console.get("stm32", []):
        text = line.split(None, 1)[1] if line.strip() else ""
        if text.startswith("ESTOP"):
            return Signature("estop", detail=dict(KV.findall(text)).get("reason", "?"))
    if "desync" in result.outcomes:
        return Signature("desync", detail=result.evidence.get("desync", ""))
    return Signature("none")


def compare(field_sig: Signature, emu: Signature) -> str:
    if emu.kind == "none":
        return "not reproduced"
    if field_sig.kind != emu.kind:
        return "different crash"
    if field_sig.kind == "fault":
        same = field_sig.exception == emu.exception and field_sig.function == emu.function
        return "reproduced" if same else "different crash"
    if field_sig.kind == "estop":
        return "reproduced" if field_sig.detail == emu.detail else "different crash"
    return "reproduced"


def duration_for(cap: capmod.Capture | None, rep: FieldReport) -> float:
    """The run covers the whole capture (rounded up to 10 ms); without one, the fault time + 300 ms."""
    if cap is not None and cap.data:
        last = max(b.t_ps for b in cap.data) / PS_PER_MS
        return float(math.ceil(last / 10.0) * 10)
    return float(math.ceil(((rep.t_ms or 0.0) + 300.0) / 10.0) * 10)
