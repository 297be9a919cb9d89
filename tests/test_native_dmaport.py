"""Specification of machine.py's ``DmaPort``: how a DMA master sees memory when no D-cache model is
installed. It is ``_core.DmaPort`` (native/_core.c), its one implementation.

The rules, checked after every step of Hypothesis programs against a bytearray kept here:
  - ``write(address, data)`` puts ``data`` into the CPU's memory (what a load then reads), from
    Python and through the ports.h capsule called from C (``_native_dma_port``);
  - ``read(address, size)`` gives the memory's bytes; a zero-length access is ``b""`` / nothing,
    wherever it points;
  - an access not wholly inside mapped memory is unicorn's error (``UcError``) and changes nothing
    (uc_mem_write checks the whole range before it copies);
  - the port follows ``machine.cpu``: a machine given another CPU is served from that CPU's memory;
  - every machine gets one as ``machine.dma_port`` at construction.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import UcError

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.machine import DmaPort, Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from model_helpers import FakeCpu

pytestmark = pytest.mark.skipif(native.core() is None, reason=f"no native core: {native.note()}")

RAM, RAM_SIZE = 0x2400_0000, 0x1000
FLASH, FLASH_SIZE = 0x0800_0000, 0x1000


def board():
    m = Machine("stm32", Scheduler())
    m.attach_cpu(FakeCpu())
    m.add_memory("flash", [FLASH], FLASH_SIZE)
    m.add_memory("ram", [RAM], RAM_SIZE)
    return m


def inside(address: int, n: int) -> int | None:
    """The offset into the spec's memory (flash then RAM), None when not wholly mapped."""
    for base, size, off in ((FLASH, FLASH_SIZE, 0), (RAM, RAM_SIZE, FLASH_SIZE)):
        if base <= address and address + n <= base + size:
            return off + address - base
    return None


ADDR = st.one_of(st.integers(RAM - 8, RAM + RAM_SIZE + 8), st.integers(FLASH, FLASH + 0x40),
                 st.integers(RAM, RAM + 0x80), st.just(0x6000_0000))
OP = st.one_of(
    st.tuples(st.just("w"), ADDR, st.binary(max_size=40)),
    st.tuples(st.just("r"), ADDR, st.integers(0, 40)),
    st.tuples(st.just("wc"), ADDR, st.binary(min_size=1, max_size=40), st.integers(1, 3)),
    st.tuples(st.just("rc"), ADDR, st.integers(1, 40), st.integers(1, 3)),
    st.tuples(st.just("cpu"), ADDR, st.binary(min_size=1, max_size=8)),     # a CPU store
)


@settings(max_examples=120, deadline=None)
@given(ops=st.lists(OP, max_size=30))
def test_the_dma_port_reads_and_writes_the_cpus_memory(ops) -> None:
    m = board()
    port = m.dma_port
    assert type(port) is DmaPort and port.machine is m
    loop = native.core().DCache.port_loop          # the capsule, called from C
    spec = bytearray(FLASH_SIZE + RAM_SIZE)
    for i, op in enumerate(ops):
        kind, a = op[0], op[1]
        n = len(op[2]) if isinstance(op[2], bytes) else op[2]
        at = inside(a, n) if n else (0 if kind in ("w", "r") else inside(a, n))
        where = f"step {i} {op}"
        if kind in ("w", "wc", "cpu"):
            data = op[2]
            if at is None:
                with pytest.raises(UcError):
                    if kind == "w":
                        m.dma_write(a, data)
                    elif kind == "wc":
                        loop(port, a, data, op[3])
                    else:
                        m.cpu.uc.mem_write(a, data)
            else:
                if kind == "w":
                    assert m.dma_write(a, bytearray(data)) is None
                elif kind == "wc":
                    loop(port, a, data, op[3])
                else:
                    m.cpu.uc.mem_write(a, data)
                spec[at:at + n] = data
        else:
            if at is None:
                with pytest.raises(UcError):
                    m.dma_read(a, n) if kind == "r" else loop(port, a, n, op[3])
            else:
                got = m.dma_read(a, n) if kind == "r" else loop(port, a, n, op[3])
                assert type(got) is bytes and got == bytes(spec[at:at + n]), where
        # what the CPU sees is the spec's memory, byte for byte
        assert bytes(m.cpu.uc.mem_read(FLASH, FLASH_SIZE)) + bytes(m.cpu.uc.mem_read(RAM, RAM_SIZE)) \
            == bytes(spec), where


def test_the_port_follows_the_machines_cpu() -> None:
    m = board()
    m.dma_write(RAM, b"old cpu")
    m.cpu = FakeCpu()                               # another engine, its memory empty
    m.cpu.uc.mem_map(RAM, RAM_SIZE)
    assert m.dma_read(RAM, 7) == bytes(7)
    m.dma_write(RAM + 1, b"new")
    assert bytes(m.cpu.uc.mem_read(RAM, 4)) == b"\0new"
    with pytest.raises(UcError):
        m.dma_read(FLASH, 1)                        # not mapped in the new engine


def test_a_port_of_ones_own_wraps_the_machines_port() -> None:
    m = board()
    log: list = []

    class Logging:
        def __init__(self, inner) -> None:
            self.inner = inner

        def read(self, address: int, size: int) -> bytes:
            log.append(("r", address, size))
            return self.inner.read(address, size)

        def write(self, address: int, data: bytes) -> None:
            log.append(("w", address, bytes(data)))
            self.inner.write(address, data)

    m.dma_port = Logging(DmaPort(m))
    m.dma_write(RAM + 2, b"hi")
    assert m.dma_read(RAM, 4) == b"\0\0hi" and log == [("w", RAM + 2, b"hi"), ("r", RAM, 4)]
