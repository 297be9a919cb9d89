"""Engine lookup by name: the one place that knows which engines exist."""
from __future__ import annotations

from .base import Engine
from ..errors import ConfigError, EngineUnavailable

ENGINES = ("builtin", "renode", "serial")
DEFAULT_ENGINE = "builtin"


def engine_class(name: str) -> type[Engine]:
    if name == "builtin":
        from .builtin.session import BuiltinEngine
        return BuiltinEngine
    if name == "renode":
        from .renode.engine import RenodeEngine
        return RenodeEngine
    if name == "serial":
        from .serial.engine import SerialEngine
        return SerialEngine
    raise ConfigError(f"unknown engine {name!r}", field="engine", expected=" or ".join(ENGINES))


def get_engine(name: str = DEFAULT_ENGINE, **options: object) -> Engine:
    """An engine ready to start runs; EngineUnavailable (with the reason) if it cannot run here."""
    cls = engine_class(name)
    ok, reason = cls.availability()
    if not ok:
        raise EngineUnavailable(name, reason)
    return cls(**options)


def describe() -> list[dict[str, object]]:
    """For `duohil engines`: each engine, whether it is available here (and why not), capabilities."""
    out = []
    for name in ENGINES:
        try:
            cls = engine_class(name)
            ok, reason = cls.availability()
            caps = sorted(cls.capabilities)
        except ImportError as exc:          # a broken install: say so instead of crashing
            ok, reason, caps = False, f"cannot import the engine: {exc}", []
        entry: dict[str, object] = {"name": name, "available": ok, "reason": reason,
                                    "capabilities": caps}
        if name == "serial":                # options an engine takes from the command line
            from .serial.engine import OPTIONS
            entry["options"] = dict(OPTIONS)
        out.append(entry)
    return out
