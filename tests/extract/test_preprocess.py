"""extract.preprocess: frames -> CLIP input through open_clip's PIL transform or OpenCV; the store records which."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from extract.clip_model import input_size
from extract.preprocess import PREPROCESSORS, geometry, preprocessor
from fgm_common.config import ExtractConfig
from fgm_common.store import CLIP, FeatureStore

# landscape (shrunk), portrait (shrunk), smaller than the input (enlarged), exactly the input side
SHAPES = [(48, 80), (90, 60), (20, 30), None]


def _frames(side: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for shape in SHAPES:
        h, w = shape or (side, side)
        y, x = np.mgrid[0:h, 0:w]
        smooth = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // (h + w)], -1)
        out.append(np.clip(smooth + rng.integers(-8, 9, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("name", sorted(PREPROCESSORS))
def test_every_preprocessor_gives_the_model_input(tiny_clip, name):
    side = input_size(tiny_clip.model)
    run = preprocessor(name, tiny_clip.preprocess)
    for frame in _frames(side):
        x = run([frame, frame])
        assert x.shape == (2, 3, side, side) and x.dtype == torch.float32


def test_opencv_is_open_clips_geometry_with_other_filters(tiny_clip):
    side = input_size(tiny_clip.model)
    pil, cv = preprocessor("pil", tiny_clip.preprocess), preprocessor("opencv", tiny_clip.preprocess)
    for frame in _frames(side):
        a, b = pil([frame])[0], cv([frame])[0]  # (3, S, S) each
        # same crop window and normalisation: only the resampling filter differs (ramps plus noise)
        assert (a - b).abs().mean() < 0.05, frame.shape
    g = geometry(tiny_clip.preprocess)
    grey = np.full((50, 70, 3), 100, np.uint8)  # known answer: a flat frame is (100 / 255 - mean) / std
    expect = torch.from_numpy((100 / 255 - g.mean) / g.std).float()[:, None, None].expand(3, side, side)
    torch.testing.assert_close(cv([grey])[0], expect, atol=1e-5, rtol=0)


def test_the_crop_window_is_the_centre_of_the_shorter_side(tiny_clip):
    side = input_size(tiny_clip.model)
    frame = np.zeros((40, 100, 3), np.uint8)
    frame[:, 50:] = 255  # the right half white: the edge falls in the middle of the centre crop
    for name in PREPROCESSORS:
        row = preprocessor(name, tiny_clip.preprocess)([frame])[0, 0, side // 2]  # (S,)
        edge = int(np.argmax(row.numpy() > row.numpy().mean()))
        assert abs(edge - side // 2) <= 1, (name, edge)


def test_a_preprocessing_opencv_cannot_copy_names_the_way_out():
    squash = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    with pytest.raises(ValueError, match="--preprocess pil"):
        preprocessor("opencv", squash)
    with pytest.raises(ValueError, match="not one of"):
        preprocessor("skimage", squash)


def test_preprocess_is_in_the_config_and_pil_keeps_older_digests():
    assert "preprocess" not in ExtractConfig().to_dict()
    cv = ExtractConfig(preprocess="opencv")
    assert ExtractConfig.from_dict(cv.to_dict()) == cv and cv.digest() != ExtractConfig().digest()
    older = {k: v for k, v in ExtractConfig().to_dict().items()}  # as written before the field existed
    assert ExtractConfig.from_dict(older).preprocess == "pil"


def test_an_opencv_store_is_close_to_pil_and_never_mixes_with_it(base, tmp_path, run_extract_cli):
    url = tmp_path / "cv.zarr"
    made = run_extract_cli(base.videos, url, "--preprocess", "opencv")
    assert made.exit_code == 0, made.output
    a, b = FeatureStore.open(base.url), FeatureStore.open(str(url))
    assert b.config.preprocess == "opencv" and b.config.to_dict()["preprocess"] == "opencv"
    for entry in a.entries():
        x, y = a.read(entry, (CLIP,))[CLIP], b.read(entry.key, (CLIP,))[CLIP]  # (T, D) each
        cos = (x * y).sum(-1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1))
        assert cos.min() > 0.99 and not np.array_equal(x, y), entry.key
    mixed = run_extract_cli(base.videos, base.url, "--preprocess", "opencv")
    assert mixed.exit_code != 0 and "preprocess" in mixed.output
