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
from .engines.base import PS_PER_MS, ConsoleLine, LinkByte, link_rows

DEFAULTS = {
    "recovery_ms": 100.0,       # CM7: BOOT again within this long after a fault
    "max_frames_lost": 2,       # CM2: setpoint frames the STM32 may lose around one link fault
    "hang_ms": 200.0,           # silence (no telemetry on the wire) this long at the end = hang
    "desync_ms": 50.0,          # CM2: no applied setpoint for this long after the fault = desync
    "stack_limit": 0,           # bytes; 0 = the stack's own size (any overflow)
    "settle_ms": 20.0,          # frames sent in the last settle_ms may still be in flight
}

FAULT_EVENTS = ("cpu_fault", "lockup")
#: the firmware<->harness contract symbol an oracle reads; an image without it (a user's own
#: firmware) leaves that oracle "not applicable", never judged on absent data
NEEDS = {"hang": "g_status", "desync": "g_status", "misparse": "g_status", "stale": "g_status",
         "stack_overflow": "g_status"}
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
    missing: set[str] = field(default_factory=set)    # contract symbols the images lack


@dataclass
class Verdict:
    labels: list[str]
    evidence: dict[str, str]
    not_applicable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.labels == ["ok"]


# -- wire decoding ------------------------------------------------------------------------------
#: (direction) -> (the tap list, its length then, the frames): the oracles, the timeline and the
#: report each decode the same wire; decoding it once per run saves ~5% of a campaign trial
_FRAMES_MEMO: dict[str, tuple[list[LinkByte], int, list[WireFrame]]] = {}


@dataclass(frozen=True, slots=True)
class WireFrame:
    """One frame as its sender put it on the wire: when its first and last bytes arrived, its
    payload, and whether a fault touched any byte of it (or the garbage just before it)."""
    t0_ps: int
    t_ps: int
    payload: bytes
    intact: bool


def wire_frames(link: list[LinkByte], direction: str) -> list[WireFrame]:
    """Frames as the sender put them on the wire (faults undone), each marked intact or not.
    Inserted bytes are not the sender's (they mark the next frame touched); dropped ones were."""
    hit = _FRAMES_MEMO.get(direction)
    n = len(link)
    if hit is not None and hit[0] is link and hit[1] == n:
        return list(hit[2])
    both = _wire_frames(link)                     # one pass decodes both directions
    both.setdefault(direction, [])
    for d, frames in both.items():
        _FRAMES_MEMO[d] = (link, n, frames)
    return list(both[direction])


def sender_frames(link: list[LinkByte], direction: str) -> list[tuple[int, bytes]]:
    """Frames as the sender put them on the wire (faults undone), with the arrival time of their
    last byte. Inserted bytes are not the sender's; dropped ones were."""
    return [(f.t_ps, f.payload) for f in wire_frames(link, direction)]


def _wire_frames(link: list[LinkByte]) -> dict[str, list[WireFrame]]:
    """Each direction's frames, decoded in one pass over the link's rows."""
    state: dict[str, list[Any]] = {}    # direction -> [push, done, frames, t0, touched]
    for t, d, value, sent, fault in link_rows(link):
        st = state.get(d)
        if st is None:
            st = state[d] = [protocol.FrameDecoder(resync=True).push, [], [], None, False]
        st[4] = st[4] or fault is not None
        if fault == "insert":
            continue
        if st[3] is None:
            st[3] = t
        done = st[1]
        st[0](sent if sent is not None else value, done)
        if done:
            st[2].extend(WireFrame(st[3], t, payload, not st[4]) for payload in done)
            done.clear()
            st[3], st[4] = None, False
    return {d: st[2] for d, st in state.items()}


def meant_setpoints(frames: list[tuple[int, bytes]], layout: str) -> dict[int, tuple[int, int]]:
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


def _stm32_stopped(obs: Observations) -> str | None:
    """The engine found the STM32's CPU hung or stopped it (a storm): needs no contract symbol."""
    for t, kind, d in obs.events:
        if kind in STOP_EVENTS and d.get("machine", "stm32") == "stm32":
            pc = d.get("pc")
            pcs = f" at pc={pc:#010x}" if isinstance(pc, int) else ""
            return f"STM32 CPU {d.get('reason', kind)}{pcs} at {t / PS_PER_MS:.3f} ms"
    return None


def _hang(obs: Observations, p: dict) -> str | None:
    """Silent death: no telemetry frame on the wire for hang_ms before the end of the run, and no
    BOOT after the last one (a run that is rebooting is not silent); or, after the STM32 took a
    fault, no BOOT within recovery_ms (CM7: a patched device recovers within 100 ms)."""
    stopped = _stm32_stopped(obs)
    if stopped is not None:
        return stopped
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


@dataclass(slots=True)
class SetpointFate:
    """One setpoint frame the peer sent, and what became of it at the STM32: ``applied`` True or
    False, None when the samples cannot tell; ``t_applied``: the sample that showed it applied."""
    frame: WireFrame
    seq: int
    applied: bool | None = None
    t_applied: int | None = None


def setpoint_fates(obs: Observations, p: dict) -> list[SetpointFate]:
    """Each setpoint on the peer->stm32 wire, applied or lost, from the STM32's own counters
    sampled in virtual time: between two samples ``setpoints`` grew by d and ``last_seq`` moved
    to the frame s, so of the frames sent after the previous sample's frame up to s, d were
    applied (s and, when fewer than all, the ones just before it: a decoder that recovers
    applies the latest) and the rest lost. A frame never applied by the end is lost unless it
    was sent within ``settle_ms`` of the end. Counters that fall (a reboot) or a sequence that
    goes back (stale data) leave those frames unknown."""
    samples_in = obs.samples.get("stm32", [])
    key = (len(obs.link), len(samples_in), obs.peer_layout, p["settle_ms"])
    hit = _FATES_MEMO.get("fates")
    if hit is not None and hit[0] is obs.link and hit[1] is samples_in and hit[2] == key:
        return hit[3]
    fates = _setpoint_fates(obs, p)
    _FATES_MEMO["fates"] = (obs.link, samples_in, key, fates)
    return fates


#: the last run's setpoint fates (desync and stale both read them): (link, samples, key, fates)
_FATES_MEMO: dict[str, tuple[list[LinkByte], list, tuple, list[SetpointFate]]] = {}


def _setpoint_fates(obs: Observations, p: dict) -> list[SetpointFate]:
    fates: list[SetpointFate] = []
    for f in wire_frames(obs.link, "peer->stm32"):
        sp = _decode_setpoint(f.payload, obs.peer_layout)
        if sp is not None:
            fates.append(SetpointFate(f, sp))
    # the samples are walked, never copied (a soak's run has ~200 per virtual second)
    smp = obs.samples.get("stm32", [])
    last_t = next((t for t, s in reversed(smp) if "last_seq" in s), None) if fates else None
    if last_t is None:
        return fates
    where: dict[int, list[int]] = {}                     # seq -> positions in fates
    for i, f in enumerate(fates):
        where.setdefault(f.seq, []).append(i)
    prev_n, prev_pos = 0, -1
    for t, smp_ in smp:
        if "last_seq" not in smp_:
            continue
        n = smp_.get("setpoints", 0)
        if n < prev_n:                                   # rebooted: counters start again
            prev_n, prev_pos = n, None
            continue
        if n == prev_n:
            continue
        d, prev_n = n - prev_n, n
        pos = next((i for i in reversed(where.get(smp_["last_seq"], []))
                    if fates[i].frame.t_ps <= t), None)
        if pos is None or prev_pos is None or pos <= prev_pos:
            if pos is not None and prev_pos is None:     # known again from here on
                prev_pos = pos
                fates[pos].applied, fates[pos].t_applied = True, t
            continue
        cand = fates[prev_pos + 1:pos + 1]
        for k, f in enumerate(cand):
            f.applied = k >= len(cand) - d
            f.t_applied = t if f.applied else None
        prev_pos = pos
    settle = p["settle_ms"] * PS_PER_MS
    if prev_pos is not None:
        for f in fates[prev_pos + 1:]:
            if f.frame.t_ps <= last_t - settle:
                f.applied = False
    return fates


def _decode_setpoint(payload: bytes, layout: str) -> int | None:
    if not payload or payload[0] != protocol.MSG_SETPOINT:
        return None
    try:
        sp = (protocol.decode_setpoint_natural(payload) if layout == "natural"
              else protocol.Setpoint.decode(payload))
    except ValueError:
        return None
    return sp.seq


def _loss_runs(fates: list[SetpointFate]) -> int:
    """The longest run of intact setpoints lost one after the other."""
    longest = run = 0
    for f in fates:
        if f.frame.intact and f.applied is False:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return longest


def _desync(obs: Observations, p: dict) -> str | None:
    """The STM32's frame decoder lost step with the wire because of a corrupted frame: an intact
    setpoint just before that frame was applied (at most max_frames_lost lost in between: the
    decoder was in step), then the intact setpoints after it were lost one after the other,
    swallowed without a CRC error each (more than max_frames_lost of them, or none applied for
    desync_ms), and more than the build lost in a row before the fault (a build that already
    loses frames without it, e.g. to stale cache lines, shows that as ``stale``, not here).
    Faults on the other wire cannot disturb this decoder: not evidence."""
    fates = setpoint_fates(obs, p)
    frames = wire_frames(obs.link, "peer->stm32")
    bound_t = p["desync_ms"] * PS_PER_MS
    for bad in (f for f in frames if not f.intact):
        before = [f for f in fates if f.frame.t_ps < bad.t0_ps]
        intact_before = [f for f in before if f.frame.intact]
        last_ok = next((k for k in range(len(intact_before) - 1, -1, -1)
                        if intact_before[k].applied), None)
        if last_ok is None or len(intact_before) - 1 - last_ok > p["max_frames_lost"]:
            continue                             # the decoder was not in step when it came
        lost: list[SetpointFate] = []
        recovered: SetpointFate | None = None
        for f in fates:
            if f.frame.t0_ps <= bad.t_ps:
                continue
            if not f.frame.intact or f.applied is None:
                break
            if f.applied:
                recovered = f
                break
            lost.append(f)
        if not lost:
            continue
        baseline = _loss_runs(before)
        t_back = recovered.t_applied if recovered else obs.duration_ps
        silent = t_back - bad.t_ps
        # a decoder in step parses each frame and counts a CRC error for each bad one (stale
        # reads); one that lost step swallows frames whole, counting one error for the span
        errors = _crc_errors_between(obs, bad.t0_ps, t_back)
        swallowed = len(lost) - errors
        if len(lost) <= baseline or swallowed <= 0 or \
                (swallowed <= p["max_frames_lost"] and silent <= bound_t):
            continue
        end = (f"applied again from seq {recovered.seq}" if recovered
               else "none applied again by the end")
        return (f"frame decoder lost step at the frame corrupted at {bad.t0_ps / PS_PER_MS:.3f} ms: "
                f"{len(lost)} intact setpoints after it lost in a row (seq {lost[0].seq}-"
                f"{lost[-1].seq}) with {errors} CRC error(s), {swallowed} swallowed unparsed "
                f"(bound {p['max_frames_lost']}), {end}; seq {intact_before[last_ok].seq} before "
                f"it was applied (longest loss run before: {baseline})")
    return None


def _crc_errors_between(obs: Observations, t0: int, t1: int) -> int:
    """CRC errors the STM32 counted from its last sample at or before t0 to its first at or
    after t1 (0 across a reboot, whose counters start again)."""
    start, end, last = 0, None, 0
    for t, s in obs.samples.get("stm32", []):          # in time order; walked, not copied
        n = last = s.get("crc_errors", 0)
        if t <= t0:
            start = n
        if end is None and t >= t1:
            end = n
    return max(0, (last if end is None else end) - start)


def _misparse(obs: Observations, p: dict) -> str | None:
    frames = sender_frames(obs.link, "peer->stm32")
    sp = meant_setpoints(frames, obs.peer_layout)
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


def _disturbed(obs: Observations, p: dict) -> list[tuple[int, int]]:
    """Spans in which the STM32's decoder may count errors of a corrupted frame: from the first
    byte of a frame a fault touched on the peer->stm32 wire to the first sample showing an
    intact setpoint sent after it applied (the decoder back in step), else the end."""
    fates = setpoint_fates(obs, p)
    spans = []
    for bad in (f for f in wire_frames(obs.link, "peer->stm32") if not f.intact):
        back = next((f.t_applied for f in fates if f.frame.t0_ps > bad.t_ps and f.frame.intact
                     and f.t_applied is not None), obs.duration_ps)
        spans.append((bad.t0_ps, back))
    return spans


def _stale(obs: Observations, p: dict) -> str | None:
    """The STM32 read memory other than what the DMA wrote (stale cache lines): it counted CRC
    errors on frames that were intact on the wire (outside every span a corrupted frame can
    explain, and not while joining the wire mid-frame at a (re)boot), re-applied an older
    setpoint, or sent stale telemetry."""
    boots = sorted(ln.t_ps for ln in obs.console.get("stm32", []) if ln.text.startswith("BOOT"))
    settle = p["settle_ms"] * PS_PER_MS
    samples = obs.samples.get("stm32", [])
    spans = _disturbed(obs, p) if samples else []

    def explained(t0: int, t1: int) -> bool:      # a corrupted frame or a boot in (t0, t1]
        return (any(w0 < t1 and t0 < w1 for w0, w1 in spans)
                or any(t0 - settle < b <= t1 for b in boots))

    prev_t, prev_n = 0, 0
    for t, s in samples:
        n = s.get("crc_errors", 0)
        if n > prev_n and not explained(prev_t, t):
            why = "on a clean wire" if not spans else "on frames intact on the wire"
            return (f"STM32 counted {n - prev_n} CRC error(s) between {prev_t / PS_PER_MS:.3f} and "
                    f"{t / PS_PER_MS:.3f} ms {why}: it read stale data, not what the DMA received")
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
        prev_t0, prev_t = prev_t, t
        cur = s["last_seq"]
        if prev is not None and _seq_regressed(prev, cur) and \
                not any(w0 < t and prev_t0 < w1 for w0, w1 in spans):
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


def release() -> None:
    """Drop the last run's decoded wire and setpoint fates (the memos above): a result, once
    built, needs them no more, and a soak's are a few MB."""
    _FRAMES_MEMO.clear()
    _FATES_MEMO.clear()


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
    not_applicable: dict[str, str] = {}
    for name, fn in ORACLES.items():
        if NEEDS.get(name) in obs.missing:
            why = _stm32_stopped(obs) if name == "hang" else None    # the engine's own word
            if why is not None:
                labels.append(name)
                evidence[name] = why
                continue
            not_applicable[name] = f"not applicable: {NEEDS[name]} missing"
            continue
        why = fn(obs, p)
        if why is not None:
            labels.append(name)
            evidence[name] = why
    if obs.error is not None and not labels:
        labels.append("hang")
        evidence["hang"] = f"the engine stopped the run: {obs.error}"
    return Verdict(labels or ["ok"], evidence, not_applicable)


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
