"""STM32 GPIO port (GPIOA..K on the H743), Renode type ``GPIOPort.STM32_GPIOPort``.

Registers (RM0433 names; stm32h7-registers.md s.7): MODER, OTYPER, OSPEEDR, PUPDR, IDR (read-only,
the pin levels), ODR, BSRR (write-only; set wins over reset), LCKR (the LCKK write sequence
1/0/1 with the same LCKR[15:0], then the configuration of the locked pins is frozen, and LCKR
ignores writes, until reset), AFRL, AFRH. OTYPER[31:16], ODR[31:16] and LCKR[31:17] are
read-only; byte and halfword accesses merge into the word; holes read 0 and ignore writes.
Reset values per port: GPIOA and GPIOB differ (debug pins); ports C..K reset to analog mode
(RM0433 values, unverified here; the SVD copies GPIOA's into every port).

Pin levels: an output pin (MODER=01) drives ODR (open drain: drives only 0; a released open-drain
pin reads the external level, else its pull-up, else 0). An input or AF pin reads the level driven
from outside (``set_input(pin, level)``, also what a repl connection `-> gpioPortC@13` drives), else
its pull (PUPDR: pull-up 1, pull-down 0, none 0). Analog pins read 0. AF outputs are not driven by
the peripheral they serve (TIM1 CH1 on its AF pin is seen by the plant through the timer model).

``subscribe(fn)`` calls ``fn(port, pin, level, t_ps)`` whenever a pin's level changes, from any
cause (ODR/BSRR write, mode change, external drive, reset), pin by pin in pin order;
``pin_level(pin)`` is the level now. A connected output ``self.output(pin)`` (repl
`[0-15] -> ...`) follows the pin level as well (set before the listeners of that pin are called).
A reset puts the registers and the lock back and keeps the outside drive.

The model is C, one copy (native/stm32_gpio.c, ``_core.Gpio``): the registers, the lock, the
outside drive and the levels word ``_levels``, so a BSRR write from the C bus that changes no
level costs no Python call, and the plant reads ``_levels`` from C. ``STM32_GPIOPort(...)``
builds ``STM32_GPIOPortNative``, a subclass of ``_core.Gpio`` and of this class (made once the
native core is loaded). ``regs.<NAME>.value`` reads a register as the bus does (IDR the levels,
BSRR 0). Specified by tests/test_native_gpio.py and tests/test_stm32_gpio_iwdg.py.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar, Iterator

from ... import native
from ...kernel.peripheral import Peripheral

GPIO_BASE = 0x5802_0000
GPIO_STRIDE = 0x400

# port index -> (MODER, OSPEEDR, PUPDR) reset values
RESET_VALUES: dict[int, tuple[int, int, int]] = {
    0: (0xABFF_FFFF, 0x0C00_0000, 0x6400_0000),      # GPIOA: PA13/PA14 SWD, PA15 JTDI
    1: (0xFFFF_FEBF, 0x0000_00C0, 0x0000_0100),      # GPIOB: PB3 SWO, PB4 NJTRST
}
DEFAULT_RESET = (0xFFFF_FFFF, 0, 0)

MODE_INPUT, MODE_OUTPUT, MODE_AF, MODE_ANALOG = 0, 1, 2, 3
LCKK = 1 << 16
REG_NAMES = ("MODER", "OTYPER", "OSPEEDR", "PUPDR", "IDR", "ODR", "BSRR", "LCKR", "AFRL", "AFRH")

PinListener = Callable[["STM32_GPIOPort", int, int, int], None]


class STM32_GPIOPort(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("GPIOPort.STM32_GPIOPort",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"numberOfAFs": 16}

    def __new__(cls, *args: Any, **kwargs: Any) -> "STM32_GPIOPort":
        # the model lives in C: STM32_GPIOPortNative (below) is the class of every instance
        native_cls = native_class()
        return native_cls.__new__(native_cls)

    def pin_level(self, pin: int) -> int:
        # Python on purpose: the plant recognises this function and reads ``_levels`` in C
        return (self._levels >> pin) & 1           # type: ignore[attr-defined]

    def register_name(self, offset: int) -> str | None:
        """The register at ``offset`` (diagnostics: "polling gpioPortC.IDR")."""
        i = offset >> 2
        return REG_NAMES[i] if 0 <= i < len(REG_NAMES) else None


class RegisterView:
    """``port.regs.MODER``: one register of the C model, ``value`` as the bus reads it."""

    __slots__ = ("_port", "name", "offset")

    def __init__(self, port: Any, name: str, offset: int) -> None:
        self._port, self.name, self.offset = port, name, offset

    @property
    def value(self) -> int:
        return self._port.registers()[self.offset >> 2]

    @property
    def reset_value(self) -> int:
        return self._port.reset_values()[self.offset >> 2]

    def __repr__(self) -> str:
        return f"<{self._port.name}.{self.name} = {self.value:#010x}>"


class RegisterViews:
    """``port.regs``: the ten registers by name (attributes), in offset order (iteration), and
    ``read``/``write`` as the bus does them."""

    def __init__(self, port: Any) -> None:
        self._views = [RegisterView(port, name, 4 * i) for i, name in enumerate(REG_NAMES)]
        for v in self._views:
            setattr(self, v.name, v)
        self.read, self.write = port.read, port.write

    def __iter__(self) -> Iterator[RegisterView]:
        return iter(self._views)


@functools.cache
def native_class() -> type:
    """STM32_GPIOPortNative: _core.Gpio (the registers, lock, drive and levels in C) under this
    model's name and public face; made once the native core is loaded."""
    core = native.require()

    class STM32_GPIOPortNative(core.Gpio, STM32_GPIOPort):   # type: ignore[name-defined,misc]
        """read/write/reset, set_input/release_input, subscribe, pin_mode, registers() and
        the words _levels, _ext_driven, _ext_level, _locked, _lock_step are _core.Gpio's;
        ``_native_mmio``/``_native_input`` are its ports.h capsules."""

        renode_types: ClassVar[tuple[str, ...]] = ()   # STM32_GPIOPort claims the type

        def __init__(self, machine, name, base, size=None, props=None) -> None:
            Peripheral.__init__(self, machine, name, base, size, props)
            self.port = (base - GPIO_BASE) // GPIO_STRIDE if base is not None else 0
            self.letter = chr(ord("A") + self.port)
            self._bind(machine, *RESET_VALUES.get(self.port, DEFAULT_RESET))
            self.regs = RegisterViews(self)                 # type: ignore[assignment]

    return STM32_GPIOPortNative
