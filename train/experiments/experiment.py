"""An experiment: variants x seeds x folds over one feature store, pooled validation metrics, costs, reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fgm_common.console import console
from fgm_common.datasets import get_dataset
from fgm_common.options import resolve_device
from fgm_common.store import TOKENS, FeatureStore, StoreError
from fgm_common.store.mirror import local_copy
from train.parts.classifier import needs_text_tokens
from train.fitting.data import FeatureSet, load_features
from train.fitting.regions import require_boxes
from train.experiments.metrics import METRICS, accuracy, among, classification_metrics, mean_std
from train.fitting.splits import SplitSpec, few_shot, make_folds, unseen_classes
from train.experiments.fold_runs import FOLD_RUNNERS
from train.fitting.config import TrainConfig
from train.experiments.variants import Variant, get_variant
from train.experiments.tensorboard_log import summary_writer_class
from train.experiments.watch import Watch, watching


@dataclass(frozen=True)
class Experiment:
    store: str
    dataset: str = "folder"
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitSpec = field(default_factory=SplitSpec)
    seeds: tuple[int, ...] = (0,)
    variants: tuple[str, ...] = ("full",)
    out: Path = Path("runs/latest")
    resume: bool = False
    quiet: bool = False
    annotations: str | None = None  # the dataset publisher's annotation files, for adapters that take them
    shots: int = 0  # few-shot: keep this many training videos per class (0 = all)
    unseen_classes: tuple[str, ...] = ()  # zero-shot: held out of training, the only classes validated
    tensorboard: Path | None = None  # also log each training run's epochs here (train/experiments/tensorboard_log.py)
    val_curves: bool = True  # record validation accuracy per epoch, for pictures only (train/experiments/monitor.py)

    def unseen_idx(self, classes: list[str]) -> list[int]:
        missing = [c for c in self.unseen_classes if c not in classes]
        if missing:
            raise ValueError(f"--unseen-classes {missing} are not classes of this dataset: {classes}")
        return [classes.index(c) for c in self.unseen_classes]

    def validated(self, classes: list[str]) -> list[int] | None:
        """The classes validation chooses among: the held-out ones under the zero-shot protocol, else None (all)."""
        return self.unseen_idx(classes) if self.unseen_classes else None


def _clip_parts(store: FeatureStore, fs: FeatureSet, variants: list, device: str, exp_adapters: bool = True):
    """CLIP towers for token adapters / text context, only when some variant uses them."""
    if not any(v.token_adapters or v.prompt_ctx or needs_text_tokens(v.model.get("classifier", "text"))
               for v in variants):
        return None
    from train.parts.clip_parts import ClipParts, load_store_clip

    clip = load_store_clip(store, device="cpu")
    return ClipParts(clip, fs.class_sentences, fs.classes, TOKENS in fs.tensors, adapters=exp_adapters)


def _protocol(exp: Experiment, fs: FeatureSet, fold, seed: int):
    """Few-shot and zero-shot protocols on top of a split's fold (train side shrinks; val as the protocol says)."""
    if exp.unseen_classes:
        fold = unseen_classes(fold, fs.labels, exp.unseen_idx(fs.classes))
    if exp.shots:
        fold = few_shot(fold, fs.labels, exp.shots, seed)
    return fold


def run_variant(exp: Experiment, fs: FeatureSet, store: FeatureStore, name: str, clip_parts,
                watch: Watch | None = None) -> dict:
    """Every seed and fold of one variant: validation predictions pooled over folds per seed.

    `watch`: the experiment's (run_experiment's); None watches this variant alone.
    """
    if watch is None:
        with watching(exp, n_variants=1) as alone:
            alone.progress.variant(1, name)
            return run_variant(exp, fs, store, name, clip_parts, alone)
    variant = get_variant(name)
    if variant.kind not in FOLD_RUNNERS:
        raise ValueError(f"variant {name!r} has kind {variant.kind!r}; known kinds: {sorted(FOLD_RUNNERS)}")
    device = torch.device(resolve_device(exp.train.device))
    per_seed, costs, history = {}, {}, {}
    for seed_i, seed in enumerate(exp.seeds):
        cfg = TrainConfig(**{**exp.train.to_dict(), "seed": seed, "variant": name})
        folds = make_folds(SplitSpec(**{**exp.split.__dict__, "seed": seed}), fs.labels, fs.groups, fs.splits, fs.views)
        folds = [_protocol(exp, fs, f, seed) for f in folds]
        labels, logits, heads, blends, stacked, train_s, waits = [], [], {}, {}, [], 0.0, []
        for fold_i, fold in enumerate(folds):
            watch.progress.fold(seed_i, len(exp.seeds), fold_i, len(folds))
            done = FOLD_RUNNERS[variant.kind](exp, fs, store, variant, cfg, fold, clip_parts, device, watch)
            logits.append(done.logits)
            for head, z in done.heads.items():
                heads.setdefault(head, []).append(z)
            if done.blend:
                blends[fold.name] = done.blend
            if done.stacked:
                stacked.append(fold.name)
            labels.append(fs.labels[fold.val])
            train_s += done.train_seconds
            waits.append(done.data_wait_share)
            history[f"seed{seed}/{fold.name}"] = done.history
            if not costs:
                costs = done.costs()
        keep = exp.validated(fs.classes)
        y_all = np.concatenate(labels)
        y, z = among(y_all, np.concatenate(logits), keep)
        m = classification_metrics(y, z, fs.classes if keep is None else [fs.classes[c] for c in keep])
        # each head's own accuracy on the same validation videos: is fusion adding or subtracting?
        m["heads"] = {h: accuracy(*among(y_all, np.concatenate(zs), keep)) for h, zs in heads.items()}
        m.update(train_seconds=train_s, folds=[f.name for f in folds], data_wait_share=mean_std(waits)[0],
                 blend=blends, stacked_folds=stacked)
        per_seed[seed] = m
    summary = {k: mean_std([per_seed[s][k] for s in exp.seeds]) for k in METRICS}
    summary["train_seconds"] = mean_std([per_seed[s]["train_seconds"] for s in exp.seeds])
    head_acc = {h: mean_std([per_seed[s]["heads"][h] for s in exp.seeds]) for h in per_seed[exp.seeds[0]]["heads"]}
    return {"variant": name, "description": variant.description, "kind": variant.kind, "backbone": variant.backbone,
            "streams": variant.streams, "per_seed": per_seed, "mean": {k: v[0] for k, v in summary.items()},
            "std": {k: v[1] for k, v in summary.items()}, "costs": costs, "history": history,
            "heads": {h: {"mean": v[0], "std": v[1]} for h, v in head_acc.items()}}


def run_experiment(exp: Experiment) -> dict:
    """Load the store once, run every variant (resuming finished ones from disk), write metrics and report."""
    from train.experiments import report

    if exp.tensorboard is not None:
        summary_writer_class()  # refused (what to install) before the store is read
    store = FeatureStore.open(local_copy(exp.store))  # object storage: read through a local copy, updated now
    store.url = exp.store  # what checkpoints and reports name
    dataset = get_dataset(exp.dataset, exp.annotations)
    if exp.split.protocol == "auto" and getattr(dataset, "protocol", "auto") != "auto":
        exp = replace(exp, split=replace(exp.split, protocol=dataset.protocol))  # the dataset's own protocol
    console.print(f"split protocol: {exp.split.protocol}")
    variants = [get_variant(v) for v in exp.variants]
    extra = _extra_arrays(store, exp, variants)
    needing = [v.name for v in variants if v.needs_regions]
    if needing:  # refused before any training, naming the variants that can run on this store
        require_boxes(store.config, exp.store, f"variant(s) {', '.join(needing)}",
                      tuple(v.name for v in variants if not v.needs_regions))
    fs = load_features(store, dataset, n_frames=exp.train.n_frames or None, tokens=_wants_tokens(store, exp),
                       text_encoder=lambda sentences: _store_text_encoder(store)(sentences), extra=extra,
                       regions=bool(needing))
    console.print(f"features loaded from {exp.store}: {len(fs)} videos, {len(fs.classes)} classes, "
                  f"in {fs.load_seconds:.2f} s (no video decoded); T = {fs.dims['n_frames']} frames per video, "
                  f"{fs.steps_why}")
    if fs.skipped:
        console.print(f"[yellow]{len(fs.skipped)} entries have no label under dataset {exp.dataset!r}; "
                      f"e.g. {next(iter(fs.skipped.values()))}[/yellow]")
    identity = store.clip_identity
    if identity.get("random_weights"):
        console.print("[bold yellow]CLIP weights in this store are RANDOM (--pretrained none): figures say nothing "
                      "about pretrained CLIP.[/bold yellow]")
    exp.out.mkdir(parents=True, exist_ok=True)
    clip_parts = _clip_parts(store, fs, variants, exp.train.device, exp.train.clip_adapters)
    results = {}
    settings = _settings(exp)
    with watching(exp, len(exp.variants)) as watch:
        for i, name in enumerate(exp.variants, 1):
            watch.progress.variant(i, name)
            done = exp.out / name / "result.json"
            # a finished result is reused only for the same settings; otherwise the per-fold checkpoints
            # decide (resume exactly, or refuse changed settings) instead of reporting stale figures
            if exp.resume and done.exists() and json.loads(done.read_text()).get("settings") == settings:
                console.print(f"{name}: finished in an earlier run, loaded from {done}")
                results[name] = json.loads(done.read_text())
                watch.progress.skip()
                continue
            result = {**run_variant(exp, fs, store, name, clip_parts, watch), "settings": settings}
            results[name] = json.loads(json.dumps(result, default=float))
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(results[name], indent=1))
            watch.progress.variant_done()
            console.print(f"{name} done ({i}/{len(exp.variants)}): validation accuracy "
                          f"{100 * result['mean']['accuracy']:.1f}% (mean over {len(exp.seeds)} seed(s))")
    n_frames = fs.dims["n_frames"]
    used = dict.fromkeys(results[n].get("backbone", "clip") for n in exp.variants)  # the variants' backbones
    # each backbone costed once: "clip" is both the summary's own backbone and usually one of `used`
    costed = {b: _backbone_costs(b, store, n_frames) for b in dict.fromkeys(["clip", *used])}
    summary = {
        "store": str(exp.store), "dataset": exp.dataset, "videos": len(fs), "classes": fs.classes,
        "clip": identity, "random_clip_weights": bool(identity.get("random_weights")),
        "extract_config": store.config.to_dict(), "train_config": exp.train.to_dict(),
        "split": exp.split.__dict__, "seeds": list(exp.seeds), "data_load_seconds": fs.load_seconds,
        "n_frames": n_frames, "backbone": costed["clip"], "backbones": {b: costed[b] for b in used},
        "backbone_identity": store.backbone_identity,
        "extract_ms_per_video": _extract_ms(store), "variants": results,
    }
    (exp.out / "metrics.json").write_text(json.dumps(summary, indent=1, default=float))
    report.write_report(summary, exp.out)
    report.print_table(summary)
    return summary


def _store_text_encoder(store: FeatureStore):
    """The store's own CLIP text tower, for class sentences the store lacks (loaded only when needed)."""
    from train.parts.clip_parts import load_store_clip

    console.print("encoding class sentences missing from the store with the store's CLIP text tower")
    return load_store_clip(store, device="cpu").encode_texts


def _settings(exp: Experiment) -> dict:
    """What a variant's result depends on besides the store, JSON-safe: checked before reusing result.json."""
    return json.loads(json.dumps({"dataset": exp.dataset, "train": exp.train.to_dict(),
                                  "split": exp.split.__dict__, "seeds": list(exp.seeds), "shots": exp.shots,
                                  "unseen_classes": list(exp.unseen_classes), "annotations": exp.annotations}))


def _extra_arrays(store: FeatureStore, exp: Experiment, variants: list[Variant]) -> tuple[str, ...]:
    """The extra backbone arrays the variants read (e.g. resnet50); a clear error before any training if absent."""
    extra = tuple(dict.fromkeys(a for v in variants for a in v.extra_arrays))
    missing = [a for a in extra if a not in store.config.backbones]
    if missing:
        needing = [v.name for v in variants if set(v.extra_arrays) & set(missing)]
        others = ",".join(v.name for v in variants if v.name not in needing)
        raise StoreError(
            f"variant(s) {', '.join(needing)} read {', '.join(missing)} features, which {exp.store} does not hold: "
            f"add them with `fgm-extract VIDEOS --out {exp.store} " + " ".join(f"--backbone {m}" for m in missing)
            + "` (only the new features are computed)" + (f", or run the others: --variants {others}" if others else "")
        )
    return extra


def _backbone_costs(name: str, store: FeatureStore, n_frames: int) -> dict:
    """Frozen image backbone per video (n_frames images): params (M), GFLOPs; architecture only, no weights."""
    return BACKBONE_COSTS.get(name, _torchvision_costs)(name, store, n_frames)


def _clip_costs(name: str, store: FeatureStore, n_frames: int) -> dict:
    from train.experiments.costs import backbone_costs

    return backbone_costs(store.config.clip_model, n_frames)


def _no_costs(name: str, store: FeatureStore, n_frames: int) -> dict:
    return {"backbone_params_M": 0.0, "backbone_gflops_per_video": 0.0}


def _torchvision_costs(name: str, store: FeatureStore, n_frames: int) -> dict:
    """A stage-one torchvision backbone (extract.backbones) at its ImageNet input size (224 px crop)."""
    import torch
    import torchvision

    from extract.backbones import BACKBONES, IMAGENET_CROP
    from train.experiments.costs import flops

    spec = BACKBONES[name]
    model = torchvision.models.get_model(spec.arch, weights=None).eval()
    setattr(model, spec.head, torch.nn.Identity())  # stage one keeps the pooled features, not the logits
    per_image = flops(model, torch.zeros(1, 3, IMAGENET_CROP, IMAGENET_CROP))
    return {"backbone_params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "backbone_gflops_per_video": per_image * n_frames, "image_size": IMAGENET_CROP}


# Variant.backbone -> its per-video cost; names not listed are torchvision backbones of extract.backbones
BACKBONE_COSTS = {"clip": _clip_costs, "none": _no_costs}


def _wants_tokens(store: FeatureStore, exp: Experiment) -> bool:
    return store.config.tokens and exp.train.clip_adapters and any(get_variant(v).token_adapters for v in exp.variants)


def _extract_ms(store: FeatureStore) -> float:
    """Stage one's wall time per extracted video, from the store's run records (runs that extracted something).

    Throughput, not the per-entry `extract_seconds`: the pipeline overlaps videos, so an entry's own
    wall time also counts its wait in the queue behind the previous one.
    """
    runs = [r for r in store.runs() if r.get("extracted")]
    videos = sum(r["extracted"] for r in runs)
    return 1000 * sum(r["seconds"] for r in runs) / videos if videos else float("nan")
