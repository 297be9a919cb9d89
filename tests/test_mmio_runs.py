"""Machine.finish maps MMIO with one mmio_map per run of adjacent pages (kernel/machine.py's
_runs): the runs must cover exactly the pages the peripherals touch, in order, none adjacent to
the next (else two calls would map what one should)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duohil.engines.builtin.kernel.machine import PAGE, _runs

span = st.tuples(st.integers(0, 64), st.integers(1, 3 * PAGE)).map(
    lambda t: (t[0] * PAGE // 2, t[0] * PAGE // 2 + t[1]))       # unaligned starts and ends


@given(st.lists(span, max_size=12))
def test_runs_cover_exactly_the_touched_pages(spans):
    aligned = [(b & ~(PAGE - 1), -(-e // PAGE) * PAGE) for b, e in spans]
    runs = _runs(aligned)
    want = {p for b, e in spans for p in range(b & ~(PAGE - 1), e, PAGE)}
    got = [p for b, e in runs for p in range(b, e, PAGE)]
    assert got == sorted(want)                          # every touched page once, in order
    assert all(b % PAGE == 0 and e % PAGE == 0 and b < e for b, e in runs)
    assert all(e1 < b2 for (_, e1), (b2, _) in zip(runs, runs[1:]))   # maximal: a gap between


def test_runs_of_overlapping_touching_and_apart_spans():
    P = PAGE
    assert _runs([(2 * P, 3 * P), (0, P), (P, 2 * P), (5 * P, 9 * P), (6 * P, 7 * P)]) == \
        [(0, 3 * P), (5 * P, 9 * P)]
    assert _runs([]) == []
