"""The builtin engine's native core (C): required, and the switch for models still in two languages.

The native core is the one implementation of what it holds; the builtin engine does not start
without it (``require``: one line saying why and how to fix it, ``make setup`` with gcc and
Python.h present). In C, one copy only: the scheduler's event heap, time loop and slice driver
(``_core.Scheduler``, ``_core.Event``; CpuCore's next_deadline/advance_to/settle), the Cortex-M7's
exception entry, tail-chain and return (``_core.CortexM``) with the NVIC's exception state
(``_core.Nvic``), the RV32 peer's register access and trap entry (``_core.RiscV``), the peer's
CLINT (``_core.Clint``, clint.c: mtime, mtimecmp, MSIP, the MTIP decision, the register map), its
PLIC (``_core.Plic``, plic.c: gateways, priorities, enables, thresholds, claim/complete, the map)
and its ESP32-C3 UART (``_core.Esp32c3Uart``, esp32c3_uart.c), and the STM32 byte path: the USART
(``_core.Usart``, usart.c), DMA1/DMA2's streams and DMAMUX1 (``_core.Dma``/``_core.Dmamux``,
dma.c/dmamux.c) and the UART link (``_core.UartLink``, link.c: faults, seeded noise, arrivals,
taps), the STM32H7 IWDG (``_core.Iwdg``, iwdg.c: keys, SR busy bits, window, the expiry
deadline), the Cortex-M7's SysTick (``_core.SysTick``, systick.c behind nvic.py's Nvic: the
counter, COUNTFLAG, reloads, CLKSOURCE and core-clock changes, the wrap event; the SCS page's
``_native_mmio`` serves SYST_* in C and the other SCS registers through the bank), the
DC-motor plant (``_core.Plant``, plant.c behind board/plant.py's DcMotorPlant: the state,
advance, drive changes, samples, the encoder source and the deferred end-stop prediction; the
crossing search and the end-stop record stay Python, called from C) and the STM32H7 timers
(``_core.Timer``, stm32_timer.c behind stm32_timer.py's STM32_Timer: registers, the counter
anchored to virtual time, preloads, update events, the lazy mode, one-pulse, encoder mode),
built by their Python classes whatever ``DUOHIL_MODELS`` says. What stays Python around them
is Python by design (the event log, the SCS registers but SysTick's, the MPU, CFSR/HFSR, the
fault and storm decisions, the link's fault list and tap reader).

``DUOHIL_MODELS=python|native`` picks, for the models that still exist in both languages, which
version a run uses (unset: native). In C under ``native``, their state only there:
  - each machine's MMIO dispatch (``_core.Bus``, bus.c: machine.py's MachineNative; native models
    through their ``_native_mmio`` port, Python models by vectorcall);
  - the rest of the byte path: the M7's D-cache line bookkeeping (``_core.DCache``, dcache.c)
    and the plain DMA port (``_core.DmaPort``), and the peripherals' output lines
    (``_core.Signal``).
Both versions must give the same run (same event log, same memory, same fingerprint): their
differential tests (tests/test_native_*.py), ``make fingerprints-diff`` and ``python -m
duohil.engines.builtin.native.diverge`` check that while both exist; once proven, the Python copy
is deleted.

The C sources live beside this file: ``_core.c`` (the CPython module: one section per unit),
``ports.h`` (how native units call each other without Python), ``ucapi.c`` (unicorn's C API
resolved with dlsym on the library the ``unicorn`` package loaded), and one ``.c``/``.h`` pair
per unit with no Python in it. setup.py builds every ``.c`` of this folder at ``pip install -e .``
(``make setup``).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from duohil.errors import ConfigError, EngineUnavailable

ENV = "DUOHIL_MODELS"
CHOICES = ("python", "native")

_state: tuple[ModuleType | None, str] | None = None


def _load() -> tuple[ModuleType | None, str]:
    """(the bound _core module or None, one line saying what is usable and why)."""
    global _state
    if _state is not None:
        return _state
    try:
        from . import _core
    except ImportError as exc:
        if "cannot import name '_core'" in str(exc):
            _state = (None, "native core not built: run `make setup` with gcc and Python.h present")
        else:                               # built, but e.g. for another Python
            _state = (None, f"native core cannot be loaded: {exc}")
        return _state
    try:
        from unicorn.unicorn_py3.unicorn import uclib
        _core.bind_unicorn(uclib._handle)
    except ImportError as exc:          # bind_unicorn's one line: a unicorn version mismatch
        _state = (None, f"native core unusable: {exc}")
        return _state
    except AttributeError as exc:       # a unicorn package laid out differently from 2.1.4's
        _state = (None, f"native core unusable: cannot find the loaded libunicorn ({exc})")
        return _state
    _state = (_core, f"native core built for unicorn {_core.built_for()}")
    return _state


def core() -> ModuleType | None:
    """The bound ``_core`` module, or None when it is not built or not usable here."""
    return _load()[0]


def why() -> str:
    """One line: whether the core is usable here, and if not, why and how to fix it."""
    mod, reason = _load()
    if mod is not None:
        return reason
    return f"{reason}; the builtin engine needs it: install gcc and the Python headers " \
           f"(python3-dev), then `make setup`"


def require() -> ModuleType:
    """The bound ``_core`` module; EngineUnavailable (one line, the fix in it) when it is not
    built or not usable: the builtin engine has no Python copy of what it holds."""
    mod = _load()[0]
    if mod is None:
        raise EngineUnavailable("builtin", why())
    return mod


def note() -> str:
    """One line for ``duohil engines``: the core, and what ``DUOHIL_MODELS=python`` still picks."""
    return f"{why()}; models: native (DUOHIL_MODELS=python: the Python reference of the " \
           f"models still being ported)"


def models() -> str:
    """``python`` or ``native``: what ``DUOHIL_MODELS`` asks for (unset: native). It only
    decides between the two versions of the models still being ported."""
    want = os.environ.get(ENV, "").strip()
    if not want:
        return "native"
    if want not in CHOICES:
        raise ConfigError(f"{want!r} is not a model set", field=ENV,
                          expected=" or ".join(CHOICES))
    return want


@contextmanager
def using(models: str) -> Iterator[None]:
    """``DUOHIL_MODELS=models`` for what is built inside the block (differential tests, the
    benchmark's side-by-side runs); the variable is as it was afterwards."""
    old = os.environ.get(ENV)
    os.environ[ENV] = models
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
