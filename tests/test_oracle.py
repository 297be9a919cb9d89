"""Oracles on synthetic observations: each label fires on its evidence and only then."""
from __future__ import annotations

from duohil import oracle, protocol
from duohil.engines.base import PS_PER_MS, ConsoleLine, LinkByte

MS = PS_PER_MS
BYTE = 87 * 1_000_000          # ~one character at 115200 baud, in ps


def wire(direction: str, t0: int, payloads: list[bytes], gap: int = 5 * MS) -> list[LinkByte]:
    out = []
    t = t0
    for p in payloads:
        for i, b in enumerate(protocol.encode_frame(p)):
            out.append(LinkByte(t + i * BYTE, direction, b))
        t += gap
    return out


def telemetry_stream(n: int, t0: int = 0, period: int = 10 * MS, seqs=None) -> list[LinkByte]:
    seqs = list(range(n)) if seqs is None else seqs
    pays = [protocol.Telemetry(s, 0, 0, 2, 0, 0, 0, 0, 0, 0).encode() for s in seqs]
    return wire("stm32->peer", t0, pays, gap=period)


def test_clean_run_is_ok():
    obs = oracle.Observations(duration_ps=1000 * MS, link=telemetry_stream(100))
    v = oracle.classify(obs)
    assert v.labels == ["ok"] and v.ok and v.evidence == {}


def test_runaway_from_the_plant_not_the_firmware():
    obs = oracle.Observations(duration_ps=500 * MS, link=telemetry_stream(50),
                              events=[(123 * MS, "end_stop", {"side": "max", "position": 130000,
                                                              "velocity": 40000})])
    v = oracle.classify(obs)
    assert v.labels == ["runaway"]
    assert "max end stop at 123.000 ms" in v.evidence["runaway"]


def test_estop_and_hardfault_and_hang():
    obs = oracle.Observations(
        duration_ps=1000 * MS, link=telemetry_stream(30),
        console={"stm32": [ConsoleLine(250 * MS, "stm32", "ESTOP reason=soft_limit pos=100012")]},
        events=[(300 * MS, "cpu_fault", {"machine": "stm32", "exception": "HardFault",
                                         "pc": 0x08001234})])
    v = oracle.classify(obs)
    assert v.labels == ["estop", "hardfault", "hang"]
    assert "pc=0x08001234" in v.evidence["hardfault"]
    assert "HardFault pc=0x08001234" in v.evidence["hardfault"]
    assert "no BOOT within 100 ms of the STM32 fault at 300.000 ms" in v.evidence["hang"]


def test_reboot_is_not_a_hang():
    obs = oracle.Observations(duration_ps=1000 * MS, link=telemetry_stream(30),
                              console={"stm32": [ConsoleLine(950 * MS, "stm32", "BOOT fw=stm32")]})
    assert "hang" not in oracle.classify(obs).labels


def test_misparse_compares_what_the_peer_meant():
    sr = protocol.SensorReport(7, -12, 1, 0x00000001)
    natural = protocol.encode_sensor_report_natural(sr)
    buggy = protocol.decode_sensor_report_as_packed_overlay(natural)
    stm_sample = {"setpoints": 0, "sensor_reports": 1, "sensor_id": buggy.id,
                  "sensor_temp": buggy.temp, "sensor_status": buggy.status,
                  "sensor_flags": buggy.flags}
    obs = oracle.Observations(duration_ps=100 * MS, link=wire("peer->stm32", 0, [natural])
                              + telemetry_stream(10), peer_layout="natural",
                              samples={"stm32": [(50 * MS, stm_sample)]})
    v = oracle.classify(obs)
    assert v.labels == ["misparse"]
    assert "flags=0x1000000" in v.evidence["misparse"] and "meant temp=-12 status=1 flags=0x1" \
        in v.evidence["misparse"]
    # the fixed receiver rejects the frame: nothing decoded, nothing misparsed
    fixed = dict(stm_sample, sensor_reports=0)
    obs.samples = {"stm32": [(50 * MS, fixed)]}
    assert oracle.classify(obs).labels == ["ok"]


def setpoint_wire(n: int, t0: int = 0) -> list[LinkByte]:
    return wire("peer->stm32", t0, [protocol.Setpoint(i, 1000, 1).encode() for i in range(n)])


def test_desync_counts_lost_frames_after_a_link_fault():
    link = setpoint_wire(100) + telemetry_stream(50)
    fault = {"kind": "link", "t_ps": 100 * MS}
    samples = [(t * MS, {"setpoints": min(t // 5, 20)}) for t in range(0, 500, 10)]   # stuck at 20
    obs = oracle.Observations(duration_ps=500 * MS, link=link, faults=[fault],
                              samples={"stm32": samples})
    v = oracle.classify(obs)
    assert "desync" in v.labels and "never applied" in v.evidence["desync"]
    good = [(t * MS, {"setpoints": max(0, t // 5 - (1 if t > 100 else 0))}) for t in range(0, 500, 10)]
    obs.samples = {"stm32": good}
    assert "desync" not in oracle.classify(obs).labels


def test_stale_telemetry_on_the_wire():
    obs = oracle.Observations(duration_ps=200 * MS,
                              link=telemetry_stream(6, seqs=[1, 2, 3, 2, 4, 5]))
    v = oracle.classify(obs)
    assert v.labels == ["stale"] and "from seq 3 to 2" in v.evidence["stale"]


def test_stale_applied_setpoint_sequence():
    samples = [(10 * MS, {"setpoints": 5, "last_seq": 100}), (20 * MS, {"setpoints": 6,
                                                                        "last_seq": 98})]
    obs = oracle.Observations(duration_ps=30 * MS, samples={"stm32": samples})
    assert oracle.classify(obs).labels == ["stale"]
    wrap = [(10 * MS, {"setpoints": 5, "last_seq": 0xFFFF}), (20 * MS, {"setpoints": 6,
                                                                        "last_seq": 1})]
    obs.samples = {"stm32": wrap}
    assert oracle.classify(obs).labels == ["ok"]


def test_stack_overflow_from_the_ram_scan():
    obs = oracle.Observations(duration_ps=10 * MS, stack={"size": 2048, "high_water": 2048})
    assert oracle.classify(obs).labels == ["stack_overflow"]
    obs.stack = {"size": 2048, "high_water": 900, "guard_ok": True}
    assert oracle.classify(obs).labels == ["ok"]


def test_expectation_matching():
    v = oracle.Verdict(["estop", "runaway"], {})
    assert oracle.matches(v, ["runaway", "hardfault"])
    assert not oracle.matches(v, ["ok"])
    assert oracle.matches(oracle.Verdict(["ok"], {}), ["ok"])


def test_recovery_after_a_fault_is_not_a_hang():
    obs = oracle.Observations(
        duration_ps=1000 * MS, link=telemetry_stream(100),
        console={"stm32": [ConsoleLine(360 * MS, "stm32", "BOOT fw=stm32 build=fixed")]},
        events=[(300 * MS, "cpu_fault", {"machine": "stm32", "exception": 3, "pc": 0x08000100})])
    v = oracle.classify(obs)
    assert v.labels == ["hardfault"]
    assert oracle.matches(v, {"any": ["hardfault"], "none": ["hang"]})
    late = oracle.Observations(
        duration_ps=1000 * MS, link=telemetry_stream(100),
        console={"stm32": [ConsoleLine(450 * MS, "stm32", "BOOT fw=stm32 build=fixed")]},
        events=[(300 * MS, "cpu_fault", {"machine": "stm32", "exception": 3, "pc": 0x08000100})])
    v2 = oracle.classify(late)
    assert "hang" in v2.labels and not oracle.matches(v2, {"any": ["hardfault"], "none": ["hang"]})


def test_crc_errors_on_a_clean_wire_are_stale_reads():
    samples = [(10 * MS, {"setpoints": 1, "last_seq": 1, "crc_errors": 0}),
               (20 * MS, {"setpoints": 2, "last_seq": 2, "crc_errors": 3})]
    obs = oracle.Observations(duration_ps=30 * MS, link=setpoint_wire(4),
                              samples={"stm32": samples})
    v = oracle.classify(obs)
    assert v.labels == ["stale"] and "3 CRC error(s) between 10.000 and 20.000 ms" in v.evidence["stale"]
    # right after a (re)boot the receiver joins mid-frame: that error is not a stale read
    obs.console = {"stm32": [ConsoleLine(15 * MS, "stm32", "BOOT fw=stm32 build=fixed")]}
    assert "stale" not in oracle.classify(obs).labels
    obs.console = {}
    obs.faults = [{"kind": "link", "t_ps": 5 * MS}]           # a corrupted wire explains them
    assert "stale" not in oracle.classify(obs).labels
