"""Shared stand-ins for register-level model tests (no instructions run)."""
from __future__ import annotations

from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc


class FakeCpu:
    """Just enough of a CpuCore for a peripheral model: memory (a unicorn instance, for DMA and
    the D-cache), and a record of poll hints, MMIO writes and resets; it never runs code."""

    name = "cpu"

    def __init__(self) -> None:
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.executing = False
        self.hints: list[tuple[int | None, int | None]] = []
        self.writes = 0
        self.resets = 0

    def note_write(self) -> None:
        self.writes += 1

    def poll_hint(self, addr: int | None, wake_ps: int | None) -> None:
        self.hints.append((addr, wake_ps))

    def reset(self) -> None:
        self.resets += 1

    def next_deadline(self, now: int, quantum: int) -> int | None:
        return None

    def advance_to(self, t: int) -> None:
        pass

    def settle(self, t: int) -> None:
        pass


class MachineAccess:
    """Memory and time helpers shared by the hand-built test machines (builtin_helpers.M7,
    rv_helpers.Peer); subclasses provide ``scheduler``, ``machine`` and ``sym(name)``."""

    def u32(self, addr_or_symbol: int | str, index: int = 0) -> int:
        addr = self.sym(addr_or_symbol) if isinstance(addr_or_symbol, str) else addr_or_symbol
        return int.from_bytes(self.machine.read_memory(addr + 4 * index, 4), "little")

    def run_until(self, pred, limit_ps: int, step_ps: int = 100_000_000) -> bool:
        """Advance in steps until ``pred()`` holds or ``limit_ps`` of virtual time has passed."""
        end = self.scheduler.now + limit_ps
        while not pred():
            if self.scheduler.now >= end:
                return False
            self.scheduler.run_until(min(end, self.scheduler.now + step_ps))
        return True
