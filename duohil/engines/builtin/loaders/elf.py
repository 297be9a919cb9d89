"""ELF images for the builtin engine: load segments, resolve symbols.

Segments load at their physical address (p_paddr, the LMA), as Renode's ``sysbus LoadELF`` does
(renode.md / esp32c3-peer.md section 4.1); startup code copies .data from its LMA. Struct layouts for
status blocks are decoded from DWARF by ``dwarf.py``.

What is read from an image (the ``ElfImage``, and the struct layouts and initial bytes ``dwarf.py``
works out) is kept between processes, per content: ``ImageFacts``, one file per image in
``cache_dir()`` named by the SHA-256 of the image's bytes and of these loaders' own code. A fresh
``duohil run`` then parses no ELF with pyelftools (~0.1 s of CPU for the two product images); a
rebuilt image has other bytes, hence another key, and is read again.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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


# -- what was read from an image, kept per content ---------------------------------------------------
#: the cache's directory (``off`` or ``0``: keep nothing between processes); default
#: ``$XDG_CACHE_HOME/duohil`` or ``~/.cache/duohil``. Images' facts are kept in its ``elf/``,
#: parsed platforms (platform.py) in its ``platform/``
CACHE_ENV = "DUOHIL_CACHE"
#: files kept in the cache directory; the least recently used beyond this are removed
CACHE_MAX_FILES = 64
_FORMAT = 1
_SUFFIX = ".facts"


def cache_dir(kind: str = "elf") -> Path | None:
    """Where facts of ``kind`` (``elf``, ``platform``) are kept between processes (None: nowhere)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    if env:
        return Path(env) / kind
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "duohil" / kind


_LOADER_DIGEST: list[bytes] = []


def code_digest(what: str, *files: str) -> bytes:
    """A digest of the loaders' code ``files`` (names in this directory), the cache format and
    Python's version: part of every key, so a fact is never one older code worked out."""
    h = hashlib.sha256(f"duohil-{what}-facts {_FORMAT} "
                       f"python {sys.version_info[0]}.{sys.version_info[1]}".encode())
    here = Path(__file__).resolve().parent
    for name in files:
        try:
            h.update(name.encode() + (here / name).read_bytes())
        except OSError:                         # installed without sources: the name only
            h.update(name.encode())
    return h.digest()


def _loader_digest() -> bytes:
    """The code that derives an image's facts: this file, dwarf.py and pyelftools' version."""
    if not _LOADER_DIGEST:
        import elftools
        _LOADER_DIGEST.append(code_digest(f"elf pyelftools {elftools.__version__}", "elf.py",
                                          "dwarf.py"))
    return _LOADER_DIGEST[0]


class KeptFacts:
    """What was worked out from some input, named by ``key`` (a digest of that input and of the
    code): ``get(name)`` / ``remember(name, value)``. Kept in ``cache_dir(kind)/<key>.facts``
    (written whole, atomically, each time a fact is added; a file that cannot be read or written
    is the same as none)."""

    def __init__(self, key: str, kind: str) -> None:
        self.key = key
        self._facts: dict[Any, Any] = {}
        d = cache_dir(kind)
        self._file = None if d is None else d / (self.key + _SUFFIX)
        if self._file is not None:
            try:
                with self._file.open("rb") as fh:
                    doc = pickle.load(fh)
                if doc.get("format") == _FORMAT and doc.get("key") == self.key:
                    self._facts = dict(doc["facts"])
            except Exception:  # noqa: BLE001 - absent, unreadable or truncated: worked out again
                self._facts = {}
            else:
                try:
                    os.utime(self._file)        # recently used: pruned last
                except OSError:                 # a read-only cache is still read
                    pass

    def get(self, name: Any) -> Any:
        return self._facts.get(name)

    def remember(self, name: Any, value: Any) -> None:
        self._facts[name] = value
        if self._file is None:
            return
        tmp = None
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".tmp-")     # not *.facts
            with os.fdopen(fd, "wb") as fh:
                pickle.dump({"format": _FORMAT, "key": self.key, "facts": self._facts}, fh,
                            pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._file)
            tmp = None
            _prune(self._file.parent)
        except Exception:  # noqa: BLE001 - a read-only or full disk: kept in this process only
            pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


class ImageFacts(KeptFacts):
    """The facts of one image: ``data`` is its bytes as read now; ``key`` names them plus the
    loaders' code."""

    def __init__(self, data: bytes, key: str | None = None) -> None:
        super().__init__(key or hashlib.sha256(_loader_digest() + data).hexdigest(), "elf")
        self.data = data


def _prune(d: Path) -> None:
    """Remove the least recently used facts files beyond CACHE_MAX_FILES (another process may be
    removing them too: a file already gone is skipped)."""
    aged = []
    for f in d.glob("*" + _SUFFIX):
        try:
            aged.append((f.stat().st_mtime_ns, f))
        except OSError:
            pass
    aged.sort()
    for _t, f in aged[:max(0, len(aged) - CACHE_MAX_FILES)]:
        try:
            f.unlink()
        except OSError:
            pass


#: this process's facts, by key (a campaign worker reads the same two images for every run)
_FACTS: dict[str, ImageFacts] = {}
_FACTS_MAX = 16


def image_facts(path: str | Path) -> ImageFacts:
    """The facts of the image now at ``path`` (its bytes are read and hashed on every call: a
    rebuilt image is always seen). OSError when the file cannot be read."""
    data = Path(path).read_bytes()
    key = hashlib.sha256(_loader_digest() + data).hexdigest()
    hit = _FACTS.get(key)
    if hit is not None:
        hit.data = data
        return hit
    facts = ImageFacts(data, key)
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    _FACTS[facts.key] = facts
    return facts


_IMAGE_FACT = ("image",)


def read_elf(path: str | Path) -> ElfImage:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("firmware image not found", file=path,
                          expected="an ELF built by `make firmware`")
    facts = image_facts(path)
    kept = facts.get(_IMAGE_FACT)
    if kept is None:
        img = _parse_elf(path, facts.data)
        kept = pickle.dumps({f.name: getattr(img, f.name) for f in fields(ElfImage) if f.name != "path"},
                            pickle.HIGHEST_PROTOCOL)
        facts.remember(_IMAGE_FACT, kept)
        return img
    return ElfImage(path=path, **pickle.loads(kept))         # fresh objects, as a parse makes


def _parse_elf(path: Path, data: bytes) -> ElfImage:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(data))
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
