"""duohil replay: field reports (scenarios/field/examples/) -> scenarios that reproduce them.

The examples are our buggy/fixed firmware's own crashes as a field unit would have shown them
(tools/make_field_examples.py). Each must be decoded, claimed by its own crash mode only, written
as a scenario that reproduces the crash on the build that crashed and that `duohil ab` passes;
bad reports, captures and ELFs are one error line and exit 2.
"""
from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from duohil import capture as capmod
from duohil import cli
from duohil import replay as rp
from duohil import scenario as scmod
from duohil.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "scenarios" / "field" / "examples"
FIELD = ROOT / "scenarios" / "field"
BUILD = ROOT / "build" / "stm32"

# mode -> (report, capture, extra args, the scenario committed in scenarios/field/)
EXAMPLES = {
    "CM1": ("cm1.console.log", "cm1.logic1.csv", ["--peer-log", str(EX / "cm1.peer.log")],
            "field_cm1_gc_pause.yaml"),
    "CM2": ("cm2.console.log", "cm2.saleae2.csv", [], "field_cm2_len_flip.yaml"),
    "CM4": ("cm4.regdump.txt", "cm4.capture.csv", ["--elf", str(BUILD / "buggy.elf")],
            "field_cm4_torn_dma.yaml"),
    "CM7": ("cm7.crashrec.txt", "cm7.saleae2.csv", ["--elf", str(BUILD / "fixed.elf")],
            "field_cm7_bus_error.yaml"),
}

pytestmark = pytest.mark.skipif(not (BUILD / "buggy.elf").is_file(), reason="run `make firmware`")


def _replay(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = cli.main(["replay", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_example_reproduced_and_scenario_passes_ab(mode: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    report, capture, extra, committed = EXAMPLES[mode]
    out_yaml = tmp_path / committed
    rc, out, err = _replay([str(EX / report), "--capture", str(EX / capture), *extra,
                            "-o", str(out_yaml)], capsys)
    assert rc == 0, out + err
    assert "\nreproduced:" in out, out
    assert f"candidate {mode}:" in out
    field_line = next(ln for ln in out.splitlines() if ln.strip().startswith("field "))
    emu_line = next(ln for ln in out.splitlines() if ln.strip().startswith("emulated "))
    assert field_line.split(None, 1)[1] and emu_line.split(None, 1)[1]
    # what replay writes is what is committed in scenarios/field/ (regenerated, not hand-edited)
    assert out_yaml.read_text() == (FIELD / committed).read_text()
    assert (tmp_path / f"{out_yaml.stem}.capture.csv").read_text() == \
        (FIELD / f"{out_yaml.stem}.capture.csv").read_text()
    sc = scmod.load(out_yaml)
    assert sc.crash_mode == mode and sc.peer_replay and "link_replay" in sc.requires
    # an ordinary scenario: `duohil ab` runs it (buggy reproduces, fixed holds)
    rc = cli.main(["ab", str(FIELD / committed)])
    ab = capsys.readouterr().out
    assert rc == 0, ab
    assert ab.count("[ok ]") == 3, ab


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_example_claimed_by_its_own_mode_only(mode: str) -> None:
    report, capture, extra, _ = EXAMPLES[mode]
    rep = rp.parse_report(EX / report)
    elf = Path(extra[1]) if "--elf" in extra else BUILD / f"{rep.build}.elf"
    dec = rp.decode(rep, elf)
    gc = rp.parse_peer_log(extra[1]) if "--peer-log" in extra else []
    cands = rp.infer(rep, dec if rep.has_fault else None, capmod.read_capture(EX / capture), gc)
    assert [c.mode for c in cands] == [mode], [(c.mode, c.evidence) for c in cands]
    assert cands[0].evidence


def test_record_forms_decode_alike() -> None:
    """The CRASHREC line, the record as a gdb word dump and as raw bytes say the same thing."""
    line = rp.parse_report(EX / "cm7.crashrec.txt")
    hexd = rp.parse_report(EX / "cm7.record.hex")
    binr = rp.parse_report(EX / "cm7.record.bin")
    for k in ("pc", "lr", "cfsr", "hfsr", "bfar", "mmfar"):
        assert line.regs[k] == hexd.regs[k] == binr.regs[k], k
    assert line.exc == hexd.exc == binr.exc == 5
    assert binr.fix_mask == 0x7F
    dec = rp.decode(binr, BUILD / "fixed.elf")
    assert dec.exception == "BusFault" and dec.function == "main"
    assert any(w.startswith("IMPRECISERR") for w in dec.words)


def test_dump_decodes_forced_hardfault_in_words() -> None:
    rep = rp.parse_report(EX / "cm4.regdump.txt")
    dec = rp.decode(rep, BUILD / "buggy.elf")
    assert dec.exception == "BusFault" and dec.function == "memcpy"
    assert dec.lr is not None and dec.lr.function == "link_poll" and dec.lr.line
    assert any(w.startswith("FORCED") for w in dec.words)
    assert any("follows a call" in c for c in dec.checks)


def test_capture_layouts_read_the_same_bytes(tmp_path: Path) -> None:
    rows = [(1_000_000_000, "p2s", 0xFE), (1_086_805_556, "p2s", 0x0A), (2_500_000_000, "s2p", 0x81)]
    plain = tmp_path / "p.csv"
    capmod.write_plain(plain, rows)
    s2 = tmp_path / "s2.csv"
    s2.write_text("name,type,start_time,duration,data,error\n"
                  "Async Serial p2s,data,0.001,0.0000868,0xFE,\n"
                  "Async Serial p2s,data,0.001086805556,0.0000868,0x0A,\n"
                  "Async Serial s2p,data,0.0025,0.0000868,0x81,framing\n")
    l1 = tmp_path / "l1.csv"
    l1.write_text("Time [s],Value,Parity Error,Framing Error\n0.001,0xFE,,\n0.001086805556,0x0A,,\n")
    want = [(t, v) for t, d, v in rows if d == "p2s"]
    for p in (plain, s2, l1):
        cap = capmod.read_capture(p)
        assert [(b.t_ps, b.value) for b in cap.direction("p2s")] == want, p.name
    assert capmod.read_capture(s2).direction("s2p")[0].error == "framing"


# -- bad input: one line, exit 2 -----------------------------------------------------------------------
def _one_error_line(argv: list[str], capsys: pytest.CaptureFixture, *words: str) -> str:
    if "-o" not in argv:                  # should the error not come, write nothing into the repo
        argv = [*argv, "-o", str(Path(tempfile.mkdtemp()) / "x.yaml")]
    rc, out, err = _replay(argv, capsys)
    assert rc == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duohil: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_truncated_crashrec_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = (EX / "cm7.crashrec.txt").read_text()
    bad = tmp_path / "cut.txt"
    bad.write_text(text[:text.index(" hfsr=")] + "\n")
    _one_error_line([str(bad), "--capture", str(EX / "cm7.saleae2.csv"), "--elf",
                     str(BUILD / "fixed.elf")], capsys, "cut.txt", "truncated CRASHREC", "hfsr")


def test_corrupted_crashrec_value(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text((EX / "cm7.crashrec.txt").read_text().replace("pc=0x", "pc=0xZZ"))
    _one_error_line([str(bad), "--elf", str(BUILD / "fixed.elf")], capsys, "bad.txt", "CRASHREC.pc")


def test_truncated_and_corrupted_record_bytes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = (EX / "cm7.record.bin").read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(raw[:60])
    _one_error_line([str(short), "--elf", str(BUILD / "fixed.elf")], capsys, "60 bytes", "80 bytes")
    bad = tmp_path / "magic.bin"
    bad.write_bytes(struct.pack("<I", 0xDEADBEEF) + raw[4:])
    _one_error_line([str(bad), "--elf", str(BUILD / "fixed.elf")], capsys, "record.magic", "0xdeadbeef")
    hexd = tmp_path / "short.hex"
    hexd.write_text("\n".join((EX / "cm7.record.hex").read_text().splitlines()[:3]) + "\n")
    _one_error_line([str(hexd), "--elf", str(BUILD / "fixed.elf")], capsys, "48 bytes")


def test_truncated_register_dump(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "dump.txt"
    bad.write_text("".join(ln + "\n" for ln in (EX / "cm4.regdump.txt").read_text().splitlines()[:6]))
    _one_error_line([str(bad), "--elf", str(BUILD / "buggy.elf")], capsys, "truncated register dump",
                    "pc")


def test_csv_with_unknown_columns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "cap.csv"
    bad.write_text("when,what\n0.1,0xFE\n")
    _one_error_line([str(EX / "cm7.crashrec.txt"), "--capture", str(bad), "--elf",
                     str(BUILD / "fixed.elf")], capsys, "cap.csv", "unknown columns", "Saleae Logic 2")


def test_csv_with_times_going_back(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "cap.csv"
    lines = (EX / "cm4.capture.csv").read_text().splitlines()
    i = next(i for i in range(1, len(lines) - 1) if ",p2s," in lines[i] and ",p2s," in lines[i + 1])
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    bad.write_text("\n".join(lines) + "\n")
    _one_error_line([str(EX / "cm4.regdump.txt"), "--capture", str(bad), "--elf",
                     str(BUILD / "buggy.elf"), "-o", str(tmp_path / "x.yaml")], capsys, "cap.csv:",
                    "time goes back")


@pytest.mark.parametrize("report,elf", [("cm7.crashrec.txt", "buggy.elf"),
                                        ("cm4.regdump.txt", "fixed.elf"),
                                        ("cm7.record.bin", "../testfw/m7/echo.elf")])
def test_elf_that_does_not_match_the_record(report: str, elf: str, capsys: pytest.CaptureFixture) -> None:
    path = BUILD / elf
    if not path.is_file():
        pytest.skip(f"{path} not built")
    _one_error_line([str(EX / report), "--elf", str(path), "--no-run"], capsys, "--elf", path.name)


def test_boot_line_names_another_build(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _one_error_line([str(EX / "cm1.console.log"), "--capture", str(EX / "cm1.logic1.csv"), "--elf",
                     str(BUILD / "fixed.elf"), "--no-run"], capsys, "build=buggy", "fixed.elf")


def test_scenario_replay_path_must_stay_next_to_it(tmp_path: Path) -> None:
    shutil.copy(FIELD / "field_cm4_torn_dma.capture.csv", tmp_path / "c.csv")
    base = (FIELD / "field_cm4_torn_dma.yaml").read_text()
    for bad, word in (("/etc/passwd", "relative path"), ("../c.csv", "relative path"),
                      ("missing.csv", "not found")):
        p = tmp_path / "s.yaml"
        p.write_text(base.replace('"field_cm4_torn_dma.capture.csv"', f'"{bad}"'))
        with pytest.raises(ConfigError) as ei:
            scmod.load(p)
        assert ei.value.field == "peer.replay" and word in str(ei.value)
    p = tmp_path / "s.yaml"
    p.write_text(base.replace('"field_cm4_torn_dma.capture.csv"', '"c.csv"'))
    assert scmod.load(p).peer_replay


def test_without_capture_a_live_peer_stands_in(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The raw record alone (no capture): the scenario runs our peer, and the crash still matches."""
    out_yaml = tmp_path / "rec.yaml"
    rc, out, err = _replay([str(EX / "cm7.record.bin"), "--elf", str(BUILD / "fixed.elf"),
                            "-o", str(out_yaml)], capsys)
    assert rc == 0 and "\nreproduced:" in out, out + err
    sc = scmod.load(out_yaml)
    assert sc.peer_replay is None and sc.peer.image == "pooled-packed"
    assert [f.kind for f in sc.faults] == ["bus_fault"]
    assert not (tmp_path / "rec.capture.csv").exists()


def test_recorded_peer_puts_each_byte_on_the_wire_when_the_live_peer_did() -> None:
    """CM2's capture replayed: every peer->STM32 byte arrives at the picosecond the live peer's did,
    the corrupted LEN included (sent as the peer meant it, flipped by the scenario's link fault),
    and the STM32 prints the same console."""
    from duohil.duo import Duo

    def wire(path: Path) -> tuple[list, list[str]]:
        with Duo.from_scenario(scmod.load(path), "buggy") as duo:
            duo.run_to_end()
            return ([(b.t_ps, b.value, b.sent, b.fault) for b in duo.session.link_bytes()
                     if b.direction == "peer->stm32"], duo.stm32.console)

    live, live_console = wire(ROOT / "scenarios" / "cm2_resync.yaml")
    replayed, replayed_console = wire(FIELD / "field_cm2_len_flip.yaml")
    assert len(live) > 1000 and replayed == live
    flips = [b for b in replayed if b[3]]
    assert len(flips) == 1 and flips[0][1:] == (138, 10, "flip")
    assert replayed_console == live_console


def test_hardfault_line_with_no_boot_after_is_cm7_silent_death(tmp_path: Path) -> None:
    """A console that ends in HARDFAULT (no BOOT after it): the device stayed down."""
    rec = rp.parse_report(EX / "cm7.crashrec.txt").regs
    log = tmp_path / "console.log"
    log.write_text("     3.320 BOOT fw=stm32 build=fixed fixes=0x7f\n"
                   f"   159.725 HARDFAULT pc={rec['pc']:#010x} lr={rec['lr']:#010x} cfsr={rec['cfsr']:#010x} "
                   "hfsr=0x00000000 bfar=0x00000000 mmfar=0x00000000 exc=5\n")
    rep = rp.parse_report(log)
    assert rep.form == "hardfault" and rep.recovered is False and rep.build == "fixed"
    dec = rp.decode(rep, BUILD / "fixed.elf")
    cands = rp.infer(rep, dec, None)
    assert [c.mode for c in cands] == ["CM7"]
    assert any("no BOOT after it" in ev for ev in cands[0].evidence)
    log.write_text(log.read_text() + "   192.526 BOOT fw=stm32 build=fixed fixes=0x7f\n")
    assert rp.parse_report(log).recovered is True


def test_unknown_report_and_peer_log_without_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("the robot stopped, please fix\n")
    _one_error_line([str(junk), "--elf", str(BUILD / "fixed.elf")], capsys, "junk.txt",
                    "not a report duohil knows")
    plog = tmp_path / "peer.log"
    plog.write_text("GC n=1 pause_us=42000 model_us=42000 reason=pacer\n")
    _one_error_line([str(EX / "cm1.console.log"), "--capture", str(EX / "cm1.logic1.csv"),
                     "--peer-log", str(plog), "--no-run"], capsys, "peer.log:1", "timestamp")
