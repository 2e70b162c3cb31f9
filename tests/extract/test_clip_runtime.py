"""extract.clip_runtime and extract.onnx_export: the image tower through ONNX Runtime, its cache and its checks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from extract.clip_model import input_size, load_clip
from extract.clip_runtime import (CLIP_RUNTIMES, FIDELITY_FRAMES, ClipRuntimeError, RuntimeSpec, Tower, cosines,
                                  image_tower, runtime_spec)
from extract.onnx_export import QUANTIZATION
from fgm_common.config import ExtractConfig
from fgm_common.store import CLIP, TOKENS, FeatureStore

pytest.importorskip("onnxruntime")  # scripts/setup.sh installs it (the fgm[onnx] extra)


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FGM_CACHE_DIR", str(tmp_path / "fgm-cache"))
    return tmp_path / "fgm-cache" / "onnx"


def _tiny(seed: int = 0):
    return load_clip("fgm-tiny-vit", "none", seed, "cpu")


def _pixels(clip, n: int = 6) -> torch.Tensor:
    size = input_size(clip.model)
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))  # (N, 3, S, S)


@pytest.mark.parametrize("runtime", sorted(CLIP_RUNTIMES))
@pytest.mark.parametrize("tokens", [False, True])
def test_every_runtime_matches_torch_fp32(onnx_cache, runtime, tokens):
    clip = _tiny()
    pixels = _pixels(clip)
    tower = image_tower(runtime, clip, tokens)
    emb, tok = tower.encode(pixels, tokens)
    ref_emb, ref_tok = clip.encode_batch(pixels, tokens=tokens)
    assert emb.shape == ref_emb.shape and emb.dtype == np.float32
    bar = 0.9999 if runtime != "onnx-int8" else 0.99
    assert cosines(emb, ref_emb).min() >= bar
    if tokens:
        assert tok.shape == ref_tok.shape
        assert cosines(tok.reshape(-1, tok.shape[-1]), ref_tok.reshape(-1, ref_tok.shape[-1])).min() >= bar
    tower.check_fidelity(clip, pixels, tokens, (emb, tok))
    if runtime != "torch":
        assert tower.identity["fidelity"]["min_cosine"] >= bar
        assert tower.identity["onnxruntime"] and tower.identity["provider"] == "CPUExecutionProvider"
        assert tower.identity["quantization"] == (QUANTIZATION if runtime == "onnx-int8" else None)


def test_fidelity_is_measured_on_frames_spread_over_the_first_batch():
    clip = _tiny()
    pixels = _pixels(clip, 3 * FIDELITY_FRAMES)  # (24, 3, S, S)
    emb, _ = clip.encode_batch(pixels)
    seen = []
    real = clip.encode_batch

    def counting(batch, tokens=False):
        seen.append(batch)
        return real(batch, tokens)

    clip.encode_batch = counting
    tower = Tower(CLIP_RUNTIMES["onnx"], lambda p, t: (emb, None))
    tower.check_fidelity(clip, pixels, False, (emb, None))
    assert len(seen) == 1 and len(seen[0]) == FIDELITY_FRAMES  # torch ran on 8 frames, not 24
    assert torch.equal(seen[0][0], pixels[0]) and torch.equal(seen[0][-1], pixels[-1])  # first and last
    assert tower.identity["fidelity"]["frames"] == FIDELITY_FRAMES
    assert tower.identity["fidelity"]["min_cosine"] > 0.99999
    wrong = emb.copy()
    wrong[-1] = -wrong[-1]  # the last frame of the batch is among those checked
    with pytest.raises(ClipRuntimeError):
        Tower(CLIP_RUNTIMES["onnx"], lambda p, t: (wrong, None)).check_fidelity(clip, pixels, False, (wrong, None))


def test_the_export_is_cached_verified_and_rebuilt_for_other_weights(onnx_cache):
    clip = _tiny(0)
    first = image_tower("onnx", clip, False).identity
    path = onnx_cache / first["onnx_file"]
    mtime = path.stat().st_mtime_ns
    assert image_tower("onnx", clip, False).identity["onnx_sha256"] == first["onnx_sha256"]
    assert path.stat().st_mtime_ns == mtime  # reused, not exported again
    other = image_tower("onnx", _tiny(1), False).identity  # other random weights: another file
    assert other["onnx_file"] != first["onnx_file"]
    # the name carries the weights hash load_clip took (no second pass over the weights)
    assert clip.identity["weights_sha256"][:16] in first["onnx_file"]
    path.write_bytes(path.read_bytes()[:-10])  # a damaged cached file is rebuilt, never run
    again = image_tower("onnx", clip, False).identity
    assert again["onnx_sha256"] == first["onnx_sha256"]
    assert not list(onnx_cache.glob(".*tmp*"))  # no half-written file is left behind


def test_a_tower_that_strays_from_torch_is_refused():
    clip = _tiny()
    pixels = _pixels(clip)
    noise = np.random.default_rng(0).normal(size=clip.encode_batch(pixels)[0].shape).astype(np.float32)
    tower = Tower(CLIP_RUNTIMES["onnx-int8"], lambda p, t: (noise, None))
    with pytest.raises(ClipRuntimeError, match="strays from torch fp32"):
        tower.check_fidelity(clip, pixels, False, (noise, None))
    assert tower.identity["fidelity"]["min_cosine"] < 0.99


def test_missing_onnxruntime_names_the_extra(monkeypatch, onnx_cache):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ClipRuntimeError, match=r"fgm\[onnx\]"):
        image_tower("onnx-int8", _tiny(), False)
    with pytest.raises(ValueError, match="not one of"):
        runtime_spec("tensorrt")


def test_the_runtime_is_in_the_config_but_torch_keeps_older_digests():
    assert "clip_runtime" not in ExtractConfig().to_dict()  # stores written before the field read the same
    int8 = ExtractConfig(clip_runtime="onnx-int8")
    assert int8.to_dict()["clip_runtime"] == "onnx-int8"
    assert ExtractConfig.from_dict(int8.to_dict()) == int8
    assert int8.digest() != ExtractConfig().digest()


def test_an_int8_store_is_close_to_torch_and_never_mixes_with_it(tiny_videos, tmp_path, onnx_cache, run_extract_cli):
    assert run_extract_cli(tiny_videos, tmp_path / "torch.zarr").exit_code == 0
    made = run_extract_cli(tiny_videos, tmp_path / "int8.zarr", "--clip-runtime", "onnx-int8")
    assert made.exit_code == 0, made.output
    a, b = FeatureStore.open(str(tmp_path / "torch.zarr")), FeatureStore.open(str(tmp_path / "int8.zarr"))
    assert b.config.clip_runtime == "onnx-int8"
    run = b.runs()[-1]["clip_runtime"]
    assert run["runtime"] == "onnx-int8" and run["fidelity"]["min_cosine"] >= 0.99
    for entry in a.entries():
        x, y = a.read(entry, (CLIP,))[CLIP], b.read(entry.key, (CLIP,))[CLIP]  # (T, D) each
        assert x.shape == y.shape
        assert cosines(x, y).min() >= 0.99
    mixed = run_extract_cli(tiny_videos, tmp_path / "torch.zarr", "--clip-runtime", "onnx")
    assert mixed.exit_code != 0 and "clip_runtime" in mixed.output


def test_a_run_refused_for_fidelity_says_why_and_writes_no_entry(tiny_videos, tmp_path, onnx_cache, run_extract_cli,
                                                                 monkeypatch):
    # a bar no tower can pass: the refusal the CLI gives when int8 strays (e.g. pretrained outliers)
    monkeypatch.setitem(CLIP_RUNTIMES, "onnx-int8", RuntimeSpec("onnx-int8", onnx=True, int8=True, min_cosine=1.01))
    url = tmp_path / "int8.zarr"
    result = run_extract_cli(tiny_videos, url, "--clip-runtime", "onnx-int8")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "strays from torch fp32" in out and "--clip-runtime onnx or torch" in out and "Traceback" not in out
    assert not FeatureStore.open(str(url)).entries()  # nothing half-made that looks complete


@pytest.mark.slow
def test_each_dask_worker_records_its_own_fidelity(tiny_videos, tmp_path, onnx_cache, run_extract_cli):
    url = str(tmp_path / "dask-int8.zarr")
    result = run_extract_cli(tiny_videos, url, "--clip-runtime", "onnx-int8", "--workers", "2")
    assert result.exit_code == 0, result.output
    run = FeatureStore.open(url).runs()[-1]
    workers = run["clip_runtime_workers"]
    assert workers and len({w["worker"] for w in workers}) == len(workers)
    for w in workers:  # every worker checked its own first batch against torch fp32
        assert w["runtime"] == "onnx-int8" and w["fidelity"]["min_cosine"] >= 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("runtime", sorted(CLIP_RUNTIMES))
def test_every_runtime_runs_beside_a_gpu(onnx_cache, runtime):
    import onnxruntime as ort

    cpu, gpu = _tiny(), load_clip("fgm-tiny-vit", "none", 0, "cuda")
    pixels = _pixels(cpu)
    tower = image_tower(runtime, gpu, False)
    emb, _ = tower.encode(pixels, False)  # (N, D) numpy on the host, whatever ran it
    assert cosines(emb, cpu.encode_batch(pixels)[0]).min() >= (0.99 if runtime == "onnx-int8" else 0.999)
    if runtime != "torch":  # ONNX Runtime's CUDA provider when the installed build has it, else the CPU's
        cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        assert tower.identity["provider"] == ("CUDAExecutionProvider" if cuda else "CPUExecutionProvider")


@pytest.mark.parametrize("runtime", ["torch", "onnx-int8"])
def test_sessions_side_by_side_give_the_one_session_store(tiny_videos, tmp_path, onnx_cache, run_extract_cli,
                                                          monkeypatch, runtime):
    import extract.clip_runtime as clip_runtime

    urls = {}
    for sessions in (1, 2):  # batches of 4: videos span batches, so results must come back in order
        monkeypatch.setattr(clip_runtime, "cpu_sessions", lambda n=sessions: (n, 1))
        urls[sessions] = str(tmp_path / f"s{sessions}.zarr")
        made = run_extract_cli(tiny_videos, urls[sessions], "--clip-runtime", runtime, "--batch-size", "4",
                               "--tokens")  # each thread's tokens must stay its own
        assert made.exit_code == 0, made.output
    one, two = FeatureStore.open(urls[1]), FeatureStore.open(urls[2])
    assert two.runs()[-1]["clip_runtime"]["sessions"] == 2 and one.runs()[-1]["clip_runtime"]["sessions"] == 1
    assert [e.key for e in one.entries()] == [e.key for e in two.entries()]
    for entry in one.entries():
        a, b = one.read(entry, (CLIP, TOKENS)), two.read(entry.key, (CLIP, TOKENS))
        np.testing.assert_allclose(b[CLIP], a[CLIP], atol=1e-5)
        np.testing.assert_allclose(b[TOKENS].astype(np.float32), a[TOKENS].astype(np.float32), atol=2e-3)
