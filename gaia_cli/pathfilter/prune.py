"""Search-space pruning by the path filter (DetOFA 3.2).

An operation is one depth choice of one stage or one width choice of the stem or a stage. Its score in a
FLOPs bucket: `samples` paths are drawn uniformly from the space, the operation is put into each (that
coordinate set to its value), and the scores of those modified paths that fall in the bucket are averaged.
Its score over all buckets averages them all, each standardised within its bucket first (a filter's scores
rank paths only within a bucket). Operations are pruned per bucket, by one of three strategies:

- `flops`: in each bucket, `op_ratio` of the operations that occur there, drawn uniformly at random;
- `flops-score-bucket`: in each bucket, its worst-scoring `op_ratio`;
- `flops-score-all`: the worst `op_ratio_all` by their score over all buckets, removed from every bucket; then
  in each bucket the worst `op_ratio_bucket` of those left, scored again on paths without the removed ones.

A removal that would take a coordinate's last choice in a bucket, or leave none of the bucket's sampled
paths, is skipped (the next candidate is taken). Path pruning: each bucket's threshold is the `path_ratio`
quantile of the scores of its sampled paths that the operation pruning left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaia_cli import console
from gaia_cli.errors import BadInput
from gaia_cli.pathfilter.buckets import sample_per_bucket
from gaia_cli.space.pruning import Pruning
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.sampling import sample

STRATEGIES = ("flops", "flops-score-bucket", "flops-score-all")
Op = tuple[str, int, int]  # ("depth", stage, blocks) or ("width", 0 for the stem / stage + 1, channels)


def operations(space: SearchSpace) -> list[Op]:
    return [("depth", i, d) for i, c in enumerate(space.depth) for d in c] + \
           [("width", j, w) for j, c in enumerate(space.width) for w in c]


def _ops_of(arch: Arch) -> list[Op]:
    return [("depth", i, d) for i, d in enumerate(arch.depth)] + [("width", j, w) for j, w in enumerate(arch.width)]


def with_op(arch: Arch, op: Op) -> Arch:
    kind, pos, value = op
    if kind == "depth":
        return Arch(arch.depth[:pos] + (value,) + arch.depth[pos + 1:], arch.width, arch.scale)
    return Arch(arch.depth, arch.width[:pos] + (value,) + arch.width[pos + 1:], arch.scale)


def operation_scores(scorer, space: SearchSpace, samples: int, rng: np.random.Generator,
                     allowed=None) -> tuple[np.ndarray, np.ndarray]:
    """([buckets, ops] mean score of the op's modified paths in each bucket (nan: none fell there),
    [ops] mean over all of them of their scores standardised within their bucket: a filter's scores rank paths
    only within a bucket, and its bucket embedding may shift a whole bucket, so raw scores are not averaged
    across buckets). `allowed(arch)` restricts the paths drawn (to what pruning left)."""
    ops = operations(space)
    base: list[Arch] = []
    for _ in range(100 * samples):
        if len(base) >= samples:
            break
        arch = sample(space, "uniform", rng)
        if allowed is None or allowed(arch):
            base.append(arch)
    archs = [with_op(a, op) for op in ops for a in base]
    buckets = scorer.bucket(archs)
    scores = scorer.score(archs, buckets).reshape(len(ops), samples)
    buckets = buckets.reshape(len(ops), samples)
    per = np.full((scorer.buckets, len(ops)), np.nan)
    z = np.zeros_like(scores, dtype=np.float64)
    for b in range(scorer.buckets):
        m = buckets == b
        counts = m.sum(axis=1)
        sums = np.where(m, scores, 0).sum(axis=1)
        per[b] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        if m.any():  # standardised within the bucket: scores rank paths only within their bucket
            sd = float(scores[m].std())
            z[m] = (scores[m] - scores[m].mean()) / (sd if sd > 0 else 1.0)
    return per, z.mean(axis=1)


class _Removal:
    """Operations removed per bucket, with the guards of the module's note."""

    def __init__(self, space: SearchSpace, buckets: int, pool: list[list[Arch]]):
        self.space, self.pool = space, pool
        self.depth = [[set() for _ in range(4)] for _ in range(buckets)]
        self.width = [[set() for _ in range(5)] for _ in range(buckets)]

    def removed(self, b: int, op: Op) -> bool:
        kind, pos, value = op
        return value in (self.depth if kind == "depth" else self.width)[b][pos]

    def allows(self, arch: Arch, b: int) -> bool:
        return not any(d in s for d, s in zip(arch.depth, self.depth[b])) and \
            not any(w in s for w, s in zip(arch.width, self.width[b]))

    def remove(self, b: int, op: Op) -> bool:
        kind, pos, value = op
        removed = (self.depth if kind == "depth" else self.width)[b][pos]
        choices = (self.space.depth if kind == "depth" else self.space.width)[pos]
        if value in removed or len(choices) - len(removed) <= 1:
            return False
        removed.add(value)
        if not any(self.allows(a, b) for a in self.pool[b]):
            removed.discard(value)
            return False
        return True

    def remove_worst(self, b: int, ranked: list[Op], count: int) -> None:
        done = 0
        for op in ranked:
            if done >= count:
                break
            done += self.remove(b, op)


def prune(scorer, space: SearchSpace, strategy: str, op_ratio: float = 0.1, op_ratio_all: float = 0.1,
          op_ratio_bucket: float = 0.3, path_ratio: float = 0.25, samples: int = 200, seed: int = 0,
          filter_ref=None) -> Pruning:
    if strategy not in STRATEGIES:
        raise BadInput(f"unknown --strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    rng = np.random.default_rng(seed)
    ops = operations(space)
    pool = sample_per_bucket(space, scorer.edges, scorer.classes, samples, rng)
    per, overall = operation_scores(scorer, space, samples, rng)
    removal = _Removal(space, scorer.buckets, pool)
    for b in range(scorer.buckets):
        if not pool[b]:
            continue  # no path of the space falls in this bucket
        present = [k for k in range(len(ops)) if not np.isnan(per[b, k])]
        if strategy == "flops":
            order = [ops[k] for k in rng.permutation(present)]
            removal.remove_worst(b, order, int(round(op_ratio * len(present))))
        elif strategy == "flops-score-bucket":
            order = [ops[k] for k in sorted(present, key=lambda k: (per[b, k], k))]
            removal.remove_worst(b, order, int(round(op_ratio * len(present))))
    if strategy == "flops-score-all":
        worst = [ops[k] for k in np.argsort(overall, kind="stable")[: int(round(op_ratio_all * len(ops)))]]
        for b in range(scorer.buckets):
            if pool[b]:
                removal.remove_worst(b, worst, len(worst))
        # the operations left are scored again on paths without the removed ones
        gone = {op for op in worst if all(removal.removed(b, op) for b in range(scorer.buckets) if pool[b])}
        per, _ = operation_scores(scorer, space, samples, rng,
                                  lambda a: not any(op in gone for op in _ops_of(a)))
        for b in range(scorer.buckets):
            left = [k for k in range(len(ops)) if not np.isnan(per[b, k]) and not removal.removed(b, ops[k])]
            order = [ops[k] for k in sorted(left, key=lambda k: (per[b, k], k))]
            if pool[b]:
                removal.remove_worst(b, order, int(round(op_ratio_bucket * len(left))))
    thresholds: list[float | None] = []
    for b in range(scorer.buckets):
        kept = [a for a in pool[b] if removal.allows(a, b)]
        if not kept or path_ratio == 0:
            thresholds.append(None)
            continue
        scores = scorer.score(kept, np.full(len(kept), b, dtype=np.int64))
        thresholds.append(float(np.quantile(scores, path_ratio)))
        console.info(f"bucket {b}: {len(pool[b])} sampled paths, {len(kept)} left by the operation pruning, "
                     f"score threshold {thresholds[-1]:.4f}")
    settings: dict[str, Any] = {"strategy": strategy, "path_ratio": path_ratio, "samples": samples, "seed": seed}
    if strategy == "flops-score-all":
        settings.update(op_ratio_all=op_ratio_all, op_ratio_bucket=op_ratio_bucket)
    else:
        settings["op_ratio"] = op_ratio
    ref = filter_ref or scorer.ref
    return Pruning(list(scorer.edges), scorer.classes, removal.depth, removal.width, thresholds,
                   ref.path, ref.sha256, settings)
