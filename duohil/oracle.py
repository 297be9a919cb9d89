"""Oracles: classify a run from observations, not from what the firmware claims.

Ground truth comes first: the plant's end-stop events (runaway), the CPU's own fault entries and
lockups recorded by the engine (hardfault), bytes on the wire decoded by duohil.protocol as the
*sender* meant them (misparse, stale telemetry, lost frames), and RAM read by the harness (stack
paint, status counters sampled in virtual time). Console lines count as observations of output.

``classify`` returns every label that applies, each with one line of evidence; a run with no label
is ``ok``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .engines.base import PS_PER_MS, ConsoleLine, LinkByte

DEFAULTS = {
    "recovery_ms": 100.0,       # CM7: BOOT again within this long after a fault
    "max_frames_lost": 2,       # CM2: setpoint frames the STM32 may lose around one link fault
    "hang_ms": 200.0,           # silence (no telemetry on the wire) this long at the end = hang
    "desync_ms": 50.0,          # CM2: no applied setpoint for this long after the fault = desync
    "stack_limit": 0,           # bytes; 0 = the stack's own size (any overflow)
    "settle_ms": 20.0,          # frames sent in the last settle_ms may still be in flight
}

FAULT_EVENTS = ("cpu_fault", "lockup")
#: the engine stopped or found stuck a CPU (hang detection, storms): the core makes no progress
STOP_EVENTS = ("cpu_hung", "cpu_stopped")


@dataclass
class Observations:
    duration_ps: int
    console: dict[str, list[ConsoleLine]] = field(default_factory=dict)
    link: list[LinkByte] = field(default_factory=list)
    events: list[tuple[int, str, dict]] = field(default_factory=list)
    samples: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    crash_record: dict[str, Any] | None = None       # the STM32's g_crash_record at the end
    peer_layout: str = "packed"                       # how the peer serializes (image name)
    stack: dict[str, int] = field(default_factory=dict)   # size, high_water (RAM scan), guard_ok
    faults: list[dict[str, Any]] = field(default_factory=list)  # realised plan with t_ps
    error: str | None = None                          # the engine failed: what it said


@dataclass
class Verdict:
    labels: list[str]
    evidence: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.labels == ["ok"]


# -- wire decoding ------------------------------------------------------------------------------
#: (direction) -> (the tap list, its length then, the frames): the oracles, the timeline and the
#: report each decode the same wire; decoding it once per run saves ~5% of a campaign trial
_FRAMES_MEMO: dict[str, tuple[list[LinkByte], int, list[tuple[int, bytes]]]] = {}


def sender_frames(link: list[LinkByte], direction: str) -> list[tuple[int, bytes]]:
    """Frames as the sender put them on the wire (faults undone), with the arrival time of their
    last byte. Inserted bytes are not the sender's; dropped ones were."""
    hit = _FRAMES_MEMO.get(direction)
    if hit is not None and hit[0] is link and hit[1] == len(link):
        return list(hit[2])
    out = _sender_frames(link, direction)
    _FRAMES_MEMO[direction] = (link, len(link), out)
    return list(out)


def _sender_frames(link: list[LinkByte], direction: str) -> list[tuple[int, bytes]]:
    push = protocol.FrameDecoder(resync=True).push
    out: list[tuple[int, bytes]] = []
    done: list[bytes] = []
    for b in link:
        if b.direction != direction or b.fault == "insert":
            continue
        push(b.sent if b.sent is not None else b.value, done)
        if done:
            out.extend((b.t_ps, payload) for payload in done)
            done.clear()
    return out


def _meant_setpoints(frames: list[tuple[int, bytes]], layout: str) -> dict[int, tuple[int, int]]:
    """seq -> (velocity, flags) as the peer meant them, decoding its own layout."""
    meant: dict[int, tuple[int, int]] = {}
    for _t, p in frames:
        if not p or p[0] != protocol.MSG_SETPOINT:
            continue
        try:
            if layout == "natural":
                sp = protocol.decode_setpoint_natural(p)
            else:
                sp = protocol.Setpoint.decode(p)
        except ValueError:
            continue
        meant[sp.seq] = (sp.velocity, sp.flags)
    return meant


def _meant_sensors(frames: list[tuple[int, bytes]], layout: str
                   ) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Every sensor report the peer sent: (time on the wire, (id, temp, status, flags))."""
    meant: list[tuple[int, tuple[int, int, int, int]]] = []
    for t, p in frames:
        if not p or p[0] != protocol.MSG_SENSOR_REPORT:
            continue
        try:
            if layout == "natural":
                sr = protocol.decode_sensor_report_natural(p)
            else:
                sr = protocol.SensorReport.decode(p)
        except ValueError:
            continue
        meant.append((t, (sr.id, sr.temp, sr.status, sr.flags)))
    return meant


# -- the oracles -----------------------------------------------------------------------------------
def _runaway(obs: Observations, p: dict) -> str | None:
    for t, kind, d in obs.events:
        if kind == "end_stop":
            return (f"plant hit the {d.get('side', '?')} end stop at {t / PS_PER_MS:.3f} ms "
                    f"(position {d.get('position')}, velocity {d.get('velocity')})")
    return None


def _estop(obs: Observations, p: dict) -> str | None:
    for line in obs.console.get("stm32", []):
        if line.text.startswith("ESTOP"):
            return f"{line.text!r} at {line.t_ps / PS_PER_MS:.3f} ms"
    return None


EXCEPTION_NAMES = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}


def _hardfault(obs: Observations, p: dict) -> str | None:
    for t, kind, d in obs.events:
        if kind in FAULT_EVENTS and d.get("machine", "stm32") == "stm32":
            what = d.get("exception", kind)
            what = EXCEPTION_NAMES.get(what, what) if isinstance(what, int) else what
            if kind == "lockup":
                what = "a lockup"
            pc = d.get("pc")
            pcs = f" pc={pc:#010x}" if isinstance(pc, int) else ""
            return f"STM32 took {what}{pcs} at {t / PS_PER_MS:.3f} ms"
    for line in obs.console.get("stm32", []):
        if line.text.startswith("HARDFAULT"):
            return f"{line.text!r} at {line.t_ps / PS_PER_MS:.3f} ms"
    return None


def _hang(obs: Observations, p: dict) -> str | None:
    """Silent death: no telemetry frame on the wire for hang_ms before the end of the run, and no
    BOOT after the last one (a run that is rebooting is not silent); or, after the STM32 took a
    fault, no BOOT within recovery_ms (CM7: a patched device recovers within 100 ms)."""
    for t, kind, d in obs.events:
        if kind in STOP_EVENTS and d.get("machine", "stm32") == "stm32":
            pc = d.get("pc")
            pcs = f" at pc={pc:#010x}" if isinstance(pc, int) else ""
            return f"STM32 CPU {d.get('reason', kind)}{pcs} at {t / PS_PER_MS:.3f} ms"
    boots = [ln.t_ps for ln in obs.console.get("stm32", []) if ln.text.startswith("BOOT")]
    bound = p["recovery_ms"] * PS_PER_MS
    for t, kind, d in obs.events:
        if kind in FAULT_EVENTS and d.get("machine", "stm32") == "stm32":
            if t + bound <= obs.duration_ps and not any(t < b <= t + bound for b in boots):
                return (f"no BOOT within {p['recovery_ms']:g} ms of the STM32 fault at "
                        f"{t / PS_PER_MS:.3f} ms: the device did not recover")
            break
    window = p["hang_ms"] * PS_PER_MS
    if obs.duration_ps <= window:
        return None
    tele = [t for t, pl in sender_frames(obs.link, "stm32->peer")
            if pl and pl[0] == protocol.MSG_TELEMETRY]
    last = tele[-1] if tele else None
    if last is not None and obs.duration_ps - last <= window:
        return None
    if boots and obs.duration_ps - boots[-1] <= window:
        return None
    since = "the start" if last is None else f"{last / PS_PER_MS:.3f} ms"
    return f"no telemetry from the STM32 since {since} (run ended at {obs.duration_ps / PS_PER_MS:.0f} ms)"


def _link_fault_end(obs: Observations) -> int | None:
    ts = [f["t_ps"] + int(f.get("duration_ms", 0) * PS_PER_MS) for f in obs.faults
          if f.get("kind") in ("link", "noise") and "t_ps" in f]
    return max(ts) if ts else None


def _desync(obs: Observations, p: dict) -> str | None:
    """Link dead beyond the recovery bound after a link fault: too many setpoint frames the peer
    sent were never applied, or none was applied for desync_ms after the fault."""
    t_fault = _link_fault_end(obs)
    if t_fault is None:
        return None
    samples = obs.samples.get("stm32", [])
    if not samples:
        return None
    settle = p["settle_ms"] * PS_PER_MS
    sent = [t for t, pl in sender_frames(obs.link, "peer->stm32")
            if pl and pl[0] == protocol.MSG_SETPOINT and t >= t_fault]
    before = [s for t, s in samples if t <= t_fault]
    base = before[-1]["setpoints"] if before else 0
    end_t, end = samples[-1]
    sent_n = sum(1 for t in sent if t <= end_t - settle)
    applied = end["setpoints"] - base
    lost = sent_n - applied
    if sent_n and lost > p["max_frames_lost"]:
        return (f"{lost} of {sent_n} setpoints sent after the link fault at "
                f"{t_fault / PS_PER_MS:.3f} ms were never applied (bound {p['max_frames_lost']})")
    # recovery time: the first sample after the fault with a new applied setpoint
    bound = p["desync_ms"] * PS_PER_MS
    for t, s in samples:
        if t > t_fault and s["setpoints"] > base:
            if t - t_fault > bound:
                return (f"no setpoint applied for {(t - t_fault) / PS_PER_MS:.1f} ms after the link "
                        f"fault (bound {p['desync_ms']} ms)")
            return None
    if end_t - t_fault > bound and sent_n:
        return f"no setpoint applied after the link fault at {t_fault / PS_PER_MS:.3f} ms"
    return None


def _misparse(obs: Observations, p: dict) -> str | None:
    frames = sender_frames(obs.link, "peer->stm32")
    sp = _meant_setpoints(frames, obs.peer_layout)
    sr = _meant_sensors(frames, obs.peer_layout)
    for t, s in obs.samples.get("stm32", []):
        if s.get("setpoints", 0) and "sp_seq" in s:
            want = sp.get(s["sp_seq"])
            if want is None:
                return (f"STM32 applied setpoint seq {s['sp_seq']} at {t / PS_PER_MS:.3f} ms, which "
                        f"the peer never sent")
            if (s["sp_velocity"], s["sp_flags"]) != want:
                return (f"setpoint seq {s['sp_seq']}: peer meant velocity={want[0]} flags={want[1]:#x}, "
                        f"STM32 decoded velocity={s['sp_velocity']} flags={s['sp_flags']:#x}")
        if s.get("sensor_reports", 0) and "sensor_id" in s:
            got = (s["sensor_id"], s["sensor_temp"], s["sensor_status"], s["sensor_flags"])
            sent = [v for ts, v in sr if ts <= t]
            if got not in sent:
                want_s = sent[-1] if sent else None
                meant = ("nothing" if want_s is None else
                         f"temp={want_s[1]} status={want_s[2]} flags={want_s[3]:#x}")
                return (f"STM32 decoded sensor report id {got[0]} temp={got[1]} status={got[2]} "
                        f"flags={got[3]:#x} at {t / PS_PER_MS:.3f} ms; the peer sent no such "
                        f"report (its latest meant {meant})")
    return None


def _seq_regressed(prev: int, cur: int) -> bool:
    """16-bit sequence went backwards (a small forward wrap is progress)."""
    return cur != prev and ((cur - prev) & 0xFFFF) > 0x8000


def _stale(obs: Observations, p: dict) -> str | None:
    # The STM32 counted CRC errors although every frame on the wire arrived intact and no link
    # fault was injected: it parsed memory other than what the DMA wrote (stale cache lines).
    # A (re)boot starts listening mid-frame: errors within settle_ms of a BOOT are not stale.
    boots = sorted(ln.t_ps for ln in obs.console.get("stm32", []) if ln.text.startswith("BOOT"))
    settle = p["settle_ms"] * PS_PER_MS
    if not any(f.get("kind") in ("link", "noise") for f in obs.faults):
        samples = obs.samples.get("stm32", [])
        bad_wire = any(b.fault for b in obs.link if b.direction == "peer->stm32")
        if samples and not bad_wire:
            prev_t, prev_n = 0, 0
            for t, s in samples:
                n = s.get("crc_errors", 0)
                booted = any(prev_t - settle < b <= t for b in boots)
                if n > prev_n and not booted:
                    return (f"STM32 counted {n - prev_n} CRC error(s) between "
                            f"{prev_t / PS_PER_MS:.3f} and {t / PS_PER_MS:.3f} ms on a clean wire: "
                            f"it read stale data, not what the DMA received")
                prev_t, prev_n = t, n
    def rebooted(t0: int, t1: int) -> bool:       # sequences legitimately restart at a reboot
        return any(t0 < b <= t1 for b in boots)

    prev = None
    prev_t = 0
    for t, s in obs.samples.get("stm32", []):
        if not s.get("setpoints") or "last_seq" not in s:
            continue
        if rebooted(prev_t, t):
            prev = None
        prev_t = t
        cur = s["last_seq"]
        if prev is not None and _seq_regressed(prev, cur):
            return (f"applied setpoint sequence went back from {prev} to {cur} at "
                    f"{t / PS_PER_MS:.3f} ms (an old command re-executed)")
        prev = cur
    prev = None
    prev_t = 0
    for t, pl in sender_frames(obs.link, "stm32->peer"):
        if not pl or pl[0] != protocol.MSG_TELEMETRY:
            continue
        try:
            tm = protocol.Telemetry.decode(pl)
        except ValueError:
            continue
        if rebooted(prev_t, t):
            prev = None
        prev_t = t
        if prev is not None and not ((tm.seq - prev) & 0xFFFF) or \
                prev is not None and _seq_regressed(prev, tm.seq):
            return (f"telemetry on the wire went from seq {prev} to {tm.seq} at "
                    f"{t / PS_PER_MS:.3f} ms (stale data sent)")
        prev = tm.seq
    return None


def _stack_overflow(obs: Observations, p: dict) -> str | None:
    st = obs.stack
    if not st:
        return None
    limit = p["stack_limit"] or st.get("size", 0)
    if st.get("high_water", 0) >= limit > 0:
        return f"stack high-water {st['high_water']} B reached the limit {limit} B (RAM scan)"
    if st.get("guard_ok") is False:
        return "stack guard word below the stack was overwritten"
    return None


def _peer_fault(obs: Observations, p: dict) -> str | None:
    """The peer's CPU took a synchronous exception (access fault, illegal instruction...): the
    engine's own ``cpu_trap`` event, whatever the firmware did about it (a peer stuck in a trap
    loop, or one that never started, is not ok)."""
    n = 0
    first = None
    for t, kind, d in obs.events:
        of = d.get("of") if kind == "repeated" else kind
        if (of == "cpu_trap" or of in STOP_EVENTS) and d.get("machine") != "stm32":
            n += int(d.get("count", 1)) if kind == "repeated" else 1
            if first is None:
                first = (t, d)
    if first is None:
        return None
    t, d = first
    if "mepc" not in d:
        return f"peer CPU {d.get('reason', 'stopped')} at pc={d.get('pc', 0):#010x} at {t / PS_PER_MS:.3f} ms"
    more = f" ({n} traps in all)" if n > 1 else ""
    return (f"peer took {d.get('what', 'a trap')} at mepc={d.get('mepc', 0):#010x} "
            f"(mtval={d.get('mtval', 0):#010x}) at {t / PS_PER_MS:.3f} ms{more}")


ORACLES = {
    "runaway": _runaway, "estop": _estop, "hardfault": _hardfault, "hang": _hang,
    "desync": _desync, "misparse": _misparse, "stale": _stale, "stack_overflow": _stack_overflow,
    "peer_fault": _peer_fault,
}


#: Oracles that only ask "did X ever happen": once a run shows one, nothing later removes it
#: (campaigns stop such a trial there: Duo.run_to_first).
MONOTONE = ("runaway", "estop", "hardfault")


def seen_monotone(labels: list[str], events: list[tuple[int, str, dict]],
                  stm32_console: list[ConsoleLine]) -> str | None:
    """The first of ``labels`` (all in MONOTONE) the run has shown so far, by the oracles
    themselves on what they read (the event log and the STM32 console)."""
    obs = Observations(duration_ps=0, events=events, console={"stm32": stm32_console})
    for lab in labels:
        if ORACLES[lab](obs, DEFAULTS) is not None:
            return lab
    return None


def classify(obs: Observations, params: dict[str, Any] | None = None) -> Verdict:
    p = dict(DEFAULTS)
    p.update(params or {})
    labels: list[str] = []
    evidence: dict[str, str] = {}
    for name, fn in ORACLES.items():
        why = fn(obs, p)
        if why is not None:
            labels.append(name)
            evidence[name] = why
    if obs.error is not None and not labels:
        labels.append("hang")
        evidence["hang"] = f"the engine stopped the run: {obs.error}"
    return Verdict(labels or ["ok"], evidence)


def matches(verdict: Verdict, expected: "list[str] | dict[str, list[str]]") -> bool:
    """A variant meets its expectation when `ok` is expected and the run is ok, or when any
    expected label is among the run's labels. The mapping form ``{any: [...], none: [...]}``
    also requires that no label of ``none`` occurs (CM7: a fault happens on the fixed build too,
    but it must not end in a hang)."""
    if isinstance(expected, dict):
        want = expected.get("any", [])
        if any(lab in verdict.labels for lab in expected.get("none", [])):
            return False
        return matches(verdict, want) if want else True
    if expected == ["ok"]:
        return verdict.ok
    return any(lab in verdict.labels for lab in expected if lab != "ok")
