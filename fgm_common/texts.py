"""Class sentences and the scene bank that the CLIP text tower encodes (paper section 3.1, Eq. 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Scenes for the contextual prior (Eq. 12): each frame's similarity to these gives its scene cues.
SCENE_BANK: tuple[str, ...] = (
    "a photo of an indoor gym.",
    "a photo of a sports field outdoors.",
    "a photo of a swimming pool.",
    "a photo of a living room.",
    "a photo of a city street.",
    "a photo of a stage with spotlights.",
    "a photo of a plain studio background.",
    "a photo of a park with trees.",
    "a photo of a beach.",
    "a photo of a snowy mountain.",
    "a photo of an office.",
    "a photo of a kitchen.",
    "a photo of a running track.",
    "a photo of a golf course.",
    "a photo of a gymnastics arena.",
    "a photo of a corridor.",
)


def readable(label: str) -> str:
    """'arms_forward_overhead' -> 'arms forward overhead'."""
    return label.replace("_", " ").replace("-", " ").strip()


def load_descriptions(path: Path | None) -> dict[str, list[str]]:
    """Read a descriptions file: JSON {class: [sentence, ...]} or lines 'class: sentence'."""
    if path is None:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError(f"{path}: expected a JSON object {{class: [sentences]}}")
        return {str(k): [str(s) for s in v] for k, v in data.items()}
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if ":" not in line:
            raise ValueError(f"{path}:{n}: expected 'class: sentence', got {line!r}")
        cls, sentence = line.split(":", 1)
        out.setdefault(cls.strip(), []).append(sentence.strip())
    return out


def class_sentences(
    classes: list[str], templates: tuple[str, ...], descriptions: dict[str, list[str]]
) -> tuple[list[str], list[int]]:
    """All sentences to encode and the class index of each: templates on the label, then descriptions."""
    sentences, owner = [], []
    for c, label in enumerate(classes):
        for s in [t.format(label=readable(label)) for t in templates] + descriptions.get(label, []):
            sentences.append(s)
            owner.append(c)
    return sentences, owner


def class_mean(sentence_emb: np.ndarray, sentence_class: np.ndarray, n_classes: int) -> np.ndarray:
    """A class's text embedding: the mean of its unit sentence embeddings, made unit: (S, D), (S,) -> (C, D).

    The one definition; train.parts.adapter's learnable text context computes the same in torch (with gradients).
    """
    emb, owner = unit(np.asarray(sentence_emb, dtype=np.float32)), np.asarray(sentence_class)
    return unit(np.stack([emb[owner == c].mean(0) for c in range(n_classes)])).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    """x (..., D) scaled to unit length along the last axis (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
