"""The native link's tap log keeps the rows it has read (a run's result reads them four to six
times): cached and streamed reads must give the same rows, in order, while the log grows between
reads and past the cache's cap."""
from __future__ import annotations

import pytest

from duohil.engines.builtin import native
from duohil.engines.builtin.board import link as linkmod
from duohil.engines.builtin.board.link import LinkFault, UartLink
from duohil.engines.builtin.kernel.scheduler import Scheduler

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

BT = 8_680_469


class End:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tx_sink = None

    def rx_char(self, byte: int, framing: bool = False) -> None:
        pass

    def bit_time_ps(self) -> int:
        return BT


def test_cached_and_streamed_taps_are_the_same_rows(monkeypatch):
    monkeypatch.setattr(linkmod._TapLog, "_CACHE_ROWS", 7)     # the cap falls mid-run
    sched = Scheduler()
    a, b = End("a"), End("b")
    link = UartLink(sched, a, b, seed=5)
    taps = link.taps
    assert isinstance(taps, linkmod._TapLog)
    fresh = linkmod._TapLog(taps._c, taps._names)              # never caches
    fresh._CACHE_ROWS = 0
    link.add_fault("a->b", LinkFault("flip", index=2, mask=0x01))
    link.add_fault("b->a", LinkFault("drop", index=1))
    seen = []
    for k in range(12):
        t = sched.now
        a.tx_sink(a, 0x40 + k, t, BT, 10)
        b.tx_sink(b, 0x80 + k, t, BT, 10)
        sched.run_until(t + 11 * BT)
        seen.append(list(taps[: len(taps)]))                         # reads while it grows
        assert list(taps) == list(fresh)
    rows = list(fresh)
    assert len(rows) == 24 and len(taps._cache) == 7                 # cached up to the cap only
    assert [len(s) for s in seen] == list(range(2, 26, 2))
    assert seen[-1] == rows and all(s == rows[: len(s)] for s in seen)
    assert taps[2:8] == rows[2:8] and taps[0:7] == rows[0:7]        # at and across the cap
    assert taps[3:19] == rows[3:19] and taps[5:2] == [] and taps[::5] == rows[::5]
    assert taps[-1] == rows[-1] and taps[6] == rows[6] and taps[7] == rows[7]
    # the faults are in the rows, cached or not
    flipped = [r for r in rows if r.direction == "a->b" and r.fault]
    dropped = [r for r in rows if r.direction == "b->a" and r.value is None]
    assert [(r.value, r.sent) for r in flipped] == [(0x43, 0x42)] and len(dropped) == 1
    assert taps == fresh
    # the plain rows the engine's own readers walk (no LinkByte made): the same fields, in order,
    # whole or in chunks, and base.link_rows gives them for the log and for a list of LinkBytes
    from duohil.engines.base import link_rows
    fields = [(r.t_ps, r.direction, r.value, r.sent, r.fault) for r in rows]
    monkeypatch.setattr(linkmod._TapLog, "_CHUNK", 5)                # rows() crosses chunks
    monkeypatch.setattr(linkmod._TapLog, "_PLAIN_ROWS", 9)           # and the tuples' cap
    assert list(taps.rows()) == fields and list(fresh.rows()) == fields
    assert len(taps._plain) == 9 and taps.chunk(7, 12) == fields[7:12]   # across the cap
    assert taps.chunk(3, 11) == fields[3:11] and taps.chunk(20, 99) == fields[20:]
    assert list(link_rows(taps)) == fields and list(link_rows(rows)) == fields


def test_fingerprint_is_the_same_whether_link_chunks_are_kept_or_encoded_twice(monkeypatch):
    from duohil.bench import CORES, PRODUCT
    from duohil.engines.base import PS_PER_MS, MachineSpec, RunSpec
    from duohil.engines.builtin import session as sessmod
    spec = RunSpec(stm32=MachineSpec(CORES["m7"], PRODUCT[0], "g_config"),
                   peer=MachineSpec(CORES["rv"], PRODUCT[1], "g_peer_config"))
    s = sessmod.BuiltinEngine().start(spec)
    s.run_until(250 * PS_PER_MS)
    monkeypatch.setattr(sessmod, "_FP_CHUNK", 64)        # several chunks of the ~700 rows
    assert len(s.link.taps) > 3 * 64
    kept = s.fingerprint()
    monkeypatch.setattr(sessmod, "_FP_KEEP_ROWS", 0)
    assert s.fingerprint() == kept
    monkeypatch.setattr(sessmod, "_FP_CHUNK", 4096)
    assert s.fingerprint() == kept                       # the chunking is not in the hash
