"""The SoC models a user's own STM32H743 image meets, driven by a purpose-made firmware
(tests/fw/m7/socfw.c) on the full platform (platforms/stm32h743.repl and its builtin overlay):

  - clocks come from the RCC model: a HAL-style 25 MHz HSE / PLL1 400 MHz set-up gives the right
    baud, SysTick rate and instruction rate; an image that never writes RCC runs on HSI 64 MHz and
    its 9600 Bd (BRR for 64 MHz) arrives intact;
  - SYSCFG and FMC answer as a Cube image's SystemInit/SystemClock_Config expect;
  - USART FIFO mode as HAL turns it on;
  - an access to an address no model claims is an event naming the block, in both `unmapped`
    modes, on the M7 and on the RV32 peer.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil.engines.base import PS_PER_MS, PS_PER_S, PS_PER_US
from duohil.engines.builtin import session

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "platforms" / "stm32h743.repl"
ELF = ROOT / "build" / "testfw" / "m7" / "socfw.elf"
DONE = 0xD0E5D0E5
T_HAL_CLOCK, T_RESET_CLOCK, T_SYSCFG_FMC, T_FIFO, T_UNMAPPED_READ, T_UNMAPPED_WRITE, T_POLL_HOLE = \
    range(1, 8)
BUSFAULT = 5
PRECISERR, BFARVALID, IMPRECISERR = 1 << 9, 1 << 15, 1 << 10


class Board:
    """One STM32H743 machine running socfw.elf scenario ``test``; USART3's TX is recorded."""

    def __init__(self, test: int, platform: Path = PLATFORM) -> None:
        require_images("testfw/m7/socfw.elf")
        self.s = session.single(platform, ELF, plant=False)
        self.m = self.s.machine
        self.m.write_memory(self.sym("g_test"), test.to_bytes(4, "little"))
        self.usart3 = self.m.peripherals["usart3"]
        self.sent: list[tuple[int, int, int]] = []          # (byte, t_start_ps, bit_ps)
        self.usart3.tx_sink = lambda _u, b, t, bit, _fb: self.sent.append((b, t, bit))

    def sym(self, name: str) -> int:
        return self.s.image.symbol(name).address

    def code(self, name: str) -> int:
        """A function's address (the Thumb bit dropped)."""
        return self.sym(name) & ~1

    def u32(self, name: str, index: int = 0) -> int:
        return int.from_bytes(self.m.read_memory(self.sym(name) + 4 * index, 4), "little")

    def run_ms(self, ms: float) -> None:
        self.s.run_until(int(ms * PS_PER_MS))

    def inject(self, data: bytes, t0: int, baud: int) -> None:
        """Characters into USART3, 8N1 at ``baud``, stop bits from t0 on."""
        char_ps = 10 * PS_PER_S // baud
        for k, b in enumerate(data):
            self.m.scheduler.at(t0 + (k + 1) * char_ps, self.usart3.rx_char, b)

    def text(self) -> bytes:
        return bytes(b for b, _t, _bit in self.sent)

    def events(self, kind: str) -> list[dict]:
        return [d for _t, k, d in self.s.events() if k == kind]


def user_platform(tmp_path: Path, *lines: str) -> Path:
    """A user's board file that pulls ours in with `using` and adds ``lines``."""
    p = tmp_path / "board.repl"
    p.write_text(f'using "{PLATFORM}"\n' + "".join(line + "\n" for line in lines))
    return p


# -- clocks --------------------------------------------------------------------------------------------
def test_hal_clock_setup_25mhz_hse_pll1_400mhz_gives_baud_systick_and_instruction_rate(tmp_path):
    b = Board(T_HAL_CLOCK, user_platform(tmp_path, "rcc:", "    hseFrequency: 25000000"))
    b.run_ms(50)
    assert b.u32("g_done") == DONE and b.u32("g_out") == 0          # every ready flag came
    assert b.m.cpu.hz == 400_000_000                                # PerformanceInMips 480 caps
    assert b.m.peripherals["nvic"]._st_hz() == 400_000_000
    # USART3 at PCLK1 100 MHz, BRR 868: 115 207 Bd
    assert b.text() == b"HAL400\r\n"
    assert {bit for *_x, bit in b.sent} == {868 * PS_PER_S // 100_000_000}
    # SysTick: RVR for 1 kHz at 400 MHz ticks once per ms (it was 20 % fast when SysTick stayed
    # at the platform's 480 MHz); the first tick is 1 ms after a start a few us into the run
    assert b.u32("g_ticks") == 49
    assert not b.events("warning")


def test_hal_clock_setup_on_a_board_without_hse_frequency_warns_once(tmp_path):
    b = Board(T_HAL_CLOCK, user_platform(tmp_path, "rcc:", "    hseFrequency: empty"))
    b.run_ms(5)
    warnings = b.events("warning")
    assert len(warnings) == 1 and "hseFrequency" in warnings[0]["message"]
    assert b.m.cpu.hz == 64_000_000                                 # PLL1 from a 0 Hz HSE: kept HSI


def test_reset_clocks_hsi_64mhz_9600_baud_arrives_intact_and_echoes():
    b = Board(T_RESET_CLOCK)
    b.run_ms(15)                                                    # 9 characters at 9600 Bd
    assert b.u32("g_done") == DONE
    assert b.m.cpu.hz == 64_000_000                                 # nobody wrote RCC
    bit = 6667 * PS_PER_S // 64_000_000                             # 9599.5 Bd
    assert {x[2] for x in b.sent} == {bit}
    assert abs(bit - PS_PER_S // 9600) / (PS_PER_S // 9600) < 0.001
    assert b.text() == b"HSI9600\r\n"
    t0 = b.m.scheduler.now
    b.inject(b"ping", t0, 9600)
    b.run_ms(30)
    assert b.text() == b"HSI9600\r\nping" and b.u32("g_echoed") == 4
    # SysTick reload for 1 kHz at 64 MHz: one tick per ms on the reset clock
    assert b.u32("g_ticks") == 29


# -- SYSCFG and FMC ------------------------------------------------------------------------------------
def test_systeminit_fmc_store_and_syscfg_pwrcr_and_compensation_cell():
    b = Board(T_SYSCFG_FMC)
    b.run_ms(1)
    assert b.u32("g_done") == DONE
    out = [b.u32("g_out", i) for i in range(8)]
    assert out == [0x30DB, 0x30D2, 0x0FFF_FFFF,                     # FMC BCR1 reset, write kept, BTR1
                   0, 1,                                            # SYSCFG PWRCR.ODEN
                   0, 0x101,                                        # CCCSR.READY follows EN
                   0]                                               # no fault
    assert not b.events("cpu_fault") and not b.events("unmapped_access")


# -- USART FIFO mode -----------------------------------------------------------------------------------
def test_fifo_mode_queues_16_and_rx_threshold_wakes_the_reader():
    b = Board(T_FIFO)
    b.run_ms(3)
    assert b.u32("g_out", 0) == 17                                  # 1 shifting + 16 in the FIFO
    assert b.u32("g_out", 1) == 1
    assert b.text() == b"ABCDEFGHIJKLMNOPQRST"
    times = [t for _b, t, _bit in b.sent]
    char = 10 * (555 * PS_PER_S // 64_000_000)
    assert all(t2 - t1 == char for t1, t2 in zip(times[:17], times[1:17]))   # back to back
    b.inject(b"12345678", b.m.scheduler.now, 115200)
    b.run_ms(6)
    assert b.u32("g_out", 2) == 8 and b.u32("g_done") == DONE
    assert b.text()[20:] == b"87654321"


# -- unmapped addresses ----------------------------------------------------------------------------------
def test_unmapped_read_fault_mode_is_a_precise_busfault_with_a_named_event():
    b = Board(T_UNMAPPED_READ)
    b.run_ms(1)
    assert b.u32("g_done") == DONE and b.u32("g_out", 3) == 4     # 3 hole reads + 1 page read
    assert [b.u32("g_fault", i) for i in range(4)] == [
        BUSFAULT, PRECISERR | BFARVALID, 0x4000_3010, b.code("fault_load")]
    ev = b.events("unmapped_access")
    assert [(e["address"], e["access"], e["block"], e["action"], e["pc"]) for e in ev] == [
        (0x4000_1800, "read", "TIM12", "bus error", b.code("fault_load")),      # hole, TIM6/7 page
        (0x4000_3010, "read", "reserved (D2 APB1)", "bus error", b.code("fault_load"))]
    assert b.m.unmapped == {0x4000_1800: 3, 0x4000_3010: 1}       # one event per address
    assert len(b.events("cpu_fault")) == 4


def test_unmapped_write_fault_mode_is_an_imprecise_busfault():
    b = Board(T_UNMAPPED_WRITE)
    b.run_ms(1)
    assert b.u32("g_done") == DONE and b.u32("g_out", 3) == 2
    assert b.u32("g_fault", 1) == IMPRECISERR
    assert b.u32("g_fault", 3) == b.code("fault_store") + 2        # stacked PC past the store
    ev = b.events("unmapped_access")
    assert [(e["address"], e["access"], e["block"]) for e in ev] == [
        (0x4000_1800, "write", "TIM12"), (0x4000_3010, "write", "reserved (D2 APB1)")]


@pytest.mark.parametrize("test, access, action", [(T_UNMAPPED_READ, "read", "read 0"),
                                                  (T_UNMAPPED_WRITE, "write", "dropped")])
def test_unmapped_warn_mode_reads_zero_drops_writes_and_logs_once(tmp_path, test, access, action):
    b = Board(test, user_platform(tmp_path, "sysbus:", "    unmapped: warn"))
    b.run_ms(1)
    assert b.u32("g_done") == DONE and b.u32("g_faults") == 0
    assert b.u32("g_out", 0) == 0 and b.u32("g_out", 2) == 0
    ev = b.events("unmapped_access")
    assert [(e["address"], e["access"], e["mode"], e["action"]) for e in ev] == [
        (0x4000_1800, access, "warn", action), (0x4000_3010, access, "warn", action)]
    assert not b.events("cpu_fault")
    if test == T_UNMAPPED_READ:
        assert b.m.unmapped[0x4000_1800] == 3


def test_polling_a_hole_in_warn_mode_parks_the_core_and_logs_once(tmp_path):
    b = Board(T_POLL_HOLE, user_platform(tmp_path, "sysbus:", "    unmapped: warn"))
    b.run_ms(10)
    assert b.u32("g_done") == DONE
    ev = b.events("unmapped_access")
    assert [(e["address"], e["block"], e["action"]) for e in ev] == [(0x4000_1818, "TIM12", "read 0")]
    # 10 ms at 64 MHz would be 640 000 instructions of spinning; the core parked after a few reads
    assert b.m.cpu.parked and b.m.cpu.instructions < 64_000
    assert b.m.unmapped[0x4000_1818] < 100


# -- the RV32 peer --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fault", "warn"])
def test_peer_unmapped_access_is_named_in_both_modes(mode):
    from rv_helpers import build_peer, fw_path
    peer = build_peer(fw_path("traps_direct.elf"))
    peer.machine.memory_map = "esp32c3"              # what the platform builder sets for RiscV32
    peer.machine.unmapped_mode = mode
    peer.run_until(lambda: peer.u32("g_stage") == 4, 50 * PS_PER_MS)
    ev = [d for _t, k, d in peer.scheduler.log if k == "unmapped_access"]
    got = [(e["address"], e["access"], e["block"], e["pc"]) for e in ev]
    assert got == [(0x2000_0000, "read", "debug window", peer.sym("site_load")),
                   (0x2000_0004, "write", "debug window", peer.sym("site_store"))]
    assert {e["action"] for e in ev} == ({"bus error"} if mode == "fault" else {"read 0", "dropped"})
    causes = [peer.u32(peer.sym("g_rec") + 20 * i) for i in range(peer.u32("g_nrec"))]
    assert (5 in causes and 7 in causes) == (mode == "fault")       # load/store access faults


def test_peer_hole_in_a_shared_page_faults_at_the_load():
    """RV32 hole (UART0 page, past its 0x100 registers), fault mode: a load access fault with
    mepc at the load and mtval the address, and one event."""
    from rv_helpers import build_peer
    peer = build_peer()
    m, cpu = peer.machine, peer.cpu
    m.memory_map = "esp32c3"
    code = [0x600005B7,                                              # lui a1, 0x60000
            (0x700 << 20) | (11 << 15) | (2 << 12) | (10 << 7) | 0x03,   # lw a0, 0x700(a1)
            0x0000006F]                                              # j . (the trap handler)
    for i, w in enumerate(code):
        m.write_memory(0x4200_0000 + 4 * i, w.to_bytes(4, "little"))
    cpu.reset_pc = 0x4200_0000
    cpu.reset()
    from unicorn import riscv_const as rv
    cpu.uc.reg_write(rv.UC_RISCV_REG_MTVEC, 0x4200_0008)
    peer.scheduler.run_until(20 * PS_PER_US)
    assert (cpu.csr("mcause"), cpu.csr("mepc"), cpu.csr("mtval")) == (5, 0x4200_0004, 0x6000_0700)
    ev = [d for _t, k, d in peer.scheduler.log if k == "unmapped_access"]
    assert [(e["address"], e["block"], e["pc"]) for e in ev] == [(0x6000_0700, "UART0", 0x4200_0004)]
