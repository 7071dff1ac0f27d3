"""unify-labels: merge quality on hand-checked gold correspondences, and speed on ~2,270 names.

Quality: for each gold set (VOC, KITTI, VisDrone, DOTA, Argoverse -> COCO, in benchmarks/gold/), unify COCO
with the dataset and compare each category's outcome with the gold target (null: no counterpart).
precision = correct merges / merges made; recall = correct merges / merges the gold set expects.
Printed for the defaults, then as a sweep over thresholds with and without the LVIS synonym sets.

Speed: `gaia unify-labels coco objects365 openimages lvis voc` as a user runs it (a fresh process), first
with an empty cache (the one-time vector conversion) and then the median of later runs, against the 3 s target.

    python benchmarks/bench_unify_labels.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOLD = Path(__file__).parent / "gold"
TARGET_S = 3.0


def gold_sets() -> dict[str, dict]:
    return {p.name.split("_to_")[0]: json.loads(p.read_text())["pairs"] for p in sorted(GOLD.glob("*_to_coco.json"))}


def score(vectors, synonyms, threshold: float) -> tuple[dict[str, tuple[int, int, int]], list[str]]:
    from gaia_cli.labels.sources import parse_sources
    from gaia_cli.labels.unify import unify

    per_set, errors = {}, []
    for name, pairs in gold_sets().items():
        result = unify(parse_sources(["coco", name]), vectors, synonyms, threshold)
        names = {c["id"]: c["name"] for c in result.space.categories}
        tp = fp = fn = 0
        for c in result.space.datasets[1]["categories"]:
            predicted = names[c["unified_id"]] if c["how"] != "new" else None
            expected = pairs[c["name"]]
            if predicted == expected:
                tp += predicted is not None  # a correct "no counterpart" is neither a merge nor a miss
                continue
            if predicted is not None:
                fp += 1
            if expected is not None:
                fn += 1
            errors.append(f"{name}:{c['name']} -> {predicted} (gold {expected}, similarity {c['similarity']}, {c['via']})")
        per_set[name] = (tp, fp, fn)
    return per_set, errors


def pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def quality() -> None:
    from gaia_cli.labels.names import load_synonyms
    from gaia_cli.labels.vectors import load_vectors

    vectors = load_vectors()
    per_set, errors = score(vectors, load_synonyms("lvis"), 0.8)
    print("merge quality, defaults (GloVe 6B 50d, threshold 0.8, LVIS synonyms)")
    print(f"{'gold set':12s} {'pairs':>5s} {'correct':>7s} {'precision':>9s} {'recall':>7s}")
    for name, (tp, fp, fn) in per_set.items():
        p, r = pr(tp, fp, fn)
        print(f"{name:12s} {len(gold_sets()[name]):5d} {tp:7d} {p:9.3f} {r:7.3f}")
    total = tuple(map(sum, zip(*per_set.values())))
    p, r = pr(*total)
    print(f"{'all':12s} {sum(len(v) for v in gold_sets().values()):5d} {total[0]:7d} {p:9.3f} {r:7.3f}")
    voc = per_set["voc"]
    print(f"VOC -> COCO: {voc[0]}/20 pairs correct")
    print("errors:\n  " + "\n  ".join(errors))
    print("\nsweep: precision / recall over all gold sets")
    print(f"{'threshold':>9s} {'LVIS synonyms':>15s} {'no synonyms':>15s}")
    for threshold in (0.7, 0.75, 0.8, 0.85, 0.9):
        cells = []
        for syn in ("lvis", "none"):
            per, _ = score(vectors, load_synonyms(syn), threshold)
            p, r = pr(*map(sum, zip(*per.values())))
            cells.append(f"{p:.3f} / {r:.3f}")
        print(f"{threshold:9.2f} {cells[0]:>15s} {cells[1]:>15s}")


def speed(runs: int = 5) -> None:
    cmd = [sys.executable, "-m", "gaia_cli", "unify-labels", "coco", "objects365", "openimages", "lvis", "voc", "-q"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GAIA_CACHE_DIR": cache}
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, check=True).stdout
            times.append(time.perf_counter() - start)
    space = json.loads(out)
    names = sum(len(d["categories"]) for d in space["datasets"])
    later = statistics.median(times[1:])
    print(f"\nspeed: {names} names from 5 datasets -> {len(space['categories'])} unified categories")
    print(f"first run (vector conversion into the cache): {times[0]:.2f} s")
    print(f"later runs, median of {runs}: {later:.2f} s; target {TARGET_S:.1f} s; ratio to target {later / TARGET_S:.2f}")


if __name__ == "__main__":
    quality()
    speed()
