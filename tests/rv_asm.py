"""A few RV32I instructions, hand-assembled, for tests that run guest code without a toolchain."""
from __future__ import annotations

LOADS = {1: 4, 2: 5, 4: 2}          # funct3 of lbu, lhu, lw by access size
STORES = {1: 0, 2: 1, 4: 2}         # sb, sh, sw


def lui(rd: int, imm20: int) -> int:
    return ((imm20 & 0xFFFFF) << 12) | (rd << 7) | 0x37


def addi(rd: int, rs1: int, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (rd << 7) | 0x13


def li(rd: int, value: int) -> list[int]:
    """lui + addi: any 32-bit value."""
    value &= 0xFFFF_FFFF
    lo = value & 0xFFF
    if lo >= 0x800:
        lo -= 0x1000
    return [lui(rd, ((value - lo) >> 12) & 0xFFFFF), addi(rd, rd, lo)]


def load(size: int, rd: int, rs1: int, imm: int = 0) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (LOADS[size] << 12) | (rd << 7) | 0x03


def store(size: int, rs2: int, rs1: int, imm: int = 0) -> int:
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (STORES[size] << 12) | ((imm & 0x1F) << 7) | 0x23


def jal(rd: int, offset: int) -> int:
    imm = offset & 0x1F_FFFF
    return ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3FF) << 21) | (((imm >> 11) & 1) << 20)
            | (((imm >> 12) & 0xFF) << 12) | (rd << 7) | 0x6F)


def code(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


def andi(rd: int, rs1: int, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (7 << 12) | (rd << 7) | 0x13


def beq(rs1: int, rs2: int, offset: int) -> int:
    imm = offset & 0x1FFF
    return ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3F) << 25) | (rs2 << 20) | (rs1 << 15)
            | (((imm >> 1) & 0xF) << 8) | (((imm >> 11) & 1) << 7) | 0x63)
