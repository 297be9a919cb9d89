"""Specification of the peripherals' output lines: ``Signal`` (peripheral.py), which is
``_core.Signal`` (native/_core.c), its one implementation.

The rules (peripheral.py, docs/ENGINE_CONTRACT.md, docs/own-peripheral.md), checked after every
step of Hypothesis programs against a model of them written here:
  - a new line is low, has no sink, keeps the name it was given;
  - ``set(v)`` makes the level ``bool(v)`` (``set()``: high); only a change of level is an edge,
    and an edge calls every sink's ``set_input(line, level)`` once, in connection order, with
    ``level`` a ``bool``; a set to the level the line already has calls nobody;
  - ``pulse()``: ``set(True)`` then ``set(False)`` (a low line: a rising and a falling edge; a
    high line: only the falling one);
  - a sink connected while an edge is being delivered is called for that edge too (the walk sees
    the list as it grows); one sink may be connected on several lines, and twice on one;
  - ``connected`` is True once any sink is; ``_targets`` is the (sink, line) pairs in order;
  - an exception raised by a sink reaches the caller of ``set``, the level already changed and
    the later sinks not called;
  - a sink with a ports.h ``_native_input`` capsule (here DMAMUX1) gets its edge in C at its
    place in the connection order, with the same effect as its ``set_input``; a Python model
    (here the PLIC's ``set_input``) gets the call.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duohil.engines.builtin import native
from duohil.engines.builtin.cpus.rv32.plic import PlatformLevelInterruptController
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.peripheral import Peripheral, Signal
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_dmamux import Stm32Dmamux
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")


def observe(plic, mux) -> tuple[int, int]:
    """The two models' input lines: the PLIC's (a Python sink) and the DMAMUX's lines 0..7 (a sink
    with a ``_native_input`` capsule, driven in C)."""
    return (plic.level if plic else 0,
            sum(mux.level(n) << n for n in range(8)) if mux else 0)


class Recorder:
    """A Python sink: logs (tag, line, level, type of level, the models' input lines then)."""

    def __init__(self, log: list, tag: str, plic=None, mux=None) -> None:
        self.log, self.tag, self.plic, self.mux = log, tag, plic, mux

    def set_input(self, line, level) -> None:
        self.log.append((self.tag, line, level, type(level), observe(self.plic, self.mux)))


class Grower(Recorder):
    """A sink that connects another sink to the line it is called from, at its first call."""

    def __init__(self, log, tag, sig, plic, mux) -> None:
        super().__init__(log, tag, plic, mux)
        self.sig, self.child = sig, None

    def set_input(self, line, level) -> None:
        super().set_input(line, level)
        if self.child is None:
            self.child = Recorder(self.log, self.tag + "+", self.plic, self.mux)
            self.sig.connect(self.child, line + 100)


def plic_board():
    m = Machine("peer", Scheduler(1_000_000), platform=__file__)
    return PlatformLevelInterruptController(m, "plic", 0x0C00_0000, props={"numberOfSources": 31})


def mux_board():
    m = Machine("stm32", Scheduler(1_000_000), platform=__file__)
    return Stm32Dmamux(m, "dmamux1", 0x4002_0800)


def key(sink) -> str:
    if isinstance(sink, PlatformLevelInterruptController):
        return "PLIC"
    return "MUX" if isinstance(sink, Stm32Dmamux) else sink.tag


class Spec:
    """The rules above, kept beside the real line: what it must hold and what it must have called.
    Sinks are known by their key (a Recorder's tag, "PLIC")."""

    def __init__(self) -> None:
        self.level = False
        self.targets: list[tuple[str, int]] = []
        self.growers: set[str] = set()           # Growers that have not been called yet
        self.lines = {"PLIC": 0, "MUX": 0}       # the models' input lines

    def edge(self, level: bool) -> list:
        """The calls of a set to ``level``: none without a change; else every sink in order, a
        Grower connecting its child (called in the same walk) at its first call. Each Python
        sink's row carries the PLIC's input levels as the sinks before it left them."""
        if level == self.level:
            return []
        self.level = level
        rows, i = [], 0
        while i < len(self.targets):
            k, line = self.targets[i]
            if k in self.lines:
                bit = 1 << line
                self.lines[k] = self.lines[k] | bit if level else self.lines[k] & ~bit
            else:
                rows.append((k, line, level, bool, (self.lines["PLIC"], self.lines["MUX"])))
                if k in self.growers:
                    self.growers.discard(k)
                    self.targets.append((k + "+", line + 100))
            i += 1
        return rows


SIG_OP = st.one_of(
    st.tuples(st.just("set"), st.sampled_from((True, False, 0, 1, 2, None, "", "x", [], [0]))),
    st.tuples(st.just("set1")),
    st.tuples(st.just("pulse")),
    st.tuples(st.just("connect"), st.integers(0, 5)),
    st.tuples(st.just("again"), st.integers(0, 9), st.integers(0, 5)),   # a sink already connected
    st.tuples(st.just("grow")),
    st.tuples(st.just("model"), st.sampled_from(("PLIC", "MUX")), st.integers(1, 7)),
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(SIG_OP, max_size=30))
def test_signal_follows_its_rules(ops) -> None:
    plic, mux = plic_board(), mux_board()
    models = {"PLIC": plic, "MUX": mux}
    sig, spec, log = Signal("u.IRQ"), Spec(), []
    sinks: list = []
    assert (sig.name, sig.level, sig.connected, sig._targets) == ("u.IRQ", False, False, [])
    for i, op in enumerate(ops):
        before = len(log)
        want: list = []
        if op[0] == "set":
            want = spec.edge(bool(op[1]))
            sig.set(op[1])
        elif op[0] == "set1":
            want = spec.edge(True)
            sig.set()
        elif op[0] == "pulse":
            want = spec.edge(True) + spec.edge(False)
            sig.pulse()
        elif op[0] == "connect":
            r = Recorder(log, f"r{i}", plic, mux)
            sinks.append(r)
            sig.connect(r, op[1])
            spec.targets.append((r.tag, op[1]))
        elif op[0] == "again" and sinks:
            r = sinks[op[1] % len(sinks)]
            line = op[2] + (r is plic)                   # the PLIC has no source 0
            sig.connect(r, line)
            spec.targets.append((key(r), line))
        elif op[0] == "grow":
            g = Grower(log, f"g{i}", sig, plic, mux)
            sig.connect(g, 7)
            spec.targets.append((g.tag, 7))
            spec.growers.add(g.tag)
        elif op[0] == "model":
            sinks.append(models[op[1]])
            sig.connect(models[op[1]], op[2])
            spec.targets.append((op[1], op[2]))
        where = f"step {i} {op}"
        assert log[before:] == want, where
        assert sig.level is spec.level and sig.name == "u.IRQ", where
        assert sig.connected == bool(spec.targets), where
        assert [(key(s), n) for s, n in sig._targets] == spec.targets, where
        assert observe(plic, mux) == (spec.lines["PLIC"], spec.lines["MUX"]), where


def test_a_sinks_exception_reaches_the_caller_after_the_level_changed() -> None:
    class Bad:
        def set_input(self, line, level):
            raise RuntimeError(f"line {line}")

    log: list = []
    sig = Signal("s")
    sig.connect(Recorder(log, "first"), 1)
    sig.connect(Bad(), 3)
    sig.connect(Recorder(log, "after"), 2)
    with pytest.raises(RuntimeError, match="line 3"):
        sig.set(True)
    assert sig.level is True
    assert [row[0] for row in log] == ["first"]           # the later sink was not called
    sig.set(True)                                         # no edge: nobody is called, no error
    assert len(log) == 1
    with pytest.raises(RuntimeError, match="line 3"):
        sig.pulse()                                       # high: the falling edge only
    assert sig.level is False and [row[:3] for row in log] == [("first", 1, True), ("first", 1, False)]


def test_a_capsule_sink_gets_the_edge_in_c_as_its_set_input_would() -> None:
    mux_c, mux_py = mux_board(), mux_board()
    assert mux_c._native_input is not None
    # channel 0 selects request 5 (CxCR.DMAREQ_ID): the mux's own output follows the line
    for mux in (mux_c, mux_py):
        mux.write(0x00, 4, 5)
    out: list = []
    for mux in (mux_c, mux_py):
        rec = Recorder(out, mux is mux_c and "c" or "py")
        mux.output(0).connect(rec, 0)
    sig = Signal("src.REQ")
    sig.connect(mux_c, 5)
    assert sig._targets == [(mux_c, 5)]
    for level in (True, False, True):
        sig.set(level)
        mux_py.set_input(5, level)
        assert mux_c.level(5) is mux_py.level(5) is level
    assert [row[1:3] for row in out if row[0] == "c"] == [row[1:3] for row in out if row[0] == "py"] \
        == [(0, True), (0, False), (0, True)]


def test_every_model_output_is_the_one_signal() -> None:
    m = Machine("stm32", Scheduler(1_000_000), platform=__file__)
    u = Stm32Usart(m, "usart1", 0x4001_1000)
    p = Peripheral(m, "mine", 0x5000_0000)
    assert Signal is native.core().Signal
    for model in (u, p):
        irq = model.output("IRQ")
        assert type(irq) is Signal and irq is model.output("IRQ") and irq.name == f"{model.name}.IRQ"
        assert model.output(3) is model.output("3") and model.output(3).name == f"{model.name}.3"
