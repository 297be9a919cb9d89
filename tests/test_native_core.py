"""The native core's build, its binding to the loaded libunicorn, the refusal to start without it,
and the refusal of the retired DUOHIL_MODELS switch."""
from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from duohil.engines.builtin import native
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.errors import ConfigError, EngineUnavailable

ROOT = Path(__file__).resolve().parent.parent


def _core():
    core = native.core()
    assert core is not None, f"the native core should be built by `make setup`: {native.note()}"
    return core


def test_the_extension_is_built_and_bound_to_the_unicorn_the_package_loaded() -> None:
    core = _core()
    import unicorn
    assert core.built_for() == unicorn.__version__ == "2.1.4"
    # no second copy of libunicorn in the process: one mapping of the wheel's library
    maps = Path("/proc/self/maps").read_text().splitlines()
    libs = {line.split()[-1] for line in maps if "libunicorn" in line}
    assert len(libs) == 1, libs


def test_emu_start_from_c_runs_the_engine_the_python_object_owns() -> None:
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_R0
    core = _core()
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, bytes.fromhex("4ff02a00") + b"\x00\xbf" * 8)    # mov.w r0, #42; nops
    assert core.emu_start(uc._uch.value, 0x1001, 0xFFFFFFFF, 0, 1) == 0
    assert uc.reg_read(UC_ARM_REG_R0) == 42 and uc.reg_read(UC_ARM_REG_PC) == 0x1004
    assert core.bench_slices(uc._uch.value, 0x1005, 100, 2) == 0


@pytest.fixture
def fake_unicorn(tmp_path: Path):
    """A shared library exporting the uc_* symbols the core resolves, with uc_version() of
    unicorn 2.1.3: what a wheel change would look like to the version check."""
    syms = ["uc_strerror", "uc_emu_start", "uc_emu_stop", "uc_reg_read", "uc_reg_write",
            "uc_reg_read_batch", "uc_reg_write_batch",
            "uc_mem_read", "uc_mem_write", "uc_hook_add", "uc_hook_del", "uc_mmio_map", "uc_mem_unmap",
            "uc_ctl", "uc_mem_protect"]
    src = tmp_path / "fake.c"
    src.write_text("unsigned uc_version(unsigned *a, unsigned *b) { if (a) *a = 2; if (b) *b = 1;\n"
                   "  return 0x020103ff; }\n" + "".join(f"int {s}(void) {{ return 0; }}\n" for s in syms))
    lib = tmp_path / "libfake.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return ctypes.CDLL(str(lib))


def test_a_different_libunicorn_version_is_refused_with_one_line(fake_unicorn) -> None:
    core = _core()
    with pytest.raises(ImportError) as exc:
        core.bind_unicorn(fake_unicorn._handle)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "built for unicorn 2.1.4" in msg and "2.1.3" in msg
    # the refusal leaves the good binding in place
    test_emu_start_from_c_runs_the_engine_the_python_object_owns()


def test_a_library_without_the_unicorn_api_is_refused(tmp_path: Path) -> None:
    core = _core()
    libc = ctypes.CDLL(None)
    with pytest.raises(ImportError, match="has no uc_version"):
        core.bind_unicorn(libc._handle)


def test_every_model_is_the_c_one_and_the_retired_switch_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One copy of every model (issue 13): the scheduler, the CLINT, the IWDG and the STM32 timer
    are the C ones with DUOHIL_MODELS unset or native; DUOHIL_MODELS=python (the retired switch)
    or any other value is refused with one line naming the variable when an engine starts, by the
    library and by the CLI (no traceback), never silently ignored."""
    from duohil.engines.builtin.cpus.rv32.clint import CoreLevelInterruptor
    from duohil.engines.builtin.kernel.machine import Machine
    from duohil.engines.builtin.session import BuiltinEngine
    from duohil.engines.builtin.soc.stm32h7.stm32_iwdg import STM32_IndependentWatchdog
    from duohil.engines.builtin.soc.stm32h7.stm32_timer import STM32_Timer
    core = _core()
    for want in ("", "native"):
        monkeypatch.setenv(native.ENV, want)
        native.check_models_env()
        s = Scheduler(5)
        assert isinstance(s, core.Scheduler) and type(s) is Scheduler and s.quantum == 5
        clint = CoreLevelInterruptor(Machine("m", s, platform=__file__), "clint", 0x0200_0000,
                                     props={"frequency": 16_000_000})
        assert type(clint._c) is core.Clint
        iwdg = STM32_IndependentWatchdog(clint.machine, "iwdg", 0x5800_4800)
        assert isinstance(iwdg, core.Iwdg) and isinstance(iwdg, STM32_IndependentWatchdog)
        tim = STM32_Timer(clint.machine, "tim2", 0x4000_0000)
        assert isinstance(tim, core.Timer) and isinstance(tim, STM32_Timer)
    for bad in ("python", "fast"):
        monkeypatch.setenv(native.ENV, bad)
        with pytest.raises(ConfigError) as exc:
            BuiltinEngine().start(None)            # refused before the spec is looked at
        assert "DUOHIL_MODELS" in str(exc.value) and "retired" in str(exc.value)
        assert "\n" not in str(exc.value)
    r = subprocess.run([sys.executable, "-m", "duohil.cli", "run", "scenarios/nominal.yaml",
                        "--variant", "fixed", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=ROOT, check=False,
                       env={**__import__("os").environ, native.ENV: "python"})
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "DUOHIL_MODELS" in r.stderr and "retired" in r.stderr, r.stderr


def test_without_the_core_the_builtin_engine_refuses_with_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not built (or unusable): no traceback, one line saying why and how to fix it, from the
    engine's availability (``duohil engines``, get_engine) and from what would build a core or an
    NVIC (``native.require``; the scheduler too: the fresh-interpreter test below)."""
    from duohil.engines.builtin.session import BuiltinEngine
    from duohil.engines.registry import get_engine
    monkeypatch.setattr(native, "_state", (None, "native core not built: run `make setup` with gcc "
                                                 "and Python.h present"))
    ok, why = BuiltinEngine.availability()
    assert not ok and "\n" not in why
    assert "native core not built" in why and "make setup" in why and "python3-dev" in why
    with pytest.raises(EngineUnavailable) as exc:
        get_engine("builtin")
    assert "\n" not in str(exc.value) and "make setup" in str(exc.value)
    with pytest.raises(EngineUnavailable, match="gcc and the Python headers"):
        native.require()


def test_a_missing_core_is_reported_by_a_fresh_interpreter(tmp_path: Path) -> None:
    """The same from a process that cannot import the extension at all (its file hidden): the
    CLI prints the one line and exits 1, no traceback."""
    code = ("import sys, importlib.abc\n"
            "class Hide(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.endswith('native._core'):\n"
            "            raise ImportError('cannot import name \\'_core\\'')\n"
            "sys.meta_path.insert(0, Hide())\n"
            "from duohil.cli import main\n"
            "sys.exit(main(['run', 'scenarios/nominal.yaml', '--variant', 'fixed']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "native core not built" in r.stderr
    assert "make setup" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_duohil_engines_says_which_models_run() -> None:
    out = subprocess.run([sys.executable, "-m", "duohil.cli", "engines"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("builtin"))
    assert "native core built for unicorn 2.1.4; every model in C" in line


def test_the_setup_stamp_covers_the_c_sources() -> None:
    """The reinstall stamp hashes native/*.[ch] and setup.py compiles every .c of that folder: a
    source elsewhere (a subfolder) would be built by neither, or rebuilt by one and not the other."""
    setup = (ROOT / "ci" / "setup.sh").read_text()
    assert "duohil/engines/builtin/native/*.[ch]" in setup and "python3-dev" in setup
    setup_py = (ROOT / "setup.py").read_text()
    assert 'NATIVE.glob("*.c")' in setup_py and 'NATIVE.glob("*.h")' in setup_py
    native_dir = ROOT / "duohil/engines/builtin/native"
    nested = [p for p in native_dir.rglob("*.[ch]") if p.parent != native_dir]
    assert not nested, f"C sources outside native/ itself are not built: {nested}"
    assert {"_core.c", "ucapi.c", "evheap.c"} <= {p.name for p in native_dir.glob("*.c")}


def test_the_c_sources_compile_without_warnings(tmp_path: Path) -> None:
    """The flags setup.py uses, plus -Werror: a warning is a defect to fix, not build noise."""
    import sysconfig

    import unicorn
    native_dir = ROOT / "duohil/engines/builtin/native"
    inc = Path(unicorn.__file__).parent / "include"
    for src in sorted(p.name for p in native_dir.glob("*.c")):         # every unit, new ones too
        r = subprocess.run(["gcc", "-c", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                            "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                            "-Wno-cast-function-type", "-fPIC", f"-I{inc}",
                            f"-I{sysconfig.get_paths()['include']}", str(native_dir / src),
                            "-o", str(tmp_path / (src + ".o"))], capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
