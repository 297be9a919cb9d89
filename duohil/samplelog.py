"""Status samples stored in columns: a long soak keeps every sample the oracles read (one per
SAMPLE_MS per MCU) at ~4 bytes per field instead of a dict per sample (~700 bytes).

A SampleLog is a Sequence of ``(t_ps, {field: value})`` equal to the list it replaces; the dicts
are made on the fly when read, so an oracle that walks the samples holds one at a time. A sample
may also arrive raw (``append_raw``: the struct's bytes and how to decode them, what Duo takes
every 5 ms while the run goes): it is decoded, in order, when the log is next read.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain
from typing import Any, Callable, Iterable, Iterator

#: raw rows kept undecoded at most (~200 B each for the status blocks: ~5 s of Duo's sampling)
RAW_BATCH = 1024


class SampleLog(Sequence):
    """(t_ps, fields) rows. Rows whose fields are not all int32-sized ints keep their dict."""

    def __init__(self, rows: Iterable[tuple[int, dict[str, Any]]] = ()) -> None:
        self._t = array("q")
        self._keyset = bytearray()               # row -> index into _keysets
        self._keysets: list[tuple[str, ...]] = []
        self._off = array("I", [0])              # row -> start of its values in _values
        self._values = array("i")
        self._odd: dict[int, dict[str, Any]] = {}    # row -> its dict (values not int32)
        self._raw: list[tuple[int, bytes, Callable[[bytes], dict[str, Any]]]] = []
        for t, row in rows:
            self.append(t, row)

    def append_raw(self, t_ps: int, raw: bytes, decode: Callable[[bytes], dict[str, Any]]) -> None:
        """A row as bytes and the function that makes its dict: decoded when the log is read, or
        once RAW_BATCH rows wait (a long run nobody reads keeps its columns, not its bytes)."""
        self._raw.append((t_ps, raw, decode))
        if len(self._raw) >= RAW_BATCH:
            self._decode_raw()

    def _decode_raw(self) -> None:
        raw, self._raw = self._raw, []
        i = 0
        while i < len(raw):
            decode = raw[i][2]
            j = i + 1
            while j < len(raw) and raw[j][2] is decode:
                j += 1
            if not self._extend_rows(raw[i:j], decode):
                for t, data, _d in raw[i:j]:
                    self._append(t, decode(data))
            i = j

    def _extend_rows(self, raw: list[tuple[int, bytes, Any]], decode: Any) -> bool:
        """Rows of one decoder in one pass, when it unpacks plain ints (``decode.rows``: each
        row's values in ``decode.fields``' order) that all fit int32; False: decode row by row."""
        rows, keys = getattr(decode, "rows", None), getattr(decode, "fields", None)
        if rows is None or not keys:
            return False
        try:
            k = self._keysets.index(keys)
        except ValueError:
            k = len(self._keysets)
        if k > 255:
            return False
        try:
            col = array("i", chain.from_iterable(rows(b"".join(r[1] for r in raw))))
        except OverflowError:
            return False
        if k == len(self._keysets):
            self._keysets.append(keys)
        n, per, base = len(raw), len(keys), len(self._values)
        self._t.extend(r[0] for r in raw)
        self._keyset.extend(bytes((k,)) * n)
        self._values.extend(col)
        self._off.extend(range(base + per, base + per * n + 1, per))
        return True

    def append(self, t_ps: int, row: dict[str, Any]) -> None:
        if self._raw:                             # rows stay in the order they were taken
            self._decode_raw()
        self._append(t_ps, row)

    def _append(self, t_ps: int, row: dict[str, Any]) -> None:
        keys = tuple(row)
        try:
            k = self._keysets.index(keys)
        except ValueError:
            k = len(self._keysets)
            self._keysets.append(keys)
        i = len(self._t)
        vals = tuple(row.values())
        col = None
        # plain ints only (no bools, floats, None), each in int32: the array's constructor
        # refuses the rest whole (two C passes, not a generator: Duo appends 400 rows a second)
        if k <= 255 and (not vals or set(map(type, vals)) == {int}):
            try:
                col = array("i", vals)
            except OverflowError:
                col = None
        if col is None:
            self._odd[i] = dict(row)
            k = 0
        self._t.append(t_ps)
        self._keyset.append(k)
        if col is not None:
            self._values.extend(col)
        self._off.append(len(self._values))

    def _at(self, i: int) -> tuple[int, dict[str, Any]]:
        if self._raw:
            self._decode_raw()
        odd = self._odd.get(i)
        if odd is not None:
            return self._t[i], dict(odd)
        keys = self._keysets[self._keyset[i]]
        return self._t[i], dict(zip(keys, self._values[self._off[i]:self._off[i + 1]]))

    def __len__(self) -> int:
        return len(self._t) + len(self._raw)

    def __getitem__(self, i: Any) -> Any:
        if self._raw:
            self._decode_raw()
        if isinstance(i, slice):
            return [self._at(k) for k in range(*i.indices(len(self._t)))]
        n = len(self._t)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("sample index out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self._raw:
            self._decode_raw()
        return (self._at(k) for k in range(len(self._t)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]
