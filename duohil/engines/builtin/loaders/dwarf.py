"""Struct layouts from an ELF's DWARF (pyelftools): decode status blocks, patch config blocks.

The firmware <-> harness contract (TEAM_NOTES.md) is that status, config and crash-record blocks are
plain C structs at global symbols, built with ``-g``; the harness never hard-codes an offset.

    layout = struct_layout(elf, "g_status")          # a Type tree (Struct/Array/Scalar)
    decode_struct(elf, "g_status", data)             # -> nested dicts / lists of ints
    patch_struct(elf, "g_config", {"freshness_ms": 50, "limits.soft_max": 1000}, data)

Dotted paths address nested members; array elements are ``name.3`` or ``name[3]``. Parsed DWARF is
cached per ELF path + mtime + size, so a campaign of many runs parses each image once; and what it
yields (a symbol's layout, a block's initial bytes, the symbol table) is kept between processes
with the image's other facts (``elf.image_facts``, per content): a fresh process whose images were
seen before opens no DWARF at all.
"""
from __future__ import annotations

import io
import os
import struct as _struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from duohil.errors import ConfigError

from .elf import ImageFacts, image_facts

# DW_ATE_* base-type encodings
_ATE_BOOLEAN = 0x02
_ATE_FLOAT = 0x04
_ATE_SIGNED = 0x05
_ATE_SIGNED_CHAR = 0x06
_ATE_UNSIGNED = 0x07
_ATE_UNSIGNED_CHAR = 0x08


# -- the layout model ------------------------------------------------------------------------------------
@dataclass
class Scalar:
    name: str
    size: int
    signed: bool = False
    kind: str = "int"           # int, bool, float, enum, pointer
    enumerators: dict[int, str] = field(default_factory=dict)

    def bounds(self, bits: int | None = None) -> tuple[int, int]:
        n = bits if bits is not None else 8 * self.size
        if self.kind == "bool":
            return (0, 1)
        if self.signed:
            return (-(1 << (n - 1)), (1 << (n - 1)) - 1)
        return (0, (1 << n) - 1)


@dataclass
class Member:
    name: str
    offset: int                 # byte offset in the enclosing struct
    type: "Type"
    bit_size: int | None = None
    bit_offset: int | None = None   # from the LSB of the storage unit at `offset` (little endian)


@dataclass
class Struct:
    name: str
    size: int
    members: list[Member]
    union: bool = False


@dataclass
class Array:
    element: "Type"
    count: int

    @property
    def size(self) -> int:
        return self.count * self.element.size


Type = Union[Scalar, Struct, Array]


# -- DWARF reading ---------------------------------------------------------------------------------------
#: names of the facts kept per image (elf.ImageFacts); ("type", symbol, address) and
#: ("initial", address, size) name a layout and a block's initial bytes
_HEAD = ("dwarf",)                   # (little endian, address size, has DWARF)
_SYMBOLS = ("dwarf-symbols",)        # the symbol table as symbol() reads it
class DwarfInfo:
    """The global variables of one ELF and their types."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._facts: ImageFacts = image_facts(path)
        except OSError as exc:
            raise ConfigError(f"cannot read firmware image: {exc}", file=path) from None
        self._parsed: tuple[Any, Any] | None = None       # (ELFFile, DWARFInfo or None), on demand
        head = self._facts.get(_HEAD)
        if head is None:
            elf, dw = self._parse()
            head = (elf.little_endian, elf.elfclass // 8, dw is not None)
            self._facts.remember(_HEAD, head)
        self.little, self.address_size, self.has_dwarf = head
        self._vars: dict[str, Any] | None = None
        self._types: dict[str, Type] = {}
        self._symbols: dict[str, tuple[int, int]] | None = None
        self.decoders: dict[str, Any] = {}          # symbol -> compiled decoder (decode_struct)

    def _parse(self) -> tuple[Any, Any]:
        """pyelftools' ELFFile and DWARFInfo of the image, made the first time a fact is not
        known yet."""
        if self._parsed is None:
            from elftools.common.exceptions import ELFError
            from elftools.elf.elffile import ELFFile
            try:
                elf = ELFFile(io.BytesIO(self._facts.data))
                self._parsed = (elf, elf.get_dwarf_info() if elf.has_dwarf_info() else None)
            except ELFError as exc:
                raise ConfigError(f"not a valid ELF file: {exc}", file=self.path) from None
        return self._parsed

    @property
    def _elf(self) -> Any:
        return self._parse()[0]

    @property
    def _dwarf(self) -> Any:
        return self._parse()[1]

    # global variables: name -> DIE (the defining one, with a location, wins)
    @staticmethod
    def _collect(cu: Any, out: dict[str, Any]) -> None:
        for die in cu.get_top_DIE().iter_children():
            if die.tag != "DW_TAG_variable":
                continue
            spec = die
            if "DW_AT_specification" in die.attributes:    # a definition of an `extern` declaration
                spec = die.get_DIE_from_attribute("DW_AT_specification")
            named = die if "DW_AT_name" in die.attributes else spec
            if "DW_AT_name" not in named.attributes:
                continue
            name = named.attributes["DW_AT_name"].value.decode("utf-8", "replace")
            if "DW_AT_type" not in spec.attributes and "DW_AT_type" not in die.attributes:
                continue
            has_loc = "DW_AT_location" in die.attributes
            if name not in out or has_loc and "DW_AT_location" not in out[name].attributes:
                out[name] = die

    def _index(self) -> dict[str, Any]:
        """Every CU's globals (slow on a big image: only when the quick lookup fails)."""
        if self._vars is not None:
            return self._vars
        out: dict[str, Any] = {}
        if self._dwarf is not None:
            for cu in self._dwarf.iter_CUs():
                self._collect(cu, out)
        self._vars = out
        return out

    def _variable(self, symbol: str) -> Any | None:
        """The variable's DIE. Parsing every CU costs ~0.3 s on the product images, so first look
        only in the CUs whose .debug_info holds ``DW_OP_addr <the symbol's address>`` (a global's
        location); GCC's .debug_aranges cover code only, so they cannot place a variable."""
        if self._vars is not None:
            return self._vars.get(symbol)
        assert self._dwarf is not None
        try:
            addr = self.symbol(symbol)[0]
        except ConfigError:
            addr = None
        if addr is not None:
            try:
                for cu in self._cus_mentioning(addr):
                    found: dict[str, Any] = {}
                    self._collect(cu, found)
                    if symbol in found and "DW_AT_location" in found[symbol].attributes:
                        return found[symbol]
            except Exception:  # noqa: BLE001 - unusual DWARF: the full index below decides
                pass
        return self._index().get(symbol)

    def _cus_mentioning(self, addr: int) -> list[Any]:
        assert self._dwarf is not None
        stream = self._dwarf.debug_info_sec.stream
        stream.seek(0)
        raw = stream.read()
        needle = b"\x03" + addr.to_bytes(self.address_size, "little" if self.little else "big")
        hits = []
        i = raw.find(needle)
        while i >= 0 and len(hits) < 8:
            hits.append(i)
            i = raw.find(needle, i + 1)
        if not hits:
            return []
        out = []
        for cu in self._dwarf.iter_CUs():
            if any(cu.cu_offset <= h < cu.cu_offset + cu.size for h in hits):
                out.append(cu)
        return out

    def use_symbols(self, symbols: dict[str, tuple[int, int]]) -> None:
        """Take the symbol table from an already parsed image (elf.py) instead of parsing it again."""
        if self._symbols is None:
            self._symbols = dict(symbols)

    def symbol(self, name: str) -> tuple[int, int]:
        """(address, size) from the symbol table."""
        if self._symbols is None:
            kept = self._facts.get(_SYMBOLS)
            if kept is None:
                kept = {}
                symtab = self._elf.get_section_by_name(".symtab")
                if symtab is not None:
                    for s in symtab.iter_symbols():
                        if s.name and s["st_info"]["type"] in ("STT_OBJECT", "STT_NOTYPE", "STT_FUNC"):
                            if s.name not in kept or s["st_info"]["bind"] == "STB_GLOBAL":
                                kept[s.name] = (s["st_value"], s["st_size"])
                self._facts.remember(_SYMBOLS, kept)
            self._symbols = dict(kept)
        sym = self._symbols.get(name)
        if sym is None:
            raise ConfigError(f"symbol {name!r} not found", file=self.path, field="symbol",
                              expected="a global symbol defined by the firmware")
        return sym

    def type_of(self, symbol: str) -> Type:
        t = self._types.get(symbol)
        if t is not None:
            return t
        # the layout found depends on the image's bytes and on the address the symbol table gives
        # (``_variable`` looks in the CUs that mention it): both are in the fact's name
        try:
            fact = ("type", symbol, self.symbol(symbol)[0])
        except ConfigError:
            fact = ("type", symbol, None)
        t = self._facts.get(fact)
        if t is None:
            t = self._type_of(symbol)
            self._facts.remember(fact, t)
        self._types[symbol] = t
        return t

    def _type_of(self, symbol: str) -> Type:
        if not self.has_dwarf:
            raise ConfigError(f"no DWARF debug information, cannot decode {symbol!r}", file=self.path,
                              field="symbol", expected="firmware built with -g")
        die = self._variable(symbol)
        if die is None:
            self.symbol(symbol)             # a missing symbol is the clearer error
            raise ConfigError(f"no DWARF description of {symbol!r}", file=self.path, field="symbol",
                              expected="a global variable of a struct type, built with -g")
        tdie = die
        if "DW_AT_type" not in die.attributes and "DW_AT_specification" in die.attributes:
            tdie = die.get_DIE_from_attribute("DW_AT_specification")
        return self._build(tdie.get_DIE_from_attribute("DW_AT_type"), ())

    def initial_bytes(self, symbol: str) -> bytes:
        """The bytes the image holds for ``symbol`` (``initial_bytes``)."""
        addr, _ = self.symbol(symbol)
        size = self.type_of(symbol).size
        fact = ("initial", addr, size)
        kept = self._facts.get(fact)
        if kept is None:
            kept = self._initial_bytes(symbol, addr, size)
            self._facts.remember(fact, kept)
        return kept

    def _initial_bytes(self, symbol: str, addr: int, size: int) -> bytes:
        for sec in self._elf.iter_sections():
            start, ssize = sec["sh_addr"], sec["sh_size"]
            if sec["sh_flags"] & 0x2 and start <= addr and addr + size <= start + ssize:   # SHF_ALLOC
                if sec["sh_type"] == "SHT_NOBITS":
                    return bytes(size)
                data = sec.data()
                return bytes(data[addr - start:addr - start + size])
        raise ConfigError(f"symbol {symbol!r} at {addr:#x} is in no loaded section", file=self.path,
                          field=symbol)

    def _build(self, die: Any, stack: tuple[int, ...]) -> Type:
        # strip typedef / const / volatile / restrict / atomic
        while die.tag in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type",
                          "DW_TAG_restrict_type", "DW_TAG_atomic_type"):
            if "DW_AT_type" not in die.attributes:
                return Scalar("void", 0)
            die = die.get_DIE_from_attribute("DW_AT_type")
        a = die.attributes
        name = a["DW_AT_name"].value.decode("utf-8", "replace") if "DW_AT_name" in a else ""
        if die.tag == "DW_TAG_base_type":
            enc = a["DW_AT_encoding"].value
            size = a["DW_AT_byte_size"].value
            if enc == _ATE_FLOAT:
                return Scalar(name, size, True, "float")
            if enc == _ATE_BOOLEAN:
                return Scalar(name, size, False, "bool")
            return Scalar(name, size, enc in (_ATE_SIGNED, _ATE_SIGNED_CHAR), "int")
        if die.tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type"):
            size = a["DW_AT_byte_size"].value if "DW_AT_byte_size" in a else self.address_size
            return Scalar(name or "pointer", size, False, "pointer")
        if die.tag == "DW_TAG_enumeration_type":
            size = a["DW_AT_byte_size"].value
            enumerators = {}
            signed = False
            for c in die.iter_children():
                if c.tag == "DW_TAG_enumerator":
                    v = c.attributes["DW_AT_const_value"].value
                    enumerators[v] = c.attributes["DW_AT_name"].value.decode()
                    signed = signed or v < 0
            if "DW_AT_type" in a:
                under = self._build(die.get_DIE_from_attribute("DW_AT_type"), stack)
                if isinstance(under, Scalar):
                    signed = under.signed
            return Scalar(name, size, signed, "enum", enumerators)
        if die.tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            if die.offset in stack:
                raise ConfigError(f"recursive struct {name!r}", file=self.path)
            if "DW_AT_declaration" in a:
                raise ConfigError(f"struct {name!r} is only declared in the DWARF (incomplete type)",
                                  file=self.path, expected="the struct's definition visible")
            members = []
            for c in die.iter_children():
                if c.tag != "DW_TAG_member":
                    continue
                ca = c.attributes
                mname = ca["DW_AT_name"].value.decode() if "DW_AT_name" in ca else ""
                mtype = self._build(c.get_DIE_from_attribute("DW_AT_type"), stack + (die.offset,))
                off = 0
                if "DW_AT_data_member_location" in ca:
                    loc = ca["DW_AT_data_member_location"].value
                    if isinstance(loc, list):       # DWARF 2 location expression DW_OP_plus_uconst
                        off = _uleb_expr(loc)
                    else:
                        off = int(loc)
                bit_size = ca["DW_AT_bit_size"].value if "DW_AT_bit_size" in ca else None
                bit_off = None
                if bit_size is not None:
                    if "DW_AT_data_bit_offset" in ca:
                        total = ca["DW_AT_data_bit_offset"].value
                        off, bit_off = total // 8, total % 8
                    else:                          # DWARF <= 3: from the MSB of the storage unit
                        storage = ca["DW_AT_byte_size"].value if "DW_AT_byte_size" in ca \
                            else mtype.size
                        msb_off = ca["DW_AT_bit_offset"].value
                        bit_off = 8 * storage - msb_off - bit_size
                members.append(Member(mname, off, mtype, bit_size, bit_off))
            size = a["DW_AT_byte_size"].value if "DW_AT_byte_size" in a else 0
            return Struct(name, size, members, union=die.tag == "DW_TAG_union_type")
        if die.tag == "DW_TAG_array_type":
            elem = self._build(die.get_DIE_from_attribute("DW_AT_type"), stack)
            dims = []
            for c in die.iter_children():
                if c.tag == "DW_TAG_subrange_type":
                    ca = c.attributes
                    if "DW_AT_count" in ca:
                        dims.append(int(ca["DW_AT_count"].value))
                    elif "DW_AT_upper_bound" in ca:
                        lo = ca["DW_AT_lower_bound"].value if "DW_AT_lower_bound" in ca else 0
                        dims.append(int(ca["DW_AT_upper_bound"].value) - lo + 1)
                    else:
                        dims.append(0)          # flexible array member
            t: Type = elem
            for n in reversed(dims or [0]):
                t = Array(t, n)
            return t
        raise ConfigError(f"unsupported DWARF type {die.tag} ({name or 'anonymous'})",
                          file=self.path, expected="structs of fixed-width integers, arrays, enums")


def _uleb_expr(expr: list[int]) -> int:
    if expr and expr[0] == 0x23:          # DW_OP_plus_uconst ULEB128
        v = 0
        shift = 0
        for b in expr[1:]:
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return v
    raise ValueError(f"unsupported member location expression {expr}")


_CACHE: dict[tuple[str, int, int], DwarfInfo] = {}
#: the path as given -> (mtime, size, info): a status block is decoded every few ms of a run, and
#: resolving the path each time cost more than the decode
_BY_NAME: dict[str, tuple[int, int, DwarfInfo]] = {}


def dwarf_info(elf: str | Path) -> DwarfInfo:
    """The parsed DWARF of ``elf``, cached per path + mtime + size."""
    path = Path(elf)
    try:
        st = path.stat()
    except OSError:
        raise ConfigError("firmware image not found", file=path,
                          expected="an ELF built by `make firmware`") from None
    name = os.path.abspath(elf)
    hit = _BY_NAME.get(name)
    if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2]
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    info = _CACHE.get(key)
    if info is None:
        for k in [k for k in _CACHE if k[0] == key[0]]:
            del _CACHE[k]
        info = _CACHE[key] = DwarfInfo(path)
    _BY_NAME[name] = (st.st_mtime_ns, st.st_size, info)
    return info


# -- decode ---------------------------------------------------------------------------------------------
def _int_from(data: bytes, offset: int, size: int, signed: bool, little: bool) -> int:
    return int.from_bytes(data[offset:offset + size], "little" if little else "big", signed=signed)


_INT_FMT = {1: "b", 2: "h", 4: "i", 8: "q"}


def _compile(t: Type, little: bool) -> Any:
    """A decoder ``f(data, off)`` for ``t``: dicts for structs, lists for arrays, bools for bool
    members, bitfields extracted; the layout is walked once per type, not once per decode
    (status blocks are sampled every 5 ms)."""
    order = "<" if little else ">"
    if isinstance(t, Scalar):
        if t.size == 0:
            return lambda data, off: None
        if t.kind == "float" and t.size not in (4, 8):
            return lambda data, off: _int_from(data, off, t.size, False, little)
        if t.kind == "float":
            unpack = _struct.Struct(order + {4: "f", 8: "d"}[t.size]).unpack_from
        elif t.size in _INT_FMT:
            c = _INT_FMT[t.size]
            unpack = _struct.Struct(order + (c if t.signed else c.upper())).unpack_from
        else:
            size, signed = t.size, t.signed
            if t.kind == "bool":
                return lambda data, off: bool(_int_from(data, off, size, signed, little))
            return lambda data, off: _int_from(data, off, size, signed, little)
        if t.kind == "bool":
            return lambda data, off: bool(unpack(data, off)[0])
        return lambda data, off: unpack(data, off)[0]
    if isinstance(t, Array):
        el = _compile(t.element, little)
        step, count = t.element.size, t.count
        return lambda data, off: [el(data, off + i * step) for i in range(count)]
    flat = _compile_flat(t, order)
    if flat is not None:
        return flat
    parts: list[tuple[str, Any]] = []
    for i, m in enumerate(t.members):
        key = m.name or f"_anon{i}"
        if m.bit_size is not None and isinstance(m.type, Scalar):
            storage = max(m.type.size, (m.bit_offset + m.bit_size + 7) // 8)

            def bits(data: bytes, off: int, o: int = m.offset, n: int = storage,
                     shift: int = m.bit_offset, width: int = m.bit_size,
                     signed: bool = m.type.signed) -> int:
                v = (_int_from(data, off + o, n, False, little) >> shift) & ((1 << width) - 1)
                if signed and v >> (width - 1):
                    v -= 1 << width
                return v
            parts.append((key, bits))
        else:
            sub = _compile(m.type, little)
            parts.append((key, lambda data, off, o=m.offset, f=sub: f(data, off + o)))
    return lambda data, off: {k: f(data, off) for k, f in parts}


def _compile_flat(t: Struct, order: str, skip: set[str] | frozenset[str] = frozenset()) -> Any:
    """One ``struct.unpack_from`` for a struct whose members are all plain 1/2/4/8-byte integers,
    bools or floats at increasing offsets (the status blocks): None when it is not one. Members
    named in ``skip`` are read as padding and left out of the dict."""
    fmt = order
    pos = 0
    keys: list[str] = []
    names: list[str] = []
    bools: list[int] = []
    for i, m in enumerate(t.members):
        mt = m.type
        if not isinstance(mt, Scalar) or m.bit_size is not None or m.offset < pos:
            return None
        if mt.kind == "float":
            c = {4: "f", 8: "d"}.get(mt.size)
        else:
            c = _INT_FMT.get(mt.size)
            if c is not None and not mt.signed:
                c = c.upper()
        if c is None:
            return None
        name = m.name or f"_anon{i}"
        names.append(name)
        if name in skip:
            c = "x" * mt.size
        fmt += "x" * (m.offset - pos) + c
        pos = m.offset + mt.size
        if name in skip:
            continue
        if mt.kind == "bool":
            bools.append(len(keys))
        keys.append(name)
    if len(set(names)) != len(names):
        return None
    st = _struct.Struct(fmt)
    unpack = st.unpack_from
    if bools:
        def dec(data: bytes, off: int) -> dict[str, Any]:
            vals = list(unpack(data, off))
            for j in bools:
                vals[j] = bool(vals[j])
            return dict(zip(keys, vals))
        return dec

    def flat(data: Any, off: int) -> dict[str, Any]:
        return dict(zip(keys, unpack(data, off)))
    # for many rows at once (SampleLog's raw rows): the values, in ``fields``' order, are what
    # ``struct`` unpacks; ``ints``: all of them plain ints
    flat.fields = tuple(keys)                                    # type: ignore[attr-defined]
    flat.struct = st                                             # type: ignore[attr-defined]
    flat.ints = not any(ch in "fde?" for ch in fmt)              # type: ignore[attr-defined]
    return flat


def struct_layout(elf: str | Path, symbol: str) -> Type:
    return dwarf_info(elf).type_of(symbol)


def struct_size(elf: str | Path, symbol: str) -> int:
    return struct_layout(elf, symbol).size


def decode_struct(elf: str | Path, symbol: str, data: bytes) -> Any:
    """Decode ``data`` (the bytes at ``symbol``) into nested dicts (structs) and lists (arrays)."""
    return decoder(elf, symbol)(data)


def decoder(elf: str | Path, symbol: str) -> Any:
    """``decode_struct(elf, symbol, ·)`` as a function of the data alone, compiled once."""
    info = dwarf_info(elf)
    dec = info.decoders.get(symbol)
    if dec is None:
        t = info.type_of(symbol)
        compiled = _compile(t, info.little)
        need, path = t.size, info.path

        def dec(data: bytes) -> Any:
            if len(data) < need:
                raise ConfigError(f"{len(data)} bytes given for {symbol!r}, its type needs "
                                  f"{need}", file=path, field=symbol)
            return compiled(bytes(data), 0)
        info.decoders[symbol] = dec
    return dec


def field_reader(elf: str | Path, symbol: str, keys: tuple[str, ...]) -> Any:
    """``f(buffer, offset) -> {key: value}`` for those of ``keys`` that are members of the flat
    struct at ``symbol`` (plain integers, bools, floats: the status blocks), in ``keys``' order,
    read straight from ``buffer`` with one ``unpack_from`` that skips the other members (Duo's
    status sampling: ~20 of the STM32 block's 56 fields, every 5 ms). None when the struct is not
    flat (then decode the whole block). Compiled once per (symbol, keys)."""
    info = dwarf_info(elf)
    ck = (symbol, keys)
    if ck in info.decoders:
        return info.decoders[ck]
    t = info.type_of(symbol)
    reader = None
    if isinstance(t, Struct):
        names = [m.name or f"_anon{i}" for i, m in enumerate(t.members)]
        want = [k for k in dict.fromkeys(keys) if k in names]
        flat = _compile_flat(t, "<" if info.little else ">", skip=set(names) - set(want))
        if flat is not None and want == [n for n in names if n in want]:
            reader = flat                                  # keys already in member order
        elif flat is not None:
            def reader(data: Any, off: int) -> dict[str, Any]:
                got = flat(data, off)
                return {k: got[k] for k in want}
            if getattr(flat, "fields", None):      # many rows at once: the same, reordered
                reader.fields = tuple(want)                                # type: ignore[attr-defined]
                reader.struct = flat.struct                                # type: ignore[attr-defined]
                reader.ints = flat.ints                                    # type: ignore[attr-defined]
                reader.order = tuple(flat.fields.index(k) for k in want)   # type: ignore[attr-defined]
    info.decoders[ck] = reader
    return reader


# -- encode (config patches) -----------------------------------------------------------------------------
def field_paths(t: Type, prefix: str = "") -> list[str]:
    """Every leaf path of a type (``limits.soft_max``, ``gains.2``), for error messages."""
    if isinstance(t, Scalar):
        return [prefix] if prefix else []
    if isinstance(t, Array):
        if isinstance(t.element, Scalar):
            return [f"{prefix}.0..{t.count - 1}" if prefix else f"0..{t.count - 1}"]
        return field_paths(t.element, f"{prefix}.0" if prefix else "0") + \
            ([f"{prefix}.<0..{t.count - 1}>"] if t.count > 1 else [])
    out = []
    for m in t.members:
        if m.name:
            out.extend(field_paths(m.type, f"{prefix}.{m.name}" if prefix else m.name))
    return out


def _split_path(path: str) -> list[str]:
    return [p for p in path.replace("[", ".").replace("]", "").split(".") if p != ""]


def _flatten(overrides: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in overrides.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.extend(_flatten(v, path))
        else:
            out.append((path, v))
    return out


def _locate(t: Type, parts: list[str], full: str, info: DwarfInfo, symbol: str,
            root: Type) -> tuple[Type, int, Member | None]:
    off = 0
    member: Member | None = None
    for i, part in enumerate(parts):
        member = None
        if isinstance(t, Struct):
            m = next((m for m in t.members if m.name == part), None)
            if m is None:
                raise ConfigError(f"{symbol} has no field {full!r}", file=info.path, field=full,
                                  expected="one of " + ", ".join(field_paths(root)))
            off += m.offset
            t = m.type
            member = m
        elif isinstance(t, Array):
            if not part.isdigit() or int(part) >= t.count:
                raise ConfigError(f"{symbol}: {'.'.join(parts[:i]) or 'index'} is an array of "
                                  f"{t.count}; {part!r} is not an index of it", file=info.path,
                                  field=full, expected=f"an index 0..{t.count - 1}")
            off += int(part) * t.element.size
            t = t.element
        else:
            raise ConfigError(f"{symbol}: {'.'.join(parts[:i])} is a scalar, it has no field "
                              f"{part!r}", file=info.path, field=full,
                              expected="one of " + ", ".join(field_paths(root)))
    return t, off, member


def _store(t: Type, member: Member | None, buf: bytearray, off: int, value: Any, full: str,
           info: DwarfInfo, symbol: str) -> None:
    if isinstance(t, Array):
        if not isinstance(value, (list, tuple)) or len(value) > t.count:
            raise ConfigError(f"{symbol}.{full} is an array of {t.count}; got {value!r}",
                              file=info.path, field=full, expected=f"a list of up to {t.count} values")
        for i, v in enumerate(value):
            _store(t.element, None, buf, off + i * t.element.size, v, f"{full}.{i}", info, symbol)
        return
    if isinstance(t, Struct):
        raise ConfigError(f"{symbol}.{full} is a struct; set its fields", file=info.path, field=full,
                          expected="one of " + ", ".join(f"{full}.{p}" for p in field_paths(t)))
    bo = "little" if info.little else "big"
    if t.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{symbol}.{full} is a {t.name}; got {value!r}", file=info.path,
                              field=full, expected="a number")
        fmt = ("<" if info.little else ">") + {4: "f", 8: "d"}[t.size]
        _struct.pack_into(fmt, buf, off, float(value))
        return
    if isinstance(value, bool):
        value = int(value)
    if t.kind == "enum" and isinstance(value, str):
        by_name = {n: v for v, n in t.enumerators.items()}
        if value not in by_name:
            raise ConfigError(f"{symbol}.{full}: {value!r} is not an enumerator of {t.name}",
                              file=info.path, field=full, expected="one of " + ", ".join(by_name))
        value = by_name[value]
    if not isinstance(value, int):
        raise ConfigError(f"{symbol}.{full} is an integer field ({t.name}); got {value!r}",
                          file=info.path, field=full, expected="an integer")
    bits = member.bit_size if member is not None and member.bit_size is not None else None
    lo, hi = t.bounds(bits)
    if not lo <= value <= hi:
        sign = "signed" if t.signed else "unsigned"
        what = f"{sign} {bits}-bit bit-field" if bits else \
            f"{t.name or 'integer'}, {sign} {8 * t.size}-bit"
        raise ConfigError(f"{symbol}.{full} = {value} is out of range for its type ({what})",
                          file=info.path, field=full, expected=f"{lo}..{hi}")
    if bits is not None and member is not None and member.bit_offset is not None:
        storage = max(t.size, (member.bit_offset + bits + 7) // 8)
        raw = int.from_bytes(buf[off:off + storage], bo)
        mask = ((1 << bits) - 1) << member.bit_offset
        raw = (raw & ~mask) | ((value << member.bit_offset) & mask)
        buf[off:off + storage] = raw.to_bytes(storage, bo)
        return
    buf[off:off + t.size] = (value & ((1 << (8 * t.size)) - 1)).to_bytes(t.size, bo)


def encode_struct(elf: str | Path, symbol: str, data: bytes, overrides: dict[str, Any]) -> bytes:
    """Return ``data`` (the struct's current bytes) with ``overrides`` applied. Keys are dotted
    paths (``limits.soft_max``, ``gains.2`` / ``gains[2]``); a value may also be a nested dict
    (for a struct) or a list (for an array)."""
    info = dwarf_info(elf)
    root = info.type_of(symbol)
    if not isinstance(root, Struct):
        raise ConfigError(f"{symbol!r} is not a struct", file=info.path, field=symbol,
                          expected="a global variable of a struct type")
    if len(data) < root.size:
        raise ConfigError(f"{len(data)} bytes given for {symbol!r}, its type needs {root.size}",
                          file=info.path, field=symbol)
    buf = bytearray(data[:root.size])
    for path, value in _flatten(overrides):
        parts = _split_path(path)
        if not parts:
            raise ConfigError(f"{symbol}: empty field name", file=info.path, field=path,
                              expected="one of " + ", ".join(field_paths(root)))
        t, off, member = _locate(root, parts, path, info, symbol, root)
        _store(t, member, buf, off, value, path, info, symbol)
    return bytes(buf) + bytes(data[root.size:])


def initial_bytes(elf: str | Path, symbol: str) -> bytes:
    """The bytes the ELF file holds for ``symbol`` (its initialiser; zeros in NOBITS sections)."""
    return dwarf_info(elf).initial_bytes(symbol)


def patch_struct(elf: str | Path, symbol: str, overrides: dict[str, Any],
                 data: bytes | None = None) -> bytes:
    """The bytes of ``symbol``'s struct with ``overrides`` applied; ``data`` defaults to the ELF's
    initialiser (what a fresh load puts in memory)."""
    if data is None:
        data = initial_bytes(elf, symbol)
    return encode_struct(elf, symbol, data, overrides)
