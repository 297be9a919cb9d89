"""Fuzzing the scenario loader with mutated shipped scenarios (bytes and structures).

Every outcome must be a clean load or one ConfigError line naming the file: never another
exception, never a multi-line message, never a slow load. Hypothesis runs derandomized and without
its example database, so CI sees the same examples every time; the whole module stays well under
30 s.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duohil import scenario
from duohil.errors import ConfigError

SHIPPED = sorted((scenario.REPO / "scenarios").glob("*.yaml"))
SOURCES = [p.read_bytes() for p in SHIPPED]
RAW = [yaml.safe_load(b) for b in SOURCES]

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# fragments that reach the YAML machinery's corners: anchors and aliases, nesting, tags,
# non-finite numbers, odd bytes, keys, document markers
FRAGMENTS = [b"&a ", b"*a", b"&b [*a, *a, *a]", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n", b"\n  ",
             b".nan", b".inf", b"-.inf", b"1.0e+999", b"9" * 30, b"-1", b"0", b"!!python/name:os.system",
             b"!!binary aGk=", b"!!set {a}", b"<<: *a", b"---\n", b"\xff", b"\xc3", b"\x00", b"\t",
             b"'", b'"', b"#", b"%YAML 1.1\n", b"?", b"|", b">", b"../", b"payload[999]", b"~",
             b"name: ", b"duration_ms: ", b"kind: ", b"faults:\n  - ", b"expect: "]


def check_outcome(path: Path) -> None:
    t0 = time.perf_counter()
    try:
        sc = scenario.load(path)
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and "\r" not in text, text
        assert text.startswith(str(path)), text              # names the scenario file first
        assert len(text) < 1000, len(text)
        assert exc.exit_code == 2
    else:
        assert isinstance(sc, scenario.Scenario)
        assert 0 < sc.duration_ms <= scenario.MAX_DURATION_MS and sc.quantum_ps >= 1
        assert scenario.NAME_RE.match(sc.name)
        scenario.content_hash(sc)                             # a loaded scenario is hashable
    assert time.perf_counter() - t0 < 2.0


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(SOURCES[draw(st.integers(0, len(SOURCES) - 1))])
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "byte", "dup_line"]))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(FRAGMENTS))
        elif op == "replace":
            data[pos:pos + draw(st.integers(1, 12))] = draw(st.sampled_from(FRAGMENTS))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 40))]
        elif op == "byte":
            data[pos:pos + 1] = bytes([draw(st.integers(0, 255))])
        else:                                       # duplicate a line: duplicate keys
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@FUZZ
@given(data=mutated_bytes())
def test_mutated_bytes_load_or_give_one_error_line(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fz") / "mutant.yaml"
    path.write_bytes(data)
    check_outcome(path)


HOSTILE = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, 10**30, -10**30, 1e-12,
                     True, None, "", "../../x", "a/b", "payload[999]", "x" * 500, [], {},
                     [[[[[]]]]], {"uniform": [5, 1]}, {"choice": []}, {"randint": [0.5, 2]},
                     {"any": []}, {"none": ["ok"]}, ["ok", "ok"], 2**64, 1.5]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(-5, 300), max_size=4),
    st.dictionaries(st.sampled_from(["kind", "at_ms", "uniform", "image", "any", "x"]),
                    st.integers(-5, 10**6), max_size=3),
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_structures(draw: st.DrawFn) -> object:
    doc = copy.deepcopy(RAW[draw(st.integers(0, len(RAW) - 1))])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) or not isinstance(parent, dict):
            parent[path[-1]] = draw(HOSTILE)            # a hostile value in a real place
        else:
            del parent[path[-1]]                         # or a key gone
    return doc


@FUZZ
@given(doc=mutated_structures())
def test_mutated_structures_load_or_give_one_error_line(tmp_path_factory, doc: object) -> None:
    path = tmp_path_factory.mktemp("fz") / "mutant.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    check_outcome(path)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_the_unmutated_sources_load(path: Path) -> None:
    """The fuzzers start from files that load: a mutant's error is the mutation's."""
    check_outcome(path)
    assert scenario.load(path).name == path.stem
