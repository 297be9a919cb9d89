"""ELF images for the builtin engine: load segments, resolve symbols.

Segments load at their physical address (p_paddr, the LMA), as Renode's ``sysbus LoadELF`` does
(renode.md / esp32c3-peer.md section 4.1); startup code copies .data from its LMA. Struct layouts for
status blocks are decoded from DWARF by ``dwarf.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from duohil.errors import ConfigError


@dataclass
class Symbol:
    name: str
    address: int
    size: int
    kind: str          # STT_FUNC, STT_OBJECT, STT_NOTYPE...


@dataclass
class ElfImage:
    path: Path
    machine: str                         # e_machine: "EM_ARM", "EM_RISCV"
    entry: int
    segments: list[tuple[int, bytes, int]] = field(default_factory=list)   # (paddr, data, memsz)
    symbols: dict[str, Symbol] = field(default_factory=dict)
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)     # name -> (addr, size)
    # (vaddr, memsz) of each PT_LOAD segment: where it runs, .bss included (checked against RAM)
    runtime: list[tuple[int, int]] = field(default_factory=list)
    # SHF_ALLOC sections: name -> (addr, size), to name what does not fit
    alloc: dict[str, tuple[int, int]] = field(default_factory=dict)

    def symbol(self, name: str) -> Symbol:
        sym = self.symbols.get(name)
        if sym is None:
            raise ConfigError(f"symbol {name!r} not found", file=self.path, field="symbol",
                              expected="a global symbol defined by the firmware")
        return sym

    def function_at(self, address: int) -> Symbol | None:
        """The function symbol containing ``address`` (Thumb bit ignored)."""
        address &= ~1
        best = None
        for s in self.symbols.values():
            if s.kind == "STT_FUNC" and s.size:
                start = s.address & ~1
                if start <= address < start + s.size:
                    best = s
        return best


def read_elf(path: str | Path) -> ElfImage:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("firmware image not found", file=path,
                          expected="an ELF built by `make firmware`")
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            img = ElfImage(path=path, machine=elf["e_machine"], entry=elf["e_entry"])
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0 and seg["p_memsz"] == 0:
                    continue
                img.segments.append((seg["p_paddr"], seg.data(), seg["p_memsz"]))
                img.runtime.append((seg["p_vaddr"], seg["p_memsz"]))
            for sec in elf.iter_sections():
                if sec.name:
                    img.sections[sec.name] = (sec["sh_addr"], sec["sh_size"])
                    if sec["sh_flags"] & 0x2 and sec["sh_size"]:          # SHF_ALLOC
                        img.alloc[sec.name] = (sec["sh_addr"], sec["sh_size"])
            symtab = elf.get_section_by_name(".symtab")
            if symtab is not None:
                for s in symtab.iter_symbols():
                    if not s.name or s["st_info"]["type"] in ("STT_FILE", "STT_SECTION"):
                        continue
                    prev = img.symbols.get(s.name)
                    # prefer global definitions over local ones of the same name
                    if prev is None or s["st_info"]["bind"] == "STB_GLOBAL":
                        img.symbols[s.name] = Symbol(s.name, s["st_value"], s["st_size"],
                                                     s["st_info"]["type"])
    except ELFError as exc:
        raise ConfigError(f"not a valid ELF file: {exc}", file=path) from None
    return img


def load_segments(img: ElfImage, write: "callable", mapped: "callable") -> None:
    """Write each PT_LOAD segment's file bytes at its LMA. ``mapped(addr, size)`` says whether the
    target memory exists (adjacent memories count as one: the H743's two flash banks hold one
    image); an unmapped segment, or one whose run-time extent (.data + .bss at its VMA) does not
    fit the memory there, is an error naming the image, the section and the address."""
    for paddr, data, _memsz in img.segments:
        if not data:
            continue
        if not mapped(paddr, len(data)):
            raise ConfigError(f"segment at {paddr:#010x} ({len(data)} bytes) is outside every memory "
                              f"of the platform", file=img.path,
                              expected="a firmware linked for this platform's memory map")
        write(paddr, data)
    for vaddr, memsz in img.runtime:
        if memsz and not mapped(vaddr, memsz):
            inside = [f"{n} ({a:#x}, {sz} bytes)" for n, (a, sz) in img.alloc.items()
                      if vaddr <= a < vaddr + memsz and not mapped(a, sz)]
            raise ConfigError(f"segment at {vaddr:#010x} needs {memsz} bytes at run time but the "
                              f"memory there is smaller or absent"
                              + (f": {', '.join(inside)} does not fit" if inside else ""),
                              file=img.path, field=".bss/.data",
                              expected="sections that fit the platform's RAM (check the linker script)")


def loaded_bytes(img: ElfImage) -> int:
    """How many bytes the image loads (0: nothing to run)."""
    return sum(len(data) for _p, data, _m in img.segments)
