"""STM32 GPIO port (GPIOA..K on the H743), Renode type ``GPIOPort.STM32_GPIOPort``.

Registers (RM0433 names; stm32h7-registers.md s.7): MODER, OTYPER, OSPEEDR, PUPDR, IDR (read-only,
the pin levels), ODR, BSRR (write-only; set wins over reset), LCKR (the LCKK write sequence
1/0/1 with the same LCKR[15:0], then the configuration of the locked pins is frozen until reset),
AFRL, AFRH. Reset values per port: GPIOA and GPIOB differ (debug pins); ports C..K reset to
analog mode (RM0433 values, unverified here; the SVD copies GPIOA's into every port).

Pin levels: an output pin (MODER=01) drives ODR (open drain: drives only 0; a released open-drain
pin reads the external level, else its pull-up, else 0). An input or AF pin reads the level driven
from outside (``set_input(pin, level)``, also what a repl connection `-> gpioPortC@13` drives), else
its pull (PUPDR: pull-up 1, pull-down 0, none 0). Analog pins read 0. AF outputs are not driven by
the peripheral they serve (TIM1 CH1 on its AF pin is seen by the plant through the timer model).

``subscribe(fn)`` calls ``fn(port, pin, level, t_ps)`` whenever a pin's level changes, from any
cause (ODR/BSRR write, mode change, external drive, reset); ``pin_level(pin)`` is the level now.
A connected output ``self.output(pin)`` (repl `[0-15] -> ...`) follows the pin level as well.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

from ...kernel.peripheral import Peripheral
from ...kernel.regs import RO, WO, Field, Register

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

PinListener = Callable[["STM32_GPIOPort", int, int, int], None]



#: (MODER, PUPDR, ODR, OTYPER, externally driven, external level) -> pin levels
_LEVELS: dict[tuple[int, int, int, int, int, int], int] = {}

class STM32_GPIOPort(Peripheral):
    renode_types: ClassVar[tuple[str, ...]] = ("GPIOPort.STM32_GPIOPort",)
    default_size: ClassVar[int] = 0x400
    properties: ClassVar[dict[str, Any]] = {"numberOfAFs": 16}

    def __init__(self, machine, name, base, size=None, props=None) -> None:
        super().__init__(machine, name, base, size, props)
        self.port = (base - GPIO_BASE) // GPIO_STRIDE if base is not None else 0
        self.letter = chr(ord("A") + self.port)
        moder, ospeedr, pupdr = RESET_VALUES.get(self.port, DEFAULT_RESET)
        r = self.regs
        cfg = self._config_written
        r.define(0x00, "MODER", reset=moder, on_write=cfg)
        r.define(0x04, "OTYPER", fields=[Field("OT", 0, 16), Field("RESERVED", 16, 16, access=RO)],
                 on_write=cfg)
        r.define(0x08, "OSPEEDR", reset=ospeedr, on_write=cfg)
        r.define(0x0C, "PUPDR", reset=pupdr, on_write=cfg)
        r.define(0x10, "IDR", access=RO, on_read=self._idr_read)
        r.define(0x14, "ODR", fields=[Field("OD", 0, 16), Field("RESERVED", 16, 16, access=RO)],
                 on_write=lambda reg, old, data: self._levels_changed())
        r.define(0x18, "BSRR", access=WO, fields=[Field("BS", 0, 16), Field("BR", 16, 16)],
                 on_write=self._bsrr_written)
        r.define(0x1C, "LCKR", fields=[Field("LCK", 0, 16), Field("LCKK", 16),
                                       Field("RESERVED", 17, 15, access=RO)],
                 on_write=self._lckr_written)
        r.define(0x20, "AFRL", on_write=cfg)
        r.define(0x24, "AFRH", on_write=cfg)
        self._listeners: list[PinListener] = []
        self._init_state()

    def _init_state(self) -> None:
        self._ext_driven = 0            # pins driven from outside (set_input)
        self._ext_level = 0
        self._locked = 0                # pins whose configuration is frozen (LCKR)
        self._lock_step = 0             # position in the LCKK write sequence
        self._levels = self._compute_levels()

    # -- public API -----------------------------------------------------------------------------------
    def subscribe(self, fn: PinListener) -> None:
        """``fn(port, pin, level, t_ps)`` on every pin level change."""
        self._listeners.append(fn)

    def pin_level(self, pin: int) -> int:
        return (self._levels >> pin) & 1

    def pin_mode(self, pin: int) -> int:
        return (self.regs.MODER.value >> (2 * pin)) & 3

    def set_input(self, line: int, level: bool) -> None:
        """Drive pin ``line`` from outside (a button, a sensor, the plant)."""
        bit = 1 << line
        self._ext_driven |= bit
        self._ext_level = (self._ext_level | bit) if level else (self._ext_level & ~bit)
        self._levels_changed()

    def release_input(self, line: int) -> None:
        """Stop driving pin ``line`` from outside (it floats back to its pull)."""
        self._ext_driven &= ~(1 << line)
        self._levels_changed()

    # -- levels -----------------------------------------------------------------------------------------
    def _compute_levels(self) -> int:
        r = self.regs
        moder, pupdr, odr, ot = r.MODER.value, r.PUPDR.value, r.ODR.value, r.OTYPER.value
        # a pure function of these six words, and a firmware toggling a pin repeats them: the
        # per-pin loop runs once per distinct combination (bounded; cleared when it grows)
        key = (moder, pupdr, odr, ot, self._ext_driven, self._ext_level)
        levels = _LEVELS.get(key)
        if levels is None:
            if len(_LEVELS) >= 1024:
                _LEVELS.clear()
            levels = _LEVELS[key] = self._levels_of(*key)
        return levels

    @staticmethod
    def _levels_of(moder: int, pupdr: int, odr: int, ot: int, ext_driven: int, ext_level: int) -> int:
        levels = 0
        for pin in range(16):
            bit = 1 << pin
            mode = (moder >> (2 * pin)) & 3
            pull = (pupdr >> (2 * pin)) & 3
            external = (ext_level & bit) if ext_driven & bit else None
            if mode == MODE_ANALOG:
                level = 0
            elif mode == MODE_OUTPUT and (not ot & bit or not odr & bit):
                level = odr & bit
            elif external is not None:
                level = external
            else:
                level = bit if pull == 1 else 0
            levels |= level and bit
        return levels

    def _levels_changed(self) -> None:
        new = self._compute_levels()
        changed, self._levels = new ^ self._levels, new
        if not changed:
            return
        t = self.now()
        for pin in range(16):
            if changed >> pin & 1:
                level = (new >> pin) & 1
                sig = self._outputs.get(str(pin))
                if sig is not None:
                    sig.set(bool(level))
                for fn in list(self._listeners):
                    fn(self, pin, level, t)

    # -- register callbacks -----------------------------------------------------------------------------
    def _config_written(self, reg: Register, old: int, data: int) -> None:
        if self._locked:
            per_pin = 4 if reg.name in ("AFRL", "AFRH") else (1 if reg.name == "OTYPER" else 2)
            first = 8 if reg.name == "AFRH" else 0
            frozen = 0
            for pin in range(16 if per_pin < 4 else 8):
                if self._locked >> (first + pin) & 1:
                    frozen |= ((1 << per_pin) - 1) << (per_pin * pin)
            reg.value = (reg.value & ~frozen) | (old & frozen)
        self._levels_changed()

    def _bsrr_written(self, reg: Register, old: int, data: int) -> None:
        odr = self.regs.ODR
        odr.value = (odr.value & ~(data >> 16) | data) & 0xFFFF
        reg.value = 0
        self._levels_changed()

    def _idr_read(self, reg: Register) -> int:
        return self._levels

    def _lckr_written(self, reg: Register, old: int, data: int) -> None:
        if self.regs.LCKR.LCKK and self._locked:
            return                                  # locked until reset: writes ignored
        value = data & (LCKK | 0xFFFF)
        key = value & LCKK
        keys = self._lock_step
        if keys == 0 and key:
            self._lock_step, self._lock_value = 1, value
        elif keys == 1 and not key and value | LCKK == self._lock_value:
            self._lock_step = 2
        elif keys == 2 and key and value == self._lock_value:
            self._lock_step = 0
            self._locked = value & 0xFFFF
            reg.value = value                       # LCKK reads 1 from now on
            return
        else:
            self._lock_step = 1 if key else 0
            self._lock_value = value
        reg.value = (old & LCKK) | (value & 0xFFFF)  # LCKK only reads 1 once the sequence completes

    def reset(self) -> None:
        super().reset()
        ext_driven, ext_level = self._ext_driven, self._ext_level
        old = self._levels
        self._init_state()
        self._ext_driven, self._ext_level = ext_driven, ext_level   # the outside world stays
        self._levels = old
        self._levels_changed()
