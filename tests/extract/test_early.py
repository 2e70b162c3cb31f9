"""extract.early: videos decoded while the towers load are handed to the Extractor, and the store is the same."""

from __future__ import annotations

import numpy as np
import pytest

from extract.batching import Done, Failed, Frame
from extract.early import EarlyDecode
from fgm_common.store import FeatureStore


def _setup(videos, url):
    from extract.inputs import discover
    from extract.pipeline import Extractor
    from fgm_common.config import ExtractConfig

    config = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4)
    FeatureStore.create_or_open(url, config, {})
    items = discover(videos).items
    return config, items, lambda: Extractor(config, url, device="cpu", batch_size=3)


def _arrays(url: str) -> dict:
    store = FeatureStore.open(url)
    return {e.key: store.read(e) for e in store.entries()}


@pytest.fixture(scope="module")
def plain(tiny_videos, tmp_path_factory):
    """The tiny folder extracted without an early start: what every early start must reproduce."""
    url = str(tmp_path_factory.mktemp("plain") / "s.zarr")
    _, items, extractor = _setup(tiny_videos, url)
    assert all(r.ok for r in extractor().run(items))
    return _arrays(url)


# budget in frames of 48 x 48: stop inside the first video, inside the third, or never
@pytest.mark.parametrize("frames", [1, 10, 10_000])
def test_an_early_start_gives_the_same_store(tiny_videos, tmp_path, plain, frames):
    url = str(tmp_path / "s.zarr")
    config, items, extractor = _setup(tiny_videos, url)
    early = EarlyDecode(items, config, budget=frames * 48 * 48 * 3)
    early._thread.join(30)  # let it stop by itself: at the budget, or with every video decoded
    made = early.hand_over()
    if frames == 1:
        assert not made.done and made.current is not None  # stopped inside the first video
    if frames == 10_000:
        assert len(made.done) == len(items) and made.current is None
    results = extractor().run(items, early=early)
    assert [r.key for r in results] == [i.key for i in items] and all(r.ok for r in results)
    got = _arrays(url)
    assert got.keys() == plain.keys()
    for key, arrays in plain.items():
        for name, want in arrays.items():
            np.testing.assert_array_equal(got[key][name], want, err_msg=f"{key} {name}")


def test_frames_wait_raw_and_a_bad_video_fails_as_usual(tiny_videos_copy, tmp_path):
    (tiny_videos_copy / "swing_slow" / "zero.mp4").write_bytes(b"")
    config, items, _ = _setup(tiny_videos_copy, str(tmp_path / "s.zarr"))
    early = EarlyDecode(items, config)
    early._thread.join(30)
    made = early.hand_over()
    messages = [msg for _, msg in made.messages()]
    frames = [m for m in messages if isinstance(m, Frame)]
    assert frames and all(f.pixels is None and f.rgb.dtype == np.uint8 and f.rgb.ndim == 3 for f in frames)
    assert sum(isinstance(m, Done) for m in messages) == len(items) - 1
    [failed] = [m for m in messages if isinstance(m, Failed)]
    assert failed.item.key == "swing_slow/zero.mp4" and failed.reason == "empty-file"


def test_a_bug_in_the_early_thread_is_raised_by_the_run(tiny_videos, tmp_path, monkeypatch):
    config, items, extractor = _setup(tiny_videos, str(tmp_path / "s.zarr"))

    def broken(path):
        raise KeyError("simulated bug")

    monkeypatch.setattr("extract.produce.content_sha256", broken)
    early = EarlyDecode(items, config)
    with pytest.raises(KeyError, match="simulated bug"):
        extractor().run(items, early=early)


def test_close_stops_it_without_a_run(tiny_videos, tmp_path):
    config, items, _ = _setup(tiny_videos, str(tmp_path / "s.zarr"))
    early = EarlyDecode(items, config, budget=1)
    early.close()  # as the runner does when the towers cannot be had
    assert not early._thread.is_alive()


def test_nothing_before_the_early_start_imports_torch(tiny_videos):
    """The CLI's path up to EarlyDecode (options, config checks, discovery) must leave torch unloaded:
    every second it spends importing torch first is a second the early thread does not get."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from extract import cli, early\n"
        "from extract.api import make_config\n"
        "from extract.errors import BackboneWeightsError, ClipWeightsError\n"
        "from extract.clip_runtime import ClipRuntimeError\n"
        "from extract.inputs import discover\n"
        f"discover({str(tiny_videos)!r})\n"
        "make_config(pretrained='none', clip_runtime='onnx-int8', preprocess='opencv')\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'open_clip') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
