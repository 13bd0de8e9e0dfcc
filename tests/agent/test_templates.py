"""Tests for agent/templates.py: prompt files, user overrides, StrictUndefined."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import UserError
from agent.templates import SHIPPED_DIR, Templates

FEEDBACK = {
    "trial_line": 'trial 0: {"x1": 1.0} -> value 2',
    "source": "llm",
    "remaining": 2,
    "best": "2",
    "eval_tool": "evaluate_toy",
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_PROMPTS_DIR", raising=False)


def test_shipped_templates_are_found() -> None:
    for name in ("system", "feedback", "history", "history_limit", "reask", "task_toy", "task_tabular", "task_cifar"):
        assert (SHIPPED_DIR / f"{name}.j2").is_file()
    text = Templates().render("feedback", **FEEDBACK)
    assert text == (
        'trial 0: {"x1": 1.0} -> value 2\n'
        "2 evaluations left; the best value so far is 2. Call evaluate_toy with the next configuration."
    )


def test_undefined_variable_raises_user_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "feedback.j2").write_text("{{ trial_line }} ({{ temperature_hint }})")
    with pytest.raises(UserError, match="feedback.j2") as info:
        Templates(tmp_path).render("feedback", **FEEDBACK)
    assert "temperature_hint" in str(info.value)


def test_undefined_variable_in_a_condition_or_attribute_fails_too(tmp_path: Path) -> None:
    (tmp_path / "reask.j2").write_text("{% if verbose %}long{% endif %}")
    with pytest.raises(UserError, match="verbose"):
        Templates(tmp_path).render("reask", errors=[])
    (tmp_path / "reask.j2").write_text("{% for e in errors %}{{ e.location }}{% endfor %}")
    with pytest.raises(UserError, match="location"):
        Templates(tmp_path).render("reask", errors=[{"loc": "x", "msg": "m"}])


def test_shipped_template_with_a_missing_variable_fails(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown variable"):
        Templates().render("feedback", trial_line="t")


def test_a_user_override_is_used_and_the_rest_fall_back(tmp_path: Path) -> None:
    (tmp_path / "reask.j2").write_text("  CUSTOM: {{ errors | length }} error(s)\n\n")
    templates = Templates(tmp_path)
    assert templates.render("reask", errors=[{"loc": "x1", "msg": "bad"}]) == "CUSTOM: 1 error(s)"
    assert templates.render("feedback", **FEEDBACK) == Templates().render("feedback", **FEEDBACK)
    assert "CUSTOM" not in Templates().render("reask", errors=[{"loc": "x1", "msg": "bad"}])


def test_agent_prompts_dir_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "feedback.j2").write_text("from the env dir")
    monkeypatch.setenv("AGENT_PROMPTS_DIR", str(tmp_path))
    assert Templates().render("feedback", **FEEDBACK) == "from the env dir"
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    (explicit / "feedback.j2").write_text("from the flag")
    assert Templates(explicit).render("feedback", **FEEDBACK) == "from the flag"  # the flag wins over the env


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_non_directory_raises_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    path = tmp_path / "prompts.j2"
    if kind == "file":
        path.write_text("not a folder")
    with pytest.raises(UserError, match="--prompts-dir / AGENT_PROMPTS_DIR") as info:
        Templates(path)
    assert str(path) in str(info.value)
    monkeypatch.setenv("AGENT_PROMPTS_DIR", str(path))
    with pytest.raises(UserError, match="is not a directory"):
        Templates()


def test_an_unknown_template_raises_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="task_chess.j2 not found"):
        Templates(tmp_path).render("task_chess")


def test_a_template_syntax_error_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "feedback.j2").write_text("{% if remaining > 0 %}{{ remaining }} left")  # no endif
    with pytest.raises(UserError, match="feedback.j2"):
        Templates(tmp_path).render("feedback", **FEEDBACK)
