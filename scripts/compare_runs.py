"""Compare two feature stores array by array and two fgm-train metrics.json files figure by figure.

    python scripts/compare_runs.py STORE_A STORE_B [METRICS_A METRICS_B]

Prints every difference and exits 1 if there is one: used to check that a refactor leaves a
small run's stores and metrics unchanged (docs/results.md, "Refactor check").
"""

from __future__ import annotations

import json
import sys

import numpy as np
import zarr

# Run records that differ between any two runs (ids, times, source locations), not what was computed;
# dropped at any depth of the attrs before comparing.
RUN_FIELDS = {"run_id", "runs", "created", "finished", "extract_seconds", "path", "mtime_ns"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in RUN_FIELDS}
    return value


def _walk(group, prefix=""):
    for name, arr in group.arrays():
        yield f"{prefix}{name}", arr
    for name, sub in group.groups():
        yield from _walk(sub, f"{prefix}{name}/")


def _attrs(group, prefix=""):
    yield prefix or "/", _strip(dict(group.attrs))
    for name, sub in group.groups():
        yield from _attrs(sub, f"{prefix}{name}/")


def compare_stores(a: str, b: str) -> list[str]:
    """Differences between two stores: arrays (names, shapes, dtypes, values bit for bit) and attrs."""
    ga, gb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    arrs_a, arrs_b = dict(_walk(ga)), dict(_walk(gb))
    diffs = [f"array only in one store: {n}" for n in sorted(set(arrs_a) ^ set(arrs_b))]
    for name in sorted(set(arrs_a) & set(arrs_b)):
        x, y = arrs_a[name][...], arrs_b[name][...]
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            diffs.append(f"array differs: {name} {x.shape}/{x.dtype} vs {y.shape}/{y.dtype}")
    attrs_a, attrs_b = dict(_attrs(ga)), dict(_attrs(gb))
    for name in sorted(set(attrs_a) | set(attrs_b)):
        if json.dumps(attrs_a.get(name), sort_keys=True) != json.dumps(attrs_b.get(name), sort_keys=True):
            diffs.append(f"attrs differ: {name}")
    print(f"stores: {len(arrs_a)} arrays compared, {len(diffs)} differences")
    return diffs


def compare_metrics(a: str, b: str) -> list[str]:
    """Differences in each variant's per-seed metrics, head accuracies and blend weights."""
    ma, mb = json.load(open(a))["variants"], json.load(open(b))["variants"]
    diffs = [f"variant only in one run: {n}" for n in sorted(set(ma) ^ set(mb))]
    keys = ("accuracy", "recall", "f1", "auc", "confusion", "heads", "blend")
    for name in sorted(set(ma) & set(mb)):
        for seed in ma[name]["per_seed"]:
            sa, sb = ma[name]["per_seed"][seed], mb[name]["per_seed"].get(seed, {})
            for k in keys:
                if json.dumps(sa.get(k), sort_keys=True) != json.dumps(sb.get(k), sort_keys=True):
                    diffs.append(f"{name} seed {seed} {k}: {sa.get(k)} vs {sb.get(k)}")
        print(f"{name}: accuracy {[ma[name]['per_seed'][s]['accuracy'] for s in ma[name]['per_seed']]}")
    return diffs


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 4):
        sys.exit(__doc__)
    found = compare_stores(args[0], args[1]) + (compare_metrics(args[2], args[3]) if len(args) == 4 else [])
    print("\n".join(found) or "no differences")
    sys.exit(1 if found else 0)
