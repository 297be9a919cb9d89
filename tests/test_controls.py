"""Controls: runs that must NOT produce a crash mode's label, so "reproduces on buggy" means the
bug's mechanism, not any fault on any build.

For each crash mode (scenarios/cmN_*.yaml, its shipped fault plan unless a control changes it):
  - the image with that mode's fix in and every other field bug left (``only-<fix>``, built by
    tests/fw/stm32_only from the product sources), under the mode's fault: no label;
  - the fault on the other wire / stream, on the buggy image, where the fault has a direction;
  - the buggy image with no fault at all;
and each label shown to need its bug: the same fault on the image with only that bug left
(``fixed-no-<fix>``) produces it. Runs are the shipped ones, shortened where the mode's evidence
comes early; labels that only ask "did X ever happen" stop the run once certain (stop_on).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fw_helpers import BUILD, require_images

from duohil import faults as faultmod
from duohil import runner
from duohil import scenario as scmod

SCEN = Path(__file__).resolve().parent.parent / "scenarios"
ONLY = "testfw/stm32_only"


@dataclass(frozen=True)
class Control:
    scenario: str
    image: str                      # stm32 image under build/: stm32/<v>.elf or testfw/...
    labels: tuple[str, ...]         # the mode's labels
    must: bool                      # True: one of labels must appear; False: none may
    faults: Any = "shipped"         # "shipped", None (no fault), or a callable on the plan
    peer: str | None = None         # another peer image
    duration_ms: float | None = None
    why: str = ""


def other_direction(plan: list[dict]) -> list[dict]:
    swap = {"peer->stm32": "stm32->peer", "stm32->peer": "peer->stm32"}
    return [dict(f, direction=swap[f["direction"]]) for f in plan]


def tx_stream(plan: list[dict]) -> list[dict]:
    return [dict(f, stream=1) for f in plan]          # DMA1 stream 1 = link TX, 0 = link RX


CONTROLS = [
    # CM1: a GC pause while the arm moves; estop / runaway need FIX_CMD_TIMEOUT=0
    Control("cm1_cmd_timeout", f"{ONLY}/only-cmd_timeout.elf", ("estop", "runaway"), False,
            why="setpoints expire during the pause"),
    Control("cm1_cmd_timeout", "stm32/buggy.elf", ("estop", "runaway"), False, faults=None,
            why="no pause, nothing to overshoot"),
    Control("cm1_cmd_timeout", "stm32/fixed-no-cmd_timeout.elf", ("estop", "runaway"), True),
    # CM2: a flipped LEN bit; desync needs FIX_RESYNC=0 and a corrupted frame on the STM32's input
    Control("cm2_resync", "stm32/buggy.elf", ("desync",), False, faults=other_direction,
            why="the flip on the stm32->peer wire cannot disturb the STM32's decoder"),
    Control("cm2_resync", f"{ONLY}/only-resync.elf", ("desync",), False,
            why="the patched decoder loses the broken frame only"),
    Control("cm2_resync", "stm32/fixed-no-dcache.elf", ("desync",), False,
            why="resync fix in, D-cache bug left: stale reads are not a lost step"),
    Control("cm2_resync", "stm32/buggy.elf", ("desync",), False, faults=None),
    Control("cm2_resync", "stm32/fixed-no-resync.elf", ("desync",), True),
    Control("cm2_resync", "stm32/buggy.elf", ("desync",), True),
    # CM3: stale reads need FIX_DCACHE=0; CRC errors of a corrupted frame are not stale
    Control("cm3_dcache", f"{ONLY}/only-dcache.elf", ("stale",), False, duration_ms=400),
    Control("cm2_resync", f"{ONLY}/only-dcache.elf", ("stale",), False,
            why="the resync bug's CRC errors after a corrupted frame are the wire's, not stale"),
    Control("cm2_resync", "stm32/fixed-no-resync.elf", ("stale",), False),
    Control("cm3_dcache", "stm32/fixed-no-dcache.elf", ("stale",), True, duration_ms=400),
    # CM4: torn RX snapshot needs FIX_ATOMIC=0 and the RX stream's late completion
    Control("cm4_atomic", "stm32/buggy.elf", ("hardfault",), False, faults=tx_stream,
            why="latency on the TX stream does not tear the RX snapshot"),
    Control("cm4_atomic", f"{ONLY}/only-atomic.elf", ("hardfault",), False),
    Control("cm4_atomic", "stm32/buggy.elf", ("hardfault",), False, faults=None),
    Control("cm4_atomic", "stm32/fixed-no-atomic.elf", ("hardfault",), True),
    # CM5: nested link interrupts overflow the stack with FIX_STACK=0
    Control("cm5_stack", f"{ONLY}/only-stack.elf", ("hardfault", "stack_overflow"), False),
    Control("cm5_stack", "stm32/buggy.elf", ("hardfault", "stack_overflow"), False, faults=None),
    Control("cm5_stack", "stm32/fixed-no-stack.elf", ("hardfault", "stack_overflow"), True),
    # CM6: a naturally aligned peer misparsed with FIX_LAYOUT=0
    Control("cm6_layout", f"{ONLY}/only-layout.elf", ("misparse",), False, duration_ms=200),
    Control("cm6_layout", "stm32/buggy.elf", ("misparse",), False, peer="pooled-packed",
            duration_ms=200, why="the packed peer: nothing to misparse"),
    Control("cm6_layout", "stm32/fixed-no-layout.elf", ("misparse",), True, duration_ms=200),
    # CM7: a bus error ends in a hang with FIX_FAULT_HANDLER=0
    # (300 ms: the fault at 150 ms plus the 100 ms recovery bound, and some)
    Control("cm7_fault_handler", f"{ONLY}/only-fault_handler.elf", ("hang",), False,
            duration_ms=300, why="the patched handler resets and is back within 100 ms"),
    Control("cm7_fault_handler", "stm32/buggy.elf", ("hang", "hardfault"), False, faults=None,
            duration_ms=300),
    Control("cm7_fault_handler", "stm32/fixed-no-fault_handler.elf", ("hang",), True,
            duration_ms=300),
]


def _id(c: Control) -> str:
    what = {"shipped": "fault", None: "nofault"}.get(c.faults, getattr(c.faults, "__name__", "f"))
    return (f"{c.scenario.split('_')[0]}-{Path(c.image).stem}-{what}"
            f"{'-' + c.peer if c.peer else ''}-{'/'.join(c.labels)}-{'yes' if c.must else 'no'}")


@pytest.mark.parametrize("c", CONTROLS, ids=_id)
def test_control(c: Control) -> None:
    require_images(c.image, "esp32/pooled-packed.elf", "esp32/pooled-natural.elf")
    sc = scmod.load(SCEN / f"{c.scenario}.yaml")
    if c.faults is None:
        sc.faults = []
    elif callable(c.faults):
        plan = c.faults([f.to_dict() for f in sc.faults])
        sc.faults = [faultmod.validate_fault(f, f"faults[{i}]", None) for i, f in enumerate(plan)]
    if c.duration_ms is not None:
        sc.duration_ms = c.duration_ms
    variant = "control"
    sc.stm32 = scmod.MachinePart(image=str(BUILD / c.image), config=sc.stm32.config)
    if c.peer:
        sc.peer = scmod.MachinePart(image=c.peer, config=sc.peer.config)
    sc.variants = {}
    stop = tuple(lab for lab in c.labels if c.must) if c.must else ()
    r = runner.run(sc, variant, stop_on=stop, timeline=True)
    assert r.error is None, r.error
    assert not runner.not_acted(r), runner.not_acted(r)     # the control's fault did act
    got = [lab for lab in r.outcomes if lab in c.labels]
    if c.must:
        assert got, f"{_id(c)}: expected {' or '.join(c.labels)}, saw {r.outcomes}"
    else:
        assert not got, (f"{_id(c)}: {', '.join(got)} without its bug ({c.why}): "
                         + "; ".join(f"{k}: {v}" for k, v in r.evidence.items()))
