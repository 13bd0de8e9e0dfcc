"""The model's answer about one earlier study, as a tool: ``map_study``.

Its arguments are a pydantic model built for the two spaces (:meth:`MapStudy.arguments_model`): ``relevant``,
``parameters`` with one field per new parameter whose value is one of the earlier study's parameter names or
``"none"``, and ``scale``, a positive factor per new parameter (1: none). The model gives the JSON schema sent
to providers that constrain decoding; its validators hold every check (:func:`~agent.sources.mapping.check`).
A wrong answer teaches the tool (the reask asks only for what was wrong): the first judgment of relevance and
the pairings that passed are kept, a pairing that cannot be is no longer offered, and an earlier parameter
given to several new ones is asked about once, after which the model's answer stands.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.errors import InvalidSuggestion, field_error
from agent.space import SearchSpace
from tools.base import Tool

from .mapping import NONE, Problem, SpaceMapping, check
from .reading import SourceStudy

__all__ = ["MapStudy"]


class _Arguments(BaseModel):
    """What every ``map_study`` answer has; :meth:`MapStudy.arguments_model` adds ``parameters`` and ``scale``
    over the two spaces' names (the fields are ``p0, p1, ...``, aliased to the names: a parameter may be called
    anything, ``copy`` or ``model_config`` included)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    relevant: bool


class MapStudy(Tool):
    """The model's answer about one earlier study: is it relevant, and how do its parameters map."""

    name = "map_study"
    description = (
        "Say whether the earlier study is relevant to the new one and, for each parameter of the new study, "
        "which parameter of the earlier study means the same (or none)."
    )

    def __init__(self, source: SourceStudy, target: SearchSpace) -> None:
        self.source = source
        self.target = target
        #: (new, earlier) pairs that cannot be, and why: the schema no longer offers them, so a model under
        #: constrained decoding cannot answer a reask with the same mistake (one without is told why again).
        self.rejected: dict[tuple[str, str], str] = {}
        #: What an answer settled, kept through the reasks (which sample, to get another answer for what was
        #: wrong): the judgment of relevance (the first answer's, at temperature 0; measured: a reask that only
        #: had to fix ``weight_decay`` turned a right mapping "not relevant") and the pairings that passed
        #: (``"none"`` for the new parameters an earlier one given to several turned out not to be).
        self.relevant: bool | None = None
        self.kept: dict[str, str] = {}
        #: Earlier parameters given to several new ones, and those new ones: the next answer says, in
        #: ``which``, the one each is (or that it is all of them), instead of naming them in ``parameters``.
        self.open: dict[str, tuple[str, ...]] = {}
        #: The earlier parameters asked about so: each asked once, the model's answer stands.
        self.asked: set[str] = set()
        #: The mapping of the last valid answer.
        self.accepted: SpaceMapping | None = None

    # ---- the arguments ------------------------------------------------------------------------------------

    def arguments_model(self) -> type[_Arguments]:
        """The arguments as a pydantic model, as the tool now offers them (narrowed by the answers so far)."""
        news = [n for n in self.target.params if n not in self._members()]
        strict = ConfigDict(extra="forbid", strict=True)

        def offered(new: str) -> Any:
            if new in self.kept:
                return Literal[self.kept[new]]
            names = [old for old in self.source.space.params if (new, old) not in self.rejected]
            return Literal[tuple([*names, NONE])]

        names: dict[str, Any] = {f"p{i}": (offered(n), Field(alias=n)) for i, n in enumerate(news)}
        factors: dict[str, Any] = {
            f"p{i}": (PositiveFloat, Field(1.0, alias=n)) for i, n in enumerate(self.target.params)
        }
        fields: dict[str, Any] = {"relevant": (bool if self.relevant is None else Literal[self.relevant], ...)}
        if self.open:
            answers: dict[str, Any] = {
                f"p{i}": (Literal[(*members, _all(members))], Field(alias=old))
                for i, (old, members) in enumerate(self.open.items())
            }
            fields["which"] = (create_model("Which", __config__=strict, **answers), ...)
        fields["parameters"] = (create_model("Parameters", __config__=strict, **names), ...)
        scale = create_model("Scale", __config__=strict, **factors)
        fields["scale"] = (scale, Field(default_factory=scale))

        @model_validator(mode="after")
        def pairings(args: Any) -> Any:
            problems = check(self._mapping(args), self.source, self.target, confirmed=self.asked)
            if problems:
                raise ValidationError.from_exception_data("map_study", [_error(p) for p in problems])
            return args

        model: type[_Arguments] = create_model(
            "MapStudyArguments", __base__=_Arguments, __validators__={"pairings": cast(Any, pairings)}, **fields
        )
        return model

    def _members(self) -> set[str]:
        return {new for members in self.open.values() for new in members}

    def _mapping(self, args: Any) -> SpaceMapping:
        """The mapping valid arguments give."""
        given = args.parameters.model_dump(by_alias=True)
        for old, answer in (args.which.model_dump(by_alias=True) if self.open else {}).items():
            members = self.open[old]
            given |= {new: old if answer in (new, _all(members)) else NONE for new in members}
        factors = args.scale.model_dump(by_alias=True)
        return SpaceMapping(
            relevant=args.relevant,
            params={n: None if given[n] == NONE else given[n] for n in self.target.params},
            scale={n: float(factors[n]) for n in self.target.params if factors[n] != 1},
        )

    def arguments_schema(self) -> dict[str, Any]:
        return _inlined(self.arguments_model().model_json_schema(by_alias=True))

    def example_arguments(self) -> dict[str, Any] | None:
        first = next(iter(self.target.params))
        return {"relevant": True, "parameters": {first: next(iter(self.source.space.params))}}

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """The mapping as stored (:class:`SpaceMapping`, also kept as :attr:`accepted`); every problem an error
        the model is shown."""
        model = self.arguments_model()
        arguments = self._settled(arguments)
        try:
            args = model.model_validate(arguments)
        except ValidationError as exc:
            errors = [field_error(e["loc"], self._why(e), e.get("input")) for e in exc.errors(include_url=False)]
            self._learn(arguments, exc.errors())
            shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise InvalidSuggestion(f"invalid mapping: {shown}", errors) from None
        self.accepted = self._mapping(args)
        return self.accepted.model_dump(mode="json")

    def _why(self, error: Any) -> str:
        """An error's message; for a pairing ruled out before and answered again, why it was."""
        loc, given = error["loc"], error.get("input")
        if len(loc) == 2 and loc[0] == "parameters" and isinstance(given, str):
            return self.rejected.get((str(loc[1]), given), str(error["msg"]))
        return str(error["msg"])

    def _settled(self, arguments: Any) -> Any:
        """``arguments`` with what earlier answers settled (the schema offers nothing else), and without the new
        parameters ``which`` answers for."""
        if not isinstance(arguments, dict):
            return arguments
        if self.relevant is not None:
            arguments = {**arguments, "relevant": self.relevant}
        given = arguments.get("parameters")
        if isinstance(given, dict):
            members = self._members()
            kept = {new: old for new, old in (given | self.kept).items() if new not in members}
            arguments = {**arguments, "parameters": kept}
        return arguments

    def _learn(self, arguments: Any, errors: list[Any]) -> None:
        """What a wrong answer settles: its judgment of relevance; and, when only its pairings were wrong, the
        pairings that passed (kept), those that cannot be (no longer offered), what ``which`` answered (kept),
        and the earlier parameters it gave to several new ones (asked about, once)."""
        if self.relevant is None and isinstance(arguments, dict) and isinstance(arguments.get("relevant"), bool):
            self.relevant = arguments["relevant"]
        if not {e["type"] for e in errors} <= {"pairing", "shared"}:
            return  # the answer's form was wrong: its pairings were not checked
        given: dict[str, str] = dict(arguments["parameters"])
        for old, answer in (arguments.get("which") or {}).items():
            members = self.open.pop(old)
            self.kept |= {new: old if answer in (new, _all(members)) else NONE for new in members}
        shared = {str(e["input"]): tuple(e["ctx"]["news"]) for e in errors if e["type"] == "shared"}
        self.open |= shared
        self.asked |= set(shared)
        for members in shared.values():  # a pairing kept before, now one of several: asked about with them
            self.kept = {new: old for new, old in self.kept.items() if new not in members}
        ruled_out = {str(e["loc"][-1]): str(e["msg"]) for e in errors if e["type"] == "pairing"}
        for new, old in given.items():
            if new in ruled_out:
                self.rejected[(new, old)] = ruled_out[new]
            elif old != NONE and old not in shared and new not in (arguments.get("scale") or {}):
                self.kept[new] = old


def _all(members: tuple[str, ...]) -> str:
    """What ``which`` answers when an earlier parameter is each of ``members``."""
    return "both" if len(members) == 2 else "all"


def _error(problem: Problem) -> InitErrorDetails:
    """A problem :func:`~agent.sources.mapping.check` found, as pydantic's error; an earlier parameter given to
    several new ones becomes the question the next answer's ``which`` answers (measured on the embedded model,
    the question asked directly: 4 answers in 5 gave lr to learning_rate_init alone rather than also to alpha, 5
    in 5 to lr alone rather than also to l2_penalty, and 4 in 5 kept width for both n_units_1 and n_units_2;
    asked to fix the parameters instead, it repeated alpha <- lr, learning_rate_init <- lr 5 times in 5)."""
    if problem.kind == "pairing":
        loc: tuple[str, ...] = ("parameters", problem.news[0])
        message = problem.message
    else:
        loc = ("parameters",)
        old, news = problem.old, problem.news
        listed = f"{', '.join(news[:-1])} and {news[-1]}"
        two = len(news) == 2
        message = (
            f"{listed} are {'two ' if two else ''}parameters of the new study, and you gave {old} to "
            f"{'both' if two else 'all of them'}. Which one is the same hyperparameter as {old}? Answer "
            f'"which": {{"{old}": ...}}: the one it is, or "{_all(news)}" only if {listed} are the same '
            "hyperparameter."
        )
    ctx = {"message": message, "news": list(problem.news)}
    return InitErrorDetails(type=PydanticCustomError(problem.kind, "{message}", ctx), loc=loc, input=problem.old)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref``s replaced by their definitions and without titles: the arguments' schema is
    nested in the answer's, where a reference to ``#/$defs`` would point nowhere."""
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
        return {k: inline(v) for k, v in node.items() if k != "$defs" and not (k == "title" and isinstance(v, str))}

    inlined: dict[str, Any] = inline(schema)
    return inlined
