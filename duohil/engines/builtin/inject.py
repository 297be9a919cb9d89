"""The fault plan, applied to the builtin engine's levers.

Each realised ``duohil.faults.Fault`` maps to a lever of the models: the peer CPU's stall (GC pause),
a DMA stream's completion-latency knob, a one-address code trigger on the Cortex-M7 (irq_at), and
the UART link's byte faults. Link faults are frame-aware: a tracker follows the *sender's* bytes as
they leave (before any fault touches them), finds frame n by its SOF and LEN, and arms the byte fault
at the right index just in time. Everything is an event in virtual time; every injection is
recorded in the event log (kind ``fault``) with its index in the plan and its time.

The tracker is the link's (board/link.py): each direction follows its sender's frames in C from
the link's first byte and calls the listeners registered here, so frame n is the sender's n-th
frame whenever the fault is injected, and a run without frame-aware faults runs no Python per
byte.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from duohil.errors import ConfigError
from duohil.protocol import MSG_SETPOINT
from ..base import PS_PER_MS, PS_PER_US
from .board.link import LinkFault

if TYPE_CHECKING:  # pragma: no cover
    from duohil.faults import Fault
    from .board.link import _Direction
    from .session import BuiltinSession

_PAYLOAD = re.compile(r"^payload\[(\d+)\]$")


class Injector:
    def __init__(self, session: "BuiltinSession") -> None:
        self.session = session
        self._fired_hooks: dict[int, list[Callable[[], None]]] = {}

    def _record(self, index: int, fault: "Fault", t: int | None = None, **extra: Any) -> None:
        sched = self.session.scheduler
        sched.record("fault", t=t, index=index, fault=fault.kind, **fault.params, **extra)

    # -- entry point -------------------------------------------------------------------------------
    def inject(self, fault: "Fault", index: int) -> int | None:
        fn = getattr(self, "_" + fault.kind, None)
        if fn is None:
            raise ConfigError(f"the builtin engine has no lever for fault kind {fault.kind!r}",
                              field=f"faults[{index}]")
        return fn(fault, index)

    def _peer_stall(self, f: "Fault", index: int) -> int | None:
        dur = int(round(f.params["duration_ms"] * PS_PER_MS))
        peer = self.session.machine("peer")

        def stall() -> None:
            now = self.session.scheduler.now
            peer.cpu.stall(now + dur)
            self._record(index, f, t=now)

        if "at_ms" in f.params:
            t = int(round(f.params["at_ms"] * PS_PER_MS))
            self.session.scheduler.at(t, stall, name=f"fault{index}.peer_stall")
            return t
        target = f.params["after_setpoints"]
        tr = self._tracker("peer->stm32", index)
        seen = [0]

        def on_frame(_i: int, payload: bytes, t_ps: int) -> None:
            if payload and payload[0] == MSG_SETPOINT:
                seen[0] += 1
                if seen[0] == target:
                    # the setpoint's last byte has just left the peer's UART: stall from now
                    self.session.scheduler.at(self.session.machine("peer").now(), stall,
                                              name=f"fault{index}.peer_stall")

        tr.frame_listeners.append(on_frame)
        return None

    def _dma_latency(self, f: "Fault", index: int) -> int:
        m = self.session.machine("stm32")
        dma = m.peripherals.get(f.params["controller"])
        if dma is None or not hasattr(dma, "set_completion_latency"):
            raise ConfigError(f"no DMA controller {f.params['controller']!r} on the STM32",
                              field=f"faults[{index}].controller", expected="dma1 or dma2")
        t = int(round(f.params["at_ms"] * PS_PER_MS))
        lat = int(round(f.params["latency_us"] * PS_PER_US))

        def apply() -> None:
            dma.set_completion_latency(f.params["stream"], lat)
            self._record(index, f)

        self.session.scheduler.at(t, apply, name=f"fault{index}.dma_latency")
        return t

    def _irq_at(self, f: "Fault", index: int) -> None:
        handle = self.session.stm32
        start = handle.symbol(f.params["symbol"]) & ~1
        off = f.params["offset"]
        addr = start + (_body_offset(handle.read_memory(start, 48)) if off == "body" else off)
        cpu = self.session.machine("stm32").cpu
        t_arm = int(round(f.params["at_ms"] * PS_PER_MS))
        self._fired_hooks.setdefault(index, [])

        def fired(pc: int) -> None:
            self._record(index, f, t=cpu.now_ps(), pc=pc)
            for fn in self._fired_hooks.pop(index, []):
                fn()

        def arm() -> None:
            cpu.interrupt_at(addr, f.params["irq"], f.params["nth"], fired)

        after = f.params.get("after")
        if after is not None:
            if after >= index or after not in self._fired_hooks:
                raise ConfigError(f"irq_at chain refers to fault {after}, which is not an earlier "
                                  f"irq_at fault", field=f"faults[{index}].after",
                                  expected="the index of an earlier irq_at fault")
            self._fired_hooks[after].append(arm)
        else:
            self.session.scheduler.at(t_arm, arm, name=f"fault{index}.irq_at")
        return None

    def _bus_fault(self, f: "Fault", index: int) -> int:
        cpu = self.session.machine("stm32").cpu
        t = int(round(f.params["at_ms"] * PS_PER_MS))

        def fire() -> None:
            self._record(index, f)
            cpu.inject_bus_error(f.params["address"])

        self.session.scheduler.at(t, fire, name=f"fault{index}.bus_fault")
        return t

    def _tracker(self, direction: str, index: int) -> "_Direction":
        """The link direction whose sender's frames a fault follows (board/link.py: frames are
        counted from the link's first byte; its listeners are called as each byte leaves)."""
        link = self.session.link
        tr = link.directions.get(direction) if link is not None else None
        if tr is None:
            raise ConfigError(f"no link in direction {direction}", field=f"faults[{index}].direction")
        return tr

    def _link(self, f: "Fault", index: int) -> None:
        p = f.params
        direction, frame, field = p["direction"], p["frame"], p.get("field", "LEN")
        tr = self._tracker(direction, index)
        link = self.session.link
        done = [False]

        def on_byte(k: int, fld: str | None, frame_idx: int, length: int) -> None:
            if done[0] or frame_idx != frame:
                return
            if fld == "CRC_HI" and field != "CRC_HI":
                # the frame ended without the field (payload[i] beyond its LEN): say so in the log
                # rather than pass silently; the realised plan then has no time for this fault
                done[0] = True
                self.session.scheduler.record("fault_not_applied", index=index, fault=f.kind,
                                              reason=f"frame {frame} has no {field} (LEN {length})")
                return
            if fld != field:
                return
            done[0] = True
            action = p["action"]
            if action == "flip":
                lf = LinkFault("flip", index=k, mask=1 << p.get("bit", 0))
            elif action == "drop":
                lf = LinkFault("drop", index=k)
            elif action == "insert":
                lf = LinkFault("insert", index=k, value=p.get("value", 0xA5))
            elif action == "duplicate":
                lf = LinkFault("duplicate", index=k)
            elif action == "delay":
                lf = LinkFault("delay", index=k, delay_ps=int(round(p.get("delay_us", 0) * PS_PER_US)))
            else:                                   # truncate: this byte and the rest of the frame
                rest = (length + 4) - _offset(fld, length)
                lf = LinkFault("truncate", index=k, end=k + rest)
            link.add_fault(direction, lf)
            self._record(index, f, byte_index=k)

        tr.byte_listeners.append(on_byte)
        return None

    def _noise(self, f: "Fault", index: int) -> int:
        p = f.params
        t0 = int(round(p["at_ms"] * PS_PER_MS))
        t1 = t0 + int(round(p["duration_ms"] * PS_PER_MS))
        self.session.link.add_fault(p["direction"], LinkFault("noise", t_start=t0, t_end=t1,
                                                              ber=float(p["ber"])))
        self.session.scheduler.at(t0, lambda: self._record(index, f), name=f"fault{index}.noise")
        return t0


def _offset(field: str, length: int) -> int:
    """Byte offset of a field inside its frame."""
    if field == "SOF":
        return 0
    if field == "LEN":
        return 1
    m = _PAYLOAD.match(field)
    if m:
        return 2 + int(m.group(1))
    return 2 + length + (0 if field == "CRC_LO" else 1)


def _body_offset(code: bytes) -> int:
    """Offset of the first instruction after a Thumb-2 prologue (PUSH, then SUB SP): where a
    handler's locals exist. Interleaved instructions are stepped over; 0 if there is no prologue
    within the first 12 instructions."""
    off = after = 0
    for _ in range(12):
        if off + 2 > len(code):
            break
        hw = int.from_bytes(code[off:off + 2], "little")
        wide = (hw >> 11) in (0x1D, 0x1E, 0x1F)
        size = 4 if wide else 2
        hw2 = int.from_bytes(code[off + 2:off + 4], "little") if wide else 0
        if not wide and ((hw & 0xFF80) == 0xB080 or (hw & 0xFE00) == 0xB400):
            after = off + size                                   # SUB SP,#imm / PUSH {..}
        elif wide and (hw == 0xE92D or ((hw & 0xFBEF) == 0xF1AD or (hw & 0xFBFF) == 0xF2AD)
                       and (hw2 & 0x0F00) == 0x0D00):
            after = off + size                                   # PUSH.W / SUB.W SP / SUBW SP
        off += size
    return after
