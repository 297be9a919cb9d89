"""The builtin engine's native core (C): required, the one implementation of every model.

The builtin engine does not start without it (``require``: one line saying why and how to fix
it, ``make setup`` with gcc and Python.h present). Every model of the engine's hot path is C and
exists only in C (issue 13; the Python reference copies were deleted once Hypothesis
differential tests and all 22 scenario fingerprints showed them equal, and their differential
tests became specification tests): the scheduler's event heap, time loop and slice driver
(``_core.Scheduler``, ``_core.Event``; CpuCore's next_deadline/advance_to/settle, the CPUs' state
as ``_core.CpuState`` fields), the Cortex-M7's exception entry, tail-chain and return
(``_core.CortexM``) with the NVIC's exception state (``_core.Nvic``) and SysTick
(``_core.SysTick``), the M7's D-cache line bookkeeping (``_core.DCache``) and its TLB fill
(``_core.Vtlb``), the RV32 peer's register access and trap entry (``_core.RiscV``) with its CLINT
(``_core.Clint``) and PLIC (``_core.Plic``), each machine's MMIO dispatch (``_core.Bus``) and DMA
port (``_core.DmaPort``), the peripherals' output lines (``_core.Signal``), the STM32's USART,
DMA streams, DMAMUX, timers, IWDG and GPIO ports (``_core.Usart``, ``Dma``, ``Dmamux``, ``Timer``,
``Iwdg``, ``Gpio``),
the ESP32-C3 UART (``_core.Esp32c3Uart``), the UART link with its faults, seeded noise, taps and
frame tracking (``_core.UartLink``) and the DC-motor plant (``_core.Plant``). Their Python classes
build the C model and keep the faces the loader, the session and the tests use. What stays
Python is Python by design: configuration (repl/platform, ELF/DWARF), the cold models (RCC, PWR,
FLASH, FMC, SYSCFG, the SCS registers but SysTick's, the MPU's region decoding), the fault and storm
decisions, a user's own peripherals, fault planning, oracles and reports.

``DUOHIL_MODELS``, the switch that picked a model's Python reference while both existed, is
retired: ``native`` (or unset) is accepted, any other value is refused with one line
(``check_models_env``), never silently ignored.

The C sources live beside this file: ``_core.c`` (the CPython module: one section per unit),
``ports.h`` (how native units call each other without Python), ``ucapi.c`` (unicorn's C API
resolved with dlsym on the library the ``unicorn`` package loaded), and one ``.c``/``.h`` pair
per unit with no Python in it. setup.py builds every ``.c`` of this folder at ``pip install -e .``
(``make setup``).
"""
from __future__ import annotations

import operator
import os
from types import ModuleType
from typing import Any

from duohil.errors import ConfigError, EngineUnavailable

#: the retired switch (check_models_env)
ENV = "DUOHIL_MODELS"

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


def core_class(name: str) -> type:
    """``_core.<name>``, the class a model's Python name stands for (``Signal``, ``DmaPort``);
    without a usable core, a stand-in whose construction raises ``require``'s one line (the
    module still imports, so ``duohil engines`` can say why the builtin engine cannot run)."""
    mod = core()
    if mod is not None:
        return getattr(mod, name)

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        return getattr(require(), name)(*args, **kwargs)
    return type(name, (), {"__new__": __new__, "__doc__": f"_core.{name} (native core not usable)"})


def c_attr(name: str, doc: str, *, holder: str = "_c", writable: bool = True) -> property:
    """A Python model's attribute ``name`` that lives in its C object (``self._c`` unless
    ``holder`` names another attribute): read, and unless ``writable`` is false assigned, there."""
    setter = (lambda self, v: setattr(getattr(self, holder), name, v)) if writable else None
    return property(operator.attrgetter(f"{holder}.{name}"), setter, doc=doc)


def note() -> str:
    """One line for ``duohil engines``: the core, and that every model is C."""
    return f"{why()}; every model in C"


def check_models_env() -> None:
    """Refuse a ``DUOHIL_MODELS`` other than ``native``: the Python reference models it picked
    are gone, and a run must not silently be something other than what was asked for."""
    want = os.environ.get(ENV, "").strip()
    if want and want != "native":
        raise ConfigError(f"{want!r}: the Python reference models this switch picked were retired "
                          f"(issue 13); every model is C, one copy. Unset {ENV}",
                          field=ENV, expected="unset, or native")
