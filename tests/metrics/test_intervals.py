"""Bootstrap intervals and the human-vs-human noise floor, on cases whose answers are known."""

from __future__ import annotations

import statistics

from grouped_sim.metrics.intervals import bootstrap_ci, compare_distance, compare_stat, noise_floor


def rate(units):
    return sum(units) / len(units) if units else None


def test_a_real_difference_is_beyond_noise_and_no_difference_is_not() -> None:
    real = [1, 0] * 15  # half of the real customers walk away
    never = [0] * 30  # the simulator never walks away
    figure = compare_stat(never, real, rate)
    assert figure.sim == 0.0 and figure.real == 0.5 and figure.gap == -0.5
    assert figure.ci[1] < 0 and figure.beyond_noise is True
    same = compare_stat([0, 1] * 15, real, rate)
    assert same.gap == 0.0 and same.ci[0] <= 0 <= same.ci[1] and same.beyond_noise is False
    assert same.n_sim == same.n_real == 30


def test_the_interval_is_seeded_and_covers_the_estimate() -> None:
    units = [3, 5, 8, 1, 9, 4, 7, 2, 6, 5]
    ci = bootstrap_ci(units, statistics.mean)
    assert ci == bootstrap_ci(units, statistics.mean)
    assert ci[0] < statistics.mean(units) < ci[1]
    assert bootstrap_ci([], statistics.mean) is None


def test_the_noise_floor_is_the_gap_between_halves_of_the_real_calls() -> None:
    assert noise_floor([1] * 20, lambda a, b: rate(a) - rate(b)) == 0.0  # identical people: no noise
    varied = noise_floor([1, 0] * 20, lambda a, b: rate(a) - rate(b))
    assert 0.05 < varied < 0.3  # halves of 20 differ by about 2*sqrt(.25/20)*0.8
    assert noise_floor([1, 0, 1], lambda a, b: 0.0) is None  # too few calls to halve


def test_a_distance_figure_is_zero_for_real_and_compares_its_lower_bound_to_the_floor() -> None:
    def gap_of_means(a, b):
        return abs(statistics.mean(a) - statistics.mean(b))

    far = compare_distance([10] * 20, [1, 2, 3] * 7, gap_of_means)
    assert far.real == 0.0 and far.sim == far.gap == 8.0 and far.beyond_noise is True
    near = compare_distance([1, 2, 3] * 7, [1, 2, 3] * 7, gap_of_means)
    assert near.sim == 0.0 and near.beyond_noise is False


def test_without_a_noise_floor_nothing_is_called_beyond_noise() -> None:
    figure = compare_stat([0] * 3, [1] * 3, rate)  # 3 real calls: too few to halve
    assert figure.gap == -1.0 and figure.ci == [-1.0, -1.0] and figure.noise_floor is None
    assert figure.beyond_noise is None  # not True: nothing says how large the noise is
