"""A finished session's machines are freed: no C unit keeps them alive behind the collector's back.

Native units hold Python references (their machine, scheduler, signals, ports' owners); each must
be visible to the cyclic collector (tp_traverse), and a ports.h capsule must hold none (a capsule
is opaque to the collector: one that kept its owner alive kept every machine alive, ~20 MB per
session, which a campaign worker running hundreds of trials cannot afford)."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from duohil.engines.base import PS_PER_MS, MachineSpec, RunSpec

ROOT = Path(__file__).resolve().parent.parent
STM32 = (ROOT / "platforms" / "stm32h743.repl", ROOT / "build" / "stm32" / "fixed.elf")
PEER = (ROOT / "platforms" / "esp32c3_peer.repl", ROOT / "build" / "esp32" / "pooled-packed.elf")


def test_a_dropped_session_frees_both_machines() -> None:
    from duohil.engines.builtin.kernel.machine import Machine
    from duohil.engines.builtin.session import BuiltinEngine

    missing = [str(p) for _, p in (STM32, PEER) if not p.is_file()]
    if missing:
        pytest.fail("firmware image(s) not built: " + ", ".join(missing) + " (run `make firmware`)")
    # other tests' machines, held until the end: an id is only unique among live objects (one of
    # them freed by a collection during this session's start gave its id to a new machine)
    gc.collect()
    others = [o for o in gc.get_objects() if isinstance(o, Machine)]
    before = {id(o) for o in others}
    spec = RunSpec(stm32=MachineSpec(STM32[0], STM32[1], "g_config"),
                   peer=MachineSpec(PEER[0], PEER[1], "g_peer_config"))
    s = BuiltinEngine().start(spec)
    s.run_until(30 * PS_PER_MS)            # bytes on the link, DMA, interrupts, events pending
    assert len(s.link_bytes()) > 0
    machines = [weakref.ref(o) for o in gc.get_objects()
                if isinstance(o, Machine) and id(o) not in before]
    assert len(machines) == 2
    del s
    gc.collect()
    alive = [r().name for r in machines if r() is not None]
    assert not alive, f"machines kept alive after their session was dropped: {alive}"
