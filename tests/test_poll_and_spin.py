"""An MMIO write breaks a CPU's polling run and its masked-spin hang window.

The bus does not call the CPU on every write (that was a Python call per store): it counts the
writes that reach a model (``Machine.mmio_writes``, in the C bus) and the CPU compares the count
where it decides (cpu.py's ``poll_hint``, cortexm.py's ``_check_masked_spin``). These tests pin
the behaviour both ways, on both cores.
"""
from __future__ import annotations

import pytest
from builtin_helpers import build_m7
from rv_helpers import build_peer

from duohil.engines.builtin.cpus.cpu import POLL_PARK_AFTER

ICPR0 = 0xE000_E280            # NVIC clear-pending: a write with no effect on this idle NVIC
STATUS = 0x4000_4800           # the status register being polled (only its address matters)
MSIP0 = 0x0200_0000            # the peer's CLINT MSIP: writing 0 changes nothing


@pytest.mark.parametrize("write_between", [False, True])
def test_a_write_breaks_the_polling_run(write_between: bool) -> None:
    b = build_m7()
    cpu, m = b.cpu, b.machine
    cpu.executing = True
    try:
        for _ in range(POLL_PARK_AFTER - 1):
            cpu.poll_hint(STATUS, 5_000_000)
        assert not cpu.parked
        before = m.mmio_writes
        if write_between:
            m.bus_write(ICPR0, 4, 0)
            assert m.mmio_writes == before + 1
        cpu.poll_hint(STATUS, 5_000_000)
    finally:
        cpu.executing = False
    # without a write the fourth read in a row parks the core until the wake time; a write in
    # between started a new run, one read long
    assert cpu.parked is (not write_between)
    if not write_between:
        assert cpu.park_until == 5_000_000


@pytest.mark.parametrize("write_between", [False, True])
def test_a_write_breaks_a_masked_spin(write_between: bool) -> None:
    b = build_m7()
    cpu, m = b.cpu, b.machine
    cpu._pc = 0x0800_0400
    t0 = 1_000_000
    for k in range(3):                 # a slice every hang_ps / 2, same pc, no MMIO read
        cpu.slice_start_ps = t0 + k * (cpu.hang_ps // 2)
        if write_between and k == 2:
            m.bus_write(ICPR0, 4, 0)
        cpu._check_masked_spin()
    hung = [e for e in b.scheduler.log if e[1] == "cpu_hung"]
    assert bool(hung) is (not write_between)


@pytest.mark.parametrize("write_between", [False, True])
def test_a_write_breaks_a_masked_spin_on_the_peer(write_between: bool) -> None:
    p = build_peer()
    cpu, m = p.cpu, p.machine
    t0 = 1_000_000
    # slices every hang_ps / 2 at one pc with MIE clear, no MMIO read, registers unchanged: the
    # window opens, the registers are noted, then a whole hang_ps passes: hung, unless a write
    for k in range(4):
        cpu.slice_start_ps = t0 + k * (cpu.hang_ps // 2)
        if write_between and k == 3:
            m.bus_write(MSIP0, 4, 0)
        cpu._check_masked_spin(0x4200_0100)
    hung = [e for e in p.scheduler.log if e[1] == "cpu_hung"]
    assert bool(hung) is (not write_between) and cpu.halted is (not write_between)


@pytest.mark.parametrize("pop_between", [False, True])
def test_a_uart_fifo_read_breaks_the_polling_run_and_the_spin_on_the_peer(pop_between: bool) -> None:
    """A FIFO read (a pop) is not a bus write but changes state: the ESP32-C3 UART's C model
    counts it in ``mmio_writes`` (no call into the CPU), so it breaks a polling run and a masked
    spin window as a write does."""
    p = build_peer()
    cpu, m = p.cpu, p.machine
    cpu.executing = True
    try:
        for _ in range(POLL_PARK_AFTER - 1):
            cpu.poll_hint(STATUS, 5_000_000)
        writes = m.mmio_writes
        if pop_between:
            p.uart0.read(0, 4)                        # FIFO, empty: still a pop attempt
            assert m.mmio_writes == writes + 1
        cpu.poll_hint(STATUS, 5_000_000)
    finally:
        cpu.executing = False
    assert cpu.parked is (not pop_between)
    cpu.unpark()
    t0 = 1_000_000
    for k in range(4):
        cpu.slice_start_ps = t0 + k * (cpu.hang_ps // 2)
        if pop_between and k == 3:
            p.uart0.read(0, 4)
        cpu._check_masked_spin(0x4200_0100)
    hung = [e for e in p.scheduler.log if e[1] == "cpu_hung"]
    assert bool(hung) is (not pop_between)


def test_the_polling_rule_address_wake_and_a_pending_interrupt() -> None:
    """CpuState.poll_hint (C): only while executing; another address starts a run of one; None
    is an address like any other (a Python model's hint); a wake of None parks until the next
    event; a pending interrupt that could wake the core keeps it running."""
    b = build_m7()
    cpu = b.cpu
    for _ in range(POLL_PARK_AFTER + 2):              # not executing: nothing counts
        cpu.poll_hint(STATUS, 1)
    assert cpu._poll_count == 0 and not cpu.parked
    cpu.executing = True
    try:
        for addr in (STATUS, STATUS, STATUS + 4):      # another address: a run of one
            cpu.poll_hint(addr, 1)
        assert (cpu._poll_addr, cpu._poll_count) == (STATUS + 4, 1)
        for _ in range(POLL_PARK_AFTER):
            cpu.poll_hint(None, None)
        assert cpu.parked and cpu.park_until is None and cpu._poll_addr is None
        cpu.unpark()
        b.nvic.enabled |= 1 << 16
        b.nvic.set_pending(16)
        for _ in range(POLL_PARK_AFTER + 1):
            cpu.poll_hint(STATUS, 9)
        assert not cpu.parked and cpu._poll_count == POLL_PARK_AFTER + 1
    finally:
        cpu.executing = False
    with pytest.raises(TypeError, match="poll_hint"):
        cpu.poll_hint(STATUS)
