"""IRQ lines into the NVIC: a C Signal (``_core.Signal``, peripheral.py's Signal, what every model's
output is) drives the line through the NVIC's ports.h input (``_native_input``, no Python call
unless the pend must stop the slice); a line written in Python (``PySignal`` below, as a user's
own code or a test may drive the NVIC) calls nvic.py's ``set_input``. Both must leave the same
state and kick the core at the same edges."""
from __future__ import annotations

import sys

import pytest
from builtin_helpers import build_m7

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.peripheral import Signal

IRQ0 = 16
# (line, level, enabled, executing): rises and falls, an enabled and a disabled IRQ, the core
# running a slice (a pend that can preempt kicks it) or between slices (no kick)
STEPS = [(5, True, False, False), (5, False, False, False), (7, True, True, True),
         (7, True, True, True), (7, False, True, True), (7, True, True, False),
         (149, True, True, True), (0, True, False, True), (0, False, False, True)]


class PySignal:
    """A pure-Python output line: an edge calls each sink's ``set_input(line, level)`` from Python
    (never the sink's ``_native_input``), in connection order; a set to the current level calls
    nobody."""

    def __init__(self, name: str) -> None:
        self.name, self.level, self._targets = name, False, []

    def connect(self, sink, line: int) -> None:
        self._targets.append((sink, line))

    def set(self, level: bool = True) -> None:
        level = bool(level)
        if level is self.level:
            return
        self.level = level
        for sink, line in self._targets:
            sink.set_input(line, level)


def run(signal_cls) -> list:
    b = build_m7()
    nv, cpu = b.nvic, b.cpu
    kicks: list[int] = []
    cpu.kick = lambda: kicks.append(nv.best_pending()[0])
    sigs: dict[int, object] = {}
    seen = []
    for line, level, enabled, executing in STEPS:
        sig = sigs.get(line)
        if sig is None:
            sig = sigs[line] = signal_cls(f"src{line}")
            sig.connect(nv, line)
        if enabled:
            nv.enabled |= 1 << (IRQ0 + line)
        cpu.executing = executing
        sig.set(level)
        cpu.executing = False
        seen.append((nv.level, nv.pending, list(kicks)))
    return seen


def test_a_c_signal_drives_the_nvic_in_c_as_set_input_does() -> None:
    c_sig = native.core().Signal
    assert Signal is c_sig                          # peripheral.py's Signal is the C one
    assert run(c_sig) == run(PySignal)
    # and the pends happened: line 7 high and enabled while executing kicked once per new pend
    last = run(c_sig)[-1]
    assert last[0] >> (IRQ0 + 149) & 1 and last[1] >> (IRQ0 + 7) & 1 and last[2] == [IRQ0 + 7] * 2


def test_the_c_path_makes_no_python_call_for_a_line_that_needs_no_kick() -> None:
    b = build_m7()
    sig = native.core().Signal("tim2.IRQ")
    sig.connect(b.nvic, 28)
    calls: list[str] = []

    def prof(frame, event, arg) -> None:
        if event in ("call", "c_call"):
            calls.append(arg.__name__ if event == "c_call" else frame.f_code.co_name)

    sys.setprofile(prof)
    try:
        sig.set(True)
        sig.set(False)
    finally:
        sys.setprofile(None)
    assert [c for c in calls if c != "setprofile"] == ["set", "set"]
    assert b.nvic.pending >> (IRQ0 + 28) & 1 and not b.nvic.level >> (IRQ0 + 28) & 1


@pytest.mark.parametrize("signal_cls", [PySignal, Signal], ids=["python", "c"])
def test_a_line_the_nvic_does_not_have_is_an_error_naming_it(signal_cls) -> None:
    b = build_m7()
    sig = signal_cls("usart9.IRQ")
    sig.connect(b.nvic, 150)
    with pytest.raises(ValueError, match=r"nvic: no IRQ input 150 \(0\.\.149\)"):
        sig.set(True)
