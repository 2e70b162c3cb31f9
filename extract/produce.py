"""One video -> its messages: hash, probe, sample frames, compute flow pairs, preprocess for every tower.

No threads here (extract/threads.py runs this in decode threads). A bad video ends in one Failed
message, never an exception: only a bug propagates.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import cv2
import numpy as np

from extract.batching import Done, Elsewhere, Failed, Frame
from extract.boxes import BoxRecorder, box_summary
from extract.detect import Detector
from extract.fingerprint import content_sha256, stat_fingerprint
from extract.flow import FlowComputer
from extract.inputs import VideoItem
from extract.sampling import sample_indices
from extract.video import VideoError, open_source
from fgm_common.config import ExtractConfig
from fgm_common.store import (FLOW, FLOW_HIST, FLOW_TS, FRAME_HEIGHT, FRAME_INDEX, FRAME_WIDTH, NUM_FRAMES,
                              TIMESTAMPS)

# Asked before a video is decoded: None lets this process go on, else the owner of the video's lease
# (extract/sharing.py's Sharing.claim).
Claim = Callable[[VideoItem], "str | None"]

# Exceptions a bad video can raise anywhere in decoding or flow; anything else is a bug and propagates.
VIDEO_FAILURES = (VideoError, cv2.error, OSError, ValueError, RuntimeError)


def produce(item: VideoItem, config: ExtractConfig, flow: FlowComputer, prepare: Callable[[np.ndarray], Frame],
            run_id: str, claim: Claim | None = None, detector: Detector | None = None) -> Iterator[object]:
    """One video -> a Frame per sampled frame, then Done, or Failed as soon as anything fails.

    `prepare` turns a decoded RGB frame (H, W, 3) into the Frame the towers take (Extractor._prepare),
    or keeps it raw for later (extract/early.py). The frames are decoded once for every tower.
    `claim(item)`, when given, is asked first: None lets this process go on; else the video belongs
    to another process (its owner is returned) and the one message is Elsewhere. With a `detector`
    (the config's, made once per thread like `flow`) Done also carries the box arrays (extract/boxes.py).
    """
    started = time.perf_counter()
    if claim is not None and (owner := claim(item)) is not None:
        yield Elsewhere(item, owner, started)
        return
    fingerprint: dict = {}
    try:
        size, mtime = stat_fingerprint(item.path)
        fingerprint = {"size": size, "mtime_ns": mtime}
        if size == 0:
            raise VideoError("empty-file", f"{item.path} is empty (0 bytes)")
        fingerprint["sha256"] = content_sha256(item.path)
        source = open_source(item.path, start_ms=item.start_ms, end_ms=item.end_ms)
        info = source.probe()
        indices = sample_indices(config, info.n_frames, info.fps)
        native = config.flow.pairs == "native"
        flows, hists, flow_ts, stamps = [], [], [], []
        boxes = BoxRecorder(detector, config.flow.hist_bins) if detector is not None else None

        def add_pair(a: np.ndarray, b: np.ndarray, first: int) -> None:  # the pair of sampled frame `first`
            field = flow.field(a, b)  # (h, w, 2)
            compact, hist = flow.summary(field)
            flows.append(compact), hists.append(hist)
            if boxes is not None:
                boxes.pair(field, first)

        prev = None
        for frame in source.iter_frames(indices, with_next=native):
            stamps.append(frame.timestamp_ms)
            if boxes is not None:
                boxes.frame(frame.rgb)
            if native:
                add_pair(frame.rgb, frame.next_rgb if frame.next_rgb is not None else frame.rgb, len(stamps) - 1)
                flow_ts.append((frame.timestamp_ms, frame.timestamp_ms + 1000.0 / info.fps))
            elif prev is not None:
                add_pair(prev[0], frame.rgb, len(stamps) - 2)
                flow_ts.append((prev[1], frame.timestamp_ms))
            prev = (frame.rgb, frame.timestamp_ms)
            yield prepare(frame.rgb)
        if len(stamps) != len(indices):
            raise VideoError("unreadable", f"{item.path}: decoded {len(stamps)} of {len(indices)} sampled frames")
        if not flows:  # a single sampled frame has no pair: one zero field keeps shapes uniform
            add_pair(prev[0], prev[0], 0)
            flow_ts.append((prev[1], prev[1]))
        box_arrays = boxes.arrays() if boxes is not None else {}  # (T, K, ...) and (Tf, K, 2*bins)
        arrays = {
            TIMESTAMPS: np.asarray(stamps),
            FRAME_INDEX: np.asarray(indices),
            FLOW: np.stack(flows),  # (Tf, 2, G, G)
            FLOW_HIST: np.stack(hists),  # (Tf, 2*bins)
            FLOW_TS: np.asarray(flow_ts),  # (Tf, 2)
            **box_arrays,
        }
        meta = {
            "label": item.label, "group": item.group, "view": item.view, "split": item.split,
            "path": str(item.path), "start_ms": item.start_ms, "end_ms": item.end_ms,
            **fingerprint, "native_frames": info.n_frames, "fps": info.fps, "fps_known": info.fps_known,
            FRAME_WIDTH: info.width, FRAME_HEIGHT: info.height, "duration_ms": info.duration_ms,
            NUM_FRAMES: len(indices), "num_flow": len(flows),
            "short_video": bool(info.n_frames < len(indices)), "run_id": run_id,
            **(box_summary(box_arrays) if box_arrays else {}),
        }
        yield Done(item, arrays, meta, started)
    except VIDEO_FAILURES as e:
        reason = e.reason if isinstance(e, VideoError) else type(e).__name__
        yield Failed(item, reason, str(e), fingerprint, started)
