"""The C# under platforms/renode/ without Renode: every file compiles with Debian's mono-mcs against
tests/renode_stubs/RenodeApi.cs (Renode's API surface, transcribed with source paths), and the plain
cores (platforms/renode/DuohilCores.cs) run under mono on register-sequence vectors whose transcript
must equal what the builtin engine's Python models (stm32_dma.py, stm32_usart.py, stm32_dmamux.py)
print for the same vector. ci/setup.sh installs mono-mcs and mono-runtime; where they are missing
these tests skip and say so (nothing is installed from here)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from duohil.engines.builtin.soc.esp32c3.esp32c3_uart import ESP32C3Uart
from duohil.engines.builtin.kernel.machine import Machine
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.engines.builtin.soc.stm32h7.stm32_dma import Stm32Dma
from duohil.engines.builtin.soc.stm32h7.stm32_dmamux import Stm32Dmamux
from duohil.engines.builtin.soc.stm32h7.stm32_usart import Stm32Usart
from model_helpers import FakeCpu

ROOT = Path(__file__).resolve().parents[1]
CS_DIR = ROOT / "platforms" / "renode"
STUB = ROOT / "tests" / "renode_stubs" / "RenodeApi.cs"
RUNNER = ROOT / "tests" / "renode_cs" / "CoreTests.cs"
VECTORS = sorted((ROOT / "tests" / "renode_cs" / "vectors").glob("*.txt"))
MCS, MONO = shutil.which("mcs"), shutil.which("mono")
needs_mcs = pytest.mark.skipif(MCS is None, reason="mcs not found: install Debian's mono-mcs "
                               "(ci/setup.sh does) to compile platforms/renode/*.cs")
needs_mono = pytest.mark.skipif(MCS is None or MONO is None, reason="mcs/mono not found: install Debian's "
                                "mono-mcs and mono-runtime (ci/setup.sh does) to run the C# cores")


def _mcs(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([MCS, *args], capture_output=True, text=True, timeout=300)


def test_there_is_csharp_to_check():
    names = {p.name for p in CS_DIR.glob("*.cs")}
    assert {"DuohilUartLink.cs", "DuohilCores.cs", "DuohilModels.cs"} <= names
    assert len(VECTORS) >= 5


def test_stub_cites_a_renode_source_for_every_type():
    text = STUB.read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*public (?:sealed |static )?(?:class|interface|struct|enum) (\w+)", line)
        if m:
            j = i - 1
            while lines[j].strip().startswith("["):          # attributes sit between comment and type
                j -= 1
            above = lines[j]
            assert re.search(r"//.*(Main|Peripherals)/\S+\.cs", above), f"{m.group(1)}: no source path"
    assert "0c7d076" in text and "add012a" in text


@needs_mcs
def test_every_cs_compiles_against_the_renode_stub(tmp_path):
    sources = sorted(str(p) for p in CS_DIR.glob("*.cs"))
    r = _mcs(["-target:library", "-warnaserror+", f"-out:{tmp_path / 'duohil.dll'}", str(STUB), *sources])
    assert r.returncode == 0, r.stdout + r.stderr


@needs_mcs
def test_the_cores_use_no_renode_type(tmp_path):
    """DuohilCores.cs must compile alone: its logic is what the vectors check."""
    r = _mcs(["-target:library", f"-out:{tmp_path / 'cores.dll'}", str(CS_DIR / "DuohilCores.cs")])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if MCS is None or MONO is None:
        pytest.skip("mcs/mono not found: install Debian's mono-mcs and mono-runtime (ci/setup.sh does)")
    out = tmp_path_factory.mktemp("cs") / "CoreTests.exe"
    r = _mcs([f"-out:{out}", str(CS_DIR / "DuohilCores.cs"), str(RUNNER)])
    assert r.returncode == 0, r.stdout + r.stderr
    return out


# -- the same vector on the builtin Python models ----------------------------------------------------------
USART3, DMA1, DMAMUX1, AXISRAM = 0x4000_4800, 0x4002_0000, 0x4002_0800, 0x2400_0000
ESP_UART = 0x6001_0000


def python_transcript(vector: str) -> list[str]:
    sched = Scheduler()
    m = Machine("stm32", sched)
    m.attach_cpu(FakeCpu())
    m.add_memory("axisram", [AXISRAM], 0x8_0000)
    usart, dma = Stm32Usart(m, "usart3", USART3), Stm32Dma(m, "dma1", DMA1)
    mux = Stm32Dmamux(m, "dmamux1", DMAMUX1)
    esp = ESP32C3Uart(m, "uart1", ESP_UART)
    for p in (usart, dma, mux, esp):
        m.add_peripheral(p)
    m.finish()
    usart.output("ReceiveDmaRequest").connect(mux, 45)
    usart.output("TransmitDmaRequest").connect(mux, 46)
    for c in range(8):
        mux.output(c).connect(dma, c)
    out: list[str] = []
    usart.tx_sink = lambda u, b, t, bit, n: out.append(f"tx {b} {t}")
    esp.tx_sink = lambda u, b, t, bit, n: out.append(f"etx {b} {t}")
    for line in vector.splitlines():
        p = line.split()
        if not p or p[0].startswith("#"):
            continue
        n = [int(x, 0) for x in p[1:] if x != "fe"]
        if p[0] == "w" and AXISRAM <= n[0] < AXISRAM + 0x8_0000:
            m.write_memory(n[0], n[1].to_bytes(4, "little"))
        elif p[0] == "w":
            m.bus_write(n[0], 4, n[1])
        elif p[0] == "r":
            out.append(f"r {p[1]} {m.bus_read(n[0], 4)}")
        elif p[0] == "rx":
            usart.rx_char(n[0], False)
        elif p[0] == "erx":
            esp.rx_char(int(p[1], 0), p[2:] == ["fe"])
        elif p[0] == "run":
            sched.run_until(sched.now + n[0])
        elif p[0] == "lat":
            dma.set_completion_latency(n[0], n[1])
        elif p[0] == "mem":
            out.append(f"mem {p[1]} " + ",".join(str(b) for b in m.read_memory(n[0], n[1])))
        elif p[0] == "irqs":
            out.append("irqs " + "".join("1" if dma.output(s).level else "0" for s in range(8))
                       + " " + ("1" if usart.output("IRQ").level else "0")
                       + " " + ("1" if esp.output("IRQ").level else "0"))
        else:
            raise AssertionError(f"unknown vector op {p[0]!r}")
    return out


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.stem)
def test_cores_match_the_builtin_models(runner, vector):
    text = vector.read_text()
    expected = python_transcript(text)
    r = subprocess.run([MONO, str(runner)], input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    assert len(expected) >= 5
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g == e, f"{vector.name}: observation {i}: C# {g!r}, Python {e!r}"
    assert len(got) == len(expected), (got, expected)


def test_vectors_exercise_what_the_models_add():
    """The behaviours stock Renode lacks (renode-audit.md) each appear in some vector's transcript."""
    joined = {p.stem: python_transcript(p.read_text()) for p in VECTORS}
    circ = joined["dma_circular_rx"]
    assert any(line.startswith("irqs 1") for line in circ)                      # HT/TC interrupt
    assert "r 0x40020014 8" in circ                                              # NDTR reloaded
    normal = joined["dma_normal_en_clear_and_latency"]
    assert "r 0x40020010 1040" in normal                                         # EN cleared (0x410)
    usart = joined["usart_idle_ore_rto"]
    isr = [int(x.split()[2]) for x in usart if x.startswith("r 0x4000481c")]
    assert any(v & 0x10 for v in isr) and any(v & 0x08 for v in isr) and any(v & 0x800 for v in isr)
    tx = [x for x in joined["dma_tx_paced"] if x.startswith("tx ")]
    times = [int(x.split()[2]) for x in tx]
    assert len(tx) == 6 and all(b - a == 86_833_330 for a, b in zip(times, times[1:]))
