"""Dataset adapters: how labels, actor groups, views, splits and class sentences come from a published layout.

`DATASETS[name]()` gives an adapter. Both stages use the same adapter: fgm-extract labels entries with
it, fgm-train re-derives labels from the stored relative paths (so a store extracted without
`--dataset` can still be trained with one).
"""

from __future__ import annotations

from fgm_common.datasets.base import DATASETS, Annotation, DatasetAdapter, LayoutError, get_dataset, register
from fgm_common.datasets import generic  # noqa: F401  (registers folder and csv)
# The paper's datasets and the test sets; each module registers its adapter(s) on import.
from fgm_common.datasets import casia, finegym, i3dpost, kth, multiview, ucf_sports, ud810, weizmann  # noqa: F401
from fgm_common.datasets.naming import Excluded

__all__ = ["DATASETS", "Annotation", "DatasetAdapter", "Excluded", "LayoutError", "get_dataset", "register"]
