"""Errors that reach users. Each names the file, the field and what was expected."""
from __future__ import annotations


class DuohilError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with when this escapes a command."""

    exit_code = 1


class ConfigError(DuohilError):
    """Bad input from the user: a scenario, a platform file, a missing ELF or symbol (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, *, file: object | None = None, line: int | None = None,
                 field: str | None = None, expected: str | None = None) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        self.expected = expected
        self.detail = message
        where = ""
        if self.file is not None:
            where = self.file + (f":{line}" if line is not None else "") + ": "
        text = where + (f"{field}: " if field else "") + message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)

    def __reduce__(self):   # pickled across worker processes (campaign, matrix) whole
        return (_config_error, (self.detail, self.file, self.line, self.field, self.expected))


class EngineError(DuohilError):
    """The engine itself failed (exit 1): an emulator error, an internal inconsistency."""

    exit_code = 1


class EngineUnavailable(DuohilError):
    """The engine cannot run here (e.g. Renode is not installed); ``reason`` says why."""

    exit_code = 1

    def __init__(self, engine: str, reason: str) -> None:
        self.engine = engine
        self.reason = reason
        super().__init__(f"engine {engine!r} is not available: {reason}")

    def __reduce__(self):
        return (type(self), (self.engine, self.reason))


def _config_error(message: str, file: str | None, line: int | None, field: str | None,
                  expected: str | None) -> ConfigError:
    return ConfigError(message, file=file, line=line, field=field, expected=expected)
