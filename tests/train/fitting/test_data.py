"""load_features over a tiny store: shapes and sizes from the store, labels, skipped entries, class texts, resample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.store import FeatureStore
from fgm_common.texts import class_sentences
from train.fitting.data import load_features, resample

TINY_CLASSES = ["circle_clockwise", "circle_counterclockwise", "swing_slow"]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Adapter:
    """A test adapter: `label_of(key)` gives the label, or None for a key it cannot label."""

    name = "test"

    def __init__(self, label_of, descriptions=None):
        self.label_of = label_of
        self.descriptions = descriptions or {}

    def annotate(self, key, meta):
        label = self.label_of(key)
        if label is None:
            raise LayoutError(f"{key}: not in this dataset")
        return Annotation(label, group="g" + key[-5], view="v1", split="train")


class FakeEncoder:
    """Text encoder stand-in: a fixed vector per sentence (seeded by its text), and a log of what it was asked."""

    def __init__(self, dim: int):
        self.dim, self.calls = dim, []

    def vector(self, sentence: str) -> np.ndarray:
        seed = sum(sentence.encode())
        return np.random.default_rng(seed).normal(size=self.dim).astype(np.float32) * 3.0  # not unit length

    def __call__(self, sentences):
        self.calls.append(list(sentences))
        return np.stack([self.vector(s) for s in sentences])


def parent(key: str) -> str:
    return key.split("/")[-2]


# ---- resample ---------------------------------------------------------------------------------
def test_resample_picks_segment_midpoints():
    assert resample(np.arange(10), 5).tolist() == [1, 3, 5, 7, 9]
    assert resample(np.arange(3), 6).tolist() == [0, 0, 1, 1, 2, 2]  # upsampling repeats rows
    assert resample(np.arange(7), 1).tolist() == [3]
    x = np.arange(24).reshape(4, 3, 2)
    assert np.array_equal(resample(x, 2), x[[1, 3]])  # rows keep their trailing shape


def test_resample_identity_when_lengths_match():
    x = np.arange(12.0).reshape(6, 2)
    assert resample(x, 6) is x


# ---- shapes and sizes -------------------------------------------------------------------------
def test_shapes_and_dims_come_from_the_store(store, fs):
    cfg = store.config
    first = store.read(store.entries()[0])
    t, d = first["clip"].shape
    tf = first["flow"].shape[0]
    n_tok, width = first["tokens"].shape[1:]
    g, hist = cfg.flow.grid, 2 * cfg.flow.hist_bins
    assert (t, tf, g) != (16, 16, 56)  # the tiny store differs from every default, so no constant passes
    assert t == cfg.num_frames and tf == t - 1  # sampled flow pairs: T-1 fields
    n = len(store.entries())
    assert len(fs) == n == 6
    assert fs.tensors["clip"].shape == (n, t, d)
    assert fs.tensors["flow"].shape == (n, tf, 2, g, g)
    assert fs.tensors["flow_hist"].shape == (n, tf, hist)
    assert fs.tensors["tokens"].shape == (n, t, n_tok, width)
    assert fs.dims == {"clip_dim": d, "n_frames": t, "n_flow": tf, "flow_grid": g, "flow_hist_dim": hist,
                       "n_regions": 0}  # no regions loaded
    assert fs.class_text.shape == (3, d) and fs.class_text.dtype == torch.float32
    assert fs.scene_text.shape == (len(store.text()["scenes"]), d)
    assert fs.skipped == {} and fs.load_seconds > 0


def test_values_are_the_stored_arrays(store, fs):
    for i, key in enumerate(fs.keys):
        arrays = store.read(key, ("clip", "flow", "tokens"))
        assert np.array_equal(fs.tensors["clip"][i].numpy(), arrays["clip"])
        assert np.array_equal(fs.tensors["flow"][i].numpy(), arrays["flow"])
        assert np.array_equal(fs.tensors["tokens"][i].numpy(), arrays["tokens"])


def test_tokens_only_when_asked(store):
    assert "tokens" not in load_features(store, get_dataset("folder")).tensors


def test_n_frames_resamples_frames_and_flow(store):
    fs4 = load_features(store, get_dataset("folder"), n_frames=4)
    assert fs4.dims["n_frames"] == 4 and fs4.dims["n_flow"] == 3
    clip = store.read(fs4.keys[0], ("clip",))["clip"]
    assert np.array_equal(fs4.tensors["clip"][0].numpy(), resample(clip, 4))


def test_batch_gathers_by_dataset_index(fs):
    b = fs.batch(np.array([4, 1]))
    assert b["index"].tolist() == [4, 1]
    assert b["label"].tolist() == [fs.labels[4], fs.labels[1]]
    assert torch.equal(b["clip"], fs.tensors["clip"][[4, 1]])
    assert all(b[k].dtype == torch.float32 for k in ("clip", "flow", "flow_hist", "tokens"))  # f16 stored


# ---- labels -----------------------------------------------------------------------------------
def test_folder_labels(fs):
    assert fs.classes == TINY_CLASSES
    assert [fs.classes[y] for y in fs.labels] == [parent(k) for k in fs.keys]
    assert fs.labels.dtype == np.int64
    assert set(fs.groups) == set(fs.views) == set(fs.splits) == {""}  # the folder layout has none


def test_adapter_fields_are_kept(store):
    fs = load_features(store, Adapter(parent))
    assert fs.groups.tolist() == ["g" + k[-5] for k in fs.keys]
    assert set(fs.views) == {"v1"} and set(fs.splits) == {"train"}


def test_unlabelled_entries_are_skipped_and_listed(store):
    drop = "swing_slow"
    fs = load_features(store, Adapter(lambda k: None if parent(k) == drop else parent(k)))
    skipped = [e.key for e in store.entries() if parent(e.key) == drop]
    assert sorted(fs.skipped) == skipped and len(skipped) == 2
    assert all("not in this dataset" in why for why in fs.skipped.values())
    assert fs.classes == TINY_CLASSES[:2]  # classes are those present
    assert len(fs) == 4 and not set(fs.keys) & set(skipped)
    assert fs.class_text.shape[0] == 2
    assert fs.tensors["clip"].shape[0] == 4


def test_no_labelled_entry_is_an_error(store):
    with pytest.raises(ValueError, match="no labelled videos"):
        load_features(store, Adapter(lambda k: None))


# ---- class texts ------------------------------------------------------------------------------
def test_class_text_is_the_normalised_mean_of_the_stores_sentences(store, fs):
    text = store.text()
    for c, name in enumerate(fs.classes):
        own = [i for i, o in enumerate(text["sentence_class"]) if store.classes[o] == name]
        assert fs.class_sentences[name] == [text["sentences"][i] for i in own]
        expected = unit(unit(text["sentence_emb"][own]).mean(0))
        assert np.allclose(fs.class_text[c].numpy(), expected, atol=1e-6)
    assert np.allclose(fs.class_text.norm(dim=-1).numpy(), 1.0, atol=1e-6)
    assert np.array_equal(fs.scene_text.numpy(), text["scene_emb"])


def test_missing_sentences_go_through_the_text_encoder(store):
    """An extra description and a class the store never saw: both encoded by the given encoder."""
    text = store.text()
    d = text["sentence_emb"].shape[1]
    rename = {"swing_slow": "pendulum"}
    extra = "a circle drawn by a slow hand."
    adapter = Adapter(lambda k: rename.get(parent(k), parent(k)), {"circle_clockwise": [extra]})
    enc = FakeEncoder(d)
    fs = load_features(store, adapter, text_encoder=enc)
    new_class_sentences = class_sentences(["pendulum"], store.config.templates, {})[0]
    assert len(enc.calls) == 1 and enc.calls[0] == sorted([extra, *new_class_sentences])
    assert fs.classes == ["circle_clockwise", "circle_counterclockwise", "pendulum"]

    # circle_clockwise: the store's sentences plus the encoded description, each unit, mean, unit
    own = [i for i, o in enumerate(text["sentence_class"]) if store.classes[o] == "circle_clockwise"]
    rows = np.concatenate([unit(text["sentence_emb"][own]), unit(enc.vector(extra))[None]])
    assert fs.class_sentences["circle_clockwise"][-1] == extra
    assert np.allclose(fs.class_text[0].numpy(), unit(rows.mean(0)), atol=1e-6)
    # pendulum: only encoded template sentences
    expected = unit(unit(np.stack([enc.vector(s) for s in new_class_sentences])).mean(0))
    assert fs.class_sentences["pendulum"] == new_class_sentences
    assert np.allclose(fs.class_text[2].numpy(), expected, atol=1e-6)


def test_missing_sentences_without_an_encoder_is_a_clear_error(store):
    adapter = Adapter(parent, {"swing_slow": ["a brand new sentence."]})
    with pytest.raises(ValueError, match="not in the store.*text encoder"):
        load_features(store, adapter)


def test_no_encoder_call_when_the_store_has_every_sentence(store):
    enc = FakeEncoder(4)
    load_features(store, get_dataset("folder"), text_encoder=enc)
    assert enc.calls == []


# ---- real clips -------------------------------------------------------------------------------
def test_real_clips_ud810(shared_data, tmp_path, run_extract_cli):
    """ud810_ps7 (3 classes x 3 persons x 3 trials) through fgm-extract's tiny random CLIP and the folder adapter."""
    result = run_extract_cli(shared_data / "ud810_ps7", tmp_path / "store", frames=8)
    assert result.exit_code == 0, result.output
    fs = load_features(FeatureStore.open(str(tmp_path / "store")), get_dataset("folder"))
    assert len(fs) == 27 and not fs.skipped
    assert fs.classes == ["arms_forward_overhead", "arms_sideways_overhead", "one_arm_raise_wave"]
    assert np.bincount(fs.labels).tolist() == [9, 9, 9]
    assert fs.dims["n_frames"] == 8 and fs.dims["n_flow"] == 7
    assert torch.isfinite(fs.tensors["flow"]).all() and fs.tensors["flow"].abs().sum() > 0


# ---- T of an fps-sampled store ------------------------------------------------------------------
def test_frame_steps_known_answers():
    from train.fitting.data import frame_steps

    assert frame_steps("fps", [10, 30, 12], 0, None)[0] == 12  # the median of the entries' counts
    assert frame_steps("fps", [10, 30, 12], 0, 7) == (7, "as asked (--frames)")
    assert frame_steps("uniform", [6, 6], 6, None) == (6, "as stored")
    with pytest.raises(ValueError, match="--frames"):
        frame_steps("fps", [0, 0], 0, None)


def test_fps_sampled_store_trains_at_its_median_frame_count(tiny_videos, tmp_path, run_extract_cli):
    """Not a hidden constant: the T loaded follows the entries (and --frames at extraction changes nothing)."""
    url = str(tmp_path / "fps.zarr")
    res = run_extract_cli(tiny_videos, url, "--fps", "12", "--frames", "5")
    assert res.exit_code == 0, res.output
    store = FeatureStore.open(url)
    counts = sorted(e.meta["num_frames"] for e in store.entries())
    assert store.config.sampling == "fps" and store.config.num_frames == 0
    fs = load_features(store, get_dataset("folder"))
    assert fs.dims["n_frames"] == int(np.median(counts)) != 16
    assert "median" in fs.steps_why and f"{counts[0]}-{counts[-1]}" in fs.steps_why
    # the same store opens for a run that names a frame count: it means nothing in fps mode
    assert run_extract_cli(tiny_videos, url, "--fps", "12").exit_code == 0
