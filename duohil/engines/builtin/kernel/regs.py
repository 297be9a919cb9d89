"""Declared registers for peripheral models, in the spirit of Renode's ``Registers.X.Define``.

A model declares each register once, with named fields, reset values and access types, and hooks
behaviour onto writes and reads; the bank does the decoding (offsets, byte/halfword accesses,
write-1-to-clear, read-only bits). Names follow the reference manual (``CR1.IDLEIE``, ``ISR.RTOF``).

    bank = RegisterBank("usart3")
    cr1 = bank.define(0x00, "CR1", fields=[Field("UE", 0), Field("IDLEIE", 4), ...],
                      on_write=self._cr1_written)
    isr = bank.define(0x1C, "ISR", reset=0xC0, access=RO, fields=[...], on_read=self._isr_read)
    cr1.UE            -> current value of the field
    cr1.set(IDLE=1)   -> model-side update (ignores access types)
"""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Callable, Iterable

RW = "rw"        # read/write
RO = "ro"        # read-only: writes ignored
WO = "wo"        # write-only: reads return 0 (value kept for the model)
W1C = "w1c"      # write 1 to clear (rc_w1)
W1S = "w1s"      # write 1 to set; writing 0 has no effect
W1T = "w1t"      # write-only trigger: reads 0, the write is only seen by on_write


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int = 1
    access: str | None = None     # None: the register's access
    reset: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", ((1 << self.width) - 1) << self.lsb)

    mask: int = dataclass_field(init=False, repr=False, compare=False, default=0)


class Register:
    """One register. Field values are attributes (``reg.UE``); ``reg.value`` is the raw word."""

    def __init__(self, bank: "RegisterBank", offset: int, name: str, reset: int, width: int,
                 access: str, fields: Iterable[Field],
                 on_write: Callable[["Register", int, int], None] | None,
                 on_read: Callable[["Register"], int] | None) -> None:
        self.bank = bank
        self.offset = offset
        self.name = name
        self.width = width
        self.access = access
        self.fields = {f.name: f for f in fields}
        self._fm = {f.name: (f.mask, f.lsb) for f in self.fields.values()}
        self.reset_value = reset
        for f in self.fields.values():
            if f.reset:
                self.reset_value = (self.reset_value & ~f.mask) | ((f.reset << f.lsb) & f.mask)
        self.value = self.reset_value
        self.on_write = on_write
        self.on_read = on_read
        full = (1 << width) - 1
        # Per-access masks over the whole register; bits in no field take the register's access.
        self._masks = {a: 0 for a in (RW, RO, WO, W1C, W1S, W1T)}
        covered = 0
        for f in self.fields.values():
            self._masks[f.access or access] |= f.mask
            covered |= f.mask
        self._masks[access] |= full & ~covered
        self._read_zero = self._masks[WO] | self._masks[W1T]
        self._read_keep = ~self._read_zero
        # bus_write masks, precomputed (hot: every MMIO write)
        self._wr_mask = self._masks[RW] | self._masks[WO] | self._masks[W1T]
        self._w1c_mask = self._masks[W1C]
        self._w1s_mask = self._masks[W1S]

    # model-side access ----------------------------------------------------------------------------
    def __getattr__(self, name: str) -> int:
        # only called for names that are not real attributes: field reads (hot in models)
        d = self.__dict__
        fm = d.get("_fm")
        if fm is not None:
            ml = fm.get(name)
            if ml is not None:
                return (d["value"] & ml[0]) >> ml[1]
        raise AttributeError(f"register {d.get('name')} has no field {name}")

    def get(self, name: str) -> int:
        mask, lsb = self._fm[name]
        return (self.value & mask) >> lsb

    def set(self, **values: int) -> None:
        """Set fields from the model side, regardless of their software access type."""
        for name, v in values.items():
            f = self.fields[name]
            self.value = (self.value & ~f.mask) | ((int(v) << f.lsb) & f.mask)

    def reset(self) -> None:
        self.value = self.reset_value

    # bus-side access ------------------------------------------------------------------------------
    def bus_read(self) -> int:
        on_read = self.on_read
        v = on_read(self) if on_read is not None else self.value
        return v & self._read_keep

    def bus_write(self, data: int, byte_mask: int) -> None:
        """Apply a write of ``data`` to the bits in ``byte_mask`` with each field's semantics."""
        old = self.value
        rw = self._wr_mask & byte_mask
        new = (((old & ~rw) | (data & rw)) & ~(data & self._w1c_mask & byte_mask)) \
            | (data & self._w1s_mask & byte_mask)
        self.value = new
        on_write = self.on_write
        if on_write is not None:
            # on_write sees the written data as well (trigger bits are in `data`)
            on_write(self, old, data & byte_mask | (new & ~byte_mask))


class RegisterBank:
    """Registers of one peripheral, addressed by byte offset."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._regs: dict[int, Register] = {}
        # offset -> (register, byte shift): memoised _find results (hot: every MMIO access)
        self._where: dict[int, tuple[Register, int]] = {}
        # (offset, size) -> (register, bit shift, mask)
        self._where_w: dict[tuple[int, int], tuple[Register, int, int]] = {}
        self.unmodeled: dict[int, int] = {}      # offset -> access count (reads/writes to holes)

    def define(self, offset: int, name: str, reset: int = 0, *, fields: Iterable[Field] = (),
               access: str = RW, width: int = 32,
               on_write: Callable[[Register, int, int], None] | None = None,
               on_read: Callable[[Register], int] | None = None) -> Register:
        return self.add(Register(self, offset, name, reset, width, access, fields, on_write, on_read))

    def add(self, reg: Register) -> Register:
        """Put a register the model built (a ``Register`` subclass, e.g. one whose word lives in
        C) at its offset, under its name, as ``define`` does."""
        if reg.offset in self._regs:
            raise ValueError(f"{self.owner}: register {reg.name} redefines offset {reg.offset:#x} "
                             f"({self._regs[reg.offset].name})")
        self._regs[reg.offset] = reg
        self._where.clear()
        self._where_w.clear()
        setattr(self, reg.name, reg)
        return reg

    def reset(self) -> None:
        for r in self._regs.values():
            r.reset()

    def __iter__(self):
        return iter(self._regs.values())

    def _find(self, offset: int) -> tuple[Register | None, int]:
        base = offset & ~3
        reg = self._regs.get(base)
        if reg is None and offset & 2:
            reg = self._regs.get(offset & ~1)      # 16-bit registers at halfword offsets
            if reg is not None:
                return reg, offset - (offset & ~1)
        return reg, offset - base

    def read(self, offset: int, size: int = 4) -> int:
        hit = self._where.get(offset)
        if hit is None:
            reg, shift = self._find(offset)
            if reg is None:
                self.unmodeled[offset] = self.unmodeled.get(offset, 0) + 1
                return 0
            self._where[offset] = (reg, shift)
        else:
            reg, shift = hit
        if shift == 0 and size == 4:
            return reg.bus_read() & 0xFFFF_FFFF
        return (reg.bus_read() >> (8 * shift)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        hit = self._where_w.get((offset, size))
        if hit is None:
            reg, shift = self._find(offset)
            if reg is None:
                self.unmodeled[offset] = self.unmodeled.get(offset, 0) + 1
                return
            mask = (((1 << (8 * size)) - 1) << (8 * shift)) & ((1 << reg.width) - 1)
            hit = self._where_w[(offset, size)] = (reg, 8 * shift, mask)
        reg, bits, mask = hit
        reg.bus_write((value << bits) & mask, mask)
