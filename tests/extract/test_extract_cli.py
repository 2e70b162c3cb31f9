"""fgm-extract end to end on the tiny folder: a fresh extraction, resuming, export (info: test_info.py)."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from extract.cli import export_app
from extract.flow import FlowComputer
from extract.sampling import uniform_indices
from extract.synth import SynthConfig, clip_rng, render_clip
from fgm_common.store import ARRAY_DTYPES, FLOW_ARRAYS, FRAME_ARRAYS, FeatureStore
from fgm_common.texts import SCENE_BANK, class_sentences, load_descriptions

from tests.extract.cli_helpers import FRAMES, TINY_CFG, decoded_frames, flat, run_ids, sha256, write_mp4

# ---- a fresh extraction ----------------------------------------------------------------------------

def test_extract_writes_complete_documented_entries(base):
    assert base.result.exit_code == 0, base.result.output
    store = FeatureStore.open(base.url)
    entries = store.entries()
    videos = sorted(base.videos.rglob("*.mp4"))
    folders = sorted(p.name for p in base.videos.iterdir() if p.is_dir())
    assert [e.key for e in entries] == [v.relative_to(base.videos).as_posix() for v in videos]
    assert len(store.entries(include_incomplete=True)) == len(entries) == 6
    assert store.failures() == {}
    cfg = store.config
    assert (cfg.num_frames, cfg.clip_model, cfg.pretrained, cfg.flow.pairs) == (FRAMES, "fgm-tiny-vit", "none", "sampled")
    dim, grid, bins = TINY_CFG["embed_dim"], cfg.flow.grid, cfg.flow.hist_bins
    for entry, video in zip(entries, videos):
        a = store.read(entry)
        assert set(a) == set(FRAME_ARRAYS + FLOW_ARRAYS)
        for name, arr in a.items():
            assert arr.dtype == np.dtype(ARRAY_DTYPES[name]), name
        assert a["clip"].shape == (FRAMES, dim)
        assert a["flow"].shape == (FRAMES - 1, 2, grid, grid)  # flow_pairs sampled: between sampled frames
        assert a["flow_hist"].shape == (FRAMES - 1, 2 * bins)
        assert entry.label == video.parent.name and entry.meta["sha256"] == sha256(video)
        assert entry.meta["native_frames"] >= 12 and entry.meta["short_video"] is False
        np.testing.assert_array_equal(a["frame_index"], uniform_indices(entry.meta["native_frames"], FRAMES))
        np.testing.assert_allclose(a["timestamps_ms"], a["frame_index"] * 1000.0 / entry.meta["fps"])
        np.testing.assert_array_equal(a["flow_ts_ms"], np.stack([a["timestamps_ms"][:-1], a["timestamps_ms"][1:]], 1))
        assert np.abs(a["flow"]).max() > 0  # the shape moves

    # text side: every class, its template sentence and the synth descriptions, and the scene bank
    assert store.classes == folders
    text = store.text()
    sentences, owner = class_sentences(folders, cfg.templates, load_descriptions(base.videos / "descriptions.json"))
    assert text["sentences"] == sentences and text["sentence_class"] == owner
    assert text["sentence_emb"].shape == (len(sentences), dim) and text["class_emb"].shape == (3, dim)
    assert text["scene_emb"].shape == (len(SCENE_BANK), dim) and text["scenes"] == list(SCENE_BANK)


def test_provenance_and_clip_identity(base, tiny_clip):
    store = FeatureStore.open(base.url)
    packages = store.provenance["packages"]
    for name in ("torch", "open_clip_torch", "zarr", "numpy", "opencv-contrib-python"):
        assert packages[name] == metadata.version(name)
    identity = store.clip_identity
    assert identity["random_weights"] is True and identity["model"] == "fgm-tiny-vit"
    assert identity["weights_sha256"] == tiny_clip.identity["weights_sha256"]
    first = store.runs()[0]
    assert first["extracted"] == 6 and first["clip_identity"]["weights_sha256"] == identity["weights_sha256"]
    assert "CLIP weights are RANDOM" in flat(base.result.output)


def test_stored_features_equal_direct_computation(base, tiny_clip):
    """Known answer: decode the sampled frames here and run the same CLIP and flow; the store must agree."""
    store = FeatureStore.open(base.url)
    cfg = store.config
    flow = FlowComputer(cfg.flow)
    for entry in store.entries()[::3]:
        frames = decoded_frames(entry.meta["path"], FRAMES)
        a = store.read(entry)
        emb, _ = tiny_clip.encode_frames(frames)  # (T, D), one batch here, two in the run
        np.testing.assert_allclose(a["clip"], emb, atol=1e-5, rtol=1e-5)
        fields = [flow(p, n) for p, n in zip(frames[:-1], frames[1:])]
        np.testing.assert_array_equal(a["flow"], np.stack([f for f, _ in fields]))
        np.testing.assert_allclose(a["flow_hist"], np.stack([h for _, h in fields]), atol=1e-6)


# ---- resuming --------------------------------------------------------------------------------------

def test_rerun_same_config_decodes_nothing(base, run_extract_cli, monkeypatch):
    before = run_ids(base.url)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a rerun over an up-to-date store opened a video")

    monkeypatch.setattr("extract.produce.open_source", no_decoding)
    result = run_extract_cli(base.videos, base.url, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "0 decoded" in flat(result.output)
    store = FeatureStore.open(base.url)
    last = store.runs()[-1]
    assert (last["extracted"], last["skipped"], last["failed"]) == (0, 6, 0)
    assert run_ids(base.url) == before


def test_changed_video_alone_is_redone(tiny_videos_copy, tmp_path, run_extract_cli):
    url = str(tmp_path / "store.zarr")
    assert run_extract_cli(tiny_videos_copy, url).exit_code == 0
    before = run_ids(url)
    old_clip = FeatureStore.open(url).read("swing_slow/swing_slow_0001.mp4", ("clip",))["clip"]

    changed = tiny_videos_copy / "swing_slow" / "swing_slow_0001.mp4"
    write_mp4(changed, render_clip("swing_slow", clip_rng(99, "swing_slow", 1),
                                   SynthConfig(size=48, min_frames=12, max_frames=20)))
    touched = tiny_videos_copy / "circle_clockwise" / "circle_clockwise_0000.mp4"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # new time, same bytes

    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 0, result.output
    after = run_ids(url)
    key = "swing_slow/swing_slow_0001.mp4"
    assert after[key] != before[key]
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    store = FeatureStore.open(url)
    last = store.runs()[-1]
    assert (last["extracted"], last["skipped"], last["run_id"]) == (1, 5, after[key])
    [entry] = [e for e in store.entries() if e.key == key]
    assert entry.meta["sha256"] == sha256(changed)
    assert not np.allclose(store.read(entry, ("clip",))["clip"], old_clip)


def test_different_config_is_refused_and_store_unchanged(base, run_extract_cli):
    store = FeatureStore.open(base.url)
    before = (run_ids(base.url), len(store.runs()), store.config, store.text()["class_emb"].copy())
    result = run_extract_cli(base.videos, base.url, frames=4)
    assert result.exit_code == 2, result.output
    out = flat(result.output)
    assert "num_frames" in out and "store has 6, this run asks for 4" in out
    store = FeatureStore.open(base.url)
    after = (run_ids(base.url), len(store.runs()), store.config, store.text()["class_emb"])
    assert before[:3] == after[:3]
    np.testing.assert_array_equal(before[3], after[3])



# ---- export ---------------------------------------------------------------------------------------

def test_export_hdf5_round_trip(base, tmp_path):
    out = tmp_path / "features.h5"
    result = CliRunner().invoke(export_app, [base.url, str(out)])
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(base.url)
    with h5py.File(out, "r") as h5:
        assert json.loads(h5.attrs["extract_config"]) == store.config.to_dict()
        assert json.loads(h5.attrs["classes"]) == store.classes
        assert len(h5["videos"]) == len(store.entries()) == 6
        for entry in store.entries():
            g = h5["videos"][entry.id]
            assert g.attrs["key"] == entry.key and g.attrs["label"] == entry.label
            for name, arr in store.read(entry).items():
                assert g[name].dtype == arr.dtype
                np.testing.assert_array_equal(g[name][()], arr, err_msg=name)
        text = store.text()
        for name in ("sentence_emb", "class_emb", "scene_emb"):
            np.testing.assert_array_equal(h5["text"][name][()], text[name])
        assert json.loads(h5["text"].attrs["sentences"]) == text["sentences"]
    assert not Path(str(out) + ".partial").exists()


def test_export_of_a_non_store_says_what_to_do(tmp_path):
    result = CliRunner().invoke(export_app, [str(tmp_path / "nothing"), str(tmp_path / "f.h5")])
    assert result.exit_code == 2 and "fgm-extract" in flat(result.output)
    assert not (tmp_path / "f.h5").exists()
