"""The zarr feature store: the only package that knows the layout (layout.py) and writes it (feature_store.py)."""

from fgm_common.store.feature_store import Entry, FeatureStore
from fgm_common.store.layout import (ARRAY_DTYPES, CLIP, FLOW, FLOW_ARRAYS, FLOW_HIST, FLOW_TS, FRAME_ARRAYS,
                                     FRAME_INDEX, MODEL_ARRAYS, SCHEMA_VERSION, TIMESTAMPS, TOKENS, VIDEOS,
                                     StoreError, entry_id)

__all__ = ["ARRAY_DTYPES", "CLIP", "FLOW", "FLOW_ARRAYS", "FLOW_HIST", "FLOW_TS", "FRAME_ARRAYS", "FRAME_INDEX",
           "MODEL_ARRAYS", "SCHEMA_VERSION", "TIMESTAMPS", "TOKENS", "VIDEOS", "Entry", "FeatureStore", "StoreError",
           "entry_id"]
