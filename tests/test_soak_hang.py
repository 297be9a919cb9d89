"""Issue 14, the rest of "a wild image never takes the harness down": a scenario says whether a
run whose CPU hangs goes on or stops there (``on_hang``), the RV32 peer's hangs are detected as
the M7's are, the thresholds have one home, and a long run keeps bounded views of itself
(status samples in columns, a decimated plant trace) that read exactly as before.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import oracle, runner, scenario
from duohil.duo import Duo
from duohil.engines.builtin.cpus.m7 import cortexm
from duohil.engines.builtin.kernel import limits
from duohil.engines.builtin.cpus.rv32 import riscv
from duohil.engines.builtin.kernel import scheduler as schedmod
from duohil.engines.builtin.board.plant import Trace
from duohil.errors import ConfigError
from duohil.samplelog import SampleLog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_wild import PEER, W_MASKED_SPIN, u32, wild  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
M7_WILD = ROOT / "build" / "testfw" / "m7" / "wild.elf"
RV_SPIN, RV_WFI_NOTHING, RV_DELAY = 3, 4, 5


# -- on_hang: fast_forward | stop ------------------------------------------------------------------
def _scenario(tmp_path: Path, **extra) -> scenario.Scenario:
    raw = {"name": "wild-hang", "crash_mode": "nominal", "duration_ms": 400,
           "stm32": {"image": str(M7_WILD)}, "peer": "none", "expect": {"fixed": "ok"}, **extra}
    p = tmp_path / "wild-hang.yaml"
    p.write_text(json.dumps(raw))                     # JSON is YAML
    return scenario.load(p)


def _poke_case(duo: Duo, case: int) -> Duo:
    """g_test = case in the wild M7 image, then a reset (as test_wild.wild does)."""
    h = duo.session.stm32
    h.machine.write_memory(h.image.symbol("g_test").address, case.to_bytes(4, "little"))
    h.machine.cpu.reset()
    return duo


def test_on_hang_defaults_to_fast_forward(tmp_path):
    require_images("testfw/m7/wild.elf")
    sc = _scenario(tmp_path)
    assert sc.on_hang == "fast_forward"
    with _poke_case(Duo.from_scenario(sc, "fixed"), W_MASKED_SPIN) as duo:
        duo.run_to_end()
        assert duo.now_ms == 400 and duo.stopped is None        # virtual time went on
        assert any(k == "cpu_hung" for _t, k, _d in duo.session.events())


def test_on_hang_stop_ends_the_run_with_its_partial_result(tmp_path, monkeypatch):
    require_images("testfw/m7/wild.elf")
    sc = _scenario(tmp_path, on_hang="stop")
    orig = Duo.from_scenario
    monkeypatch.setattr(Duo, "from_scenario",
                        lambda *a, **k: _poke_case(orig(*a, **k), W_MASKED_SPIN))
    out = tmp_path / "r.json"
    r = runner.run(sc, "fixed", json_path=out, max_wall_s=0)
    hung_ms = limits.HANG_PS / 1e9
    assert r.stopped["label"] == "cpu_hung"
    # stopped at the first status-sample chunk boundary after the hang (10 ms), not at 400 ms
    assert hung_ms <= r.stopped["virtual_ms"] <= hung_ms + 10 and r.virtual_ms < 400
    why = r.stopped["reason"]
    assert why.startswith("stm32 CPU hung: spinning with interrupts masked")
    assert " main (" in why and "wild.c:" in why, why               # function + file:line
    assert "on_hang: stop" in why
    assert json.loads(out.read_text())["stopped"] == r.stopped      # the JSON says so too
    assert "hang" in r.outcomes


def test_on_hang_stop_runs_a_healthy_run_to_the_end_unchanged(tmp_path):
    """Chunked at the status-sampling boundaries: the run is the one run_to_end makes."""
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    text = (ROOT / "scenarios" / "nominal.yaml").read_text()
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text.replace("duration_ms: 1500", "duration_ms: 300"))
    b.write_text(a.read_text() + "\non_hang: stop\n")
    ra = runner.run(scenario.load(a), "fixed", max_wall_s=0)
    rb = runner.run(scenario.load(b), "fixed", max_wall_s=0)
    assert rb.stopped is None and rb.virtual_ms == 300
    assert ra.fingerprint == rb.fingerprint and ra.outcomes == rb.outcomes == ["ok"]


@pytest.mark.parametrize("value, words", [("halt", "unknown on_hang 'halt'"), (3, "wrong type")])
def test_on_hang_is_validated_in_one_line(tmp_path, value, words):
    p = tmp_path / "bad.yaml"
    p.write_text(json.dumps({"name": "x", "crash_mode": "nominal", "duration_ms": 10,
                             "on_hang": value, "expect": {"fixed": "ok"}}))
    with pytest.raises(ConfigError) as ei:
        scenario.load(p)
    msg = str(ei.value)
    assert "on_hang" in msg and words in msg and "\n" not in msg, msg


def test_on_hang_changes_the_content_hash_only_when_set(tmp_path):
    require_images("testfw/m7/wild.elf")
    plain = _scenario(tmp_path)
    ff = _scenario(tmp_path, on_hang="fast_forward")
    stop = _scenario(tmp_path, on_hang="stop")
    assert scenario.content_hash(plain) == scenario.content_hash(ff) != scenario.content_hash(stop)


# -- RV32 hangs ----------------------------------------------------------------------------------
def test_peer_masked_spin_is_hung_with_its_pc():
    s, cpu = wild(PEER, "testfw/rv/wild.elf", RV_SPIN, 400)
    hung = [(t, d) for t, k, d in s.events() if k == "cpu_hung"]
    assert len(hung) == 1, s.events()
    t, d = hung[0]
    assert "spinning with interrupts masked (mstatus.MIE = 0)" in d["reason"]
    assert limits.HANG_PS <= t <= limits.HANG_PS + 2 * s.scheduler.quantum
    fn = s.image.function_at(d["pc"])
    assert fn is not None and fn.name == "main", hex(d["pc"])
    assert s.cpu.halted and "hung" in s.cpu.halt_reason           # stopped: no more slices
    assert cpu < 30


def test_peer_wfi_with_nothing_enabled_is_hung():
    s, _cpu = wild(PEER, "testfw/rv/wild.elf", RV_WFI_NOTHING, 50)
    hung = [d for _t, k, d in s.events() if k == "cpu_hung"]
    assert len(hung) == 1 and "asleep in WFI with no interrupt enabled" in hung[0]["reason"]
    fn = s.image.function_at(hung[0]["pc"])
    assert fn is not None and fn.name == "main"
    assert not s.cpu.halted                       # asleep: it costs nothing, nothing to stop


def test_peer_delay_loop_with_interrupts_masked_is_not_a_hang():
    """MIE is clear from reset on RV32: a delay loop that counts for longer than the hang
    window computes, it does not hang."""
    s, _cpu = wild(PEER, "testfw/rv/wild.elf", RV_DELAY, 1000)
    assert u32(s, "g_done") == 1
    assert not [k for _t, k, _d in s.events() if k in oracle.STOP_EVENTS], s.events()
    assert not s.cpu.halted


def test_peer_hang_makes_the_run_not_ok():
    obs = oracle.Observations(duration_ps=10**12, events=[
        (10**11, "cpu_hung", {"machine": "esp32c3_peer", "pc": 0x42000010,
                              "reason": "spinning with interrupts masked"})])
    v = oracle.classify(obs)
    assert "peer_fault" in v.labels and "spinning with interrupts masked" in v.evidence["peer_fault"]


def test_thresholds_have_one_home():
    assert cortexm.HANG_PS is limits.HANG_PS and riscv.RiscV32Cpu.hang_ps == limits.HANG_PS
    assert cortexm.HANG_PC_SPAN == riscv.HANG_PC_SPAN == limits.HANG_PC_SPAN
    assert (cortexm.STORM_ENTRIES, cortexm.STORM_RATE_PS) == (limits.STORM_ENTRIES, limits.STORM_RATE_PS)
    assert (schedmod.STORM_EVENTS, schedmod.LOG_REPEATS, schedmod.LOG_MAX) == \
        (limits.STORM_EVENTS, limits.LOG_REPEATS, limits.LOG_MAX)


# -- bounded views of a long run -----------------------------------------------------------------
def test_sample_log_reads_as_the_list_it_replaces():
    rng = random.Random(7)
    rows = []
    for t in range(0, 5000, 5):
        row = {"setpoints": rng.randrange(1 << 31), "last_seq": rng.randrange(1 << 16),
               "position": rng.randrange(-50_000, 50_000)}
        if t % 500 == 0:
            row["setpoints"] = 1 << 40                      # does not fit a column: kept whole
        if t % 700 == 0:
            row = {"crc_errors": 3}                         # another set of fields
        if t % 900 == 5:                                    # kept whole, types and all
            row["armed"], row["gain"], row["fault"] = rng.random() < 0.5, rng.random(), None
        if t % 1100 == 10:
            row["position"] = -(1 << 31) - 1                # just below int32
        rows.append((t, row))
    rows.append((5000, {}))
    log = SampleLog(rows)
    assert log == rows and list(log) == rows and len(log) == len(rows)
    assert log[-1] == rows[-1] and log[3:9] == rows[3:9] and list(reversed(log)) == rows[::-1]
    # == holds for True == 1 and 2.0 == 2: the values read back are of the types stored
    assert [[type(v) for v in r.values()] for _t, r in log] == \
           [[type(v) for v in r.values()] for _t, r in rows]
    with pytest.raises(IndexError):
        log[len(rows)]


def test_plant_trace_keeps_short_runs_whole_and_bounds_long_ones():
    tr = Trace(cap=100)
    for k in range(100):
        tr.append(k, float(k))
    assert tr.points(1000) == [(k, float(k)) for k in range(100)]
    for k in range(100, 10_000):
        tr.append(k, float(k))
    assert len(tr.t) <= 100 and tr.stride >= 100
    pts = tr.points(60)
    assert len(pts) <= 60 and pts[0] == (0, 0.0)
    steps = {b[0] - a[0] for a, b in zip(pts, pts[1:])}
    assert len(steps) == 1, steps                            # evenly spaced over the whole run
    assert pts[-1][0] > 9_000                                # up to the end of the run


def test_hang_window_is_a_scenario_knob(tmp_path, monkeypatch):
    """A user whose firmware masks interrupts longer on purpose sets hang_window_ms."""
    require_images("testfw/m7/wild.elf")
    sc = _scenario(tmp_path, on_hang="stop", hang_window_ms=30)
    orig = Duo.from_scenario
    monkeypatch.setattr(Duo, "from_scenario",
                        lambda *a, **k: _poke_case(orig(*a, **k), W_MASKED_SPIN))
    r = runner.run(sc, "fixed", max_wall_s=0)
    assert r.stopped["label"] == "cpu_hung" and 30 <= r.stopped["virtual_ms"] <= 40, r.stopped
    assert "for 30 ms" in r.stopped["reason"]
    assert scenario.content_hash(sc) != scenario.content_hash(_scenario(tmp_path, on_hang="stop"))


@pytest.mark.parametrize("value", [0, -5, 10**9])
def test_hang_window_is_validated_in_one_line(tmp_path, value):
    p = tmp_path / "bad.yaml"
    p.write_text(json.dumps({"name": "x", "crash_mode": "nominal", "duration_ms": 10,
                             "hang_window_ms": value, "expect": {"fixed": "ok"}}))
    with pytest.raises(ConfigError) as ei:
        scenario.load(p)
    msg = str(ei.value)
    assert "hang_window_ms" in msg and "out of range" in msg and "\n" not in msg, msg


def test_hang_window_on_another_engine_is_one_error_line(tmp_path):
    require_images("testfw/m7/wild.elf")
    sc = _scenario(tmp_path, hang_window_ms=30)
    with pytest.raises(ConfigError) as ei:
        Duo.from_scenario(sc, "fixed", engine="renode")
    assert "hang_window_ms" in str(ei.value) and "\n" not in str(ei.value)


def test_sample_log_raw_rows_read_as_their_decoded_dicts(monkeypatch):
    """Duo appends each status block's bytes (``append_raw``) and the log decodes them when read,
    or once RAW_BATCH rows wait: in one pass when the decoder unpacks plain ints (``rows`` and
    ``fields``), row by row otherwise (a value beyond int32, a decoder without ``rows``); the log
    reads as the list of the decoded dicts, in the order taken, mixed with plain rows."""
    import struct as st

    from duohil import samplelog
    from duohil.engines.builtin.session import RawFields
    monkeypatch.setattr(samplelog, "RAW_BATCH", 7)
    fmt = st.Struct("<IxxhBxxi")                  # a block with pads, members out of key order

    def reader(data, off):
        a, _b, c, d = fmt.unpack_from(data, off)
        return {"d": d, "a": a, "c": c}
    reader.fields, reader.struct, reader.ints = ("d", "a", "c"), st.Struct("<IxxhBxxi"), True
    reader.order = (3, 0, 2)                      # the struct's values -> fields' order
    fast = RawFields(reader, fmt.size + 4)        # the block is longer than the last member
    slow = lambda raw: reader(raw, 0)             # no ``rows``: decoded row by row
    assert fast.rows is not None
    passes = []
    extend = SampleLog._extend_rows

    def spy(self, raw, decode):
        passes.append(extend(self, raw, decode))
        return passes[-1]
    monkeypatch.setattr(SampleLog, "_extend_rows", spy)
    rng = random.Random(3)
    log, want = SampleLog(), []
    for t in range(200):
        a, b, c, d = rng.randrange(1 << 31), rng.randrange(-300, 300), rng.randrange(256), \
            rng.randrange(-(1 << 31), 1 << 31)
        if t % 37 == 0:
            a = (1 << 31) + t                     # beyond int32: that batch row by row
        raw = fmt.pack(a, b, c, d) + bytes(4)
        if t % 50 == 17:
            log.append(t, {"x": t})               # a plain row between raw ones
            want.append((t, {"x": t}))
            continue
        log.append_raw(t, raw, slow if t % 3 == 0 else fast)
        want.append((t, reader(raw, 0)))
        if t % 61 == 0:                           # read while rows wait
            assert log[-1] == want[-1] and len(log) == len(want)
    assert len(log) == len(want) and list(log) == want and log[5:40] == want[5:40]
    assert passes.count(True) >= 5 and passes.count(False) >= 3      # both paths were taken
