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

from .mapping import NONE, SpaceMapping, check
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
        #: had to fix ``weight_decay`` turned a right mapping "not relevant") and the pairings that passed.
        self.relevant: bool | None = None
        self.kept: dict[str, str] = {}
        #: Earlier parameters the model was asked about once for giving them to several new ones: its next
        #: answer about them stands.
        self.asked: set[str] = set()
        #: The mapping of the last valid answer.
        self.accepted: SpaceMapping | None = None

    # ---- the arguments ------------------------------------------------------------------------------------

    def arguments_model(self) -> type[_Arguments]:
        """The arguments as a pydantic model, as the tool now offers them (narrowed by the answers so far)."""
        news = list(self.target.params)

        def offered(new: str) -> Any:
            if new in self.kept:
                return Literal[self.kept[new]]
            names = [old for old in self.source.space.params if (new, old) not in self.rejected]
            return Literal[tuple([*names, NONE])]

        strict = ConfigDict(extra="forbid", strict=True)
        names: dict[str, Any] = {f"p{i}": (offered(n), Field(alias=n)) for i, n in enumerate(news)}
        factors: dict[str, Any] = {f"p{i}": (PositiveFloat, Field(1.0, alias=n)) for i, n in enumerate(news)}
        parameters = create_model("Parameters", __config__=strict, **names)
        scale = create_model("Scale", __config__=strict, **factors)

        @model_validator(mode="after")
        def pairings(args: Any) -> Any:
            problems = check(self._mapping(args), self.source, self.target, confirmed=self.asked)
            if problems:
                raise ValidationError.from_exception_data(
                    "map_study",
                    [
                        InitErrorDetails(
                            type=PydanticCustomError(p.kind, "{message}", {"message": p.message}),
                            loc=("parameters", p.news[0]) if p.kind == "pairing" else ("parameters",),
                            input=p.old,
                        )
                        for p in problems
                    ],
                )
            return args

        relevant: Any = bool if self.relevant is None else Literal[self.relevant]
        model: type[_Arguments] = create_model(
            "MapStudyArguments",
            __base__=_Arguments,
            __validators__={"pairings": cast(Any, pairings)},
            relevant=(relevant, ...),
            parameters=(parameters, ...),
            scale=(scale, Field(default_factory=scale)),
        )
        return model

    def _mapping(self, args: Any) -> SpaceMapping:
        """The mapping valid arguments give."""
        given = args.parameters.model_dump(by_alias=True)
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
            self._learn(arguments, {e["type"] for e in exc.errors()}, exc.errors())
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
        """``arguments`` with what earlier answers settled (the schema offers nothing else)."""
        if not isinstance(arguments, dict):
            return arguments
        if self.relevant is not None:
            arguments = {**arguments, "relevant": self.relevant}
        if self.kept and isinstance(arguments.get("parameters"), dict):
            arguments = {**arguments, "parameters": {**arguments["parameters"], **self.kept}}
        return arguments

    def _learn(self, arguments: Any, kinds: set[str], errors: list[Any]) -> None:
        """What a wrong answer settles: its judgment of relevance; and, when only its pairings were wrong, the
        pairings that passed (kept), those that cannot be (no longer offered), and the earlier parameters it
        gave to several new ones (asked about, once)."""
        if self.relevant is None and isinstance(arguments, dict) and isinstance(arguments.get("relevant"), bool):
            self.relevant = arguments["relevant"]
        if not kinds <= {"pairing", "shared"}:
            return  # the answer's form was wrong: its pairings were not checked
        given: dict[str, str] = arguments["parameters"]
        shared = {str(e["input"]) for e in errors if e["type"] == "shared"}
        self.asked |= shared
        ruled_out = {str(e["loc"][-1]): str(e["msg"]) for e in errors if e["type"] == "pairing"}
        for new, old in given.items():
            if new in ruled_out:
                self.rejected[(new, old)] = ruled_out[new]
            elif old != NONE and old not in shared and new not in (arguments.get("scale") or {}):
                self.kept[new] = old


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
