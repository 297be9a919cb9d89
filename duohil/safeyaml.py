"""YAML loading that hostile or broken input cannot hurt: bounded size, depth and alias expansion.

A scenario file comes from users, CI artefacts, bug reports. ``yaml.safe_load`` constructs no
objects, but it still lets a small file hurt: aliases that expand to billions of nodes once
something walks or prints them ("billion laughs"), nesting deep enough to exhaust Python's stack,
bytes that are not UTF-8, and duplicate keys where the last one silently wins. ``load_file``
refuses each of those with one ConfigError naming the file and the line, and ``short`` prints an
untrusted value in an error message without ever expanding it whole.
"""
from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

MAX_BYTES = 1 << 20          # a scenario file is a few KiB; 1 MiB is far beyond any honest one
MAX_DEPTH = 32               # nesting of mappings/lists, aliases expanded
MAX_NODES = 20_000           # scalars + collections once every alias is expanded

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 40, 40, 40


def short(value: Any) -> str:
    """repr() of an untrusted value, bounded in size and in the work it takes (reprlib stops at a
    few items per level and two levels deep, so a shared or huge structure is never expanded)."""
    return _REPR.repr(value)


def key_text(key: Any) -> str:
    """A mapping key as it appears in a field path (``faults[0].at_ms``): the string itself,
    bounded; any other key as ``short`` prints it."""
    if isinstance(key, str):
        return key if len(key) <= 40 else key[:37] + "..."
    return short(key)


class _Loader(yaml.SafeLoader):
    """SafeLoader with a nesting bound while composing (the composer recurses per level)."""

    file: str = ""
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:   # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=self.file,
                                  line=mark.line + 1, expected=f"at most {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_MERGE = "tag:yaml.org,2002:merge"


def _check_graph(root: Node, file: str) -> None:
    """Before anything is constructed: refuse duplicate keys (YAML keeps the last one silently),
    and a node graph whose aliases expand beyond MAX_NODES values or MAX_DEPTH levels, or refer
    to themselves. Sizes and heights are memoised per node, so this is linear in the graph's
    size, not in its expansion; the recursion is bounded by MAX_DEPTH."""
    memo: dict[int, tuple[int, int]] = {}         # id(node) -> (expanded size, height)
    active: set[int] = set()

    def fail(node: Node, what: str, expected: str, where: str) -> None:
        raise ConfigError(what, file=file, line=node.start_mark.line + 1, field=where or None,
                          expected=expected)

    def children(node: Node, where: str) -> list[tuple[Node, str]]:
        if isinstance(node, SequenceNode):
            return [(n, f"{where}[{i}]") for i, n in enumerate(node.value)]
        out: list[tuple[Node, str]] = []
        seen: set[tuple[str, str]] = set()
        for k, v in node.value:
            name = key_text(k.value) if isinstance(k, ScalarNode) else "?"
            sub = f"{where}.{name}" if where else name
            if isinstance(k, ScalarNode) and k.tag != _MERGE:
                if (k.tag, k.value) in seen:
                    fail(k, f"duplicate key {short(k.value)}",
                         "each key once per mapping; YAML would silently keep the last", sub)
                seen.add((k.tag, k.value))
            out += [(k, sub), (v, sub)]
        return out

    def walk(node: Node, depth: int, where: str) -> tuple[int, int]:
        deep = (f"nested more than {MAX_DEPTH} levels deep once aliases are expanded",
                f"at most {MAX_DEPTH} levels")
        if depth > MAX_DEPTH:
            fail(node, *deep, where)
        key = id(node)
        if key in active:
            fail(node, "an alias refers to the collection that contains it",
                 "aliases to earlier, complete values only", where)
        if key in memo:
            size, height = memo[key]
        else:
            size, height = 1, 0
            if isinstance(node, (SequenceNode, MappingNode)):
                active.add(key)
                for child, sub in children(node, where):
                    s, h = walk(child, depth + 1, sub)
                    size += s
                    height = max(height, h + 1)
                    if size > MAX_NODES:
                        fail(node, f"expands to more than {MAX_NODES} values (aliases)",
                             f"at most {MAX_NODES} values once aliases are expanded", where)
                active.discard(key)
            memo[key] = (size, height)
        if depth + height > MAX_DEPTH:
            fail(node, *deep, where)
        return size, height

    walk(root, 0, "")


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_text(path: Path, what: str = "a YAML file") -> str:
    """The file's text: a regular, readable file of at most MAX_BYTES bytes of UTF-8."""
    try:
        if not path.exists():
            raise ConfigError("file not found", file=path, expected=what)
        if not path.is_file():
            raise ConfigError("not a regular file", file=path, expected=what)
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", file=path,
                          expected=f"{what} you can read") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"larger than {MAX_BYTES} bytes", file=path,
                          expected=f"{what} of at most {MAX_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: byte {data[exc.start]:#04x} at offset {exc.start}",
                          file=path, line=line, expected="a UTF-8 encoded file") from None


def loads(text: str, file: str | Path) -> Any:
    """Parse one YAML document with the bounds above; any failure is one ConfigError line."""
    file = str(file)
    loader = None
    try:
        loader = _Loader(text)                    # the reader checks the characters here
        loader.file = file
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, file)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = ", ".join(str(x) for x in (exc.context, exc.problem) if x) or str(exc)
        raise ConfigError(f"not valid YAML: {_one_line(what)}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:        # a character YAML does not allow
        line = text[:exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        raise ConfigError(f"not valid YAML: character {exc.character:#06x} is not allowed", file=file,
                          line=line, expected="printable text; tab and newline are allowed") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_one_line(exc)}", file=file) from None
    except (ValueError, OverflowError) as exc:    # e.g. an integer of more than 4300 digits
        raise ConfigError(f"a value YAML cannot represent: {_one_line(exc)}", file=file) from None
    except RecursionError:                        # the bounds above should make this unreachable
        raise ConfigError("nested too deeply", file=file,
                          expected=f"at most {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_file(path: str | Path, what: str = "a YAML file") -> Any:
    path = Path(path)
    return loads(read_text(path, what), path)
