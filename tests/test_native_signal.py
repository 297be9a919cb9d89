"""Differential tests: _core.Signal (the peripherals' output lines under DUOHIL_MODELS=native)
against peripheral.py's Signal (the reference under python): the same edges, each sink's
``set_input(line, level)`` in the same order (sinks that connect more sinks while called
included), the same level and targets, errors handed on."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Signal
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")


class Recorder:
    def __init__(self, log: list, tag: str) -> None:
        self.log, self.tag = log, tag

    def set_input(self, line, level) -> None:
        self.log.append((self.tag, line, level, type(level).__name__))


class Grower(Recorder):
    """A sink that connects another sink to the signal it is called from (the iteration sees it)."""

    def __init__(self, log, tag, sig) -> None:
        super().__init__(log, tag)
        self.sig, self.done = sig, False

    def set_input(self, line, level) -> None:
        super().set_input(line, level)
        if not self.done:
            self.done = True
            self.sig.connect(Recorder(self.log, self.tag + "+"), line + 100)


SIG_OP = st.one_of(
    st.tuples(st.just("set"), st.sampled_from((True, False, 0, 1, 2, None, "", "x"))),
    st.tuples(st.just("set1"),),
    st.tuples(st.just("pulse"),),
    st.tuples(st.just("connect"), st.integers(0, 5)),
    st.tuples(st.just("grow"),),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(SIG_OP, max_size=30))
def test_signal_in_c_equals_the_python_reference(ops) -> None:
    sides = [(Signal("u.IRQ"), []), (native.core().Signal("u.IRQ"), [])]
    for i, op in enumerate(ops):
        for sig, log in sides:
            if op[0] == "set":
                sig.set(op[1])
            elif op[0] == "set1":
                sig.set()
            elif op[0] == "pulse":
                sig.pulse()
            elif op[0] == "connect":
                sig.connect(Recorder(log, f"r{i}"), op[1])
            else:
                sig.connect(Grower(log, f"g{i}", sig), 7)
        (a, la), (c, lc) = sides
        assert la == lc, f"step {i} {op}"
        assert (a.name, a.level, a.connected, type(a.level)) == \
            (c.name, c.level, c.connected, type(c.level))
        assert [(type(s).__name__, n) for s, n in a._targets] == \
            [(type(s).__name__, n) for s, n in c._targets]


def test_signal_errors_are_handed_on() -> None:
    class Bad:
        def set_input(self, line, level):
            raise RuntimeError(f"line {line}")

    for sig in (Signal("s"), native.core().Signal("s")):
        sig.connect(Bad(), 3)
        with pytest.raises(RuntimeError, match="line 3"):
            sig.set(True)
        assert sig.level            # as the Python reference: the level changed before the call


def test_peripheral_outputs_follow_the_switch() -> None:
    for models, cls in (("python", Signal), ("native", native.core().Signal)):
        with native.using(models):
            sched = Scheduler(1_000_000)
            m = Machine("stm32", sched, platform=__file__)
            u = Stm32Usart(m, "usart1", 0x4001_1000)
        assert type(u.output("IRQ")) is cls and u.output("IRQ") is u.output("IRQ")
