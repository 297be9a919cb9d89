# ruff: noqa: N999 - Robot Framework convention: the module is named after its library class
"""Robot Framework library: keywords as sentences over the same Duo API the pytest plugin uses.

    *** Settings ***
    Library    duohil.robot.DuoHil

    *** Test Cases ***
    A GC Pause Does Not Move The Arm Off Its Limits
        Start Dual MCU Simulation    stm32=fixed    peer=gc-packed
        Wait For Line On Console    BOOT    machine=stm32
        Inject GC Pause On Peer    5 ms
        Run For    200 ms
        Motor Controller Should Stay Within Limits

    CM1 Reproduces On Buggy
        Run Scenario ${CM1} With Variant buggy
        Outcome Should Match The Scenario

    My Image Echoes                                    # any ELF, no duohil symbols needed
        Start Firmware    build/app.elf
        Wait For Bytes On UART    usart3    READY    timeout=20 ms
        Write To UART    usart3    ping
        Wait For Bytes On UART    usart3    ping    timeout=5 ms
        Firmware Should Not Have Faulted

Times are Robot time strings (``200 ms``, ``1.5 s``; a bare number is seconds) of *virtual* time.
Library arguments: ``engine`` (default $DUOHIL_ENGINE or builtin), ``seed``, ``quantum_us``.
When a test fails after starting a simulation, its message gets the outcome, the decoded crash and
the paths of the run's timeline and result JSON (kept under ${OUTPUT DIR}/duohil/).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robot.utils import timestr_to_secs

from .. import scenario as scmod
from ..duo import CapabilityMissing, Duo, crash_mode_scenarios, crash_text, explain, scenarios_dir
from ..engines import base, registry
from ..errors import ConfigError, EngineUnavailable

CRASH_MODE_RE = re.compile(r"^CM[1-7]$")


def _ms(time: str | float) -> float:
    """A Robot time string as milliseconds of virtual time."""
    return timestr_to_secs(time) * 1000.0


def _int(value: Any, what: str) -> int:
    try:
        return int(str(value), 0)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an integer", field=what,
                          expected="an integer") from None


@library(scope="GLOBAL", listener="SELF", auto_keywords=False)
class DuoHil:
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, engine: str | None = None, seed: int | str | None = None,
                 quantum_us: float | str | None = None) -> None:
        self.engine_name = engine or os.environ.get("DUOHIL_ENGINE") or registry.DEFAULT_ENGINE
        if self.engine_name not in registry.ENGINES:
            raise ConfigError(f"unknown engine {self.engine_name!r}", field="engine",
                              expected=" or ".join(registry.ENGINES))
        self.seed = None if seed in (None, "", "None") else _int(seed, "seed")
        self.quantum_us = None if quantum_us in (None, "", "None") else float(quantum_us)
        self._duo: Duo | None = None
        self._runs: list[Duo] = []

    # -- listener: report and close after each test ----------------------------------------------
    def end_test(self, data: Any, result: Any) -> None:
        try:
            if result.failed and self._runs:
                notes = [self._keep(duo, result.name, i, result.message)
                         for i, duo in enumerate(self._runs)]
                result.message = (result.message + "\n\n" + "\n\n".join(n for n in notes if n)).strip()
        finally:
            self._close_all()

    def end_suite(self, data: Any, result: Any) -> None:
        self._close_all()

    def _close_all(self) -> None:
        for duo in self._runs:
            duo.close()
        self._runs = []
        self._duo = None

    def _keep(self, duo: Duo, test: str, index: int, message: str = "") -> str:
        """Write the run's JSON and timeline; the lines to add to the failure message."""
        try:
            r = duo.result()
        except Exception as exc:      # noqa: BLE001 - the test already failed; say what we can
            return f"{duo.label}: no result ({type(exc).__name__}: {exc})"
        out = self._report_dir()
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")[:120] + \
            (f"-{index + 1}" if len(self._runs) > 1 else "")
        json_path = out / f"{stem}.json"
        r.write(json_path)
        from ..pytest_plugin import write_timeline
        html = write_timeline(r, out / f"{stem}.html")
        lines = [(f"duohil: {r.run_name()} seed={r.seed} at {r.virtual_ms:.3f} ms: "
                  f"outcome {', '.join(r.outcomes)}")]
        lines += [f"  {k}: {v}" for k, v in r.evidence.items() if v not in message]
        lines.append("crash record: " + crash_text(r.crash).replace("\n", "\n  "))
        lines += [f"  {ln}" for ln in r.diagnosis]
        if html is not None:
            lines.append(f"timeline: {html}")
        lines.append(f"result JSON: {json_path}")
        return "\n".join(lines)

    @staticmethod
    def _report_dir() -> Path:
        try:
            out = BuiltIn().get_variable_value("${OUTPUT DIR}")
        except RobotNotRunningError:
            out = None
        return Path(out or ".") / "duohil"

    # -- the current simulation ------------------------------------------------------------------------
    @property
    def duo(self) -> Duo:
        if self._duo is None:
            raise AssertionError("no simulation is running: start one with `Start Dual MCU "
                                 "Simulation` or `Run Scenario ... With Variant ...` first")
        return self._duo

    def _started(self, duo: Duo) -> Duo:
        self._runs.append(duo)
        self._duo = duo
        peer = duo.spec.peer.elf.name if duo.spec.peer else "none"
        logger.info(f"started {duo!r}: STM32 {duo.spec.stm32.elf.name}, peer {peer}")
        return duo

    def _skip_missing(self, exc: CapabilityMissing | EngineUnavailable) -> None:
        """What this engine cannot do is skipped with the reason, never faked."""
        BuiltIn().skip(str(exc))

    # -- starting ------------------------------------------------------------------------------------------
    @keyword("Start Dual MCU Simulation")
    def start_dual_mcu_simulation(self, stm32: str = "fixed", peer: str = "pooled-packed",
                                  seed: int | None = None, quantum_us: float | None = None,
                                  stm32_platform: str | None = None,
                                  peer_platform: str | None = None, **config: str) -> None:
        """Boot both MCUs: ``stm32`` a build variant or any ELF path, ``peer`` a peer image, an
        ELF path or ``none`` (the STM32 alone); ``*_platform`` a .repl (default: ours).
        Extra ``stm32.<field>=N`` / ``peer.<field>=N`` arguments override config-block fields."""
        cfg: dict[str, dict[str, int]] = {}
        for key, value in config.items():
            machine, _, fld = key.partition(".")
            if machine not in ("stm32", "peer") or not fld:
                raise ConfigError(f"unknown argument {key!r}", field=key,
                                  expected="stm32=, peer=, seed=, quantum_us= or stm32.<config field>=N")
            cfg.setdefault(machine, {})[fld] = _int(value, key)
        seed = seed if seed is not None else self.seed
        quantum = quantum_us or self.quantum_us or base.DEFAULT_QUANTUM_PS / base.PS_PER_US
        try:
            self._started(Duo.start(self._elf(stm32), None if peer == "none" else self._elf(peer),
                                    engine=self.engine_name,
                                    seed=0 if seed is None else _int(seed, "seed"),
                                    quantum_us=float(quantum), config=cfg,
                                    stm32_platform=stm32_platform, peer_platform=peer_platform))
        except (CapabilityMissing, EngineUnavailable) as exc:
            self._skip_missing(exc)

    @keyword("Start Firmware")
    def start_firmware(self, elf: str, platform: str | None = None, seed: int | None = None) -> None:
        """Boot any STM32 ELF alone (no peer; no duohil symbols needed) on ``platform`` (ours by
        default). Drive it with the UART keywords."""
        self.start_dual_mcu_simulation(stm32=elf, peer="none", seed=seed, stm32_platform=platform)

    @staticmethod
    def _elf(image: str) -> str:
        """An .elf path relative to the working directory or this repository; names pass."""
        p = Path(image)
        if p.suffix != ".elf" or p.is_absolute():
            return image
        return str(p.resolve()) if p.is_file() else str(scmod.REPO / p)

    @keyword("Start Scenario ${path:\\S+} With Variant ${variant:[\\w-]+}")
    def start_scenario(self, path: str, variant: str, image: str | None = None) -> None:
        """Boot one variant of a scenario file with its fault plan scheduled (not run yet)."""
        sc = scmod.load(self._scenario_path(path))
        sc.variant(variant)
        try:
            self._started(Duo.from_scenario(sc, variant, seed=self.seed, engine=self.engine_name,
                                            quantum_us=self.quantum_us, stm32=image))
        except (CapabilityMissing, EngineUnavailable) as exc:
            self._skip_missing(exc)

    @keyword("Run Scenario ${path:\\S+} With Variant ${variant:[\\w-]+}")
    def run_scenario(self, path: str, variant: str) -> None:
        """Boot one variant of a scenario and run it for the scenario's duration."""
        self.start_scenario(path, variant)
        self._run_to_end()

    @keyword("Run Scenario ${path:\\S+} With Variant ${variant:[\\w-]+} On Image ${image:\\S+}")
    def run_scenario_on_image(self, path: str, variant: str, image: str) -> None:
        """The variant's expectation checked against another STM32 image (e.g. a build with one
        fix removed: ``Run Scenario ${CM2} With Variant fixed On Image fixed-no-resync``)."""
        self.start_scenario(path, variant, image=image)
        self._run_to_end()

    @keyword("Run Crash Mode ${mode:CM[1-7]} With Variant ${variant:[\\w-]+}")
    def run_crash_mode(self, mode: str, variant: str) -> None:
        """The scenario file of a crash mode (scenarios/*.yaml with ``crash_mode: CMn``), one variant.
        A variant ``fixed-no-fix`` means the scenario's own fixed-no-<fix> build."""
        path = self.scenario_for_crash_mode(mode)
        if variant == "fixed-no-fix":
            variant = scmod.load(path).ab_variants()[-1]
        self.run_scenario(str(path), variant)

    @keyword("Scenario For Crash Mode")
    def scenario_for_crash_mode(self, mode: str) -> Path:
        """The scenario file for ``CMn`` (``cmN_<fix>.yaml`` when there are several); fails naming
        the folder when there is none."""
        if not CRASH_MODE_RE.match(mode):
            raise ConfigError(f"unknown crash mode {mode!r}", field="crash mode", expected="CM1..CM7")
        files = crash_mode_scenarios().get(mode, [])
        canonical = f"{mode.lower()}_{scmod.CRASH_MODES.get(mode, '')}"
        files = sorted(files, key=lambda p: p.stem != canonical)     # cm1_cmd_timeout first
        if not files:
            raise AssertionError(f"no scenario for {mode} ({scmod.CRASH_MODES[mode]}) in "
                                 f"{scenarios_dir()}: expected a *.yaml with crash_mode: {mode}")
        return files[0]

    def _run_to_end(self) -> None:
        duo = self.duo
        try:
            duo.run_to_end()
        except Exception as exc:      # noqa: BLE001 - the verdict keywords report the run's error
            logger.warn(f"{duo.label}: the engine stopped the run: {exc}")
        r = duo.result()
        logger.info(f"{r.headline()}\nfingerprint {r.fingerprint}\n{r.virtual_ms:.1f} ms virtual, "
                    f"{r.wall_s:.1f} s wall")

    @staticmethod
    def _scenario_path(path: str) -> Path:
        p = Path(path)
        if p.is_absolute() or p.is_file():
            return p
        return scmod.REPO / p

    @keyword("Close Dual MCU Simulation")
    def close_dual_mcu_simulation(self) -> None:
        """Stop the simulation (done automatically at the end of each test)."""
        self._close_all()

    # -- time -----------------------------------------------------------------------------------------------
    @keyword("Run For")
    def run_for(self, time: str) -> None:
        """Advance both machines by ``time`` of virtual time (``200 ms``)."""
        self.duo.run(ms=_ms(time))

    @keyword("Wait For Line On Console")
    def wait_for_line_on_console(self, text: str, machine: str = "stm32",
                                 timeout: str = "1 s") -> str:
        """Run until the ``machine`` console prints a line containing ``text`` (virtual timeout).
        Returns the line."""
        return self._machine(machine).wait_for_line(text, timeout_ms=_ms(timeout)).text

    def _machine(self, name: str) -> Any:
        if name not in ("stm32", "peer"):
            raise ConfigError(f"unknown machine {name!r}", field="machine", expected="stm32 or peer")
        return getattr(self.duo, name)

    # -- UARTs: the host's end of any UART -----------------------------------------------------------------
    @keyword("Write To UART")
    def write_to_uart(self, uart: str, text: str, machine: str = "stm32",
                      baud: int | str | None = None) -> None:
        """Send ``text`` (UTF-8; Robot escapes such as ``\\r\\n`` work) to ``uart`` of ``machine``,
        starting now, at the firmware's own baud unless ``baud`` is given."""
        self._machine(machine).uart(uart).write(text, baud=None if baud in (None, "") else
                                                _int(baud, "baud"))

    @keyword("Wait For Bytes On UART")
    def wait_for_bytes_on_uart(self, uart: str, text: str, timeout: str = "1 s",
                               machine: str = "stm32", regexp: bool | str = False) -> str:
        """Run until ``uart`` has sent ``text`` (after the previous match; ``regexp=True``: a
        regular expression), at most ``timeout`` of virtual time. Returns what matched."""
        pattern: Any = text
        if str(regexp).lower() in ("true", "yes", "1"):
            pattern = re.compile(text.encode())
        got = self._machine(machine).uart(uart).wait_for(pattern, timeout_ms=_ms(timeout))
        return got.decode("latin-1")

    @keyword("Get UART Output")
    def get_uart_output(self, uart: str, machine: str = "stm32") -> str:
        """Everything ``uart`` has sent so far, as text (latin-1)."""
        return self._machine(machine).uart(uart).received().decode("latin-1")

    @keyword("UART Output Should Contain")
    def uart_output_should_contain(self, uart: str, text: str, machine: str = "stm32") -> None:
        got = self.get_uart_output(uart, machine)
        if text not in got:
            raise AssertionError(f"{machine}.{uart} sent {got[-200:]!r}, which does not contain {text!r}")

    @keyword("Get Diagnosis")
    def get_diagnosis(self) -> list[str]:
        """What went wrong so far, in words: decoded faults, end state, poll loop, UART problems."""
        lines = self.duo.diagnosis()
        logger.info("\n".join(lines) or "nothing to report")
        return lines

    @keyword("Diagnosis Should Contain")
    def diagnosis_should_contain(self, text: str) -> None:
        lines = self.duo.diagnosis()
        if not any(text in ln for ln in lines):
            raise AssertionError(f"no diagnosis line contains {text!r}:\n" + ("\n".join(lines) or
                                                                              "(nothing to report)"))

    @keyword("Firmware Should Not Have Faulted")
    def firmware_should_not_have_faulted(self, machine: str = "stm32") -> None:
        """No fault or lockup recorded for ``machine`` and its core is not stuck in a handler."""
        from .. import diagnose
        handle = self._machine(machine).handle
        state = handle.cpu_state()
        dead = diagnose.fatal(state)
        faulted = [ln for ln in self.duo.diagnosis() if ln.startswith(machine) and
                   ("Fault" in ln or "LOCKED" in ln or "halted" in ln or "end state" in ln)]
        if dead or faulted:
            raise AssertionError(f"the {machine} faulted" + (f" ({dead})" if dead else "") + ":\n"
                                 + "\n".join(self.duo.diagnosis()))

    # -- faults ---------------------------------------------------------------------------------------------
    @keyword("Inject GC Pause On Peer")
    def inject_gc_pause_on_peer(self, duration: str, at: str | None = None) -> None:
        """Stop the peer's CPU for ``duration`` (a stop-the-world GC pause), now or ``at``."""
        self.duo.peer.stall(ms=_ms(duration), at_ms=None if at is None else _ms(at))

    @keyword("Inject GC Pause Of ${duration} On Peer")
    def inject_gc_pause_of(self, duration: str) -> None:
        self.inject_gc_pause_on_peer(duration)

    @keyword("Corrupt Frame")
    def corrupt_frame(self, frame: int, field: str = "LEN", action: str = "flip",
                      direction: str = "peer->stm32", bit: int = 0, value: int | None = None) -> None:
        """One fault on frame ``frame`` (counted per direction from the start of the run, 0 = the
        first, as in scenario files)."""
        self.duo.link.corrupt(frame=_int(frame, "frame"), field=field, action=action,
                              direction=direction, bit=_int(bit, "bit"),
                              value=None if value is None else _int(value, "value"))

    @keyword("Add Noise On Link")
    def add_noise_on_link(self, ber: float, duration: str,
                          direction: str = "peer->stm32") -> None:
        """Bit errors at rate ``ber`` on the link for ``duration`` from now."""
        self.duo.link.noise(ber=float(ber), ms=_ms(duration), direction=direction)

    @keyword("Delay DMA Completion")
    def delay_dma_completion(self, stream: int, us: float, controller: str = "dma1") -> None:
        """Delay the STM32 DMA stream's completion flags and interrupt by ``us`` microseconds."""
        self.duo.dma_latency(stream=_int(stream, "stream"), us=float(us), controller=controller)

    @keyword("Raise IRQ When STM32 Reaches")
    def raise_irq_when_stm32_reaches(self, symbol: str, irq: int, offset: int = 0,
                                     nth: int = 1) -> None:
        """Pend NVIC line ``irq`` when the STM32 core reaches ``symbol``+``offset`` (nth time)."""
        self.duo.irq_at(symbol=symbol, irq=_int(irq, "irq"), offset=_int(offset, "offset"),
                        nth=_int(nth, "nth"))

    @keyword("Inject Bus Fault On STM32")
    def inject_bus_fault_on_stm32(self, at: str | None = None, address: int | None = None) -> None:
        """An imprecise bus error on the STM32 now (or ``at``): the CM7 fault-handler test."""
        self.duo.bus_fault(at_ms=None if at is None else _ms(at),
                           address=None if address is None else _int(address, "address"))

    # -- observations -------------------------------------------------------------------------------------
    @keyword("Get Status Field")
    def get_status_field(self, field: str, machine: str = "stm32") -> Any:
        return getattr(self._machine(machine).status, field)

    @keyword("Status Field Should Be")
    def status_field_should_be(self, field: str, expected: Any, machine: str = "stm32") -> None:
        got = self.get_status_field(field, machine)
        if str(got) != str(expected):
            raise AssertionError(f"{machine} status {field} is {got}, expected {expected}")

    @keyword("Status Field Should Be At Least")
    def status_field_should_be_at_least(self, field: str, minimum: Any,
                                        machine: str = "stm32") -> None:
        got = self.get_status_field(field, machine)
        if int(got) < _int(minimum, "minimum"):
            raise AssertionError(f"{machine} status {field} is {got}, expected at least {minimum}")

    @keyword("Get Outcomes")
    def get_outcomes(self) -> list[str]:
        return list(self.duo.outcomes().labels)

    @keyword("Outcome Should Be One Of")
    def outcome_should_be_one_of(self, *labels: str) -> None:
        """At least one of ``labels`` among the oracle's outcomes (``ok``: the run is clean)."""
        if not labels:
            raise ConfigError("no outcome labels given", field="labels", expected="e.g. runaway estop")
        self.duo.should_match(list(labels))

    @keyword("Outcome Should Be")
    def outcome_should_be(self, label: str) -> None:
        self.duo.should_match([label])

    @keyword("Outcome Should Not Include")
    def outcome_should_not_include(self, *labels: str) -> None:
        """None of ``labels`` among the oracle's outcomes so far."""
        v = self.duo.outcomes()
        hit = [lab for lab in labels if lab in v.labels]
        if hit:
            raise AssertionError(f"{self.duo.label}: outcome {', '.join(v.labels)} includes "
                                 f"{', '.join(hit)}: " + "; ".join(v.evidence[h] for h in hit))

    @keyword("Outcome Should Match The Scenario")
    def outcome_should_match_the_scenario(self) -> None:
        """The outcome the scenario's ``expect`` states for this variant."""
        self.duo.should_match()

    @keyword("Run Should Be Clean")
    def run_should_be_clean(self) -> None:
        self.duo.should_match(["ok"])

    @keyword("Motor Controller Should Stay Within Limits")
    def motor_controller_should_stay_within_limits(self) -> None:
        """No end-stop hit, no ESTOP, the position inside the configured soft limits throughout."""
        problems = self.duo.limit_violations()
        if problems:
            raise AssertionError("the motor controller left its limits: " + "; ".join(problems))

    @keyword("No Crash Should Be Recorded")
    def no_crash_should_be_recorded(self) -> None:
        c = self.duo.crash()
        if c is not None:
            raise AssertionError("a crash was recorded: " + crash_text(c))

    @keyword("Crash Record Should Name Function")
    def crash_record_should_name_function(self, function: str) -> None:
        """The decoded crash names ``function`` at its PC (or in its backtrace)."""
        c = self.duo.crash()
        if c is None:
            raise AssertionError(f"no crash recorded, so none names {function}: "
                                 f"{', '.join(self.duo.outcomes().labels)}")
        names = [c.get("pc_function")] + [b.split(" ", 2)[1] if " " in b else b
                                          for b in c.get("backtrace", [])]
        if function not in names:
            raise AssertionError(f"the crash record names {c.get('pc_function') or '??'}, not "
                                 f"{function}:\n{crash_text(c)}")

    @keyword("Log Run Summary")
    def log_run_summary(self) -> None:
        r = self.duo.result()
        logger.info(explain(r, r.expected or r.outcomes), also_console=False)
