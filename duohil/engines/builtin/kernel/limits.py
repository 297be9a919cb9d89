"""When the builtin engine calls a CPU hung or a storm (docs/wild-firmware.md): the thresholds, in
one place, for both cores and the event log.

All of them are in virtual time, so what a run detects never depends on the host. They are set
far from what a working firmware does (the project's own images never come near them) and close
enough that a wild image costs bounded work: a user whose firmware legitimately spins longer
with interrupts masked raises HANG_PS with a scenario's ``hang_ms`` (or, for one session, the
builtin engine's ``hang_ms`` option).
"""
from __future__ import annotations

PS_PER_MS = 1_000_000_000

# -- hangs (cortexm.py, riscv.py) ------------------------------------------------------------------
#: A CPU is hung when it runs with interrupts masked (M7: PRIMASK or FAULTMASK set; RV32:
#: mstatus.MIE clear in M-mode), reads and writes no peripheral, and keeps its PC within
#: HANG_PC_SPAN bytes for HANG_PS of virtual time (the RV32 also needs its registers unchanged
#: over that time: MIE is clear from reset there, and a delay loop is not a hang). Only a reset or
#: an NMI could end that: the core is stopped (``cpu_hung``), virtual time goes on.
HANG_PS = 100 * PS_PER_MS
HANG_PC_SPAN = 256
#: Asleep in WFI with nothing enabled that could wake it (M7: no NVIC line, no SysTick interrupt,
#: nothing pending; RV32: ``mie`` = 0) is a hang at once (recorded; a sleeping core costs nothing).

# -- interrupt storms (cortexm.py) --------------------------------------------------------------------
#: STORM_ENTRIES exception entries (tail-chains included) without thread mode running for
#: STORM_STARVE_PS (the thread is starved); or STORM_RATE_ENTRIES entries within STORM_RATE_PS
#: (>= 2 MHz, e.g. SysTick at reload 1). The core is then stopped until a reset (``cpu_stopped``):
#: silicon would go on taking them (not modelled).
STORM_ENTRIES = 10_000
STORM_STARVE_PS = 10 * PS_PER_MS
STORM_RATE_ENTRIES = 20_000
STORM_RATE_PS = 10 * PS_PER_MS

# -- event storms and the event log (scheduler.py) -----------------------------------------------------
#: STORM_EVENTS more occurrences of one counted event (reset, fault, trap) within STORM_WINDOW_PS
#: (>= 10 kHz for 100 ms): the machine stops its CPU (``cpu_stopped``, "<kind> storm").
STORM_EVENTS = 1_000
STORM_WINDOW_PS = 100 * PS_PER_MS
#: each distinct event is logged LOG_REPEATS times, then only counted; the log holds at most
#: LOG_MAX entries and AGG_MAX counted keys
LOG_REPEATS = 64
LOG_MAX = 20_000
AGG_MAX = 4_096
