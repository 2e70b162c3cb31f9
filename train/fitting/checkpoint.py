"""The fold checkpoint: its schema, atomic save, safe load and the model rebuilt from it.

fgm-train writes one per fold after every epoch (train.fitting.trainer.Trainer.save); fgm-predict and
`--resume` read it back. It holds plain tensors and containers only (loaded with weights_only=True):
the model and train configs, the trainable weights (the frozen CLIP copies are rebuilt from the
store's CLIP, whose hash it records), optimiser and scheduler state, RNG state, the history, and
the extras the experiment adds (classes, class texts, extract config, CLIP identity, variant).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from train.parts.classifier import interaction_inputs_from_state, needs_text_tokens
from train.parts.model import CLIP_PART_MODULES, FGMCLIP, build_model
from train.parts.model_config import ModelConfig
from train.fitting.variant import Variant

CHECKPOINT_FORMAT = 1
# What a checkpoint must hold to rebuild its model and label new videos.
REQUIRED_KEYS = ("model_config", "model", "classes", "class_text", "scene_text", "class_sentences",
                 "extract_config", "clip_identity")


class CheckpointError(ValueError):
    """A file that cannot serve as this fgm's checkpoint; the message says what to pass instead."""


def save_checkpoint(ckpt: dict, path: Path) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **ckpt}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, device: str | torch.device = "cpu", required: tuple[str, ...] = REQUIRED_KEYS) -> dict:
    """The checkpoint dict, read with weights_only=True onto `device`; CheckpointError when it is not one."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"no checkpoint at {path}; fgm-train writes OUT/<variant>/seed<s>/<fold>/checkpoint.pt") from e
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not an fgm-train checkpoint (it lacks {missing}); pass the checkpoint.pt "
                              "that fgm-train wrote")
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {ckpt.get('format')}, this fgm reads "
                              f"{CHECKPOINT_FORMAT}; use the fgm release that trained it")
    return ckpt


def classifier_inputs(name: str, clip_parts=None, state: dict | None = None) -> dict | None:
    """What classifier `name` needs besides (hidden, class_text): from the store's CLIP, or from saved weights.

    A classifier that scores class-sentence tokens (`needs_text_tokens`) takes them from
    `clip_parts` (ClipParts) when a model is first built, and from its own saved buffers (`state`,
    a model state dict) when a checkpoint is rebuilt, so prediction needs no text tower for them.
    """
    if not needs_text_tokens(name):
        return None
    if state is not None:
        return interaction_inputs_from_state(state)
    if clip_parts is None:
        raise ValueError(f"the {name} classifier needs the store's CLIP text tower (clip_parts)")
    return clip_parts.interaction_inputs()


def needs_clip(state: dict) -> bool:
    """True when the saved model has parts built from CLIP's towers (token adapters, text context)."""
    return any(k.startswith(tuple(f"{m}." for m in CLIP_PART_MODULES)) for k in state)


def rebuild_model(ckpt: dict, clip=None) -> FGMCLIP:
    """The trained model in eval mode, its weights loaded strictly; `clip` (FrozenClip) when needs_clip.

    Raises CheckpointError when the rebuilt model and the saved weights do not match.
    """
    mcfg = ModelConfig.from_dict(ckpt["model_config"])
    state = ckpt["model"]
    tail = prompt = None
    if needs_clip(state):
        from train.parts.clip_parts import ClipParts

        # The state dict, not the variant registry, says which CLIP parts were trained.
        has_tail = any(k.startswith("token_tail.") for k in state)
        n_ctx = int(state["prompt_learner.ctx"].shape[0]) if "prompt_learner.ctx" in state else 0
        parts = ClipParts(clip, ckpt["class_sentences"], ckpt["classes"], has_tokens=has_tail)
        tail, prompt = parts(Variant(ckpt.get("variant", ""), token_adapters=has_tail, prompt_ctx=n_ctx), mcfg)
    model = build_model(mcfg, ckpt["class_text"], ckpt["scene_text"], token_tail=tail, prompt_learner=prompt,
                        classifier_inputs=classifier_inputs(mcfg.classifier, state=state))
    try:
        model.load_checkpoint_state(state)
    except RuntimeError as e:
        raise CheckpointError(f"the model rebuilt from the checkpoint does not match its weights: {e}") from e
    return model.eval()
