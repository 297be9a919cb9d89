"""The test-facing API: two booted MCUs you drive in virtual time, whichever engine runs them.

    with Duo.start(stm32="fixed", peer="gc-packed") as duo:
        duo.stm32.wait_for_line("BOOT", timeout_ms=50)
        duo.peer.stall(ms=5)                      # a GC pause, now
        duo.run(ms=200)
        assert duo.stm32.status.estops == 0
        assert duo.outcomes().ok, duo.outcomes().evidence

Everything a test does goes through the engine interface (``duohil.engines.base``); every fault is a
``duohil.faults.Fault`` checked by ``faults.validate_fault`` and handed to ``Session.inject``, so a
fault a test injects is exactly one a scenario file could hold. ``Duo.from_scenario`` starts a run of
a scenario file with its fault plan scheduled; ``duohil.runner.run`` is that plus ``run_to_end``. The
pytest plugin and the Robot library are thin layers over this module.

Observations (console lines, link bytes, the event log, status blocks sampled every SAMPLE_MS) are
gathered as the run goes, so ``outcomes()`` can classify the run so far at any point. Wall time is
measured for the report only; it never decides anything in a run.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Self

from . import crash as crashmod
from . import diagnose as diagmod
from . import faults as faultmod
from . import oracle
from .engines import base, registry
from .errors import ConfigError, DuohilError, EngineError, EngineUnavailable
from .samplelog import SampleLog
from .scenario import BUILD, PEER_IMAGES, REPO, Scenario

STM32_PLATFORM = REPO / "platforms" / "stm32h743.repl"
PEER_PLATFORM = REPO / "platforms" / "esp32c3_peer.repl"
_NO_SNAPSHOT = object()
SAMPLE_MS = 5.0                     # status blocks are sampled this often for the oracles
WAIT_STEP_MS = 1.0                  # wait_for_line advances virtual time in steps this long
DEFAULT_WAIT_MS = 1000.0
STATUS_KEYS = ("setpoints", "last_seq", "sp_seq", "sp_velocity", "sp_flags", "sensor_reports",
               "sensor_id", "sensor_temp", "sensor_status", "sensor_flags", "frames_ok",
               "crc_errors", "rejected", "estops", "state", "position", "stack_high_water",
               "stack_guard_trips", "stale_setpoints", "overruns")
CRASH_MAGICS = (0x43525348, 0x43525352)        # CRASH_MAGIC, CRASH_MAGIC_REPORTED (blocks.h)
PEER_CRASH_MAGIC = 0x53524350                  # esp32_firmware/status.h
CORTEXM_EXCEPTIONS = {3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
                      0x100: "StackGuard"}

# The firmware <-> harness contract (ARCHITECTURE.md): block symbols per machine.
BLOCKS = {
    "stm32": {"status": "g_status", "config": "g_config", "crash": "g_crash_record"},
    "peer": {"status": "g_peer_status", "config": "g_peer_config", "crash": "g_peer_crash"},
}


class CapabilityMissing(DuohilError):
    """The engine lacks a capability the run needs: the run is skipped with this reason."""

    def __init__(self, engine: str, missing: list[str], what: str = "") -> None:
        self.engine = engine
        self.missing = missing
        self.what = what
        super().__init__(f"engine {engine} lacks capability {', '.join(missing)}"
                         + (f" (needed by {what})" if what else ""))

    def __reduce__(self):   # pickled across worker processes (matrix) whole
        return (type(self), (self.engine, self.missing, self.what))


# -- the result of one run ----------------------------------------------------------------------
@dataclass
class RunResult:
    scenario: str
    scenario_path: str
    crash_mode: str
    variant: str
    seed: int
    engine: str
    quantum_us: float
    outcomes: list[str]
    evidence: dict[str, str]
    expected: list[str] | dict[str, list[str]] | None     # labels (any of), or {any, none}
    matches: bool | None
    fault_plan: list[dict[str, Any]]
    crash: dict[str, Any] | None
    counters: dict[str, dict[str, Any]]
    fingerprint: str
    virtual_ms: float
    wall_s: float
    console: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    timeline: dict[str, Any] = field(default_factory=dict)
    #: a run stopped early once its crash was certain (campaigns): {label, virtual_ms}
    stopped: dict[str, Any] | None = None
    images: dict[str, str] = field(default_factory=dict)      # machine -> ELF file name
    #: what went wrong, in words (decoded faults, end state, poll loops, UART problems)
    diagnosis: list[str] = field(default_factory=list)
    #: oracles that could not judge this run: label -> "not applicable: <symbol> missing"
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: None, or how host timing entered the run (a PTY's input, a real board): then it is not
    #: reproducible: {reproducible: false, since_ms, realtime, why}
    host_timing: dict[str, Any] | None = None

    def run_name(self) -> str:
        """``scenario [variant]``, naming the STM32 image when it is not the variant's own."""
        img = self.images.get("stm32", "")
        other = f" on {img}" if img and Path(img).stem != self.variant else ""
        return f"{self.scenario} [{self.variant}{other}]"

    def headline(self) -> str:
        labels = ", ".join(self.outcomes)
        first = next(iter(self.evidence.values()), "")
        return f"{self.scenario} [{self.variant}] seed={self.seed}: {labels}" + \
            (f" ({first})" if first else "") + \
            (" [not reproducible: host timing entered]" if self.host_timing else "")

    def to_json(self) -> dict[str, Any]:
        """Everything but the host's wall time depends only on scenario, variant and seed; the wall
        time goes last, under ``host``, so two identical runs differ in that one field only."""
        doc = asdict(self)
        doc["host"] = {"wall_s": doc.pop("wall_s")}
        return doc

    def write(self, path: str | Path) -> None:
        """The JSON of ``to_json``, streamed to the file from the result's own lists (no deep
        copy, no whole-document string: a soak's timeline is most of a result)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "wall_s"}
        doc["host"] = {"wall_s": self.wall_s}
        with path.open("w") as fp:
            json.dump(doc, fp, indent=1, default=_json_default)
            fp.write("\n")


def _json_default(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def spec_for(sc: Scenario, variant: str, seed: int, quantum_ps: int | None = None) -> base.RunSpec:
    peer_elf = sc.peer_image(variant)
    return base.RunSpec(
        stm32=base.MachineSpec(STM32_PLATFORM, sc.stm32_image(variant), BLOCKS["stm32"]["config"],
                               sc.config_for("stm32", variant)),
        peer=None if peer_elf is None else
        base.MachineSpec(PEER_PLATFORM, peer_elf, BLOCKS["peer"]["config"], sc.config_for("peer", variant)),
        quantum_ps=quantum_ps or sc.quantum_ps, seed=seed, peer_replay=sc.peer_replay)


def image_path(image: str | Path, machine: str) -> Path:
    """A variant/image name (``fixed``, ``fixed-no-resync``, ``gc-packed``) or a path to an ELF."""
    p = Path(image)
    if p.suffix == ".elf" or p.is_absolute():
        if p.is_absolute():
            return p
        # relative: to the working directory when the file is there (a user's app.elf), else
        # to the repository (tests name build/... paths)
        return p.resolve() if p.is_file() else REPO / p
    if machine == "peer" and str(image) not in PEER_IMAGES:
        raise ConfigError(f"unknown peer image {image!r}", field="peer",
                          expected="one of " + ", ".join(PEER_IMAGES) + " or a path to an .elf")
    return BUILD / ("stm32" if machine == "stm32" else "esp32") / f"{image}.elf"


def _platform(given: str | Path | None, default: Path, field_name: str) -> Path:
    """A platform file (.repl) for a machine: ours unless given; a missing one is bad input."""
    if given is None:
        return default
    p = Path(given)
    if not p.is_absolute() and not p.is_file():
        p = REPO / p
    if not p.is_file():
        raise ConfigError(f"platform file {given} not found", field=field_name,
                          expected="a .repl file (e.g. platforms/stm32h743.repl)")
    return p


def _check_image(path: Path, machine: str) -> None:
    if not path.is_file():
        raise ConfigError(f"firmware image {path} for the {machine} is missing", field=machine,
                          expected="a built image (run `make firmware`)")


# -- status blocks ---------------------------------------------------------------------------------
class Block:
    """A snapshot of one firmware block, fields as attributes: ``duo.stm32.status.estops``."""

    def __init__(self, machine: str, symbol: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_machine", machine)
        object.__setattr__(self, "_symbol", symbol)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{self._machine} block {self._symbol} has no field {name!r} "
                             f"(fields: {', '.join(values)})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._symbol} is a snapshot read from the firmware's RAM: read-only")

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"<{self._machine} {self._symbol} " + \
            " ".join(f"{k}={v}" for k, v in self._values.items()) + ">"


# -- the handles ------------------------------------------------------------------------------------
class Machine:
    """One MCU of a Duo: its blocks (read on access), its console, waiting for a console line."""

    def __init__(self, duo: Duo, name: str, handle: base.MachineHandle) -> None:
        self._duo = duo
        self.name = name
        self.handle = handle
        self._cursor = 0                 # console lines already matched by wait_for_line
        self._uarts: dict[str, UartPort] = {}

    def block(self, symbol: str) -> Block:
        """Any struct at an ELF symbol, decoded through the image's DWARF."""
        return Block(self.name, symbol, self.handle.read_block(symbol))

    @property
    def status(self) -> Block:
        return self.block(BLOCKS[self.name]["status"])

    @property
    def config(self) -> Block:
        return self.block(BLOCKS[self.name]["config"])

    @property
    def crash_record(self) -> Block:
        return self.block(BLOCKS[self.name]["crash"])

    @property
    def console_lines(self) -> list[base.ConsoleLine]:
        return self.handle.console()

    @property
    def console(self) -> list[str]:
        return [ln.text for ln in self.handle.console()]

    def pc(self) -> int:
        return self.handle.pc()

    def uart(self, name: str) -> UartPort:
        """The host's end of UART ``name`` of this MCU (``duo.stm32.uart("usart3")``): write to the
        firmware, read what it sent, wait for it in virtual time. Any UART, any firmware."""
        port = self._uarts.get(name)
        if port is None:
            port = self._uarts[name] = UartPort(self._duo, self.name, self.handle.uart(name))
        return port

    def wait_for_line(self, text: str, timeout_ms: float = DEFAULT_WAIT_MS,
                      step_ms: float = WAIT_STEP_MS) -> base.ConsoleLine:
        """The next console line containing ``text`` (after the last one this method returned),
        running the simulation in steps of ``step_ms`` for at most ``timeout_ms`` of virtual time.
        AssertionError naming the line, machine, timeout and the last console lines otherwise."""
        duo = self._duo
        t0 = duo.now_ps
        deadline = t0 + _ps(timeout_ms)
        step = max(1, _ps(step_ms))
        while True:
            lines = self.handle.console()
            for i in range(self._cursor, len(lines)):
                if text in lines[i].text:
                    self._cursor = i + 1
                    return lines[i]
            if duo.now_ps >= deadline:
                break
            duo.run_until_ps(min(deadline, duo.now_ps + step))
        tail = "\n".join(f"  {ln.t_ps / base.PS_PER_MS:10.3f} ms  {ln.text}"
                         for ln in self.handle.console()[-8:]) or "  (nothing printed)"
        raise AssertionError(
            f"no line containing {text!r} on the {self.name} console within {timeout_ms:g} ms of "
            f"virtual time (waited from {t0 / base.PS_PER_MS:.3f} to "
            f"{duo.now_ps / base.PS_PER_MS:.3f} ms); last console lines:\n{tail}")

    def stall(self, ms: float, at_ms: float | None = None,
              after_setpoints: int | None = None) -> dict[str, Any]:
        """Halt this CPU for ``ms`` (a GC stop-the-world pause): now, at ``at_ms``, or once the
        peer has sent ``after_setpoints`` setpoint frames. Only the peer has a GC."""
        if self.name != "peer":
            raise ConfigError(f"cannot stall the {self.name}: a stall is a GC pause of the peer",
                              field="stall", expected="duo.peer.stall(ms=...)")
        raw: dict[str, Any] = {"kind": "peer_stall", "duration_ms": ms}
        if after_setpoints is not None:
            raw["after_setpoints"] = after_setpoints
        else:
            raw["at_ms"] = self._duo.now_ms if at_ms is None else at_ms
        return self._duo.inject(raw, where="peer.stall")

    def __repr__(self) -> str:
        ms = self._duo.spec.stm32 if self.name == "stm32" else self._duo.spec.peer
        return f"<duo.{self.name} {ms.elf.name if ms else 'none'}>"


class UartPort:
    """The host's end of one MCU UART: ``write``, ``received``, ``wait_for`` (virtual time).

    Bytes go out paced at the MCU's programmed baud unless ``baud`` is given (then a rate more than
    3 % off garbles them, as on the wire, and the run's diagnosis says so)."""

    def __init__(self, duo: Duo, machine: str, port: base.HostUart) -> None:
        self._duo = duo
        self.machine = machine
        self.port = port
        self.name = port.name
        self._cursor = 0                 # received bytes already consumed by wait_for

    def write(self, data: bytes | str, baud: int | None = None) -> UartPort:
        """Send ``data`` (str is encoded as UTF-8) to the firmware, starting now."""
        self.port.write(data.encode() if isinstance(data, str) else bytes(data), baud=baud)
        return self

    def received(self) -> bytes:
        """Everything the firmware sent on this UART so far."""
        return self.port.received()

    def wait_for(self, pattern: bytes | str | re.Pattern[bytes], timeout_ms: float = DEFAULT_WAIT_MS,
                 step_ms: float = WAIT_STEP_MS) -> bytes:
        """Run until the bytes received after the last match contain ``pattern`` (bytes or str:
        a substring; a compiled bytes regex: a search) and return what matched; at most
        ``timeout_ms`` of virtual time. AssertionError with what did arrive otherwise."""
        duo = self._duo
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(bytes(pattern)))
        t0 = duo.now_ps
        deadline = t0 + _ps(timeout_ms)
        step = max(1, _ps(step_ms))
        while True:
            data = self.port.received()
            m = rx.search(data, self._cursor)
            if m is not None:
                self._cursor = m.end()
                return m.group(0)
            if duo.now_ps >= deadline:
                break
            duo.run_until_ps(min(deadline, duo.now_ps + step))
        got = self.port.received()[self._cursor:]
        problems = self.port.problems()
        raise AssertionError(
            f"{self.machine}.{self.name}: no {rx.pattern!r} within {timeout_ms:g} ms of virtual time "
            f"(waited from {t0 / base.PS_PER_MS:.3f} to {duo.now_ps / base.PS_PER_MS:.3f} ms); "
            f"received since the last match: {bytes(got[-200:])!r}"
            + "".join(f"\n  {ln}" for ln in problems)
            + "".join(f"\n  {ln}" for ln in duo.diagnosis()))

    def __repr__(self) -> str:
        return f"<uart {self.machine}.{self.name}: {len(self.port.received())} bytes received>"


class Link:
    """The UART between the two MCUs: frame-aware faults and what went over the wire."""

    def __init__(self, duo: Duo) -> None:
        self._duo = duo

    def corrupt(self, frame: int, field: str = "LEN", action: str = "flip",
                direction: str = "peer->stm32", bit: int = 0, value: int | None = None,
                delay_us: float | None = None) -> dict[str, Any]:
        """One fault on one frame: ``frame`` indexes the direction's frames from the start of the
        run (0 = the first), as in scenario files; ``action`` flip (bit), drop, insert (value), duplicate, delay
        (delay_us) or truncate; ``field`` SOF, LEN, CRC_LO, CRC_HI or payload[i]."""
        raw: dict[str, Any] = {"kind": "link", "action": action, "direction": direction,
                               "frame": frame, "field": field, "bit": bit}
        if value is not None:
            raw["value"] = value
        if delay_us is not None:
            raw["delay_us"] = delay_us
        return self._duo.inject(raw, where="link.corrupt")

    def noise(self, ber: float, ms: float, at_ms: float | None = None,
              direction: str = "peer->stm32") -> dict[str, Any]:
        """Bit errors at rate ``ber`` on the bytes arriving during ``ms`` from now (or at_ms)."""
        raw = {"kind": "noise", "direction": direction, "ber": ber,
               "at_ms": self._duo.now_ms if at_ms is None else at_ms, "duration_ms": ms}
        return self._duo.inject(raw, where="link.noise")

    def bytes(self, direction: str | None = None) -> list[base.LinkByte]:
        return [b for b in self._duo.session.link_bytes() if direction in (None, b.direction)]

    def frames(self, direction: str = "peer->stm32") -> list[tuple[float, bytes]]:
        """Frames as the sender meant them, (arrival time in ms, payload)."""
        return [(t / base.PS_PER_MS, p)
                for t, p in oracle.sender_frames(self._duo.session.link_bytes(), direction)]


def _quantum_ps(quantum_us: float) -> int:
    q = round(float(quantum_us) * base.PS_PER_US)
    if q <= 0:
        raise ConfigError(f"quantum of {quantum_us} us", field="quantum_us",
                          expected="a CPU slice bound > 0 us (e.g. 10)")
    return q


def _ps(ms: float) -> int:
    return round(float(ms) * base.PS_PER_MS)


# -- the pair ------------------------------------------------------------------------------------------
class Duo:
    """Both MCUs of one run, booted, joined by the link, advancing in virtual time."""

    def __init__(self, engine: base.Engine, spec: base.RunSpec, *, engine_name: str,
                 scenario: Scenario | None = None, variant: str | None = None,
                 oracle_params: dict[str, Any] | None = None, label: str | None = None) -> None:
        self.engine = engine
        self.engine_name = engine_name
        self.spec = spec
        self.scenario = scenario
        self.variant = variant or spec.stm32.elf.stem
        self.label = label or (scenario.name if scenario else
                               f"{spec.stm32.elf.stem}+{spec.peer.elf.stem if spec.peer else 'none'}")
        self.oracle_params = dict(oracle_params or {})
        self.error: str | None = None
        self._faults: list[dict[str, Any]] = []
        #: status samples in columns (a soak keeps them all: the oracles read the whole run)
        self._samples: dict[str, SampleLog] = {"stm32": SampleLog(), "peer": SampleLog()}
        self._pcs: dict[str, list[int]] = {"stm32": [], "peer": []}    # last pcs, every SAMPLE_MS
        self._snapshots: dict[str, Any] = {}           # per MCU: handle.fields_snapshot's answer
        self._wall = 0.0
        self._closed = False
        self._result: tuple[int, RunResult] | None = None
        w0 = time.perf_counter()
        self.session = engine.start(spec)
        self._wall += time.perf_counter() - w0
        self.stm32 = Machine(self, "stm32", self.session.stm32)
        self.peer = Machine(self, "peer", self.session.peer)
        self.link = Link(self)
        self._step = _ps(SAMPLE_MS)
        self._sampling = False        # starts with the first run, after the faults injected before it
        #: build the report's timeline in result() (a campaign, which keeps no report, skips it)
        self.with_timeline = True
        #: set by run_to_first: the label that stopped the run early and the time it stopped
        self.stopped: tuple[str, int] | None = None
        #: why, in words, when a scenario's ``on_hang: stop`` stopped the run at a hung CPU
        self.stopped_reason: str | None = None
        self._hang_seen = 0           # event-log entries already looked at for a hung CPU

    # -- starting ----------------------------------------------------------------------------------
    @classmethod
    def start(cls, stm32: str | Path = "fixed",
              peer: str | Path | dict[str, Any] | None = "pooled-packed",
              engine: str | base.Engine = registry.DEFAULT_ENGINE, seed: int = 0,
              quantum_us: float = base.DEFAULT_QUANTUM_PS / base.PS_PER_US,
              config: dict[str, dict[str, int]] | None = None,
              plant: dict[str, Any] | None = None, oracle_params: dict[str, Any] | None = None,
              requires: Iterable[str] = (), engine_options: dict[str, Any] | None = None,
              stm32_platform: str | Path | None = None, peer_platform: str | Path | None = None
              ) -> Duo:
        """Both machines booted: ``stm32`` a build variant (``fixed``, ``buggy``,
        ``fixed-no-<fix>``) or a path to any ELF, ``peer`` a peer image name, an ELF path, None
        (the STM32 alone) or ``{"script": "packed", ...}`` (duohil.peer_script), ``config``
        config-block overrides per machine (``{"stm32": {"freshness_ms": 20}}``; only for images
        that have the block), ``plant`` motor parameters, ``*_platform`` a .repl (default: ours).
        The firmware<->harness contract (config/status/crash blocks, log lines) is used where the
        image has it. CapabilityMissing when the engine lacks one of ``requires``."""
        script = None
        if isinstance(peer, dict):              # {"script": "packed", ...}: duohil.peer_script
            from .peer_script import parse_spec
            script, peer = parse_spec(peer, None, "peer"), None
        config = dict(config or {})
        for m in config:
            if m not in BLOCKS:
                raise ConfigError(f"config for unknown machine {m!r}", field=f"config.{m}",
                                  expected="stm32 or peer")
        elfs = {"stm32": image_path(stm32, "stm32")}
        if peer is not None:
            elfs["peer"] = image_path(peer, "peer")
        elif config.get("peer"):
            raise ConfigError("config for the peer, but peer=None", field="config.peer",
                              expected="a peer image, or no peer config")
        for m, p in elfs.items():
            _check_image(p, m)
        plats = {"stm32": _platform(stm32_platform, STM32_PLATFORM, "stm32_platform"),
                 "peer": _platform(peer_platform, PEER_PLATFORM, "peer_platform")}
        spec = base.RunSpec(
            stm32=base.MachineSpec(plats["stm32"], elfs["stm32"], BLOCKS["stm32"]["config"],
                                   dict(config.get("stm32", {}))),
            peer=None if peer is None else
            base.MachineSpec(plats["peer"], elfs["peer"], BLOCKS["peer"]["config"],
                             dict(config.get("peer", {}))),
            quantum_ps=_quantum_ps(quantum_us), seed=seed)
        eng, name = _engine(engine, plant, engine_options, [] if script else requires)
        if script is not None:
            from .peer_script import ScriptedPeerEngine
            eng = ScriptedPeerEngine(eng, script)
            if eng.missing(requires):
                raise CapabilityMissing(name, eng.missing(requires))
        return cls(eng, spec, engine_name=name, oracle_params=oracle_params,
                   variant=Path(str(stm32)).stem)

    @classmethod
    def from_scenario(cls, sc: Scenario, variant: str, *, seed: int | None = None,
                      engine: str | base.Engine = registry.DEFAULT_ENGINE,
                      quantum_us: float | None = None,
                      engine_options: dict[str, Any] | None = None,
                      stm32: str | Path | None = None) -> Duo:
        """One variant of a scenario, its fault plan realised with ``seed`` and scheduled.
        ``stm32`` replaces the variant's STM32 image (e.g. to run the ``fixed`` expectation
        against a ``fixed-no-<fix>`` build)."""
        seed = sc.seed if seed is None else seed
        if sc.hang_window_ms is not None:        # the builtin engine's hang detection window
            ename = engine if isinstance(engine, str) else engine.name
            if ename != "builtin":
                raise ConfigError(f"hang_window_ms is a builtin-engine setting, not {ename}'s",
                                  file=sc.path, field="hang_window_ms",
                                  expected="no hang_window_ms, or --engine builtin")
            engine_options = {"hang_ms": sc.hang_window_ms} | dict(engine_options or {})
        script = getattr(sc, "peer_script", None)
        eng, name = _engine(engine, sc.plant, engine_options,
                            [] if script else sc.requires, f"scenario {sc.name}")
        if script is not None:                  # the peer is duohil.peer_script on the link UART
            from .peer_script import ScriptedPeerEngine
            eng = ScriptedPeerEngine(eng, script)
            missing = eng.missing(sc.requires)
            if missing:
                raise CapabilityMissing(name, missing, what=f"scenario {sc.name}")
        plan = faultmod.realise(sc.faults, seed)
        q_ps = sc.quantum_ps if quantum_us is None else _quantum_ps(quantum_us)
        spec = spec_for(sc, variant, seed, q_ps)
        if stm32 is not None:
            spec = base.RunSpec(stm32=base.MachineSpec(spec.stm32.platform, image_path(stm32, "stm32"),
                                                       spec.stm32.config_symbol, spec.stm32.config),
                                peer=spec.peer, quantum_ps=spec.quantum_ps, seed=spec.seed,
                                link_uarts=spec.link_uarts, console_uarts=spec.console_uarts,
                                peer_replay=spec.peer_replay)
        for m, p in (("stm32", spec.stm32.elf), ("peer", spec.peer.elf if spec.peer else None)):
            if p is not None and not p.is_file():
                raise ConfigError(f"firmware image {p} for variant {variant} is missing",
                                  file=sc.path, field=f"{m}.image",
                                  expected="a built image (run `make firmware`)")
        duo = cls(eng, spec, engine_name=name, scenario=sc, variant=variant,
                  oracle_params=sc.oracle)
        try:
            for f in plan:
                duo._inject_fault(f)
        except BaseException:
            duo.close()
            raise
        return duo

    # -- time ----------------------------------------------------------------------------------------
    @property
    def now_ps(self) -> int:
        return self.session.now_ps

    @property
    def now_ms(self) -> float:
        return self.session.now_ps / base.PS_PER_MS

    def run(self, ms: float = 0, us: float = 0) -> Duo:
        """Advance both machines by ``ms`` + ``us`` of virtual time."""
        step = _ps(ms) + round(float(us) * base.PS_PER_US)
        if step < 0:
            raise ConfigError(f"cannot run for {ms} ms + {us} us: virtual time only goes forward",
                              field="ms", expected="a duration >= 0")
        return self.run_until_ps(self.now_ps + step)

    def run_until(self, ms: float) -> Duo:
        return self.run_until_ps(_ps(ms))

    def run_to_end(self) -> Duo:
        """Run to the scenario's duration (a Duo started from a scenario)."""
        if self.scenario is None:
            raise ConfigError("run_to_end needs a scenario", field="duration_ms",
                              expected="Duo.from_scenario(...) or duo.run(ms=...)")
        if self.scenario.on_hang == "stop":
            self.run_to_first(())
            return self
        return self.run_until_ps(self.scenario.duration_ps)

    def _hung(self) -> tuple[str, int, dict[str, Any]] | None:
        """The first CPU the engine reported hung or stopped (``cpu_hung``, ``cpu_stopped``)
        since the last call, looking only at the new part of the event log."""
        sched = getattr(self.session, "scheduler", None)
        log = getattr(sched, "log", None)
        if not isinstance(log, list):                     # another engine: its whole log
            log = self.session.events()
        start, self._hang_seen = self._hang_seen, len(log)
        for t, kind, d in log[start:]:
            if kind in oracle.STOP_EVENTS:
                return kind, t, d
        for agg in getattr(sched, "_aggregated", {}).values():   # a log already full
            if agg[0] in oracle.STOP_EVENTS:
                return agg[0], agg[3], agg[1]
        return None

    def _hang_words(self, kind: str, t: int, d: dict[str, Any]) -> str:
        """``stm32 CPU hung: <reason> at pc 0x... main (app.c:12), 123.000 ms``."""
        machine = d.get("machine", "stm32")
        pc = d.get("pc", d.get("mepc"))
        where = ""
        if isinstance(pc, int):
            spec = self.spec.stm32 if machine == "stm32" else self.spec.peer
            handle = self.session.stm32 if machine == "stm32" else self.session.peer
            where = " at " + diagmod._where(handle, spec.elf if spec else None, pc)
        what = "hung" if kind == "cpu_hung" else "stopped"
        return (f"{machine} CPU {what}: {d.get('reason', kind)}{where}, {t / base.PS_PER_MS:.3f} ms "
                f"(scenario on_hang: stop)")

    def run_to_first(self, labels: list[str] | tuple[str, ...], chunk_ms: int = 2 * SAMPLE_MS
                     ) -> str | None:
        """Run to the scenario's end, but stop at the first chunk boundary where one of
        ``labels`` is certain: only labels whose oracle asks "did it ever happen"
        (``oracle.MONOTONE``) can be, so the rest of the run could not remove them. Returns
        that label (None: ran to the end). For a run started here at time 0 (as campaigns
        do) the chunk boundaries fall on the status-sampling events (every SAMPLE_MS from 0),
        so chunking adds no scheduler step and the run is the one ``run_to_end`` makes, cut
        short (same fingerprint at any common time: tests/test_early_stop.py)."""
        if self.scenario is None:
            raise ConfigError("run_to_first needs a scenario", field="duration_ms",
                              expected="Duo.from_scenario(...)")
        watch = [lab for lab in labels if lab in oracle.MONOTONE]
        end = self.scenario.duration_ps
        chunk = _ps(chunk_ms)
        on_hang_stop = self.scenario.on_hang == "stop"
        if not (watch or on_hang_stop) or chunk <= 0:
            self.run_until_ps(end)
            return None
        t = self.now_ps
        while t < end:
            t = min(end, (t // chunk + 1) * chunk)
            self.run_until_ps(t)
            hung = self._hung() if on_hang_stop else None
            if hung is not None:           # the scenario says: stop at a hung CPU
                self.stopped = (hung[0], t)
                self.stopped_reason = self._hang_words(*hung)
                return hung[0]
            seen = oracle.seen_monotone(watch, self.session.events(),
                                        self.session.stm32.console()) if watch else None
            if seen is not None:
                self.stopped = (seen, t)
                return seen
        return None

    def run_until_ps(self, t_ps: int) -> Duo:
        if self._closed:
            raise EngineError(f"{self.label}: the simulation is closed")
        if self.error is not None:
            raise EngineError(f"{self.label}: the run already stopped: {self.error}")
        if not self._sampling:
            self._sampling = True
            self.session.at(max(self._step, self.now_ps + self._step), self._sample, name="sample")
        w0 = time.perf_counter()
        try:
            self.session.run_until(t_ps)
        except (EngineError, RuntimeError) as exc:      # keep what was observed, then say so
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._wall += time.perf_counter() - w0
        return self

    def _sample(self) -> None:
        now = self.session.now_ps
        for name, handle in (("stm32", self.session.stm32), ("peer", self.session.peer)):
            try:
                # only what the oracles read: the block's bytes when the engine can copy them
                # (decoded when the oracles read the log), else the fields
                snap = self._snapshots.get(name, _NO_SNAPSHOT)
                if snap is _NO_SNAPSHOT:
                    snap = self._snapshots[name] = handle.fields_snapshot(BLOCKS[name]["status"],
                                                                          STATUS_KEYS)
                if snap is not None:
                    self._samples[name].append_raw(now, snap[0](), snap[1])
                else:
                    self._samples[name].append(now, handle.read_fields(BLOCKS[name]["status"],
                                                                       STATUS_KEYS))
            except ConfigError:
                pass
            try:                      # for the diagnosis of a run that ends in a poll loop
                pcs = self._pcs[name]
                pcs.append(handle.pc())
                del pcs[:-4]
            except (ConfigError, EngineError):
                pass
        self.session.at(now + self._step, self._sample, name="sample")

    # -- faults ----------------------------------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.engine.capabilities)

    def inject(self, fault: faultmod.Fault | dict[str, Any], where: str = "fault") -> dict[str, Any]:
        """Schedule one fault (a Fault or a scenario-style mapping ``{kind: ..., ...}``); returns
        its entry in the run's fault plan (with ``t_ps`` once its time is known)."""
        raw = fault.to_dict() if isinstance(fault, faultmod.Fault) else dict(fault)
        f = faultmod.validate_fault(raw, where, None)
        if faultmod.has_distributions([f]):
            f = faultmod.realise([f], self.spec.seed * 7919 + len(self._faults))[0]
        return self._inject_fault(f)

    def _inject_fault(self, f: faultmod.Fault) -> dict[str, Any]:
        cap = faultmod.capability_of(f.kind)
        if cap not in self.engine.capabilities:
            raise CapabilityMissing(self.engine_name, [cap], what=f"a {f.kind} fault")
        if self._closed:
            raise EngineError(f"{self.label}: the simulation is closed")
        t = self.session.inject(f)
        entry = f.to_dict()
        if t is not None:
            entry["t_ps"] = t
        self._faults.append(entry)
        self._result = None
        return entry

    def dma_latency(self, stream: int, us: float, controller: str = "dma1",
                    at_ms: float | None = None) -> dict[str, Any]:
        """Delay the DMA stream's completion (flags + interrupt) by ``us`` from now (or at_ms) on."""
        return self.inject({"kind": "dma_latency", "controller": controller, "stream": stream,
                            "latency_us": us, "at_ms": self.now_ms if at_ms is None else at_ms},
                           where="dma_latency")

    def irq_at(self, symbol: str, irq: int, offset: int = 0, nth: int = 1,
               at_ms: float | None = None) -> dict[str, Any]:
        """Pend STM32 IRQ ``irq`` when the core reaches ``symbol``+``offset`` for the nth time."""
        return self.inject({"kind": "irq_at", "symbol": symbol, "offset": offset, "irq": irq,
                            "nth": nth, "at_ms": self.now_ms if at_ms is None else at_ms},
                           where="irq_at")

    def bus_fault(self, at_ms: float | None = None, address: int | None = None) -> dict[str, Any]:
        """An imprecise bus error on the STM32 (a HardFault the fault handler must survive, CM7),
        now or at ``at_ms``; ``address`` is what the bus error reports."""
        raw: dict[str, Any] = {"kind": "bus_fault", "at_ms": self.now_ms if at_ms is None else at_ms}
        if address is not None:
            raw["address"] = address
        return self.inject(raw, where="bus_fault")

    @property
    def fault_plan(self) -> list[dict[str, Any]]:
        """The faults injected so far, each with the time it took effect when known."""
        events = self.session.events()
        out = []
        for i, f in enumerate(self._faults):
            entry = dict(f)
            if "t_ps" not in entry:
                for t, kind, d in events:
                    if kind == "fault" and d.get("index") == i:
                        entry["t_ps"] = t
                        break
            out.append(entry)
        return out

    # -- observations and verdicts -----------------------------------------------------------------
    def _observe(self) -> tuple[oracle.Observations, dict[str, dict[str, Any]]]:
        s = self.session
        duration = s.now_ps
        if self.error is not None and self.scenario is not None:
            duration = max(duration, self.scenario.duration_ps)   # the run was meant to last
        obs = oracle.Observations(
            duration_ps=duration,
            peer_layout=getattr(s, "peer_layout", None) or (
                "natural" if self.spec.peer and "natural" in self.spec.peer.elf.name else "packed"))
        for sym in {need for need in oracle.NEEDS.values()}:
            try:
                s.stm32.symbol(sym)
            except ConfigError:
                obs.missing.add(sym)
        obs.console = {"stm32": s.stm32.console(), "peer": s.peer.console()}
        obs.link = s.link_bytes()
        obs.events = s.events()
        obs.faults = self.fault_plan
        obs.samples = dict(self._samples)      # read-only views: the oracles copy nothing
        obs.error = self.error
        final: dict[str, dict[str, Any]] = {}
        for name, handle in (("stm32", s.stm32), ("peer", s.peer)):
            try:
                final[name] = handle.read_block(BLOCKS[name]["status"])
            except ConfigError:
                final[name] = {}
        st = final.get("stm32", {})
        if st.get("stack_size"):
            obs.stack = {"size": st["stack_size"], "high_water": st.get("stack_high_water", 0)}
        return obs, final

    def outcomes(self) -> oracle.Verdict:
        """The oracles' verdict on the run so far (ok, or labels each with one line of evidence)."""
        obs, _ = self._observe()
        return oracle.classify(obs, self.oracle_params)

    def diagnosis(self) -> list[str]:
        """What went wrong so far, in words: decoded faults with the end state, a poll loop the
        run ends in, baud mismatches and dropped characters per UART (duohil.diagnose)."""
        return diagmod.diagnose(self.session, self.spec, self._pcs)

    def crash(self) -> dict[str, Any] | None:
        """The decoded crash: the STM32's crash record if its firmware wrote one, else the CPU's own
        fault entry, else the peer's trap record; None when nothing crashed."""
        return _crash(self.session, self.spec, self.session.events())

    @property
    def expected(self) -> list[str] | dict[str, list[str]] | None:
        return None if self.scenario is None else self.scenario.expect.get(self.variant)

    def result(self) -> RunResult:
        """The run so far as a RunResult (what `duohil run` writes as JSON)."""
        if self._result is not None and self._result[0] == self.now_ps:
            return self._result[1]
        # the fingerprint first: its transient (RAM images, the link encoded in chunks) is the
        # largest of a result's, and then it does not stack on the oracles' views of a soak
        fingerprint = self.session.fingerprint()
        obs, final = self._observe()
        verdict = oracle.classify(obs, self.oracle_params)
        crash_json = _crash(self.session, self.spec, obs.events)
        expected = self.expected
        sc = self.scenario
        result = RunResult(
            scenario=self.label, scenario_path=str(sc.path) if sc else "",
            crash_mode=sc.crash_mode if sc else "", variant=self.variant, seed=self.spec.seed,
            engine=self.engine_name, quantum_us=self.spec.quantum_ps / base.PS_PER_US,
            outcomes=verdict.labels, evidence=verdict.evidence, expected=expected,
            matches=None if expected is None else oracle.matches(verdict, expected),
            fault_plan=obs.faults, crash=crash_json, counters=final,
            fingerprint=fingerprint, virtual_ms=obs.duration_ps / base.PS_PER_MS,
            wall_s=round(self._wall, 3),
            console={k: [f"{ln.t_ps / base.PS_PER_MS:10.3f} {ln.text}" for ln in v]
                     for k, v in obs.console.items()},
            error=self.error,
            timeline=_timeline(obs, self.session.observations(), self._soft_limits())
            if self.with_timeline else {},
            images={"stm32": self.spec.stm32.elf.name,
                    "peer": self.spec.peer.elf.name if self.spec.peer else "none"},
            diagnosis=self.diagnosis(), not_applicable=verdict.not_applicable)
        oracle.release()
        self._result = (self.now_ps, result)
        return result

    def should_match(self, expected: str | list[str] | dict[str, list[str]] | None = None
                     ) -> RunResult:
        """Assert the run's outcome meets ``expected`` (default: the scenario's expectation for
        this variant): a label, any of a list, or ``{any: [...], none: [...]}``. The
        AssertionError says what happened, with evidence and the crash."""
        __tracebackhide__ = True          # pytest: show the test's line, not this one
        if expected is None:
            expected = self.expected
            if expected is None:
                raise ConfigError(f"{self.label}: no expected outcome for variant {self.variant}",
                                  field=f"expect.{self.variant}", expected="an outcome label or list")
        want: list[str] | dict[str, list[str]]
        if isinstance(expected, dict):
            bad = set(expected) - {"any", "none"}
            if bad:
                raise ConfigError(f"unknown key(s) {', '.join(sorted(bad))}", field="expected",
                                  expected="{any: [...], none: [...]}")
            want = {k: [v] if isinstance(v, str) else list(v) for k, v in expected.items()}
            labels = [lab for v in want.values() for lab in v]
        else:
            want = [expected] if isinstance(expected, str) else list(expected)
            labels = want
        for lab in labels:
            if lab not in oracle.ORACLES and lab != "ok":
                raise ConfigError(f"unknown outcome {lab!r}", field="expected",
                                  expected="ok or one of " + ", ".join(oracle.ORACLES))
        r = self.result()
        moot = [lab for lab in labels if lab in r.not_applicable]
        if moot:                            # never judged, so neither met nor missed
            raise ConfigError(f"{self.label}: cannot expect {', '.join(moot)}: "
                              + "; ".join(f"{lab} {r.not_applicable[lab]}" for lab in moot),
                              field="expected", expected="outcomes this image can show")
        verdict = oracle.Verdict(r.outcomes, r.evidence)
        if not oracle.matches(verdict, want):
            raise AssertionError(explain(r, want))
        return r

    def _soft_limits(self) -> list[int] | None:
        """[min, max] position the STM32's config allows (the report draws them), None if unreadable."""
        try:
            cfg = self.stm32.config
            return [int(cfg.soft_limit_min), int(cfg.soft_limit_max)]
        except (ConfigError, AttributeError):
            return None

    def limit_violations(self) -> list[str]:
        """Why the motor controller left its limits so far (empty when it stayed inside): the
        plant hit an end stop, an ESTOP, or the position outside the config's soft limits."""
        problems = []
        for t, kind, d in self.session.events():
            if kind == "end_stop":
                problems.append(f"plant hit the {d.get('side', '?')} end stop at "
                                f"{t / base.PS_PER_MS:.3f} ms (position {d.get('position')})")
                break
        for ln in self.session.stm32.console():
            if ln.text.startswith("ESTOP"):
                problems.append(f"{ln.text!r} at {ln.t_ps / base.PS_PER_MS:.3f} ms")
                break
        try:
            cfg = self.stm32.config
            lo, hi = cfg.soft_limit_min, cfg.soft_limit_max
        except (ConfigError, AttributeError):
            return problems
        now = self.session.stm32.read_block(BLOCKS["stm32"]["status"])
        for t, st in itertools.chain(self._samples["stm32"], [(self.now_ps, now)]):
            pos = st.get("position")
            if isinstance(pos, int) and not lo <= pos <= hi:
                problems.append(f"position {pos} outside the soft limits [{lo}, {hi}] at "
                                f"{t / base.PS_PER_MS:.3f} ms")
                break
        if now.get("estops"):
            problems.append(f"g_status.estops = {now['estops']}")
        return problems

    # -- life cycle -----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Keep the final result (``result()`` still answers), then release the engine."""
        if self._closed:
            return
        try:
            self.result()
        except Exception:            # noqa: BLE001, S110 - a broken session still closes
            pass
        finally:
            self._closed = True
            self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Duo {self.label} variant={self.variant} engine={self.engine_name} "
                f"seed={self.spec.seed} t={self.now_ms:.3f} ms>")


def _engine(engine: str | base.Engine, plant: dict[str, Any] | None,
            options: dict[str, Any] | None, requires: Iterable[str] = (),
            what: str = "") -> tuple[base.Engine, str]:
    """The engine for a run, made with the plant parameters. An engine that cannot run here says
    why (EngineUnavailable); one that lacks a capability in ``requires`` (or the plant, given
    plant parameters) raises CapabilityMissing before it is made."""
    needed = set(requires) | ({base.PLANT} if plant else set())
    if isinstance(engine, base.Engine):
        missing = engine.missing(needed)
        if missing:
            raise CapabilityMissing(engine.name, missing, what=what)
        if not plant and not options:
            return engine, engine.name
        engine = engine.name
    cls = registry.engine_class(engine)
    ok, reason = cls.availability()
    if not ok:
        raise EngineUnavailable(engine, reason)
    missing = sorted(needed - set(cls.capabilities))
    if missing:
        raise CapabilityMissing(engine, missing, what=what)
    opts = ({"plant": dict(plant)} if plant else {}) | dict(options or {})
    return registry.get_engine(engine, **opts), engine


def _crash(session: base.Session, spec: base.RunSpec,
           events: list[tuple[int, str, dict]]) -> dict[str, Any] | None:
    """The STM32 crash record if the firmware wrote one, else the CPU's own fault entry."""
    try:
        rec = session.stm32.read_block(BLOCKS["stm32"]["crash"])
    except ConfigError:
        rec = {}
    if rec.get("magic") in CRASH_MAGICS and rec.get("count", 0) > 0:
        rep = crashmod.decode_cortexm(rec, spec.stm32.elf,
                                      exception=CORTEXM_EXCEPTIONS.get(rec.get("exception", 3),
                                                                       "fault"))
        return rep.to_json() | {"source": "crash_record"}
    for t, kind, d in events:
        if kind in oracle.FAULT_EVENTS and d.get("machine", "stm32") == "stm32" and "pc" in d:
            rep = crashmod.decode_cortexm(d, spec.stm32.elf, exception=d.get("exception", "HardFault"))
            return rep.to_json() | {"source": "cpu", "t_ms": t / base.PS_PER_MS,
                                    "faults": crashmod.fault_history(events, spec.stm32.elf)}
    for t, kind, d in events:                   # no fault, but the engine stopped the core
        if kind in oracle.STOP_EVENTS and d.get("machine", "stm32") == "stm32" and "pc" in d:
            rep = crashmod.decode_cortexm(d, spec.stm32.elf, exception=d.get("reason", kind))
            return rep.to_json() | {"source": "cpu", "t_ms": t / base.PS_PER_MS,
                                    "faults": crashmod.fault_history(events, spec.stm32.elf)}
    try:
        prec = session.peer.read_block(BLOCKS["peer"]["crash"])
    except ConfigError:
        prec = {}
    if prec.get("magic") == PEER_CRASH_MAGIC:
        return crashmod.decode_riscv(prec, spec.peer.elf).to_json() | {"source": "peer_crash"}
    return None


def _timeline(obs: oracle.Observations, extras: dict[str, Any],
              soft_limits: list[int] | None = None) -> dict[str, Any]:
    """Compact data for the HTML report: frames per direction, faults, plant position, the STM32's
    soft limits and ESTOP lines, and each setpoint the STM32 applied next to what the peer meant
    (CM6's axis never moves: the misparse shows there, not in the position)."""
    frames = {}                 # from the oracles' decoded wire, without another copy of it
    for d in ("peer->stm32", "stm32->peer"):
        frames[d] = [(round(f.t_ps / base.PS_PER_MS, 3), f.payload[0] if f.payload else None)
                     for f in oracle.wire_frames(obs.link, d)]
    meant = oracle.meant_setpoints([(f.t_ps, f.payload) for f in oracle.wire_frames(
        obs.link, "peer->stm32") if f.payload and f.payload[0] == oracle.protocol.MSG_SETPOINT],
        obs.peer_layout)
    setpoints, last = [], None
    for t, st in obs.samples.get("stm32", []):
        if st.get("setpoints") and "sp_seq" in st and st["sp_seq"] != last:
            last = st["sp_seq"]
            want = meant.get(last)
            setpoints.append((round(t / base.PS_PER_MS, 3), last, st["sp_velocity"], st["sp_flags"],
                              want[0] if want else None, want[1] if want else None))
    return {
        "frames": frames,
        "faults": obs.faults,
        "events": [(round(t / base.PS_PER_MS, 3), k, d) for t, k, d in obs.events],
        "plant": extras.get("plant", []),
        "soft_limits": soft_limits,
        "estops": [(round(ln.t_ps / base.PS_PER_MS, 3), ln.text)
                   for ln in obs.console.get("stm32", []) if ln.text.startswith("ESTOP")],
        "setpoints": setpoints,
    }


def scenarios_dir() -> Path:
    """Where the crash-mode suites find scenarios: $DUOHIL_SCENARIOS, else scenarios/."""
    return Path(os.environ.get("DUOHIL_SCENARIOS") or REPO / "scenarios")


def crash_mode_scenarios(root: Path | None = None) -> dict[str, list[Path]]:
    """Scenario files by crash mode (``CM1``.. and ``nominal``), from ``<root>/*.yaml``."""
    from . import safeyaml
    out: dict[str, list[Path]] = {}
    for p in sorted((root or scenarios_dir()).glob("*.yaml")):
        try:                                # the bounded loader: any file may be hostile
            raw = safeyaml.load_file(p)
            mode = raw.get("crash_mode") if isinstance(raw, dict) else None
        except ConfigError:
            mode = None                     # scenario.load reports it properly when it is used
        out.setdefault(mode if isinstance(mode, str) else "None", []).append(p)
    return out


# -- words for people ----------------------------------------------------------------------------------
def crash_text(c: dict[str, Any] | None) -> str:
    """A decoded crash as lines: where (function file:line), why (CFSR/HFSR sentences), backtrace."""
    if not c:
        return "no crash recorded"
    lines = [(f"{c.get('machine', '?')} {c.get('exception', 'fault')} at {c.get('pc') or '?'}"
              f" (from {c.get('source', '?')})")]
    lines += [f"  {s}" for s in c.get("summary", [])]
    if c.get("lr"):
        lines.append(f"  lr {c['lr']}")
    lines += [f"  #{i} {b}" for i, b in enumerate(c.get("backtrace", []))]
    if len(c.get("faults") or []) > 1:                    # the first is the one decoded above
        lines += ["  all faults:"] + [f"    {f}" for f in c["faults"]]
    return "\n".join(lines)


def expectation_text(expected: list[str] | dict[str, list[str]] | None) -> str:
    """``ok``, ``runaway or estop``, ``hardfault and never hang``."""
    if not expected:
        return "nothing stated"
    if isinstance(expected, dict):
        parts = []
        if expected.get("any"):
            parts.append(" or ".join(expected["any"]))
        if expected.get("none"):
            parts.append("never " + " nor ".join(expected["none"]))
        return " and ".join(parts)
    return " or ".join(expected)


def faults_text(plan: list[dict[str, Any]]) -> str:
    """A realised fault plan on one line: ``peer_stall(at_ms=580.412, duration_ms=42.4, ...)``."""
    def val(v: Any) -> Any:
        return round(v, 3) if isinstance(v, float) else v
    return "; ".join(f"{f['kind']}(" + ", ".join(f"{k}={val(v)}" for k, v in f.items() if k != "kind")
                     + ")" for f in plan)


def explain(r: RunResult, expected: list[str] | dict[str, list[str]] | None = None) -> str:
    """Why a run did or did not meet its expectation, in the words a reviewer needs."""
    want = expected if expected is not None else (r.expected or [])
    got = ", ".join(r.outcomes)
    name = r.run_name()
    if want == ["ok"]:
        head = f"{name} should hold (ok) but crashed: {got}"
    elif isinstance(want, dict):
        head = f"{name} expected {expectation_text(want)}, got {got}"
    elif "ok" in r.outcomes:
        head = (f"{name} should reproduce {' or '.join(want)} but the run "
                f"was ok: the crash did not happen")
    else:
        head = f"{name} expected one of {', '.join(want)}, got {got}"
    lines = [head + f" (seed {r.seed}, engine {r.engine}, {r.virtual_ms:.1f} ms virtual)"]
    for k, v in r.evidence.items():
        lines.append(f"  {k}: {v}")
    if r.crash:
        lines.append("  crash: " + crash_text(r.crash).replace("\n", "\n  "))
    if r.diagnosis:
        lines.append("  what went wrong:")
        lines += [f"    {ln}" for ln in r.diagnosis]
    for why in sorted(set(r.not_applicable.values())):
        lines.append(f"  {why}: " + ", ".join(k for k, v in r.not_applicable.items() if v == why))
    if r.error:
        lines.append(f"  engine error: {r.error}")
    if r.fault_plan:
        lines.append("  faults: " + faults_text(r.fault_plan))
    tail = r.console.get("stm32", [])[-5:]
    if tail:
        lines.append("  last STM32 console lines:")
        lines += [f"    {ln.strip()}" for ln in tail]
    return "\n".join(lines)
