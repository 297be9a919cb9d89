"""Build a builtin ``Machine`` from Renode platform files (repl.py -> models).

Each model class says which Renode type(s) it stands for in ``renode_types``; a class may also claim
a type only in some places with a classmethod ``matches(type_name, base, props) -> bool`` (or
``accepts``, same signature; the PWR model claims ``Python.PythonPeripheral`` only at 0x58024800).
Model modules are imported lazily, one at a time, so a model that is missing or broken is an error
only for a platform that needs its type.

Build order: CPU (and the entries its properties reference, e.g. the NVIC), memories, the D-cache
model for a cortex-m7 (no repl entry: Renode has no cache model), peripherals in file order
(referenced entries first), ``sysbus`` Tag ranges, signal wiring, ``machine.finish()``. The wiring
made is kept as ``machine.wiring`` = [(source entry, output, target entry, line)] for tests.

Builtin-only overlays: ``<name>.builtin.repl`` next to ``<name>.repl`` is applied after it (wiring
Renode's models lack, e.g. the USART TX DMA request; see platforms/stm32h743.builtin.repl). The
same holds for a platform pulled in with `using`: a user's ``board.repl`` that starts with
``using "stm32h743.repl"`` gets stm32h743.builtin.repl right after that line, so it keeps the DMA
request wiring, SYSCFG and FMC, and its own later lines still override them.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duohil.errors import ConfigError, EngineError
from ..kernel.machine import Machine
from ..kernel.peripheral import Peripheral
from .elf import KeptFacts, code_digest
from .repl import EMPTY, Entry, Platform, Pos, Range, Ref, parse_file

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel.scheduler import Scheduler

PACKAGE = __name__.rsplit(".", 2)[0]          # duohil.engines.builtin
HERE = Path(__file__).resolve().parent.parent
#: the rooms that hold models (the others are engine infrastructure, never scanned)
MODEL_ROOMS = ("cpus", "cpus.m7", "cpus.rv32", "soc.stm32h7", "soc.esp32c3")

MEMORY_TYPE = "Memory.MappedMemory"
#: repl types ``User.<module>.<Class>`` name a user's model class by its Python path
USER_PREFIX = "User"
DEFAULT_MIPS = 100                     # Renode's BaseCPU default PerformanceInMips
UNMAPPED_MODES = ("fault", "warn")     # sysbus `unmapped:` (machine.py, unmapped addresses)
#: the chip memory map (memmap.MAPS) that names unmapped addresses, by CPU type
MEMORY_MAPS = {"CPU.CortexM": "stm32h743", "CPU.RiscV32": "esp32c3"}

# Where each type our platforms use is expected to live: only for error messages (a missing module
# is named) and for import order; the registry itself comes from the classes' `renode_types`.
TYPE_HINTS: dict[str, str] = {
    "CPU.CortexM": "cpus.m7.cortexm",
    "CPU.RiscV32": "cpus.rv32.riscv",
    "IRQControllers.NVIC": "cpus.m7.nvic",
    "IRQControllers.CoreLevelInterruptor": "cpus.rv32.clint",
    "IRQControllers.PlatformLevelInterruptController": "cpus.rv32.plic",
    "UART.ESP32_UART": "soc.esp32c3.esp32c3_uart",
    "UART.STM32F7_USART": "soc.stm32h7.stm32_usart",
    "DMA.STM32DMA": "soc.stm32h7.stm32_dma",
    "Miscellaneous.STM32_DMAMUX": "soc.stm32h7.stm32_dmamux",
    "Miscellaneous.STM32H7_RCC": "soc.stm32h7.stm32_rcc",
    "Python.PythonPeripheral": "soc.stm32h7.stm32_pwr",
    "MTD.STM32H7_FlashController": "soc.stm32h7.stm32_flash",
    "Timers.STM32_Timer": "soc.stm32h7.stm32_timer",
    "GPIOPort.STM32_GPIOPort": "soc.stm32h7.stm32_gpio",
    "Timers.STM32_IndependentWatchdog": "soc.stm32h7.stm32_iwdg",
    "Miscellaneous.STM32H7_SYSCFG": "soc.stm32h7.stm32_syscfg",
    "Miscellaneous.STM32H7_FMC": "soc.stm32h7.stm32_fmc",
}
# CPU classes by Renode type (a CPU class may also list `renode_types` itself).
CPU_CLASSES: dict[str, tuple[str, str]] = {
    "CPU.CortexM": ("cpus.m7.cortexm", "CortexM7Cpu"),
    "CPU.RiscV32": ("cpus.rv32.riscv", "RiscV32Cpu"),
}


@dataclass(frozen=True)
class MemoryRegion:
    """What a reference to a memory entry resolves to (``flash: flash``)."""

    name: str
    addresses: tuple[int, ...]
    size: int

    @property
    def base(self) -> int:
        return self.addresses[0]


class ConstantRange(Peripheral):
    """A `Tag` range (or an unknown type marked `// duohil: tag`): reads return a constant, writes
    are ignored. Each aligned 32-bit word reads as ``value`` (Renode's Tag returns its value for any
    access in the range)."""

    def __init__(self, machine: Machine, name: str, base: int, size: int, value: int = 0) -> None:
        super().__init__(machine, name, base, size, {})
        self.value = value & 0xFFFFFFFF
        self.accesses = 0

    def read(self, offset: int, size: int) -> int:
        self.accesses += 1
        word = self.value | (self.value << 32)
        return (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        self.accesses += 1

    def reset(self) -> None:
        pass


def _module_file(module: str) -> Path:
    """The file of a model module named relative to the engine package (``soc.stm32h7.stm32_usart``)."""
    return HERE / (module.replace(".", "/") + ".py")


def _rel(module: str) -> str:
    """A model module's path as a user sees it in the repository (for error messages)."""
    return "duohil/engines/builtin/" + module.replace(".", "/") + ".py"


# -- the model registry ---------------------------------------------------------------------------------
class ModelRegistry:
    """Renode type -> model classes, discovered lazily from the model modules' ``renode_types``."""

    def __init__(self) -> None:
        self._scanned: set[str] = set()
        self._absent: set[str] = set()               # files not there yet: looked for again
        self.failures: dict[str, str] = {}          # module -> why it could not be imported
        self.types: dict[str, list[type]] = {}

    def _scan(self, module: str) -> None:
        exists = _module_file(module).is_file()
        if module in self._scanned and not (module in self._absent and exists):
            return
        self._scanned.add(module)
        self._absent.discard(module)
        self.failures.pop(module, None)
        if not exists:
            self._absent.add(module)
            self.failures[module] = "does not exist"
            return
        try:
            mod = importlib.import_module(f"{PACKAGE}.{module}")
        except Exception as exc:  # noqa: BLE001 - reported when the type is needed
            self.failures[module] = f"failed to import: {type(exc).__name__}: {exc}"
            return
        claims = [(obj, t) for obj in vars(mod).values()
                  if inspect.isclass(obj) and obj.__module__ == mod.__name__
                  for t in getattr(obj, "renode_types", ()) or ()]
        # a builtin CPU class claims its type by CPU_CLASSES too (the RV32 core lists no
        # renode_types): found here, its type no longer sends candidates() through every model
        # module and the installed packages' entry points (~50 ms of a fresh process)
        claims += [(getattr(mod, cls_name), t) for t, (m, cls_name) in CPU_CLASSES.items()
                   if m == module and inspect.isclass(getattr(mod, cls_name, None))]
        for obj, t in claims:
            lst = self.types.setdefault(t, [])
            if obj not in lst:
                lst.append(obj)

    def _all_modules(self) -> list[str]:
        names = list(dict.fromkeys(TYPE_HINTS.values()))
        for room in MODEL_ROOMS:
            for p in sorted((HERE / room.replace(".", "/")).glob("*.py")):
                name = f"{room}.{p.stem}"
                if p.stem not in ("__init__", "cpu") and name not in names:
                    names.append(name)
        return names

    def candidates(self, type_name: str) -> list[type]:
        hint = TYPE_HINTS.get(type_name)
        if hint:
            self._scan(hint)
        if type_name not in self.types:
            for m in self._all_modules():
                self._scan(m)
        if type_name not in self.types:
            self._entry_points()
        return self.types.get(type_name, [])

    def _entry_points(self) -> None:
        """Model classes installed packages declare in the ``duohil.models`` entry-point group
        (``[project.entry-points."duohil.models"] myblock = "mypkg.models:MyBlock"``), loaded once."""
        if getattr(self, "_eps_loaded", False):
            return
        self._eps_loaded = True
        from importlib.metadata import entry_points
        for ep in entry_points(group="duohil.models"):
            try:
                self.register(ep.load())
            except Exception as exc:  # noqa: BLE001 - reported when the type is needed
                self.failures[f"entry point {ep.name}"] = f"failed to load: {type(exc).__name__}: {exc}"

    def resolve(self, type_name: str, base: int | None, props: dict[str, Any]) -> type | None:
        cands = self.candidates(type_name)
        generic = []
        for cls in cands:
            matches = getattr(cls, "matches", None) or getattr(cls, "accepts", None)
            if callable(matches):
                if matches(type_name, base, props):
                    return cls
            else:
                generic.append(cls)
        if len(generic) > 1:
            raise EngineError(f"Renode type {type_name} is claimed by several models: "
                              + ", ".join(f"{c.__module__}.{c.__name__}" for c in generic))
        return generic[0] if generic else None

    def why_missing(self, type_name: str) -> str:
        hint = TYPE_HINTS.get(type_name)
        if hint and hint in self.failures:
            return f"; its model module {_rel(hint)} {self.failures[hint]}"
        if hint:
            return f"; {_rel(hint)} does not claim it here"
        return ""

    def cpu_class(self, type_name: str, pos: Pos) -> type:
        for cls in self.candidates(type_name):
            return cls
        module, cls_name = CPU_CLASSES.get(type_name, (None, None))
        if module is None:
            raise ConfigError(f"unknown CPU type {type_name!r}", file=pos.file, line=pos.line,
                              expected="one of " + ", ".join(sorted(CPU_CLASSES)))
        self._scan(module)
        if module in self.failures:
            raise ConfigError(f"CPU type {type_name}: the builtin core module "
                              f"{_rel(module)} {self.failures[module]}",
                              file=pos.file, line=pos.line)
        cls = getattr(importlib.import_module(f"{PACKAGE}.{module}"), cls_name, None)
        if cls is None:
            raise ConfigError(f"CPU type {type_name}: {_rel(module)} has no "
                              f"class {cls_name}", file=pos.file, line=pos.line)
        return cls

    # -- a user's own models (docs/own-peripheral.md) --------------------------------------------------
    def register(self, cls: type) -> type:
        """Add a model class that lives outside duohil for the Renode type names in its
        ``renode_types`` (usable as a class decorator). It must be a Peripheral subclass; a type a
        builtin model claims, or another user class, is refused (say ``matches`` to share one)."""
        if not (inspect.isclass(cls) and issubclass(cls, Peripheral)):
            raise ConfigError(f"{cls!r} is not a model: a model class subclasses "
                              f"duohil.engines.builtin.kernel.peripheral.Peripheral")
        types = tuple(getattr(cls, "renode_types", ()) or ())
        if not types or any(not isinstance(t, str) or "." not in t for t in types):
            raise ConfigError(f"model {cls.__name__}: renode_types must name at least one type with a "
                              f"namespace", expected="e.g. renode_types = (\"Miscellaneous.MyBlock\",)")
        for t in types:
            taken = [k for k in self.candidates(t) if k is not cls]
            shares = callable(getattr(cls, "matches", None)) or callable(getattr(cls, "accepts", None))
            if taken and not shares:
                raise ConfigError(f"model {cls.__module__}.{cls.__name__}: type {t} is already claimed "
                                  f"by " + ", ".join(f"{k.__module__}.{k.__name__}" for k in taken),
                                  expected="another type name, or a matches() classmethod")
        for t in types:
            lst = self.types.setdefault(t, [])
            if cls not in lst:
                lst.append(cls)
        return cls

    def user_class(self, type_name: str, near: str | None = None) -> type:
        """The class a repl type ``User.<module>.<Class>`` names: ``<module>`` imported as Python
        imports it, else from ``<module>.py`` next to the platform file ``near``."""
        parts = type_name.split(".")
        if len(parts) < 3 or parts[0] != USER_PREFIX:
            raise ConfigError(f"type {type_name!r}: a user model is named {USER_PREFIX}.<module>.<Class>",
                              expected=f"e.g. {USER_PREFIX}.my_models.Scratch")
        module, cls_name = ".".join(parts[1:-1]), parts[-1]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            path = (Path(near).resolve().parent.joinpath(*module.split(".")).with_suffix(".py")
                    if near else None)
            if path is None or not path.is_file() or exc.name != module.split(".")[0]:
                raise ConfigError(f"type {type_name!r}: cannot import {module!r} ({exc})",
                                  expected=f"a module on the Python path or {module.replace('.', '/')}.py "
                                           f"next to the platform file") from None
            mod = self._load_file(module, path)
        cls = getattr(mod, cls_name, None)
        if cls is None:
            raise ConfigError(f"type {type_name!r}: module {module!r} has no {cls_name!r}")
        if not (inspect.isclass(cls) and issubclass(cls, Peripheral)):
            raise ConfigError(f"type {type_name!r}: {module}.{cls_name} is not a Peripheral subclass")
        return cls

    @staticmethod
    def _load_file(module: str, path: Path) -> Any:
        import importlib.util
        import sys
        name = f"duohil_user_models.{module}"
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None) == str(path):
            return mod
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"user model module {path} failed to import: "
                              f"{type(exc).__name__}: {exc}") from None
        return mod

    def module_status(self) -> dict[str, str | None]:
        """module -> None (imported) or the reason it is unavailable (for tests and reports)."""
        out: dict[str, str | None] = {}
        for m in self._all_modules():
            self._scan(m)
            out[m] = self.failures.get(m)
        return out


REGISTRY = ModelRegistry()


def register_model(cls: type) -> type:
    """Make a user's model class (a Peripheral subclass with ``renode_types``) buildable from a
    platform file by those type names: ``@register_model`` above the class, imported before the
    machine is built (docs/own-peripheral.md). A repl type ``User.<module>.<Class>`` needs no
    registration."""
    return REGISTRY.register(cls)


# -- loading the platform description -------------------------------------------------------------------
def builtin_overlay_path(platform: str | Path) -> Path:
    p = Path(platform)
    return p.with_name(p.name[:-len(".repl")] + ".builtin.repl" if p.name.endswith(".repl")
                       else p.name + ".builtin.repl")


#: parsed platforms of this process: key -> (the files' stamps, the Platform pickled). A campaign
#: worker builds the same two platforms for every run (~14 ms of parsing each, ~2 ms to unpickle).
#: The same entry is kept between processes (elf.KeptFacts, cache_dir("platform")), named by the
#: key and the parser's code: a fresh `duohil run` parses neither platform while their files'
#: bytes are the ones parsed
_PARSED: dict[tuple[Any, ...], tuple[list[str], tuple[Any, ...], bytes]] = {}
_PARSED_MAX = 32


def _stamps(files: list[str]) -> tuple[Any, ...]:
    """What the parse read, as (file, digest of its bytes) -- and for each .repl file its
    ``.builtin.repl`` sibling, present or not (an overlay that appears later changes the parse).
    By content, not mtime: a test rewriting a file within the clock's granularity is still seen."""
    out: list[Any] = []
    for f in dict.fromkeys(files):
        for q in (f, str(builtin_overlay_path(f))) if not f.endswith(".builtin.repl") else (f,):
            try:
                data = Path(q).read_bytes()
            except OSError:
                out.append((q, None))
            else:
                out.append((q, hashlib.blake2b(data, digest_size=16).digest()))
    return tuple(out)


def load_platform(path: str | Path, overlays: tuple[str | Path, ...] = (),
                  builtin_overlay: bool = True) -> Platform:
    """Parse a platform, then its ``.builtin.repl`` overlay (if present), then ``overlays``. With
    ``builtin_overlay``, a platform pulled in with `using` brings its own overlay too (repl.py).
    A platform parsed before in this process from files whose bytes have not changed since is a
    fresh copy of that parse (campaign workers build the same platforms for every run); errors
    are never cached."""
    key = (str(path), os.path.abspath(path), tuple(str(o) for o in overlays),
           tuple(os.path.abspath(o) for o in overlays), builtin_overlay)
    hit = _PARSED.get(key)
    between: KeptFacts | None = None
    if hit is None:
        between = _kept_parse(key)
        hit = between.get(_PARSE_FACT)
    if hit is not None and _stamps(hit[0]) == hit[1]:
        _PARSED[key] = hit
        return pickle.loads(hit[2])
    plat = _parse_platform(path, overlays, builtin_overlay)
    try:
        kept = pickle.dumps(plat, pickle.HIGHEST_PROTOCOL)
    except Exception:                        # a value pickle cannot copy: parse every time
        return plat
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = entry = (list(plat.files), _stamps(plat.files), kept)
    (between or _kept_parse(key)).remember(_PARSE_FACT, entry)
    return plat


_PARSE_FACT = ("parse",)
_PARSER_DIGEST: list[bytes] = []


def _kept_parse(key: tuple[Any, ...]) -> KeptFacts:
    """The kept parse of ``key`` (the platform and overlays, as given and absolute)."""
    if not _PARSER_DIGEST:
        _PARSER_DIGEST.append(code_digest("platform", "repl.py", "platform.py"))
    return KeptFacts(hashlib.sha256(_PARSER_DIGEST[0] + repr(key).encode()).hexdigest(), "platform")


def _parse_platform(path: str | Path, overlays: tuple[str | Path, ...],
                    builtin_overlay: bool) -> Platform:
    plat = parse_file(path, include_overlays=builtin_overlay)
    extra = builtin_overlay_path(path)
    if builtin_overlay and extra.is_file() and not Path(path).name.endswith(".builtin.repl"):
        parse_file(extra, into=plat, include_overlays=True)
    for ov in overlays:
        parse_file(ov, into=plat, include_overlays=builtin_overlay)
    return plat


# -- building ---------------------------------------------------------------------------------------------
def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class _Builder:
    def __init__(self, platform: Platform, machine: Machine, registry: ModelRegistry) -> None:
        self.platform = platform
        self.machine = machine
        self.registry = registry
        self.objects: dict[str, Any] = {}          # entry name -> CPU / Peripheral / MemoryRegion
        self.harmless: set[str] = set()
        self._building: list[str] = []

    def err(self, pos: Pos | None, message: str, expected: str | None = None,
            field: str | None = None) -> ConfigError:
        if pos is None:
            return ConfigError(message, file=self.machine.platform, expected=expected, field=field)
        return ConfigError(message, file=pos.file, line=pos.line, expected=expected, field=field)

    def build(self) -> Machine:
        entries = list(self.platform)
        cpus = [e for e in entries if e.type and e.type.startswith("CPU.")]
        if not cpus:
            raise self.err(None, "the platform has no CPU entry",
                           expected="an entry `cpu: CPU.CortexM @ sysbus` or `cpu: CPU.RiscV32 @ sysbus`")
        if len(cpus) > 1:
            raise self.err(cpus[1].pos, f"a second CPU {cpus[1].name!r} (the builtin engine runs "
                                        f"one core per machine; the first is {cpus[0].name!r})")
        for e in entries:
            if e.type is None and e.name != "sysbus":
                raise self.err(e.pos, f"entry {e.name!r} has no type")
            if e.init and e.name != "sysbus":
                raise self.err(e.init[0].pos, f"{e.name}: init statements are not supported by the "
                                              f"builtin engine", expected="no init block")
        self._build_cpu(cpus[0])
        self.machine.memory_map = MEMORY_MAPS.get(cpus[0].type or "")
        for e in entries:
            if e.type == MEMORY_TYPE and e.name not in self.objects:
                self._build_memory(e)
        self._build_cache(cpus[0])
        for e in entries:
            if e.type and e.name not in self.objects and not e.type.startswith("CPU."):
                self._build_peripheral(e)
        if "sysbus" in self.platform:
            self._build_sysbus(self.platform["sysbus"])
        self._wire(entries)
        self.machine.finish()
        return self.machine

    # -- CPU ----------------------------------------------------------------------------------------
    def _build_cpu(self, e: Entry) -> None:
        assert e.type is not None and e.type_pos is not None
        cls = self.registry.cpu_class(e.type, e.type_pos)
        # PerformanceInMips (Renode's name; performanceInMips accepted too): the instruction rate,
        # and the cap on it when a clock model (the RCC) sets the core clock.
        mips_keys = [k for k in ("PerformanceInMips", "performanceInMips") if k in e.props]
        if len(mips_keys) > 1:
            raise self.err(e.props[mips_keys[1]].pos, "PerformanceInMips given twice",
                           field=mips_keys[1])
        mips_key = mips_keys[0] if mips_keys else "PerformanceInMips"
        mips = e.prop(mips_key, DEFAULT_MIPS)
        if not isinstance(mips, (int, float)) or isinstance(mips, bool) or mips <= 0:
            raise self.err(e.props[mips_key].pos, "PerformanceInMips must be a positive "
                           "number", field=mips_key, expected="e.g. PerformanceInMips: 480")
        hz = int(round(mips * 1_000_000))
        params = inspect.signature(cls.__init__).parameters
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs: dict[str, Any] = {}
        for key, prop in e.props.items():
            if key in ("PerformanceInMips", "performanceInMips"):
                continue
            pname = key if key in params else _snake(key)
            if pname in params and pname not in ("self", "machine", "name", "hz"):
                kwargs[pname] = self._value(prop.value, prop.pos, key)
        if "props" in params or accepts_any:
            kwargs.setdefault("props", {k: self._value(p.value, p.pos, k) for k, p in e.props.items()
                                        if k not in kwargs})
        try:
            cpu = cls(self.machine, e.name, hz, **kwargs)
        except ConfigError as exc:
            if exc.file is not None:
                raise
            raise self.err(e.pos, exc.detail, expected=exc.expected, field=exc.field) from None
        except TypeError as exc:
            raise self.err(e.pos, f"cannot create CPU {e.name} ({cls.__name__}): {exc}") from None
        cpu.repl_props = {k: p.value for k, p in e.props.items()}
        if mips_keys:
            cpu.hz_cap = hz
        if self.machine.cpu is None:
            self.machine.attach_cpu(cpu)
        elif self.machine.cpu is not cpu:
            raise self.err(e.pos, f"CPU {e.name} attached a different core to the machine")
        self.objects[e.name] = cpu
        # peripherals the CPU's constructor created or received (nvic) are added now
        for key, prop in e.props.items():
            if isinstance(prop.value, Ref):
                obj = self.objects.get(prop.value.name)
                if isinstance(obj, Peripheral) and obj.name not in self.machine.peripherals:
                    self.machine.add_peripheral(obj)

    # -- the Cortex-M7 D-cache (not a repl entry: Renode has no cache model) ----------------------
    def _build_cache(self, cpu_entry: Entry) -> None:
        if not hasattr(self.machine, "cache"):
            self.machine.cache = None
        if str(cpu_entry.prop("cpuType", "")).lower() != "cortex-m7":
            return
        self.registry._scan("cpus.m7.dcache")
        if "cpus.m7.dcache" in self.registry.failures:
            raise self.err(cpu_entry.pos, "a cortex-m7 needs the D-cache model, but "
                           f"{_rel('cpus.m7.dcache')} {self.registry.failures['cpus.m7.dcache']}")
        from ..cpus.m7.dcache import DCache
        DCache(self.machine)          # installs itself as machine.cache and machine.dma_port

    # -- memories -----------------------------------------------------------------------------------
    def _build_memory(self, e: Entry) -> None:
        regs = e.registrations or []
        addrs = [r.address for r in regs if r.address is not None]
        if not addrs:
            raise self.err(e.pos, f"memory {e.name} has no address",
                           expected=f"`{e.name}: Memory.MappedMemory @ sysbus <address>`")
        size = e.prop("size")
        if size is None:
            size = regs[0].size
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            pos = e.props["size"].pos if "size" in e.props else e.pos
            raise self.err(pos, f"memory {e.name} needs a positive integer size", field="size",
                           expected="size: 0x10000")
        for key, prop in e.props.items():
            if key != "size":
                raise self.err(prop.pos, f"memory {e.name}: property {key!r} is not supported by "
                               f"the builtin engine", field=key, expected="only `size`")
        try:
            self.machine.add_memory(e.name, addrs, size)
        except ConfigError as exc:
            raise self.err(e.pos, exc.detail) from None
        except Exception as exc:  # unicorn: overlapping maps
            raise self.err(e.pos, f"memory {e.name} at {addrs[0]:#x}+{size:#x} cannot be mapped: "
                                  f"{exc}") from None
        self.objects[e.name] = MemoryRegion(e.name, tuple(addrs), size)

    # -- peripherals --------------------------------------------------------------------------------
    def _build_peripheral(self, e: Entry) -> Any:
        if e.name in self.objects:
            return self.objects[e.name]
        if e.name in self._building:
            chain = " -> ".join(self._building + [e.name])
            raise self.err(e.pos, f"circular references between entries: {chain}")
        self._building.append(e.name)
        try:
            return self._create(e)
        finally:
            self._building.pop()

    def _create(self, e: Entry) -> Any:
        assert e.type is not None
        regs = e.registrations or []
        if len(regs) > 1:
            raise self.err(regs[1].pos or e.pos, f"{e.name}: several registrations are supported "
                           f"for memories only", expected="one `@ sysbus <address>`")
        base = regs[0].address if regs else None
        size = regs[0].size if regs else None
        raw = {k: p.value for k, p in e.props.items()}
        tpos = e.type_pos or e.pos
        if e.type.startswith(USER_PREFIX + "."):
            try:
                cls = self.registry.user_class(e.type, tpos.file)
            except ConfigError as exc:
                raise self.err(tpos, f"{e.name}: {exc.detail}", expected=exc.expected) from None
        else:
            cls = self.registry.resolve(e.type, base, raw)
        if cls is None:
            if e.harmless:
                return self._tag_entry(e, base, size)
            known = sorted(set(self.registry.types) | {MEMORY_TYPE} | set(CPU_CLASSES))
            raise self.err(tpos, f"unknown Renode type {e.type!r} for {e.name!r}: no builtin model "
                           f"claims it{' at ' + hex(base) if base is not None else ''}"
                           f"{self.registry.why_missing(e.type)}",
                           expected="a type a builtin model claims (" + ", ".join(known) + "), or "
                                    "`// duohil: tag` after the entry to make it a constant-zero "
                                    "register range")
        known_props = getattr(cls, "properties", {}) or {}
        props: dict[str, Any] = {}
        for key, prop in e.props.items():
            if key not in known_props:
                raise self.err(prop.pos, f"{e.name} ({e.type}, model {cls.__name__}) has no "
                               f"property {key!r}", field=key,
                               expected="one of " + (", ".join(sorted(known_props)) or "no properties"))
            props[key] = self._value(prop.value, prop.pos, key)
        if size is None and isinstance(props.get("size"), int) and not isinstance(props["size"], bool):
            size = props["size"]
        try:
            obj = cls(self.machine, e.name, base, size, props)
        except ConfigError as exc:
            if exc.file is not None:
                raise
            raise self.err(tpos, exc.detail, expected=exc.expected, field=exc.field) from None
        except (TypeError, ValueError, KeyError) as exc:
            raise self.err(tpos, f"cannot create {e.name} ({cls.__name__}): "
                                 f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:
            raise EngineError(f"{tpos}: model {cls.__module__}.{cls.__name__} failed to build "
                              f"{e.name}: {type(exc).__name__}: {exc}") from exc
        self.objects[e.name] = obj
        if isinstance(obj, Peripheral) or hasattr(obj, "read"):
            try:
                self.machine.add_peripheral(obj)
            except ConfigError as exc:
                raise self.err(e.pos, exc.detail) from None
        return obj

    def _tag_entry(self, e: Entry, base: int | None, size: int | None) -> Any:
        if base is None:
            self.harmless.add(e.name)
            self.objects[e.name] = None
            return None
        if size is None:
            s = e.prop("size")
            size = s if isinstance(s, int) and not isinstance(s, bool) and s > 0 else \
                Peripheral.default_size
        obj = ConstantRange(self.machine, e.name, base, size, 0)
        self.harmless.add(e.name)
        self.objects[e.name] = obj
        try:
            self.machine.add_peripheral(obj)
        except ConfigError as exc:
            raise self.err(e.pos, exc.detail) from None
        return obj

    def _value(self, v: Any, pos: Pos, key: str) -> Any:
        if v is EMPTY:
            return None
        if isinstance(v, Ref):
            if v.name not in self.objects:
                target = self.platform.entries.get(v.name)
                if target is None:
                    raise self.err(pos, f"{key}: reference to unknown entry {v.name!r}", field=key,
                                   expected="the name of another entry in the platform")
                if target.type is None or target.type.startswith("CPU."):
                    raise self.err(pos, f"{key}: {v.name!r} cannot be referenced here", field=key)
                if target.type == MEMORY_TYPE:
                    self._build_memory(target)
                else:
                    self._build_peripheral(target)
            return self.objects[v.name]
        if isinstance(v, Range):
            return v
        return v

    # -- sysbus: Tag ranges ----------------------------------------------------------------------------
    def _build_sysbus(self, e: Entry) -> None:
        for key, prop in e.props.items():
            if key == "unmapped":
                v = prop.value.name if isinstance(prop.value, Ref) else prop.value
                if v not in UNMAPPED_MODES:
                    raise self.err(prop.pos, f"sysbus unmapped: {v!r} is not a mode",
                                   field="unmapped", expected="unmapped: fault (a BusFault/access "
                                   "fault, as silicon) or unmapped: warn (read 0, write dropped)")
                self.machine.unmapped_mode = str(v)
                continue
            raise self.err(prop.pos, f"sysbus property {key!r} is not supported by the builtin engine",
                           field=key, expected="only `unmapped: fault|warn`")
        if e.connections:
            c = next(iter(e.connections.values()))
            raise self.err(c.pos, "sysbus has no outputs")
        if e.init:
            raise self.err(e.init[0].pos, f"sysbus init statement {e.init[0].text!r} is not "
                           f"supported by the builtin engine", expected='Tag <start, end> "NAME" value')
        for tag in e.tags:
            obj = ConstantRange(self.machine, f"tag:{tag.name}", tag.start, tag.size, tag.value or 0)
            try:
                self.machine.add_peripheral(obj)
            except ConfigError as exc:
                raise self.err(tag.pos, exc.detail) from None

    # -- wiring -------------------------------------------------------------------------------------------
    def _wire(self, entries: list[Entry]) -> None:
        wiring: list[tuple[str, str, str, int]] = []
        for e in entries:
            if e.name == "sysbus":
                continue
            for conn in e.connections.values():
                if not conn.targets:
                    continue
                src = self.objects.get(e.name)
                if e.name in self.harmless:
                    continue
                if isinstance(src, MemoryRegion) or src is None:
                    raise self.err(conn.pos, f"{e.name} has no outputs to connect")
                out_name = conn.source if conn.source is not None else \
                    getattr(type(src), "default_output", "IRQ")
                output = getattr(src, "output", None)
                if output is None:
                    raise self.err(conn.pos, f"{e.name} ({type(src).__name__}) has no outputs")
                try:
                    signal = output(out_name)
                except (KeyError, ValueError, NotImplementedError) as exc:
                    raise self.err(conn.pos, f"{e.name} has no output {out_name!r}: {exc}") from None
                for t in conn.targets:
                    if t.dest not in self.platform.entries:
                        raise self.err(conn.pos, f"connection target {t.dest!r} is not an entry of "
                                       f"the platform", expected="the name of an interrupt controller, "
                                       "CPU or DMA block")
                    if t.dest in self.harmless:
                        continue
                    sink = self.objects.get(t.dest)
                    if getattr(sink, "set_input", None) is None or isinstance(sink, MemoryRegion):
                        if sink is self.machine.cpu:
                            # e.g. `nvic: IRQ -> cpu@0`: the Cortex-M core takes its NVIC directly
                            # (constructor argument), not through a signal.
                            wiring.append((e.name, str(out_name), t.dest, t.line))
                            continue
                        raise self.err(conn.pos, f"connection target {t.dest!r} has no inputs")
                    signal.connect(sink, t.line)
                    wiring.append((e.name, str(out_name), t.dest, t.line))
        self.machine.wiring = wiring


def build_machine(platform: str | Path | Platform, scheduler: "Scheduler", name: str, *,
                  overlays: tuple[str | Path, ...] = (), builtin_overlay: bool = True,
                  registry: ModelRegistry | None = None) -> Machine:
    """Parse (unless given parsed) and build one machine into ``scheduler``."""
    if isinstance(platform, Platform):
        plat = platform
        label = plat.files[0] if plat.files else "<platform>"
    else:
        plat = load_platform(platform, overlays, builtin_overlay)
        label = str(platform)
    machine = Machine(name, scheduler, platform=label)
    if not hasattr(machine, "cache"):
        machine.cache = None
    machine.repl = plat
    _Builder(plat, machine, registry or REGISTRY).build()
    return machine
