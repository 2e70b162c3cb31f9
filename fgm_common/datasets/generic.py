"""Generic adapters: `folder` (label = parent folder) and `csv` (labels recorded from a manifest)."""

from __future__ import annotations

from fgm_common.datasets.base import Annotation, LayoutError, register


@register("folder")
class FolderDataset:
    """videos/<class>/<clip>: the label is the clip's parent folder; no groups, views or official split."""

    name = "folder"
    descriptions: dict[str, list[str]] = {}

    def annotate(self, key: str, meta: dict) -> Annotation:
        parts = key.split("#", 1)[0].split("/")
        if len(parts) < 2:
            raise LayoutError(f"{key}: expected <class>/<video>, a video at the top level has no class folder")
        return Annotation(parts[-2])


@register("csv")
class CsvDataset:
    """Labels, groups, views and splits as the manifest gave them to fgm-extract (recorded per entry)."""

    name = "csv"
    descriptions: dict[str, list[str]] = {}

    def annotate(self, key: str, meta: dict) -> Annotation:
        if not meta.get("label"):
            raise LayoutError(f"{key}: no label recorded; extract from a manifest with a label column")
        return Annotation(meta["label"], meta.get("group", ""), meta.get("view", ""), meta.get("split", ""))
