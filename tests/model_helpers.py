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
