"""The feature store's layout: schema version, group and array names, entry ids; every other module spells them from here.

Schema version 3 (an older store is read as it is, and upgraded in place when a run writes to it:
fgm_common/store/upgrade.py; version 3 added the optional box arrays, version 2 the record objects):

    <root>/                       attrs: schema_version, extract_config, config_digest, provenance
                                  (written when the store is made; later only when backbones are added)
    <root>/videos/<entry id>/     one group per video, attrs: key, label, ..., complete (and, with a
                                  detector, PERSON_FRAMES and BOX_TRACKS)
        clip          (T, D)        f32   CLIP image embedding per sampled frame (not normalised)
        timestamps_ms (T,)          f64   time of each sampled frame in the source file
        frame_index   (T,)          i64   native index of each sampled frame
        flow          (Tf, 2, G, G) f16   optical flow, in pixels of the G x G grid
        flow_hist     (Tf, 2*bins)  f32   orientation and magnitude histograms per flow pair
        flow_ts_ms    (Tf, 2)       f64   the two timestamps each flow field is between
        tokens        (T, L, W)     f16   optional: tokens entering the last CLIP vision block
        <backbone>    (T, Db)       f32   optional extra backbones, e.g. resnet50
        boxes         (T, K, 4)     f32   with a detector (--detector): the top K boxes per frame, best
                                          first, (x0, y0, x1, y1) normalised to the frame; 0 where invalid
        box_score     (T, K)        f32   the detector's score of each box
        box_class     (T, K)        i16   its class (0 = person), -1 where invalid
        box_valid     (T, K)        bool  which of the K slots hold a box
        box_track     (T, K)        i32   track id linking boxes across frames (extract/tracks.py), -1 invalid
        box_flow_hist (Tf, K, 2*bins) f32 the flow histogram inside each box of the pair's first frame
    <root>/failures/<entry id>/   one group per video that failed, attrs: key, reason, message, run_id, fingerprint
    <root>/runs/<run id>/         one group per run, attrs: the run record
    <root>/text/                  attrs: current, the version readers use
    <root>/text/<version>/        sentence_emb (S, D) f32, class_emb (C, D) f32, scene_emb (K, D) f32;
                                  attrs: classes, sentences, sentence_class, scenes
    <root>/weights/<tower>.json   identity of the weights that made every feature: clip, backbone-<name>,
                                  detector-<name>
    <root>/claims/<entry id>/<generation>.json   leases on videos being extracted (extract/claims.py)

Every record is an object of its own because several processes, on one machine or many, extract
into one store: each writes only its entries, its failures, its run record and its leases, so none
can clobber what another wrote. The two records every process shares are written so that a race is
harmless: the weights' identity is created exclusively (the first writer wins and every other
compares against it), and a text version is written whole before `current` is switched to it in
one write.

An entry counts only once its `complete` attr is true; that attr is written after every array, so
an entry interrupted at any moment (kill -9 included) is seen as incomplete and redone.
"""

from __future__ import annotations

import hashlib
import re

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
VIDEOS, FAILURES, RUNS, TEXT = "videos", "failures", "runs", "text"
WEIGHTS, CLAIMS = "weights", "claims"  # folders of JSON objects written through fsspec (store/objects.py)
FOLDERS = (VIDEOS, FAILURES, RUNS, WEIGHTS, CLAIMS)  # made with the store (TEXT comes with the first text)
# Entry array names: every other module spells them through these.
CLIP, TIMESTAMPS, FRAME_INDEX = "clip", "timestamps_ms", "frame_index"
FLOW, FLOW_HIST, FLOW_TS = "flow", "flow_hist", "flow_ts_ms"
TOKENS = "tokens"
BOXES, BOX_SCORE, BOX_CLASS, BOX_VALID, BOX_TRACK = "boxes", "box_score", "box_class", "box_valid", "box_track"
BOX_FLOW_HIST = "box_flow_hist"
PERSON_CLASS = 0  # box_class of a person; a detector's object classes follow from 1, -1 marks an empty slot
# Entry attrs other modules read: sampled frames, and the source frame's size in pixels.
NUM_FRAMES, FRAME_WIDTH, FRAME_HEIGHT = "num_frames", "width", "height"
# Entry attrs of a store made with a detector, so `fgm-extract info` can sum them without reading arrays:
# the entry's sampled frames holding a person box, and the distinct tracks among its stored boxes.
PERSON_FRAMES, BOX_TRACKS = "person_frames", "box_tracks"
BOX_FRAME_ARRAYS = (BOXES, BOX_SCORE, BOX_CLASS, BOX_VALID, BOX_TRACK)  # (T, K, ...) per sampled frame
BOX_ARRAYS = BOX_FRAME_ARRAYS + (BOX_FLOW_HIST,)  # written together, only by a store made with a detector
FRAME_ARRAYS = (CLIP, TIMESTAMPS, FRAME_INDEX)
FLOW_ARRAYS = (FLOW, FLOW_HIST, FLOW_TS)
FLOW_STEP_ARRAYS = FLOW_ARRAYS + (BOX_FLOW_HIST,)  # every array with one row per flow pair (Tf), not per frame
MODEL_ARRAYS = (CLIP, FLOW, FLOW_HIST)  # what a model reads of every entry (TOKENS and backbones on demand)
ARRAY_DTYPES = {
    CLIP: "float32",
    TIMESTAMPS: "float64",
    FRAME_INDEX: "int64",
    FLOW: "float16",
    FLOW_HIST: "float32",
    FLOW_TS: "float64",
    TOKENS: "float16",
    BOXES: "float32",
    BOX_SCORE: "float32",
    BOX_CLASS: "int16",
    BOX_VALID: "bool",
    BOX_TRACK: "int32",
    BOX_FLOW_HIST: "float32",
}
TEXT_ARRAYS = ("sentence_emb", "class_emb", "scene_emb")


class StoreError(Exception):
    """The store cannot be used as asked; the message says what to do."""


def entry_id(key: str) -> str:
    """Zarr-safe, readable, unique name for a video key: sanitised basename plus a hash of the key."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", key.rsplit("/", 1)[-1]).lstrip("_.") or "video"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{base[:60]}-{digest}"


def weights_name(backbone: str | None = None, detector: str | None = None) -> str:
    """The object naming a tower's weights identity: clip.json, backbone-<name>.json or detector-<name>.json."""
    if detector is not None:
        return f"detector-{detector}.json"
    return "clip.json" if backbone is None else f"backbone-{backbone}.json"
