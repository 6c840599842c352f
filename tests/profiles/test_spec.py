"""Constraints: plain language, structured specs, and quota sampling of a population."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from grouped_sim.errors import InputError
from grouped_sim.profiles.presets import load_presets
from grouped_sim.profiles.spec import PopulationSpec, load_spec_file, parse_constraints_text


def test_plain_language_constraints_become_a_spec() -> None:
    spec = parse_constraints_text("price-sensitive restaurant owner, 50s, already on a competitor's platform")
    assert spec.archetypes == {"price-sensitive": 1.0}
    assert spec.domains == {"food-delivery": 1.0}
    assert (spec.age_min, spec.age_max) == (50, 59)
    assert spec.role == "restaurant owner"
    assert spec.must_have == ["already on a competitor's platform"]


def test_percentages_leave_the_rest_to_the_other_archetypes() -> None:
    spec = parse_constraints_text("40% price-sensitive, ages 25-65 uniform, tiers weighted")
    shares = spec.target_shares()
    assert shares["archetype"]["price-sensitive"] == pytest.approx(0.4)
    assert shares["archetype"]["status-quo"] == pytest.approx(0.15)
    assert shares["tier"] == pytest.approx(load_presets().defaults.tier_weights)
    assert spec.age_range() == (25, 65)


def test_quota_sampling_meets_the_mix_exactly_where_integers_allow() -> None:
    spec = PopulationSpec(archetypes={"price-sensitive": 0.4}, tiers={"easy": 0.5, "adversarial": 0.5}, age_min=25, age_max=65)
    drawn = spec.sample(10, seed=3)
    assert Counter(c.archetype for c in drawn)["price-sensitive"] == 4
    assert Counter(c.tier for c in drawn) == {"easy": 5, "adversarial": 5}
    assert all(25 <= (c.age or 0) <= 65 for c in drawn)
    assert [c.model_dump() for c in spec.sample(10, seed=3)] == [c.model_dump() for c in drawn]


def test_tiers_carry_the_buy_propensity_of_the_benchmark() -> None:
    presets = load_presets()
    assert [(t.id, t.buy_propensity) for t in presets.tiers.values()] == [("easy", 0.8), ("medium", 0.5), ("hard", 0.2), ("very-hard", 0.1), ("adversarial", 0.05)]
    assert len(presets.archetypes) == 5


def test_spec_file_errors_name_the_field(tmp_path: Path) -> None:
    good = tmp_path / "spec.yaml"
    good.write_text("archetypes: {Price Sensitive: 0.5, status quo: 0.5}\nage: {min: 30, max: 40}\ndomains: {restaurant: 1}\n")
    spec = load_spec_file(good)
    assert spec.archetypes == {"price-sensitive": 0.5, "status-quo": 0.5} and spec.domains == {"food-delivery": 1}
    assert spec.age_range() == (30, 40)
    bad = tmp_path / "bad.yaml"
    bad.write_text("archetypes: {price-sensitive: 1}\nage_max: old\n")
    with pytest.raises(InputError, match="field 'age_max'"):
        load_spec_file(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("archetypes: {impulsive: 1}\n")
    with pytest.raises(InputError, match="archetype 'impulsive': unknown"):
        load_spec_file(unknown)
