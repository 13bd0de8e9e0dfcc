"""The paper's 2D toy objectives (x1, x2) and their shifted variants.

Definitions, domains and the shift (0.93, 0.59) follow the reference code of Zhang et al. (arXiv 2312.04528),
``utils/toy_utils.py`` in github.com/michaelrzhang/LLM-HyperOpt.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from evaluators.base import EvalResult

__all__ = ["TOY_FUNCTIONS", "ToyFunction", "evaluate_toy"]

FloatArray = npt.NDArray[np.float64]
Formula = Callable[[FloatArray, FloatArray], FloatArray]

SHIFT: tuple[float, float] = (0.93, 0.59)
QUADRATIC_CENTER: tuple[float, float] = (-4.15, 3.35)


@dataclass(frozen=True)
class ToyFunction:
    """A 2D objective with its domain and known global minimizers; call it as ``f(x1, x2)``."""

    name: str
    bounds: dict[str, tuple[float, float]]
    minimum: float
    argmins: tuple[tuple[float, float], ...]
    description: str
    _fn: Formula = field(repr=False, compare=False)

    def __call__(self, x1: float, x2: float) -> float:
        with np.errstate(all="ignore"):
            return float(self._fn(np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)))

    def grid(self, n: int = 200) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``X1, X2, Z`` of shape ``(n, n)`` spanning the domain, for contour plots."""
        if n < 2:
            raise ValueError(f"grid needs n >= 2 points per axis, got {n}")
        x1 = np.linspace(*self.bounds["x1"], n)
        x2 = np.linspace(*self.bounds["x2"], n)
        X1, X2 = np.meshgrid(x1, x2)
        with np.errstate(all="ignore"):
            Z = np.asarray(self._fn(X1, X2), dtype=np.float64)
        return X1, X2, Z


def _rosenbrock(x1: FloatArray, x2: FloatArray) -> FloatArray:
    return (1.0 - x1) ** 2 + 100.0 * (x2 - x1**2) ** 2


def _branin(x1: FloatArray, x2: FloatArray) -> FloatArray:
    b = 5.1 / (4.0 * math.pi**2)
    c = 5.0 / math.pi
    t = 1.0 / (8.0 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * np.cos(x1) + 10.0


def _himmelblau(x1: FloatArray, x2: FloatArray) -> FloatArray:
    return (x1**2 + x2 - 11.0) ** 2 + (x1 + x2**2 - 7.0) ** 2


def _ackley(x1: FloatArray, x2: FloatArray) -> FloatArray:
    return (
        -20.0 * np.exp(-0.2 * np.sqrt(0.5 * (x1**2 + x2**2)))
        - np.exp(0.5 * (np.cos(2.0 * math.pi * x1) + np.cos(2.0 * math.pi * x2)))
        + math.e
        + 20.0
    )


def _quadratic(scale_x2: float) -> Formula:
    c1, c2 = QUADRATIC_CENTER

    def quadratic(x1: FloatArray, x2: FloatArray) -> FloatArray:
        return (x1 - c1) ** 2 + scale_x2 * (x2 - c2) ** 2

    return quadratic


def _shifted(base: ToyFunction, title: str) -> ToyFunction:
    s1, s2 = SHIFT
    (lo1, hi1), (lo2, hi2) = base.bounds["x1"], base.bounds["x2"]
    moved = ((a1 + s1, a2 + s2) for a1, a2 in base.argmins)
    base_fn = base._fn

    def shifted(x1: FloatArray, x2: FloatArray) -> FloatArray:
        return base_fn(x1 - s1, x2 - s2)

    return ToyFunction(
        name=f"shifted_{base.name}",
        bounds=dict(base.bounds),
        minimum=base.minimum,
        # A minimizer pushed out of the domain is no longer attainable (Branin's third one).
        argmins=tuple((a1, a2) for a1, a2 in moved if lo1 <= a1 <= hi1 and lo2 <= a2 <= hi2),
        description=f"A translated copy of the {title} function of x1 and x2, so its textbook minimizers "
        "no longer apply.",
        _fn=shifted,
    )


def _build() -> dict[str, ToyFunction]:
    pi = math.pi
    square5 = {"x1": (-5.0, 5.0), "x2": (-5.0, 5.0)}
    base = [
        ToyFunction(
            name="rosenbrock",
            bounds={"x1": (-5.0, 10.0), "x2": (-5.0, 10.0)},
            minimum=0.0,
            argmins=((1.0, 1.0),),
            description="The Rosenbrock function of x1 and x2: a narrow, curved valley with a nearly flat floor.",
            _fn=_rosenbrock,
        ),
        ToyFunction(
            name="branin",
            bounds={"x1": (-5.0, 10.0), "x2": (0.0, 15.0)},
            minimum=5.0 / (4.0 * pi),
            argmins=((-pi, 12.275), (pi, 2.275), (3.0 * pi, 2.475)),
            description="The Branin function of x1 and x2: a smooth surface with three global minima.",
            _fn=_branin,
        ),
        ToyFunction(
            name="himmelblau",
            bounds=dict(square5),
            minimum=0.0,
            argmins=(
                (3.0, 2.0),
                (-2.805118086952745, 3.131312518250573),
                (-3.779310253377747, -3.2831859912861696),
                (3.5844283403304917, -1.8481265269644034),
            ),
            description="Himmelblau's function of x1 and x2: a smooth surface with four global minima.",
            _fn=_himmelblau,
        ),
        ToyFunction(
            name="ackley",
            bounds=dict(square5),
            minimum=0.0,
            argmins=((0.0, 0.0),),
            description="The Ackley function of x1 and x2: a rippled surface with many local minima "
            "around one deep global minimum.",
            _fn=_ackley,
        ),
    ]
    titles = {"rosenbrock": "Rosenbrock", "branin": "Branin", "himmelblau": "Himmelblau", "ackley": "Ackley"}
    quadratics = [
        ToyFunction(
            name="quadratic2d",
            bounds=dict(square5),
            minimum=0.0,
            argmins=(QUADRATIC_CENTER,),
            description="A convex quadratic bowl in x1 and x2 with the same curvature along both axes.",
            _fn=_quadratic(1.0),
        ),
        ToyFunction(
            name="quadratic2d_10",
            bounds=dict(square5),
            minimum=0.0,
            argmins=(QUADRATIC_CENTER,),
            description="A convex quadratic bowl in x1 and x2, ten times more curved along x2 than along x1.",
            _fn=_quadratic(10.0),
        ),
    ]
    shifted = [_shifted(fn, titles[fn.name]) for fn in base]
    return {fn.name: fn for fn in [*base, *quadratics, *shifted]}


TOY_FUNCTIONS: dict[str, ToyFunction] = _build()


def _coordinate(config: Mapping[str, float], key: str) -> float:
    if key not in config:
        raise ValueError(f"missing parameter {key!r}; a toy function takes exactly x1 and x2")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{key} must be a real number, got {value!r}")
    return float(value)


def evaluate_toy(name: str, config: Mapping[str, float]) -> EvalResult:
    """Evaluate toy function ``name`` at ``config["x1"], config["x2"]``; a non-finite value is a FAIL."""
    fn = TOY_FUNCTIONS.get(name)
    if fn is None:
        raise ValueError(f"unknown toy function {name!r}; valid names: {', '.join(TOY_FUNCTIONS)}")
    unexpected = sorted(set(config) - {"x1", "x2"})
    if unexpected:
        raise ValueError(f"unexpected parameters {unexpected}; a toy function takes exactly x1 and x2")
    x1, x2 = _coordinate(config, "x1"), _coordinate(config, "x2")
    value = fn(x1, x2)
    if not math.isfinite(value):
        return EvalResult.failed(f"{name}(x1={x1!r}, x2={x2!r}) is not finite ({value!r})", x1=x1, x2=x2)
    return EvalResult(value=value, metrics={"x1": x1, "x2": x2})
