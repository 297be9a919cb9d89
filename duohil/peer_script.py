"""The peer as a script: the ESP32-C3 peer firmware's link behaviour in Python.

Teams whose peer firmware cannot be emulated (an ESP-IDF or TinyGo image) test their STM32 image
against this; the ``serial`` engine plays the peer with it over a real port. It does what
``esp32_firmware/main.c`` does on the wire, from the same ``g_peer_config`` defaults:

- after ``start_delay_ms`` (10) a setpoint every ``setpoint_period_ms`` (5 ms: 200 Hz) from the
  repeating trapezoidal profile (``planner.c``: accel, vmax, stroke, dwell), a heartbeat every
  ``heartbeat_period_ms`` (100) and a sensor report every ``sensor_period_ms`` (50); all three on
  one fixed grid, a late slot skipped and counted (``due()`` in main.c), in that order per tick;
- telemetry from the STM32 decoded (``beh_on_frame``): accepted, rejected, stale (sequence
  regression) and the STM32's state kept in a status dict named like ``g_peer_status``;
- ``layout: natural`` sends setpoint and sensor report as aligned structs (the CM6 bug, padding
  zeroed as the heap and pool do), ``packed`` the explicit little-endian fields;
- ``gc: true`` models the GC's pacer (``gcheap.c``): every allocation the firmware makes (message
  objects, 64 B garbage per setpoint, 56 B retained every 4th) counts toward a trigger of
  live * GOGC/100 (at least ``gc_min_trigger``); a collection stops the script for
  ``gc_fixed_cycles + mark_cycles_per_kib * live / 1024`` cycles at ``cpu_hz``. It is the
  firmware's arithmetic on block sizes, not its heap: fragmentation and a full heap are not there.

The script has no clock of its own: a driver calls ``step(now_ps)`` once per millisecond of its
time base (virtual time inside the builtin engine, so the run is deterministic; the host clock
over a real port) and hands it received bytes with ``receive``; what it returns goes on the wire.
``stall(until_ps)`` is a GC pause from outside (the ``peer_stall`` fault): nothing is sent or
read until then, then missed slots are skipped as the firmware skips them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import protocol
from .engines.base import PS_PER_MS, PS_PER_US, ConsoleLine, MachineHandle
from .errors import ConfigError

LAYOUTS = ("packed", "natural")

#: g_peer_config's defaults (esp32_firmware/config.h PEER_CONFIG_DEFAULTS); the keys a scenario's
#: ``peer: {script: ..., config: {...}}`` may set
DEFAULTS: dict[str, int] = {
    "start_delay_ms": 10, "setpoint_period_ms": 5, "heartbeat_period_ms": 100,
    "sensor_period_ms": 50, "gogc": 100, "heap_size": 16384, "gc_min_trigger": 4096,
    "live_init_bytes": 2048, "retain_bytes": 56, "retain_every": 4, "retain_max_bytes": 4096,
    "garbage_per_setpoint": 64, "mark_cycles_per_kib": 240000, "gc_fixed_cycles": 160000,
    "cpu_hz": 160_000_000, "profile_accel": 60000, "profile_vmax": 12000, "profile_stroke": 20000,
    "profile_start": 0, "profile_dwell_ms": 50, "sensor_id": 7, "sensor_temp": 235,
    "sensor_flags": 0,
}
_LIMITS = {  # key -> (lo, hi): config.c's checks, refused here instead of replaced silently
    "start_delay_ms": (0, 60000), "setpoint_period_ms": (1, 1000), "heartbeat_period_ms": (1, 60000),
    "sensor_period_ms": (1, 60000), "gogc": (-1, 1000), "heap_size": (1024, 65536),
    "gc_min_trigger": (0, 65536), "live_init_bytes": (0, 65536), "retain_bytes": (0, 4096),
    "retain_every": (0, 1000), "retain_max_bytes": (0, 65536), "garbage_per_setpoint": (0, 4096),
    "mark_cycles_per_kib": (0, 10**8), "gc_fixed_cycles": (0, 10**9), "cpu_hz": (1_000_000, 10**9),
    "profile_accel": (1, 100_000_000), "profile_vmax": (1, 10_000_000),
    "profile_stroke": (-10_000_000, 10_000_000), "profile_start": (-2**31, 2**31 - 1),
    "profile_dwell_ms": (0, 60000), "sensor_id": (0, 0xFFFF), "sensor_temp": (-32768, 32767),
    "sensor_flags": (0, 0xFFFF),
}
GC_HDR = 8           # gcheap.h GC_HDR_SIZE / GC_ALIGN
GC_ALIGN = 8
HISTORY_CAP = 256    # config.h PEER_HISTORY_CAP: bound on retained objects
IDLE_MS = 3          # silence that makes the line idle for the script (see ScriptDriver.tick)


@dataclass(frozen=True)
class ScriptSpec:
    """What a scenario's ``peer: {script: packed|natural, gc: bool, config: {...}}`` says."""

    layout: str = "packed"
    gc: bool = False
    config: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"script-{'gc' if self.gc else 'pooled'}-{self.layout}"

    def params(self) -> dict[str, int]:
        return DEFAULTS | dict(self.config)


def parse_spec(raw: Any, file: Path | str | None = None, where: str = "peer") -> ScriptSpec:
    """A scenario's peer mapping with ``script:`` in it; one ConfigError naming the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{raw!r}", file=file, field=where, expected="a mapping with script:")
    for k in raw:
        if k not in ("script", "gc", "config"):
            raise ConfigError(f"unknown key {k!r}", file=file, field=f"{where}.{k}",
                              expected="script, gc, config (a scripted peer has no image)")
    layout = raw.get("script")
    if layout not in LAYOUTS:
        raise ConfigError(f"script: {layout!r}", file=file, field=f"{where}.script",
                          expected="packed or natural (the peer's serializer layout)")
    gc = raw.get("gc", False)
    if not isinstance(gc, bool):
        raise ConfigError(f"gc: {gc!r}", file=file, field=f"{where}.gc",
                          expected="true (GC pauses modelled) or false (pooled, no pauses)")
    cfg = raw.get("config", {})
    if not isinstance(cfg, dict):
        raise ConfigError(f"{cfg!r}", file=file, field=f"{where}.config", expected="a mapping")
    for k, v in cfg.items():
        if k not in _LIMITS:
            raise ConfigError(f"unknown key {k!r}", file=file, field=f"{where}.config.{k}",
                              expected="one of " + ", ".join(DEFAULTS))
        lo, hi = _LIMITS[k]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(f"{v!r}", file=file, field=f"{where}.config.{k}",
                              expected=f"an integer {lo}..{hi}")
    if cfg.get("profile_stroke") == 0:
        raise ConfigError("0", file=file, field=f"{where}.config.profile_stroke",
                          expected="a non-zero stroke in counts")
    sp = cfg.get("setpoint_period_ms", DEFAULTS["setpoint_period_ms"])
    if 1000 % sp:
        raise ConfigError(f"{sp}", file=file, field=f"{where}.config.setpoint_period_ms",
                          expected="a divisor of 1000 ms (as the firmware requires)")
    return ScriptSpec(layout=layout, gc=gc, config=dict(cfg))


def _isqrt(x: int) -> int:
    r = 0
    bit = 1 << 62
    while bit > x:
        bit >>= 2
    while bit:
        if x >= r + bit:
            x -= r + bit
            r = (r >> 1) + bit
        else:
            r >>= 1
        bit >>= 2
    return r


def _div_ceil(a: int, b: int) -> int:
    return (a + b - 1) // b


class Planner:
    """planner.c: a repeating trapezoidal out-and-back profile, one step per setpoint period."""

    def __init__(self, accel: int, vmax: int, stroke: int, start: int, dwell_ms: int,
                 dt_ms: int) -> None:
        self.dt, self.dwell = dt_ms, dwell_ms
        d = abs(stroke)
        self.dist = d
        self.dmax = max(1, vmax * dt_ms // 1000)
        v = self.dmax * (1000 // dt_ms)
        vp = v
        if v * v > accel * d:
            vp = max(1, _isqrt(accel * d))
        self.ta = max(1, _div_ceil(vp * 1000, accel))
        t = self.ta + _div_ceil(d * 1000, vp)
        self.t_move = max(t, 2 * self.ta)
        self.moving = True
        self.t = 0
        self.emitted = 0
        self.dir = -1 if stroke < 0 else 1
        self.position = start
        self.moves = 0

    def _profile(self, t: int) -> int:
        ta, T = self.ta, self.t_move
        if t >= T:
            return self.dist
        n = t * t
        if t > ta:
            n -= (t - ta) ** 2
        if t > T - ta:
            n -= (t - (T - ta)) ** 2
        return (self.dist * n) // (2 * ta * (T - ta)) & 0xFFFFFFFF

    def step(self) -> int:
        v = 0
        self.t += self.dt
        if self.moving:
            target = self._profile(self.t)
            step = min(max(target - self.emitted, 0), self.dmax)
            self.emitted += step
            v = self.dir * step * (1000 // self.dt)
            self.position += self.dir * step
            if self.t >= self.t_move and self.emitted == self.dist:
                self.moves += 1
                self.t = 0
                if self.dwell:
                    self.moving = False
                else:
                    self.emitted, self.dir = 0, -self.dir
        elif self.t >= self.dwell:
            self.moving, self.t, self.emitted, self.dir = True, 0, 0, -self.dir
        return v


def _block(n: int) -> int:
    return (GC_HDR + n + GC_ALIGN - 1) & ~(GC_ALIGN - 1)


class GcModel:
    """gcheap.c's pacer on block sizes: allocations since the last cycle against the trigger."""

    def __init__(self, p: dict[str, int]) -> None:
        self.p = p
        self.history: list[int] = []
        self.hist_cap = 0
        if p["retain_bytes"] and p["retain_every"]:
            self.hist_cap = min(HISTORY_CAP, p["retain_max_bytes"] // _block(p["retain_bytes"]))
        self.live = _block(p["live_init_bytes"]) if p["live_init_bytes"] else 0
        self.alloc_since = self.live
        self.count = 0
        self.pending_cycles = 0          # a collection the last allocations triggered

    def _live(self) -> int:
        return (_block(self.p["live_init_bytes"]) if self.p["live_init_bytes"] else 0) + \
            sum(self.history)

    def alloc(self, n: int) -> None:
        bs = _block(n)
        trigger = max(self.live * self.p["gogc"] // 100, self.p["gc_min_trigger"]) \
            if self.p["gogc"] >= 0 else None
        if trigger is not None and self.alloc_since + bs > trigger:
            self.live = self._live()
            q, r = self.live >> 10, self.live & 1023
            k = self.p["mark_cycles_per_kib"]
            self.pending_cycles += self.p["gc_fixed_cycles"] + k * q + (k * r >> 10)
            self.alloc_since = 0
            self.count += 1
        self.alloc_since += bs

    def retain(self, setpoints: int) -> None:
        p = self.p
        if p["garbage_per_setpoint"]:
            self.alloc(p["garbage_per_setpoint"])
        if self.hist_cap and setpoints % p["retain_every"] == 0:
            self.alloc(p["retain_bytes"])
            self.history.append(_block(p["retain_bytes"]))
            del self.history[:-self.hist_cap]

    def take_pause_ps(self) -> int:
        cycles, self.pending_cycles = self.pending_cycles, 0
        return cycles * 1_000_000_000_000 // self.p["cpu_hz"]


class PeerScript:
    """The peer's behaviour on the wire; see the module docstring. All times in picoseconds."""

    def __init__(self, spec: ScriptSpec) -> None:
        self.spec = spec
        p = self.p = spec.params()
        self.planner = Planner(p["profile_accel"], p["profile_vmax"], p["profile_stroke"],
                               p["profile_start"], p["profile_dwell_ms"], p["setpoint_period_ms"])
        self.gc = GcModel(p) if spec.gc else None
        self.decoder = protocol.FrameDecoder(resync=True)
        self.next_sp = self.next_hb = self.next_sr = p["start_delay_ms"]
        self.sp_seq = 0
        self.hb_seq = 0
        self.sensor_n = 0
        self.have_tm = False
        self.stalled_until = 0
        self._held: list[bytes] = []
        self.lines: list[ConsoleLine] = []
        self.status: dict[str, Any] = {
            "setpoints_sent": 0, "setpoint_slots_missed": 0, "heartbeats_sent": 0,
            "sensor_reports_sent": 0, "telemetry_received": 0, "telemetry_rejected": 0,
            "telemetry_stale": 0, "frames_unexpected": 0, "last_telemetry_seq": 0,
            "last_setpoint_seq": 0, "last_setpoint_velocity": 0, "tm_state": 0, "tm_position": 0,
            "tm_velocity": 0, "tm_last_setpoint_seq": 0, "tm_fault_flags": 0, "tm_stale": 0,
            "tm_rejected": 0, "position_error": 0, "planned_position": self.planner.position,
            "gc_count": 0, "gc_last_pause_us": 0, "gc_max_pause_us": 0, "stalls": 0,
        }
        self.log(0, f"BOOT duohil-peer-script variant={spec.name} gc={int(spec.gc)} "
                    f"layout={spec.layout} proto={protocol.PROTO_VERSION} "
                    f"sp_period_ms={p['setpoint_period_ms']}")

    def log(self, t_ps: int, text: str) -> None:
        self.lines.append(ConsoleLine(t_ps, "peer", text))

    # -- outside events ------------------------------------------------------------------------
    def stall(self, until_ps: int, now_ps: int, why: str = "stall") -> None:
        """Stop the script (a GC pause) until ``until_ps``."""
        if until_ps > self.stalled_until:
            self.stalled_until = until_ps
            self.status["stalls"] += 1
            self.log(now_ps, f"STALL {why} {(until_ps - now_ps) / PS_PER_MS:.3f} ms")

    def stalled(self, now_ps: int) -> bool:
        return now_ps < self.stalled_until

    def receive(self, data: bytes, now_ps: int) -> None:
        """Bytes from the STM32 (delivered once the script runs: a stalled CPU reads nothing)."""
        for payload in self.decoder.feed(data):
            self._on_frame(payload, now_ps)

    def idle(self, now_ps: int) -> None:
        """The line went idle (RX timeout): the decoder drops a partial frame, as FIX_RESYNC does."""
        for payload in self.decoder.idle():
            self._on_frame(payload, now_ps)

    def _on_frame(self, payload: bytes, now_ps: int) -> None:
        st = self.status
        if not payload or payload[0] != protocol.MSG_TELEMETRY:
            st["frames_unexpected"] += 1
            return
        if self.gc:
            self.gc.alloc(24)
        try:
            tm = protocol.Telemetry.decode(payload)
        except ValueError:
            st["telemetry_rejected"] += 1
            return
        d = (tm.seq - st["last_telemetry_seq"]) & 0xFFFF
        if self.have_tm and (d == 0 or d >= 0x8000):          # regression or repeat: old data
            st["telemetry_stale"] += 1
            return
        self.have_tm = True
        st["telemetry_received"] += 1
        st["last_telemetry_seq"] = tm.seq
        st["tm_position"], st["tm_velocity"] = tm.position, tm.velocity
        st["position_error"] = self.planner.position - tm.position
        st["tm_last_setpoint_seq"] = tm.last_seq
        if st["tm_state"] != tm.state:
            self.log(now_ps, f"STM32 state={tm.state} pos={tm.position} tm_seq={tm.seq}")
        st["tm_state"], st["tm_fault_flags"] = tm.state, tm.fault_flags
        st["tm_stale"], st["tm_rejected"] = tm.stale, tm.rejected

    # -- the main loop, once per ms -------------------------------------------------------------
    def step(self, now_ps: int) -> list[bytes]:
        """One pass of main.c's loop at ``now_ps``: the frames to send (empty while stalled)."""
        if self.stalled(now_ps):
            return []
        now = now_ps // PS_PER_MS
        p, st = self.p, self.status
        out: list[bytes] = []
        if now >= p["start_delay_ms"]:
            if self._due(now, "next_sp", p["setpoint_period_ms"], True):
                out.append(self._setpoint())
            if self._due(now, "next_hb", p["heartbeat_period_ms"], False):
                out.append(self._heartbeat(now))
            if self._due(now, "next_sr", p["sensor_period_ms"], False):
                out.append(self._sensor())
        if self.gc is not None:
            pause = self.gc.take_pause_ps()
            if pause:
                us = pause // PS_PER_US
                st["gc_count"] = self.gc.count
                st["gc_last_pause_us"] = us
                st["gc_max_pause_us"] = max(st["gc_max_pause_us"], us)
                self.log(now_ps, f"GC n={self.gc.count} pause_us={us} live={self.gc.live}")
                # the collection ran inside an allocation: the frames go out after the pause
                self.stalled_until = max(self.stalled_until, now_ps + pause)
                self._held = out
                return []
        if self._held:
            out, self._held = self._held + out, []
        return [protocol.encode_frame(pl) for pl in out]

    def _due(self, now: int, attr: str, period: int, count_missed: bool) -> bool:
        nxt = getattr(self, attr)
        if now < nxt:
            return False
        late = (now - nxt) // period
        if count_missed:
            self.status["setpoint_slots_missed"] += late
        setattr(self, attr, nxt + (late + 1) * period)
        return True

    def _setpoint(self) -> bytes:
        self.sp_seq = (self.sp_seq + 1) & 0xFFFF
        v = self.planner.step()
        m = protocol.Setpoint(self.sp_seq, v, protocol.SETPOINT_F_ENABLE)
        natural = self.spec.layout == "natural"
        payload = protocol.encode_setpoint_natural(m) if natural else m.encode()
        st = self.status
        st["setpoints_sent"] += 1
        st["last_setpoint_seq"], st["last_setpoint_velocity"] = m.seq, v
        st["planned_position"] = self.planner.position
        if self.gc:
            self.gc.alloc(12)
            self.gc.alloc(len(payload))
            self.gc.retain(st["setpoints_sent"])
        return payload

    def _heartbeat(self, now_ms: int) -> bytes:
        self.hb_seq = (self.hb_seq + 1) & 0xFFFF
        self.status["heartbeats_sent"] += 1
        if self.gc:
            self.gc.alloc(8)
            self.gc.alloc(protocol.MSG_HEARTBEAT_LEN)
        return protocol.Heartbeat(self.hb_seq, now_ms & 0xFFFFFFFF).encode()

    def _sensor(self) -> bytes:
        p = self.p
        n = self.sensor_n
        self.sensor_n += 1
        temp = p["sensor_temp"] + n % 8
        m = protocol.SensorReport(p["sensor_id"], temp, n & 0xFF,
                                  p["sensor_flags"] | ((n % 255 + 1) << 16))
        natural = self.spec.layout == "natural"
        payload = protocol.encode_sensor_report_natural(m) if natural else m.encode()
        self.status["sensor_reports_sent"] += 1
        if self.gc:
            self.gc.alloc(12)
            self.gc.alloc(len(payload))
        return payload


# -- the wire on the host side: taps and byte faults --------------------------------------------------
def _field_offset(fld: str, length: int) -> int | None:
    """Byte offset of a frame field (SOF, LEN, payload[i], CRC_LO, CRC_HI); None beyond the frame."""
    if fld == "SOF":
        return 0
    if fld == "LEN":
        return 1
    if fld == "CRC_LO":
        return 2 + length
    if fld == "CRC_HI":
        return 3 + length
    i = int(fld[len("payload["):-1])
    return 2 + i if i < length else None


class Wire:
    """One direction of the link as the host side sees it: frames in, bytes out with faults.

    Frames are counted per direction from 0 as the sender put them on the wire (the builtin
    engine's frame index); a ``link`` fault arms on frame n's field, ``noise`` flips bits with a
    seeded generator per bit (``ber``) inside its window. Every byte is recorded as a LinkByte."""

    def __init__(self, direction: str, seed: int) -> None:
        self.direction = direction
        self.frames = 0
        self.armed: list[tuple[int, dict[str, Any]]] = []          # (plan index, params)
        self.noise: list[tuple[int, int, float, Any]] = []         # (t0, t1, ber, rng)
        self.seed = seed
        self.applied: list[tuple[int, int, dict[str, Any]]] = []   # (t_ps, index, extra)
        self.not_applied: list[tuple[int, int, str]] = []
        self._pend = bytearray()                                    # received, not yet framed

    def frame_bytes(self, frame: bytes, t_ps: int, frame_ps: int,
                    taps: list[Any]) -> bytes:
        """Apply armed faults to one whole frame; record the bytes; return what goes on the wire.
        ``t_ps`` is when its first byte starts, ``frame_ps`` one character time."""
        from .engines.base import LinkByte
        idx = self.frames
        self.frames += 1
        length = frame[1] if len(frame) > 1 else 0
        edits: dict[int, tuple[str, dict[str, Any], int]] = {}
        for index, p in list(self.armed):
            if p["frame"] != idx:
                continue
            self.armed.remove((index, p))
            off = _field_offset(p.get("field", "LEN"), length)
            if off is None:
                self.not_applied.append((t_ps, index, f"frame {idx} has no {p.get('field')} "
                                                      f"(LEN {length})"))
                continue
            edits[off] = (p["action"], p, index)
        out = bytearray()
        t = t_ps
        truncating = False
        for k, b in enumerate(frame):
            act = edits.get(k)
            if act is not None:
                action, p, index = act
                self.applied.append((t, index, {"byte_index": k}))
                if action == "flip":
                    v = b ^ (1 << p.get("bit", 0))
                    t += frame_ps
                    out.append(v)
                    taps.append(LinkByte(t, self.direction, v, sent=b, fault="flip"))
                    continue
                if action == "drop":
                    taps.append(LinkByte(t, self.direction, None, sent=b, fault="drop"))
                    continue
                if action == "insert":
                    t += frame_ps
                    out.append(p.get("value", 0xA5))
                    taps.append(LinkByte(t, self.direction, p.get("value", 0xA5), fault="insert"))
                elif action == "duplicate":
                    t += frame_ps
                    out.append(b)
                    taps.append(LinkByte(t, self.direction, b, fault="duplicate"))
                elif action == "truncate":
                    truncating = True
            if truncating:
                taps.append(LinkByte(t, self.direction, None, sent=b, fault="truncate"))
                continue
            v = self._noisy(b, t)
            t += frame_ps
            out.append(v)
            taps.append(LinkByte(t, self.direction, v, sent=b if v != b else None,
                                 fault="noise" if v != b else None))
        return bytes(out)

    def _noisy(self, b: int, t: int) -> int:
        for t0, t1, ber, rng in self.noise:
            if t0 <= t < t1:
                for bit in range(8):
                    if rng.random() < ber:
                        b ^= 1 << bit
        return b

    def received(self, data: bytes, t_ps: int, taps: list[Any]) -> bytes:
        """Bytes from the STM32 as they arrived: faults applied frame-aware, recorded; what the
        scripted peer reads."""
        from .engines.base import LinkByte
        out = bytearray()
        # frame-aware: hold bytes until a whole frame (SOF LEN ... CRC) is seen, then edit it
        self._pend += data
        while self._pend:
            if self._pend[0] != protocol.SOF:
                b = self._pend.pop(0)
                v = self._noisy(b, t_ps)
                taps.append(LinkByte(t_ps, self.direction, v, sent=b if v != b else None,
                                     fault="noise" if v != b else None))
                out.append(v)
                continue
            if len(self._pend) < 2 or len(self._pend) < self._pend[1] + 4:
                break
            n = self._pend[1] + 4
            frame = bytes(self._pend[:n])
            del self._pend[:n]
            out += self.frame_bytes(frame, t_ps, 0, taps)
        return bytes(out)

    def flush(self, t_ps: int, taps: list[Any]) -> bytes:
        """The line went idle: bytes held as the start of a frame that never completed go on."""
        from .engines.base import LinkByte
        data, self._pend = bytes(self._pend), bytearray()
        for b in data:
            taps.append(LinkByte(t_ps, self.direction, b))
        return data


# -- the scripted peer in a session -------------------------------------------------------------------
class ScriptPeerHandle(MachineHandle):
    """``session.peer`` when the peer is a script: its console, its status dict, stalls. It has
    no CPU or memory, and says so."""

    name = "peer"
    linked: tuple[str, ...] = ()

    def __init__(self, driver: "ScriptDriver") -> None:
        self.driver = driver

    def _none(self, what: str) -> ConfigError:
        return ConfigError(f"the peer is a script ({self.driver.script.spec.name}): it has no {what}",
                           field="peer", expected="an ELF for the peer")

    def symbol(self, name: str) -> int:
        raise self._none(f"symbol {name}")

    def read_memory(self, address: int, size: int) -> bytes:
        raise self._none("memory")

    def write_memory(self, address: int, data: bytes) -> None:
        raise self._none("memory")

    def read_block(self, symbol: str) -> dict[str, object]:
        if symbol == "g_peer_status":          # the script's own counters, named as the firmware's
            return dict(self.driver.script.status)
        raise self._none(f"block {symbol}")

    def console(self) -> list[ConsoleLine]:
        return list(self.driver.script.lines)

    def stall(self, duration_ps: int) -> None:
        now = self.driver.now()
        self.driver.script.stall(now + int(duration_ps), now)

    def pc(self) -> int:
        raise self._none("CPU (no pc)")

    def uart(self, name: str) -> Any:
        raise self._none(f"UART {name} of its own (it speaks on the STM32's link UART)")

    def cpu_state(self) -> dict[str, object]:
        return {}


class ScriptDriver:
    """Runs a PeerScript against a byte endpoint once per ms of a clock; keeps the wire's record
    (both directions as LinkBytes), the fault log and the link faults of both directions.

    ``write(data)``, ``read() -> bytes`` and ``now() -> ps`` are the endpoint; ``char_ps`` one
    character time on the wire (for the recorded arrival times of what the script sends)."""

    def __init__(self, script: PeerScript, write: Any, read: Any, now: Any, char_ps: Any,
                 seed: int = 0) -> None:
        self.script = script
        self._write, self._read, self.now, self.char_ps = write, read, now, char_ps
        self.taps: list[Any] = []
        self.tx = Wire("peer->stm32", seed)
        self.rx = Wire("stm32->peer", seed)
        self.events: list[tuple[int, str, dict]] = []
        self.stall_after: list[tuple[int, int, int]] = []   # (setpoints, duration_ps, index)
        self._line_free = 0
        self._quiet = 0

    def tick(self) -> None:
        """One ms of the script: read what arrived, run its loop, send its frames."""
        now = self.now()
        s = self.script
        if s.stalled(now):
            return
        data = self._read()
        if data:
            self._quiet = 0
            s.receive(self.rx.received(data, now, self.taps), now)
        else:
            self._quiet += 1
            # idle after IDLE_MS of silence: the firmware's RX timeout is 2 characters, but over a
            # PTY or USB serial bytes come in bursts, and a gap inside a frame is not an idle line
            if self._quiet == IDLE_MS:
                pend = self.rx.flush(now, self.taps)
                if pend:
                    s.receive(pend, now)
                s.idle(now)
        before = s.status["setpoints_sent"]
        frames = s.step(now)
        self._send(frames, now)
        self._stall_triggers(before, s.status["setpoints_sent"], now)
        self._log_faults()

    def _send(self, frames: list[bytes], now: int) -> None:
        ch = self.char_ps()
        for fr in frames:
            start = max(now, self._line_free)
            data = self.tx.frame_bytes(fr, start, ch, self.taps)
            self._line_free = start + ch * len(data)
            if data:
                self._write(data)

    def _stall_triggers(self, before: int, after: int, now: int) -> None:
        for entry in list(self.stall_after):
            n, dur, index = entry
            if before < n <= after:
                self.stall_after.remove(entry)
                t = max(now, self._line_free)        # the setpoint has left the UART
                self.script.stall(t + dur, t, why=f"fault{index}")
                self.events.append((t, "fault", {"index": index, "fault": "peer_stall",
                                                 "duration_ms": dur / PS_PER_MS}))

    def _log_faults(self) -> None:
        for w in (self.tx, self.rx):
            for t, index, extra in w.applied:
                self.events.append((t, "fault", {"index": index, "fault": "link",
                                                 "direction": w.direction, **extra}))
            for t, index, why in w.not_applied:
                self.events.append((t, "fault_not_applied", {"index": index, "fault": "link",
                                                             "reason": why}))
            w.applied.clear()
            w.not_applied.clear()

    def inject(self, fault: Any, index: int, at: Any) -> int | None:
        """A realised ``peer_stall``, ``link`` or ``noise`` fault on the host side; ``at(t, fn)``
        schedules on the session's clock. Returns its time when known now."""
        import random
        p = fault.params
        if fault.kind == "peer_stall":
            dur = round(p["duration_ms"] * PS_PER_MS)
            if "at_ms" in p:
                t = round(p["at_ms"] * PS_PER_MS)

                def stall() -> None:
                    self.script.stall(t + dur, t, why=f"fault{index}")
                    self.events.append((t, "fault", {"index": index, "fault": "peer_stall",
                                                     "duration_ms": p["duration_ms"]}))
                at(t, stall)
                return t
            self.stall_after.append((p["after_setpoints"], dur, index))
            return None
        if fault.kind == "link":
            if p["action"] == "delay":
                raise ConfigError("a delay fault on a scripted peer's wire", field=f"faults[{index}]",
                                  expected="flip, drop, insert, duplicate or truncate")
            wire = self.tx if p["direction"] == "peer->stm32" else self.rx
            wire.armed.append((index, dict(p)))
            return None
        if fault.kind == "noise":
            t0 = round(p["at_ms"] * PS_PER_MS)
            t1 = t0 + round(p["duration_ms"] * PS_PER_MS)
            wire = self.tx if p["direction"] == "peer->stm32" else self.rx
            wire.noise.append((t0, t1, float(p["ber"]), random.Random(self.tx.seed * 7919 + index)))
            self.events.append((t0, "fault", {"index": index, "fault": "noise"}))
            return t0
        raise ConfigError(f"fault kind {fault.kind!r} is not the scripted peer's",
                          field=f"faults[{index}]")


PEER_FAULTS = ("peer_stall", "link", "noise")


class ScriptedPeerSession:
    """A session whose peer is a PeerScript on the STM32's link UART, in the inner session's
    virtual time (the builtin engine with no peer): deterministic. Everything about the STM32
    is the inner session's; the peer, the wire and the peer/link faults are the script's."""

    def __init__(self, inner: Any, spec: ScriptSpec, link_uart: str, seed: int = 0) -> None:
        self.inner = inner
        self.stm32 = inner.stm32
        port = inner.stm32.uart(link_uart)
        self.port = port
        self._got = 0

        def read() -> bytes:
            data = port.received()
            new, self._got = data[self._got:], len(data)
            return new

        def char_ps() -> int:
            uart = getattr(port, "uart", None)
            bit = uart.bit_time_ps() if uart is not None else None
            return round(10 * (bit or (10**12 // 115200)))

        self.script = PeerScript(spec)
        self.driver = ScriptDriver(self.script, port.write, read, lambda: inner.now_ps, char_ps,
                                   seed)
        self.peer = ScriptPeerHandle(self.driver)
        self.peer_layout = spec.layout
        self._injected = 0
        self._next_tick = PS_PER_MS
        inner.at(self._next_tick, self._tick, name="peer_script")

    def _tick(self) -> None:
        self.driver.tick()
        self._next_tick += PS_PER_MS
        self.inner.at(self._next_tick, self._tick, name="peer_script")

    @property
    def now_ps(self) -> int:
        return self.inner.now_ps

    def run_until(self, t_ps: int) -> None:
        self.inner.run_until(t_ps)

    def run_for(self, duration_ps: int) -> None:
        self.inner.run_until(self.inner.now_ps + duration_ps)

    def at(self, t_ps: int, action: Any, name: str = "") -> None:
        self.inner.at(t_ps, action, name=name)

    def inject(self, fault: Any) -> int | None:
        index = self._injected
        self._injected += 1
        if fault.kind in PEER_FAULTS:
            return self.driver.inject(fault, index, lambda t, fn: self.inner.at(t, fn,
                                                                                name=f"fault{index}"))
        if hasattr(self.inner, "_injected"):      # the inner engine numbers its faults the same
            self.inner._injected = index
        return self.inner.inject(fault)

    def observations(self) -> dict:
        return self.inner.observations()

    def link_bytes(self) -> list[Any]:
        return list(self.driver.taps)

    def events(self) -> list[tuple[int, str, dict]]:
        return sorted(self.inner.events() + [(t, k, dict(d)) for t, k, d in self.driver.events],
                      key=lambda e: e[0])

    def console(self) -> list[ConsoleLine]:
        return sorted(self.stm32.console() + self.peer.console(),
                      key=lambda ln: (ln.t_ps, ln.machine != "stm32"))

    def fingerprint(self) -> str:
        import hashlib
        import json
        h = hashlib.sha256(self.inner.fingerprint().encode())
        h.update(json.dumps([[t, k, d] for t, k, d in self.driver.events], sort_keys=True,
                            default=str).encode())
        h.update(json.dumps([[ln.t_ps, ln.text] for ln in self.script.lines]).encode())
        h.update(json.dumps([[b.t_ps, b.direction, b.value, b.sent, b.fault]
                             for b in self.driver.taps]).encode())
        h.update(json.dumps(self.script.status, sort_keys=True).encode())
        return h.hexdigest()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> "ScriptedPeerSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScriptedPeerEngine:
    """Wraps an engine that runs the STM32 alone: its sessions get the scripted peer. The
    capabilities are the inner engine's plus link_faults and peer_stall (done on the script)."""

    def __init__(self, inner: Any, spec: ScriptSpec) -> None:
        from .engines.base import LINK_FAULTS, PEER_STALL
        self.inner = inner
        self.spec = spec
        self.name = inner.name
        self.capabilities = frozenset(inner.capabilities) | {LINK_FAULTS, PEER_STALL}

    def availability(self) -> tuple[bool, str]:
        return self.inner.availability()

    def missing(self, needed: Any) -> list[str]:
        return sorted(set(needed) - set(self.capabilities))

    def start(self, spec: Any) -> ScriptedPeerSession:
        if spec.peer is not None:
            raise ConfigError("a scripted peer and a peer image in one run", field="peer",
                              expected="either peer: {script: ...} or peer: {image: ...}")
        inner = self.inner.start(spec)
        try:
            return ScriptedPeerSession(inner, self.spec, spec.link_uarts[0], spec.seed)
        except BaseException:
            inner.close()
            raise
