"""Label new videos with a trained checkpoint: extract them as its store was made, then top-k softmax classes.

The checkpoint carries everything needed (Trainer.save): the extract config, the identity of the CLIP
weights that made the training features, the model config and weights, the class list and texts. The
videos go through the normal extraction (extract.api.extract) into a temporary store, so the
features are made by the same code, settings and weights as the training store's.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from extract.inputs import MANIFEST_EXTS, Discovery, VideoItem, discover
from fgm_common.config import ExtractConfig
from fgm_common.console import console, progress_bar
from fgm_common.options import resolve_device
from fgm_common.identity import IDENTITY_HASHES, weights_mismatch
from fgm_common.store import CLIP, FLOW_STEP_ARRAYS, MODEL_ARRAYS, TOKENS, FeatureStore
from train.fitting.data import region_arrays, resample
from train.fitting.regions import require_boxes
from train.fitting.checkpoint import load_checkpoint, needs_clip, rebuild_model
from train.parts.model import FGMCLIP
from train.parts.model_config import ModelConfig
from train.inference.options import PredictOptions


class PredictError(ValueError):
    """The checkpoint cannot label videos as asked; the message says what to do."""


@dataclass
class VideoPrediction:
    """One input video: `top` = k (class, softmax score) pairs, best first, and `logits` (C,); or why it failed."""

    video: str
    ok: bool
    top: list[tuple[str, float]] = field(default_factory=list)
    logits: list[float] = field(default_factory=list)
    reason: str = ""
    message: str = ""


@dataclass
class PredictReport:
    """Every input video in input order, with the checkpoint's classes and CLIP identity."""

    checkpoint: str
    variant: str
    classes: list[str]
    clip: dict
    videos: list[VideoPrediction]

    @property
    def failed(self) -> list[VideoPrediction]:
        return [v for v in self.videos if not v.ok]

    def to_json(self) -> dict:
        return {"checkpoint": self.checkpoint, "variant": self.variant, "classes": self.classes,
                "clip": self.clip, "random_clip_weights": bool(self.clip.get("random_weights")),
                "videos": [{**dataclasses.asdict(v), "top": [{"class": c, "score": s} for c, s in v.top]}
                           for v in self.videos]}


# ---- checkpoint and model -------------------------------------------------------------------------
def check_clip_identity(expected: dict, actual: dict, where: str) -> None:
    """Refuse features from other CLIP weights than the checkpoint was trained on (hash mismatch)."""
    if key := weights_mismatch(expected, actual):
        raise PredictError(
            f"the CLIP weights {where} differ from those the checkpoint was trained on ({key} "
            f"{str(actual.get(key))[:12]} vs {expected[key][:12]}); its predictions would be meaningless. "
            "Use the same CLIP weights file (or, for --pretrained none, the same open_clip and fgm versions)."
        )


# ---- videos and features --------------------------------------------------------------------------
def video_items(paths: list[Path]) -> list[VideoItem]:
    """Video files, folders of videos, or manifests -> unlabelled items keyed by their path (duplicates once)."""
    items: dict[str, VideoItem] = {}
    for p in map(Path, paths):
        found = discover(p).items if p.is_dir() or p.suffix.lower() in MANIFEST_EXTS else [VideoItem(str(p), str(p))]
        for it in found:
            key = it.path + (f"#{it.key.split('#', 1)[1]}" if "#" in it.key else "")  # sub-clips stay distinct
            items.setdefault(key, VideoItem(key, it.path, start_ms=it.start_ms, end_ms=it.end_ms))
    return list(items.values())


def read_features(store: FeatureStore, keys: list[str], mcfg: ModelConfig, tokens: bool) -> dict[str, torch.Tensor]:
    """Entries resampled as for training (train.fitting.data.load_features): clip (N, T, D), flow (N, Tf, 2, G, G),
    flow_hist (N, Tf, H), optionally tokens (N, T, L, W), and the region slots (N, Tf, K, ...) when the model
    reads them (a store without boxes is refused), with T, Tf the model's n_frames, n_flow."""
    names = MODEL_ARRAYS + ((TOKENS,) if tokens else ())
    if mcfg.needs_regions:
        require_boxes(store.config, store.url, "this checkpoint's model")
    rows = [store.read(k, names) for k in keys]
    out = {}
    for n in names:
        steps = mcfg.n_flow if n in FLOW_STEP_ARRAYS else mcfg.n_frames
        out[n] = torch.from_numpy(np.stack([resample(r[n], steps) for r in rows])) if rows else torch.zeros(0)
    if mcfg.needs_regions and rows:
        regions = [region_arrays(store, k, mcfg.n_flow) for k in keys]
        out.update({n: torch.from_numpy(np.stack([r[n] for r in regions])) for n in regions[0]})
    return out


@torch.no_grad()
def batched_logits(model: FGMCLIP, tensors: dict[str, torch.Tensor], device: torch.device,
                   batch_size: int = 32) -> np.ndarray:
    """Eval-mode logits (N, C) over feature tensors (N, ...), cast to float32 as FeatureSet.batch does."""
    n = len(tensors[CLIP])
    out = [torch.zeros(0, model.cfg.n_classes)]
    for i in range(0, n, batch_size):
        batch = {k: v[i : i + batch_size].float().to(device) for k, v in tensors.items()}
        out.append(model(batch)["logits"].float().cpu())
    return torch.cat(out).numpy()


def top_k(logits: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """Logits (N, C) -> per row the k best (class, softmax score), scores descending."""
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)  # (N, C)
    scores, idx = probs.topk(min(k, len(classes)), dim=-1)  # (N, k), sorted
    return [[(classes[j], float(s)) for s, j in zip(srow, irow)] for srow, irow in zip(scores.tolist(), idx.tolist())]


# ---- the whole job --------------------------------------------------------------------------------
def _extract(items: list[VideoItem], config: ExtractConfig, url: str, options: PredictOptions):
    """The library extraction (extract.api) into a fresh store, with a progress bar; returns its Summary."""
    from extract.api import extract
    from extract.runner import RunOptions

    bar = progress_bar(options.quiet)
    with bar:
        task = bar.add_task("extract", total=len(items), rate="")

        def on_result(_res) -> None:
            bar.update(task, advance=1)

        return extract(Discovery(items, [], Path.cwd()), url, config,
                       RunOptions(device=options.device, batch_size=options.batch_size), on_result=on_result)


def predict_videos(checkpoint: Path, videos: list[Path], options: PredictOptions = PredictOptions()) -> PredictReport:
    """Extract `videos` with the checkpoint's extract config and label them; failed videos are reported, not raised.

    Raises PredictError when the checkpoint is unusable or its CLIP weights cannot be rebuilt identically.
    """
    from extract.clip_model import load_clip
    from extract.flow import resolve_backend

    ckpt = load_checkpoint(Path(checkpoint))
    config = ExtractConfig.from_dict(ckpt["extract_config"])
    if ModelConfig.from_dict(ckpt["model_config"]).needs_regions:  # before any video is decoded
        require_boxes(config, f"the store {checkpoint} was trained on (its extract config)", "this checkpoint's model")
    try:
        resolve_backend(config.flow.backend, allow_auto=False)
    except (RuntimeError, ValueError) as e:
        raise PredictError(f"the checkpoint's features were made with flow backend {config.flow.backend!r}, "
                           f"which this machine cannot run, and another backend gives other features: {e}") from e
    expected = ckpt["clip_identity"]
    if not any(expected.get(k) for k in IDENTITY_HASHES):
        console.print("[yellow]the checkpoint records no CLIP weights hash: cannot prove that new features match "
                      "the training features[/yellow]")
    # Checked before any video is decoded: a mismatch fails in seconds, not after a long extraction.
    clip = load_clip(config.clip_model, config.pretrained, config.random_seed, device="cpu")
    check_clip_identity(expected, clip.identity, "rebuilt now")
    model = rebuild_model(ckpt, clip if needs_clip(ckpt["model"]) else None)
    del clip  # the parts hold their own copies; the extractor loads its own towers
    device = torch.device(resolve_device(options.device))
    model.to(device)
    if not ckpt.get("done", True):
        console.print(f"[yellow]training had not finished: epoch {ckpt.get('epoch')} of "
                      f"{ckpt.get('train_config', {}).get('epochs')}[/yellow]")
    items = video_items(videos)
    if not items:
        raise PredictError(f"no videos found in {', '.join(map(str, videos))}")
    with tempfile.TemporaryDirectory(prefix="fgm-predict-") as tmp:
        url = str(Path(tmp) / "store")
        summary = _extract(items, config, url, options)
        store = FeatureStore.open(url)
        check_clip_identity(expected, store.clip_identity, "that extracted these videos")
        done = {e.key for e in store.entries()}
        ok_keys = [it.key for it in items if it.key in done]
        tensors = read_features(store, ok_keys, model.cfg, tokens=model.token_tail is not None)
    logits = batched_logits(model, tensors, device, options.batch_size)  # (N_ok, C)
    tops = top_k(logits, ckpt["classes"], options.top_k)
    by_key = {k: VideoPrediction(k, True, t, [float(x) for x in z]) for k, t, z in zip(ok_keys, tops, logits)}
    for res in summary.failed:
        by_key[res.key] = VideoPrediction(res.key, False, reason=res.reason, message=res.message)
    lost = VideoPrediction("", False, reason="not-extracted", message="the extraction reported nothing for it")
    return PredictReport(str(checkpoint), ckpt.get("variant", ""), list(ckpt["classes"]), dict(expected),
                         [by_key.get(it.key, dataclasses.replace(lost, video=it.key)) for it in items])


def print_report(report: PredictReport) -> None:
    """One table row per video: its top-k classes with softmax scores, or why it failed."""
    from rich.table import Table

    k = max((len(v.top) for v in report.videos), default=0)
    table = Table(title=f"fgm-predict: {report.variant} ({len(report.classes)} classes)")
    table.add_column("video", overflow="fold")
    table.add_column(f"top-{k} (softmax score)")
    for v in report.videos:
        cell = "\n".join(f"{s:.3f} {c}" for c, s in v.top) if v.ok else f"[red]FAILED {v.reason}[/red]: {v.message}"
        table.add_row(v.video, cell)
    console.print(table)
    if report.clip.get("random_weights"):
        console.print("[bold yellow]this checkpoint was trained on RANDOM CLIP weights (--pretrained none): "
                      "its labels carry no pretrained knowledge[/bold yellow]")


def run_predict(checkpoint: Path, videos: list[Path], options: PredictOptions, json_out: Path | None = None) -> PredictReport:
    """predict_videos, then the table, then the JSON file when asked (the fgm-predict command)."""
    if options.top_k < 1:
        raise PredictError("--top-k must be at least 1")
    report = predict_videos(checkpoint, videos, options)
    print_report(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_json(), indent=1))
    return report
