"""The builtin engine's native core (C) and the switch between it and the Python models.

``DUOHIL_MODELS=python|native`` picks, for every part that exists in both languages, which one a
run uses; unset means native when the extension is built and usable, python otherwise. Both must
give the same run (same event log, same memory, same fingerprint): the differential tests and
``python -m duohil.engines.builtin.native.diverge`` check that while both exist.

What is native so far: the scheduler's event heap, time loop and slice driver
(``_core.Scheduler``), the Cortex-M7's exception entry, tail-chain and return
(``_core.CortexM``, used by cortexm.py's ``_enter_native``/``_exc_return_native``) and the RV32
peer's register access and trap entry (``_core.RiscV``, used by riscv.py's ``_enter_trap_native``)
the CLINT's timer state (``_core.Clint``: mtime's offset, mtimecmp, the MTIP decision), the
PLIC's state (``_core.Plic``: gateways, priorities, enables, thresholds, claim/complete), the UART
link's per-byte path (``_core.UartLink``, link.c: faults, seeded noise, arrivals, taps) and the
ESP32-C3 UART (``_core.Esp32c3Uart``, esp32c3_uart.c).
the CLINT's timer state and register map (``_core.Clint``: mtime's offset, mtimecmp, the MTIP
decision), the PLIC's state and register map (``_core.Plic``: gateways, priorities, enables,
thresholds, claim/complete) and each machine's MMIO dispatch (``_core.Bus``: machine.py's
MachineNative; native models through their ``_native_mmio`` port, Python models by vectorcall).
the CLINT's timer state (``_core.Clint``: mtime's offset, mtimecmp, the MTIP decision) and the
PLIC's state (``_core.Plic``: gateways, priorities, enables, thresholds, claim/complete).
DMA1/DMA2's streams and DMAMUX1 are native whole (``_core.Dma``/``_core.Dmamux``, the C bases of
stm32_dma.py's ``Stm32DmaNative`` and stm32_dmamux.py's ``Stm32DmamuxNative``: registers, counters,
transfer engine and routing in ``dma.c``/``dmamux.c``).
PLIC's state (``_core.Plic``: gateways, priorities, enables, thresholds, claim/complete),
the STM32H7 USART (``_core.Usart``, model in ``usart.c``, behind stm32_usart.py's
Stm32UsartNative) and the peripherals' output lines (``_core.Signal``, Peripheral.output()).

The C sources live beside this file (``_core.c``: the CPython module; ``evheap.c``: the heap;
``cortexm.c``: the M7 exception frames and register sequences; ``riscv.c``: the RV32 trap entry; ``clint.c``: the CLINT; ``plic.c``: the PLIC; ``bus.c``: the
MMIO range table;
``ucapi.c``: the unicorn C API
resolved with dlsym on the library the ``unicorn`` package loaded).
PLIC's state (``_core.Plic``: gateways, priorities, enables, thresholds, claim/complete), the
M7's D-cache line bookkeeping (``_core.DCache``, dcache.py's DCacheNative) and the plain DMA port
(``_core.DmaPort``), both serving ports.h's ``_native_dma_port``.

The C sources live beside this file (``_core.c``: the CPython module; ``evheap.c``: the heap;
``cortexm.c``: the M7 exception frames and register sequences; ``riscv.c``: the RV32 trap entry;
``clint.c``: the CLINT's timer state; ``plic.c``: the PLIC; ``dcache.c``: the D-cache;
``ucapi.c``: the unicorn C API resolved with dlsym on the library the ``unicorn`` package
loaded).
setup.py builds them at ``pip install -e .`` (``make setup``).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ....errors import ConfigError

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


def note() -> str:
    """One line for ``duohil engines``: which models a run uses by default, and why."""
    mod, why = _load()
    return f"models: {'native' if mod is not None else 'python'} by default ({why})"


def models() -> str:
    """``python`` or ``native``: what ``DUOHIL_MODELS`` asks for, or the default."""
    want = os.environ.get(ENV, "").strip()
    mod, why = _load()
    if not want:
        return "native" if mod is not None else "python"
    if want not in CHOICES:
        raise ConfigError(f"{want!r} is not a model set", field=ENV,
                          expected=" or ".join(CHOICES))
    if want == "native" and mod is None:
        raise ConfigError(f"native asked for, but {why}", field=ENV,
                          expected="python, or a built native core")
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
