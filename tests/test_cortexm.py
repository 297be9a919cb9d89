"""Cortex-M7 core and SCS of the builtin engine, driven by purpose-made firmwares (tests/fw/m7).

m7test.elf runs one scenario per value of its `.config` word ``g_test`` and records what the
firmware itself observed (EXC_RETURN in LR, stacked frames, CFSR/HFSR/BFAR/MMFAR, VECTACTIVE...)
in ``g_out``/``g_log``; each test compares those with the architectural values and with the ELF
(fault sites carry symbols). Fault records are 8 words at g_out[32 + 8k]:
{exception, CFSR, HFSR, BFAR, MMFAR, stacked PC, EXC_RETURN, SHCSR}.
"""
from __future__ import annotations

import hashlib
import struct
import time

import pytest
from builtin_helpers import TESTFW_M7, build_m7

from duohil.engines.base import PS_PER_MS, PS_PER_S, PS_PER_US
from duohil.engines.builtin.cpus.m7.nvic import (CCSIDR_DCACHE, CCSIDR_ICACHE, CLIDR_M7, CPUID_M7_R1P1,
                                         CTR_M7)

DONE = 0xD0E5D0E5
(T_NEST, T_TAIL, T_MASK, T_PRIGROUP, T_FP, T_BUSFAULT, T_USAGE, T_SVC_PENDSV, T_PSP, T_RESET,
 T_MPU, T_MPU_COST, T_LOOP_BASE, T_LOCKUP, T_VTOR, T_SYSTICK, T_WFE_BKPT) = range(1, 18)
HFSR_FORCED = 1 << 30
PRECISERR, IMPRECISERR, BFARVALID = 1 << 9, 1 << 10, 1 << 15
DACCVIOL, IACCVIOL, MMARVALID = 1 << 1, 1 << 0, 1 << 7
UNDEFINSTR, INVSTATE = 1 << 16, 1 << 17


def fw(name: str):
    path = TESTFW_M7 / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make -C tests/fw` first")
    return path


def scenario(test: int, limit_ms: int = 50):
    b = build_m7(fw("m7test.elf"), config={"g_test": test})
    done = b.run_until(lambda: b.u32("g_done") == DONE or b.cpu.halted, limit_ms * PS_PER_MS,
                       PS_PER_MS)
    assert done, f"scenario {test} did not finish (pc {b.cpu.pc():#x})"
    return b


def out(b, n: int = 96) -> list[int]:
    return b.words("g_out", n)


def log(b) -> list[int]:
    return b.words("g_log", min(32, b.u32("g_nlog")))


def faults(b) -> list[dict[str, int]]:
    o = out(b)
    keys = ("exc", "cfsr", "hfsr", "bfar", "mmfar", "pc", "exc_return", "shcsr")
    return [dict(zip(keys, o[32 + 8 * k: 40 + 8 * k])) for k in range(b.u32("g_faults"))]


def in_function(b, addr: int, name: str) -> bool:
    s = b.image.symbol(name)
    return s.address & ~1 <= addr < (s.address & ~1) + s.size


# ---- exceptions -------------------------------------------------------------------------------------
def test_nested_preemption_by_priority_stacks_correct_frames():
    b = scenario(T_NEST)
    o = out(b)
    assert o[0] == 0, "r0-r3, r12 or lr came back wrong after the exception return"
    assert o[1] == 0xF8000000, "APSR flags (NZCVQ) not restored"
    # IRQ0 (prio 0xC0) from thread, IRQ1 (0x80) preempts it, IRQ2 (0x40) preempts IRQ1
    assert log(b) == [0x110, 0x111, 0x112, 0x212, 0x211, 0x210]
    assert o[2] == 0xFFFFFFF9                      # IRQ0 interrupted thread mode, MSP
    assert o[3] & 0x1FF == 0 and o[3] & (1 << 24)  # stacked xPSR: thread, T bit
    assert o[3] >> 27 == 0x1F                      # flags NZCVQ as set by the thread
    assert o[4] == 0xFFFFFFF1 and o[7] == 0xFFFFFFF1   # nested: handler mode, MSP
    assert o[5] & 0x1FF == 16 and o[8] & 0x1FF == 17   # stacked IPSR = the preempted IRQ
    # stacked PC: the instruction after the STIR store inside the preempted handler
    assert in_function(b, o[6], "irq_c") and in_function(b, o[11], "irq_c")
    assert o[9] & 0x1FF == 18                      # ICSR.VECTACTIVE in IRQ2
    assert o[10] == 0b111                          # IABR0: IRQ0, 1, 2 active
    assert b.nvic.active == 0 and not b.nvic.stack


def test_tail_chaining_runs_no_thread_instruction_between_handlers():
    b = scenario(T_TAIL)
    o = out(b)
    assert log(b) == [0x113, 0x114, 0x115]
    assert o[4] == 0, "IRQ4 (same priority) must not preempt IRQ3"
    # the thread increments g_progress in a loop: tail-chained handlers all see the same value
    assert o[1] == o[5] == o[9] == 0
    assert o[2] == o[6], "tail-chained handler must reuse the frame (same MSP)"
    assert o[3] == o[7] == o[10] == 0xFFFFFFF9      # same EXC_RETURN handed on
    assert o[11] == 3000


def test_primask_and_basepri_mask_and_wfi_wakes_with_primask_set():
    b = build_m7(fw("m7test.elf"), config={"g_test": T_MASK})
    assert b.run_until(lambda: b.u32("g_out", 10) == 0xAAAA, 50 * PS_PER_MS, PS_PER_US * 100)
    b.scheduler.run_for(2 * PS_PER_MS)
    assert b.cpu.sleeping and b.u32("g_out", 11) == 0         # WFI, nothing pending
    b.nvic.set_input(6, True)                                   # an edge on IRQ6
    b.nvic.set_input(6, False)
    assert b.run_until(lambda: b.u32("g_done") == DONE, 50 * PS_PER_MS, PS_PER_MS)
    o = out(b)
    assert o[1] == 0, "IRQ taken with PRIMASK set"
    assert o[2] == 16 and o[3] == 1 and o[4] == 1   # VECTPENDING, ISPR, PRIMASK read back
    assert o[5] == 1                                # taken once unmasked (CPSIE)
    assert o[6] == 0 and o[7] == 1, "BASEPRI 0x40 must block 0x80 and let 0x20 through"
    assert o[8] == 0x40 and o[9] == 1
    assert o[11] == 0, "WFI woke up and the masked IRQ was not taken"
    assert o[12] == 1 << 6 and o[13] == 1


def test_prigroup_splits_group_and_subpriority():
    b = scenario(T_PRIGROUP)
    assert out(b)[2] == 0xFA050500                  # AIRCR reads VECTKEYSTAT and PRIGROUP 5
    assert log(b) == [
        0x110, 0x210, 0x111, 0x211,                 # PRIGROUP 5: 0x40/0x50 same group, no preemption
        0xAAA,
        0x111, 0x211, 0x110, 0x210,                 # both pending: subpriority picks IRQ1 first
        0xBBB,
        0x110, 0x111, 0x211, 0x210,                 # PRIGROUP 0: IRQ1 (0x40) preempts IRQ0 (0x50)
    ]


def test_fp_handler_preempted_keeps_fp_registers_with_extended_frames():
    b = scenario(T_FP)
    o = out(b)
    thread_in = b.words("fp_thread_in", 17)
    irq_in = b.words("fp_irq_in", 17)
    assert b.words("g_fp_thread_out", 17) == thread_in, "thread s0-s15/FPSCR corrupted"
    assert b.words("g_fp_irq_out", 17) == irq_in, "preempted FP handler's registers corrupted"
    assert o[1] == 0xFFFFFFE9                       # thread used FP: extended frame, thread/MSP
    assert o[2] & 4 == 0                            # CONTROL.FPCA cleared on entry
    assert o[4] == 0xFFFFFFE1                       # FP handler preempted: extended, handler
    assert o[3] & 4 and o[5] & 4                    # FPCA restored by both returns
    frame = b.words("g_fp_frame", 26)
    assert frame[8:25] == thread_in                 # S0-S15 and FPSCR stacked (eagerly)


# ---- faults -----------------------------------------------------------------------------------------
def test_unmapped_load_is_a_precise_busfault_escalated_when_disabled():
    b = scenario(T_BUSFAULT)
    f = faults(b)
    site = b.sym("fault_load_insn")
    assert out(b)[:3] == [0xBADBAD] * 3
    # BusFault disabled: HardFault, HFSR.FORCED, CFSR.PRECISERR|BFARVALID, BFAR = the address
    assert f[0] == dict(exc=3, cfsr=PRECISERR | BFARVALID, hfsr=HFSR_FORCED, bfar=0x60000000,
                        mmfar=0, pc=site, exc_return=0xFFFFFFF9, shcsr=0)
    # BusFault enabled: its own handler, no HFSR bit
    assert f[1]["exc"] == 5 and f[1]["cfsr"] == PRECISERR | BFARVALID and f[1]["hfsr"] == 0
    assert f[1]["bfar"] == 0x60000010 and f[1]["pc"] == site
    assert f[1]["shcsr"] == (1 << 17) | (1 << 1)    # BUSFAULTENA, BUSFAULTACT
    # enabled but PRIMASK set: cannot preempt -> HardFault FORCED
    assert f[2]["exc"] == 3 and f[2]["hfsr"] == HFSR_FORCED and f[2]["bfar"] == 0x60000020
    # store to unmapped memory: imprecise (buffered store), BFAR not valid, PC past the store
    assert f[3]["exc"] == 5 and f[3]["cfsr"] == IMPRECISERR
    assert f[3]["pc"] == b.sym("fault_store_insn") + 2
    kinds = [d for t, k, d in b.scheduler.log if k == "cpu_fault"]
    assert [d["taken_as"] for d in kinds[:3]] == [3, 5, 3]


def test_udf_and_invstate_are_usage_faults():
    b = scenario(T_USAGE)
    f = faults(b)
    assert len(f) == 3
    assert f[0]["exc"] == 6 and f[0]["cfsr"] == UNDEFINSTR and f[0]["hfsr"] == 0
    assert f[0]["pc"] == b.sym("do_udf_insn")
    assert f[1]["exc"] == 6 and f[1]["cfsr"] == INVSTATE and f[1]["pc"] == b.sym("invstate_target")
    assert f[2]["exc"] == 3 and f[2]["cfsr"] == UNDEFINSTR and f[2]["hfsr"] == HFSR_FORCED


def test_fault_in_hardfault_handler_locks_up():
    b = scenario(T_LOCKUP)
    assert b.cpu.halted and b.cpu.halt_reason == "lockup"
    assert faults(b)[0]["exc"] == 3
    assert [k for _t, k, _d in b.scheduler.log].count("lockup") == 1
    t = b.scheduler.now
    b.scheduler.run_for(PS_PER_MS)                  # a locked-up core stays halted
    assert b.cpu.halted and b.scheduler.now == t + PS_PER_MS


def test_mpu_no_access_read_only_xn_and_a_32_byte_guard():
    b = scenario(T_MPU)
    o = out(b)
    f = faults(b)
    assert o[0] == 0xBADBAD and o[1] == 0 and o[2] == 0x77 + 0x88 and o[3] == 0xBADBAD
    assert o[4] == 0xBADBAD and o[5] == 0 and o[6] == 5
    guard, ro, small = b.sym("g_guard"), b.sym("g_ro"), b.sym("g_small")
    load, store = b.sym("fault_load_insn"), b.sym("fault_store_insn")
    mm = DACCVIOL | MMARVALID
    assert f[0] == dict(exc=4, cfsr=mm, hfsr=0, bfar=0, mmfar=guard + 12, pc=load,
                        exc_return=0xFFFFFFF9, shcsr=(1 << 16) | 1)
    assert (f[1]["exc"], f[1]["cfsr"], f[1]["mmfar"], f[1]["pc"]) == (4, mm, ro + 24, store)
    assert (f[2]["exc"], f[2]["cfsr"], f[2]["mmfar"]) == (4, mm, small + 32 + 8)
    assert (f[3]["exc"], f[3]["cfsr"], f[3]["pc"]) == (4, IACCVIOL, b.sym("g_ramfn"))
    assert (f[4]["exc"], f[4]["cfsr"], f[4]["hfsr"]) == (3, mm, HFSR_FORCED)
    assert b.u32(ro + 24) == 0, "a store to a read-only region must not land"
    mpu = b.machine.mpu
    assert not mpu.enabled and mpu.attributes(guard) == (True, True)


def test_mpu_attributes_and_32_byte_guard_cost():
    b = scenario(T_MPU_COST)
    mpu = b.machine.mpu
    assert mpu.enabled
    assert mpu.attributes(b.sym("g_small") + 32) == (False, False)     # TEX=001 NC, AP=0
    assert mpu.attributes(b.sym("g_small")) == (True, True)            # background: default map
    assert mpu.attributes(0x4000_0000) == (False, True)                # peripherals: device
    walls = {}
    for t in (T_MPU_COST, T_LOOP_BASE):
        best = 1e9
        for _ in range(3):
            bb = build_m7(fw("m7test.elf"), config={"g_test": t})
            t0 = time.perf_counter()
            assert bb.run_until(lambda: bb.u32("g_done") == DONE, 10 * PS_PER_MS, PS_PER_MS)
            best = min(best, time.perf_counter() - t0)
        walls[t] = best
    extra_ns = (walls[T_MPU_COST] - walls[T_LOOP_BASE]) / 100_000 * 1e9
    print(f"\n32-byte MPU guard in a loaded page: {extra_ns:.0f} ns extra per load "
          f"({walls[T_MPU_COST] * 1e3:.1f} vs {walls[T_LOOP_BASE] * 1e3:.1f} ms for 100k loads)")
    assert extra_ns < 2000


# ---- SVC, PendSV, PSP, VTOR, reset ------------------------------------------------------------------
def test_svc_and_pendsv():
    b = scenario(T_SVC_PENDSV)
    o = out(b)
    assert o[0] == 0x1234                           # SVC #5 returned r0 + r1 through the frame
    assert o[20] == 5 and o[23] == 11               # SVC number from the stacked PC, IPSR
    assert o[21] == 0xFFFFFFF9
    # PendSV set inside SVC (lower priority) runs after it; the thread's PENDSVSET runs at once
    assert log(b) == [0x305, 0x405, 0x500, 0x500]
    assert o[25] == 0 and o[26] == 1, "PendSV must be taken right after the ICSR store"
    assert o[1] == 2 and o[29] == 14                # thread continued; VECTACTIVE in PendSV
    # SVC with PRIMASK set cannot be taken: HardFault FORCED, stacked PC after the SVC
    f = faults(b)
    assert f[0]["exc"] == 3 and f[0]["hfsr"] == HFSR_FORCED and f[0]["cfsr"] == 0
    assert f[0]["pc"] == b.sym("svc_call5_ret") and o[2] == 0xBADBAD


def test_psp_thread_started_by_svc_with_exc_return_fffffffd():
    b = scenario(T_PSP)
    o = out(b)
    stack = b.sym("g_task_stack")
    psp0 = stack + 4 * 256                          # the crafted frame was popped
    assert o[1] == 2 and o[4] == 0                  # CONTROL.SPSEL=1, thread mode
    assert o[2] == o[3] and psp0 - 64 <= o[2] < psp0     # SP is the PSP (after the prologue)
    assert o[10] == 0xFFFFFFFD                      # IRQ2 from the PSP thread
    assert o[11] == o[12] == o[2] - 32              # frame on the PSP
    assert o[13] < o[0]                             # the handler runs on the MSP
    assert in_function(b, o[14], "task_main")
    assert o[5] == o[2] and o[6] == 2               # back on the PSP after the return
    assert o[7] == 42 and o[21] == 0xFFFFFFFD       # SVC from the PSP thread
    assert o[16] == 0xFFFFFFED                      # FP context on the PSP: extended frame
    assert stack < o[17] < o[2] - 0x68 + 8          # 104-byte frame on the task stack
    assert b.words("g_fp_thread_out", 17) == b.words("fp_thread_in", 17)
    assert o[8] & 7 == 6                            # CONTROL: SPSEL | FPCA after the return


def test_vtor_relocation():
    b = scenario(T_VTOR)
    o = out(b)
    assert o[1] == 1 and o[2] == b.sym("g_ram_vectors") and o[3] == 101 and o[40] == 0x7A17


def test_sysresetreq_resets_everything_but_noinit_ram():
    b = scenario(T_RESET)
    o = out(b)
    assert b.machine.resets == 1
    assert [d["cause"] for _t, k, d in b.scheduler.log if k == "reset"] == ["sysresetreq"]
    assert o[0] == 2, "the .noinit boot counter must survive the reset"
    assert o[3] == 0x55AA                           # written to .noinit before the reset
    assert o[1] == 0 and o[2] == 7                  # .bss zeroed, .data re-initialised
    assert o[4] == 0x0800_0000 and o[5] == 0        # VTOR, SHCSR back to reset values
    assert o[6] == 0 and o[7] == 0                  # BASEPRI, PRIMASK cleared
    assert o[8] == 0 and o[9] == 0                  # SysTick off, PRIGROUP 0
    assert o[10] == b.sym("_estack") - 16 or o[10] < b.sym("_estack")


# ---- SysTick, sleep, hints ----------------------------------------------------------------------------
def test_systick_interrupts_and_countflag():
    b = scenario(T_SYSTICK)
    o = out(b)
    assert o[1] == 10 and o[3] == 10 and o[4] == CPUID_M7_R1P1
    assert o[2] < 480000
    # 10 ticks + 3 COUNTFLAG periods of 1 ms: done shortly after 13 ms of virtual time
    assert 13 * PS_PER_MS <= b.scheduler.now <= 15 * PS_PER_MS


def test_wfe_yield_and_bkpt():
    b = scenario(T_WFE_BKPT)
    o = out(b)
    assert o[1] == 1                                # YIELD is a NOP
    assert o[2] >= 1                                # WFE slept until the SysTick interrupt
    assert b.cpu.halted and b.cpu.halt_reason == "bkpt" and o[3] == 0
    assert b.cpu.pc() == b.sym("do_bkpt_insn")
    assert [k for _t, k, _d in b.scheduler.log] == ["bkpt"]


def test_idle_second_at_1khz_is_cheap():
    b = build_m7(fw("idle.elf"), hz=64_000_000)     # idle.elf counts on the reset clock (HSI)
    b.scheduler.run_for(PS_PER_MS)                  # boot
    t0 = time.perf_counter()
    b.scheduler.run_for(PS_PER_S)
    wall = time.perf_counter() - t0
    ticks = b.u32("g_ticks")
    print(f"\nidle.elf: 1 s virtual in {wall:.3f} s wall, {ticks} ticks, "
          f"{wall / max(1, ticks) * 1e6:.1f} us per wake-up (SysTick entry + return + WFI)")
    assert 1000 <= ticks <= 1001 and b.u32("g_wakeups") == ticks
    assert wall < 1.0


def test_busy_firmware_is_deterministic():
    digests = []
    for _ in range(2):
        b = build_m7(fw("busy.elf"))
        t0 = time.perf_counter()
        b.scheduler.run_for(10 * PS_PER_MS)
        wall = time.perf_counter() - t0
        digests.append((b.u32("g_loops"), b.u32("g_crc"),
                        hashlib.sha256(b.machine.read_memory(0x2000_0000, 0x2_0000)).hexdigest()))
    print(f"\nbusy.elf: 10 ms virtual (4.8 M instructions) in {wall:.3f} s wall, "
          f"{digests[0][0]} loops")
    assert digests[0] == digests[1] and digests[0][0] > 0


def test_scenarios_are_deterministic():
    ram = []
    for _ in range(2):
        b = scenario(T_NEST)
        ram.append(b.machine.read_memory(0x2000_0000, 0x2_0000))
    assert ram[0] == ram[1]


# ---- SCS registers without firmware --------------------------------------------------------------------
class FakeCache:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *a: self.calls.append((name, *a))


def test_scs_identification_and_cache_registers_forward_to_the_cache():
    cache = FakeCache()
    b = build_m7(cache=cache)
    m = b.machine
    rd = lambda a: m.bus_read(a, 4)                                   # noqa: E731
    assert rd(0xE000ED00) == CPUID_M7_R1P1
    assert rd(0xE000ED78) == CLIDR_M7 and rd(0xE000ED7C) == CTR_M7
    m.bus_write(0xE000ED84, 4, 0)
    assert rd(0xE000ED80) == CCSIDR_DCACHE
    ccsidr = CCSIDR_DCACHE
    assert ((ccsidr >> 13) & 0x7FFF) + 1 == 128 and ((ccsidr >> 3) & 0x3FF) + 1 == 4
    assert 1 << ((ccsidr & 7) + 4) == 32            # 16 KiB = 128 sets x 4 ways x 32 B
    m.bus_write(0xE000ED84, 4, 1)
    assert rd(0xE000ED80) == CCSIDR_ICACHE
    assert rd(0xE000ED14) & (1 << 9)                # CCR.STKALIGN
    m.bus_write(0xE000ED14, 4, rd(0xE000ED14) | (1 << 16))
    for addr, value in ((0xE000EF5C, 0x24000123), (0xE000EF68, 0x24000040),
                        (0xE000EF70, 0x24000080), (0xE000EF64, 0x24000000),
                        (0xE000EF60, 0), (0xE000EF6C, 0), (0xE000EF74, 0), (0xE000EF50, 0)):
        m.bus_write(addr, 4, value)
    m.bus_write(0xE000ED14, 4, rd(0xE000ED14) & ~(1 << 16))
    assert cache.calls == [("set_enabled", True), ("invalidate", 0x24000120),
                           ("clean", 0x24000040), ("clean_invalidate", 0x24000080),
                           ("clean", 0x24000000), ("invalidate_all",), ("clean_all",),
                           ("clean_invalidate_all",), ("set_enabled", False)]


def test_aircr_needs_vectkey_and_priorities_keep_four_bits():
    b = build_m7()
    m = b.machine
    m.bus_write(0xE000ED0C, 4, 0x0000_0300)          # no key: ignored
    assert m.bus_read(0xE000ED0C, 4) == 0xFA05_0000
    m.bus_write(0xE000ED0C, 4, 0x05FA_0300)
    assert m.bus_read(0xE000ED0C, 4) == 0xFA05_0300 and b.nvic.group_mask == 0xF0
    m.bus_write(0xE000E400 + 5, 1, 0xAB)             # IPR byte access
    assert m.bus_read(0xE000E404, 4) == 0x0000_A000 and b.nvic.prio[16 + 5] == 0xA0
    m.bus_write(0xE000ED20, 4, 0xFFFF_FFFF)          # SHPR3: PendSV, SysTick, DebugMon
    assert b.nvic.prio[14] == b.nvic.prio[15] == 0xF0
    assert m.bus_read(0xE000ED90, 4) == 16 << 8      # MPU_TYPE: 16 regions
    assert m.bus_read(0xE000E004, 4) == 4            # ICTR: 150 IRQs -> 5 words
    assert b.machine.resets == 0


def test_level_sensitive_irq_repends_while_high():
    b = build_m7()
    nv = b.nvic
    nv.set_input(3, True)
    assert nv.pending & (1 << 19)
    b.machine.bus_write(0xE000E280, 4, 1 << 3)      # ICPR while the line is high: stays pending
    assert nv.pending & (1 << 19)
    nv.activate(19)
    assert not nv.pending & (1 << 19)
    nv.deactivate(19)                                # still high at return: pending again
    assert nv.pending & (1 << 19)
    nv.set_input(3, False)
    b.machine.bus_write(0xE000E280, 4, 1 << 3)
    assert not nv.pending & (1 << 19)


def test_unicorn_facts_the_core_relies_on():
    """EXC_RETURN fires intno 8 with PC = value & ~1; a load from unmapped memory stops with PC at
    the load; a stop inside an MMIO write leaves PC at the store (replayed by the core)."""
    b = build_m7()
    uc = b.cpu.uc
    code = struct.pack("<HHHH", 0x6808, 0xBF00, 0xBF00, 0xE7FE)    # ldr r0,[r1]; nop; nop; b .
    b.machine.write_memory(0x0800_0000, code)
    from unicorn import UcError
    from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_R1
    uc.reg_write(UC_ARM_REG_R1, 0x6000_0000)
    with pytest.raises(UcError):
        uc.emu_start(0x0800_0001, 0xFFFF_FFFF, 0, 10)
    assert uc.reg_read(UC_ARM_REG_PC) == 0x0800_0000


def test_systick_and_core_follow_a_core_clock_change_mid_count():
    """The RCC model pushes a new core clock (set_core_clock): a running SysTick keeps its current
    value and counts on at the new rate; the CPU's instruction rate follows, up to its cap."""
    b = build_m7()
    m, nv, cpu = b.machine, b.nvic, b.cpu
    nv.set_core_clock(64_000_000)
    m.bus_write(0xE000E014, 4, 64_000 - 1)           # RVR: 1 ms at 64 MHz
    m.bus_write(0xE000E018, 4, 0)
    m.bus_write(0xE000E010, 4, 7)                    # ENABLE, TICKINT, CLKSOURCE=core
    b.scheduler.run_until(250 * PS_PER_US)
    assert m.bus_read(0xE000E018, 4) == 64_000 - 16_000
    nv.set_core_clock(128_000_000)                   # twice as fast from here
    assert m.bus_read(0xE000E018, 4) == 48_000
    b.scheduler.run_until(250 * PS_PER_US + 375 * PS_PER_US - 1)
    assert not nv.pending & (1 << 15)
    b.scheduler.run_until(250 * PS_PER_US + 375 * PS_PER_US)
    assert nv.pending & (1 << 15)                    # 48 000 ticks at 128 MHz = 375 us
    cpu.hz_cap = 480_000_000
    cpu.set_core_clock(400_000_000)
    assert cpu.hz == 400_000_000 and cpu.now_ps() >= 625 * PS_PER_US
    cpu.set_core_clock(600_000_000)                  # capped by PerformanceInMips
    assert cpu.hz == 480_000_000


def test_systick_keeps_its_count_across_a_clock_source_change():
    """CLKSOURCE written while SysTick runs: the counter keeps its current value and counts on at
    the new source's rate (core/8 here); the next wrap comes when that value has counted down."""
    b = build_m7()
    m, nv = b.machine, b.nvic
    nv.set_core_clock(64_000_000)
    m.bus_write(0xE000E014, 4, 64_000 - 1)           # RVR: 1 ms at 64 MHz
    m.bus_write(0xE000E018, 4, 0)
    m.bus_write(0xE000E010, 4, 7)                    # ENABLE, TICKINT, CLKSOURCE=core
    b.scheduler.run_until(250 * PS_PER_US)
    assert m.bus_read(0xE000E018, 4) == 48_000
    m.bus_write(0xE000E010, 4, 3)                    # CLKSOURCE=reference: core/8 = 8 MHz
    assert m.bus_read(0xE000E018, 4) == 48_000
    b.scheduler.run_until(1250 * PS_PER_US)          # 1 ms at 8 MHz: 8 000 ticks
    assert m.bus_read(0xE000E018, 4) == 40_000
    b.scheduler.run_until(6250 * PS_PER_US - 1)      # 48 000 ticks at 8 MHz = 6 ms
    assert not nv.pending & (1 << 15)
    b.scheduler.run_until(6250 * PS_PER_US)
    assert nv.pending & (1 << 15)
    assert m.bus_read(0xE000E010, 4) & (1 << 16)     # COUNTFLAG from that wrap
    # and back to the core clock mid-count: 64 000 - 8 000 left at 8 MHz -> 56 000 at 64 MHz
    b.scheduler.run_until(7250 * PS_PER_US)
    assert m.bus_read(0xE000E018, 4) == 56_000
    m.bus_write(0xE000E010, 4, 7)
    assert m.bus_read(0xE000E018, 4) == 56_000
    m.bus_write(0xE000ED04, 4, 1 << 25)              # ICSR.PENDSTCLR: the next wrap pends again
    assert not nv.pending & (1 << 15) and not m.bus_read(0xE000E010, 4) & (1 << 16)
    b.scheduler.run_until(7250 * PS_PER_US + 875 * PS_PER_US - 1)   # 56 000 at 64 MHz = 875 us
    assert not nv.pending & (1 << 15) and m.bus_read(0xE000E018, 4) == 1
    b.scheduler.run_until(7250 * PS_PER_US + 875 * PS_PER_US)
    assert nv.pending & (1 << 15)
    assert m.bus_read(0xE000E018, 4) == 0            # reached 0: the wrap
    b.scheduler.run_until(7250 * PS_PER_US + 875 * PS_PER_US + PS_PER_S // 64_000_000)
    assert m.bus_read(0xE000E018, 4) == 64_000 - 1   # reloaded from RVR on the next tick
