"""A user's own peripheral in Python (docs/own-peripheral.md), called by the C bus.

tests/data/own_peripheral/my_models.py defines ``Doubler`` outside duohil: a RegisterBank, a repl
property, an IRQ output and a scheduled event. The peer's platform gets it from a repl line
(``User.my_models.Doubler``, found next to the .repl file, or the Renode-style name the class
registers), its IRQ wired to the PLIC. Hand-assembled guest code writes IN, sets CTRL.GO|IE, polls
STATUS, reads OUT, claims the PLIC, clears DONE and completes: the values, the IRQ edges and their
times and the event log are checked; the C bus calls the model's Python methods.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil.engines.builtin.loaders.platform import ModelRegistry, build_machine, register_model, REGISTRY
from duohil.engines.builtin.kernel.peripheral import Peripheral
from duohil.engines.builtin.kernel.scheduler import Scheduler
from duohil.errors import ConfigError
from rv_asm import andi, beq, code, jal, li, load, store

DATA = Path(__file__).parent / "data" / "own_peripheral"
IROM, DRAM, DOUBLER, PLIC = 0x4200_0000, 0x3FC8_0000, 0x6002_0000, 0x0C00_0000


def guest() -> bytes:
    w = li(8, DRAM) + li(6, DOUBLER) + li(7, 21) + [store(4, 7, 6)]               # IN = 21
    w += li(28, PLIC + 0x2000) + li(7, 1 << 5) + [store(4, 7, 28)]               # PLIC: enable source 5
    w += li(7, 3) + [store(4, 7, 6, 8)]                                          # CTRL = GO | IE
    w += [load(4, 29, 6, 12), andi(29, 29, 1), beq(29, 0, -8)]                   # until STATUS.DONE
    w += [load(4, 30, 6, 4), store(4, 30, 8)]                                    # OUT -> RAM[0]
    w += li(28, PLIC + 0x20_0004) + [load(4, 31, 28), store(4, 31, 8, 4)]        # claim -> RAM[1]
    w += [store(4, 29, 6, 12)]                                                   # STATUS.DONE = 1: clear
    w += [store(4, 31, 28), jal(0, 0)]                                           # complete; j .
    return code(w)


class Edges:
    def __init__(self, sched: Scheduler) -> None:
        self.sched, self.edges = sched, []

    def set_input(self, line: int, level: bool) -> None:
        self.edges.append((self.sched.now, level))


def run(repl: Path, registry: ModelRegistry | None = None) -> dict:
    sched = Scheduler(1_000_000)
    m = build_machine(repl, sched, "peer", registry=registry)
    dev = m.peripherals["doubler"]
    assert type(dev).__name__ == "Doubler" and dev.latency_ps == 3_000_000       # the repl property
    assert m._bus.target(DOUBLER) == (dev, False)                # the C bus calls its Python methods
    assert m._bus.target(PLIC) == (m.peripherals["plic"], True)
    edges = Edges(sched)
    dev.output("IRQ").connect(edges, 0)
    m.write_memory(IROM, guest())
    m.cpu.reset_pc = IROM
    m.cpu.reset()
    sched.run_until(20_000_000)
    plic = m.peripherals["plic"]
    return {"out": int.from_bytes(m.read_memory(DRAM, 4), "little"),
            "claimed": int.from_bytes(m.read_memory(DRAM + 4, 4), "little"),
            "edges": edges.edges, "log": list(sched.log), "mmio_reads": m.mmio_reads,
            "plic": (plic.pending, plic.in_flight), "meip": bool(m.cpu.mip & (1 << 11))}


@pytest.mark.parametrize("repl", ["peer_with_doubler.repl", "peer_with_registered.repl"])
def test_a_users_python_peripheral_runs(repl) -> None:
    registry = None
    if repl == "peer_with_registered.repl":
        registry = ModelRegistry()
        registry.register(REGISTRY.user_class("User.my_models.Doubler", str(DATA / repl)))
    r = run(DATA / repl, registry)
    assert r["out"] == 42 and r["claimed"] == 5
    assert [e for e in r["log"] if e[1] == "doubler_done"][0][2]["out"] == 42
    assert [lvl for _, lvl in r["edges"]] == [True, False]           # raised when done, cleared by the guest
    raised = r["edges"][0][0]
    assert 3_000_000 <= raised < 4_000_000                          # 3 us after the GO store
    assert r["plic"] == (0, 0) and not r["meip"]


def test_bad_user_model_names_are_clear_errors(tmp_path) -> None:
    base = (DATA / "peer_with_doubler.repl").read_text()
    cases = {"User.my_models.Nope": "has no 'Nope'",
             "User.no_such_module.X": "cannot import 'no_such_module'",
             "User.Doubler": "User.<module>.<Class>", "User.my_models.Field": "not a Peripheral subclass"}
    for typ, why in cases.items():
        repl = tmp_path / "bad.repl"
        (tmp_path / "my_models.py").write_text((DATA / "my_models.py").read_text())
        repl.write_text(base.replace("User.my_models.Doubler", typ)
                        .replace("../../../platforms", str(Path(__file__).parent.parent / "platforms")))
        with pytest.raises(ConfigError, match=why) as exc:
            build_machine(repl, Scheduler(1_000_000), "peer")
        assert f"{repl}:5" in str(exc.value)                    # the file and the line of the type


def test_registering_a_model_checks_the_class() -> None:
    reg = ModelRegistry()
    with pytest.raises(ConfigError, match="not a model"):
        reg.register(int)

    class NoTypes(Peripheral):
        pass
    with pytest.raises(ConfigError, match="renode_types"):
        reg.register(NoTypes)

    class Clash(Peripheral):
        renode_types = ("UART.ESP32_UART",)
    with pytest.raises(ConfigError,
                       match="already claimed by duohil.engines.builtin.soc.esp32c3.esp32c3_uart"):
        reg.register(Clash)

    @register_model
    class Mine(Peripheral):
        renode_types = ("Miscellaneous.TestOwnPeripheralMine",)
    assert REGISTRY.resolve("Miscellaneous.TestOwnPeripheralMine", 0x6000_0000, {}) is Mine
