"""Scenario validation: every malformed file gives one clear error naming file, field, expectation."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil import faults, scenario
from duohil.errors import ConfigError

BAD = Path(__file__).parent / "data" / "bad_scenarios"

# file -> (field named in the error, words the message must contain)
EXPECTED = {
    "unknown_key.yaml": ("durration_ms", "unknown key"),
    "wrong_type.yaml": ("duration_ms", "wrong type str"),
    "unknown_fault.yaml": ("faults[0].kind", "unknown fault kind 'cosmic_ray'"),
    "fault_missing_param.yaml": ("faults[0].duration_ms", "missing parameter"),
    "fault_bad_field.yaml": ("faults[0].field", "out of range"),
    "bad_distribution.yaml": ("faults[0].duration_ms", "bad uniform distribution"),
    "missing_expect.yaml": ("expect.fixed-no-cmd_timeout", "no expected outcome"),
    "unknown_outcome.yaml": ("expect.buggy", "unknown outcome 'exploded'"),
    "unknown_crash_mode.yaml": ("crash_mode", "unknown crash mode 'CM9'"),
    "not_yaml.yaml": (None, "not valid YAML"),
    "not_mapping.yaml": (None, "must be a mapping"),
    "bad_config_value.yaml": ("stm32.config.freshness_ms", "wrong type float"),
    "unknown_peer_image.yaml": ("peer.image", "unknown peer image 'gc-weird'"),
    "unknown_capability.yaml": ("requires[0]", "unknown capability 'l2cache'"),
    "stall_two_triggers.yaml": ("faults[0]", "exactly one trigger"),
    "fault_after_the_end.yaml": ("faults[0].at_ms", "could never act: at_ms reaches 1200, the run ends at 1000"),
}


def test_every_bad_file_is_covered():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_scenario_gives_one_clear_error(name):
    field, words = EXPECTED[name]
    with pytest.raises(ConfigError) as info:
        scenario.load(BAD / name)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert str(BAD / name) in text, text                       # names the file
    assert words in text, text
    if field is not None:
        assert err.field == field, text                          # names the field
    assert err.exit_code == 2


def test_missing_file():
    with pytest.raises(ConfigError, match="scenario file not found"):
        scenario.load(BAD / "nope.yaml")


def test_yaml_error_has_a_line():
    with pytest.raises(ConfigError) as info:
        scenario.load(BAD / "not_yaml.yaml")
    assert info.value.line is not None


GOOD = {
    "name": "cm1", "crash_mode": "CM1", "duration_ms": 3000, "seed": 7,
    "faults": [{"kind": "peer_stall", "at_ms": 1000, "duration_ms": {"uniform": [2, 50]}},
               {"kind": "link", "action": "flip", "direction": "peer->stm32", "frame": 4,
                "field": "payload[3]", "bit": {"randint": [0, 7]}}],
    "expect": {"buggy": ["runaway", "estop"], "fixed": "ok", "fixed-no-cmd_timeout": "runaway"},
}


def test_good_scenario_and_variants():
    sc = scenario.from_dict(GOOD, Path("cm1.yaml"))
    assert sc.fix == "cmd_timeout"
    assert sc.ab_variants() == ["buggy", "fixed", "fixed-no-cmd_timeout"]
    assert sc.requires == ["link_faults", "peer_stall", "plant"]     # plant: it expects runaway
    assert sc.expect["fixed"] == ["ok"]
    assert sc.stm32_image("fixed-no-cmd_timeout").name == "fixed-no-cmd_timeout.elf"
    assert sc.peer_image("buggy").name == "pooled-packed.elf"


def test_realised_plan_is_a_function_of_the_seed():
    sc = scenario.from_dict(GOOD, Path("cm1.yaml"))
    a = faults.realise(sc.faults, 7)
    b = faults.realise(sc.faults, 7)
    c = faults.realise(sc.faults, 8)
    assert faults.plan_as_json(a) == faults.plan_as_json(b)
    assert faults.plan_as_json(a) != faults.plan_as_json(c)
    d = a[0].params["duration_ms"]
    assert 2 <= d <= 50 and 0 <= a[1].params["bit"] <= 7
    assert not faults.has_distributions(a) and faults.has_distributions(sc.faults)


def test_adding_a_fault_keeps_earlier_draws():
    sc = scenario.from_dict(GOOD, Path("cm1.yaml"))
    first = faults.realise(sc.faults[:1], 3)[0].params
    both = faults.realise(sc.faults, 3)[0].params
    assert first == both


def test_missing_image_names_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setattr(scenario, "BUILD", tmp_path / "build")        # nothing built there
    sc = scenario.from_dict(GOOD, tmp_path / "cm1.yaml")
    with pytest.raises(ConfigError, match="make firmware") as info:
        scenario.check_images(sc, ["fixed"])
    assert info.value.field == "stm32.image" and info.value.file == str(tmp_path / "cm1.yaml")


def test_missing_user_image_is_named_as_the_stm32_one(tmp_path):
    """A user's own STM32 ELF that is missing: the stm32 field (it was reported as peer.image),
    and no advice to build ours."""
    sc = scenario.from_dict(dict(GOOD, stm32={"image": str(tmp_path / "none.elf")}),
                            tmp_path / "cm1.yaml")
    with pytest.raises(ConfigError) as info:
        scenario.check_images(sc, ["fixed"])
    assert info.value.field == "stm32.image", str(info.value)
    assert "none.elf" in str(info.value) and "make firmware" not in str(info.value)


def test_missing_variant_image_names_the_variant_override(tmp_path):
    raw = dict(GOOD, variants={"fixed": {"peer": {"image": "fw/peer.elf"}}})
    sc = scenario.from_dict(raw, tmp_path / "cm1.yaml")
    with pytest.raises(ConfigError) as info:
        scenario.check_images(sc, ["fixed"])
    assert info.value.field == "variants.fixed.peer.image", str(info.value)


def test_relative_image_paths_are_relative_to_the_scenario_file(tmp_path, monkeypatch):
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "mine.elf").write_bytes(b"\x7fELF")
    sc = scenario.from_dict(dict(GOOD, stm32={"image": "fw/mine.elf"}), tmp_path / "cm1.yaml")
    monkeypatch.chdir(scenario.REPO)                       # the working directory does not matter
    assert sc.stm32_image("fixed") == tmp_path / "fw" / "mine.elf"
    assert sc.stm32_image("fixed").is_file()
    sub = tmp_path / "sub"
    sub.mkdir()
    sc2 = scenario.from_dict(dict(GOOD, stm32={"image": "../fw/mine.elf"}), sub / "cm1.yaml")
    assert sc2.stm32_image("fixed").resolve() == (tmp_path / "fw" / "mine.elf").resolve()


def test_plant_is_required_by_plant_parameters_or_a_runaway_expectation():
    base = {"name": "x", "crash_mode": "CM2", "duration_ms": 100, "expect": {
        "buggy": "desync", "fixed": "ok", "fixed-no-resync": "desync"}}
    assert "plant" not in scenario.from_dict(base, Path("x.yaml")).requires
    assert "plant" in scenario.from_dict(base | {"plant": {"limit_max": 9000}}, Path("x.yaml")).requires
    none_runaway = base | {"expect": {"buggy": "desync", "fixed": {"any": ["ok"], "none": ["runaway"]},
                                      "fixed-no-resync": "desync"}}
    assert "plant" in scenario.from_dict(none_runaway, Path("x.yaml")).requires
    assert "plant" in scenario.load(scenario.REPO / "scenarios" / "cm1_cmd_timeout.yaml").requires
