"""IRQ lines into the NVIC: a C Signal (``_core.Signal``, what every model's output is under the
native models) drives the line through the NVIC's ports.h input (``_native_input``, no Python
call unless the pend must stop the slice); a Python Signal calls nvic.py's ``set_input``. Both
must leave the same state and kick the core at the same edges."""
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
    assert run(c_sig) == run(Signal)
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


@pytest.mark.parametrize("signal_cls", [Signal, "native"])
def test_a_line_the_nvic_does_not_have_is_an_error_naming_it(signal_cls) -> None:
    cls = native.core().Signal if signal_cls == "native" else signal_cls
    b = build_m7()
    sig = cls("usart9.IRQ")
    sig.connect(b.nvic, 150)
    with pytest.raises(ValueError, match=r"nvic: no IRQ input 150 \(0\.\.149\)"):
        sig.set(True)
