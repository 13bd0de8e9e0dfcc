"""Prompt templates: Jinja2 files under ``prompts/``, rendered with ``StrictUndefined``.

Users edit the files in place, or point ``AGENT_PROMPTS_DIR`` (``--prompts-dir``) at a folder holding their
own copies; a template missing there falls back to the shipped one. A variable a template uses but the agent
does not pass fails loudly instead of rendering as an empty string.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

import prompts as _shipped

from .errors import UserError

__all__ = ["SHIPPED_DIR", "Templates"]

SHIPPED_DIR = Path(_shipped.__file__).parent


class Templates:
    def __init__(self, directory: str | Path | None = None) -> None:
        chosen = directory or os.environ.get("AGENT_PROMPTS_DIR")
        dirs = [str(SHIPPED_DIR)]
        if chosen:
            if not Path(chosen).is_dir():
                raise UserError(f"--prompts-dir / AGENT_PROMPTS_DIR: {chosen} is not a directory")
            dirs.insert(0, str(chosen))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(dirs),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )

    def render(self, name: str, **context: Any) -> str:
        try:
            return self._env.get_template(f"{name}.j2").render(**context).strip()
        except jinja2.TemplateNotFound as exc:
            raise UserError(f"prompt template {name}.j2 not found (looked in the prompts directory)") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise UserError(
                f"prompt template {exc.filename or name + '.j2'}, line {exc.lineno}: {exc.message}"
            ) from exc
        except jinja2.UndefinedError as exc:
            raise UserError(f"prompt template {name}.j2 uses an unknown variable: {exc.message}") from exc
