"""Per-operation cost of the byte path (issue 13, step 3): one byte across the UART link (C, one
copy) into a recording endpoint (tx_sink, the arrival event fired by run_until, rx_char), with and
without a Python tx observer, and the peer ESP32-C3 UART's FIFO read, rx_char and STATUS read
through the model's own read (C, one copy). Process CPU time, best of 3.

    .venv/bin/python tools/bench_byte_path.py
"""
from __future__ import annotations

import time

from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
from duohil.engines.builtin.board.link import UartLink
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler

BT = 8_680_469


class Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tx_sink = None
        self.got: list[int] = []

    def rx_char(self, b: int, fe: bool = False) -> None:
        self.got.append(b)

    def bit_time_ps(self) -> int:
        return BT


def link_byte(n: int = 20000, observer: bool = False) -> float:
    s = Scheduler()
    a, b = Endpoint("a"), Endpoint("b")
    link = UartLink(s, a, b)
    if observer:
        link.add_tx_observer(lambda d, k, byte, t: None)
    sink = a.tx_sink
    t0 = time.process_time()
    for i in range(n):
        now = s.now
        sink(a, i & 0xFF, now, BT, 10)
        s.run_until(now + 10 * BT)
    dt = time.process_time() - t0
    assert len(b.got) == n
    return dt / n * 1e9


def peer_fifo(n: int = 128 * 200) -> tuple[float, float, float]:
    s = Scheduler()
    m = Machine("peer", s)
    u = ESP32C3Uart(m, "u", 0)
    m.add_peripheral(u)
    rd, rx = u.read, u.rx_char
    t_read = t_rx = 0.0
    for _ in range(n // 128):
        t0 = time.process_time()
        for i in range(128):
            rx(i)
        t1 = time.process_time()
        for i in range(128):
            rd(0, 4)
        t2 = time.process_time()
        t_rx += t1 - t0
        t_read += t2 - t1
    t0 = time.process_time()
    for i in range(n):
        rd(0x1C, 4)                                   # STATUS: a poll
    t_st = time.process_time() - t0
    return t_read / n * 1e9, t_rx / n * 1e9, t_st / n * 1e9


def best(f, *a, k=3, **kw):
    rs = [f(*a, **kw) for _ in range(k)]
    if isinstance(rs[0], tuple):
        return tuple(min(r[i] for r in rs) for i in range(len(rs[0])))
    return min(rs)


def main() -> None:
    print("one byte across the link (tx_sink + arrival event + rx_char): %.0f ns, with a Python tx "
          "observer %.0f ns" % (best(link_byte), best(link_byte, observer=True)))
    r, x, st = best(peer_fifo)
    print(f"ESP32-C3 UART (C): FIFO read {r:.0f} ns, rx_char {x:.0f} ns, STATUS read {st:.0f} ns")


if __name__ == "__main__":
    main()
