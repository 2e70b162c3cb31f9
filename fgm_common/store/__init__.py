"""The zarr feature store: the only package that knows the layout (layout.py) and writes it (feature_store.py)."""

from fgm_common.store.feature_store import Entry, FeatureStore
from fgm_common.store.layout import (ARRAY_DTYPES, BOX_ARRAYS, BOX_CLASS, BOX_FLOW_HIST, BOX_FRAME_ARRAYS,
                                     BOX_SCORE, BOX_TRACK, BOX_TRACKS, BOX_VALID, BOXES, CLIP, FLOW, FLOW_ARRAYS, FLOW_HIST,
                                     FLOW_STEP_ARRAYS, FLOW_TS, FRAME_ARRAYS, FRAME_INDEX, MODEL_ARRAYS, PERSON_CLASS,
                                     PERSON_FRAMES, SCHEMA_VERSION, TIMESTAMPS, TOKENS, VIDEOS, StoreError, entry_id)

__all__ = ["ARRAY_DTYPES", "BOX_ARRAYS", "BOX_CLASS", "BOX_FLOW_HIST", "BOX_FRAME_ARRAYS", "BOX_SCORE", "BOX_TRACK",
           "BOX_TRACKS", "BOX_VALID", "BOXES", "FLOW_STEP_ARRAYS", "PERSON_CLASS", "PERSON_FRAMES", "CLIP", "FLOW", "FLOW_ARRAYS", "FLOW_HIST", "FLOW_TS", "FRAME_ARRAYS", "FRAME_INDEX",
           "MODEL_ARRAYS", "SCHEMA_VERSION", "TIMESTAMPS", "TOKENS", "VIDEOS", "Entry", "FeatureStore", "StoreError",
           "entry_id"]
