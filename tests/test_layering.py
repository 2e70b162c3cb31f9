"""Layering: fgm_common imports neither stage, and train's sub-packages import only the ones below them."""

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


# train/'s sub-packages, bottom to top: each may import the ones before it, never one after it.
TRAIN_LAYERS = ("parts", "fitting", "experiments", "inference")


def test_train_sub_packages_import_only_downwards():
    import train

    root = Path(train.__file__).parent
    upward = {}
    for i, layer in enumerate(TRAIN_LAYERS):
        above = {f"train.{name}" for name in TRAIN_LAYERS[i + 1:]}
        files = sorted((root / layer).rglob("*.py"))
        assert files, layer
        for f in files:
            bad = sorted(m for m in imported_modules(f) if any(m == a or m.startswith(a + ".") for a in above))
            if bad:
                upward[f"{layer}/{f.name}"] = bad
    assert upward == {}
