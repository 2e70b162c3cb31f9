"""Load a feature store into memory as fixed-length tensors, labelled by a dataset adapter. No video is decoded."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from fgm_common.datasets import DatasetAdapter, LayoutError
from fgm_common.store import (BOX_ARRAYS, BOX_FLOW_HIST, BOX_FRAME_ARRAYS, CLIP, FLOW, FLOW_HIST, FLOW_STEP_ARRAYS,
                              MODEL_ARRAYS, NUM_FRAMES, TOKENS, Entry, FeatureStore, StoreError, entry_id)
from fgm_common.texts import class_mean, class_sentences
from train.fitting.regions import require_boxes, track_slots
from train.parts.regions import REGION_ASPECT, REGION_HIST


def resample(x: np.ndarray, steps: int) -> np.ndarray:
    """Pick `steps` rows uniformly (segment midpoints) from x (T, ...) -> (steps, ...); identity when T == steps."""
    if len(x) == steps:
        return x
    idx = np.minimum(((np.arange(steps) + 0.5) * len(x) / steps).astype(int), len(x) - 1)
    return x[idx]


def region_arrays(store: FeatureStore, entry: Entry | str, flow_steps: int) -> dict[str, np.ndarray]:
    """One entry's tracked boxes as K slots at `flow_steps` steps (track_slots): region_hist (flow_steps, K, Hh), ...,
    and region_aspect (), its frame's width / height.

    Each flow step gets the boxes of its pair's first frame: pair t begins at frame t, so the
    per-frame arrays are cut to the stored pairs and resampled exactly as the pairs are.
    """
    arrays = store.read(entry, BOX_ARRAYS)
    pairs = len(arrays[BOX_FLOW_HIST])
    slots = track_slots({k: resample(v[:pairs] if k in BOX_FRAME_ARRAYS else v, flow_steps) for k, v in arrays.items()})
    if not isinstance(entry, Entry):
        entry = Entry(entry_id(entry), entry, store.entry_meta(entry) or {})
    width, height = entry.frame_size
    # The square flow grid squeezed the frame; a size the probe could not read is taken as square.
    return {**slots, REGION_ASPECT: np.float32(width / height if width and height else 1.0)}


@dataclass
class FeatureSet:
    """Every labelled entry of a store, in memory. Sizes come from the store, never from constants."""

    keys: list[str]
    classes: list[str]
    labels: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) str, "" when unknown
    views: np.ndarray
    splits: np.ndarray
    # clip (N, T, D), flow (N, Tf, 2, G, G), flow_hist (N, Tf, H), [tokens], [extra], [region_* (N, Tf, K, ...)]
    tensors: dict[str, torch.Tensor]
    class_text: torch.Tensor  # (C, D) L2-normalised
    class_sentences: dict[str, list[str]]  # the sentences behind each class_text row
    scene_text: torch.Tensor  # (K, D)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why it has no label
    load_seconds: float = 0.0
    extra: tuple[str, ...] = ()  # extra visual arrays in `tensors`, e.g. ("resnet50",): (N, T, Db) each
    steps_why: str = ""  # why the videos were resampled to their T (frame_steps)

    def __len__(self) -> int:
        return len(self.keys)

    def batch(self, idx: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """Gather a batch by dataset indices onto `device`: every tensor (B, ...) float32, plus label and index.

        Half-precision features travel as stored and are cast on the device (half the bytes to copy).
        """
        idx = torch.as_tensor(idx, dtype=torch.long)
        out = {k: v[idx].to(device, non_blocking=True).float() for k, v in self.tensors.items()}
        out["label"] = torch.as_tensor(self.labels)[idx].to(device)
        out["index"] = idx.to(device)
        return out

    @property
    def dims(self) -> dict[str, int]:
        """Feature sizes as read from the store: clip_dim, n_frames, n_flow, flow_grid, flow_hist_dim, n_regions
        (K track slots, 0 without regions loaded) [, extra_dims {array: width} when extra arrays were loaded]."""
        clip, flow, hist = self.tensors[CLIP], self.tensors[FLOW], self.tensors[FLOW_HIST]
        regions = self.tensors.get(REGION_HIST)
        dims = {"clip_dim": clip.shape[-1], "n_frames": clip.shape[1], "n_flow": flow.shape[1],
                "flow_grid": flow.shape[-1], "flow_hist_dim": hist.shape[-1],
                "n_regions": 0 if regions is None else regions.shape[2]}
        if self.extra:
            dims["extra_dims"] = {k: self.tensors[k].shape[-1] for k in self.extra}
        return dims


def load_features(store: FeatureStore, dataset: DatasetAdapter, n_frames: int | None = None,
                  tokens: bool = False, text_encoder=None, extra: tuple[str, ...] = (),
                  regions: bool = False) -> FeatureSet:
    """Read every complete entry, label it with `dataset`, and stack to fixed T (the store's, or `n_frames`).

    `extra` names per-frame arrays of other visual backbones to load beside CLIP (e.g. "resnet50",
    (T, Db) per entry); a store without them is a StoreError that says how to extract them.
    `regions` also loads the tracked boxes as K slots per flow step (region_arrays: the REGION_KEYS
    of train/parts/regions.py); a store made without a detector is a StoreError saying what to do.

    Entries the adapter cannot label are skipped and listed in `skipped`. Classes are those present,
    sorted; their text embeddings come from the store, or from `text_encoder(sentences)` (the store's
    own CLIP text tower) for classes or descriptions the store lacks.
    """
    t0 = time.perf_counter()
    if regions:
        require_boxes(store.config, store.url, "region tokens")
    labelled, skipped = [], {}
    for entry in store.entries():
        try:
            labelled.append((entry, dataset.annotate(entry.key, entry.meta)))
        except LayoutError as e:
            skipped[entry.key] = str(e)
    if not labelled:
        raise ValueError(f"no labelled videos in {store.url} for dataset {dataset.name!r}: "
                         + "; ".join(list(skipped.values())[:3]))
    classes = sorted({a.label for _, a in labelled})
    extra = tuple(extra)
    names = MODEL_ARRAYS + ((TOKENS,) if tokens else ()) + extra
    cfg = store.config
    steps, steps_why = frame_steps(cfg.sampling, [int(e.meta.get(NUM_FRAMES, 0)) for e, _ in labelled],
                                   cfg.num_frames, n_frames)
    flow_steps = steps if cfg.flow.pairs == "native" else max(steps - 1, 1)

    def read(entry):
        try:
            arr = store.read(entry, names)
        except StoreError as e:
            if not extra:
                raise
            raise StoreError(f"{store.url} entry {entry.key!r} lacks some of the extra features {list(extra)}: "
                             f"extract them with `fgm-extract VIDEOS --out {store.url} --backbone "
                             f"{','.join(extra)}` ({e})") from e
        out = {k: resample(v, flow_steps if k in FLOW_STEP_ARRAYS else steps) for k, v in arr.items()}
        return {**out, **region_arrays(store, entry, flow_steps)} if regions else out

    with ThreadPoolExecutor(max_workers=8) as pool:  # zarr reads are I/O-bound
        rows = list(pool.map(read, [e for e, _ in labelled]))
    tensors = {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}
    class_text, scene_text, sentences = _text(store, classes, dataset, text_encoder)
    anns = [a for _, a in labelled]
    return FeatureSet(
        keys=[e.key for e, _ in labelled], classes=classes,
        labels=np.array([classes.index(a.label) for a in anns], dtype=np.int64),
        groups=np.array([a.group for a in anns]), views=np.array([a.view for a in anns]),
        splits=np.array([a.split for a in anns]), tensors=tensors,
        class_text=class_text, scene_text=scene_text, class_sentences=sentences, skipped=skipped,
        load_seconds=time.perf_counter() - t0, extra=extra, steps_why=steps_why,
    )


def frame_steps(sampling: str, entry_frames: list[int], num_frames: int, asked: int | None) -> tuple[int, str]:
    """The T every video is resampled to for training, and why: (T, a phrase for the log).

    `asked` (--frames) wins; a uniform store has one T for every entry; an fps-sampled store holds
    as many frames as each video's length gives, so T is their median: half the videos are
    subsampled, half repeat frames, and none is stretched to the longest.
    """
    if asked:
        return asked, "as asked (--frames)"
    if sampling == "uniform":
        return num_frames, "as stored"
    counts = [n for n in entry_frames if n > 0]
    if not counts:
        raise ValueError("this fps-sampled store records no frame counts; pass --frames to choose T")
    steps = max(1, int(np.median(counts)))
    return steps, (f"the median frame count of this fps-sampled store, whose videos hold {min(counts)}-"
                   f"{max(counts)} frames (--frames sets another)")


def _text(store: FeatureStore, classes: list[str], dataset: DatasetAdapter, text_encoder):
    """(C, D) class embeddings = mean of unit sentence embeddings per class; (K, D) scene embeddings.

    A class's sentences are those the store has for it plus the adapter's descriptions; a class the
    store never saw gets the store's templates. Sentences the store lacks go through `text_encoder`.
    """
    text = store.text()
    if not text:
        raise ValueError(f"{store.url} has no text embeddings; rerun fgm-extract to finish the store")
    by_sentence = dict(zip(text["sentences"], text["sentence_emb"]))
    store_classes = store.classes
    wanted: dict[str, list[str]] = {}
    for c in classes:
        have = [s for s, o in zip(text["sentences"], text["sentence_class"]) if store_classes[o] == c]
        if not have:
            have = class_sentences([c], store.config.templates, {})[0]
        wanted[c] = have + [d for d in dataset.descriptions.get(c, []) if d not in have]
    missing = sorted({s for ws in wanted.values() for s in ws if s not in by_sentence})
    if missing:
        if text_encoder is None:
            raise ValueError(f"{len(missing)} class sentences are not in the store (e.g. {missing[0]!r}) and no "
                             "text encoder was given to encode them")
        by_sentence.update(zip(missing, text_encoder(missing)))
    rows = [(s, k) for k, c in enumerate(classes) for s in wanted[c]]
    class_emb = class_mean(np.stack([by_sentence[s] for s, _ in rows]), np.array([k for _, k in rows]), len(classes))
    return (torch.from_numpy(class_emb),
            torch.from_numpy(text["scene_emb"].astype(np.float32)), wanted)
