"""unicorn's C library as duohil calls it: the same library the ``unicorn`` package loaded, without
the binding's per-argument conversions (``RAW``), and ``MemPort`` (memory reads/writes into a kept
buffer). Shared by the machine (its memory) and the CPU cores (cortexm.py's register batches);
it depends on nothing else in the engine.
"""
from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING

try:
    from unicorn import UcError
    from unicorn.unicorn_py3.unicorn import uclib as _uclib
    #: unicorn's C library once more, but with no ctypes ``argtypes``: the binding's prototypes
    #: convert every argument on every call (about 1.1 us of a 2 us register-batch read,
    #: measured), while ctypes objects built once (arrays, c_void_p handle) pass as they are.
    #: Integers wider than 32 bits must be passed as ``ctypes.c_uint64``.
    RAW = ctypes.CDLL(_uclib._name, handle=_uclib._handle)
except (ImportError, AttributeError, OSError):  # pragma: no cover - other binding layouts
    RAW = None
#: RAW, or the binding's own library object where RAW cannot be made (same C functions)
LIB = RAW
if LIB is None:  # pragma: no cover - other binding layouts
    from unicorn.unicorn_py3.unicorn import uclib as LIB
U64 = ctypes.c_uint64
_UNTIL = U64(0xFFFF_FFFF)         # odd, so never a Thumb/RISC-V pc: slices end by count or stop
_NO_TIMEOUT = U64(0)
_FOUR = U64(4)
_THIRTY_TWO = U64(32)
_UNPACK8 = struct.Struct("<8I").unpack_from


def _separate_ram_blocks(uc: "Uc") -> None:
    """Work around a unicorn 2.1.4 bug that cost most of the CPU time of some images.

    QEMU gives each RAM block a ``ram_addr`` range; translated code is tracked per ram_addr
    page and a store to a page holding code invalidates that code. Until some block has been
    freed, unicorn takes a new block's offset from the tail of its block list, which it keeps
    sorted by *decreasing size*: once a block larger than the first one is mapped, later
    blocks get ram_addr ranges that overlap earlier ones. With our memory maps every RAM
    (DTCM, AXI SRAM, ...) overlapped the flash, so each store to the stack at offset X threw
    away the translated code at flash offset X: the buggy STM32 image, whose stack sits at the
    offsets of its main loop, retranslated that loop ~4000 times per virtual second (29 025
    translations in a 1.1 s run instead of ~570; found with gdb on tb_gen_code). Once a block
    has been freed, unicorn searches for a real gap instead, so: map one page and unmap it
    before any memory is mapped. Nothing observable changes, only the cost."""
    uc.mem_map(0, 0x1000)
    uc.mem_unmap(0, 0x1000)


class MemPort:
    """``uc_mem_read``/``uc_mem_write`` through ctypes with a preallocated buffer of ``size``
    bytes (the binding's ``mem_read`` allocates a buffer and a bytearray per call). Reads are
    at most ``size`` bytes."""

    def __init__(self, uc: "Uc", size: int = 0x80) -> None:
        self.h = uc._uch
        self.size = size
        self.buf = ctypes.create_string_buffer(size)
        self._rd = LIB.uc_mem_read
        self._wr = LIB.uc_mem_write

    def read(self, address: int, size: int) -> bytes:
        err = self._rd(self.h, U64(address), self.buf, U64(size))
        if err:
            raise UcError(err)
        return self.buf.raw[:size]

    def words8(self, address: int) -> tuple[int, ...]:
        """The 8 words at ``address`` (a basic exception frame)."""
        err = self._rd(self.h, U64(address), self.buf, _THIRTY_TWO)
        if err:
            raise UcError(err)
        return _UNPACK8(self.buf)

    def word(self, address: int) -> int:
        err = self._rd(self.h, U64(address & 0xFFFFFFFF), self.buf, _FOUR)
        if err:
            raise UcError(err)
        return int.from_bytes(self.buf.raw[:4], "little")

    def write(self, address: int, data: bytes) -> None:
        err = self._wr(self.h, U64(address), data, U64(len(data)))
        if err:
            raise UcError(err)



if TYPE_CHECKING:  # pragma: no cover
    from unicorn import Uc
