"""The zarr feature store: the only package that knows the layout (layout.py) and writes it (feature_store.py)."""

from fgm_common.store.feature_store import Entry, FeatureStore
from fgm_common.store.layout import (ARRAY_DTYPES, BOXES, BOX_ARRAYS, BOX_CLASS, BOX_FLOW_HIST, BOX_FRAME_ARRAYS,
                                     BOX_SCORE, BOX_TRACK, BOX_TRACKS, BOX_VALID, CLIP, FLOW, FLOW_ARRAYS,
                                     FLOW_HIST, FLOW_STEP_ARRAYS, FLOW_TS, FRAME_ARRAYS, FRAME_HEIGHT, FRAME_INDEX,
                                     FRAME_WIDTH, MODEL_ARRAYS, NUM_FRAMES, PERSON_CLASS, PERSON_FRAMES,
                                     SCHEMA_VERSION, StoreError, TIMESTAMPS, TOKENS, VIDEOS, entry_id)

__all__ = ["ARRAY_DTYPES", "BOXES", "BOX_ARRAYS", "BOX_CLASS", "BOX_FLOW_HIST", "BOX_FRAME_ARRAYS", "BOX_SCORE",
           "BOX_TRACK", "BOX_TRACKS", "BOX_VALID", "CLIP", "FLOW", "FLOW_ARRAYS", "FLOW_HIST", "FLOW_STEP_ARRAYS",
           "FLOW_TS", "FRAME_ARRAYS", "FRAME_HEIGHT", "FRAME_INDEX", "FRAME_WIDTH", "MODEL_ARRAYS", "NUM_FRAMES",
           "PERSON_CLASS", "PERSON_FRAMES", "SCHEMA_VERSION", "TIMESTAMPS", "TOKENS", "VIDEOS", "Entry",
           "FeatureStore", "StoreError", "entry_id"]
