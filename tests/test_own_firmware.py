"""Own images first-class: an ELF that knows nothing of duohil (tests/fw/m7/echo.c: no g_config,
no status block, no crash record, no log-line contract) through every door a user has: `Duo.start`
with no peer, the host-side UART endpoints, a scenario with `peer: none`, the pytest fixture,
`duohil boot`, and the words a run ends with (decoded faults, poll loops, baud mismatches)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fw_helpers import require_images

from duohil import cli_boot, diagnose, runner
from duohil import scenario as scmod
from duohil.duo import Duo, explain
from duohil.engines import base
from duohil.errors import ConfigError

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
ECHO = "build/testfw/m7/echo.elf"
SCENARIO = ROOT / "tests" / "data" / "own" / "echo_alone.yaml"


@pytest.fixture
def echo() -> str:
    require_images("testfw/m7/echo.elf")
    return ECHO


def test_contract_less_image_boots_alone_and_echoes(echo: str) -> None:
    with Duo.start(stm32=echo, peer=None) as duo:
        u3 = duo.stm32.uart("usart3")
        assert u3.wait_for(b"ECHO READY\r\n", timeout_ms=20) == b"ECHO READY\r\n"
        t_banner = duo.now_ms
        assert 0 < t_banner <= 20
        u3.write(b"hello")
        assert u3.wait_for(b"hello", timeout_ms=5) == b"hello"
        # baud-paced: 5 characters of 10 bits at ~115200 baud take ~0.43 ms to arrive, plus the echo
        assert duo.now_ms - t_banner >= 0.4
        u3.write("id=42;")
        assert u3.wait_for(re.compile(rb"id=\d+;"), timeout_ms=5) == b"id=42;"
        assert u3.received() == b"ECHO READY\r\nhelloid=42;"
        # a UART nobody opened before its bytes were sent still has them
        assert duo.stm32.uart("usart1").received() == b"own firmware: hello on usart1\r\n"
        with pytest.raises(AssertionError, match=r"usart3: no b'never'.*received since the last match"):
            u3.wait_for(b"never", timeout_ms=2)
        duo.run(ms=10)
        r = duo.result()
    assert r.outcomes == ["ok"] and r.images == {"stm32": "echo.elf", "peer": "none"}
    # oracles that read g_status say so, they are not quietly "ok"
    assert r.not_applicable["hang"] == "not applicable: g_status missing"
    assert set(r.not_applicable) == {"hang", "desync", "misparse", "stale", "stack_overflow"}
    assert r.crash is None
    with pytest.raises(ConfigError, match="cannot expect stale: stale not applicable: g_status missing"):
        duo.should_match(["hardfault", "stale"])
    duo.should_match("ok")
    assert any(re.search(r"stm32 CPU spinning at PC 0x[0-9a-f]+ main \(echo\.c:\d+\) polling "
                         r"usart3\.ISR \(0x4000481c\)", ln) for ln in r.diagnosis), r.diagnosis


def test_a_fault_is_decoded_in_words(echo: str) -> None:
    with Duo.start(stm32=echo, peer=None) as duo:
        u3 = duo.stm32.uart("usart3")
        u3.wait_for(b"READY", timeout_ms=20)
        u3.write(b"!")
        duo.run(ms=5)
        lines = duo.diagnosis()
        state = duo.session.stm32.cpu_state()
        r = duo.result()
    text = "\n".join(lines)
    assert re.search(r"stm32 BusFault \(taken as HardFault\) at [\d.]+ ms at pc 0x[0-9a-f]+ main "
                     r"\(echo\.c:\d+\)", text), text
    assert ("PRECISERR: precise data bus error at 0x90000000 (QUADSPI memory-mapped window: "
            "not modelled)") in text
    assert "FORCED: a configurable fault escalated to HardFault" in text
    assert "in the HardFault handler (IPSR 3)" in text
    assert diagnose.fatal(state) == "stuck in the HardFault handler"
    assert r.outcomes == ["hardfault"] and r.crash["pc_function"] == "main"
    msg = explain(r, ["ok"])            # what a failed should_match says: in words too
    assert "should hold (ok) but crashed: hardfault" in msg and "  what went wrong:" in msg
    assert "PRECISERR: precise data bus error at 0x90000000" in msg
    assert "not applicable: g_status missing: hang, desync" in msg


def test_wrong_host_baud_garbles_and_is_named(echo: str) -> None:
    with Duo.start(stm32=echo, peer=None) as duo:
        u3 = duo.stm32.uart("usart3")
        u3.wait_for(b"READY", timeout_ms=20)
        u3.write(b"hi", baud=9600)
        duo.run(ms=5)
        assert b"hi" not in u3.received()
        lines = duo.diagnosis()
    assert any(ln.startswith("stm32 usart3: baud mismatch: 2 character(s) from the host at 9600 "
                             "baud reached a receiver set to") for ln in lines), lines


def test_bytes_sent_before_the_firmware_listens_are_dropped_with_the_reason(echo: str) -> None:
    with Duo.start(stm32=echo, peer=None) as duo:
        u3 = duo.stm32.uart("usart3")
        u3.write(b"early")                  # at t=0 the USART is not enabled: no rate to follow
        u3.write(b"ab", baud=115200)        # a set rate: they arrive while it prints its greeting
        duo.run(ms=20)
        lines = duo.diagnosis()
    assert ("stm32 usart3: 5 character(s) from the host dropped: the UART was off (no baud rate "
            "programmed) when the host sent") in lines, lines
    # the first waits in RDR, the second overruns it: the firmware polls only after its greeting
    assert ("stm32 usart3: 1 received character(s) dropped: overrun (the firmware did not read the "
            "data register in time)") in lines, lines


def test_uart_errors_are_one_clear_line(echo: str) -> None:
    with Duo.start(stm32=echo, peer=None) as duo:
        with pytest.raises(ConfigError, match=r"no UART 'usart9' \(expected one of usart1, usart2, usart3, "
                                              r"uart4, uart5, usart6, uart7, uart8, lpuart1\)"):
            duo.stm32.uart("usart9")
        with pytest.raises(ConfigError, match=r"no peer \(started with peer=None\)"):
            duo.peer.uart("uart0")
        with pytest.raises(ConfigError, match="baud"):
            duo.stm32.uart("usart3").write(b"x", baud=0)
    with pytest.raises(ConfigError, match=r"config overrides freshness_ms given, but the image has no "
                                          r"config block g_config"):
        Duo.start(stm32=echo, peer=None, config={"stm32": {"freshness_ms": 5}})
    with pytest.raises(ConfigError, match=r"stm32_platform: platform file nope\.repl not found"):
        Duo.start(stm32=echo, peer=None, stm32_platform="nope.repl")


def test_link_uart_is_readable_not_writable() -> None:
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    with Duo.start("fixed", "pooled-packed") as duo:
        duo.run(ms=30)
        link = duo.stm32.uart("usart3")
        sent = link.received()
        assert sent and sent[0] == 0xFE                # the STM32's frames, SOF first
        with pytest.raises(ConfigError, match="is the link to the other MCU"):
            link.write(b"x")


def test_scenario_with_peer_none(echo: str, tmp_path: Path) -> None:
    sc = scmod.load(SCENARIO)
    assert sc.peer_none and sc.peer_image("fixed") is None
    r = runner.run(sc, "fixed", json_path=tmp_path / "r.json")
    assert r.outcomes == ["ok"] and r.matches is True and r.images["peer"] == "none"
    assert r.console["stm32"][0].endswith("own firmware: hello on usart1")
    assert r.not_applicable["stale"] == "not applicable: g_status missing"
    # the same run twice: the same fingerprint
    assert runner.run(sc, "fixed").fingerprint == r.fingerprint
    # an image path next to the scenario file
    local = tmp_path / "own.yaml"
    (tmp_path / "app.elf").write_bytes((ROOT / ECHO).read_bytes())
    local.write_text(SCENARIO.read_text().replace("../../../" + ECHO, "app.elf"))
    assert scmod.load(local).stm32_image("fixed") == tmp_path / "app.elf"


@pytest.mark.parametrize("peer, msg", [("nobody", "peer: 'nobody' (expected a mapping (image, config) "
                                                    "or none (the STM32 alone))"),
                                       ("[1]", "peer: wrong type list")])
def test_scenario_peer_errors(tmp_path: Path, peer: str, msg: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(SCENARIO.read_text().replace("peer: none", f"peer: {peer}"))
    with pytest.raises(ConfigError) as err:
        scmod.load(p)
    assert msg in str(err.value) and str(p) in str(err.value)


def test_scenario_peer_null_is_none(tmp_path: Path) -> None:
    p = tmp_path / "null.yaml"
    p.write_text(SCENARIO.read_text().replace("peer: none", "peer: null"))
    assert scmod.load(p).peer_none


@pytest.mark.duohil(stm32=ECHO, peer="none")
def test_through_the_pytest_fixture(duo: Duo) -> None:
    require_images("testfw/m7/echo.elf")
    u3 = duo.stm32.uart("usart3")
    u3.wait_for(b"ECHO READY", timeout_ms=20)
    u3.write(b"from pytest\r\n")
    assert u3.wait_for(b"from pytest\r\n", timeout_ms=5)
    assert duo.spec.peer is None and duo.outcomes().ok


def test_a_failing_own_image_test_says_what_went_wrong(echo: str, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=f"""
        import pytest

        @pytest.mark.duohil(stm32={str(ROOT / ECHO)!r}, peer="none")
        def test_survives_a_bang(duo):
            u3 = duo.stm32.uart("usart3")
            u3.wait_for(b"READY", timeout_ms=20)
            u3.write(b"!")
            u3.wait_for(b"!", timeout_ms=5)
    """)
    # in a subprocess: an in-process run drops numpy (imported by the report) from sys.modules
    # afterwards, and numpy cannot be imported twice in one process
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines([
        "*stm32.usart3: no b'!' within 5 ms of virtual time*",
        "*- duohil -*",
        "*outcome hardfault*",
        "what went wrong:",
        "  stm32 BusFault (taken as HardFault) at * ms at pc 0x* main (echo.c:*)",
        "    PRECISERR: precise data bus error at 0x90000000 (QUADSPI memory-mapped window: not modelled)",
        "not applicable: g_status missing: hang, desync, misparse, stale, stack_overflow",
    ])


# -- duohil boot ------------------------------------------------------------------------------------------
def _boot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duohil.cli", "boot", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_boot_prints_uarts_and_end_state(echo: str) -> None:
    r = _boot(echo, "--ms", "20", "--send", r"usart3:hello\r\n@5", "--send", "usart3:x@10")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "usart1 (31 bytes):\n  own firmware: hello on usart1\n" in out
    assert "usart3 (20 bytes):\n  ECHO READY\n  hello\n  x\n" in out
    assert re.search(r"stm32 end state at 20\.000 ms: pc 0x[0-9a-f]+ main \(echo\.c:\d+\), thread mode",
                     out), out
    assert "polling usart3.ISR (0x4000481c)" in out


def test_boot_exits_1_when_the_core_is_stuck_in_a_fault_handler(echo: str) -> None:
    r = _boot(echo, "--ms", "20", "--send", "usart3:ab!@5")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "usart3 (14 bytes):\n  ECHO READY\n  ab\n" in r.stdout
    assert "PRECISERR: precise data bus error at 0x90000000" in r.stdout
    assert r.stdout.rstrip().endswith("the core is stuck in the HardFault handler: exit 1")


def test_boot_runs_a_riscv_image_on_the_peer_platform() -> None:
    require_images("testfw/rv/uart_echo.elf")
    r = _boot("build/testfw/rv/uart_echo.elf", "--ms", "10", "--send", "uart1:riscv@3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "on esp32c3_peer.repl" in r.stdout
    assert "uart0 (23 bytes):\n  BOOT uart_echo\n  READY\n" in r.stdout
    assert "uart1 (5 bytes):\n  riscv\n" in r.stdout
    # main's WFI is cpu_wfi inlined from esp32_firmware/soc.h: the line table names soc.h there
    assert re.search(r"rv32 end state at 10\.000 ms: pc 0x[0-9a-f]+ main \((uart_echo\.c|soc\.h):\d+\)", r.stdout)


def test_boot_names_a_baud_mismatch(echo: str) -> None:
    r = _boot(echo, "--ms", "20", "--send", "usart3:hi@5", "--baud", "usart3:9600")
    assert r.returncode == 0
    assert "stm32 usart3: baud mismatch: 2 character(s) from the host at 9600 baud" in r.stdout


@pytest.mark.parametrize("args, msg", [
    (["nothere.elf"], "nothere.elf: firmware image not found"),
    ([ECHO, "--send", "usart3hi"], "--send: 'usart3hi' (expected UART:TEXT@MS"),
    ([ECHO, "--send", "usart3:hi@soon"], "--send: 'usart3:hi@soon': 'soon' is not a time in ms"),
    ([ECHO, "--send", "usart9:hi@1"],
     "--send: no UART 'usart9' on this platform (expected one of usart1, usart2, usart3, uart4, "
     "uart5, usart6, uart7, uart8, lpuart1)"),
    ([ECHO, "--baud", "usart3:fast"], "--baud: 'usart3:fast' (expected UART:RATE"),
    ([ECHO, "--ms", "0"], "--ms: --ms 0 (expected a virtual time > 0 ms)"),
    ([ECHO, "--platform", "nope.repl"], "--platform: platform file nope.repl not found"),
    (["README.md"], "README.md: not a valid ELF file"),
])
def test_boot_bad_input_is_one_line_exit_2(args: list[str], msg: str) -> None:
    if args[0] == ECHO:
        require_images("testfw/m7/echo.elf")
    r = _boot(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duohil: error: ") and msg in lines[0], r.stderr


def test_send_and_uart_text_parsing() -> None:
    assert cli_boot.parse_send(r"usart3:a\x21\n@2.5") == ("usart3", b"a!\n", 2.5)
    assert cli_boot.parse_send("usart1:mail@host@7") == ("usart1", b"mail@host", 7.0)
    assert cli_boot.parse_send("usart1:now") == ("usart1", b"now", 0.0)
    assert cli_boot.uart_text(b"A\r\nB\x00\n") == ["A", "B\\x00"]


# -- the poll-loop decoder on hand-made Thumb code ---------------------------------------------------------
class _Code(base.MachineHandle):
    """A handle over a few bytes of code at 0x1000 (for the decoder alone)."""

    name = "stm32"

    def __init__(self, code: bytes) -> None:
        self.code = code

    def read_memory(self, address: int, size: int) -> bytes:
        out = bytearray(size)
        for i in range(size):
            j = address + i - 0x1000
            if 0 <= j < len(self.code):
                out[i] = self.code[j]
        return bytes(out)

    def describe_address(self, address: int) -> str | None:
        return {0x4000481C: "usart3.ISR"}.get(address)

    symbol = write_memory = read_block = console = stall = pc = None    # type: ignore[assignment]


def test_poll_loop_decoder() -> None:
    # 0x1000: ldr r3, [r2, #28]; lsls r5, r3, #24; bpl 0x1000   (r2 = USART3)
    code = bytes.fromhex("d369" "1d06" "fcd5")
    regs = [0] * 13
    regs[2] = 0x40004800
    h = _Code(code)
    assert diagnose.poll_loop(h, {"pc": 0x1002, "regs": regs}) == (0x1000, 0x1004, [0x4000481C])
    line = diagnose.spin_line("stm32", h, None, {"pc": 0x1002, "regs": regs}, [0x1000, 0x1004])
    assert line == "stm32 CPU spinning at PC 0x00001002 polling usart3.ISR (0x4000481c)"
    # the pc samples left the loop: not a spin
    assert diagnose.spin_line("stm32", h, None, {"pc": 0x1002, "regs": regs}, [0x2000, 0x1000]) is None
    # ldr.w r2, [r3, #0x81c] with r3 = 0x40004000; then a branch back
    code = bytes.fromhex("d3f81c28" "9106" "fbd5")
    regs[3] = 0x40004000
    assert diagnose.poll_loop(_Code(code), {"pc": 0x1000, "regs": regs}) == (0x1000, 0x1006, [0x4000481C])
    # b . : a loop that reads nothing
    spin = diagnose.poll_loop(_Code(bytes.fromhex("fee7")), {"pc": 0x1000, "regs": regs})
    assert spin == (0x1000, 0x1000, [])
    assert diagnose.region_name(None, 0x90000000) == "QUADSPI memory-mapped window: not modelled"
    assert diagnose.region_name(None, 0x20020000) == "reserved: 0x0 past the end of DTCM RAM (0x20020000)"
    assert diagnose.region_name(None, 0xF0000000) == "reserved: no memory or peripheral there"


# -- the host end of a UART, on a stand-in UART model --------------------------------------------------------
class _Uart:
    """A UART model's face to the host (peripheral.UartEndpoint) with a settable bit time."""

    name = "usart9"

    def __init__(self, sched, bit_ps: int | None) -> None:
        self.sched = sched
        self.bit_ps = bit_ps
        self.tx_sink = None
        self.got: list[tuple[int, int, bool]] = []

    def bit_time_ps(self) -> int | None:
        return self.bit_ps

    def frame_bits(self) -> float:
        return 10.0

    def rx_char(self, byte: int, framing_error: bool = False) -> None:
        self.got.append((self.sched.now, byte, framing_error))


class _Mach:
    name = "stm32"

    def __init__(self, sched) -> None:
        self.scheduler = sched

    def now(self) -> int:
        return self.scheduler.now


def test_host_uart_paces_samples_and_drops() -> None:
    from duohil.engines.builtin.board.host_uart import BuiltinHostUart
    from duohil.engines.builtin.kernel.scheduler import Scheduler
    sched = Scheduler(base.DEFAULT_QUANTUM_PS)
    bit = 8_680_556                                   # 115200 baud
    uart = _Uart(sched, bit)
    seen = []
    uart.tx_sink = lambda *a: seen.append(a[1])       # the console sink that was there first
    port = BuiltinHostUart(_Mach(sched), uart)
    port.write(b"ab")
    port.write(b"c")                                  # queued behind the first two
    sched.run_until(base.PS_PER_MS)
    frame = 10 * bit
    assert uart.got == [(frame, ord("a"), False), (2 * frame, ord("b"), False),
                        (3 * frame, ord("c"), False)]
    # the MCU's transmissions reach the host and still the sink it had
    uart.tx_sink(uart, ord("Z"), sched.now, bit, 10.0)
    assert seen == [ord("Z")] and port.received() == b""          # not out until its stop bit
    sched.run_until(sched.now + frame)
    assert port.received() == b"Z"
    # 9600 baud into a 115200 receiver: garbled, with a framing error, and counted
    port.write(b"U", baud=9600)
    sched.run_until(sched.now + base.PS_PER_MS * 2)
    assert uart.got[-1][2] is True and uart.got[-1][1] != ord("U")
    assert port.problems() == ["baud mismatch: 1 character(s) from the host at 9600 baud reached "
                               "a receiver set to 115200 baud (garbled, framing errors)"]
    # a receiver switched off before they arrive
    port.write(b"xy")
    uart.bit_ps = None
    sched.run_until(sched.now + base.PS_PER_MS)
    assert port.problems()[-1] == ("2 character(s) from the host dropped: the receiver was disabled "
                                   "when they arrived")
    port.write(b"z")                                  # off when sent: no rate to follow
    assert port.problems()[-1] == ("1 character(s) from the host dropped: the UART was off (no baud "
                                   "rate programmed) when the host sent")


def test_two_own_images_on_the_link(echo: str) -> None:
    """Both sides contract-less: the M7 echo's banner goes over the link to the RV32 echo, which
    sends it back, and so on; each side's link UART reads what that side sent."""
    require_images("testfw/rv/uart_echo.elf")
    with Duo.start(stm32=echo, peer="build/testfw/rv/uart_echo.elf") as duo:
        duo.run(ms=10)
        sent_by_stm32 = duo.stm32.uart("usart3").received()
        sent_by_peer = duo.peer.uart("uart1").received()
        assert sent_by_stm32.startswith(b"ECHO READY\r\nECHO READY\r\n")
        assert sent_by_peer.startswith(b"ECHO READY\r\nECHO READY\r\n")
        assert duo.peer.console == ["BOOT uart_echo", "READY"]
        r = duo.result()
    assert r.outcomes == ["ok"] and r.images == {"stm32": "echo.elf", "peer": "uart_echo.elf"}


def test_link_lines_name_mismatches_and_drops() -> None:
    lb = base.LinkByte
    link = [lb(1, "stm32->peer", 0x12, sent=0x55, fault="baud_mismatch"),
            lb(2, "stm32->peer", 0x13, sent=0x55, fault="baud_mismatch"),
            lb(3, "peer->stm32", None, sent=0x41, fault="receiver_off"),
            lb(4, "peer->stm32", None, sent=0x42, fault="drop"),
            lb(5, "peer->stm32", 0x43)]
    assert diagnose.link_lines(link, ("usart3", "uart1")) == [
        "link stm32->peer (usart3 -> uart1): 2 character(s) garbled by a baud mismatch (sender and "
        "receiver more than 3 % apart)",
        "link peer->stm32 (uart1 -> usart3): 1 character(s) dropped: the receiver was disabled",
        "link peer->stm32 (uart1 -> usart3): 1 character(s) dropped: injected fault drop",
    ]
