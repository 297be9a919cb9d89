"""Crash decoding: CFSR/HFSR in words, PC/LR to function + file:line through DWARF."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from duohil import crash

SRC = """\
volatile int sink;
__attribute__((noinline)) int leaf(volatile int *p)
{
    return *p + 1;
}

__attribute__((noinline)) int caller(void)
{
    int v = leaf((volatile int *)0x60000000);
    sink = v;
    return v;
}

void _start(void) { for (;;) caller(); }
"""


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not installed (make test installs it)")
    d = tmp_path_factory.mktemp("crash")
    (d / "fw.c").write_text(SRC)
    out = d / "fw.elf"
    subprocess.run([gcc, "-mcpu=cortex-m7", "-mthumb", "-O1", "-g", "-nostdlib", "-e", "_start",
                    "-Wl,-Ttext=0x08000000", str(d / "fw.c"), "-o", str(out)], check=True)
    return out


def test_cfsr_words():
    words = crash.describe_cfsr(0x00008200, bfar=0x60000000)
    assert words == ["PRECISERR: precise data bus error at 0x60000000"]
    assert crash.describe_cfsr(0x00010000) == ["UNDEFINSTR: undefined instruction"]
    assert crash.describe_cfsr(0x82, mmfar=0x20000000)[0] == \
        "DACCVIOL: data access violation (MPU) at 0x20000000"
    # address registers are only quoted when their VALID bit says so
    assert crash.describe_cfsr(0x200, bfar=0x60000000) == ["PRECISERR: precise data bus error"]


def test_hfsr_words():
    assert crash.describe_hfsr(0x40000000) == [
        "FORCED: a configurable fault escalated to HardFault (disabled or priority too low)"]
    assert crash.describe_hfsr(0) == []


def test_pc_and_lr_map_to_function_and_line(elf):
    sym = crash.symbolizer(str(elf))
    leaf = next(f for f in sym._funcs if f[2] == "leaf")
    caller = next(f for f in sym._funcs if f[2] == "caller")
    loc = sym.locate(leaf[0])
    assert loc.function == "leaf" and loc.file.endswith("fw.c") and 2 <= loc.line <= 4
    rep = crash.decode_cortexm({"cfsr": 0x8200, "hfsr": 0x40000000, "bfar": 0x60000000,
                                "pc": leaf[0] + 2, "lr": caller[0] + 5}, elf)
    assert rep.pc.function == "leaf"
    assert rep.lr.function == "caller" and 7 <= rep.lr.line <= 12
    assert rep.summary[0].startswith("PRECISERR") and "FORCED" in rep.summary[1]
    assert "leaf" in rep.headline() and "fw.c" in rep.headline()
    assert [b.function for b in rep.backtrace] == ["leaf", "caller"]
    js = rep.to_json()
    assert js["pc_function"] == "leaf" and js["pc_line"] == rep.pc.line


def test_stack_scan_adds_return_addresses(elf):
    sym = crash.symbolizer(str(elf))
    leaf = next(f for f in sym._funcs if f[2] == "leaf")
    start = next(f for f in sym._funcs if f[2] == "_start")
    rep = crash.decode_cortexm({"cfsr": 0, "hfsr": 0, "pc": leaf[0], "lr": 0xFFFFFFF9}, elf,
                               stack_words=[0x12345678, start[0] + 3, 0])
    assert rep.lr is None                                        # EXC_RETURN is not code
    assert [b.function for b in rep.backtrace] == ["leaf", "_start"]


def test_riscv_trap_words(elf):
    rep = crash.decode_riscv({"mcause": 5, "mepc": 0x08000000, "mtval": 0x1234}, elf)
    assert rep.summary == ["mcause=0x5: load access fault", "mtval=0x00001234"]


def _addr2line(tool: str, elf, address: int) -> tuple[str | None, int | None]:
    """(file basename, line) as binutils says it, (None, None) for ``??``. One address a call:
    batched, arm-none-eabi-addr2line 2.40 sometimes answers ??:? for a row that has a line."""
    out = subprocess.run([tool, "-e", str(elf), hex(address)], capture_output=True, text=True,
                         check=True).stdout.strip().split(" (discriminator")[0]
    file, _, line = out.rpartition(":")
    if file == "??":
        return None, None
    return file.rsplit("/", 1)[-1], int(line)


def _ours(sym, address: int) -> tuple[str | None, int | None]:
    loc = sym.locate(address)
    return (loc.file.rsplit("/", 1)[-1] if loc.file else None), loc.line


@pytest.mark.parametrize("image,tool", [("stm32/buggy.elf", "arm-none-eabi-addr2line"),
                                        ("esp32/pooled-natural.elf", "riscv64-unknown-elf-addr2line")])
def test_line_lookup_agrees_with_addr2line(image, tool):
    # a wild PC (CM5's 0x6091d000) once borrowed the last row below it (memset.c:72); an address
    # past the end of a line-table sequence, or outside every loaded section, has no line at all
    from fw_helpers import BUILD, require_images
    require_images(image)
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    elf = BUILD / image
    sym = crash.ElfSymbolizer(elf)
    starts = {a for a, _, _, _ in sym._lines}
    seq_ends = sorted(e for _, e, _, _ in sym._lines if e not in starts)   # ends not followed by code
    assert seq_ends, "no sequence end to probe"
    last = max(seq_ends)
    fn = next(f for f in sym._funcs if f[1] - f[0] >= 16)
    probes = {
        "function entry": fn[0], "inside a function": (fn[0] + fn[1]) // 2 & ~1,
        "last row of the last sequence": last - 2, "end of the last sequence": last,
        "end of the first gap": seq_ends[0], "past every sequence": last + 0x100,
        "CM5's wild PC": 0x6091D000, "address 0 (dropped sequences live here)": 0,
    }
    for what, address in probes.items():
        assert _ours(sym, address) == _addr2line(tool, elf, address), (what, hex(address))
    assert _ours(sym, 0x6091D000) == (None, None) and _ours(sym, last) == (None, None)
    assert _ours(sym, last - 2)[1] is not None and _ours(sym, fn[0])[1] is not None
    loc = sym.locate(0x6091D000)
    assert str(loc) == "0x6091d000 ??"
