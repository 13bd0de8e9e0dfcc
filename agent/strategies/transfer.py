"""Bayesian optimization that learns from earlier studies (sources): what ``bo``, ``llm-bo`` and ``hybrid`` use
when a study is given ``--learn-from``.

A source is an earlier study already mapped into this study's space (:class:`~agent.records.SourceData`; it
may cover only some of the parameters). Its values are compared by rank only: each source's values become
normal scores of their ranks (lower is better after its own direction), so sources of another scale or
direction mix.

- **Openers** (:func:`openers`): the study starts with a few of the sources' best configurations, chosen by
  the sources' models together (each source's Gaussian process ranks the candidates; ranks are averaged).
- **Then a ranking-weighted ensemble** (RGPE, Feurer et al. 2018, "Scalable Meta-Learning for Bayesian
  Optimization"): one Gaussian process per source, fitted once, and one on this study's results. Each
  model's weight is the share of posterior draws in which it ranks this study's results best (fewest
  misordered pairs; this study's own model is judged by leave-one-out predictions, so it cannot win by
  memorizing). A source whose median loss exceeds the 95th percentile of this study's own model's loss gets
  no weight (a misleading source drops out as soon as the results contradict it), nor does one that orders
  them no better than a coin (results it cannot tell apart, alike in the parameters it knows, are ties).
  The ensemble predicts ``sum w_i mu_i`` with variance ``sum w_i^2 sigma_i^2``; the next configuration
  maximizes expected improvement over a pool of random configurations and neighbours of the best ones.
- **Startup when the sources lose** (:meth:`TransferSurrogate._starting`): once this study's own model holds
  over 90% of the weight while it has fewer than 3 results of its own beyond the openers (or only results
  alike), the next trials are random, as ``bo``'s startup, so a misleading source costs its openers only.

Without sources it is ``bo`` exactly (:class:`~agent.strategies.surrogate.SurrogateModel`). How it was chosen,
with the numbers of every variant tried: docs/transfer.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from agent.metrics import average_ranks
from agent.records import Direction, SourceData, Transform, TrialRecord
from agent.space import Choice, SearchSpace

from ._rgpe import Ensemble, Model, fill, fit_model, np_rng, one_thread, rank_weights
from .candidates import FloatArray, Surface, best_by_ei
from .surrogate import SurrogateModel, decode, scores, training_data, untried, values_of
from .warp import DEFAULT

__all__ = ["OPENERS_SEED", "TARGET", "TransferProposal", "TransferSurrogate", "normal_scores", "openers", "rounded"]

_ToValues = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

#: The key of this study's own model in :meth:`TransferSurrogate.weights`.
TARGET = "target"
_SAMPLES = 256  # posterior draws per model for the ranking weights
_NORMAL = NormalDist()
#: The openers' tie-breaks: the same list in every process, so a resumed study goes on with it.
OPENERS_SEED = 0
_TOP = 10  # each source's best configurations that may open a study


def normal_scores(values: Sequence[float] | FloatArray, direction: Direction) -> FloatArray:
    """Each value's rank as a standard normal quantile, lower better: ``Phi^-1((rank - 0.5) / n)``, ranked
    after ``direction`` (ties share their average rank; a non-finite value ranks worst)."""
    v = np.asarray(values, dtype=np.float64)
    v = -v if direction == "maximize" else v
    v = np.where(np.isfinite(v), v, np.inf)
    ranks = average_ranks(v)
    return np.array([_NORMAL.inv_cdf((r - 0.5) / len(v)) for r in ranks], dtype=np.float64)


def _source_model(space: SearchSpace, source: SourceData) -> Model:
    unknown = sorted(set(source.params) - set(space.params))
    if unknown:
        raise ValueError(f"source {source.name!r}: parameters {unknown} are not in the search space")
    return fit_model(space, source.name, list(source.configs), normal_scores(source.values, source.direction))


def openers(
    space: SearchSpace, sources: Sequence[SourceData], k: int, rng: random.Random, *, top: int = _TOP
) -> list[dict[str, Choice]]:
    """Up to ``k`` distinct configurations to open a study with: each source's ``top`` best (by its model's
    mean, which smooths noisy values), completed to the whole space (a parameter a source lacks takes the middle
    of its range), ranked by every source's model and ordered by their average rank (ties at random)."""
    if not sources or k <= 0:
        return []
    models = [_source_model(space, s) for s in sources]
    return _openers(space, models, k, rng, top)


def _openers(
    space: SearchSpace, models: Sequence[Model], k: int, rng: random.Random, top: int
) -> list[dict[str, Choice]]:
    candidates: dict[str, dict[str, Choice]] = {}
    for m in models:
        mean, _ = m.predict(m.configs)
        for i in np.argsort(mean, kind="stable")[:top]:
            config = fill(space, m.configs[int(i)], rng)
            candidates.setdefault(space.key(config), config)
    pool = list(candidates.values())
    ranks = np.mean([average_ranks(m.predict(pool)[0]) for m in models], axis=0)
    order = sorted(range(len(pool)), key=lambda i: (ranks[i], rng.random()))
    return [pool[i] for i in order[:k]]


class TransferProposal(NamedTuple):
    """What :meth:`TransferSurrogate.propose_weighted` decided."""

    config: dict[str, Choice]
    #: Each source's weight and this study's own (:data:`TARGET`), summing to 1; empty without sources.
    weights: dict[str, float]
    #: Drawn at random, as ``bo``'s startup: the sources lost and this study has too little of its own.
    startup: bool = False
    #: The model it was proposed with (the weighted ensemble; without sources, ``bo``'s model, or None).
    surface: Surface | None = None


@dataclass
class TransferSurrogate:
    """Proposes from this study's results and the sources' (RGPE). Source models are fitted once per space."""

    sources: Sequence[SourceData]
    samples: int = _SAMPLES
    #: This study's own model learns its values standardized (``False``), or as normal scores of their ranks
    #: like the sources' (``True``; measured worse at budget 30: docs/transfer.md).
    rank_target: bool = False
    #: The warp of this study's own values (:func:`~agent.strategies.surrogate.scores`), also ``bo``'s without
    #: sources.
    transform: Transform | None = DEFAULT
    #: Random trials of this study's own, after the openers, before its model alone proposes (see _starting).
    startup: int = 3
    #: The sources' total weight under which they count as having lost, for ``startup``.
    trust: float = 0.1
    _cache: dict[str, list[Model]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names) or TARGET in names:
            raise ValueError(f"sources need distinct names other than {TARGET!r}, got {names}")

    def models(self, space: SearchSpace) -> list[Model]:
        """The sources' models over ``space`` (fitted on first use)."""
        key = json.dumps(space.to_dict(), sort_keys=True, default=str)
        if key not in self._cache:
            with one_thread():
                self._cache[key] = [_source_model(space, s) for s in self.sources]
        return self._cache[key]

    def openers(self, space: SearchSpace, k: int) -> list[dict[str, Choice]]:
        """The first ``k`` configurations to open a study with (:func:`openers`), the same in every process (a
        resumed study goes on with the list it began)."""
        return _openers(space, self.models(space), k, random.Random(OPENERS_SEED), _TOP)

    def propose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> dict[str, Choice]:
        """An untried configuration (not in ``records`` nor ``also_taken``), as ``SurrogateModel.propose``."""
        return self.propose_weighted(space, records, rng, also_taken, direction).config

    def proposal(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> tuple[dict[str, Choice], Surface | None]:
        """:meth:`propose`'s configuration and the model it was chosen with."""
        p = self.propose_weighted(space, records, rng, also_taken, direction)
        return p.config, p.surface

    def weights(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction, rng: random.Random
    ) -> dict[str, float]:
        """Each source's weight and this study's own (:data:`TARGET`), summing to 1 (empty without sources)."""
        if not self.sources:
            return {}
        with one_thread():
            w = self._weighed(space, records, direction, rng)[2]
        return self._named(w)

    def propose_weighted(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> TransferProposal:
        """The proposal, the weights it was made with and whether it was drawn at random (without sources:
        ``bo``'s proposal and no weights)."""
        if not self.sources:
            config, surface = SurrogateModel(transform=self.transform).proposal(
                space, records, rng, also_taken, direction
            )
            return TransferProposal(config, {}, surface=surface)
        with one_thread():
            models, target, w, to_values = self._weighed(space, records, direction, rng)
            everyone = [*models, target] if target is not None else models
            ensemble = Ensemble([(m, float(x)) for m, x in zip(everyone, w, strict=False) if x > 0], target, to_values)
            taken = {space.key(r.config) for r in records} | set(also_taken)
            startup = target is not None and self._starting(records, target, float(w[-1]))
            best = [] if startup else best_by_ei(space, ensemble, rng, taken, 1)
            config = best[0] if best else untried(space, taken, rng)
        return TransferProposal(config, self._named(w), startup, ensemble)

    def _weighed(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction, rng: random.Random
    ) -> tuple[list[Model], Model | None, FloatArray, _ToValues | None]:
        """The sources' models, this study's own, RGPE's weights (the sources' then this study's), and the way
        from this study's scores back to its units."""
        models, target, to_values = self._fitted(space, records, direction)
        return models, target, rank_weights(models, target, np_rng(rng), self.samples), to_values

    def _named(self, w: FloatArray) -> dict[str, float]:
        return dict(zip([s.name for s in self.sources] + [TARGET], map(float, w), strict=True))

    def _starting(self, records: Sequence[TrialRecord], target: Model, own_weight: float) -> bool:
        """Whether the next trial is random, as in ``bo``'s startup: the sources have lost (this study's own
        model holds all the weight, or at least ``1 - trust`` of it with ``startup`` > 0) and this study has too
        little of its own to go on: every result alike (a misleading source's openers all failed the same
        way: a flat model would send the study to the space's corners), or fewer than ``startup`` trials that
        were not openers (a model of a few failed openers and one result exploits that one result)."""
        if own_weight < 1.0 - self.trust:
            return False
        if len(set(target.scores.tolist())) < 2:
            return own_weight == 1.0 or self.startup > 0
        own = sum(1 for r in records if r.state == "complete" and r.source != "transfer")
        return own < self.startup

    def _fit(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction
    ) -> tuple[list[Model], Model | None]:
        """The sources' models and this study's own (None before it has results)."""
        models, target, _ = self._fitted(space, records, direction)
        return models, target

    def _fitted(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction
    ) -> tuple[list[Model], Model | None, _ToValues | None]:
        models = self.models(space)
        own = self._own(space, records, direction)
        if own is None:
            return models, None, None
        configs, scored, to_values = own
        return models, fit_model(space, TARGET, configs, scored), to_values

    def _own(
        self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction
    ) -> tuple[list[dict[str, Choice]], FloatArray, _ToValues | None] | None:
        """This study's configurations, the scores its own model learns (on the sources' scale: warped and
        standardized by :func:`~agent.strategies.surrogate.scores`, or normal scores of their ranks), and the way
        from those scores back to the study's units (None for ranks); None before it has any."""
        data = training_data(space, records, direction)
        if not data:
            return None
        configs = [decode(space, p) for p, _ in data]
        warped = scores([v for _, v in data], direction, self.transform)
        if self.rank_target:
            return configs, normal_scores(warped.scores, "minimize"), None

        def to_values(mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
            return values_of(warped, mean, sd, direction)

        return configs, warped.scores, to_values


def rounded(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights as a proposal's decision keeps them (three decimals)."""
    return {name: round(w, 3) for name, w in weights.items()}
