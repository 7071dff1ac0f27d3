"""FLOPs buckets (DetOFA 3.1.1): equal-width intervals between the smallest and largest FLOPs of a space.

FLOPs are the detector's GMACs at [3, S, S] (`gaia_cli.space.flops.detector_gflops`), which grow with every
depth, width and scale, so the space's extremes are its smallest and largest archs. A path's bucket is the
interval its FLOPs fall in (the largest FLOPs belong to the last bucket): `bucket_of`, which the pruning
record in a space uses too (gaia_cli.space.pruning).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.flops import detector_gflops_rows
from gaia_cli.space.pruning import bucket_of
from gaia_cli.space.sampling import sample

ENUMERATE_UP_TO = 50_000  # spaces this small are enumerated to sample each bucket; larger ones are drawn


def same_space(a: SearchSpace, b: SearchSpace) -> bool:
    """Whether a path filter of one ranks the paths of the other: the same choices and detector (not the name,
    anchors or pruning)."""
    return a.same_weights(b)


def gflops(archs: Iterable[Arch], classes: int, detector: dict[str, Any]) -> np.ndarray:
    """The detector's GMACs of each arch (one vectorised closed form for all)."""
    rows = np.array([(*a.depth, *a.width, a.scale) for a in archs], dtype=np.int64).reshape(-1, 10)
    return np.asarray(detector_gflops_rows(rows, classes, detector), dtype=np.float64)


def bucket_edges(space: SearchSpace, buckets: int, classes: int) -> list[float]:
    """`buckets` + 1 edges from the smallest arch's FLOPs to the largest's."""
    lo, hi = gflops([space.min_arch, space.max_arch], classes, space.detector)
    return [float(x) for x in np.linspace(lo, hi, buckets + 1)]


def sample_per_bucket(space: SearchSpace, edges: list[float], classes: int, per_bucket: int,
                      rng: np.random.Generator, max_draws: int = 200_000,
                      allowed=None) -> list[list[Arch]]:
    """Up to `per_bucket` distinct archs drawn uniformly within each bucket (all of a bucket's archs when it
    holds fewer). `allowed(arch, bucket)` may restrict the draw (a pruned space). A small space is
    enumerated; a large one is drawn uniformly until each bucket is full or `max_draws` is spent."""
    n = len(edges) - 1
    if space.size() <= ENUMERATE_UP_TO:
        archs = list(space.enumerate())
        which = bucket_of(gflops(archs, classes, space.detector), edges)
        out = []
        for b in range(n):
            pool = [a for a, k in zip(archs, which) if k == b and (allowed is None or allowed(a, b))]
            pick = rng.permutation(len(pool))[:per_bucket]
            out.append([pool[i] for i in sorted(pick)])
        return out
    found: list[dict[Arch, None]] = [{} for _ in range(n)]
    for _ in range(0, max_draws, 4096):  # drawn and bucketed 4,096 at a time
        if all(len(f) >= per_bucket for f in found):
            break
        archs = [sample(space, "uniform", rng) for _ in range(4096)]
        for arch, b in zip(archs, bucket_of(gflops(archs, classes, space.detector), edges).tolist()):
            if len(found[b]) < per_bucket and (allowed is None or allowed(arch, b)):
                found[b][arch] = None
    return [list(f) for f in found]
