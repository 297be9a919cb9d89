"""D-cache coherency model: what the CPU and the DMA see with and without cache maintenance."""
from __future__ import annotations

import pytest
from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

from duohil.engines.builtin.dcache import DCache
from duohil.engines.builtin.machine import Machine
from duohil.engines.builtin.scheduler import Scheduler
from duohil.engines.builtin.stm32_dma import Stm32Dma
from duohil.engines.builtin.stm32_dmamux import Stm32Dmamux
from duohil.engines.builtin.stm32_usart import Stm32Usart

AXISRAM, SRAM4, FLASH = 0x2400_0000, 0x3800_0000, 0x0800_0000
USART3, DMA1, DMAMUX1 = 0x4000_4800, 0x4002_0000, 0x4002_0800
BUF = AXISRAM + 0x4000                   # 32-byte aligned
CHAR_PS = 10 * (1042 * 10**12 // 120_000_000)


class FakeCpu:
    name = "cpu"

    def __init__(self) -> None:
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.executing = False

    def note_write(self) -> None:
        pass

    def poll_hint(self, addr, wake_ps) -> None:
        pass

    def next_deadline(self, now, quantum):
        return None

    def advance_to(self, t) -> None:
        pass


class FakeMpu:
    """machine.mpu as the SCS model provides it: one non-cacheable window."""

    def __init__(self, nc_base: int, nc_size: int) -> None:
        self.enabled = True
        self.nc = (nc_base, nc_base + nc_size)

    def attributes(self, addr: int) -> tuple[bool, bool]:
        return (not self.nc[0] <= addr < self.nc[1], True)


def make_machine(with_cache: bool = True):
    sched = Scheduler()
    m = Machine("stm32", sched)
    cpu = FakeCpu()
    m.attach_cpu(cpu)
    cache = DCache(m) if with_cache else None      # before the memories, as a platform file may
    m.add_memory("flash", [FLASH], 0x10000)
    m.add_memory("axisram", [AXISRAM], 0x8_0000)
    m.add_memory("sram4", [SRAM4], 0x1_0000)
    return sched, m, cpu, cache


def cpu_read(m, addr, n):
    return bytes(m.cpu.uc.mem_read(addr, n))


def cpu_write(m, addr, data):
    m.cpu.uc.mem_write(addr, bytes(data))


@pytest.fixture
def mc():
    return make_machine()


def test_tracks_only_mapped_dma_srams(mc):
    _, m, _, cache = mc
    assert [(r.name, r.base, r.size) for r in cache.regions] == [
        ("axisram", AXISRAM, 0x8_0000), ("sram4", SRAM4, 0x1_0000)]
    assert m.cache is cache and m.dma_port is cache


def test_coherent_while_dc_off(mc):
    _, m, _, cache = mc
    cpu_write(m, BUF, b"cpu-data")
    assert m.dma_read(BUF, 8) == b"cpu-data"
    m.dma_write(BUF, b"dma-data")
    assert cpu_read(m, BUF, 8) == b"dma-data"
    cache.invalidate(BUF)                             # maintenance with DC=0 changes nothing
    assert cpu_read(m, BUF, 8) == b"dma-data" and cache.stale_lines() == []


def test_stale_read_without_invalidate_fresh_with_it(mc):
    _, m, _, cache = mc
    cpu_write(m, BUF, bytes(64))
    cache.set_enabled(True)
    m.dma_write(BUF, bytes(range(1, 65)))             # two lines
    assert cpu_read(m, BUF, 64) == bytes(64)          # the CPU still sees its cached lines
    assert cache.stale_lines() == [BUF, BUF + 32]
    cache.invalidate(BUF + 0x1F)                      # bits [4:0] ignored: first line only
    assert cpu_read(m, BUF, 64) == bytes(range(1, 33)) + bytes(32)
    cache.invalidate(BUF + 32)
    assert cpu_read(m, BUF, 64) == bytes(range(1, 65))
    assert cache.stale_lines() == []


def test_dma_reads_uncleaned_data_until_clean(mc):
    _, m, _, cache = mc
    cpu_write(m, BUF, b"old-old-")
    cache.set_enabled(True)
    cpu_write(m, BUF, b"NEW-NEW-")                    # write-back cache: RAM keeps the old bytes
    assert m.dma_read(BUF, 8) == b"old-old-"
    cache.clean(BUF)
    assert m.dma_read(BUF, 8) == b"NEW-NEW-"
    assert cache.lines_written_back == 1


def test_clean_of_stale_line_depends_on_cpu_dirtying_it(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    # line A: DMA wrote, CPU did not touch it: a clean keeps the DMA's bytes in RAM
    m.dma_write(BUF, b"A" * 32)
    cache.clean(BUF)
    assert m.dma_read(BUF, 32) == b"A" * 32 and cpu_read(m, BUF, 1) == b"\x00"
    # line B: DMA wrote part of it, the CPU dirtied another part (a misaligned buffer):
    # the clean writes the CPU's whole line back over the DMA's bytes
    m.dma_write(BUF + 32, b"B" * 16)
    cpu_write(m, BUF + 48, b"c" * 16)
    cache.clean(BUF + 32)
    assert m.dma_read(BUF + 32, 32) == bytes(16) + b"c" * 16
    assert cache.stale_lines() == [BUF]
    cache.clean_invalidate(BUF)                       # clean line: refreshed from RAM
    assert cpu_read(m, BUF, 32) == b"A" * 32


def test_invalidate_discards_cpu_writes(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    cpu_write(m, BUF, b"dirty!")
    cache.invalidate(BUF)
    assert cpu_read(m, BUF, 6) == bytes(6)


def test_set_way_burst_acts_once(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    m.dma_write(BUF, b"\x5a" * 8)
    m.dma_write(SRAM4 + 64, b"\xa5" * 8)
    for s in range(128):                              # SCB_InvalidateDCache: 512 DCISW writes
        for w in range(4):
            cache.invalidate_all()
    assert cache.set_way_ops == 512 and cache.set_way_runs == 1
    assert cpu_read(m, BUF, 8) == b"\x5a" * 8 and cpu_read(m, SRAM4 + 64, 8) == b"\xa5" * 8
    assert cache.stale_lines() == []
    # a DMA write inside a burst makes the next set/way write act again
    cache.clean_all()
    m.dma_write(BUF, b"\x11" * 4)
    cache.clean_all()
    cache.clean_all()
    assert cache.set_way_runs == 3
    assert m.dma_read(BUF, 8) == b"\x11" * 4 + b"\x5a" * 4     # clean keeps the DMA's bytes
    assert cpu_read(m, BUF, 4) == b"\x5a" * 4


def test_clean_all_writes_back_cpu_data(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    cpu_write(m, SRAM4 + 0x100, b"tx-frame")
    assert m.dma_read(SRAM4 + 0x100, 8) == bytes(8)
    cache.clean_all()
    assert m.dma_read(SRAM4 + 0x100, 8) == b"tx-frame"


def test_disable_resolves_stale_lines(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    m.dma_write(BUF, b"fresh")
    cpu_write(m, BUF + 64, b"dirty")
    cache.set_enabled(False)
    assert cpu_read(m, BUF, 5) == b"fresh"            # CPU now reads RAM
    assert m.dma_read(BUF + 64, 5) == b"dirty"        # and the dirty line was written back
    m.dma_write(BUF, b"again")
    assert cpu_read(m, BUF, 5) == b"again"


def test_mpu_non_cacheable_region_is_coherent(mc):
    _, m, _, cache = mc
    m.mpu = FakeMpu(AXISRAM + 0x7_0000, 0x1_0000)
    cache.mpu_changed()
    cache.set_enabled(True)
    nc = AXISRAM + 0x7_0000
    m.dma_write(nc, b"nocache")
    assert cpu_read(m, nc, 7) == b"nocache"
    cpu_write(m, nc + 32, b"cpu")
    assert m.dma_read(nc + 32, 3) == b"cpu"
    m.dma_write(BUF, b"cached")                       # outside the window: still stale
    assert cpu_read(m, BUF, 6) == bytes(6)


def test_untracked_memory_is_coherent(mc):
    _, m, _, cache = mc
    cache.set_enabled(True)
    m.dma_write(FLASH + 0x100, b"flash")
    assert cpu_read(m, FLASH + 0x100, 5) == b"flash"


def test_system_reset_leaves_cache_off_and_coherent(mc):
    _, m, cpu, cache = mc
    cpu.reset = lambda: None
    cache.set_enabled(True)
    m.dma_write(BUF, b"before-reset")
    m.system_reset("test")
    assert not cache.enabled
    assert cpu_read(m, BUF, 12) == b"before-reset"


# -- end to end: USART3 RX/TX through DMAMUX1 and DMA1 with the D-cache on ---------------------

def usart_dma_rig():
    sched, m, _cpu, cache = make_machine()
    u = Stm32Usart(m, "usart3", USART3)
    dma = Stm32Dma(m, "dma1", DMA1)
    mux = Stm32Dmamux(m, "dmamux1", DMAMUX1)
    for p in (u, dma, mux):
        m.add_peripheral(p)
    m.finish()
    u.output("ReceiveDmaRequest").connect(mux, 45)
    u.output("TransmitDmaRequest").connect(mux, 46)
    for c in range(8):
        mux.output(c).connect(dma, c)
    sent = []
    u.tx_sink = lambda _u, b, t, bit, n: sent.append(b)
    m.bus_write(USART3 + 0x0C, 4, 1042)
    m.bus_write(USART3 + 0x08, 4, (1 << 6) | (1 << 7))     # DMAR, DMAT
    m.bus_write(USART3 + 0x00, 4, 1 | 4 | 8)
    return sched, m, cache, u, sent


def start_stream(m, n, req, par, mar, ndtr, cr):
    s = DMA1 + 0x10 + 0x18 * n
    m.bus_write(DMAMUX1 + 4 * n, 4, req)
    m.bus_write(s + 8, 4, par)
    m.bus_write(s + 12, 4, mar)
    m.bus_write(s + 4, 4, ndtr)
    m.bus_write(s, 4, cr | 1)


@pytest.mark.parametrize("fix_dcache", [False, True])
def test_rx_buffer_stale_unless_firmware_invalidates(fix_dcache):
    sched, m, cache, u, _ = usart_dma_rig()
    cpu_write(m, BUF, b"\xee" * 32)                   # the firmware's previous frame
    cache.set_enabled(True)
    start_stream(m, 0, 45, USART3 + 0x24, BUF, 32, (1 << 8) | (1 << 10))   # circular, MINC
    for k, b in enumerate(b"frame-2"):
        sched.at((k + 1) * CHAR_PS, u.rx_char, b, False)
    sched.run_until(8 * CHAR_PS)
    assert m.bus_read(DMA1 + 0x14, 4) == 32 - 7       # NDTR: the write position is right
    if fix_dcache:                                    # SCB_InvalidateDCache_by_Addr(BUF, 32)
        cache.invalidate(BUF)
        assert cpu_read(m, BUF, 7) == b"frame-2"
    else:
        assert cpu_read(m, BUF, 7) == b"\xee" * 7     # the parser would read the old frame


@pytest.mark.parametrize("fix_dcache", [False, True])
def test_tx_of_uncleaned_buffer_sends_old_bytes(fix_dcache):
    sched, m, cache, _u, sent = usart_dma_rig()
    cpu_write(m, BUF, b"seq=001")
    cache.set_enabled(True)
    cpu_write(m, BUF, b"seq=002")                     # the new frame, still only in the cache
    if fix_dcache:                                    # SCB_CleanDCache_by_Addr(BUF, 7)
        cache.clean(BUF)
    start_stream(m, 1, 46, USART3 + 0x28, BUF, 7, (1 << 6) | (1 << 10))    # M2P, MINC
    sched.run_until(8 * CHAR_PS)
    assert bytes(sent) == (b"seq=002" if fix_dcache else b"seq=001")
