"""The adapter contract and the registry every dataset module adds itself to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol


class LayoutError(ValueError):
    """A path does not match the dataset's published layout; the message names the file and what was expected."""


@dataclass(frozen=True)
class Annotation:
    """What a dataset says about one clip. Empty strings mean unknown."""

    label: str
    group: str = ""  # the person/actor: no group is ever in both train and validation
    view: str = ""  # camera id, for cross-view splits
    split: str = ""  # the official split ("train", "val", "test") where the dataset has one


class DatasetAdapter(Protocol):
    name: str
    descriptions: dict[str, list[str]]  # class -> descriptive sentences for the text encoder

    def annotate(self, key: str, meta: dict) -> Annotation:
        """Label a store entry from its relative path `key` and its recorded metadata."""
        ...


DATASETS: dict[str, Callable[[], DatasetAdapter]] = {}


def register(name: str):
    """Class decorator: `@register("kth")` makes the adapter available as `--dataset kth`."""

    def wrap(cls):
        DATASETS[name] = cls
        return cls

    return wrap


def get_dataset(name: str, annotations: str | None = None) -> DatasetAdapter:
    """The adapter `name`; `annotations` (a file or folder the publisher ships) for the adapters that take one."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if annotations is None:
        return DATASETS[name]()
    try:
        return DATASETS[name](annotations=annotations)
    except TypeError as e:
        raise ValueError(f"dataset {name!r} takes no annotation files; drop --annotations") from e
