"""The builtin engine end to end (duohil/engines/builtin/session.py): start-up, determinism of the
fingerprint, and the errors for a missing ELF, symbol or bad platform file.

The full pair (STM32 + peer) needs the Cortex-M7 core and the product firmwares; until they exist,
the same properties are checked on a two-peer session (the peer platform twice), which exercises
everything but the link."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from duohil.engines.base import ALL_CAPABILITIES, PS_PER_MS, PS_PER_US, MachineSpec, RunSpec
from duohil.engines.builtin import BuiltinEngine, BuiltinSession, single
from duohil.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ROOT / "platforms"
BUILD = ROOT / "build"
STM32_PLATFORM = PLATFORMS / "stm32h743.repl"
PEER_PLATFORM = PLATFORMS / "esp32c3_peer.repl"
STM32_ELF = BUILD / "stm32" / "fixed.elf"
PEER_ELF = BUILD / "esp32" / "pooled-packed.elf"


def require(*images: Path) -> None:
    """Fail, naming them, when firmware images are missing: every test command builds them first
    (`make test`), so a missing image is a broken build, not a reason to skip."""
    missing = [str(p.relative_to(ROOT)) for p in images if not p.exists()]
    if missing:
        pytest.fail("firmware image(s) not built: " + ", ".join(missing) + " (run `make firmware`)")



def peer_spec(**kw) -> MachineSpec:
    base = MachineSpec(PEER_PLATFORM, PEER_ELF, "g_peer_config", {})
    return replace(base, **kw)


def two_peers(seed: int = 0, **kw) -> RunSpec:
    return RunSpec(stm32=peer_spec(**kw), peer=peer_spec(), seed=seed, quantum_ps=10 * PS_PER_US)


def pair(seed: int = 0, stm32_config: dict | None = None) -> RunSpec:
    return RunSpec(stm32=MachineSpec(STM32_PLATFORM, STM32_ELF, "g_config", stm32_config or {}),
                   peer=MachineSpec(PEER_PLATFORM, PEER_ELF, "g_peer_config", {}), seed=seed)


# -- the engine ---------------------------------------------------------------------------------------------
def test_engine_declares_everything():
    ok, reason = BuiltinEngine.availability()
    assert ok, reason
    assert "2.1.4" in reason
    engine = BuiltinEngine()
    assert engine.name == "builtin" and engine.capabilities == ALL_CAPABILITIES
    assert engine.missing(["dcache", "peer_stall"]) == []


# -- two peers (runs as soon as the peer models exist) ------------------------------------------------------
def run_fingerprint(spec: RunSpec, t_ps: int, setup=None) -> tuple[str, BuiltinSession]:
    s = BuiltinEngine().start(spec)
    if setup:
        setup(s)
    s.run_until(t_ps)
    return s.fingerprint(), s


def test_two_peer_session_is_deterministic():
    require(PEER_ELF)
    a, sa = run_fingerprint(two_peers(), 30 * PS_PER_MS)
    b, sb = run_fingerprint(two_peers(), 30 * PS_PER_MS)
    assert a == b
    assert sa.now_ps == 30 * PS_PER_MS
    assert [ln.text.split()[0] for ln in sa.peer.console()][:1] == ["BOOT"]
    assert sa.console() and all(ln.machine in ("stm32", "peer") for ln in sa.console())
    assert sa.link is None and sa.link_bytes() == []     # no usart3 on a peer platform


def test_fingerprint_depends_on_config_and_seeded_faults():
    require(PEER_ELF)
    base, _ = run_fingerprint(two_peers(), 20 * PS_PER_MS)
    patched, s = run_fingerprint(two_peers(config={"start_delay_ms": 11}), 20 * PS_PER_MS)
    assert patched != base
    assert s.stm32.read_block("g_peer_config")["start_delay_ms"] == 11

    def seeded_stall(sess: BuiltinSession) -> None:
        t = sess.rng.randrange(1, 10) * PS_PER_MS        # the fault plan's randomness: seeded
        sess.at(t, lambda: sess.peer.stall(2 * PS_PER_MS), name="stall")

    s1, _ = run_fingerprint(two_peers(seed=1), 20 * PS_PER_MS, seeded_stall)
    s1b, _ = run_fingerprint(two_peers(seed=1), 20 * PS_PER_MS, seeded_stall)
    s2, _ = run_fingerprint(two_peers(seed=2), 20 * PS_PER_MS, seeded_stall)
    assert s1 == s1b
    assert s1 != s2 and s1 != base


def test_fingerprint_covers_every_byte_of_every_memory():
    """The fingerprint hashes each memory from its own storage (Machine.memory_store): one byte
    changed anywhere -- first, middle, last byte of any region, through an alias too -- changes
    it, and putting the byte back restores it."""
    require(STM32_ELF, PEER_ELF)
    s = BuiltinEngine().start(pair())
    s.run_until(2 * PS_PER_MS)
    base = s.fingerprint()
    checked = 0
    for m in (s.stm32.machine, s.peer.machine):
        for name, addr, size in m.memories:               # aliases included
            for off in (0, size // 2 + 3, size - 1):
                old = m.read_memory(addr + off, 1)
                m.write_memory(addr + off, bytes([old[0] ^ 0x5A]))
                assert s.fingerprint() != base, (m.name, name, hex(addr + off))
                m.write_memory(addr + off, old)
                checked += 1
    assert s.fingerprint() == base and checked >= 3 * 8


def test_read_fields_is_read_block_for_those_keys():
    """Duo samples the status blocks with read_fields (one unpack straight from the memory): the
    same values as read_block for the keys the block has, in the order asked, as memory changes,
    also for a block that is not flat (decoded whole), and the same error for a missing one."""
    from duohil.duo import BLOCKS, STATUS_KEYS
    require(STM32_ELF, PEER_ELF)
    s = BuiltinEngine().start(pair())
    s.run_until(30 * PS_PER_MS)
    odd = ("position", "no_such_field", "state", "state", "magic")
    for name, h in (("stm32", s.stm32), ("peer", s.peer)):
        for sym in (BLOCKS[name]["status"], BLOCKS[name]["crash"]):
            for keys in (STATUS_KEYS, odd, ()):
                st = h.read_block(sym)
                got = h.read_fields(sym, keys)
                want = {k: st[k] for k in keys if k in st}
                assert got == want and list(got) == list(want), (name, sym, keys)
    status = BLOCKS["stm32"]["status"]
    before = s.stm32.read_fields(status, ("setpoints", "position"))
    s.run_until(60 * PS_PER_MS)                                    # the firmware moved on
    after = s.stm32.read_fields(status, ("setpoints", "position"))
    assert after != before and after == {k: s.stm32.read_block(status)[k] for k in after}
    with pytest.raises(ConfigError) as a:
        s.stm32.read_block("g_no_such_block")
    with pytest.raises(ConfigError) as b:
        s.stm32.read_fields("g_no_such_block", STATUS_KEYS)
    assert str(a.value) == str(b.value)


def test_stall_is_logged_and_at_runs_in_virtual_time():
    require(PEER_ELF)
    s = BuiltinEngine().start(two_peers())
    seen = []
    s.at(3 * PS_PER_MS, lambda: seen.append(s.now_ps), name="probe")
    s.at(4 * PS_PER_MS, lambda: s.peer.stall(PS_PER_MS))
    s.run_until(6 * PS_PER_MS)
    assert seen == [3 * PS_PER_MS]
    kinds = [(k, d.get("cpu")) for _t, k, d in s.events()]
    assert ("stall_begin", "cpu") in kinds and ("stall_end", "cpu") in kinds
    assert s.machine("peer").cpu is s.peer.cpu
    with pytest.raises(KeyError):
        s.machine("nope")


def test_machine_handle_access():
    require(PEER_ELF)
    s = BuiltinEngine().start(two_peers())
    s.run_until(2 * PS_PER_MS)
    addr = s.peer.symbol("g_peer_config")
    cfg = s.peer.read_block("g_peer_config")
    assert cfg["magic"] == int.from_bytes(s.peer.read_memory(addr, 4), "little")
    assert isinstance(s.peer.pc(), int)
    with pytest.raises(ConfigError) as info:
        s.peer.symbol("g_no_such_symbol")
    assert "g_no_such_symbol" in str(info.value) and str(PEER_ELF) in str(info.value)


# -- errors (each names the file, line, symbol or field) -------------------------------------------------------
def test_missing_elf():
    missing = BUILD / "esp32" / "no-such-image.elf"
    with pytest.raises(ConfigError) as info:
        single(PEER_PLATFORM, missing)
    assert str(missing) in str(info.value)


def test_missing_config_symbol():
    require(PEER_ELF)
    with pytest.raises(ConfigError) as info:
        single(PEER_PLATFORM, PEER_ELF, config_symbol="g_no_config", config={"x": 1})
    assert "g_no_config" in str(info.value) and str(PEER_ELF) in str(info.value)


def test_unknown_config_field():
    require(PEER_ELF)
    with pytest.raises(ConfigError) as info:
        single(PEER_PLATFORM, PEER_ELF, config_symbol="g_peer_config", config={"gogcc": 50})
    msg = str(info.value)
    assert "gogcc" in msg and "g_peer_config" in msg and "gogc" in msg


def test_config_without_symbol():
    require(PEER_ELF)
    with pytest.raises(ConfigError, match="config_symbol"):
        single(PEER_PLATFORM, PEER_ELF, config={"gogc": 50})


def test_wrong_architecture_elf():
    require(STM32_ELF)
    with pytest.raises(ConfigError, match="EM_ARM"):
        single(PEER_PLATFORM, STM32_ELF)


def test_bad_platform_file(tmp_path):
    require(PEER_ELF)
    bad = tmp_path / "broken.repl"
    bad.write_text("cpu: CPU.RiscV32 @ sysbus\n\nuart0: UART.ESP32_UART @ sysbus 0x6000_0000\n")
    with pytest.raises(ConfigError) as info:
        BuiltinEngine().start(RunSpec(stm32=peer_spec(platform=bad), peer=peer_spec()))
    assert info.value.file == str(bad) and info.value.line == 3


def test_single_machine_helper():
    require(PEER_ELF)
    r = single(PEER_PLATFORM, PEER_ELF, name="peer", console_uart="uart0")
    r.run_for(15 * PS_PER_MS)
    assert r.now_ps == 15 * PS_PER_MS
    assert r.handle.console()[0].text.startswith("BOOT")
    assert r.plant is None                    # no motor wiring on the peer


# -- the real pair ---------------------------------------------------------------------------------------------------
def test_pair_is_deterministic():
    require(STM32_ELF, PEER_ELF)
    a, sa = run_fingerprint(pair(), 20 * PS_PER_MS)
    b, _ = run_fingerprint(pair(), 20 * PS_PER_MS)
    assert a == b
    assert sa.link is not None and sa.plant is not None
    assert {b.direction for b in sa.link_bytes()} <= {"stm32->peer", "peer->stm32"}
    assert isinstance(sa.stm32.read_block("g_status"), dict)


def test_pair_boots_and_talks():
    require(STM32_ELF, PEER_ELF)
    s = BuiltinEngine().start(pair())
    s.run_until(60 * PS_PER_MS)
    faults = [e for e in s.events() if e[1] in ("cpu_fault", "reset")]
    assert not faults, f"the STM32 faulted or reset while booting: {faults[:3]}"
    boot = [ln.text for ln in s.console() if ln.text.startswith("BOOT")]
    assert any(ln.machine == "stm32" and ln.text.startswith("BOOT") for ln in s.console()), \
        f"no BOOT line from the STM32 console (console so far: {s.console()[:4]})"
    assert len(boot) >= 2
    dirs = {b.direction for b in s.link_bytes()}
    assert dirs == {"stm32->peer", "peer->stm32"}, f"link traffic only in {dirs or 'no direction'}"


def test_pair_fingerprint_depends_on_seeded_input():
    require(STM32_ELF, PEER_ELF)

    def seeded_stall(sess: BuiltinSession) -> None:
        t = sess.rng.randrange(2, 15) * PS_PER_MS
        sess.at(t, lambda: sess.peer.stall(5 * PS_PER_MS), name="gc_pause")

    a, _ = run_fingerprint(pair(seed=1), 20 * PS_PER_MS, seeded_stall)
    b, _ = run_fingerprint(pair(seed=2), 20 * PS_PER_MS, seeded_stall)
    assert a != b


def test_pair_missing_stm32_symbol():
    require(STM32_ELF, PEER_ELF)
    spec = pair()
    spec = replace(spec, stm32=replace(spec.stm32, config_symbol="g_not_there", config={"a": 1}))
    with pytest.raises(ConfigError) as info:
        BuiltinEngine().start(spec)
    assert "g_not_there" in str(info.value) and str(STM32_ELF) in str(info.value)


# -- fault injection (Session.inject) --------------------------------------------------------------------------
def _plan():
    from duohil.faults import Fault
    return [
        Fault("peer_stall", {"at_ms": 25, "duration_ms": 3}),
        Fault("peer_stall", {"after_setpoints": 3, "duration_ms": 1}),
        Fault("dma_latency", {"controller": "dma1", "stream": 0, "latency_us": 50, "at_ms": 5}),
        Fault("irq_at", {"symbol": "ctrl_step", "offset": 0, "irq": 39, "nth": 2, "at_ms": 12}),
        Fault("link", {"action": "flip", "direction": "peer->stm32", "frame": 2, "field": "LEN",
                       "bit": 2}),
        Fault("link", {"action": "truncate", "direction": "peer->stm32", "frame": 4,
                       "field": "payload[2]"}),
        Fault("link", {"action": "insert", "direction": "stm32->peer", "frame": 1, "field": "CRC_HI",
                       "value": 0x55}),
        Fault("noise", {"direction": "peer->stm32", "ber": 0.05, "at_ms": 30, "duration_ms": 5}),
    ]


def test_inject_every_fault_kind():
    require(STM32_ELF, PEER_ELF)
    s = BuiltinEngine().start(pair(seed=4))
    times = [s.inject(f) for f in _plan()]
    assert times[0] == 25 * PS_PER_MS and times[2] == 5 * PS_PER_MS and times[7] == 30 * PS_PER_MS
    assert times[1] is None and times[3] is None          # known only when they happen
    s.run_until(40 * PS_PER_MS)
    fired = {d["index"]: (t, d) for t, k, d in s.events() if k == "fault"}
    assert sorted(fired) == list(range(8)), fired
    assert fired[0][0] == 25 * PS_PER_MS and fired[0][1]["duration_ms"] == 3
    assert fired[3][1]["irq"] == 39 and fired[3][0] >= 12 * PS_PER_MS
    assert fired[4][1]["frame"] == 2 and fired[4][1]["field"] == "LEN"
    touched = {b.fault for b in s.link_bytes() if b.fault}
    assert {"flip", "truncate", "insert"} <= touched
    flipped = [b for b in s.link_bytes() if b.fault == "flip"]
    assert flipped[0].value == flipped[0].sent ^ 0x04
    stalls = [d for t, k, d in s.events() if k == "stall_begin"]
    assert len(stalls) == 2


def test_injected_run_is_deterministic_and_reported():
    require(STM32_ELF, PEER_ELF)
    fps = []
    for _ in range(2):
        s = BuiltinEngine(plant={"limit_max": 60_000}).start(pair(seed=4))
        for f in _plan():
            s.inject(f)
        s.run_until(35 * PS_PER_MS)
        fps.append(s.fingerprint())
    assert fps[0] == fps[1]
    plant = s.observations()["plant"]
    assert plant and plant[0][0] == 1.0 and all(len(p) == 2 for p in plant)
    assert s.plant.params.limit_max == 60_000


def test_inject_unknown_symbol_and_kind():
    require(STM32_ELF, PEER_ELF)
    from duohil.faults import Fault
    s = BuiltinEngine().start(pair())
    with pytest.raises(ConfigError, match="g_no_such_function"):
        s.inject(Fault("irq_at", {"symbol": "g_no_such_function", "irq": 39}))
    with pytest.raises(ConfigError, match="cosmic_ray"):
        s.inject(Fault("cosmic_ray", {}))


def test_a_model_error_in_an_mmio_access_stops_the_run_with_that_error():
    # MMIO goes through our own ctypes callbacks (machine._map_mmio): an exception raised by a
    # model must stop emulation and come out of run_until as itself, as the binding's did
    require(PEER_ELF)
    r = single(PEER_PLATFORM, PEER_ELF, name="peer", console_uart="uart0")
    uart = r.machine.peripherals["uart1"]

    def broken(*_args):
        raise RuntimeError("model bug in the FIFO")

    # a FIFO write starts the transmitter, which hands the character to its tx_sink (the same
    # call in the Python model and in the native one, esp32c3_uart.c)
    uart.tx_sink = broken
    with pytest.raises(RuntimeError, match="model bug in the FIFO"):
        r.run_for(100 * PS_PER_MS)


def test_skipped_cpus_are_settled_when_run_until_returns():
    # an idle CPU is not stepped through every scheduler step (scheduler.run_until); when the
    # loop returns, every clock stands at the end time all the same
    require(STM32_ELF, PEER_ELF)
    s = BuiltinEngine().start(pair())
    for t_ms in (3, 7, 20):
        s.run_until(t_ms * PS_PER_MS)
        for name in ("stm32", "peer"):
            cpu = s.machine(name).cpu
            assert cpu.cycles == -((-t_ms * PS_PER_MS * cpu.hz) // 10**12), (name, t_ms)


def test_the_package_check_says_what_is_missing_or_wrong(monkeypatch) -> None:
    """BuiltinEngine._packages: unicorn absent, at another version, or pyelftools absent, each
    said in one line with the fix; the version is the package's own (no metadata lookup)."""
    import importlib.util

    import unicorn

    from duohil.engines.builtin.session import UNICORN_VERSION
    assert BuiltinEngine._packages() == (True, UNICORN_VERSION)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "unicorn" else real(name, *a))
    ok, why = BuiltinEngine._packages()
    assert not ok and "unicorn is not installed" in why and f"unicorn=={UNICORN_VERSION}" in why
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "elftools" else real(name, *a))
    ok, why = BuiltinEngine._packages()
    assert not ok and "pyelftools is not installed" in why
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.setattr(unicorn, "__version__", "2.0.1")
    ok, why = BuiltinEngine._packages()
    assert not ok and why.startswith("unicorn 2.0.1 is installed; the builtin engine needs exactly")
