"""The SCB's cache maintenance registers (DCIMVAC ... BPIALL) written through the C bus.

A 32-bit write to one of them is served in C (native/_core.c, [scsops]: the SCS page's
``_native_mmio`` calls the C D-cache's operation itself) when ``machine.cache`` is the C D-cache;
everything else, and every operation for another cache object, goes through nvic.py's register
bank (``_cache_op``). Hypothesis drives the same firmware-like programs (DMA writes, CPU writes,
maintenance writes of every width at every offset of the block, the cache switched on and off,
time passing) through two boards: one whose D-cache is behind ``BankPath`` (a forwarding object
that is not the C D-cache, so the bank's ``_cache_op`` calls it: the Python reference) and one
whose SCS takes the C path; the D-cache state, the memory and the event log must stay equal after
every step. What the operations do to the cache is specified by tests/test_native_dcache.py."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builtin_helpers import build_m7
from duohil.engines.builtin.cpus.m7.dcache import DCache

AXI = 0x2400_0000
CCR = 0xE000_ED14
SCB_OPS = range(0xE000_EF50, 0xE000_EF7C)      # ICIALLU .. BPIALL, holes and halfwords included


class BankPath:
    """The D-cache seen as another cache object: everything but ``_c`` (what the SCS's C handler
    looks for) is the D-cache's, so the SCS hands its cache operations to the bank's ``_cache_op``,
    which calls them here."""

    def __init__(self, cache: DCache) -> None:
        self._cache = cache

    def __getattr__(self, name: str):
        if name == "_c":
            raise AttributeError(name)
        return getattr(self._cache, name)


def board(residency: int, bank: bool = False):
    """An M7 with its D-cache; ``bank``: its cache operations through the SCS's register bank."""
    b = build_m7()
    cache = DCache(b.machine, seed=7, residency=(residency, residency))
    assert type(cache) is DCache and b.machine.cache is cache
    if bank:
        b.machine.cache = BankPath(cache)
    return b, cache


def state(b, cache) -> dict:
    m = b.machine
    return {
        "stats": cache.stats(),
        "stale": cache.stale_lines(),
        "enabled": cache.enabled,
        "mem": bytes(b.cpu.uc.mem_read(AXI, 0x400)),
        "log": list(m.scheduler.log),
        "now": m.scheduler.now,
    }


line = st.integers(0, 7).map(lambda k: AXI + 32 * k)
OP = st.one_of(
    st.tuples(st.just("dma"), line, st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("cpu"), line, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("op"), st.sampled_from([0xE000_EF5C, 0xE000_EF68, 0xE000_EF70, 0xE000_EF64]),
              st.one_of(line.flatmap(lambda a: st.integers(a, a + 31)),
                        st.integers(AXI - 64, AXI + 0x400))),
    st.tuples(st.just("op_any"), st.sampled_from(SCB_OPS), st.sampled_from((1, 2, 4)),
              st.integers(0, 2**32 - 1)),
    st.tuples(st.just("ccr"), st.booleans()),
    st.tuples(st.just("adv"), st.integers(0, 400_000)),
)


def apply(b, op) -> None:
    m = b.machine
    if op[0] == "dma":
        m.dma_write(op[1], op[2])
    elif op[0] == "cpu":
        b.cpu.uc.mem_write(op[1], op[2])
    elif op[0] == "op":
        m.bus_write(op[1], 4, op[2])
    elif op[0] == "op_any":
        addr, size, value = op[1:]
        if addr % size:
            return
        m.bus_write(addr, size, value & ((1 << 8 * size) - 1))
    elif op[0] == "ccr":
        ccr = m.bus_read(CCR, 4)
        m.bus_write(CCR, 4, ccr | 1 << 16 if op[1] else ccr & ~(1 << 16))
    elif op[0] == "adv":
        m.scheduler.run_until(m.scheduler.now + op[1])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residency=st.integers(1, 300_000), ops=st.lists(OP, min_size=4, max_size=30))
def test_maintenance_writes_in_c_equal_the_python_reference(residency, ops) -> None:
    py, nat = board(residency, bank=True), board(residency)
    for b, _c in (py, nat):
        b.machine.bus_write(CCR, 4, b.machine.bus_read(CCR, 4) | 1 << 16)     # D-cache on
    assert state(*py) == state(*nat)
    for i, op in enumerate(ops):
        apply(py[0], op)
        apply(nat[0], op)
        a, c = state(*py), state(*nat)
        for key in a:
            assert a[key] == c[key], f"step {i} {op}: {key} differs"


def test_a_word_write_reaches_the_c_cache_without_the_bank() -> None:
    """The C path is the one taken: with the bank's Python write made to fail, DCIMVAC still
    invalidates the stale line; a byte write, which the C leaves to the bank, reaches it."""
    b, cache = board(100_000)
    m = b.machine
    m.bus_write(CCR, 4, m.bus_read(CCR, 4) | 1 << 16)
    m.dma_write(AXI + 0x40, b"\x55" * 32)                 # a line the CPU side still caches
    assert cache.stale_lines() == [AXI + 0x40]

    def refuse(*_a):
        raise AssertionError("the bank was called")
    b.nvic._st.set_fallback(b.nvic.regs.read, refuse)
    m.bus_write(0xE000_EF5C, 4, AXI + 0x4F)               # DCIMVAC: the line of 0x...4F
    assert cache.stale_lines() == [] and cache.lines_invalidated == 1
    m.bus_write(0xE000_EF50, 4, 0)                        # ICIALLU: nothing modelled, still C
    with pytest.raises(AssertionError, match="the bank was called"):
        m.bus_write(0xE000_EF5C, 1, 0x40)


def test_another_cache_object_gets_the_operations_through_the_bank() -> None:
    """machine.cache not the native D-cache (a user's or a test's object): _cache_op calls it."""
    calls = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *a: calls.append((name, *a))
    b = build_m7(cache=Recorder())
    b.machine.bus_write(0xE000_EF70, 4, 0x2400_0091)
    b.machine.bus_write(0xE000_EF74, 4, 0)
    assert calls == [("clean_invalidate", 0x2400_0080), ("clean_invalidate_all",)]
