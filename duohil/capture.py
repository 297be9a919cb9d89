"""Link captures: the CSV a logic analyser's async-serial decoder exports, read into timed bytes.

Three layouts are accepted, recognised by their header line (docs/replay.md has examples):

- Saleae Logic 2 analyzer export: ``name,type,start_time,duration,data,error``; ``data`` as
  ``0xNN``; one analyzer is the peer->STM32 line, two need ``p2s``/``s2p`` in their names.
- Saleae Logic 1.x: ``Time [s],Value,Parity Error,Framing Error``; one channel, peer->STM32.
- plain: ``time_s,dir,byte`` with ``dir`` ``p2s`` (peer->STM32) or ``s2p``.

Times are start-bit times in seconds (any number of decimals; read exactly, to the picosecond).
A header we do not know, a value that is not a byte, a time that goes back within one direction:
one ConfigError naming the file, the line and what was expected (the CLI exits 2).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .engines.base import PS_PER_MS, PS_PER_S
from .errors import ConfigError

P2S, S2P = "p2s", "s2p"
LAYOUTS = {
    "saleae2": ["name", "type", "start_time", "duration", "data", "error"],
    "logic1": ["time [s]", "value", "parity error", "framing error"],
    "plain": ["time_s", "dir", "byte"],
}
EXPECTED_HEADER = ("one of the headers: name,type,start_time,duration,data,error (Saleae Logic 2) | "
                   "Time [s],Value,Parity Error,Framing Error (Logic 1.x) | time_s,dir,byte")
MAX_ROWS = 2_000_000


@dataclass
class CapturedByte:
    t_ps: int                  # start-bit time
    direction: str             # p2s or s2p
    value: int
    error: str = ""            # what the analyser flagged (framing, parity), else ""
    line: int = 0              # line in the file


@dataclass
class Capture:
    path: Path
    layout: str
    data: list[CapturedByte] = field(default_factory=list)

    def direction(self, d: str) -> list[CapturedByte]:
        return [b for b in self.data if b.direction == d]


def _time_ps(text: str, path: Path, line: int, col: str) -> int:
    try:
        v = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{text!r} is not a time", file=path, line=line, field=col,
                          expected="seconds, e.g. 0.012345") from None
    if not v.is_finite() or v < 0:
        raise ConfigError(f"time {text!r}", file=path, line=line, field=col,
                          expected="a finite time in seconds >= 0")
    return int((v * PS_PER_S).to_integral_value())


def _byte(text: str, path: Path, line: int, col: str) -> int:
    t = text.strip()
    try:
        v = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    except ValueError:
        v = -1
    if not 0 <= v <= 255:
        raise ConfigError(f"{text!r} is not a byte", file=path, line=line, field=col,
                          expected="0x00..0xFF (or 0..255)")
    return v


def read_capture(path: str | Path) -> Capture:
    """Parse a capture CSV (any of LAYOUTS) into bytes per direction, times checked monotonic."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the capture: {exc}", file=path,
                          expected="a CSV exported by a logic analyser's async-serial decoder") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ConfigError("empty capture", file=path, line=1, field="header", expected=EXPECTED_HEADER)
    header = [h.strip().lower() for h in rows[0]]
    layout = next((k for k, cols in LAYOUTS.items() if header == cols), None)
    if layout is None:
        raise ConfigError(f"unknown columns {','.join(rows[0])!r}", file=path, line=1, field="header",
                          expected=EXPECTED_HEADER)
    if len(rows) > MAX_ROWS:
        raise ConfigError(f"{len(rows)} rows", file=path, field="rows",
                          expected=f"at most {MAX_ROWS} bytes")
    cap = Capture(path, layout)
    names: dict[str, str] = {}
    for i, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ConfigError(f"{len(row)} fields", file=path, line=i, field="row",
                              expected=f"{len(header)} fields ({','.join(LAYOUTS[layout])})")
        if layout == "saleae2":
            name, kind, start, _dur, data, err = row
            if kind.strip().lower() != "data":
                continue                      # start/stop/break markers carry no byte
            names.setdefault(name.strip(), "")
            cap.data.append(CapturedByte(_time_ps(start, path, i, "start_time"), name.strip(),
                                         _byte(data, path, i, "data"), err.strip(), i))
        elif layout == "logic1":
            t, value, perr, ferr = row
            err = ",".join(w for w, f in (("parity", perr), ("framing", ferr))
                           if f.strip() not in ("", "0", "false", "False"))
            cap.data.append(CapturedByte(_time_ps(t, path, i, "Time [s]"), P2S,
                                         _byte(value, path, i, "Value"), err, i))
        else:
            t, d, value = row
            d = d.strip().lower()
            if d not in (P2S, S2P):
                raise ConfigError(f"direction {d!r}", file=path, line=i, field="dir",
                                  expected="p2s (peer->STM32) or s2p (STM32->peer)")
            cap.data.append(CapturedByte(_time_ps(t, path, i, "time_s"), d,
                                         _byte(value, path, i, "byte"), "", i))
    if layout == "saleae2":
        _name_directions(names, path)
        for b in cap.data:
            b.direction = names[b.direction]
    if not cap.data:
        raise ConfigError("no bytes in the capture", file=path, field="rows",
                          expected="at least one decoded byte")
    last: dict[str, CapturedByte] = {}
    for b in cap.data:
        prev = last.get(b.direction)
        if prev is not None and b.t_ps < prev.t_ps:
            raise ConfigError(f"time goes back: {b.t_ps / PS_PER_S:.9f} s after "
                              f"{prev.t_ps / PS_PER_S:.9f} s (line {prev.line})", file=path, line=b.line,
                              field="time", expected="times that never decrease within a direction")
        last[b.direction] = b
    return cap


def _name_directions(names: dict[str, str], path: Path) -> None:
    """One analyzer: the peer->STM32 line. Two or more: each name must say p2s or s2p."""
    if len(names) == 1:
        names[next(iter(names))] = P2S
        return
    for n in names:
        low = n.lower()
        d = P2S if P2S in low else S2P if S2P in low else None
        if d is None:
            raise ConfigError(f"analyzer {n!r} among {len(names)} analyzers", file=path, field="name",
                              expected="one analyzer (the peer->STM32 line), or names containing "
                                       "p2s / s2p")
        names[n] = d


def write_plain(path: str | Path, data: list[tuple[int, str, int]]) -> None:
    """(t_ps, direction, byte) rows as the plain layout, times to the picosecond."""
    lines = ["time_s,dir,byte"]
    for t, d, v in data:
        lines.append(f"{t // PS_PER_S}.{t % PS_PER_S:012d},{d},0x{v:02x}")
    Path(path).write_text("\n".join(lines) + "\n")


def replay_schedule(path: Path, offset_ms: float, where: Path, field_name: str
                    ) -> tuple[tuple[int, int], ...]:
    """The peer->STM32 bytes of a capture as (start time in ps, byte), shifted by ``offset_ms``;
    errors name the scenario file ``where`` and its field."""
    try:
        cap = read_capture(path)
    except ConfigError as exc:
        raise ConfigError(f"capture {exc}", file=where, field=field_name,
                          expected=exc.expected) from None
    shift = round(offset_ms * PS_PER_MS)
    out = []
    for b in cap.direction(P2S):
        t = b.t_ps + shift
        if t < 0:
            raise ConfigError(f"offset_ms {offset_ms:g} puts the byte of {path.name} line {b.line} "
                              f"before the run starts", file=where, field=field_name,
                              expected="an offset that keeps every byte at a time >= 0")
        out.append((t, b.value))
    if not out:
        raise ConfigError(f"capture {path} has no peer->STM32 bytes", file=where, field=field_name,
                          expected="a capture of the peer->STM32 line")
    return tuple(out)
