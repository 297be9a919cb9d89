"""The pytest plugin and the Robot library themselves (duohil/pytest_plugin.py, duohil/robot/).

The headline check is the broken-fix demonstration: a scenario's `fixed` expectation run against
an image built without that one fix must fail — exactly that test, in pytest and in Robot — with a
message naming the crash label and its evidence, the report section pointing at the run's timeline
and JSON. The scenario here is a short CM6 (`layout`) run so the demonstration stays fast.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import duo as duomod
from duohil.duo import CapabilityMissing, Duo

pytest_plugins = ["pytester"]

ROBOT_DEMO = Path(__file__).resolve().parent / "data" / "robot" / "broken_fix.robot"

# CM6 in 120 ms: the peer serializes with natural alignment; FIX_LAYOUT rejects those frames (and
# counts them), the field parser misreads them.
SHORT_CM6 = """\
name: cm6_short
crash_mode: CM6
title: natural-layout peer against the packed STM32 parser (short)
duration_ms: 120
peer: {image: pooled-natural}
expect:
  buggy: misparse
  fixed: ok
  fixed-no-layout: misparse
"""


# -- the Duo API through the plugin's own fixture ---------------------------------------------------
@pytest.mark.duohil(variant="fixed", peer="gc-packed", requires=["peer_stall"])
def test_duo_reads_like_the_scenario(duo: Duo) -> None:
    require_images("stm32/fixed.elf", "esp32/gc-packed.elf")
    boot = duo.stm32.wait_for_line("BOOT", timeout_ms=50)
    assert boot.text.startswith("BOOT fw=stm32") and boot.t_ps > 0
    duo.peer.wait_for_line("BOOT", timeout_ms=50)
    duo.peer.stall(ms=5)
    duo.run(ms=30)
    assert duo.stm32.status.estops == 0
    assert duo.stm32.status.frames_ok > 0
    assert duo.peer.status.setpoints_sent > 0
    assert [f["kind"] for f in duo.fault_plan] == ["peer_stall"]
    assert duo.outcomes().ok, duo.outcomes().evidence
    assert duo.crash() is None
    assert duo.limit_violations() == []
    with pytest.raises(AttributeError, match="has no field 'no_such_field'"):
        _ = duo.stm32.status.no_such_field
    with pytest.raises(AssertionError) as err:
        duo.stm32.wait_for_line("NO SUCH LINE", timeout_ms=3)
    msg = str(err.value)
    assert "'NO SUCH LINE'" in msg and "stm32 console" in msg and "3 ms" in msg and "BOOT fw=stm32" in msg
    r = duo.result()
    assert r.outcomes == ["ok"] and r.fault_plan[0]["t_ps"] > 0 and r.virtual_ms > 40


def test_faults_are_validated_like_scenario_faults() -> None:
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    with Duo.start("fixed", "pooled-packed") as duo:
        with pytest.raises(duomod.ConfigError, match=r"link\.corrupt\.field.*SOF, LEN"):
            duo.link.corrupt(frame=1, field="LENGTH")
        with pytest.raises(duomod.ConfigError, match="stall is a GC pause of the peer"):
            duo.stm32.stall(ms=5)
        entry = duo.link.corrupt(frame=2, field="CRC_LO", action="flip", bit=3)
        assert entry == {"kind": "link", "action": "flip", "direction": "peer->stm32", "frame": 2,
                         "field": "CRC_LO", "bit": 3, "value": 0xA5, "delay_us": 0}
    assert duo.closed and duo.result().variant == "fixed"


# -- options, markers, capability skips (an inner pytest session) ----------------------------------------
def test_options_are_parsed(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_opts="""
        def test_options(duohil_options):
            o = duohil_options
            print("OPTIONS", o.engine, o.seed, o.quantum_us, o.report_dir.name, o.keep_all)
    """)
    res = pytester.runpytest("-s", "--duohil-engine", "builtin", "--duohil-seed", "7",
                             "--duohil-quantum", "20", "--duohil-report", str(tmp_path / "rep"))
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["duohil: engine builtin, seed 7, quantum 20 us, reports in *rep",
                              "*OPTIONS builtin 7 20.0 rep True*"])
    bad = pytester.runpytest("--duohil-engine", "qemu")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--duohil-engine*invalid choice*qemu*"])
    bad = pytester.runpytest("--duohil-quantum", "0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--duohil-quantum 0: expected a number of us > 0*"])


NO_DCACHE_ENGINE = """
    from duohil.engines import registry
    from duohil.engines.builtin.session import BuiltinEngine

    class NoCacheEngine(BuiltinEngine):
        capabilities = BuiltinEngine.capabilities - {"dcache"}

    _real = registry.engine_class

    def pytest_configure(config):
        registry.engine_class = lambda name: NoCacheEngine if name == "builtin" else _real(name)

    def pytest_unconfigure(config):
        registry.engine_class = _real
"""


def test_missing_capability_skips_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NO_DCACHE_ENGINE)
    pytester.makepyfile(test_caps="""
        import pytest
        from duohil.duo import CapabilityMissing

        @pytest.mark.duohil(variant="buggy", requires=["dcache"])
        def test_needs_the_cache_model(duo):
            raise AssertionError("must not run: the engine has no D-cache model")

        @pytest.mark.duohil(requires=["link_faults"])
        def test_needs_what_the_engine_has():
            pass

        def test_engine_refuses_at_inject_time():
            raise CapabilityMissing("builtin", ["dcache"], what="a dcache fault")

        @pytest.mark.duohil(requires=["time_travel"])
        def test_unknown_capability():
            pass
    """)
    res = pytester.runpytest("-rs")
    res.assert_outcomes(passed=1, skipped=2, errors=1)
    res.stdout.fnmatch_lines([
        "*ERROR at setup of test_unknown_capability*",
        "unknown capability 'time_travel' in @pytest.mark.duohil(requires=...)*",
        "SKIPPED [[]1[]] test_caps.py:4: engine builtin lacks capability dcache",
        "SKIPPED [[]1[]] test_caps.py:11: engine builtin lacks capability dcache (needed by a dcache fault)",
    ])


def test_bad_marker_input_is_one_readable_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.duohil(variant="fixed-no-such-fix")
        def test_unbuilt_image(duo):
            pass

        @pytest.mark.duohil(varient="fixed")
        def test_typo(duo):
            pass
    """)
    res = pytester.runpytest()
    res.assert_outcomes(errors=2)
    res.stdout.fnmatch_lines([
        ("cannot start the simulation: stm32: firmware image *fixed-no-such-fix.elf for the stm32 "
         "is missing (expected a built image (run `make firmware`))"),
        "unknown @pytest.mark.duohil argument(s) varient (expected variant, *",
    ])


def test_unavailable_engine_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_renode="""
        import pytest

        @pytest.mark.duohil(variant="fixed")
        def test_on_renode(duo):
            pass

        def test_engine_fixture(engine):
            pass
    """)
    res = pytester.runpytest("-rs", "--duohil-engine", "renode")
    from duohil.engines import registry
    if registry.engine_class("renode").availability()[0]:
        pytest.skip("Renode is installed here: nothing to skip")
    res.assert_outcomes(skipped=2)
    res.stdout.fnmatch_lines(["SKIPPED*engine renode is not available here: *",
                              "SKIPPED*engine 'renode' is not available: *"])


# -- the broken-fix demonstration ---------------------------------------------------------------------------
def test_broken_fix_fails_exactly_its_test(pytester: pytest.Pytester) -> None:
    """The `fixed` expectation against fixed-no-layout.elf fails with the label and evidence; the
    same expectation against fixed.elf passes; the report section names timeline and JSON."""
    require_images("stm32/fixed.elf", "stm32/fixed-no-layout.elf", "esp32/pooled-natural.elf")
    pytester.makefile(".yaml", cm6_short=SHORT_CM6)
    pytester.makepyfile(test_cm6="""
        import pytest

        @pytest.mark.duohil(scenario="cm6_short.yaml", variant="fixed")
        def test_fixed_holds(duo):
            duo.run_to_end()
            duo.should_match()

        @pytest.mark.duohil(scenario="cm6_short.yaml", variant="fixed", stm32="fixed-no-layout")
        def test_fixed_holds_on_a_build_without_fix_layout(duo):
            duo.run_to_end()
            duo.should_match()
    """)
    report = pytester.path / "rep"
    res = pytester.runpytest("--duohil-report", str(report), "--junitxml", "junit.xml")
    res.assert_outcomes(passed=1, failed=1)
    out = res.stdout.str()
    assert "FAILED test_cm6.py::test_fixed_holds_on_a_build_without_fix_layout" in out
    assert "FAILED test_cm6.py::test_fixed_holds " not in out
    res.stdout.fnmatch_lines([
        "*cm6_short [[]fixed on fixed-no-layout.elf[]] should hold (ok) but crashed: misparse*",
        "*misparse: *peer meant*STM32 decoded*",
        "*- duohil -*",
        "crash record: no crash recorded",
        "timeline: *test_cm6.test_fixed_holds_on_a_build_without_fix_layout.html",
        "result JSON: *test_cm6.test_fixed_holds_on_a_build_without_fix_layout.json",
    ])
    kept = json.loads((report / "test_cm6.test_fixed_holds_on_a_build_without_fix_layout.json")
                      .read_text())
    assert kept["outcomes"][0] == "misparse" and kept["variant"] == "fixed"
    assert kept["images"] == {"stm32": "fixed-no-layout.elf", "peer": "pooled-natural.elf"}
    assert kept["matches"] is False and kept["expected"] == ["ok"]
    assert (report / "test_cm6.test_fixed_holds.json").is_file()          # --duohil-report: all
    assert (report / "test_cm6.test_fixed_holds_on_a_build_without_fix_layout.html").is_file()
    junit = ET.parse(pytester.path / "junit.xml").getroot()
    failure = junit.find(".//testcase[@name='test_fixed_holds_on_a_build_without_fix_layout']/failure")
    assert failure is not None and "misparse" in failure.get("message", "")
    props = {p.get("name") for p in junit.iter("property")}
    assert {"duohil_result", "duohil_timeline"} <= props


def test_broken_fix_fails_exactly_its_robot_test(tmp_path: Path) -> None:
    """The same demonstration through the Robot library (tests/data/robot/broken_fix.robot)."""
    require_images("stm32/fixed.elf", "stm32/fixed-no-layout.elf", "esp32/pooled-natural.elf")
    from robot.api import ExecutionResult

    import robot

    sc = tmp_path / "cm6_short.yaml"
    sc.write_text(SHORT_CM6)
    out = tmp_path / "robot"
    rc = robot.run(str(ROBOT_DEMO), outputdir=str(out), variable=[f"SCENARIO:{sc}"],
                   xunit="xunit.xml", stdout=StringIO(), stderr=StringIO(), consolecolors="off")
    assert rc == 1, "exactly one Robot test must fail"
    tests = {t.name: t for t in ExecutionResult(str(out / "output.xml")).suite.all_tests}
    assert tests["Fixed Holds"].status == "PASS", tests["Fixed Holds"].message
    broken = tests["Fixed Holds On A Build Without FIX_LAYOUT"]
    assert broken.status == "FAIL"
    assert "cm6_short [fixed on fixed-no-layout.elf] should hold (ok) but crashed: misparse" in broken.message
    assert "peer meant" in broken.message and "STM32 decoded" in broken.message
    assert "timeline: " in broken.message and "result JSON: " in broken.message
    assert list((out / "duohil").glob("*.json")), "the failing run's JSON is kept"
    assert (out / "xunit.xml").is_file()


def test_capability_missing_is_a_duohil_error() -> None:
    exc = CapabilityMissing("renode", ["dcache", "irq_at_pc"], what="scenario cm3")
    assert str(exc) == "engine renode lacks capability dcache, irq_at_pc (needed by scenario cm3)"
