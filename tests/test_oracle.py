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


def corrupt(link: list[LinkByte], direction: str, frame: int, offset: int = 1,
            mask: int = 0x80) -> list[LinkByte]:
    """Flip bits of byte ``offset`` (1 = LEN) of the ``frame``-th frame in ``direction`` (frames
    are told apart by the idle time between them)."""
    out, k, last, pos = [], -1, None, 0
    for b in sorted(link, key=lambda b: b.t_ps):
        if b.direction == direction:
            if last is None or b.t_ps - last > 1 * MS:
                k, pos = k + 1, 0
            if k == frame and pos == offset:
                b = LinkByte(b.t_ps, b.direction, b.value ^ mask, sent=b.value, fault="flip")
            last, pos = b.t_ps, pos + 1
        out.append(b)
    assert k >= frame, f"no frame {frame} in {direction}"
    return out


def applied_samples(n: int, lost: set[int], t0: int = 0, crc: dict[int, int] | None = None
                    ) -> list[tuple[int, dict]]:
    """STM32 samples 3 ms after each setpoint frame i (seq i, every 5 ms): frames in ``lost``
    were never applied; ``crc``: seq -> CRC errors counted by that sample."""
    out, count, last, errors = [], 0, 0, 0
    for i in range(n):
        if i not in lost:
            count, last = count + 1, i
        errors = (crc or {}).get(i, errors)
        out.append((t0 + i * 5 * MS + 3 * MS, {"setpoints": count, "last_seq": last,
                                                "crc_errors": errors}))
    return out


def desync_obs(lost: set[int], bad: int | None = 30, direction: str = "peer->stm32",
               crc: dict[int, int] | None = None) -> oracle.Observations:
    link = sorted(setpoint_wire(60) + telemetry_stream(30), key=lambda b: b.t_ps)
    if bad is not None:
        link = corrupt(link, direction, bad)
        assert sum(1 for b in link if b.fault and b.direction == direction) == 1
    return oracle.Observations(duration_ps=300 * MS, link=link, samples={"stm32":
                               applied_samples(60, lost, crc=crc)})


def test_desync_is_a_decoder_that_lost_step_at_a_corrupted_frame():
    v = oracle.classify(desync_obs(set(range(30, 40))))
    assert v.labels == ["desync"], v
    assert "9 intact setpoints after it lost in a row (seq 31-39" in v.evidence["desync"]
    assert "applied again from seq 40" in v.evidence["desync"]
    assert "seq 29 before it was applied" in v.evidence["desync"]
    # never applied again: still desync
    v = oracle.classify(desync_obs(set(range(30, 60))))
    assert "none applied again by the end" in v.evidence["desync"]


def test_desync_controls_the_label_must_not_fire_on():
    # the patched decoder drops the broken frame only
    assert oracle.classify(desync_obs({30})).labels == ["ok"]
    # the same losses with nothing corrupted on the STM32's wire: the fault on the other wire
    # cannot disturb its decoder, and no fault at all neither
    assert "desync" not in oracle.classify(desync_obs(set(range(30, 40)),
                                                      direction="stm32->peer", bad=15)).labels
    assert "desync" not in oracle.classify(desync_obs(set(range(30, 40)), bad=None)).labels
    # the decoder was not in step when the fault came (more than max_frames_lost lost before)
    assert "desync" not in oracle.classify(desync_obs(set(range(27, 40)))).labels
    # one stale loss just before the fault does not hide the lost step after it
    v = oracle.classify(desync_obs({29} | set(range(30, 40))))
    assert "desync" in v.labels and "seq 28 before it was applied" in v.evidence["desync"]
    # frames lost after it each with its own CRC error: a decoder in step reading bad data
    # (stale cache lines), not one that lost step and swallowed them
    assert "desync" not in oracle.classify(desync_obs(set(range(30, 34)),
                                                      crc={31: 1, 32: 2, 33: 3})).labels
    assert "desync" in oracle.classify(desync_obs(set(range(30, 36)), crc={35: 1})).labels
    # a build that lost as many frames in a row before the fault: not the fault's doing
    assert "desync" not in oracle.classify(desync_obs({10, 11, 12, 13, 31, 32, 33})).labels
    assert "desync" in oracle.classify(desync_obs({10, 11, 31, 32, 33})).labels


def test_crc_errors_of_a_corrupted_frame_are_not_stale():
    # the corrupted frame's CRC error, counted while the decoder was out of step: explained
    obs = desync_obs(set(range(30, 40)), crc={38: 1})
    assert "stale" not in oracle.classify(obs).labels
    # an error once the decoder was back in step, on frames intact on the wire: stale reads
    v = oracle.classify(desync_obs(set(range(30, 40)), crc={38: 1, 50: 2}))
    assert "stale" in v.labels and "on frames intact on the wire" in v.evidence["stale"]
    # the same error with the fault on the other wire: nothing explains it
    v = oracle.classify(desync_obs(set(range(30, 40)), direction="stm32->peer", bad=15, crc={38: 1}))
    assert v.labels == ["stale"] and "on a clean wire" in v.evidence["stale"]


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
    obs.faults = [{"kind": "link", "t_ps": 5 * MS}]   # a planned fault that corrupted nothing
    assert oracle.classify(obs).labels == ["stale"]   # explains nothing
    obs.link = corrupt(setpoint_wire(4), "peer->stm32", 1)   # a corrupted frame does
    assert "stale" not in oracle.classify(obs).labels
