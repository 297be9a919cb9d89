"""The register/field helper every peripheral model is declared with."""
from __future__ import annotations

import pytest

from duohil.engines.builtin.kernel.regs import RO, W1C, W1S, WO, Field, RegisterBank


@pytest.fixture
def bank() -> RegisterBank:
    b = RegisterBank("usart")
    b.define(0x00, "CR1", fields=[Field("UE", 0), Field("RE", 2), Field("TE", 3), Field("IDLEIE", 4)])
    b.define(0x1C, "ISR", reset=0xC0, access=RO,
             fields=[Field("IDLE", 4), Field("RXNE", 5), Field("TC", 6), Field("TXE", 7)])
    b.define(0x20, "ICR", access=WO, fields=[Field("IDLECF", 4)])
    b.define(0x24, "FLAGS", fields=[Field("A", 0, access=W1C), Field("B", 1, access=W1S),
                                    Field("N", 8, width=8)])
    return b


def test_reset_values_and_fields(bank):
    assert bank.read(0x1C) == 0xC0
    assert bank.ISR.TXE == 1 and bank.ISR.IDLE == 0


def test_read_only_ignores_writes(bank):
    bank.write(0x1C, 4, 0)
    assert bank.read(0x1C) == 0xC0


def test_write_only_reads_zero_but_is_seen(bank):
    seen = []
    bank.ICR.on_write = lambda reg, old, new: seen.append(new)
    bank.write(0x20, 4, 0x10)
    assert bank.read(0x20) == 0 and seen == [0x10]


def test_w1c_and_w1s(bank):
    bank.FLAGS.set(A=1)
    bank.write(0x24, 4, 0)                 # writing 0 leaves a w1c bit alone
    assert bank.FLAGS.A == 1
    bank.write(0x24, 4, 1)
    assert bank.FLAGS.A == 0
    bank.write(0x24, 4, 2)
    bank.write(0x24, 4, 0)                 # writing 0 leaves a w1s bit alone
    assert bank.FLAGS.B == 1


def test_byte_access_touches_only_its_byte(bank):
    bank.write(0x24, 4, 0x0000AB00)
    assert bank.FLAGS.N == 0xAB
    bank.FLAGS.set(A=1)
    bank.write(0x25, 1, 0x12)              # byte 1 only: the w1c bit in byte 0 is not written
    assert bank.FLAGS.N == 0x12 and bank.FLAGS.A == 1
    assert bank.read(0x25, 1) == 0x12


def test_on_read_computes_value(bank):
    bank.ISR.on_read = lambda reg: reg.value | 0x10
    assert bank.read(0x1C) == 0xD0


def test_holes_read_zero_and_are_counted(bank):
    assert bank.read(0x40) == 0
    bank.write(0x40, 4, 1)
    assert bank.unmodeled[0x40] == 2


def test_redefinition_is_an_error(bank):
    with pytest.raises(ValueError, match="redefines offset 0x0"):
        bank.define(0x00, "AGAIN")


def test_reset_restores(bank):
    bank.write(0x00, 4, 0x1D)
    assert bank.CR1.IDLEIE == 1
    bank.reset()
    assert bank.read(0x00) == 0
