"""ruff, mypy and import-linter run with the test command, so CI keeps them green."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bare eval/exec/compile/__import__ (a method such as `model.eval()` or `re.compile()` is fine), shells.
_DANGEROUS = re.compile(r"(?<![\w.])(eval|exec|compile|__import__)\(|shell\s*=\s*True|os\.system\(|os\.popen\(")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    """The contracts in pyproject.toml: the agent's layers, and evaluators knowing nothing of the agent."""
    script = Path(sys.executable).parent / "lint-imports"
    result = _run(str(script))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_mypy_strict() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_eval_or_exec_anywhere() -> None:
    """The model's text is untrusted: nothing in the code may evaluate text."""
    offenders = []
    for folder in ("agent", "tools", "evaluators", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if _DANGEROUS.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_function_in_agent_is_over_100_lines_nor_shares_state_through_nonlocal() -> None:
    """Small functions, each readable at once; a loop's state lives in an object, not in closures."""
    offenders = []
    for path in (ROOT / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 100:
                    offenders.append(f"{where} {node.name}: {length} lines")
            elif isinstance(node, ast.Nonlocal):
                offenders.append(f"{where} nonlocal {', '.join(node.names)}")
    assert not offenders, "\n".join(offenders)


_HEAVY = {"slow", "embedded"}


def _marks(decorators: list[ast.expr]) -> set[str]:
    """The ``pytest.mark.NAME`` names among ``decorators`` (or a ``pytestmark`` value's elements)."""
    names = set()
    for d in decorators:
        node = d.func if isinstance(d, ast.Call) else d
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
            names.add(node.attr)
    return names


def test_every_test_module_keeps_a_test_in_the_fast_inner_loop() -> None:
    """``pytest -m "not slow and not embedded"`` is the inner loop (README); it is not made fast by marking whole
    modules slow: the tests of each module of agent/, tools/ and evaluators/ keep at least one it runs."""
    only_heavy = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        mirrored = ROOT / path.relative_to(ROOT / "tests").parent / path.name.removeprefix("test_")
        if mirrored.parts[len(ROOT.parts)] not in ("agent", "tools", "evaluators") or not (
            mirrored.is_file() or mirrored.with_suffix("").is_dir()
        ):
            continue  # a test of the whole (a study with the real model), or of a benchmark
        tree = ast.parse(path.read_text())
        module: set[str] = set()
        tests: list[set[str]] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
                value = node.value
                module |= _marks(list(value.elts) if isinstance(value, ast.List | ast.Tuple) else [value])
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                tests.append(_marks(node.decorator_list))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                tests.append(_marks(node.decorator_list))
        if tests and all((marks | module) & _HEAVY for marks in tests):
            only_heavy.append(str(path.relative_to(ROOT)))
    assert only_heavy == []
