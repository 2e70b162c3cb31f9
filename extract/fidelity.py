"""Re-measure a store's CLIP features against torch fp32 on its own videos (`fgm-extract fidelity`).

Each run checks its runtime on FIDELITY_FRAMES frames of the first batch; this measures what is in
the store, on as many entries as asked: the sampled frames are decoded again from the recorded
paths, preprocessed as the store's config says, encoded by torch fp32 with the store's weights, and
compared frame by frame with the stored embeddings (and tokens). Only the runtime differs between
the two, so the cosines measure the runtime alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from extract.clip_model import load_clip
from extract.clip_runtime import cosines, evenly_spaced, runtime_spec, token_cosines
from extract.fingerprint import stat_fingerprint
from extract.preprocess import preprocessor
from extract.video import VideoError, open_source
from fgm_common.store import CLIP, FRAME_INDEX, TOKENS, Entry, FeatureStore


@dataclass
class EntryFidelity:
    """One entry's per-frame cosines to torch fp32: (T,) for the embeddings, min over tokens if stored."""

    key: str
    cosine: np.ndarray  # (T,)
    tokens_min: float | None = None


@dataclass
class FidelityReport:
    """What `measure_fidelity` found; `threshold` None for a torch store (nothing to refuse)."""

    runtime: str
    threshold: float | None
    measured: list[EntryFidelity] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why its video could not be read again

    @property
    def frames(self) -> int:
        return int(sum(len(e.cosine) for e in self.measured))

    def _all(self) -> np.ndarray:
        return np.concatenate([e.cosine for e in self.measured]) if self.measured else np.ones(0)

    @property
    def min_cosine(self) -> float:
        return float(self._all().min()) if self.measured else float("nan")

    @property
    def median_cosine(self) -> float:
        return float(np.median(self._all())) if self.measured else float("nan")

    @property
    def tokens_min_cosine(self) -> float | None:
        values = [e.tokens_min for e in self.measured if e.tokens_min is not None]
        return min(values) if values else None

    @property
    def passed(self) -> bool:
        worst = min(self.min_cosine, self.tokens_min_cosine if self.tokens_min_cosine is not None else 1.0)
        return bool(self.measured) and (self.threshold is None or worst >= self.threshold)


def spread(entries: list[Entry], n: int) -> list[Entry]:
    """n entries evenly spaced over the sorted list (all of them when n is 0 or too large)."""
    if n <= 0 or n >= len(entries):
        return entries
    return [entries[i] for i in evenly_spaced(len(entries), n)]


def measure_fidelity(store_url: str, max_entries: int = 0, device: str = "cpu", cache_dir: str | None = None,
                     batch_size: int = 32, on_entry: Callable[[int], None] | None = None) -> FidelityReport:
    """Cosines of the stored CLIP features to torch fp32 on `max_entries` entries (0 = all).

    Raises StoreError when the weights rebuilt now differ from the store's, ClipWeightsError when
    they cannot be had. A video that is gone or changed since extraction is skipped and named.
    `on_entry(n)` is called once with the number of entries chosen, then once per entry with 0.
    """
    store = FeatureStore.open(store_url)
    config = store.config
    spec = runtime_spec(config.clip_runtime)
    clip = load_clip(config.clip_model, config.pretrained, config.random_seed, device, cache_dir)
    store.check_weights(clip.identity)
    preprocess = preprocessor(config.preprocess, clip.preprocess)
    report = FidelityReport(spec.name, spec.min_cosine if spec.onnx else None)
    names = (CLIP, FRAME_INDEX) + ((TOKENS,) if config.tokens else ())
    chosen = spread(store.entries(), max_entries)
    if on_entry:
        on_entry(len(chosen))
    for entry in chosen:
        if on_entry:
            on_entry(0)
        meta = entry.meta
        try:
            if stat_fingerprint(meta["path"])[0] != meta.get("size"):
                report.skipped[entry.key] = f"{meta['path']} changed since it was extracted (its size differs)"
                continue
            stored = store.read(entry, names)
            source = open_source(meta["path"], start_ms=meta.get("start_ms"), end_ms=meta.get("end_ms"))
            frames = [f.rgb for f in source.iter_frames(list(stored[FRAME_INDEX]))]
        except (VideoError, OSError) as e:
            report.skipped[entry.key] = str(e)
            continue
        refs = [clip.encode_batch(preprocess(frames[i : i + batch_size]), tokens=config.tokens)
                for i in range(0, len(frames), batch_size)]
        emb = np.concatenate([r[0] for r in refs])  # (T, D)
        result = EntryFidelity(entry.key, cosines(stored[CLIP], emb))
        if config.tokens:
            tok = np.concatenate([r[1] for r in refs])  # (T, L, W)
            result.tokens_min = float(token_cosines(stored[TOKENS], tok).min())  # stored as f16
        report.measured.append(result)
    return report
