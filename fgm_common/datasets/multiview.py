"""The paper's "Multiview Dataset (Yu et al., 2020)": which dataset that is could not be determined.

The paper gives no reference list in the text we have and no description beyond "action videos from
different viewpoints", so this adapter reads a generic multi-view layout:
- `<class>/<view>/<clip>`: label = the class folder, view = the folder between class and clip; or
- `<class>/<clip>` where the clip name carries a view token (`cam2`, `camera_3`, `view1`, `v4`, `c5`).
View tokens are spelled one way (`cam02`, `camera_2`, `v2` -> `view2`); other view folder names are kept.
The actor, when the clip name carries one (`person03`, `subject_2`, `actor1`, `s05`, `p12`), is the group.
Protocol: the paper's 70/30 (grouped by actor when actors are known); cross-view works.
"""

from __future__ import annotations

import re

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import components, fail, stem

_VIEW = re.compile(r"^(?:cam|camera|view|v|c)[_\-]?(\d+)$", re.IGNORECASE)
_ACTOR = re.compile(r"^(person|subject|actor|performer|s|p)[_\-]?(\d+)$", re.IGNORECASE)


@register("multiview")
class MultiviewDataset:
    """<class>/<view>/<clip> or <class>/<clip with a view token>; group = an actor token in the clip name."""

    name = "multiview"
    protocol = "auto"
    descriptions: dict[str, list[str]] = {}  # the classes are unknown; templates on the label are used

    def annotate(self, key: str, meta: dict) -> Annotation:
        parts = components(key)
        words = re.split(r"[_\-. ]+", stem(key))
        actor = next((f"{m[1].lower()}{int(m[2])}" for w in words if (m := _ACTOR.match(w))), "")
        in_name = next((_view_id(w) for w in words if _VIEW.match(w)), "")
        if len(parts) >= 3 and _VIEW.match(parts[-2]):  # <class>/cam2/<clip>
            return Annotation(parts[-3], group=actor, view=_view_id(parts[-2]))
        if len(parts) >= 2 and in_name:  # <class>/<clip_cam2>
            return Annotation(parts[-2], group=actor, view=in_name)
        if len(parts) >= 3:  # <class>/<any view name, e.g. front>/<clip>
            return Annotation(parts[-3], group=actor, view=parts[-2])
        raise fail(key, "<class>/<view>/<clip>, or <class>/<clip> with a view token such as cam2 or view1 "
                        "in the clip name (generic multi-view layout)")


def _view_id(token: str) -> str:
    """'cam02', 'camera_2', 'v2' -> 'view2': one spelling per camera, so cross-view folds line up."""
    return f"view{int(_VIEW.match(token)[1])}"
