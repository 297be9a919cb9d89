"""Struct layouts from DWARF (duohil/engines/builtin/loaders/dwarf.py): decode status blocks, patch config
blocks. A small C file is compiled (-g) for the Cortex-M7 (or by the host gcc) into a tmp dir."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from duohil.engines.builtin.loaders import dwarf
from duohil.errors import ConfigError

SOURCE = r"""
#include <stdint.h>
typedef enum { MODE_IDLE = 0, MODE_RUN = 3 } mode_t2;
struct limits { int16_t soft_min; uint16_t soft_max; };
typedef struct {
    uint32_t freshness_ms;
    int8_t   trim;
    struct limits limits;
    uint8_t  gains[4];
    struct limits pairs[2];
    mode_t2  mode;
    uint32_t flag  : 3;
    uint32_t other : 5;
    int32_t  neg   : 4;
    uint64_t big;
    int32_t  grid[2][3];
} config_t;
volatile const config_t g_config = {
    100, -2, { -5, 500 }, { 1, 2, 3, 4 }, { { 1, 2 }, { 3, 4 } }, MODE_RUN, 5, 17, -3,
    0x1122334455667788ull, { { 1, 2, 3 }, { -4, -5, -6 } } };
config_t g_status;
struct limits g_limits = { -5, 500 };
int g_scalar = 7;
void _start(void) { for (;;) { } }
"""

DEFAULTS = {"freshness_ms": 100, "trim": -2, "limits": {"soft_min": -5, "soft_max": 500},
            "gains": [1, 2, 3, 4], "pairs": [{"soft_min": 1, "soft_max": 2},
                                             {"soft_min": 3, "soft_max": 4}],
            "mode": 3, "flag": 5, "other": 17, "neg": -3, "big": 0x1122334455667788,
            "grid": [[1, 2, 3], [-4, -5, -6]]}


def _compile(tmp: Path, debug: bool = True) -> Path:
    src = tmp / "cfg.c"
    src.write_text(SOURCE)
    out = tmp / ("cfg.elf" if debug else "cfg-nodebug.elf")
    g = ["-g"] if debug else []
    if shutil.which("arm-none-eabi-gcc"):
        cmd = ["arm-none-eabi-gcc", *g, "-O0", "-mcpu=cortex-m7", "-mthumb", "-nostdlib",
               "-Wl,-e,_start", str(src), "-o", str(out)]
    elif shutil.which("gcc"):
        cmd = ["gcc", *g, "-O0", "-nostdlib", "-static", str(src), "-o", str(out)]
    else:
        pytest.skip("no C compiler (arm-none-eabi-gcc or gcc) to build the DWARF test image")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def elf(tmp_path_factory) -> Path:
    return _compile(tmp_path_factory.mktemp("dwarf"))


def test_decode_initial_value(elf):
    data = dwarf.initial_bytes(elf, "g_config")
    assert len(data) == dwarf.struct_size(elf, "g_config")
    assert dwarf.decode_struct(elf, "g_config", data) == DEFAULTS


def test_layout(elf):
    t = dwarf.struct_layout(elf, "g_config")
    assert isinstance(t, dwarf.Struct)
    members = {m.name: m for m in t.members}
    assert members["freshness_ms"].offset == 0
    assert members["limits"].offset == 6 and isinstance(members["limits"].type, dwarf.Struct)
    assert members["trim"].type.signed and not members["freshness_ms"].type.signed
    assert isinstance(members["gains"].type, dwarf.Array) and members["gains"].type.count == 4
    assert members["flag"].bit_size == 3
    assert members["mode"].type.kind == "enum" and members["mode"].type.enumerators[3] == "MODE_RUN"


def test_flat_struct_decodes_in_one_unpack_with_the_same_values(elf):
    # a struct of plain scalars (the firmware status blocks) takes the one-struct.unpack path
    t = dwarf.struct_layout(elf, "g_limits")
    assert dwarf._compile_flat(t, "<") is not None
    assert dwarf._compile_flat(dwarf.struct_layout(elf, "g_config"), "<") is None   # bitfields
    data = dwarf.initial_bytes(elf, "g_limits")
    assert dwarf.decode_struct(elf, "g_limits", data) == {"soft_min": -5, "soft_max": 500}
    assert dwarf.decode_struct(elf, "g_limits", bytes.fromhex("ffff" "ffff")) == \
        {"soft_min": -1, "soft_max": 0xFFFF}


def test_bss_block_is_zero(elf):
    status = dwarf.decode_struct(elf, "g_status", dwarf.initial_bytes(elf, "g_status"))
    assert status["freshness_ms"] == 0 and status["grid"] == [[0, 0, 0], [0, 0, 0]]


def test_patch_dotted_paths_and_nested_values(elf):
    patched = dwarf.patch_struct(elf, "g_config", {
        "freshness_ms": 50, "limits.soft_max": 1000, "gains[2]": 9, "gains.3": 255,
        "pairs.1.soft_min": -7, "flag": 7, "neg": -8, "mode": "MODE_IDLE",
        "grid": [[10, 20, 30]], "big": 2**64 - 1})
    v = dwarf.decode_struct(elf, "g_config", patched)
    assert v["freshness_ms"] == 50 and v["limits"] == {"soft_min": -5, "soft_max": 1000}
    assert v["gains"] == [1, 2, 9, 255] and v["pairs"][1] == {"soft_min": -7, "soft_max": 4}
    assert (v["flag"], v["other"], v["neg"]) == (7, 17, -8)     # neighbours of bit-fields intact
    assert v["mode"] == 0 and v["grid"] == [[10, 20, 30], [-4, -5, -6]] and v["big"] == 2**64 - 1
    nested = dwarf.patch_struct(elf, "g_config", {"limits": {"soft_min": -100}})
    assert dwarf.decode_struct(elf, "g_config", nested)["limits"] == {"soft_min": -100,
                                                                      "soft_max": 500}


def test_patch_applies_to_given_bytes(elf):
    base = dwarf.patch_struct(elf, "g_config", {"trim": 5})
    again = dwarf.encode_struct(elf, "g_config", base, {"freshness_ms": 1})
    v = dwarf.decode_struct(elf, "g_config", again)
    assert v["trim"] == 5 and v["freshness_ms"] == 1


def test_unknown_field_lists_valid_names(elf):
    with pytest.raises(ConfigError) as info:
        dwarf.patch_struct(elf, "g_config", {"freshnes_ms": 50})
    msg = str(info.value)
    assert str(elf) in msg and "g_config" in msg and "freshnes_ms" in msg
    assert "freshness_ms" in msg and "limits.soft_max" in msg
    with pytest.raises(ConfigError, match="limits.soft_mid"):
        dwarf.patch_struct(elf, "g_config", {"limits.soft_mid": 1})


@pytest.mark.parametrize("field,value,bounds", [
    ("trim", 128, "-128..127"), ("trim", -129, "-128..127"), ("freshness_ms", -1, "0..4294967295"),
    ("freshness_ms", 2**32, "0..4294967295"), ("flag", 8, "0..7"), ("neg", 8, "-8..7"),
    ("limits.soft_max", 65536, "0..65535"), ("gains.0", 256, "0..255")])
def test_out_of_range_values(elf, field, value, bounds):
    with pytest.raises(ConfigError) as info:
        dwarf.patch_struct(elf, "g_config", {field: value})
    assert "out of range" in str(info.value) and bounds in str(info.value)
    assert info.value.field == field


def test_wrong_shapes(elf):
    with pytest.raises(ConfigError, match="is a struct"):
        dwarf.patch_struct(elf, "g_config", {"limits": 3})
    with pytest.raises(ConfigError, match="index 0..3"):
        dwarf.patch_struct(elf, "g_config", {"gains.4": 1})
    with pytest.raises(ConfigError, match="integer"):
        dwarf.patch_struct(elf, "g_config", {"trim": "fast"})
    with pytest.raises(ConfigError, match="not an enumerator"):
        dwarf.patch_struct(elf, "g_config", {"mode": "MODE_FLY"})
    with pytest.raises(ConfigError, match="not a struct"):
        dwarf.patch_struct(elf, "g_scalar", {"x": 1})


def test_missing_symbol(elf):
    with pytest.raises(ConfigError) as info:
        dwarf.struct_layout(elf, "g_nope")
    assert "g_nope" in str(info.value) and str(elf) in str(info.value)


def test_missing_elf(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        dwarf.struct_layout(tmp_path / "nope.elf", "g_config")


def test_no_debug_info(tmp_path):
    elf = _compile(tmp_path, debug=False)
    with pytest.raises(ConfigError, match="-g"):
        dwarf.struct_layout(elf, "g_config")


def test_cache_per_path_and_mtime(tmp_path):
    elf = _compile(tmp_path)
    first = dwarf.dwarf_info(elf)
    assert dwarf.dwarf_info(elf) is first
    st = elf.stat()
    os.utime(elf, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert dwarf.dwarf_info(elf) is not first
