"""Tests for agent/report/_experience.py: a report's "Learned from" section, read through the study's stored
decisions (the one codec), with what the mapping cost, how the openers ranked and which sources the study's
results overruled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.records import ProposalInfo, TrialRecord
from agent.report._experience import experience_section, mapping_usage

FIXTURE = Path(__file__).parents[1] / "sources" / "data" / "learned_study_fa91d4f.json"


def trial(number: int, value: float | None, source: str = "surrogate", **weights: float) -> TrialRecord:
    decision: dict[str, Any] = {"weights": weights} if weights else {}
    return TrialRecord(
        number=number,
        config={"x": float(number)},
        state="complete" if value is not None else "fail",
        value=value,
        proposal=ProposalInfo(source=source, decision=decision),  # type: ignore[arg-type]
    )


def stored_meta() -> dict[str, Any]:
    """The attributes of a study that learned from one source (S1), as main at fa91d4f stored them."""
    meta: dict[str, Any] = json.loads(FIXTURE.read_text())["user_attrs"]
    return meta


S1 = "S1 hpobench-car-random-seed0"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A report's folder, its plots/ made (as the report does)."""
    (tmp_path / "plots").mkdir()
    return tmp_path


def test_the_mapping_calls_are_counted_from_the_stored_decisions() -> None:
    """Issue 25, item 8: the mapping calls were missing from the report's LLM usage."""
    usage = mapping_usage(stored_meta())
    assert (usage.llm_calls, usage.reasks) == (1, 0) and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert mapping_usage({}).llm_calls == 0


def test_the_openers_ranks_among_the_studys_trials(out: Path) -> None:
    """Issue 25, item 12: did it help? The openers' ranks say."""
    done = [
        trial(0, 0.30, "transfer"),
        trial(1, 0.10, "transfer"),
        trial(2, None, "transfer"),
        trial(3, 0.20, **{S1: 0.4, "target": 0.6}),
        trial(4, 0.05, **{S1: 0.3, "target": 0.7}),
    ]
    text = "\n".join(experience_section(stored_meta(), done, out))
    assert (
        "The 3 openers (the sources' best configurations, source `transfer`) ranked #0 4th, #1 2nd, #2 fail among "
        "the study's 4 trials with a value. 1 later trial found better than the best of them." in text
    )
    assert "Asking the model about the sources: 1 call, " in text and "0 reasks." in text
    maximized = "\n".join(experience_section(stored_meta(), done, out, maximize=True))
    assert "ranked #0 1st, #1 3rd, #2 fail" in maximized and "The best of them is the study's best." in maximized


def test_a_source_whose_weight_fell_to_0_is_said_to_be_overruled(out: Path) -> None:
    """Issue 25, item 12: a source at weight 0 was left for the reader to take as misleading."""
    done = [
        trial(0, 0.3, "transfer"),
        trial(1, 0.2, **{S1: 0.5, "target": 0.5}),
        trial(2, 0.1, **{S1: 0.0, "target": 1.0}),
        trial(3, 0.1, **{S1: 0.0, "target": 1.0}),
    ]
    lines = experience_section(stored_meta(), done, out)
    text = "\n".join(lines)
    assert f"{S1} was overruled by this study's results: its weight fell to 0 at trial #2 and stayed there" in text
    (row,) = [line for line in lines if line.startswith(f"| {S1} |")]
    assert "| 0: overruled by this study's results |" in row
    assert (out / "plots" / "weights.png").is_file()
    kept = [trial(0, 0.3, "transfer"), trial(1, 0.2, **{S1: 0.5, "target": 0.5})]
    text = "\n".join(experience_section(stored_meta(), kept, out))
    assert "was overruled" not in text and "| 0.50 |" in text


def test_one_trial_after_the_openers_is_said_to_be_one(out: Path) -> None:
    """Issue 25, item 18: with one trial after the openers the weights plot is one point per source; the text
    says so instead of "trial by trial"."""
    one = [trial(0, 0.3, "transfer"), trial(1, 0.2, **{S1: 0.5, "target": 0.5})]
    text = "\n".join(experience_section(stored_meta(), one, out))
    assert "weight in the optimizer's model at the one trial after the openers (#1), a single point each" in text
    assert "trial by trial" not in text
    two = [*one, trial(2, 0.1, **{S1: 0.4, "target": 0.6})]
    text = "\n".join(experience_section(stored_meta(), two, out))
    assert "weight in the optimizer's model trial by trial" in text and "the one trial after" not in text


def test_a_study_without_sources_has_no_section(out: Path) -> None:
    assert experience_section({}, [trial(0, 0.1)], out) == []
