"""An installed distribution for tests of entry points: a module and its dist-info in a folder, as pip lays them
out, found by ``importlib.metadata`` once the folder is on the path."""

from __future__ import annotations

import textwrap
from pathlib import Path


def lay_out(folder: Path, module: str, code: str, entry_points: str, name: str) -> Path:
    """Write ``module.py`` (``code``) and ``module-0.1.dist-info`` (distribution ``name`` 0.1, ``entry_points``)
    into ``folder``; return the folder."""
    (folder / f"{module}.py").write_text(textwrap.dedent(code))
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return folder
