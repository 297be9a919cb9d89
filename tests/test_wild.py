"""A wild image never takes the harness down (issue 14).

Purpose-made images (tests/fw/m7/wild.c, tests/fw/rv/wild.c) spin with interrupts masked, storm
(resets, faults, interrupts, SysTick at reload 1), fetch from the XN region and trap forever on
the peer. Each runs for a bounded virtual time on the real platforms and must end within generous
CPU-time and memory bounds, with the condition named in words in the event log; the event log
stays bounded whatever repeats. Plus: ELF load checks, the wall-clock budget, Ctrl-C and exit codes.
"""
from __future__ import annotations

import dataclasses

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import runner, scenario
from duohil.engines.base import PS_PER_MS
from duohil.engines.builtin.kernel import scheduler as schedmod
from duohil.engines.builtin import session as sessmod
from duohil.engines.builtin.loaders.elf import ElfImage, load_segments
from duohil.engines.builtin.loaders.platform import build_machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
STM32 = ROOT / "platforms" / "stm32h743.repl"
PEER = ROOT / "platforms" / "esp32c3_peer.repl"
(W_MASKED_SPIN, W_RESET_STORM, W_UNMAPPED_LOOP, W_ALL_PENDING, W_SYSTICK_1, W_XN_FETCH,
 W_BUSFAULT_LOOP, W_WFI_MASKED) = range(1, 9)
IACCVIOL = 1 << 0

# generous: each case takes well under 5 s of CPU on a loaded 2-core machine
CPU_BOUND_S = 60.0
RSS_BOUND_KB = 150 * 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wild(platform: Path, elf: str, case: int, ms: float):
    """Boot ``elf`` with g_test = case, run ``ms`` of virtual time; (single, CPU seconds used)."""
    require_images(elf)
    s = sessmod.single(platform, ROOT / "build" / elf, plant=False)
    s.machine.write_memory(s.image.symbol("g_test").address, case.to_bytes(4, "little"))
    s.cpu.reset()
    c0 = _cpu_s()
    s.run_until(int(ms * PS_PER_MS))
    return s, _cpu_s() - c0


def u32(s, name: str, index: int = 0) -> int:
    return int.from_bytes(s.machine.read_memory(s.image.symbol(name).address + 4 * index, 4), "little")


def only(events, kind):
    found = [d for _t, k, d in events if k == kind]
    assert len(found) == 1, f"expected one {kind} event, got {found} in {events[-5:]}"
    return found[0]


def bounded_log(s) -> None:
    ev = s.events()
    assert len(ev) <= 4 * schedmod.LOG_REPEATS, f"{len(ev)} events logged: the log is not bounded"


@pytest.mark.parametrize("case, words", [
    (W_MASKED_SPIN, "spinning with interrupts masked"),
    (W_WFI_MASKED, "asleep in WFI with no interrupt enabled"),
])
def test_hang_is_named_with_its_pc(case, words):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s, cpu = wild(STM32, "testfw/m7/wild.elf", case, 400)
    hung = only(s.events(), "cpu_hung")
    assert words in hung["reason"]
    fn = s.image.function_at(hung["pc"])
    assert fn is not None and fn.name == "main", f"pc {hung['pc']:#x} is not in main"
    if case == W_MASKED_SPIN:
        assert s.cpu.halted and "hung" in s.cpu.halt_reason     # fast-forwarded: no more slices
    assert cpu < CPU_BOUND_S
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < RSS_BOUND_KB


@pytest.mark.parametrize("case, kind, words", [
    (W_RESET_STORM, "reset", "reset storm"),
    (W_UNMAPPED_LOOP, "cpu_fault", "cpu_fault storm"),
    (W_BUSFAULT_LOOP, "cpu_fault", "cpu_fault storm"),
])
def test_event_storm_is_aggregated_and_stops_the_cpu(case, kind, words):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s, cpu = wild(STM32, "testfw/m7/wild.elf", case, 2000)
    ev = s.events()
    assert only(ev, "cpu_stopped")["reason"] == words
    rep = [d for _t, k, d in ev if k == "repeated" and d["of"] == kind]
    assert len(rep) == 1 and rep[0]["count"] >= schedmod.STORM_EVENTS
    assert rep[0]["first_ps"] <= rep[0]["last_ps"]
    assert sum(1 for _t, k, _d in ev if k == kind) == schedmod.LOG_REPEATS
    assert s.cpu.halted
    bounded_log(s)
    assert cpu < CPU_BOUND_S
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < RSS_BOUND_KB


@pytest.mark.parametrize("case, words", [
    (W_ALL_PENDING, "interrupt storm (IRQ"),
])
def test_interrupt_storm_stops_the_cpu(case, words):
    s, cpu = wild(STM32, "testfw/m7/wild.elf", case, 1000)
    stop = only(s.events(), "cpu_stopped")
    assert words in stop["reason"], stop
    assert s.cpu.halted and u32(s, "g_count") >= 1000
    bounded_log(s)
    assert cpu < CPU_BOUND_S


def test_systick_at_reload_1_costs_bounded_work():
    """SysTick wraps while it is still pending coalesce: a reload of 1 no longer schedules an
    event every 2 cycles; the handler still runs (at the model's slice resolution)."""
    s, cpu = wild(STM32, "testfw/m7/wild.elf", W_SYSTICK_1, 500)
    n = u32(s, "g_count")
    assert n > 1000, n
    assert s.scheduler.steps < 1_000_000, s.scheduler.steps
    bounded_log(s)
    assert cpu < CPU_BOUND_S


def test_xn_fetch_is_memmanage_iaccviol():
    s, _cpu = wild(STM32, "testfw/m7/wild.elf", W_XN_FETCH, 5)
    cfsr, _mmfar, _hfsr, ipsr, stacked_pc = (u32(s, "g_out", i) for i in range(5))
    assert cfsr & IACCVIOL and ipsr == 4, (hex(cfsr), ipsr)     # MemManage handler, not a halt
    assert stacked_pc == 0xA0000000
    fault = only(s.events(), "cpu_fault")
    assert fault["exception"] == 4 and fault["pc"] == 0xA0000000
    assert not s.cpu.halted


@pytest.mark.parametrize("case, cause", [(1, "instruction access fault"), (2, "load access fault")])
def test_peer_trap_loop_is_events_and_stops(case, cause):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s, cpu = wild(PEER, "testfw/rv/wild.elf", case, 2000)
    ev = s.events()
    first = next(d for _t, k, d in ev if k == "cpu_trap")
    assert first["what"] == cause
    assert only(ev, "cpu_stopped")["reason"] == "cpu_trap storm"
    assert any(k == "repeated" and d["of"] == "cpu_trap" for _t, k, d in ev)
    bounded_log(s)
    assert cpu < CPU_BOUND_S
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < RSS_BOUND_KB


def test_peer_fault_oracle_says_not_ok():
    from duohil import oracle
    obs = oracle.Observations(duration_ps=10 * PS_PER_MS, events=[
        (PS_PER_MS, "cpu_trap", {"machine": "peer", "cause": 1, "what": "instruction access fault",
                                 "mepc": 0, "mtval": 0}),
        (2 * PS_PER_MS, "repeated", {"of": "cpu_trap", "machine": "peer", "count": 500,
                                     "mepc": 0, "first_ps": 0, "last_ps": 0})])
    v = oracle.classify(obs)
    assert "peer_fault" in v.labels
    assert "instruction access fault" in v.evidence["peer_fault"] and "501 traps" in v.evidence["peer_fault"]


# -- the event log -----------------------------------------------------------------------------
def test_repeated_events_are_counted_not_logged():
    sch = Scheduler(1000)
    for i in range(5000):
        sch.record("reset", t=i * 10, machine="m", cause="x")
    sch.record("other", t=50_000, machine="m")
    ev = sch.events()
    assert [k for _t, k, _d in ev].count("reset") == schedmod.LOG_REPEATS
    rep = [d for _t, k, d in ev if k == "repeated"]
    assert rep == [{"of": "reset", "machine": "m", "cause": "x", "count": 5000 - schedmod.LOG_REPEATS,
                    "first_ps": schedmod.LOG_REPEATS * 10, "last_ps": 49_990}]
    assert ev[-1][0] == 49_990 and ev[-2][1] == "other"


def test_distinct_events_are_all_logged_and_the_log_is_capped():
    sch = Scheduler(1000)
    for i in range(100):
        sch.record("end_stop", t=i, position=i)
    assert len(sch.events()) == 100 and not any(k == "repeated" for _t, k, _d in sch.events())
    big = Scheduler(1000)
    for i in range(schedmod.LOG_MAX + schedmod.AGG_MAX + 500):
        big.record("x", t=i, n=i)
    ev = big.events()
    assert len(ev) <= schedmod.LOG_MAX + schedmod.AGG_MAX + 1
    assert sum(d.get("count", 0) for _t, k, d in ev if k == "repeated") == schedmod.AGG_MAX + 500


def test_storm_flag_needs_a_rate():
    sch = Scheduler(1000)
    slow = [sch.record("reset", t=i * PS_PER_MS * 10, cause="wdg")    # 100 Hz: never a storm
            for i in range(schedmod.LOG_REPEATS + 3 * schedmod.STORM_EVENTS)]
    assert not any(slow)
    fast = [sch.record("reset", t=i * 1000, cause="sys")                # 1 GHz: a storm
            for i in range(schedmod.LOG_REPEATS + schedmod.STORM_EVENTS)]
    assert fast[-1] and sum(fast) == 1


# -- ELF load checks -----------------------------------------------------------------------------
def _machine():
    return build_machine(STM32, Scheduler(1000), "stm32")


def test_image_across_both_flash_banks_loads():
    m = _machine()
    data = bytes(range(256)) * (0x180000 // 256)                    # 1.5 MiB from 0x08000000
    img = ElfImage(Path("big.elf"), "EM_ARM", 0x08000000, segments=[(0x08000000, data, len(data))],
                   runtime=[(0x08000000, len(data))])
    load_segments(img, sessmod._writer(m), sessmod._mapped(m))
    assert m.read_memory(0x080FFF00, 0x200) == data[0xFFF00:0x100100]


def test_bss_larger_than_ram_is_refused():
    m = _machine()
    img = ElfImage(Path("fat.elf"), "EM_ARM", 0x08000000, segments=[(0x20000000, b"", 0x100000)],
                   runtime=[(0x20000000, 0x100000)], alloc={".bss": (0x20000000, 0x100000)})
    with pytest.raises(ConfigError) as exc:
        load_segments(img, sessmod._writer(m), sessmod._mapped(m))
    assert "fat.elf" in str(exc.value) and ".bss" in str(exc.value)


def test_image_with_nothing_to_load_is_warned(monkeypatch):
    empty = ElfImage(ROOT / "empty.elf", "EM_ARM", 0)
    monkeypatch.setattr(sessmod, "_read_elf_cached", lambda _p: empty)
    m = _machine()
    from duohil.engines.base import MachineSpec
    sessmod.boot_machine(m, MachineSpec(STM32, ROOT / "empty.elf", None, {}))
    texts = [d["message"] for _t, k, d in m.scheduler.events() if k == "warning"]
    assert any("loads nothing" in t for t in texts), texts
    assert any("vector table at 0x08000000 is empty" in t for t in texts), texts


# -- runs: wall-clock budget, Ctrl-C, exit codes -------------------------------------------------
def test_wall_budget_stops_with_a_partial_result(tmp_path):
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    # 60 s of virtual time: no engine speed finishes it within the 0.3 s budget (nominal.yaml's
    # own 1.5 s took ~0.3 s of wall once the engine ran at ~5x real time: the budget never tripped)
    sc = dataclasses.replace(scenario.load(ROOT / "scenarios" / "nominal.yaml"), duration_ms=60_000)
    out = tmp_path / "r.json"
    r = runner.run(sc, "fixed", json_path=out, max_wall_s=0.3)
    assert r.stopped and r.stopped["label"] == "wall_budget" and r.stopped["reproducible"] is False
    assert "--max-wall-s" in r.stopped["reason"]
    assert 0 < r.stopped["virtual_ms"] < sc.duration_ps / PS_PER_MS
    doc = json.loads(out.read_text())
    assert doc["stopped"]["label"] == "wall_budget"


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "duohil.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_ctrl_c_writes_the_partial_result(tmp_path):
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    sc = tmp_path / "long.yaml"
    sc.write_text((ROOT / "scenarios" / "nominal.yaml").read_text()
                  .replace("duration_ms: 1500", "duration_ms: 600000"))
    out = tmp_path / "r.json"
    # a child inherits an ignored SIGINT (a background job's): give it the default, as a shell
    # in the foreground does, so Python installs its KeyboardInterrupt handler
    p = _cli("run", str(sc), "--json", str(out),
             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:        # wait until the run is under way (it has imported)
        time.sleep(0.5)
        if p.poll() is not None:
            break
        try:
            with open(f"/proc/{p.pid}/stat") as fh:
                utime = int(fh.read().rsplit(")", 1)[1].split()[11])
        except OSError:
            utime = 0
        if utime > 300:                        # > 3 s of CPU: building, booting, running
            break
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert "interrupted (Ctrl-C)" in stdout
    doc = json.loads(out.read_text())
    assert doc["stopped"]["label"] == "interrupted" and doc["stopped"]["reproducible"] is False


def test_run_exits_1_when_the_result_does_not_match(tmp_path):
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    sc = tmp_path / "wrong.yaml"
    sc.write_text((ROOT / "scenarios" / "nominal.yaml").read_text()
                  .replace("duration_ms: 1500", "duration_ms: 50")
                  .replace("fixed: ok", "fixed: hardfault"))
    p = _cli("run", str(sc))
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 1, (stdout, stderr)
    assert "does not match" in stderr and "Traceback" not in stderr


def test_negative_wall_budget_is_bad_input():
    p = _cli("run", "scenarios/nominal.yaml", "--max-wall-s", "-1", env=dict(os.environ))
    _out, stderr = p.communicate(timeout=120)
    assert p.returncode == 2 and "--max-wall-s" in stderr and "Traceback" not in stderr


def _rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_peer_fetch_fault_loop_does_not_grow_native_memory(monkeypatch):
    """Unicorn keeps translation state per fetch from unmapped memory until its cache is flushed
    (~200 B per trap, measured): 40,000 traps (storm stop disabled) must not grow RSS ~8 MB."""
    monkeypatch.setattr(schedmod, "STORM_EVENTS", 10 ** 12)
    s, _cpu = wild(PEER, "testfw/rv/wild.elf", 1, 100)
    before = _rss_kb()
    s.run_until(s.now_ps + 400 * PS_PER_MS)
    assert s.cpu.exceptions_taken >= 40_000 and not s.cpu.halted
    assert _rss_kb() - before < 3 * 1024, f"RSS grew {_rss_kb() - before} KiB"


def test_crash_summary_keeps_every_fault_bounded():
    from duohil import crash
    require_images("testfw/m7/wild.elf")
    elf = ROOT / "build" / "testfw" / "m7" / "wild.elf"
    main = next(s for s in sessmod.read_elf(elf).symbols.values() if s.name == "main")
    ev = [(PS_PER_MS, "cpu_fault", {"machine": "stm32", "exception": 5, "pc": main.address & ~1,
                                    "cfsr": 1 << 9 | 1 << 15}),
          (2 * PS_PER_MS, "cpu_fault", {"machine": "stm32", "exception": 3, "pc": 0x20001000,
                                        "cfsr": 1 << 12, "stacking": True}),
          (3 * PS_PER_MS, "lockup", {"machine": "stm32", "pc": 0x20001000, "reason": "stacking fault"}),
          (9 * PS_PER_MS, "repeated", {"of": "cpu_fault", "machine": "stm32", "exception": 5,
                                       "pc": 0x08000100, "count": 5000, "first_ps": 4 * PS_PER_MS,
                                       "last_ps": 9 * PS_PER_MS})]
    lines = crash.fault_history(ev, elf)
    assert len(lines) == 4
    assert "BusFault" in lines[0] and "main" in lines[0] and "PRECISERR" in lines[0]
    assert "STKERR" in lines[1] and "lockup: stacking fault" in lines[2]
    assert "repeated 5000 more times" in lines[3]
    many = crash.fault_history(ev[:1] * 40, elf)
    assert len(many) == crash.HISTORY_MAX + 1 and "24 more" in many[-1]


def test_stopped_stm32_core_is_a_hang():
    from duohil import oracle
    obs = oracle.Observations(duration_ps=500 * PS_PER_MS, events=[
        (120 * PS_PER_MS, "cpu_hung", {"machine": "stm32", "pc": 0x08000200,
                                       "reason": "spinning with interrupts masked and no peripheral "
                                                 "access for 100 ms"})])
    v = oracle.classify(obs)
    assert "hang" in v.labels and "spinning with interrupts masked" in v.evidence["hang"]
