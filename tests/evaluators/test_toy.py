"""Tests for evaluators/toy.py: values, minima, shifts, domains, grids and evaluate_toy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluators.toy import TOY_FUNCTIONS, ToyFunction, evaluate_toy

BASES = ("rosenbrock", "branin", "himmelblau", "ackley")
SHIFT = (0.93, 0.59)


def _inside(fn: ToyFunction, x1: float, x2: float) -> bool:
    (lo1, hi1), (lo2, hi2) = fn.bounds["x1"], fn.bounds["x2"]
    return lo1 <= x1 <= hi1 and lo2 <= x2 <= hi2


def _random_points(fn: ToyFunction, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lows = [fn.bounds["x1"][0], fn.bounds["x2"][0]]
    highs = [fn.bounds["x1"][1], fn.bounds["x2"][1]]
    return rng.uniform(lows, highs, size=(n, 2))


def test_the_ten_functions_of_the_paper() -> None:
    expected = {
        *BASES,
        "quadratic2d",
        "quadratic2d_10",
        *(f"shifted_{name}" for name in BASES),
    }
    assert set(TOY_FUNCTIONS) == expected
    assert all(fn.name == name for name, fn in TOY_FUNCTIONS.items())


@pytest.mark.parametrize(
    ("name", "x1", "x2"),
    [
        ("rosenbrock", (-5.0, 10.0), (-5.0, 10.0)),
        ("branin", (-5.0, 10.0), (0.0, 15.0)),
        ("himmelblau", (-5.0, 5.0), (-5.0, 5.0)),
        ("ackley", (-5.0, 5.0), (-5.0, 5.0)),
        ("quadratic2d", (-5.0, 5.0), (-5.0, 5.0)),
        ("quadratic2d_10", (-5.0, 5.0), (-5.0, 5.0)),
    ],
)
def test_bounds_match_the_reference(name: str, x1: tuple[float, float], x2: tuple[float, float]) -> None:
    assert TOY_FUNCTIONS[name].bounds == {"x1": x1, "x2": x2}


@pytest.mark.parametrize("base", BASES)
def test_shifted_variant_keeps_the_domain_and_minimum(base: str) -> None:
    shifted = TOY_FUNCTIONS[f"shifted_{base}"]
    assert shifted.bounds == TOY_FUNCTIONS[base].bounds
    assert shifted.minimum == TOY_FUNCTIONS[base].minimum


@pytest.mark.parametrize(
    ("name", "x1", "x2", "expected"),
    [
        ("rosenbrock", 0.0, 0.0, 1.0),
        ("rosenbrock", -1.0, 2.0, 104.0),
        ("branin", 0.0, 0.0, 56.0 - 10.0 / (8.0 * math.pi)),
        ("himmelblau", 0.0, 0.0, 170.0),
        ("ackley", 1.0, 1.0, 20.0 * (1.0 - math.exp(-0.2))),
        ("quadratic2d", 0.0, 0.0, 4.15**2 + 3.35**2),
        ("quadratic2d_10", 0.0, 0.0, 4.15**2 + 10.0 * 3.35**2),
    ],
)
def test_known_values(name: str, x1: float, x2: float, expected: float) -> None:
    value = TOY_FUNCTIONS[name](x1, x2)
    assert type(value) is float
    assert value == pytest.approx(expected, rel=1e-12)


def test_quadratic2d_10_is_ten_times_steeper_along_x2() -> None:
    fn = TOY_FUNCTIONS["quadratic2d_10"]
    c1, c2 = fn.argmins[0]
    assert fn(c1 + 1.0, c2) == pytest.approx(1.0)
    assert fn(c1, c2 + 1.0) == pytest.approx(10.0)


@pytest.mark.parametrize("name", sorted(TOY_FUNCTIONS))
def test_argmins_are_inside_and_attain_the_minimum(name: str) -> None:
    fn = TOY_FUNCTIONS[name]
    assert fn.argmins
    for x1, x2 in fn.argmins:
        assert _inside(fn, x1, x2)
        assert fn(x1, x2) == pytest.approx(fn.minimum, abs=1e-6)


def test_known_minimum_values() -> None:
    assert TOY_FUNCTIONS["branin"].minimum == pytest.approx(0.397887, abs=1e-6)
    assert len(TOY_FUNCTIONS["branin"].argmins) == 3
    assert len(TOY_FUNCTIONS["himmelblau"].argmins) == 4
    # Branin's third minimizer, (3 pi + 0.93, 2.475 + 0.59), falls outside x1 <= 10 once shifted.
    assert len(TOY_FUNCTIONS["shifted_branin"].argmins) == 2


@pytest.mark.parametrize("name", sorted(TOY_FUNCTIONS))
def test_values_elsewhere_are_larger(name: str) -> None:
    fn = TOY_FUNCTIONS[name]
    points = _random_points(fn, 2000, seed=1)
    argmins = np.asarray(fn.argmins)
    distance = np.min(np.linalg.norm(points[:, None, :] - argmins[None, :, :], axis=-1), axis=1)
    away = points[distance > 0.05]
    assert len(away) > 1000
    values = np.array([fn(x1, x2) for x1, x2 in away])
    assert np.all(values > fn.minimum + 1e-6)
    _, _, Z = fn.grid(101)
    assert Z.min() >= fn.minimum - 1e-9


@pytest.mark.parametrize("base", BASES)
def test_shifted_equals_base_at_shifted_points(base: str) -> None:
    fn, shifted = TOY_FUNCTIONS[base], TOY_FUNCTIONS[f"shifted_{base}"]
    for x1, x2 in _random_points(fn, 50, seed=2):
        assert shifted(x1 + SHIFT[0], x2 + SHIFT[1]) == pytest.approx(fn(x1, x2), rel=1e-9, abs=1e-9)
    expected = [(a1 + SHIFT[0], a2 + SHIFT[1]) for a1, a2 in fn.argmins]
    expected = [(a1, a2) for a1, a2 in expected if _inside(fn, a1, a2)]
    assert np.allclose(shifted.argmins, expected)
    # The shift really moves the optimum: the base minimizers are no longer minimal.
    assert all(shifted(a1, a2) > shifted.minimum + 1e-3 for a1, a2 in fn.argmins)


@pytest.mark.parametrize("name", sorted(TOY_FUNCTIONS))
def test_grid_spans_the_domain_and_matches_pointwise_values(name: str) -> None:
    fn = TOY_FUNCTIONS[name]
    X1, X2, Z = fn.grid(7)
    assert X1.shape == X2.shape == Z.shape == (7, 7)
    assert (X1.min(), X1.max()) == fn.bounds["x1"]
    assert (X2.min(), X2.max()) == fn.bounds["x2"]
    for i, j in [(0, 0), (3, 5), (6, 6), (6, 1)]:
        assert Z[i, j] == pytest.approx(fn(float(X1[i, j]), float(X2[i, j])), rel=1e-12)
    assert fn.grid()[2].shape == (200, 200)


def test_grid_rejects_a_single_point() -> None:
    with pytest.raises(ValueError, match="n >= 2"):
        TOY_FUNCTIONS["branin"].grid(1)


def test_descriptions_are_one_sentence_and_do_not_reveal_the_shift() -> None:
    for fn in TOY_FUNCTIONS.values():
        assert fn.description.endswith(".")
        assert fn.description.count(". ") == 0
        assert "0.93" not in fn.description and "0.59" not in fn.description
        assert "4.15" not in fn.description


def test_evaluate_toy_returns_value_and_point() -> None:
    result = evaluate_toy("himmelblau", {"x1": 0, "x2": 0.0})
    assert result.state == "complete"
    assert result.value == pytest.approx(170.0)
    assert result.metrics == {"x1": 0.0, "x2": 0.0}
    assert result.error is None


def test_evaluate_toy_at_the_optimum() -> None:
    result = evaluate_toy("shifted_ackley", {"x1": 0.93, "x2": 0.59})
    assert result.value == pytest.approx(0.0, abs=1e-9)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown toy function 'sphere'") as info:
        evaluate_toy("sphere", {"x1": 0.0, "x2": 0.0})
    for name in TOY_FUNCTIONS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"x1": 0.0}, "missing parameter 'x2'"),
        ({"x1": 0.0, "x2": 0.0, "x3": 1.0}, "unexpected parameters"),
        ({"x1": "1.0", "x2": 0.0}, "x1 must be a real number"),
    ],
)
def test_bad_configs_are_rejected_clearly(config: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_toy("branin", config)


@pytest.mark.parametrize("x1", [math.inf, math.nan, 1e200])
def test_non_finite_values_become_failed_results(x1: float) -> None:
    # filterwarnings = error: overflow or invalid-value RuntimeWarnings would fail this test.
    result = evaluate_toy("rosenbrock", {"x1": x1, "x2": 0.0})
    assert result.state == "fail"
    assert result.value is None
    assert result.error is not None and "not finite" in result.error
