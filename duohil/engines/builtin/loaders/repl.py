"""A parser for the subset of Renode's platform-description (.repl) syntax that duohil's platforms use.

One platform file serves both engines, so everything accepted here must also be valid Renode syntax
(renode.md section 1-3, esp32c3-peer.md section 4.3). Supported:

    name: Type.Name @ sysbus 0x40011000          entry; also `@ sysbus`, `@ none`,
                                                  `@ { sysbus A; sysbus B }` (aliases),
                                                  `@ sysbus <0xBASE, +0xSIZE>` / `<0xBASE, 0xEND>`
        key: value                                int (dec/hex), "string", true/false, Enum.Value,
                                                  a reference to another entry, `empty`, <range>
        -> dst@n                                  the default output (IRQ)
        Output -> dst@n | other@m                 named output, fan-out with `|`
        [0-7] -> nvic@[11-17, 47]                 numbered outputs, ranges and lists mixed
        Output -> none                            explicitly unconnected (removes an earlier wire)
        init:                                     an indented block; `Tag <start, end> "NAME" value`
            Tag <0x5C001000, 0x5C001003> "X" 0x1  lines are parsed (constant-read ranges)
    name: { key: value; Output -> dst@n }         the one-line attribute form (overlays)
    name:                                         an entry without a type updates an earlier entry
    using "other.repl"                            include, relative to the including file
    // and /* */ comments; `// duohil: tag` after an entry's header marks an unknown type harmless

Every syntax error is a ``ConfigError`` naming the file, the line and what was expected. Parsed
objects keep their positions (``Pos``) so the platform builder can do the same for semantic errors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

from duohil.errors import ConfigError

TAG_MARKER = re.compile(r"duohil\s*:\s*tag\b")


# -- parsed objects -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pos:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class EnumValue(str):
    """``Enum.Value`` as written (``PrivilegedArchitecture.Priv1_10``); ``.member`` is the last part."""

    @property
    def member(self) -> str:
        return self.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Ref:
    """A reference to another entry (``nvic: nvic``, ``timeProvider: clint``)."""

    name: str


@dataclass(frozen=True)
class Range:
    """``<start, +size>`` or ``<start, end>`` (inclusive end, as in Renode)."""

    start: int
    size: int

    @property
    def end(self) -> int:          # inclusive
        return self.start + self.size - 1


class _Empty:
    def __repr__(self) -> str:
        return "empty"


EMPTY = _Empty()                    # Renode's `empty` (null)

Value = Union[int, float, str, bool, EnumValue, Ref, Range, _Empty]


@dataclass
class Prop:
    value: Value
    pos: Pos


@dataclass(frozen=True)
class Registration:
    """One place an entry sits on a bus: ``sysbus 0x40011000`` (address None: ``@ sysbus``)."""

    bus: str
    address: int | None = None
    size: int | None = None
    pos: Pos | None = None


@dataclass(frozen=True)
class Target:
    dest: str
    line: int


@dataclass
class Connection:
    """The wires of one output. ``source`` None is the entry's default output (``-> nvic@4``).
    ``targets`` empty means explicitly unconnected (``-> none``)."""

    source: str | None
    targets: list[Target]
    pos: Pos


@dataclass
class TagLine:
    start: int
    size: int
    name: str
    value: int | None
    pos: Pos


@dataclass
class InitLine:
    text: str
    pos: Pos


@dataclass
class Entry:
    name: str
    pos: Pos                                    # where it was first defined
    type: str | None = None
    type_pos: Pos | None = None
    registrations: list[Registration] | None = None     # None: unregistered; [] only for `@ none`
    props: dict[str, Prop] = field(default_factory=dict)
    connections: dict[str | None, Connection] = field(default_factory=dict)
    tags: list[TagLine] = field(default_factory=list)
    init: list[InitLine] = field(default_factory=list)   # init lines other than Tag
    harmless: bool = False                      # `// duohil: tag` on the header line
    updates: list[Pos] = field(default_factory=list)     # overlays that touched it

    def prop(self, key: str, default: object = None) -> object:
        p = self.props.get(key)
        return default if p is None else p.value

    @property
    def base(self) -> int | None:
        regs = self.registrations or []
        return regs[0].address if regs else None

    @property
    def reg_size(self) -> int | None:
        regs = self.registrations or []
        return regs[0].size if regs else None


@dataclass
class Platform:
    """Entries in definition order, after every include and overlay has been applied."""

    entries: dict[str, Entry] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Entry:
        return self.entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())


# -- lexing -----------------------------------------------------------------------------------------------
@dataclass
class _Line:
    no: int
    indent: int
    code: str            # comments removed
    comment: str         # text of // and /* */ comments on this line (for the duohil: tag marker)


def _split_lines(text: str, file: str) -> list[_Line]:
    """Strip comments (keeping their text per line), respecting strings; keep line numbers."""
    out: list[_Line] = []
    in_block = False
    block_start = 0
    for no, raw in enumerate(text.splitlines(), start=1):
        code: list[str] = []
        comment: list[str] = []
        i = 0
        n = len(raw)
        while i < n:
            if in_block:
                j = raw.find("*/", i)
                if j < 0:
                    comment.append(raw[i:])
                    i = n
                else:
                    comment.append(raw[i:j])
                    code.append(" ")
                    in_block = False
                    i = j + 2
                continue
            c = raw[i]
            if c == '"':
                j = i + 1
                while j < n and raw[j] != '"':
                    j += 2 if raw[j] == "\\" else 1
                if j >= n:
                    raise ConfigError("unterminated string", file=file, line=no,
                                      expected='a closing " on the same line')
                code.append(raw[i:j + 1])
                i = j + 1
            elif raw.startswith("//", i):
                comment.append(raw[i + 2:])
                i = n
            elif raw.startswith("/*", i):
                in_block = True
                block_start = no
                i += 2
            else:
                code.append(c)
                i += 1
        line = "".join(code).rstrip()
        if "\t" in line[:len(line) - len(line.lstrip())]:
            raise ConfigError("tab in indentation", file=file, line=no, expected="spaces")
        indent = len(line) - len(line.lstrip(" "))
        out.append(_Line(no, indent, line.strip(), " ".join(comment)))
    if in_block:
        raise ConfigError("unterminated /* comment", file=file, line=block_start, expected="*/")
    return out


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<num>0[xX][0-9A-Fa-f]+|\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<arrow>->)
  | (?P<punct>[:@{};<>,+\[\]\-|#])
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str        # str num ident arrow punct end
    text: str
    col: int

    @property
    def value(self) -> object:
        if self.kind == "num":
            t = self.text
            if t.lower().startswith("0x"):
                return int(t, 16)
            return float(t) if "." in t else int(t)
        if self.kind == "str":
            return bytes(self.text[1:-1], "utf-8").decode("unicode_escape")
        return self.text


def _describe(tok: _Tok) -> str:
    return "end of line" if tok.kind == "end" else repr(tok.text)


class _Cursor:
    """Tokens of one logical line, with error helpers naming file and line."""

    def __init__(self, text: str, pos: Pos, indent: int = 0) -> None:
        self.pos = pos
        self.toks: list[_Tok] = []
        i = 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if m is None:
                raise ConfigError(f"unexpected character {text[i]!r} at column {indent + i + 1}",
                                  file=pos.file, line=pos.line, expected="repl syntax")
            if m.lastgroup != "ws":
                self.toks.append(_Tok(m.lastgroup or "?", m.group(), indent + i + 1))
            i = m.end()
        self.toks.append(_Tok("end", "", indent + len(text) + 1))
        self.i = 0

    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> _Tok:
        t = self.peek()
        if t.kind != "end":
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.peek()
        return t.kind in ("punct", "arrow") and t.text == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def error(self, expected: str, tok: _Tok | None = None) -> ConfigError:
        tok = tok or self.peek()
        return ConfigError(f"unexpected {_describe(tok)} at column {tok.col}", file=self.pos.file,
                           line=self.pos.line, expected=expected)

    def expect(self, text: str, expected: str | None = None) -> _Tok:
        if not self.at(text):
            raise self.error(expected or repr(text))
        return self.next()

    def expect_kind(self, kind: str, expected: str) -> _Tok:
        if self.peek().kind != kind:
            raise self.error(expected)
        return self.next()

    def expect_int(self, expected: str) -> int:
        neg = self.accept("-")
        t = self.peek()
        if t.kind != "num" or not isinstance(t.value, int):
            raise self.error(expected)
        self.next()
        return -t.value if neg else t.value  # type: ignore[operator]

    def done(self, expected: str = "end of line") -> None:
        if self.peek().kind != "end":
            raise self.error(expected)


# -- the parser -------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, platform: Platform, include_stack: tuple[str, ...],
                 include_overlays: bool = False) -> None:
        self.platform = platform
        self.include_stack = include_stack
        self.include_overlays = include_overlays

    def parse(self, text: str, file: str, base_dir: Path | None) -> None:
        lines = [ln for ln in _split_lines(text, file) if ln.code]
        i = 0
        while i < len(lines):
            ln = lines[i]
            pos = Pos(file, ln.no)
            if ln.indent != 0:
                raise ConfigError("indented line outside any entry", file=file, line=ln.no,
                                  expected="an entry `name: Type @ sysbus <address>` at column 1")
            # gather the block: following lines indented deeper than the header
            j = i + 1
            while j < len(lines) and lines[j].indent > 0:
                j += 1
            body = lines[i + 1:j]
            cur = _Cursor(ln.code, pos)
            first = cur.peek()
            if first.kind == "ident" and first.text == "using":
                if body:
                    raise ConfigError("`using` takes no indented block", file=file,
                                      line=body[0].no, expected="a new entry at column 1")
                self._using(cur, file, base_dir)
            else:
                # the one-line `{ ... }` form may span lines until its closing brace
                if "{" in ln.code and not _balanced(ln.code):
                    k = i + 1
                    joined = ln.code
                    while k < len(lines) and not _balanced(joined):
                        joined += " " + lines[k].code
                        k += 1
                    if not _balanced(joined):
                        raise ConfigError("unclosed '{'", file=file, line=ln.no,
                                          expected="a '}' closing the attribute or alias list")
                    cur = _Cursor(joined, pos)
                    j = k
                    body = []
                    while j < len(lines) and lines[j].indent > 0:
                        body.append(lines[j])
                        j += 1
                self._entry(cur, pos, body, ln.comment, file)
            i = j

    # `using "file"`
    def _using(self, cur: _Cursor, file: str, base_dir: Path | None) -> None:
        cur.next()
        t = cur.expect_kind("str", 'a quoted file name after `using`, e.g. using "common.repl"')
        cur.done()
        rel = Path(str(t.value))
        if base_dir is None:
            raise ConfigError("`using` in a platform given as text has no directory to resolve "
                              "it against", file=file, line=cur.pos.line)
        path = (base_dir / rel).resolve()
        if str(path) in self.include_stack:
            raise ConfigError(f"`using` cycle: {path} includes itself", file=file,
                              line=cur.pos.line)
        if not path.is_file():
            raise ConfigError(f"included file {rel} not found (looked for {path})", file=file,
                              line=cur.pos.line, expected="a path relative to the including file")
        sub = _Parser(self.platform, self.include_stack + (str(path),), self.include_overlays)
        sub.parse(path.read_text(), str(path), path.parent)
        self.platform.files.append(str(path))
        # The builtin engine's overlay of an included platform (stm32h743.builtin.repl next to
        # stm32h743.repl) goes with it, right after it: a user platform that pulls ours in with
        # `using` keeps our builtin-only wiring, and what the user writes after `using` still wins.
        overlay = path.with_name(path.name[:-len(".repl")] + ".builtin.repl")
        if self.include_overlays and path.name.endswith(".repl") \
                and not path.name.endswith(".builtin.repl") and overlay.is_file() \
                and str(overlay) not in self.include_stack:
            sub = _Parser(self.platform, self.include_stack + (str(overlay),), True)
            sub.parse(overlay.read_text(), str(overlay), overlay.parent)
            self.platform.files.append(str(overlay))

    # an entry: header line + body
    def _entry(self, cur: _Cursor, pos: Pos, body: list[_Line], comment: str, file: str) -> None:
        name_tok = cur.next()
        if name_tok.kind != "ident" or "." in name_tok.text:
            raise cur.error("an entry name (e.g. `usart3:`) or `using \"file\"`", name_tok)
        name = name_tok.text
        cur.expect(":", f"':' after the entry name {name!r}")
        typ: str | None = None
        type_pos: Pos | None = None
        if cur.peek().kind == "ident":
            typ = cur.next().text
            type_pos = pos
            if "." not in typ:
                raise ConfigError(f"type {typ!r} has no namespace", file=file, line=pos.line,
                                  expected="a Renode type such as UART.STM32F7_USART")
        regs: list[Registration] | None = None
        if cur.accept("@"):
            regs = self._registration(cur)
        inline: list[tuple[str, Pos]] = []
        if cur.accept("{"):
            inline = self._inline_attrs(cur)
        cur.done("a type, `@ registration` or `{ attributes }` after the entry name")

        entries = self.platform.entries
        entry = entries.get(name)
        if entry is None:
            if typ is None and name != "sysbus":
                raise ConfigError(f"entry {name!r} has no type and no earlier entry of that name to "
                                  f"update", file=file, line=pos.line,
                                  expected=f"`{name}: Namespace.Type @ sysbus <address>`")
            entry = Entry(name=name, pos=pos, type=typ, type_pos=type_pos)
            entries[name] = entry
        else:
            if typ is not None and name != "sysbus":
                # Renode: redefining a type replaces the entry (a new peripheral under the same name)
                entry.type = typ
                entry.type_pos = type_pos
                entry.props.clear()
                entry.connections.clear()
            entry.updates.append(pos)
        if regs is not None:
            entry.registrations = regs
        if TAG_MARKER.search(comment):
            entry.harmless = True
        for text, lpos in inline:
            self._attribute(entry, _Cursor(text, lpos), [], file)
        k = 0
        while k < len(body):
            ln = body[k]
            # a nested block (init:) holds the lines indented deeper than its header
            m = k + 1
            while m < len(body) and body[m].indent > ln.indent:
                m += 1
            self._attribute(entry, _Cursor(ln.code, Pos(file, ln.no), ln.indent), body[k + 1:m], file)
            k = m

    def _inline_attrs(self, cur: _Cursor) -> list[tuple[str, Pos]]:
        """`{ a: 1; IRQ -> nvic@3 }`: split the token stream on top-level ';' back into texts."""
        parts: list[tuple[str, Pos]] = []
        current: list[str] = []
        depth = 0
        while True:
            t = cur.peek()
            if t.kind == "end":
                raise cur.error("'}' closing the attribute list")
            cur.next()
            if t.kind == "punct" and t.text == "}" and depth == 0:
                break
            if t.kind == "punct" and t.text in "[<{":
                depth += 1
            elif t.kind == "punct" and t.text in "]>}":
                depth -= 1
            if t.kind == "punct" and t.text == ";" and depth == 0:
                if current:
                    parts.append((" ".join(current), cur.pos))
                current = []
                continue
            current.append(t.text)
        if current:
            parts.append((" ".join(current), cur.pos))
        return parts

    def _registration(self, cur: _Cursor) -> list[Registration]:
        if cur.peek().kind == "ident" and cur.peek().text == "none":
            cur.next()
            return []
        if cur.accept("{"):
            regs = [self._one_registration(cur)]
            while cur.accept(";"):
                if cur.at("}"):
                    break
                regs.append(self._one_registration(cur))
            cur.expect("}", "';' or '}' in `@ { sysbus A; sysbus B }`")
            return regs
        return [self._one_registration(cur)]

    def _one_registration(self, cur: _Cursor) -> Registration:
        t = cur.peek()
        if t.kind != "ident" or t.text != "sysbus":
            raise cur.error("`sysbus` (the only bus the platforms use) or `none` after '@'")
        cur.next()
        if cur.at("<"):
            r = self._range(cur)
            return Registration("sysbus", r.start, r.size, cur.pos)
        nxt = cur.peek()
        if nxt.kind == "num":
            addr = nxt.value
            if not isinstance(addr, int):
                raise cur.error("an integer address")
            cur.next()
            return Registration("sysbus", addr, None, cur.pos)
        if nxt.kind == "end" or (nxt.kind == "punct" and nxt.text in ";}{"):
            return Registration("sysbus", None, None, cur.pos)
        raise cur.error("an address (e.g. 0x40011000) or a range <0xBASE, +0xSIZE> after `sysbus`")

    def _range(self, cur: _Cursor) -> Range:
        cur.expect("<", "'<' starting a range <start, +size>")
        start = cur.expect_int("the range start address, e.g. <0x58020000, +0x400>")
        cur.expect(",", "',' between range start and size, e.g. <0x58020000, +0x400>")
        if cur.accept("+"):
            size = cur.expect_int("the range size after '+', e.g. <0x58020000, +0x400>")
        else:
            end = cur.expect_int("the range end address or +size, e.g. <0x58020000, +0x400>")
            if end < start:
                raise cur.error(f"a range end >= its start {start:#x}")
            size = end - start + 1
        cur.expect(">", "'>' closing the range")
        if size <= 0:
            raise cur.error("a positive range size")
        return Range(start, size)

    # -- attributes -------------------------------------------------------------------------------
    def _attribute(self, entry: Entry, cur: _Cursor, nested: list[_Line], file: str) -> None:
        has_arrow = any(t.kind == "arrow" for t in cur.toks)
        if has_arrow:
            if nested:
                raise ConfigError("a connection takes no indented block", file=file,
                                  line=nested[0].no, expected="the next attribute at the same indent")
            self._connection(entry, cur)
            return
        key = cur.peek()
        if key.kind != "ident" or "." in key.text:
            raise cur.error("a property `name: value` or a connection `Output -> target@n`")
        cur.next()
        if key.text == "init":
            if cur.peek().kind == "ident" and cur.peek().text == "add":
                cur.next()
            cur.expect(":", "':' after init")
            cur.done("an indented block of init statements after `init:`")
            if not nested:
                raise ConfigError("empty init block", file=file, line=cur.pos.line,
                                  expected="indented init statements (e.g. Tag <start, end> \"NAME\")")
            for ln in nested:
                self._init_line(entry, _Cursor(ln.code, Pos(file, ln.no), ln.indent), ln.code)
            return
        if nested:
            raise ConfigError(f"property {key.text!r} takes no indented block", file=file,
                              line=nested[0].no, expected="the next attribute at the same indent")
        cur.expect(":", f"':' after the property name {key.text!r}")
        value = self._value(cur)
        cur.done(f"end of line after the value of {key.text!r}")
        entry.props[key.text] = Prop(value, cur.pos)

    def _value(self, cur: _Cursor) -> Value:
        t = cur.peek()
        if t.kind == "num" or (t.kind == "punct" and t.text == "-"):
            neg = cur.accept("-")
            t = cur.expect_kind("num", "a number after '-'")
            v = t.value
            return -v if neg else v  # type: ignore[operator]
        if t.kind == "str":
            cur.next()
            return str(t.value)
        if t.kind == "punct" and t.text == "<":
            return self._range(cur)
        if t.kind == "ident":
            cur.next()
            if t.text == "true":
                return True
            if t.text == "false":
                return False
            if t.text == "empty":
                return EMPTY
            if "." in t.text:
                return EnumValue(t.text)
            return Ref(t.text)
        raise cur.error("a value: a number, a \"string\", true/false, Enum.Value, an entry name, "
                        "`empty` or <start, +size>")

    def _init_line(self, entry: Entry, cur: _Cursor, text: str) -> None:
        t = cur.peek()
        if t.kind == "ident" and t.text == "Tag":
            cur.next()
            r = self._range(cur)
            name_t = cur.expect_kind("str", 'the tag name in quotes after the range, e.g. "DBGMCU"')
            value: int | None = None
            if cur.peek().kind != "end":
                value = cur.expect_int("an optional integer read value after the tag name")
            cur.done("end of line after `Tag <start, end> \"NAME\" value`")
            entry.tags.append(TagLine(r.start, r.size, str(name_t.value), value, cur.pos))
        else:
            entry.init.append(InitLine(text, cur.pos))

    def _connection(self, entry: Entry, cur: _Cursor) -> None:
        # sources: none (default output), a name, a number, or a [list]
        sources: list[str | None]
        t = cur.peek()
        if t.kind == "arrow":
            sources = [None]
        elif t.kind == "ident" and "." not in t.text:
            cur.next()
            sources = [t.text]
        elif t.kind == "num":
            sources = [str(cur.expect_int("an output number"))]
        elif t.kind == "punct" and t.text == "[":
            sources = [str(n) for n in self._int_list(cur, "output numbers")]
        else:
            raise cur.error("an output (`IRQ`, `0`, `[0-7]`) or '->' starting a connection")
        cur.expect("->", "'->' after the connection source")
        pos = cur.pos
        groups: list[list[Target]] = []
        if cur.peek().kind == "ident" and cur.peek().text == "none":
            cur.next()
            cur.done("end of line after `-> none`")
        else:
            while True:
                dest_t = cur.peek()
                if dest_t.kind != "ident" or "." in dest_t.text:
                    raise cur.error("a connection target `name@line`, e.g. nvic@37")
                cur.next()
                if cur.at("#"):
                    raise cur.error("`@line` (local receivers `name#n@line` are not supported)")
                cur.expect("@", f"'@' and an input number after the target {dest_t.text!r}")
                if cur.at("["):
                    lines = self._int_list(cur, "input numbers")
                else:
                    lines = [cur.expect_int(f"an input number after {dest_t.text}@")]
                if len(lines) != len(sources):
                    raise ConfigError(f"{len(sources)} output(s) connected to {len(lines)} input(s) "
                                      f"of {dest_t.text}", file=pos.file, line=pos.line,
                                      expected="as many target lines as source outputs")
                groups.append([Target(dest_t.text, n) for n in lines])
                if cur.accept("|"):
                    continue
                cur.done("'|' (fan-out) or end of line after the connection target")
                break
        for k, src in enumerate(sources):
            targets = [g[k] for g in groups]
            entry.connections[src] = Connection(src, targets, pos)

    def _int_list(self, cur: _Cursor, what: str) -> list[int]:
        cur.expect("[", f"'[' starting a list of {what}")
        out: list[int] = []
        while True:
            a = cur.expect_int(f"a number or range a-b in the list of {what}")
            if cur.accept("-"):
                b = cur.expect_int(f"the end of the range {a}-")
                if b < a:
                    raise cur.error(f"a range end >= {a}")
                out.extend(range(a, b + 1))
            else:
                out.append(a)
            if cur.accept(","):
                continue
            cur.expect("]", f"',' or ']' in the list of {what}")
            return out


def _balanced(text: str) -> bool:
    depth = 0
    in_str = False
    for i, c in enumerate(text):
        if in_str:
            if c == '"' and text[i - 1] != "\\":
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
    return depth <= 0


# -- public entry points --------------------------------------------------------------------------------
def parse_text(text: str, file: str = "<string>", *, into: Platform | None = None,
               base_dir: Path | None = None) -> Platform:
    """Parse repl text (optionally as an overlay onto ``into``)."""
    platform = into if into is not None else Platform()
    _Parser(platform, (file,)).parse(text, file, base_dir)
    platform.files.append(file)
    return platform


def parse_file(path: str | Path, *, into: Platform | None = None,
               include_overlays: bool = False) -> Platform:
    """Parse a .repl file (optionally as an overlay onto ``into``); `using` resolves next to it.
    ``include_overlays``: a file pulled in with `using` brings its ``.builtin.repl`` overlay."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("platform file not found", file=path, expected="a .repl file")
    resolved = path.resolve()
    platform = into if into is not None else Platform()
    _Parser(platform, (str(resolved),), include_overlays).parse(path.read_text(), str(path),
                                                                resolved.parent)
    platform.files.append(str(path))
    return platform
