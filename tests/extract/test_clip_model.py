"""CLIP loading: reproducible random weights, shapes from the model config, the tokens hook, weight errors, checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from extract.clip_model import ClipWeightsError, last_vision_block, load_clip, state_sha256
from fgm_common.options import resolve_device

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = "fgm-tiny-vit"
TINY_CFG = json.loads((REPO_ROOT / "extract" / "model_configs" / f"{TINY}.json").read_text())


@pytest.fixture(scope="module")
def tiny():
    return load_clip(TINY, "none", random_seed=0, device="cpu")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(5)]  # RGB, not square


def test_random_weights_reproducible_by_seed(tiny, frames):
    again = load_clip(TINY, "none", random_seed=0, device="cpu")
    other = load_clip(TINY, "random", random_seed=1, device="cpu")
    assert tiny.identity["random_weights"] is True and tiny.identity["random_seed"] == 0
    assert tiny.identity["weights_sha256"] == again.identity["weights_sha256"] == state_sha256(again.model)
    assert other.identity["weights_sha256"] != tiny.identity["weights_sha256"]
    np.testing.assert_array_equal(tiny.encode_frames(frames)[0], again.encode_frames(frames)[0])
    assert not np.allclose(tiny.encode_frames(frames)[0], other.encode_frames(frames)[0])


def test_frozen_eval_mode(tiny):
    assert not tiny.model.training
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_embedding_and_token_shapes_follow_the_model_config(tiny, frames):
    emb, tok = tiny.encode_frames(frames)
    assert emb.shape == (5, TINY_CFG["embed_dim"]) and emb.dtype == np.float32 and tok is None
    assert tiny.embed_dim == TINY_CFG["embed_dim"] == tiny.identity["embed_dim"]
    vision = TINY_CFG["vision_cfg"]
    n_tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1  # patches + class token
    emb2, tok = tiny.encode_frames(frames, tokens=True)
    assert tok.shape == (5, n_tokens, vision["width"]) and tok.dtype == np.float32
    np.testing.assert_array_equal(emb, emb2)  # the hook observes, it changes nothing


def test_tokens_are_the_input_of_the_last_block(tiny, frames):
    """Last block + ln_post + class-token pooling + proj applied by hand to the tokens gives encode_image."""
    visual = tiny.model.visual
    # The tiny ViT pools the class token after ln_post (open_clip VisionTransformer._pool, pool_type 'tok').
    assert visual.pool_type == "tok" and not visual.final_ln_after_pool and visual.attn_pool is None
    assert visual.transformer.batch_first  # tokens are (N, L, W), not (L, N, W)
    emb, tok = tiny.encode_frames(frames, tokens=True)
    with torch.no_grad():
        x = last_vision_block(tiny.model)(torch.from_numpy(tok))  # (N, L, W)
        by_hand = (visual.ln_post(x)[:, 0] @ visual.proj).numpy()  # (N, D)
        from_first_block = (visual.ln_post(visual.transformer.resblocks[0](torch.from_numpy(tok)))[:, 0]
                            @ visual.proj).numpy()
    np.testing.assert_allclose(by_hand, emb, atol=1e-5, rtol=1e-5)
    assert not np.allclose(from_first_block, emb, atol=1e-3)  # the check can tell blocks apart


def test_threads_encoding_at_once_each_get_their_own_tokens(tiny, frames):
    """Tower.parallel runs encode_batch from several threads on one model: tokens must not cross over."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [tiny.preprocess_frames(frames[i:] + frames[:i]) for i in range(len(frames))]  # (5, 3, S, S) each
    alone = [tiny.encode_batch(b, tokens=True) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda b: tiny.encode_batch(b, tokens=True), batches * 8))
    for i, (emb, tok) in enumerate(together):
        np.testing.assert_allclose(emb, alone[i % len(batches)][0], atol=1e-5)
        np.testing.assert_allclose(tok, alone[i % len(batches)][1], atol=1e-5)
    assert len(last_vision_block(tiny.model)._forward_pre_hooks) == 1  # one hook for the model's life


def test_text_embeddings(tiny):
    out = tiny.encode_texts(["a video of a person waving.", "a photo of a beach.", "x"], batch_size=2)
    assert out.shape == (3, TINY_CFG["embed_dim"]) and out.dtype == np.float32
    assert not np.allclose(out[0], out[1])
    assert tiny.encode_texts([]).shape == (0, TINY_CFG["embed_dim"])


@pytest.mark.parametrize("name", ["fgm-tiny-vit", "ViT-B-32"])
def test_text_runs_only_to_the_last_end_token_and_equals_encode_text(name):
    clip = load_clip(name, "none", random_seed=0, device="cpu")
    sentences = ["a video of a person waving.", "x", "a long sentence " * 30]  # the last fills the context
    for batch in (sentences[:2], sentences):
        ids = clip.tokenizer(batch)  # (b, context_length)
        with torch.inference_mode():
            full = clip.model.encode_text(ids).numpy()  # (b, D)
        np.testing.assert_allclose(clip.encode_texts(batch), full, atol=2e-5, rtol=0)


def test_unknown_model_and_unknown_tag():
    with pytest.raises(ValueError, match="unknown CLIP model"):
        load_clip("no-such-model", "none", device="cpu")
    with pytest.raises(ClipWeightsError, match="tags: none") as e:
        load_clip(TINY, "openai", device="cpu")
    assert "--pretrained none" in str(e.value)
    with pytest.raises(ClipWeightsError, match="openai"):  # the tags of a model that has some
        load_clip("ViT-B-32", "no_such_tag", device="cpu")


def test_known_tag_without_network_names_the_ways_out(tmp_path):
    """HF_HUB_OFFLINE=1 and an empty cache: the hub is not retried, the error lists what to do."""
    code = (
        "import sys\n"
        "from extract.clip_model import ClipWeightsError, load_clip\n"
        "try:\n"
        f"    load_clip('ViT-B-32', 'openai', device='cpu', cache_dir={str(tmp_path / 'cache')!r})\n"
        "except ClipWeightsError as e:\n"
        "    print('CLIPWEIGHTSERROR', e)\n"
        "    sys.exit(3)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stdout
    assert "CLIPWEIGHTSERROR" in message and "ViT-B-32/openai" in message
    for way_out in ("--pretrained /path", "--clip-cache-dir", "--pretrained none"):
        assert way_out in message


def test_local_checkpoint_loads_the_same_weights(tiny, frames, tmp_path):
    seeded = load_clip(TINY, "none", random_seed=7, device="cpu")
    path = tmp_path / "tiny.pt"
    torch.save(seeded.model.state_dict(), path)
    loaded = load_clip(TINY, str(path), device="cpu")
    assert loaded.identity["random_weights"] is False
    assert loaded.identity["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert state_sha256(loaded.model) == seeded.identity["weights_sha256"] != tiny.identity["weights_sha256"]
    np.testing.assert_array_equal(loaded.encode_frames(frames)[0], seeded.encode_frames(frames)[0])
    np.testing.assert_array_equal(loaded.encode_texts(["hello"]), seeded.encode_texts(["hello"]))


def test_devices_and_non_vit_towers():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--tokens needs a ViT"):
        last_vision_block(types.SimpleNamespace(visual=object()))
