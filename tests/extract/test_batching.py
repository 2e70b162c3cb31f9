"""The Packer: frames of consecutive videos fill CLIP batches; each video's end goes out behind its last frame."""

from __future__ import annotations

import torch

from extract.batching import Chunk, Done, Failed, Frame, Packer
from extract.inputs import VideoItem


def _frame(value: float):
    return Frame(torch.full((3, 2, 2), value), {"resnet50": torch.full((3, 1, 1), value)})


def _pack(batch_size, script):
    """Run Packer over ("frame", key, value) / ("end", key, msg) steps; return what it sent."""
    sent = []
    packer = Packer(batch_size, lambda msg: sent.append(msg) or True)
    for step, key, arg in script:
        if step == "frame":
            packer.add(key, _frame(arg))
        else:
            packer.end(key, arg)
    packer.flush()
    return sent


def _ends(kind, key):
    item = VideoItem(key, f"/{key}.mp4")
    return Done(item, {}, {}, 0.0) if kind == "done" else Failed(item, "unreadable", "x", {}, 0.0)


def _describe(sent):
    out = []
    for msg in sent:
        if isinstance(msg, Chunk):
            assert msg.pixels.shape[0] == msg.extra["resnet50"].shape[0] == sum(n for _, n in msg.owners)
            out.append(("chunk", msg.owners, msg.pixels[:, 0, 0, 0].tolist()))
        else:
            out.append((type(msg).__name__, msg.item.key))
    return out


def test_packer_fills_batches_across_videos_and_ends_each_video_after_its_last_batch():
    a = [("frame", "a", v) for v in (1, 2, 3)] + [("end", "a", _ends("done", "a"))]
    b = [("frame", "b", v) for v in (4, 5, 6)] + [("end", "b", _ends("done", "b"))]
    assert _describe(_pack(4, a + b)) == [
        ("chunk", [("a", 3), ("b", 1)], [1, 2, 3, 4]),
        ("Done", "a"),  # a's last frame went out in the batch above
        ("chunk", [("b", 2)], [5, 6]),  # the short last batch, sent by the final flush
        ("Done", "b"),
    ]


def test_packer_drops_a_failed_videos_waiting_frames_and_sends_the_failure_before_later_frames():
    script = ([("frame", "a", v) for v in (1, 2)] + [("end", "a", _ends("done", "a"))]
              + [("frame", "b", v) for v in (3, 4, 5, 6, 7)] + [("end", "b", _ends("failed", "b"))]
              + [("frame", "c", 8), ("end", "c", _ends("done", "c"))])
    assert _describe(_pack(4, script)) == [
        ("chunk", [("a", 2), ("b", 2)], [1, 2, 3, 4]),
        ("Done", "a"),
        ("Failed", "b"),  # b's frames 5-7 were still waiting: dropped, and nothing of c was sent before
        ("chunk", [("c", 1)], [8]),
        ("Done", "c"),
    ]


def test_an_end_with_no_waiting_frames_goes_out_at_once():
    script = [("frame", "a", v) for v in (1, 2)] + [("end", "a", _ends("done", "a"))]
    assert _describe(_pack(2, script)) == [("chunk", [("a", 2)], [1, 2]), ("Done", "a")]
