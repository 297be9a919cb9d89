"""RV32 core, CLINT and PLIC of the builtin engine, driven by purpose-made firmwares (tests/fw/rv).

The firmwares record {mcause, mepc, mtval, vector slot, aux} in RAM for every trap; the faulting
sites carry ELF symbols (site_*), so each check compares what the core did with the ELF.
"""
from __future__ import annotations

import hashlib
import itertools
import time

import pytest
from rv_helpers import build_peer, fw_path

from duohil.engines.base import PS_PER_MS, PS_PER_S, PS_PER_US

MCAUSE_INT = 0x8000_0000
DIRECT = 0xFFFF_FFFF          # slot recorded by trap_entry (direct mode)
WFI = 0x1050_0073
REC_WORDS = 5


def records(peer) -> list[tuple[int, ...]]:
    base = peer.sym("g_rec")
    return [tuple(peer.u32(base + 4 * REC_WORDS * i, k) for k in range(REC_WORDS))
            for i in range(peer.u32("g_nrec"))]


def run_trap_firmware(elf: str, exact_unmask: bool = False):
    peer = build_peer(fw_path(elf), exact_unmask=exact_unmask)
    assert peer.run_until(lambda: peer.u32("g_stage") == 4, 50 * PS_PER_MS), "firmware never armed the PLIC"
    t_pulse = peer.scheduler.now + 3 * PS_PER_US

    def pulse() -> None:                               # an edge: latched as pending by the gateway
        peer.plic.set_input(5, True)
        peer.plic.set_input(5, False)

    peer.scheduler.at(t_pulse, pulse)
    assert peer.run_until(lambda: peer.u32("g_done") == 0x600D, 50 * PS_PER_MS)
    return peer, records(peer)


@pytest.mark.parametrize("exact", [False, True], ids=["slice_unmask", "exact_unmask"])
@pytest.mark.parametrize("elf,vectored", [("traps_direct.elf", False), ("traps_vectored.elf", True)])
def test_every_trap_path_records_architectural_state(elf, vectored, exact):
    peer, rec = run_trap_firmware(elf, exact)
    s = peer.sym
    exc_slot = 0 if vectored else DIRECT

    def slot(code: int) -> int:
        return code if vectored else DIRECT

    assert len(rec) == 11, rec
    # synchronous exceptions: (mcause, mepc, mtval), always through the mtvec base
    assert rec[0][:4] == (11, s("site_ecall"), 0, exc_slot)                        # ECALL from M
    assert rec[1][:4] == (2, s("site_illegal32"), 0xFFFF_FFFF, exc_slot)           # illegal, 32-bit
    assert rec[2][:4] == (2, s("site_illegal16"), 0x0000, exc_slot)                # illegal, 16-bit
    assert rec[3][:4] == (3, s("site_ebreak"), s("site_ebreak"), exc_slot)         # (C.)EBREAK
    assert rec[4][:4] == (5, s("site_load"), 0x2000_0000, exc_slot)                # load access fault
    assert rec[5][:4] == (7, s("site_store"), 0x2000_0004, exc_slot)               # store access fault
    assert peer.u32("g_loaded") == 0x5A5A5A5A          # the faulting load did not write rd
    # MSI raised by the firmware's own msip store: taken right after the store, store done once
    assert rec[6][:4] == (MCAUSE_INT | 3, s("site_after_msip"), 0, slot(3))
    # the handler left it pending once, so it comes again after mret; then it is raised while
    # masked and unmasked by csrsi mstatus. exact_unmask: right after the mret / the csrsi;
    # otherwise at the next slice boundary, here the WFI that follows in wait_records()
    for r in rec[7:9]:
        assert (r[0], r[2], r[3]) == (MCAUSE_INT | 3, 0, slot(3))
    if exact:
        assert rec[7][1] == s("site_after_msip") and rec[8][1] == s("site_after_unmask")
    else:
        assert peer.u32(rec[7][1] - 4) == WFI and peer.u32(rec[8][1] - 4) == WFI
    # MTI taken from WFI: mepc is the instruction after the WFI
    assert rec[9][0] == MCAUSE_INT | 7 and rec[9][3] == slot(7)
    assert peer.u32(rec[9][1] - 4) == WFI
    # MEI through the PLIC: the handler claimed source 5
    assert rec[10][0] == MCAUSE_INT | 11 and rec[10][3] == slot(11) and rec[10][4] == 5
    assert peer.plic.pending == 0 and peer.plic.in_flight == 0 and peer.plic.bad_completions == 0
    # csrr time == mtime read through MMIO in the same slice (16 MHz, from virtual time)
    assert peer.u32("g_time_csr") == peer.u32("g_time_mmio")
    assert peer.u32("g_time_csr_hi") == 0
    # cycle counters come from the core's own cycle count (160 MHz = 10 x mtime), not the host
    cycles = 10 * peer.u32("g_time_mmio")
    assert [peer.u32(n) for n in ("g_mcycle", "g_cycle", "g_minstret", "g_pccr")] == [cycles] * 4
    assert peer.u32("g_mcycleh") == 0
    assert len(peer.cpu.counter_sites) == 4
    assert peer.cpu.exceptions_taken == 6 and peer.cpu.interrupts_taken == 5


def test_mtvec_vectored_table_is_used():
    peer, _ = run_trap_firmware("traps_vectored.elf")
    assert peer.cpu.csr("mtvec") == peer.sym("vector_table") | 1


def test_timer_interrupt_fires_at_mtimecmp_time():
    """The MTI event fires at the first picosecond where mtime >= mtimecmp (16 MHz ticks)."""
    peer = build_peer(fw_path("idle.elf"), quantum_ps=PS_PER_US)
    seen: list[int] = []

    class Probe:                                          # a second sink on the MTIP wire
        def set_input(self, line: int, level: bool) -> None:
            if level:
                seen.append(peer.scheduler.now)

    peer.clint.output(1).connect(Probe(), 0)
    peer.scheduler.run_until(10 * PS_PER_MS + PS_PER_US)
    assert peer.u32("g_idle") == 10
    # first compare = mtime at boot (tick 0..few) + 16000 ticks; every later one 1 ms apart exactly
    assert all(b - a == PS_PER_MS for a, b in itertools.pairwise(seen))
    assert seen[0] % (PS_PER_S // 16_000_000) == 0


def test_idle_second_at_1khz_is_cheap():
    peer = build_peer(fw_path("idle.elf"))
    peer.scheduler.run_until(PS_PER_MS)
    t0 = time.perf_counter()
    peer.scheduler.run_until(PS_PER_S + PS_PER_MS)
    wall = time.perf_counter() - t0
    assert peer.u32("g_idle") == 1000                  # ticks
    assert peer.u32("g_idle", 1) == 1000               # wake-ups from WFI
    assert peer.u32("g_idle", 2) == 0                  # no unexpected trap
    assert peer.cpu.interrupts_taken == 1000
    print(f"\n1 s virtual idle at 1 kHz: {wall * 1000:.1f} ms wall, "
          f"{wall / 1000 * 1e6:.0f} us per tick (interrupt entry + ISR + WFI)")
    assert wall < 1.0, "idle skipping is not working"


def test_busy_firmware_keeps_ticking_and_is_deterministic():
    digests = []
    for _ in range(2):
        peer = build_peer(fw_path("busy.elf"))
        peer.scheduler.run_until(20 * PS_PER_MS)
        assert peer.u32("g_busy") == 20                 # ticks while CPU-bound
        assert peer.u32("g_busy", 1) > 100              # CRC rounds
        assert peer.u32("g_busy", 3) == 0
        ram = peer.machine.read_memory(0x3FC8_0000, 0x6_0000)
        digests.append(hashlib.sha256(ram).hexdigest())
    assert digests[0] == digests[1]


def test_wfi_without_enabled_interrupt_sleeps_until_one_is():
    peer = build_peer(fw_path("idle.elf"))
    peer.scheduler.run_until(5 * PS_PER_MS + 100 * PS_PER_US)      # tick 5 handled, back in WFI
    assert peer.cpu.sleeping
    slices = peer.cpu.slices
    peer.scheduler.run_until(5 * PS_PER_MS + 999 * PS_PER_US)      # before the next tick
    assert peer.cpu.slices == slices                                # asleep: no code ran


# -- CLINT and PLIC from Python ---------------------------------------------------------------------
CLINT, PLIC = 0x0200_0000, 0x0C00_0000


def test_clint_mtime_follows_virtual_time_and_is_writable():
    peer = build_peer()
    m = peer.machine
    peer.scheduler.run_until(PS_PER_MS)
    assert m.bus_read(CLINT + 0xBFF8, 4) == 16_000
    m.bus_write(CLINT + 0xBFF8, 4, 0xFFFF_FFF0)
    peer.scheduler.run_until(2 * PS_PER_MS)
    assert m.bus_read(CLINT + 0xBFF8, 4) == (0xFFFF_FFF0 + 16_000) & 0xFFFF_FFFF
    assert m.bus_read(CLINT + 0xBFFC, 4) == 1                       # carried into the high word


def test_clint_msip_and_mtip_drive_cpu_mip():
    peer = build_peer()
    m, cpu = peer.machine, peer.cpu
    m.bus_write(CLINT + 0x0, 4, 1)
    assert cpu.mip == 1 << 3
    m.bus_write(CLINT + 0x0, 4, 0)
    m.bus_write(CLINT + 0x4004, 4, 0)
    m.bus_write(CLINT + 0x4000, 4, 160)                              # 10 us at 16 MHz
    assert cpu.mip == 0
    peer.scheduler.run_until(10 * PS_PER_US - 1)
    assert cpu.mip == 0
    peer.scheduler.run_until(10 * PS_PER_US)
    assert cpu.mip == 1 << 7
    m.bus_write(CLINT + 0x4004, 4, 0xFFFF_FFFF)                      # compare far away: MTIP drops
    assert cpu.mip == 0


def test_plic_priority_threshold_claim_complete_and_level_repend():
    peer = build_peer()
    m, plic, cpu = peer.machine, peer.plic, peer.cpu
    claim = PLIC + 0x20_0004
    m.bus_write(PLIC + 0x2000, 4, (1 << 3) | (1 << 9))               # enable sources 3 and 9
    m.bus_write(PLIC + 4 * 3, 4, 2)
    m.bus_write(PLIC + 4 * 9, 4, 5)
    plic.set_input(3, True)
    plic.set_input(9, True)
    assert m.bus_read(PLIC + 0x1000, 4) == (1 << 3) | (1 << 9)       # pending array
    assert cpu.mip == 1 << 11
    m.bus_write(PLIC + 0x20_0000, 4, 5)                              # threshold 5 masks both
    assert cpu.mip == 0 and m.bus_read(claim, 4) == 0
    m.bus_write(PLIC + 0x20_0000, 4, 4)                              # 9 (prio 5) passes, 3 not
    assert cpu.mip == 1 << 11
    assert m.bus_read(claim, 4) == 9
    assert cpu.mip == 0                                              # 3 still below threshold
    m.bus_write(claim, 4, 9)                                         # complete, line still high
    assert m.bus_read(PLIC + 0x1000, 4) & (1 << 9)                   # level: pending again
    assert m.bus_read(claim, 4) == 9
    plic.set_input(9, False)
    m.bus_write(claim, 4, 9)
    assert not m.bus_read(PLIC + 0x1000, 4) & (1 << 9)
    m.bus_write(PLIC + 0x20_0000, 4, 0)
    assert m.bus_read(claim, 4) == 3
    m.bus_write(claim, 4, 7)                                         # not in flight: ignored
    assert plic.bad_completions == 1


def test_plic_ties_go_to_lowest_id_and_priority_zero_never_fires():
    peer = build_peer()
    m, plic = peer.machine, peer.plic
    m.bus_write(PLIC + 0x2000, 4, 0xFFFF_FFFE)
    m.bus_write(PLIC + 4 * 7, 4, 0)
    for src in (12, 7, 4):
        plic.set_input(src, True)
    assert m.bus_read(PLIC + 0x20_0004, 4) == 4
    assert m.bus_read(PLIC + 0x20_0004, 4) == 12
    assert m.bus_read(PLIC + 0x20_0004, 4) == 0                       # 7 has priority 0
    assert peer.cpu.mip == 0


# -- firmware + UART + PLIC + link, end to end -----------------------------------------------------
def test_uart_echo_firmware_over_the_link():
    """uart_echo.elf: RX interrupts (RXFIFO_FULL at 16, RXFIFO_TOUT after 10 idle bit times)
    through PLIC source 22 -> MEI; the ISR echoes every byte. The host side is a second UART."""
    from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
    from duohil.engines.builtin.board.link import ConsoleSink, UartLink
    from duohil.engines.builtin.kernel.machine import Machine

    peer = build_peer(fw_path("uart_echo.elf"))
    host_m = Machine("stm32", peer.scheduler)
    host = ESP32C3Uart(host_m, "host", 0x6000_0000)
    host_m.add_peripheral(host)
    host_m.bus_write(0x6000_0078, 4, (1 << 20) | (1 << 22) | (1 << 24) | (1 << 25))
    host_m.bus_write(0x6000_0014, 4, 694 | (7 << 20))
    link = UartLink(peer.scheduler, host, peer.uart1, names=("stm32", "peer"))
    console = ConsoleSink(peer.uart0, "peer")
    data = bytes(range(0x20, 0x20 + 40))
    char = 10 * host.bit_time_ps()

    def send() -> None:
        for b in data:
            host_m.bus_write(0x6000_0000, 4, b)

    peer.scheduler.at(2 * PS_PER_MS, send)
    peer.scheduler.run_until(12 * PS_PER_MS)
    assert [line.text for line in console.lines] == ["BOOT uart_echo", "READY"]
    assert console.lines[0].t_ps == 16 * char              # 16 characters at 115200 from t = 0
    irqs, full, tout, ovf, frm, rx, tx, other = (peer.u32("g_echo", i) for i in range(8))
    assert (full, tout, ovf, frm, other) == (2, 1, 0, 0, 0) and irqs == 3
    assert rx == tx == 40
    sent = link.bytes("stm32->peer")
    back = link.bytes("peer->stm32")
    assert bytes(b.value for b in back) == data
    # the first echo leaves once 16 bytes are in (RXFIFO_FULL), so it arrives >= 1 char later
    assert back[0].t_ps >= sent[15].t_ps + char
    # the last 8 bytes wait for the RX timeout: 10 idle bit times after the 40th byte
    assert back[32].t_ps >= sent[39].t_ps + 10 * host.bit_time_ps() + char
