"""Every draw documented as seeded follows the run's seed: the fault plan's distributions, the link
noise, the D-cache residency of each line. Same seed, same draws; another seed, other draws (a
campaign of N trials is N runs, not N copies of one)."""
from __future__ import annotations

from pathlib import Path

from fw_helpers import require_images

from duohil import faults as faultmod
from duohil import scenario as scmod
from duohil.duo import Duo
from duohil.engines.builtin.cpus.m7.dcache import LINE, dcache_seed

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


def test_fault_parameters_follow_the_seed() -> None:
    plan = [faultmod.validate_fault({"kind": "peer_stall", "at_ms": {"uniform": [250, 750]},
                                     "duration_ms": {"uniform": [2, 50]}}, "faults[0]", None),
            faultmod.validate_fault({"kind": "link", "action": "flip", "direction": "peer->stm32",
                                     "frame": {"randint": [0, 1000]}, "field": "LEN",
                                     "bit": {"randint": [0, 7]}}, "faults[1]", None)]
    draws = {s: [f.to_dict() for f in faultmod.realise(plan, s)] for s in (1, 2, 3)}
    assert draws[1] == [f.to_dict() for f in faultmod.realise(plan, 1)]
    assert len({repr(d) for d in draws.values()}) == 3, draws


def test_dcache_seed_is_its_own_stream() -> None:
    seeds = [dcache_seed(s) for s in range(50)]
    assert len(set(seeds)) == 50 and dcache_seed(7) == dcache_seed(7)
    assert all(d != s for s, d in enumerate(seeds))       # not the run's seed itself


def _run(path: Path, variant: str, seed: int, ms: float, faults: list | None = None) -> Duo:
    sc = scmod.load(path)
    sc.duration_ms = ms
    if faults is not None:
        sc.faults = [faultmod.validate_fault(f, f"faults[{i}]", None) for i, f in enumerate(faults)]
    duo = Duo.from_scenario(sc, variant, seed=seed)
    duo.run_to_end()
    return duo


def test_dcache_residency_follows_the_seed() -> None:
    require_images("stm32/buggy.elf", "esp32/pooled-packed.elf")
    runs = {}
    for seed in (1, 2, 1):
        with _run(SCEN / "cm3_dcache.yaml", "buggy", seed, 150) as duo:
            cache = duo.session.machine("stm32").cache
            assert cache.seed == dcache_seed(seed)
            lines = [0x2400_0000 + k * LINE for k in range(64)]
            draws = [cache.residency_of(la) for la in lines]
            fp = duo.session.fingerprint()
        if seed in runs:
            assert runs[seed] == (draws, fp), "same seed, different D-cache draws or run"
        runs[seed] = (draws, fp)
    assert runs[1][0] != runs[2][0], "the residency draws did not change with the seed"
    assert runs[1][1] != runs[2][1], "two seeds of a D-cache run hashed the same"


def test_link_noise_follows_the_seed() -> None:
    require_images("stm32/fixed.elf", "esp32/pooled-packed.elf")
    noise = [{"kind": "noise", "direction": "peer->stm32", "ber": 0.002, "at_ms": 20,
              "duration_ms": 60}]
    hits = {}
    for seed in (1, 2, 1):
        with _run(SCEN / "nominal.yaml", "fixed", seed, 90, noise) as duo:
            got = [(b.t_ps, b.sent, b.value) for b in duo.session.link_bytes() if b.fault]
        assert got, "the noise burst flipped nothing: raise the bit-error rate"
        if seed in hits:
            assert hits[seed] == got
        hits[seed] = got
    assert hits[1] != hits[2], "the noise burst flipped the same bits for two seeds"


def test_cm2_buggy_runs_differ_by_seed() -> None:
    """The issue's case: CM2 buggy seeds 4242 and 4243 were one run (the D-cache ignored them)."""
    require_images("stm32/buggy.elf", "esp32/pooled-packed.elf")
    fps = []
    for seed in (4242, 4243):
        with _run(SCEN / "cm2_resync.yaml", "buggy", seed, 120) as duo:
            fps.append(duo.session.fingerprint())
    assert fps[0] != fps[1]
