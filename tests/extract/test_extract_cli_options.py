"""fgm-extract options: dask workers, native flow pairs and tokens, local checkpoints; the real clips."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch

from extract.clip_model import last_vision_block, load_clip
from fgm_common.store import FeatureStore

from tests.extract.cli_helpers import FRAMES, TINY_CFG, check_whole, flat, sha256

# ---- dask, flow pairs, tokens, checkpoints -----------------------------------------------------------

@pytest.mark.slow
def test_dask_workers_write_the_same_entries(base, tmp_path, run_extract_cli):
    url = str(tmp_path / "dask.zarr")
    result = run_extract_cli(base.videos, url, "--workers", "2")
    assert result.exit_code == 0, result.output
    local, dask = FeatureStore.open(base.url), FeatureStore.open(url)
    assert [e.key for e in dask.entries()] == [e.key for e in local.entries()]
    assert dask.config == local.config and dask.runs()[-1]["workers"] == 2
    assert dask.clip_identity["weights_sha256"] == local.clip_identity["weights_sha256"]
    for entry in local.entries():
        a, b = local.read(entry), dask.read(entry.key)
        assert sorted(a) == sorted(b)
        np.testing.assert_allclose(b["clip"], a["clip"], atol=1e-5, rtol=0)
        for name in set(a) - {"clip"}:
            np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    np.testing.assert_allclose(dask.text()["class_emb"], local.text()["class_emb"], atol=1e-5)


def test_native_flow_pairs_and_tokens(tiny_videos, tmp_path, run_extract_cli):
    manifest = tmp_path / "two.txt"
    chosen = sorted(tiny_videos.rglob("*.mp4"))[:2]
    manifest.write_text("".join(f"{p} {p.parent.name}\n" for p in chosen))
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(manifest, url, "--flow-pairs", "native", "--tokens")
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    assert store.config.flow.pairs == "native" and store.config.tokens is True
    grid = store.config.flow.grid
    vision = TINY_CFG["vision_cfg"]
    n_tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    clip = load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu")
    visual = clip.model.visual
    for entry in store.entries():
        a = store.read(entry)
        assert a["flow"].shape == (FRAMES, 2, grid, grid)  # each sampled frame to its next native frame
        np.testing.assert_allclose(a["flow_ts_ms"][:, 0], a["timestamps_ms"])
        np.testing.assert_allclose(a["flow_ts_ms"][:, 1] - a["flow_ts_ms"][:, 0], 1000.0 / entry.meta["fps"])
        assert a["tokens"].shape == (FRAMES, n_tokens, vision["width"]) and a["tokens"].dtype == np.float16
        with torch.no_grad():  # the stored tokens still lead to the stored embedding (f16 rounding aside)
            x = last_vision_block(clip.model)(torch.from_numpy(a["tokens"].astype(np.float32)))
            emb = (visual.ln_post(x)[:, 0] @ visual.proj).numpy()
        np.testing.assert_allclose(emb, a["clip"], atol=2e-2, rtol=2e-2)


def test_local_checkpoint_is_named_by_its_bytes(base, tmp_path, run_extract_cli):
    chosen = sorted(base.videos.rglob("*.mp4"))[:2]
    manifest = tmp_path / "two.txt"
    manifest.write_text("".join(f"{p.relative_to(base.videos)} {p.parent.name}\n" for p in chosen))
    shutil.copytree(base.videos, tmp_path, dirs_exist_ok=True)  # relative paths resolve beside the manifest
    ckpt = tmp_path / "tiny.pt"
    torch.save(load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu").model.state_dict(), ckpt)
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(manifest, url, "--pretrained", str(ckpt))
    assert result.exit_code == 0, result.output
    assert "RANDOM" not in result.output
    store = FeatureStore.open(url)
    assert store.config.clip_sha256 == sha256(ckpt) == store.clip_identity["file_sha256"]
    assert store.clip_identity["random_weights"] is False
    reference = FeatureStore.open(base.url)  # the same weights made randomly from seed 0
    for entry in store.entries():
        np.testing.assert_allclose(store.read(entry, ("clip",))["clip"],
                                   reference.read(entry.key, ("clip",))["clip"], atol=1e-5)

    torch.save(load_clip("fgm-tiny-vit", "none", random_seed=1, device="cpu").model.state_dict(), ckpt)
    result = run_extract_cli(manifest, url, "--pretrained", str(ckpt))
    assert result.exit_code == 2, result.output  # new weights at the same path never mix into the store
    assert "clip_sha256" in flat(result.output)



# ---- real clips ----------------------------------------------------------------------------------

def test_real_clips_ud810_ps7(shared_data, tmp_path, run_extract_cli):
    folder = shared_data / "ud810_ps7"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    url = str(tmp_path / "ud.zarr")
    result = run_extract_cli(folder, url)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    entries = store.entries()
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(entries) == 27 and store.failures() == {}
    assert sorted({e.label for e in entries}) == classes == store.classes and len(classes) == 3
    with open(shared_data / "MANIFEST.tsv", newline="") as f:
        manifest = {row["path"]: row for row in csv.DictReader(f, delimiter="\t")}
    for entry in entries:
        row = manifest[f"ud810_ps7/{entry.key}"]
        assert entry.label == row["label"]
        assert (entry.meta["native_frames"], entry.meta["width"], entry.meta["height"]) == (
            int(row["frames"]), int(row["width"]), int(row["height"]))
        check_whole(store, entry, FRAMES)
