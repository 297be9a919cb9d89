"""The builtin engine: unicorn CPUs, Python SoC models, deterministic virtual time."""
from __future__ import annotations

from typing import Any

__all__ = ["BuiltinEngine", "BuiltinSession", "BuiltinMachine", "single"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing one model module (tests of a single block) never pulls in the whole engine.
    if name in __all__:
        from . import session
        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
