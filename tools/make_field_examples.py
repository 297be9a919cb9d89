"""Write scenarios/field/examples/: what a field unit would have shown for CM1, CM2, CM4 and CM7.

Each example is our own firmware run under its crash mode's fault (the scenario in scenarios/), and
what is recorded is only what a field engineer could have: the STM32 console (or a debugger's
register dump of a silent unit, or g_crash_record read out of RAM), the link as a logic analyser
decodes it (start-bit times, the bytes as they arrived, faults included), and the peer's console.
The injected peer stall of CM1 stands for a GC pause: its peer log carries the GC line a GC peer
prints after such a pause (esp32_firmware/README.md), with the pause the stall lasted; the heap
figures a real GC line also carries (live, freed, alloc) are left out, as nothing measured them.

    .venv/bin/python tools/make_field_examples.py        # rewrites scenarios/field/examples/
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from duohil import scenario as scmod
from duohil.duo import Duo
from duohil.engines.base import PS_PER_MS, PS_PER_S

OUT = REPO / "scenarios" / "field" / "examples"
FRAME_BITS = 10


def _run(name: str, variant: str) -> Duo:
    sc = scmod.load(REPO / "scenarios" / f"{name}.yaml")
    duo = Duo.from_scenario(sc, variant)
    duo.with_timeline = False
    duo.run_to_end()
    return duo


def _console(duo: Duo, machine: str) -> str:
    lines = duo.stm32.console_lines if machine == "stm32" else duo.peer.console_lines
    return "".join(f"{ln.t_ps / PS_PER_MS:10.3f} {ln.text}\n" for ln in lines if ln.text.strip())


def _wire(duo: Duo) -> list[tuple[int, str, int]]:
    """Every byte that arrived, as (start-bit time ps, p2s/s2p, value): arrival minus one frame."""
    bits = {"p2s": duo.session.peer.machine.peripherals["uart1"].bit_time_ps(),
            "s2p": duo.session.stm32.machine.peripherals["usart3"].bit_time_ps()}
    out = []
    for b in duo.session.link_bytes():
        if b.value is None:
            continue
        d = "p2s" if b.direction == "peer->stm32" else "s2p"
        out.append((b.t_ps - FRAME_BITS * bits[d], d, b.value))     # the sender's start bit
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def _secs(t: int) -> str:
    return f"{t // PS_PER_S}.{t % PS_PER_S:012d}"


def saleae2(rows: list[tuple[int, str, int]], names: dict[str, str], bit_ps: int) -> str:
    out = ["name,type,start_time,duration,data,error"]
    dur = _secs(FRAME_BITS * bit_ps)
    for t, d, v in rows:
        if d in names:
            out.append(f"{names[d]},data,{_secs(t)},{dur},0x{v:02X},")
    return "\n".join(out) + "\n"


def logic1(rows: list[tuple[int, str, int]]) -> str:
    out = ["Time [s],Value,Parity Error,Framing Error"]
    out += [f"{_secs(t)},0x{v:02X},," for t, d, v in rows if d == "p2s"]
    return "\n".join(out) + "\n"


def plain(rows: list[tuple[int, str, int]]) -> str:
    return "time_s,dir,byte\n" + "".join(f"{_secs(t)},{d},0x{v:02x}\n" for t, d, v in rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # CM1: buggy, a 42.4 ms stall (seed 19); console log + Logic 1.x capture + peer log
    duo = _run("cm1_cmd_timeout", "buggy")
    (OUT / "cm1.console.log").write_text(_console(duo, "stm32"))
    (OUT / "cm1.logic1.csv").write_text(logic1(_wire(duo)))
    stall = next(f for f in duo.fault_plan if f["kind"] == "peer_stall")
    end_ms = stall["t_ps"] / PS_PER_MS + stall["duration_ms"]
    pause_us = round(stall["duration_ms"] * 1000)
    gc = f"{end_ms:10.3f} GC n=1 pause_us={pause_us} model_us={pause_us} reason=pacer\n"
    peer = [ln for ln in _console(duo, "peer").splitlines(keepends=True)]
    (OUT / "cm1.peer.log").write_text("".join(sorted(peer + [gc], key=lambda s: float(s.split()[0]))))
    duo.close()
    # CM2: buggy, LEN of setpoint frame 60 flipped; console log + Saleae 2 capture of both lines
    duo = _run("cm2_resync", "buggy")
    bit = duo.session.peer.machine.peripherals["uart1"].bit_time_ps()
    (OUT / "cm2.console.log").write_text(_console(duo, "stm32"))
    (OUT / "cm2.saleae2.csv").write_text(saleae2(_wire(duo), {"p2s": "Async Serial p2s",
                                                              "s2p": "Async Serial s2p"}, bit))
    duo.close()
    # CM4: buggy, silent after its BusFault: a debugger's dump of the stacked frame + plain capture
    sc = scmod.load(REPO / "scenarios" / "cm4_atomic.yaml")
    duo = Duo.from_scenario(sc, "buggy")
    duo.with_timeline = False
    duo.run_to_first(["hardfault"])
    duo.run(ms=1)
    m = duo.session.stm32
    from unicorn import arm_const as A
    sp = m.cpu.read_reg(A.UC_ARM_REG_SP)
    frame = struct.unpack("<8I", m.read_memory(sp, 32))
    st = m.cpu_state()
    regs = dict(zip(("r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr"), frame))
    dump = ["HardFault (read with a debugger from the stopped unit; it printed nothing)",
            *(f"{k:<5}= 0x{v:08x}" for k, v in regs.items()),
            *(f"{k.upper()}: 0x{st[k]:08x}" for k in ("cfsr", "hfsr", "mmfar", "bfar"))]
    (OUT / "cm4.regdump.txt").write_text("\n".join(dump) + "\n")
    duo.run_until(sc.duration_ms)
    (OUT / "cm4.capture.csv").write_text(plain(_wire(duo)))
    duo.close()
    # CM7: the fixed build takes the injected bus error, reports it; CRASHREC line, the record in
    # RAM as a gdb x/20wx dump and as raw bytes, Saleae 2 capture of the peer->STM32 line
    duo = _run("cm7_fault_handler", "fixed")
    line = next(ln.text for ln in duo.stm32.console_lines if ln.text.startswith("CRASHREC"))
    (OUT / "cm7.crashrec.txt").write_text(line + "\n")
    addr = m_addr = duo.session.stm32.symbol("g_crash_record")
    raw = duo.session.stm32.read_memory(addr, 80)
    (OUT / "cm7.record.bin").write_bytes(raw)
    words = struct.unpack("<20I", raw)
    hexd = [f"0x{m_addr + 16 * i:08x}:\t" + "\t".join(f"0x{w:08x}" for w in words[4 * i:4 * i + 4])
            for i in range(5)]
    (OUT / "cm7.record.hex").write_text("\n".join(hexd) + "\n")
    (OUT / "cm7.saleae2.csv").write_text(saleae2(_wire(duo), {"p2s": "Async Serial"},
                                                    duo.session.peer.machine.peripherals["uart1"].bit_time_ps()))
    duo.close()
    print(f"wrote {len(list(OUT.iterdir()))} files in {OUT}")


if __name__ == "__main__":
    main()
