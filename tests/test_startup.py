"""What a fresh process pays before its first guest instruction (docs/performance.md, "A fresh
process's first run" under Next):

- the facts read from an ELF (the image, DWARF layouts, initial bytes, the symbol table) are kept
  between processes per content (loaders/elf.py ``ImageFacts``): a kept fact equals a fresh parse,
  a hit parses nothing, and a rebuilt image -- even one with the same path, size and mtime -- is
  read again; so are parsed platforms (platform.py), checked against their files' bytes;
- the RV32 core's type is found without scanning every model and the installed entry points;
- `duohil run` does not import the campaign (its process pool), and `duohil --help` still
  lists every command;
- ci/setup.sh byte-compiles duohil, so a process under PYTHONDONTWRITEBYTECODE compiles none of it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from duohil.engines.builtin.loaders import dwarf, elf
from duohil.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

SOURCE = r"""
#include <stdint.h>
typedef struct {
    uint32_t freshness_ms;
    int16_t  trim;
    uint8_t  gains[4];
    EXTRA
} config_t;
volatile const config_t g_config = { FRESH, -2, { 1, 2, 3, 4 } };
config_t g_status;
int g_scalar = 7;
void _start(void) { for (;;) { } }
"""


def _compile(out: Path, fresh: int = 100, extra: str = "") -> Path:
    src = out.with_suffix(".c")
    src.write_text(SOURCE.replace("FRESH", str(fresh)).replace("EXTRA", extra))
    if shutil.which("arm-none-eabi-gcc"):
        cmd = ["arm-none-eabi-gcc", "-g", "-O0", "-mcpu=cortex-m7", "-mthumb", "-nostdlib",
               "-Wl,-e,_start", str(src), "-o", str(out)]
    elif shutil.which("gcc"):
        cmd = ["gcc", "-g", "-O0", "-nostdlib", "-static", str(src), "-o", str(out)]
    else:
        pytest.skip("no C compiler to build the test image")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def _fresh_process_caches() -> None:
    """Forget what this process keeps (as a new process would); the cache directory stays."""
    elf._FACTS.clear()
    dwarf._CACHE.clear()
    dwarf._BY_NAME.clear()


def _read_all(path: Path, symbols: tuple[str, ...]) -> tuple:
    """Everything a run reads from an image: the ElfImage, and per symbol its layout, size,
    initial bytes and decoded initial value; plus the DWARF symbol table's view of them."""
    _fresh_process_caches()
    img = elf.read_elf(path)
    info = dwarf.dwarf_info(path)
    per = {}
    for s in symbols:
        init = dwarf.initial_bytes(path, s)
        per[s] = (dwarf.struct_layout(path, s), dwarf.struct_size(path, s), init,
                  dwarf.decode_struct(path, s, init), info.symbol(s))
    return img, per, (info.little, info.address_size, info.has_dwarf)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache directory of this test's own; yields where images' facts go."""
    d = tmp_path / "cache"
    monkeypatch.setenv(elf.CACHE_ENV, str(d))
    yield d / "elf"
    _fresh_process_caches()


def _no_parsing(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("parsed the ELF although its facts were kept")
    monkeypatch.setattr(elf, "_parse_elf", refuse)
    monkeypatch.setattr(dwarf.DwarfInfo, "_parse", refuse)


PRODUCT = {REPO / "build" / "stm32" / "fixed.elf": ("g_config", "g_status", "g_crash_record"),
           REPO / "build" / "esp32" / "pooled-packed.elf": ("g_peer_config", "g_peer_status",
                                                           "g_peer_crash")}


@pytest.mark.parametrize("path", list(PRODUCT), ids=lambda p: p.name)
def test_kept_facts_equal_a_fresh_parse_and_parse_nothing(path, cache, monkeypatch):
    if not path.is_file():
        pytest.skip(f"{path} not built")
    monkeypatch.setenv(elf.CACHE_ENV, "off")
    parsed = _read_all(path, PRODUCT[path])
    assert not cache.exists()                                     # off: nothing written
    monkeypatch.setenv(elf.CACHE_ENV, str(cache.parent))
    first = _read_all(path, PRODUCT[path])                        # parses, keeps
    assert len(list(cache.glob("*.facts"))) == 1
    with monkeypatch.context() as m:
        _no_parsing(m)
        again = _read_all(path, PRODUCT[path])                    # a new process: from the file
    assert first == parsed and again == parsed
    assert again[0].segments and again[0].symbols                 # not vacuous
    assert again[0] is not first[0] and again[0].symbols is not first[0].symbols


def test_a_rebuilt_image_is_read_again_even_with_the_same_path_size_and_mtime(tmp_path, cache):
    fw = _compile(tmp_path / "fw.elf", fresh=100)
    st = fw.stat()
    v1 = _read_all(fw, ("g_config", "g_status"))
    assert v1[1]["g_config"][3]["freshness_ms"] == 100
    # rebuilt with another initial value: same size; its mtime set back to the old one
    _compile(tmp_path / "fw.elf", fresh=250)
    os.utime(fw, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fw.stat().st_size == st.st_size and fw.stat().st_mtime_ns == st.st_mtime_ns
    v2 = _read_all(fw, ("g_config", "g_status"))
    assert v2[1]["g_config"][3]["freshness_ms"] == 250
    # rebuilt with another layout
    _compile(tmp_path / "fw.elf", fresh=250, extra="uint32_t added;")
    v3 = _read_all(fw, ("g_config", "g_status"))
    assert [m.name for m in v3[1]["g_status"][0].members][-1] == "added"
    assert v3[1]["g_status"][1] > v1[1]["g_status"][1]
    assert len(list(cache.glob("*.facts"))) == 3                  # one per content
    # and back to the first build: its kept facts are the first parse's
    _compile(tmp_path / "fw.elf", fresh=100)
    assert _read_all(fw, ("g_config", "g_status")) == v1


def test_the_loaders_code_is_part_of_the_key(tmp_path, cache, monkeypatch):
    fw = _compile(tmp_path / "fw.elf")
    _read_all(fw, ("g_config",))
    monkeypatch.setattr(elf, "_LOADER_DIGEST", [b"another version of elf.py / dwarf.py"])
    with monkeypatch.context() as m:
        _no_parsing(m)
        with pytest.raises(AssertionError, match="parsed the ELF"):
            _read_all(fw, ("g_config",))                          # not the old code's facts


def test_a_damaged_or_unwritable_cache_is_the_same_as_none(tmp_path, cache, monkeypatch):
    fw = _compile(tmp_path / "fw.elf")
    want = _read_all(fw, ("g_config", "g_status"))
    (kept,) = cache.glob("*.facts")
    kept.write_bytes(b"\x80\x05not a pickle")
    assert _read_all(fw, ("g_config", "g_status")) == want        # worked out again...
    with monkeypatch.context() as m:
        _no_parsing(m)
        assert _read_all(fw, ("g_config", "g_status")) == want    # ...and kept again
    def read_only(*_a, **_k):
        raise PermissionError("read-only file system")
    with monkeypatch.context() as m:                              # a read-only cache is still read
        _no_parsing(m)
        m.setattr(elf.os, "utime", read_only)
        m.setattr(elf.tempfile, "mkstemp", read_only)
        assert _read_all(fw, ("g_config", "g_status")) == want
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(elf.CACHE_ENV, str(blocker / "sub"))       # cannot be created
    assert _read_all(fw, ("g_config", "g_status")) == want


def test_errors_are_not_kept(tmp_path, cache):
    fw = _compile(tmp_path / "fw.elf")
    for _ in range(2):
        _fresh_process_caches()
        with pytest.raises(ConfigError, match="not found"):
            dwarf.struct_layout(fw, "g_nope")
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    for _ in range(2):
        _fresh_process_caches()
        with pytest.raises(ConfigError, match="not a valid ELF"):
            elf.read_elf(bad)


def test_the_cache_keeps_the_most_recently_used_files(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(elf, "CACHE_MAX_FILES", 3)
    paths = []
    for i in range(5):
        paths.append(_compile(tmp_path / f"fw{i}.elf", fresh=i))
        elf.read_elf(paths[-1])
    assert len(list(cache.glob("*.facts"))) == 3
    assert not list(cache.glob(".tmp-*"))


def test_a_kept_platform_parse_is_used_while_its_files_bytes_are_the_same(tmp_path, cache,
                                                                          monkeypatch):
    from duohil.engines.builtin.loaders import platform

    def load(path, **kw):                                  # as a fresh process would
        platform._PARSED.clear()
        return platform.load_platform(path, **kw)
    board, inc = tmp_path / "board.repl", tmp_path / "common.repl"
    inc.write_text("y: Misc.Thing @ sysbus 0x2000\n    b: 1\n")
    board.write_text('using "common.repl"\nx: Misc.Thing @ sysbus 0x1000\n    a: 1\n')
    first = load(board)
    real = REPO / "platforms" / "stm32h743.repl"
    want = platform._parse_platform(real, (), True)
    assert load(real) == want
    assert len(list((cache.parent / "platform").glob("*.facts"))) == 2
    parse = platform._parse_platform
    with monkeypatch.context() as m:
        m.setattr(platform, "_parse_platform", None)       # kept: not parsed
        assert load(board) == first and load(real) == want
        assert load(board) is not load(board)              # a copy each time
    board.write_text('using "common.repl"\nx: Misc.Thing @ sysbus 0x1000\n    a: 2\n')
    assert load(board)["x"].prop("a") == 2                 # same size, same instant
    inc.write_text("y: Misc.Thing @ sysbus 0x2000\n    b: 3\n")
    assert load(board)["y"].prop("b") == 3                 # an included file changed
    (tmp_path / "common.builtin.repl").write_text("y:\n    b: 9\n")
    assert load(board)["y"].prop("b") == 9                 # its overlay appeared
    assert load(board, builtin_overlay=False)["y"].prop("b") == 3     # another key
    monkeypatch.setattr(platform, "_PARSER_DIGEST", [b"another repl.py"])
    calls = []
    monkeypatch.setattr(platform, "_parse_platform", lambda *a: calls.append(a) or parse(*a))
    assert load(board)["y"].prop("b") == 9 and calls       # other parser code: parsed again
    board.write_text("x: Misc.Thing @ sysbus 0x1000\n    a: !\n")
    for _ in range(2):                                     # errors are never kept
        with pytest.raises(ConfigError):
            load(board)


def test_the_rv32_core_is_found_without_the_entry_points(monkeypatch):
    from duohil.engines.builtin.cpus.rv32.riscv import RiscV32Cpu
    from duohil.engines.builtin.loaders import platform
    reg = platform.ModelRegistry()
    scanned: list[str] = []
    monkeypatch.setattr(reg, "_entry_points", lambda: scanned.append("entry points"))
    real_scan = reg._scan
    monkeypatch.setattr(reg, "_scan", lambda m: (scanned.append(m), real_scan(m)))
    assert reg.candidates("CPU.RiscV32") == [RiscV32Cpu]
    assert reg.cpu_class("CPU.RiscV32", platform.Pos("x.repl", 1)) is RiscV32Cpu
    assert scanned == ["cpus.rv32.riscv"] * len(scanned)          # its own module only


def test_duohil_help_lists_every_command():
    out = subprocess.run([PY, "-m", "duohil.cli", "--help"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    from duohil import cli
    choices = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert {"run", "ab", "matrix", "campaign", "merge", "engines", "boot", "replay"} <= set(choices)
    for name in choices:
        assert re.search(rf"^\s+{name}\s", out, re.M), name
    err = subprocess.run([PY, "-m", "duohil.cli", "campaign", "--help"], capture_output=True,
                         text=True, cwd=REPO)
    assert err.returncode == 0 and "--trials" in err.stdout


def test_duohil_run_imports_no_campaign_and_settles_no_heap(tmp_path):
    """`duohil run` (the process's only run) imports no campaign and skips runner._settle_heap;
    runner.run's default, for a process with more runs to come, still settles (gc.freeze)."""
    fixed = REPO / "build" / "stm32" / "fixed.elf"
    if not fixed.is_file() or not (REPO / "build" / "esp32" / "pooled-packed.elf").is_file():
        pytest.skip("product images not built")
    text = (REPO / "scenarios" / "nominal.yaml").read_text()
    sc = tmp_path / "short.yaml"
    sc.write_text(re.sub(r"^duration_ms: \d+$", "duration_ms: 50", text, flags=re.M))
    code = ("import gc, sys; from duohil import cli, runner, scenario\n"
            "rc = cli.main(['run', sys.argv[1], '--variant', 'fixed'])\n"
            "print('MODULES', sorted(m for m in sys.modules if m in ('duohil.campaign', "
            "'concurrent.futures.process', 'duohil.cli_replay', 'duohil.cli_serve')))\n"
            "print('FROZEN', gc.get_freeze_count())\n"
            "r = runner.run(scenario.load(sys.argv[1]), 'fixed')\n"
            "print('THEN FROZEN', gc.get_freeze_count() > 0, r.fingerprint)\n"
            "sys.exit(rc)")
    out = subprocess.run([PY, "-c", code, str(sc)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    fp = re.search(r"fingerprint (\w+)", out.stdout).group(1)
    assert "MODULES []" in out.stdout, out.stdout
    assert "FROZEN 0" in out.stdout, out.stdout
    assert f"THEN FROZEN True {fp}" in out.stdout, out.stdout           # same run, same result


def test_setup_byte_compiles_duohil_so_no_module_is_compiled_at_import(tmp_path):
    """The compileall line of ci/setup.sh, run on a copy of duohil; then a process under
    PYTHONDONTWRITEBYTECODE imports duohil.cli and compiles none of duohil's modules."""
    setup = (REPO / "ci" / "setup.sh").read_text()
    line = next(ln for ln in setup.splitlines() if ln.startswith(".venv/bin/python -m compileall"))
    assert line.split()[-1] == "duohil"
    shutil.copytree(REPO / "duohil", tmp_path / "duohil",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([PY, *line.split()[1:]], check=True, cwd=tmp_path, env=env)
    probe = ("import importlib.machinery as m, sys\n"
             "compiled = []\n"
             "real = m.SourceFileLoader.source_to_code\n"
             "def spy(self, data, path, *a, **k):\n"
             "    compiled.append(str(path))\n"
             "    return real(self, data, path, *a, **k)\n"
             "m.SourceFileLoader.source_to_code = spy\n"
             "import duohil.cli, duohil.runner, duohil.engines.builtin.session\n"
             "assert duohil.__file__.startswith(sys.argv[1]), duohil.__file__\n"
             "print('COMPILED', [p for p in compiled if '/duohil/' in p])\n")
    out = subprocess.run([PY, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=True).stdout
    assert "COMPILED []" in out, out
    # and without the compile step the same probe sees duohil compiled (the probe can fail)
    shutil.rmtree(tmp_path / "duohil")
    shutil.copytree(REPO / "duohil", tmp_path / "duohil",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([PY, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=True).stdout
    assert "duohil/cli.py" in out
