"""The shared layer sits below both stages: nothing in fgm_common imports extract or train."""

from __future__ import annotations

import ast
from pathlib import Path

import fgm_common


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_fgm_common_imports_neither_stage():
    root = Path(fgm_common.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 3
    upward = {str(f.relative_to(root)): sorted(m for m in imported_modules(f) if m.split(".")[0] in ("extract", "train"))
              for f in files}
    assert {f: m for f, m in upward.items() if m} == {}
