"""``transfer-bo``: Bayesian optimization that learns from earlier studies (sources).

A source is an earlier study already mapped into this study's space (:class:`SourceData`; it may cover only
some of the parameters). Its values are compared by rank only: each source's values become normal scores of
their ranks (lower is better after its own direction), so sources of another scale or direction mix.

- **Openers** (:func:`openers`): the study starts with a few of the sources' best configurations, chosen by
  the sources' models together (each source's Gaussian process ranks the candidates; ranks are averaged).
- **Then a ranking-weighted ensemble** (RGPE, Feurer et al. 2018, "Scalable Meta-Learning for Bayesian
  Optimization"): one Gaussian process per source, fitted once, and one on this study's results. Each
  model's weight is the share of posterior draws in which it ranks this study's results best (fewest
  misordered pairs; this study's own model is judged by leave-one-out predictions, so it cannot win by
  memorizing). A source whose median loss exceeds the 95th percentile of this study's own model's loss gets
  no weight (a misleading source drops out as soon as the results contradict it). The ensemble predicts
  ``sum w_i mu_i`` with variance ``sum w_i^2 sigma_i^2``; the next configuration maximizes expected
  improvement over a pool of random configurations and neighbours of the best ones.

Without sources it is ``bo`` exactly (:class:`~agent.strategies.surrogate.SurrogateModel`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from agent.metrics import average_ranks
from agent.records import Direction, TrialRecord
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace

from ._gp import Encoder, FloatArray, GaussianProcess
from .base import Proposal, ProposeContext
from .candidates import neighbour
from .grid import is_ordinal
from .guided import BOStrategy
from .surrogate import SurrogateModel, decode, training_data, untried

__all__ = ["TARGET", "SourceData", "TransferBOStrategy", "TransferSurrogate", "normal_scores", "openers"]

#: The key of this study's own model in :meth:`TransferSurrogate.weights`.
TARGET = "target"
_SAMPLES = 256  # posterior draws per model for the ranking weights
_POOL = 512  # random configurations scored per proposal
_NEIGHBOURS = 16
_TOP = 4
_NORMAL = NormalDist()
_OPENERS_SEED = 0  # the openers' tie-breaks: the same list in every process, so a resumed study goes on with it


@dataclass(frozen=True)
class SourceData:
    """An earlier study in this study's terms: configurations over the parameters it covers (every config the
    same keys) and their values, lower or higher better as ``direction`` says."""

    name: str
    configs: tuple[dict[str, Choice], ...]
    values: tuple[float, ...]
    direction: Direction = "minimize"

    def __post_init__(self) -> None:
        if not self.configs or len(self.configs) != len(self.values):
            raise ValueError(f"source {self.name!r}: needs configurations and one value for each")
        if any(set(c) != set(self.configs[0]) for c in self.configs):
            raise ValueError(f"source {self.name!r}: every configuration must have the same parameters")

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self.configs[0])


def normal_scores(values: Sequence[float], direction: Direction) -> FloatArray:
    """Each value's rank as a standard normal quantile, lower better: ``Phi^-1((rank - 0.5) / n)``, ranked
    after ``direction`` (ties share their average rank; a non-finite value ranks worst)."""
    v = np.asarray(values, dtype=np.float64)
    v = -v if direction == "maximize" else v
    v = np.where(np.isfinite(v), v, np.inf)
    ranks = average_ranks(v)
    return np.array([_NORMAL.inv_cdf((r - 0.5) / len(v)) for r in ranks], dtype=np.float64)


@dataclass(frozen=True)
class _Model:
    """One Gaussian process over some of the space's parameters, on normal scores."""

    name: str
    encoder: Encoder
    gp: GaussianProcess
    configs: tuple[dict[str, Choice], ...]
    scores: FloatArray

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        return self.gp.predict(self.encoder(configs))


def _model(space: SearchSpace, name: str, configs: Sequence[dict[str, Choice]], scores: FloatArray) -> _Model:
    names = [n for n in space.params if n in configs[0]]
    encoder = Encoder(space, names)
    return _Model(
        name, encoder, GaussianProcess(encoder(configs), scores, encoder.is_categorical), tuple(configs), scores
    )


def _source_model(space: SearchSpace, source: SourceData) -> _Model:
    unknown = sorted(set(source.params) - set(space.params))
    if unknown:
        raise ValueError(f"source {source.name!r}: parameters {unknown} are not in the search space")
    return _model(space, source.name, list(source.configs), normal_scores(source.values, source.direction))


def _fill(space: SearchSpace, config: Mapping[str, Choice], rng: random.Random) -> dict[str, Choice]:
    """``config`` completed to the whole space: a parameter it lacks takes the middle of its range (the grid's
    middle value; a categorical without order, a random choice). The middle is the least committal guess,
    and at a grid's ends training most often fails (docs/search-quality.md, section 3)."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        if name in config:
            out[name] = config[name]
        elif isinstance(p, CategoricalParam):
            out[name] = p.choices[(len(p.choices) - 1) // 2] if is_ordinal(p) else rng.choice(p.choices)
        elif isinstance(p, FloatParam):
            out[name] = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
        else:
            assert isinstance(p, IntParam)
            out[name] = round(math.sqrt(p.low * p.high)) if p.log else (p.low + p.high) // 2
    return space.validate_config(out)


def openers(
    space: SearchSpace, sources: Sequence[SourceData], k: int, rng: random.Random, *, top: int = 10
) -> list[dict[str, Choice]]:
    """Up to ``k`` distinct configurations to open a study with: each source's ``top`` best (by its model's
    mean, which smooths noisy values), completed to the whole space (:func:`_fill`), ranked by every source's
    model and ordered by their average rank (ties at random)."""
    if not sources or k <= 0:
        return []
    models = [_source_model(space, s) for s in sources]
    return _openers(space, models, k, rng, top)


def _openers(
    space: SearchSpace, models: Sequence[_Model], k: int, rng: random.Random, top: int
) -> list[dict[str, Choice]]:
    candidates: dict[str, dict[str, Choice]] = {}
    for m in models:
        mean, _ = m.predict(m.configs)
        for i in np.argsort(mean, kind="stable")[:top]:
            config = _fill(space, m.configs[int(i)], rng)
            candidates.setdefault(space.key(config), config)
    pool = list(candidates.values())
    ranks = np.mean([average_ranks(m.predict(pool)[0]) for m in models], axis=0)
    order = sorted(range(len(pool)), key=lambda i: (ranks[i], rng.random()))
    return [pool[i] for i in order[:k]]


@dataclass
class TransferSurrogate:
    """Proposes from this study's results and the sources' (RGPE). Source models are fitted once per space."""

    sources: Sequence[SourceData]
    samples: int = _SAMPLES
    #: This study's own model learns its values standardized (``False``), or as normal scores of their ranks
    #: like the sources' (``True``; measured worse at budget 30: docs/transfer-notes.md).
    rank_target: bool = False
    _cache: dict[str, list[_Model]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names) or TARGET in names:
            raise ValueError(f"sources need distinct names other than {TARGET!r}, got {names}")

    def models(self, space: SearchSpace) -> list[_Model]:
        """The sources' models over ``space`` (fitted on first use)."""
        key = json.dumps(space.to_dict(), sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = [_source_model(space, s) for s in self.sources]
        return self._cache[key]

    def propose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> dict[str, Choice]:
        """An untried configuration (not in ``records`` nor ``also_taken``), as ``SurrogateModel.propose``."""
        return self.propose_weighted(space, records, rng, also_taken, direction)[0]

    def weights(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction, rng: random.Random
    ) -> dict[str, float]:
        """Each source's weight and this study's own (:data:`TARGET`), summing to 1 (empty without sources)."""
        if not self.sources:
            return {}
        with _one_thread():
            models, target = self._fit(space, records, direction)
            w = _rank_weights(models, target, _np_rng(rng), self.samples)
        return dict(zip([s.name for s in self.sources] + [TARGET], map(float, w), strict=True))

    def propose_weighted(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> tuple[dict[str, Choice], dict[str, float]]:
        """The proposal and the weights it was made with (without sources: ``bo``'s proposal and no weights)."""
        if not self.sources:
            return SurrogateModel().propose(space, records, rng, also_taken, direction), {}
        with _one_thread():
            models, target = self._fit(space, records, direction)
            w = _rank_weights(models, target, _np_rng(rng), self.samples)
            everyone = [*models, target] if target is not None else models
            ensemble = [(m, float(x)) for m, x in zip(everyone, w, strict=False) if x > 0]
            taken = {space.key(r.config) for r in records} | set(also_taken)
            if target is not None and w[-1] == 1.0 and len(set(target.scores.tolist())) < 2:
                # Nothing to learn yet (every result alike: a misleading source's openers all failed) and no
                # source trusted: a random configuration, as bo's startup; a flat model would pick corners.
                config = untried(space, taken, rng)
            else:
                config = _maximize_ei(space, ensemble, target, rng, taken)
        return config, dict(zip([s.name for s in self.sources] + [TARGET], map(float, w), strict=True))

    def _fit(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction
    ) -> tuple[list[_Model], _Model | None]:
        models = self.models(space)
        data = training_data(space, records, direction)
        if not data:
            return models, None
        configs = [decode(space, p) for p, _ in data]
        values = [v for _, v in data]
        if self.rank_target:
            scores = normal_scores(values, direction)
        else:
            v = np.asarray(values) * (-1.0 if direction == "maximize" else 1.0)
            scores = (v - v.mean()) / max(float(v.std()), 1e-12)
        return models, _model(space, TARGET, configs, scores)


def _one_thread() -> Any:
    """BLAS limited to one thread: on these small matrices its threads cost ten times the work."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _np_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.randrange(2**32))


def _rank_weights(
    models: Sequence[_Model], target: _Model | None, rng: np.random.Generator, samples: int
) -> FloatArray:
    """RGPE's weights, the sources' then this study's: for each posterior draw, the model with the fewest
    misordered pairs of this study's results wins it; weights are the shares of draws won. A source must do
    better than this study's own model to win a draw: ties go to this study's model (among sources, at
    random), so results that cannot be ordered (every trial failed alike) give the sources nothing. A source
    whose median loss exceeds the 95th percentile of this study's model's loss is dropped. Before two results
    the sources share the weight equally."""
    if target is None or len(target.scores) < 2:
        return np.array([1.0 / len(models)] * len(models) + [0.0])
    y = target.scores
    order = y[:, None] < y[None, :]  # order[j, k]: result j is better than result k
    counted = y[:, None] != y[None, :]
    losses = []
    for m in models:
        f = m.gp.sample(m.encoder(target.configs), samples, rng)  # draws x n
        wrong = (f[:, :, None] < f[:, None, :]) != order
        losses.append((wrong & counted).sum(axis=(1, 2)))
    mean, var = target.gp.loo()
    f = mean + np.sqrt(var) * rng.standard_normal((samples, len(y)))  # leave-one-out draws at each result
    wrong = (f[:, :, None] < y[None, None, :]) != order
    target_loss = (wrong & counted).sum(axis=(1, 2))
    limit = np.quantile(target_loss, 0.95)
    keep = np.array([np.median(x) <= limit for x in losses])
    sources = np.where(keep[:, None], np.array(losses, dtype=np.float64), np.inf)
    noisy = np.vstack([sources + rng.uniform(0.1, 0.6, sources.shape), target_loss[None, :]])  # losses are counts
    wins = np.bincount(np.argmin(noisy, axis=0), minlength=len(models) + 1)
    result: FloatArray = wins / samples
    return result


def _maximize_ei(
    space: SearchSpace,
    ensemble: Sequence[tuple[_Model, float]],
    target: _Model | None,
    rng: random.Random,
    taken: set[str],
) -> dict[str, Choice]:
    """The untried configuration of highest expected improvement under the ensemble, over a pool of random
    configurations, neighbours of this study's best results and of the weighted sources' best, refined once
    around the pool's best."""
    incumbent = float(target.scores.min()) if target is not None else min(float(m.scores.min()) for m, _ in ensemble)
    seeds: list[dict[str, Choice]] = []
    if target is not None:
        seeds += [target.configs[int(i)] for i in np.argsort(target.scores, kind="stable")[:_TOP]]
    best = seeds[0] if seeds else {}
    for m, _ in ensemble:
        if m is not target:
            seeds += [
                _fill(space, {**best, **m.configs[int(i)]}, rng) for i in np.argsort(m.scores, kind="stable")[:_TOP]
            ]
    pool = _distinct(
        space,
        seeds
        + [neighbour(space, c, rng) for c in seeds for _ in range(_NEIGHBOURS)]
        + [space.sample(rng) for _ in range(_POOL)],
        taken,
    )
    if not pool:
        return untried(space, taken, rng)
    ei = _ei(ensemble, pool, incumbent)
    top = [pool[int(i)] for i in np.argsort(-ei, kind="stable")[:_TOP]]
    local = _distinct(space, [neighbour(space, c, rng) for c in top for _ in range(_NEIGHBOURS)], taken)
    pool, ei = pool + local, np.concatenate([ei, _ei(ensemble, local, incumbent)]) if local else ei
    return pool[int(np.argmax(ei))]


def _distinct(space: SearchSpace, configs: Sequence[dict[str, Choice]], taken: set[str]) -> list[dict[str, Choice]]:
    out, seen = [], set(taken)
    for c in configs:
        key = space.key(c)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _ei(ensemble: Sequence[tuple[_Model, float]], configs: Sequence[dict[str, Choice]], incumbent: float) -> FloatArray:
    mean = np.zeros(len(configs))
    var = np.zeros(len(configs))
    for m, w in ensemble:
        mu, v = m.predict(configs)
        mean += w * mu
        var += w * w * v
    sd = np.sqrt(np.maximum(var, 1e-12))
    z = (incumbent - mean) / sd
    cdf = np.array([_NORMAL.cdf(x) for x in z])
    result: FloatArray = (incumbent - mean) * cdf + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return result


class TransferBOStrategy(BOStrategy):
    """``n_open`` of the sources' best configurations first (source ``transfer``), then the transfer surrogate
    (source ``surrogate``, its weights in the proposal's decision). Without sources: ``bo``."""

    name = "transfer-bo"

    def __init__(
        self,
        sources: Sequence[SourceData],
        *,
        budget: int,
        n_open: int = 3,
        surrogate: TransferSurrogate | None = None,
    ) -> None:
        super().__init__()
        self.transfer = surrogate or TransferSurrogate(tuple(sources))
        self.n_open = min(n_open, budget) if self.transfer.sources else 0
        self._openers: list[dict[str, Choice]] | None = None
        self._opened: set[str] = set()  # openers proposed by this process

    async def propose(self, ctx: ProposeContext) -> Proposal:
        if not self.transfer.sources:
            return await super().propose(ctx)
        opener = self._next_opener(ctx)
        if opener is not None:
            return opener
        config, weights = self.transfer.propose_weighted(
            ctx.space, ctx.records, ctx.rng, also_taken=self._issued, direction=ctx.direction
        )
        self._issued.add(ctx.space.key(config))
        return Proposal(config=config, source="surrogate", decision={"weights": _rounded(weights)})

    def opener_list(self, space: SearchSpace, k: int) -> list[dict[str, Choice]]:
        """The first ``k`` configurations to open with, the same in every process (a resumed study goes on)."""
        return _openers(space, self.transfer.models(space), k, random.Random(_OPENERS_SEED), 10)

    def _next_opener(self, ctx: ProposeContext) -> Proposal | None:
        opened = {ctx.space.key(r.config) for r in ctx.records if r.source == "transfer"} | self._opened
        if len(opened) >= self.n_open:
            return None
        if self._openers is None:  # a few spares: an opener the study already tried is skipped
            self._openers = self.opener_list(ctx.space, self.n_open + 10)
        taken = {ctx.space.key(r.config) for r in ctx.records} | self._issued
        for i, config in enumerate(self._openers):
            key = ctx.space.key(config)
            if key not in taken:
                self._opened.add(key)
                self._issued.add(key)
                return Proposal(config=config, source="transfer", decision={"opener": i})
        return None


def _rounded(weights: Mapping[str, float]) -> dict[str, float]:
    return {name: round(w, 3) for name, w in weights.items()}
