"""Status samples stored in columns: a long soak keeps every sample the oracles read (one per
SAMPLE_MS per MCU) at ~4 bytes per field instead of a dict per sample (~700 bytes).

A SampleLog is a Sequence of ``(t_ps, {field: value})`` equal to the list it replaces; the dicts
are made on the fly when read, so an oracle that walks the samples holds one at a time.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Iterable, Iterator



class SampleLog(Sequence):
    """(t_ps, fields) rows. Rows whose fields are not all int32-sized ints keep their dict."""

    def __init__(self, rows: Iterable[tuple[int, dict[str, Any]]] = ()) -> None:
        self._t = array("q")
        self._keyset = bytearray()               # row -> index into _keysets
        self._keysets: list[tuple[str, ...]] = []
        self._off = array("I", [0])              # row -> start of its values in _values
        self._values = array("i")
        self._odd: dict[int, dict[str, Any]] = {}    # row -> its dict (values not int32)
        for t, row in rows:
            self.append(t, row)

    def append(self, t_ps: int, row: dict[str, Any]) -> None:
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
        odd = self._odd.get(i)
        if odd is not None:
            return self._t[i], dict(odd)
        keys = self._keysets[self._keyset[i]]
        return self._t[i], dict(zip(keys, self._values[self._off[i]:self._off[i + 1]]))

    def __len__(self) -> int:
        return len(self._t)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(k) for k in range(*i.indices(len(self._t)))]
        n = len(self._t)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("sample index out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return (self._at(k) for k in range(len(self._t)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]
