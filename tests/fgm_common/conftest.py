"""Fixtures for the dataset adapter tests: a fake published tree of empty files, keyed as fgm-extract keys it."""

from __future__ import annotations

from pathlib import Path

import pytest


class FakeTree:
    """Empty files laid out under `root` as a publisher lays them out; `keys()` lists them as fgm-extract would."""

    def __init__(self, root: Path):
        self.root = root

    def touch(self, *relative: str) -> "FakeTree":
        for rel in relative:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        return self

    def frames(self, folder: str, n: int = 3, ext: str = ".jpg") -> "FakeTree":
        """A frame folder: n empty images, which fgm-extract reads as one video."""
        return self.touch(*(f"{folder}/{i:05d}{ext}" for i in range(n)))

    def keys(self, sub: str = "") -> list[str]:
        """Store keys of the videos under root/sub: paths relative to the folder fgm-extract was pointed at."""
        from extract.inputs import discover_folder

        return [item.key for item in discover_folder(self.root / sub).items]


@pytest.fixture
def tree(tmp_path) -> FakeTree:
    return FakeTree(tmp_path / "published")
