"""Tests for tools/take_candidate.py: naming a candidate instead of spelling a configuration."""

from __future__ import annotations

import pytest

from agent.answer import answer_schema, parse_answer
from agent.errors import InvalidSuggestion
from agent.space import CategoricalParam, FloatParam, SearchSpace
from tools.take_candidate import TakeCandidate

SPACE = SearchSpace(
    params={"lr": FloatParam(low=1e-4, high=1.0, log=True), "act": CategoricalParam(choices=("a", "b"))}
)


def test_a_candidate_number_becomes_its_configuration() -> None:
    take = TakeCandidate(SPACE, k=2)
    take.offer([{"lr": 0.01, "act": "a"}, {"lr": 0.1, "act": "b"}])
    call = parse_answer('{"tool": "take", "arguments": {"candidate": 2}}', {"take": take})
    assert call.configuration == {"lr": 0.1, "act": "b"}


@pytest.mark.parametrize(
    "arguments",
    [
        '{"candidate": 3}',
        '{"candidate": 0}',
        '{"candidate": "1"}',
        '{"candidate": true}',
        '{"candidate": 1, "x": 2}',
        "{}",
    ],
)
def test_anything_but_a_number_shown_is_reasked(arguments: str) -> None:
    take = TakeCandidate(SPACE, k=2)
    take.offer([{"lr": 0.01, "act": "a"}, {"lr": 0.1, "act": "b"}])
    with pytest.raises(InvalidSuggestion) as info:
        parse_answer(f'{{"tool": "take", "arguments": {arguments}}}', {"take": take})
    assert info.value.errors and info.value.errors[0]["loc"][:2] == ["arguments", "candidate"]


def test_nothing_offered_is_nothing_to_take() -> None:
    with pytest.raises(InvalidSuggestion, match="no candidate is offered"):
        TakeCandidate(SPACE, k=2).validate_arguments({"candidate": 1})


def test_the_schema_names_only_the_candidates_number() -> None:
    take = TakeCandidate(SPACE, k=3)
    schema = answer_schema({"take": take})
    arguments = schema["properties"]["arguments"]
    assert arguments["properties"] == {"candidate": {"type": "integer", "minimum": 1, "maximum": 3}}
    assert arguments["additionalProperties"] is False
