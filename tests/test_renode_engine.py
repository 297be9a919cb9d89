"""The Renode engine for real: runs only where pyrenode3 can load a Renode (PYRENODE_*; see
docs/renode.md and ci/workflows/renode.yml). Everywhere else the whole module skips with the engine's
own reason, e.g. "the Python package pyrenode3 is not installed: ...".

Each test starts a fresh emulation (RenodeSession clears it); one Renode per process.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from duohil.engines.base import PS_PER_MS, MachineSpec, RunSpec
from duohil.engines.renode.engine import RenodeEngine

ROOT = Path(__file__).resolve().parents[1]


def _marker_registered(name: str) -> bool:
    # `pytest -m renode` selects this module once pyproject.toml registers the marker (--strict-markers
    # rejects an unregistered one, so it is only applied when registered).
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return any(m.split(":")[0].split("(")[0].strip() == name for m in ini.get("markers", []))


pytestmark = [pytest.mark.renode] if _marker_registered("renode") else []

_ok, _reason = RenodeEngine.availability()
if not _ok:
    pytest.skip(f"Renode engine not available: {_reason}", allow_module_level=True)


def _elf(*parts: str) -> Path:
    p = ROOT.joinpath("build", *parts)
    if not p.is_file():
        pytest.skip(f"{p} not built (make firmware)")
    return p


def _spec(stm32: str = "fixed", peer: str = "pooled-packed", seed: int = 0) -> RunSpec:
    return RunSpec(stm32=MachineSpec(ROOT / "platforms" / "stm32h743.repl", _elf("stm32", f"{stm32}.elf")),
                   peer=MachineSpec(ROOT / "platforms" / "esp32c3_peer.repl", _elf("esp32", f"{peer}.elf")),
                   seed=seed)


@pytest.fixture
def engine():
    return RenodeEngine()


def test_both_machines_boot(engine):
    with engine.start(_spec()) as s:
        s.run_until(50 * PS_PER_MS)
        assert any(c.text.startswith("BOOT") for c in s.stm32.console()), s.stm32.console()
        assert any(c.text.startswith("BOOT") for c in s.peer.console()), s.peer.console()
        assert s.stm32.read_block("g_status")["magic"] == 0x53544154


def test_link_carries_peer_frames_paced_in_virtual_time(engine):
    with engine.start(_spec()) as s:
        s.run_until(60 * PS_PER_MS)
        to_stm32 = [b for b in s.link_bytes() if b.direction == "peer->stm32"]
        assert to_stm32 and to_stm32[0].value == 0xFE
        gaps = [b.t_ps - a.t_ps for a, b in zip(to_stm32, to_stm32[1:])]
        # 10 bits at ~115200 baud is ~86.8 us; never closer than one character time
        assert min(gaps) >= 86_000_000


def test_frame_fault_is_applied_and_recorded(engine):
    with engine.start(_spec()) as s:
        s.link_fault("FrameFault", "peer->stm32", 3, "LEN", "flip", 0x80)
        s.run_until(60 * PS_PER_MS)
        faulted = [b for b in s.link_bytes() if b.fault == "flip"]
        assert len(faulted) == 1 and faulted[0].value == faulted[0].sent ^ 0x80


def test_peer_stall_silences_the_peer_while_time_flows(engine):
    with engine.start(_spec()) as s:
        s.run_until(40 * PS_PER_MS)
        s.peer.stall(20 * PS_PER_MS)
        s.run_until(80 * PS_PER_MS)
        during = [b for b in s.link_bytes() if b.direction == "peer->stm32"
                  and 42 * PS_PER_MS < b.t_ps < 60 * PS_PER_MS]
        after = [b for b in s.link_bytes() if b.direction == "peer->stm32" and b.t_ps > 62 * PS_PER_MS]
        assert not during and after
        assert s.now_ps == 80 * PS_PER_MS


def test_same_spec_same_fingerprint(engine):
    prints = []
    for _ in range(2):
        with engine.start(_spec(seed=5)) as s:
            s.run_until(30 * PS_PER_MS)
            prints.append(s.fingerprint())
    assert prints[0] == prints[1]
