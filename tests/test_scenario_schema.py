"""Scenario validation: every malformed file gives one clear error naming file, field, expectation."""
from __future__ import annotations

from pathlib import Path

import pytest

from duohil import faults, scenario
from duohil.errors import ConfigError

BAD = Path(__file__).parent / "data" / "bad_scenarios"

# file -> (field named in the error, words the message must contain)
EXPECTED = {
    "alias_to_itself.yaml": ('plant.a', 'an alias refers to the collection that contains it'),
    "bad_config_value.yaml": ('stm32.config.freshness_ms', 'wrong type float'),
    "bad_distribution.yaml": ('faults[0].duration_ms', 'bad uniform distribution [50, 2]'),
    "billion_laughs_in_distribution.yaml": ('faults[0].duration_ms.uniform[4]', 'expands to more than'),
    "billion_laughs_in_expect_label.yaml": ('expect.buggy[5]', 'expands to more than 20000 values (aliases)'),
    "config_value_too_wide.yaml": ('stm32.config.freshness_ms', 'value 1180591620717411303424 out of range'),
    "control_character.yaml": (None, 'not valid YAML: character 0x0007 is not allowed'),
    "crash_mode_list.yaml": ('crash_mode', 'wrong type list'),
    "duplicate_expect_variant.yaml": ('expect.fixed', "duplicate key 'fixed'"),
    "duplicate_fault_parameter.yaml": ('faults[0].at_ms', "duplicate key 'at_ms'"),
    "duplicate_top_level_key.yaml": ('duration_ms', "duplicate key 'duration_ms'"),
    "duration_1e12_ms.yaml": ('duration_ms', 'value 1000000000000 out of range'),
    "duration_huge_integer.yaml": ('duration_ms', 'value 999999999999999999...9999999999999999999 out of'),
    "duration_negative.yaml": ('duration_ms', 'value -5 out of range'),
    "empty_file.yaml": (None, 'a scenario must be a mapping at the top level'),
    "expect_label_mapping.yaml": ('expect.fixed.any', 'expected outcome must be a label or a non-empty'),
    "fault_after_the_end.yaml": ("faults[0].at_ms",
                                 "could never act: at_ms reaches 1200, the run ends at 1000"),
    "fault_bad_field.yaml": ('faults[0].field', "value 'LENGTH' out of range"),
    "fault_choice_wrong_type.yaml": ('faults[0].bit', 'wrong type str'),
    "fault_delay_too_long.yaml": ('faults[0].delay_us', 'value 1000000000000.0 out of range'),
    "fault_frame_too_large.yaml": ('faults[0].frame', 'value 1000000000 out of range'),
    "fault_irq_chain_forward.yaml": ('faults[0].after', 'the chain refers to fault 1, which is not an'),
    "fault_irq_offset_too_large.yaml": ('faults[0].offset', 'value 100000000 out of range'),
    "fault_missing_param.yaml": ('faults[0].duration_ms', "missing parameter 'duration_ms' for fault kind"),
    "fault_not_mapping.yaml": ('faults[0]', 'a fault must be a mapping'),
    "fault_payload_252.yaml": ('faults[0].field', "'payload[252]' can never exist: a frame carries at most"),
    "fault_payload_999.yaml": ('faults[0].field', "'payload[999]' can never exist: a frame carries at most"),
    "fault_payload_in_choice.yaml": ('faults[0].field', "'payload[400]' can never exist: a frame carries"),
    "fault_range_below_zero.yaml": ('faults[0].at_ms', 'value -20 out of range'),
    "fault_stall_too_long.yaml": ('faults[0].duration_ms', 'value 1000000000.0 out of range'),
    "inf_dma_latency.yaml": ('faults[0].latency_us', 'inf is not a finite number'),
    "inf_duration.yaml": ('duration_ms', 'inf is not a finite number'),
    "inf_duration_by_exponent.yaml": ('duration_ms', 'inf is not a finite number'),
    "inf_fault_duration.yaml": ('faults[0].duration_ms', 'inf is not a finite number'),
    "integer_too_many_digits.yaml": (None, 'a value YAML cannot represent: Exceeds the limit (4300'),
    "kind_list.yaml": ('faults[0].kind', 'wrong type list'),
    "kind_mapping.yaml": ('faults[0].kind', 'wrong type dict'),
    "missing_expect.yaml": ('expect.fixed-no-cmd_timeout', 'no expected outcome for variant'),
    "name_absolute_path.yaml": ('name', "name '/tmp/evil' cannot be used in file names"),
    "name_empty.yaml": ('name', "name '' cannot be used in file names"),
    "name_with_dotdot.yaml": ('name', "name '../../outside' cannot be used in file names"),
    "name_with_slash.yaml": ('name', "name 'reports/evil' cannot be used in file names"),
    "nan_duration.yaml": ('duration_ms', 'nan is not a finite number'),
    "nan_fault_time.yaml": ('faults[0].at_ms', 'nan is not a finite number'),
    "nan_in_distribution.yaml": ('faults[0].duration_ms.uniform[0]', 'nan is not a finite number'),
    "nan_plant_parameter.yaml": ('plant.limit_max', 'nan is not a finite number'),
    "nan_quantum.yaml": ('quantum_us', 'nan is not a finite number'),
    "nesting_too_deep.yaml": (None, 'nested more than 32 levels deep'),
    "nesting_too_deep_through_aliases.yaml": ('plant.a30[0]', 'nested more than 32 levels deep once'),
    "non_utf8_byte.yaml": (None, 'not UTF-8 text: byte 0xe9 at offset 20'),
    "not_mapping.yaml": (None, 'a scenario must be a mapping at the top level'),
    "not_yaml.yaml": (None, "not valid YAML: while parsing a flow sequence, expected ','"),
    "oracle_frames_lost_negative.yaml": ('oracle.max_frames_lost', 'value -3 out of range'),
    "oracle_threshold_nan.yaml": ('oracle.hang_ms', 'nan is not a finite number'),
    "oracle_threshold_negative.yaml": ('oracle.recovery_ms', 'value -1 out of range'),
    "oracle_threshold_too_long.yaml": ('oracle.desync_ms', 'value 1000000000.0 out of range'),
    "oracle_threshold_zero_hang.yaml": ('oracle.hang_ms', 'value 0 out of range'),
    "python_object_tag.yaml": (None, 'not valid YAML: could not determine a constructor for the'),
    "quantum_below_1ps.yaml": ('quantum_us', 'a quantum of 1e-07 us is below 1 ps'),
    "quantum_too_long.yaml": ('quantum_us', 'value 50000 out of range'),
    "quantum_zero.yaml": ('quantum_us', 'value 0 out of range'),
    "requires_list_in_list.yaml": ('requires[0]', 'wrong type list'),
    "requires_mapping.yaml": ('requires', 'wrong type dict'),
    "seed_too_large.yaml": ('seed', 'value 18446744073709551616 out of range'),
    "stall_two_triggers.yaml": ('faults[0]', 'a peer_stall needs exactly one trigger'),
    "stm32_image_path_traversal.yaml": ('stm32.image', "unknown stm32 image '../../../etc/passwd'"),
    "too_many_faults.yaml": ('faults', '300 faults'),
    "two_documents.yaml": (None, 'not valid YAML: expected a single document in the stream,'),
    "unknown_capability.yaml": ('requires[0]', "unknown capability 'l2cache'"),
    "unknown_crash_mode.yaml": ('crash_mode', "unknown crash mode 'CM9'"),
    "unknown_fault.yaml": ('faults[0].kind', "unknown fault kind 'cosmic_ray'"),
    "unknown_key.yaml": ('durration_ms', "unknown key 'durration_ms'"),
    "unknown_outcome.yaml": ('expect.buggy', "unknown outcome 'exploded'"),
    "unknown_peer_image.yaml": ('peer.image', "unknown peer image 'gc-weird'"),
    "utf16_encoded.yaml": (None, 'not UTF-8 text: byte 0xff at offset 0'),
    "variant_peer_image_unknown.yaml": ('variants.fixed.peer.image', "unknown peer image 'go-natural'"),
    "wrong_type.yaml": ('duration_ms', 'wrong type str'),
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


def test_a_scenarios_variant_defaults_and_is_checked_in_one_place():
    """cli run, the pytest plugin and the Robot library all resolve a variant
    through Scenario.variant: the default, and one error naming the scenario file."""
    scenarios = Path(__file__).parent.parent / "scenarios"
    cm2 = scenario.load(scenarios / "cm2_resync.yaml")
    nominal = scenario.load(scenarios / "nominal.yaml")
    assert cm2.variant(None) == "buggy" and nominal.variant(None) == "fixed"
    assert cm2.variant("fixed-no-resync") == "fixed-no-resync"
    with pytest.raises(ConfigError) as err:
        cm2.variant("fixed-no-dcache", "--variant")
    msg = str(err.value)
    assert "cm2_resync.yaml" in msg and "--variant" in msg and "fixed-no-resync" in msg
