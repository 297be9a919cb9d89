"""protocol/frame.c and messages.c against duohil.protocol and protocol/vectors.json.

Builds tests/host/protocol_harness.c with the host gcc twice (FIX_RESYNC=0 and =1), feeds it the
vectors in its text form and compares everything with the Python twin: payloads, counters, CRCs,
encoded frames and decoded messages. Also checks that the firmware sources compile warning-free and
libc-free for both targets.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from dataclasses import astuple
from pathlib import Path

import pytest

from duohil import protocol as P

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "protocol"
HARNESS_SRC = ROOT / "tests" / "host" / "protocol_harness.c"
VECTORS = json.loads((PROTO / "vectors.json").read_text())
WARN = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
MODES = {"buggy": 0, "fixed": 1}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc not found: cannot build tests/host/protocol_harness.c")
    out = tmp_path_factory.mktemp("protocol_harness")
    exes = {}
    for mode, fix in MODES.items():
        exe = out / f"protocol_harness_{mode}"
        cmd = [gcc, *WARN, "-O2", f"-I{PROTO}", f"-DFIX_RESYNC={fix}", str(HARNESS_SRC),
               str(PROTO / "frame.c"), str(PROTO / "messages.c"), "-o", str(exe)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert r.returncode == 0, f"harness build failed ({' '.join(cmd)}):\n{r.stderr}"
        exes[mode] = exe
    return exes


def run_harness(exe: Path, lines: list[str]) -> list[str]:
    r = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, f"{exe.name} failed: {r.stderr}"
    return [ln.rstrip() for ln in r.stdout.splitlines()]


# --- streams: the text form of the vectors --------------------------------------------------------

def stream_commands(name: str, segments: list[bytes]) -> list[str]:
    """A stream in the harness's text form: segments with an idle event between them."""
    cmds = [f"case {name}"]
    for i, seg in enumerate(segments):
        if i:
            cmds.append("i")
        cmds.append(f"b {seg.hex()}")
    return cmds + ["end"]


def parse_cases(lines: list[str]) -> dict[str, tuple[list[str], dict[str, int]]]:
    cases: dict[str, tuple[list[str], dict[str, int]]] = {}
    name = None
    payloads: list[str] = []
    for ln in lines:
        tag, _, rest = ln.partition(" ")
        if tag == "case":
            name, payloads = rest, []
        elif tag == "p":
            payloads.append(rest)
        elif tag == "c":
            assert name is not None
            cases[name] = (payloads, dict(zip(P.COUNTERS, map(int, rest.split()), strict=True)))
        else:
            raise AssertionError(f"unexpected harness line {ln!r}")
    return cases


def python_stream(segments: list[bytes], resync: bool) -> tuple[list[str], dict[str, int]]:
    d = P.FrameDecoder(resync=resync)
    got: list[bytes] = []
    for i, seg in enumerate(segments):
        if i:
            got += d.idle()
        got += d.feed(seg)
    return [p.hex() for p in got], d.counters()


def test_harness_modes(harness: dict[str, Path]) -> None:
    for mode, fix in MODES.items():
        assert run_harness(harness[mode], ["mode"]) == [f"mode {fix}"]


@pytest.mark.parametrize("mode", MODES)
def test_stream_vectors_c_equals_python_equals_vector(harness: dict[str, Path], mode: str) -> None:
    cmds: list[str] = []
    for v in VECTORS["streams"]:
        cmds += stream_commands(v["name"], [bytes.fromhex(s) for s in v["segments"]])
    c = parse_cases(run_harness(harness[mode], cmds))
    assert list(c) == [v["name"] for v in VECTORS["streams"]]
    for v in VECTORS["streams"]:
        exp = v["expect"][mode]
        py = python_stream([bytes.fromhex(s) for s in v["segments"]], resync=(mode == "fixed"))
        assert c[v["name"]] == py, f"{v['name']} ({mode}): C {c[v['name']]} != Python {py}"
        assert c[v["name"]] == (exp["payloads"], exp["counters"]), f"{v['name']} ({mode}) vs vector"


def _random_stream(rng: random.Random) -> list[bytes]:
    """Frames, noise and every kind of single-byte corruption, split by idle events."""
    segments = []
    for _ in range(rng.randint(1, 4)):
        seg = bytearray()
        for _ in range(rng.randint(0, 5)):
            if rng.random() < 0.7:
                size = rng.choice([0, 1, 3, 10, 24, 60, 252])
                f = bytearray(P.encode_frame(bytes(rng.choice([0, 0xFE, rng.randrange(256)])
                                                   for _ in range(size))))
                r = rng.random()
                if r < 0.15:
                    f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
                elif r < 0.25:
                    del f[rng.randrange(len(f))]
                elif r < 0.35:
                    f.insert(rng.randrange(len(f) + 1), rng.choice([0xFE, rng.randrange(256)]))
                elif r < 0.45:
                    f[1] = rng.choice([253, 254, 255, rng.randrange(256)])
                elif r < 0.5:
                    del f[rng.randrange(len(f)):]
                seg += f
            else:
                seg += bytes(rng.choice([0xFE, rng.randrange(256)]) for _ in range(rng.randint(1, 8)))
        segments.append(bytes(seg))
    if rng.random() < 0.5:
        segments.append(b"")          # trailing idle
    return segments


@pytest.mark.parametrize("mode", MODES)
def test_random_streams_c_equals_python(harness: dict[str, Path], mode: str) -> None:
    rng = random.Random(0xD00B)       # fixed seed: same 1500 streams every run
    streams = [_random_stream(rng) for _ in range(1500)]
    cmds: list[str] = []
    for i, segs in enumerate(streams):
        cmds += stream_commands(str(i), segs)
    c = parse_cases(run_harness(harness[mode], cmds))
    for i, segs in enumerate(streams):
        py = python_stream(segs, resync=(mode == "fixed"))
        assert c[str(i)] == py, f"stream {i} ({mode}) {[s.hex() for s in segs]}: C {c[str(i)]} != {py}"


def test_fixed_idle_rescans_until_nothing_is_left(harness: dict[str, Path]) -> None:
    # fe 0a | fe 03 | empty frame: the idle must rescan twice to find the frame.
    segs = [b"\xfe\x0a\xfe\x03" + P.encode_frame(b""), b""]
    c = parse_cases(run_harness(harness["fixed"], stream_commands("x", segs)))
    assert c["x"] == ([""], {"frames_ok": 1, "crc_errors": 0, "len_errors": 0, "resyncs": 2,
                             "idle_resets": 2, "bytes_discarded": 4})


# --- CRC, frames, messages --------------------------------------------------------------------------

def test_crc_vectors_in_c(harness: dict[str, Path]) -> None:
    lines = run_harness(harness["fixed"], [f"crc {v['data']}" for v in VECTORS["crc"]])
    assert lines == [f"crc {v['crc']}" for v in VECTORS["crc"]]
    assert lines == [f"crc {P.crc16_modbus(bytes.fromhex(v['data'])):04x}" for v in VECTORS["crc"]]


def test_modbus_worked_examples_in_c_equal_python(harness: dict[str, Path]) -> None:
    examples = ["0207", "01030000000a", "1103006b0003", b"123456789".hex()]
    lines = run_harness(harness["buggy"], [f"crc {h}" for h in examples])
    assert lines == [f"crc {P.crc16_modbus(bytes.fromhex(h)):04x}" for h in examples]
    assert lines[0] == "crc 1241" and lines[3] == "crc 4b37"


def test_random_crc_in_c_equals_python(harness: dict[str, Path]) -> None:
    rng = random.Random(7)
    data = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) for _ in range(1000)]
    lines = run_harness(harness["fixed"], [f"crc {d.hex()}" for d in data])
    assert lines == [f"crc {P.crc16_modbus(d):04x}" for d in data]


def test_frame_encode_in_c(harness: dict[str, Path]) -> None:
    lines = run_harness(harness["fixed"], [f"frame {v['payload']}" for v in VECTORS["frames"]]
                        + [f"frame {bytes(253).hex()}"])
    assert lines == [f"frame {v['frame']}" for v in VECTORS["frames"]] + ["frame -"]


def _py_msg_line(payload: bytes) -> str:
    try:
        m = P.decode_message(payload) if payload else P.Setpoint.decode(payload)
    except P.ProtocolError as e:
        return f"msg {e.code}"
    return "msg 0 " + " ".join(str(x) for x in astuple(m)) + " " + m.encode().hex()


def test_messages_in_c_equal_python(harness: dict[str, Path]) -> None:
    rng = random.Random(11)
    payloads = [bytes.fromhex(v["payload"]) for v in VECTORS["frames"] if v["type"] is not None]
    payloads += [bytes.fromhex(v["payload"]) for v in VECTORS["message_errors"]]
    payloads += [bytes.fromhex(v["natural_payload"]) for v in VECTORS["cm6_layout"]]
    for cls in P.MESSAGE_TYPES.values():        # random field values, and every length around the right one
        for _ in range(50):
            payloads.append(bytes((cls.TYPE, 1)) + bytes(rng.randrange(256) for _ in range(cls.LENGTH - 2)))
        for n in range(cls.LENGTH + 3):
            payloads.append(bytes((cls.TYPE, 1)) + bytes(n))
    lines = run_harness(harness["fixed"], [f"msg {p.hex()}" for p in payloads])
    assert lines == [_py_msg_line(p) for p in payloads]
    assert sum(ln.startswith("msg 0 ") for ln in lines) >= 5 * 50


def test_cm6_natural_payloads_are_rejected_by_c(harness: dict[str, Path]) -> None:
    lines = run_harness(harness["fixed"], [f"msg {v['natural_payload']}" for v in VECTORS["cm6_layout"]])
    assert lines == [f"msg {P.MSG_ERR_LENGTH}"] * len(VECTORS["cm6_layout"])


# --- firmware-grade build checks --------------------------------------------------------------------

CROSS = {
    "cortex-m7": (["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb"], "arm-none-eabi-nm"),
    "rv32imc": (["riscv64-unknown-elf-gcc", "-march=rv32imc_zicsr", "-mabi=ilp32"], "riscv64-unknown-elf-nm"),
}


@pytest.mark.parametrize("target", CROSS)
@pytest.mark.parametrize("fix", [0, 1])
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_firmware_sources_compile_clean_and_libc_free(tmp_path: Path, target: str, fix: int,
                                                      opt: str) -> None:
    cc, nm = CROSS[target]
    if shutil.which(cc[0]) is None or shutil.which(nm) is None:
        pytest.skip(f"{cc[0]} not installed")
    for src in ("frame.c", "messages.c"):
        obj = tmp_path / (src + ".o")
        r = subprocess.run([*cc, *WARN, "-Wconversion", "-Wshadow", "-ffreestanding", opt,
                            f"-DFIX_RESYNC={fix}", "-c", str(PROTO / src), "-o", str(obj)],
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
        assert undefined.strip() == "", f"{src} ({target}, {opt}) needs external symbols:\n{undefined}"
