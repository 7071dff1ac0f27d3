"""The `gaia/pathfilter` HDF5 artifact, and the scorer read from it.

Tensors: the network's weights. Meta: `space` (the space the filter ranks), `filter` (architecture, FLOPs
bucket edges, the classes the FLOPs were counted with), `measurements` (the table it was fitted on, each
row marked train or val), `report` (held-out figures beside the baselines) and `training`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np
import torch

from gaia_cli.artifacts import H5Artifact, InputRef, write_h5
from gaia_cli.errors import BadInput
from gaia_cli.pathfilter.buckets import gflops, same_space, sample_per_bucket
from gaia_cli.pathfilter.model import ARCHITECTURE, PathFilter
from gaia_cli.pathfilter.tokens import Tokenizer
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.pruning import bucket_of

KIND = "gaia/pathfilter"
STATS_PER_BUCKET = 512  # paths per bucket whose scores standardise that bucket's (Scorer.bucket_stats)


@dataclasses.dataclass
class Scorer:
    """A fitted path filter: FLOPs bucket and score of any path of its space."""

    model: PathFilter
    space: SearchSpace
    edges: list[float]
    classes: int
    ref: InputRef | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokenizer = Tokenizer.for_space(self.space)
        self.model.eval()

    @property
    def buckets(self) -> int:
        return len(self.edges) - 1

    def bucket(self, archs: Sequence[Arch]) -> np.ndarray:
        return bucket_of(gflops(archs, self.classes, self.space.detector), self.edges)

    @torch.inference_mode()
    def score_tokens(self, tokens: np.ndarray, buckets: np.ndarray, batch: int = 4096) -> np.ndarray:
        out = np.empty(len(tokens), dtype=np.float32)
        for i in range(0, len(tokens), batch):
            t = torch.from_numpy(tokens[i: i + batch])
            b = torch.from_numpy(buckets[i: i + batch])
            out[i: i + batch] = self.model(t, b).numpy()
        return out

    def score(self, archs: Sequence[Arch], buckets: np.ndarray | None = None) -> np.ndarray:
        """Each path's score (higher = lower validation loss), scored in batches."""
        if not len(archs):
            return np.zeros(0, dtype=np.float32)
        buckets = self.bucket(archs) if buckets is None else buckets
        return self.score_tokens(self.tokenizer.encode(archs), np.asarray(buckets, dtype=np.int64))

    def score_rows(self, rows: np.ndarray, buckets: np.ndarray) -> np.ndarray:
        """`score` of paths given as gene rows [N, 10] (4 depths, 5 widths, the scale), no `Arch` built."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 10)
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        tokens = self.tokenizer.encode_arrays(rows[:, :4], rows[:, 4:9], rows[:, 9])
        return self.score_tokens(tokens, np.asarray(buckets, dtype=np.int64))

    def bucket_stats(self, per_bucket: int = STATS_PER_BUCKET) -> np.ndarray:
        """[buckets, 2]: mean and standard deviation of the scores of up to `per_bucket` paths drawn uniformly
        within each bucket (seed 0, so the same filter always gives the same figures; computed once)."""
        if getattr(self, "_stats", None) is None:
            pools = sample_per_bucket(self.space, self.edges, self.classes, per_bucket, np.random.default_rng(0))
            stats = np.zeros((self.buckets, 2))
            for b, pool in enumerate(pools):
                s = self.score(pool, np.full(len(pool), b, dtype=np.int64)) if pool else np.zeros(0)
                sd = float(s.std()) if len(s) > 1 else 0.0
                stats[b] = (float(s.mean()) if len(s) else 0.0, sd if sd > 0 else 1.0)
            self._stats = stats
        return self._stats

    def standardize(self, archs: Sequence[Arch], scores: np.ndarray, buckets: np.ndarray | None = None) -> np.ndarray:
        """Scores made comparable across buckets: each standardised by its own bucket's mean and standard
        deviation (`bucket_stats`). The filter's loss ranks paths only within a bucket (DetOFA 3.1.2), and its
        bucket embedding may shift a whole bucket's scores, so raw scores of two buckets say nothing."""
        buckets = self.bucket(archs) if buckets is None else np.asarray(buckets, dtype=np.int64)
        stats = self.bucket_stats()
        return (np.asarray(scores, dtype=np.float64) - stats[buckets, 0]) / stats[buckets, 1]

    def check_space(self, space: SearchSpace, source: str) -> None:
        if not same_space(space, self.space):
            raise BadInput(f"the path filter ranks paths of space {self.space.name!r}, not of {space.name!r} "
                           "(their depth, width, scale choices or detector differ)", source)


def save_filter(path: str | os.PathLike, scorer: Scorer, meta: dict[str, Any], inputs: list[InputRef]) -> dict[str, str]:
    filt = {"architecture": ARCHITECTURE, "edges": scorer.edges, "classes": scorer.classes,
            "buckets": scorer.buckets}
    return write_h5(path, KIND, scorer.model.state_dict(),
                    {"space": scorer.space.to_payload(), "filter": filt, **meta}, inputs)


def load_filter(spec: str | os.PathLike) -> Scorer:
    with H5Artifact(spec, KIND) as art:
        try:
            space = SearchSpace.from_payload(art.meta("space"), str(art.path))
            filt = art.meta("filter")
            edges = [float(x) for x in filt["edges"]]
            classes = int(filt["classes"])
            settings = dict(filt["architecture"])
        except (KeyError, TypeError, ValueError):
            raise BadInput("its /meta/filter lacks edges, classes or architecture", art.path) from None
        meta = {name: art.meta(name) for name in ("report", "training") if name in art.meta_names()}
        state = art.tensors()
        ref = art.ref
    if len(edges) < 2 or edges != sorted(edges):
        raise BadInput("its FLOPs bucket edges are not increasing", spec)
    model = PathFilter.build(Tokenizer.for_space(space), len(edges) - 1, settings)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BadInput(f"its weights do not fit a path filter of its space ({str(exc).splitlines()[0]})", spec) from None
    return Scorer(model, space, edges, classes, ref, meta)


def scored_lines(archs, space: SearchSpace, spec: str, batch: int = 4096):
    """Each arch of `archs` as a gaia/arch payload with its FLOPs bucket and score (scored in batches)."""
    import itertools

    scorer = load_filter(spec)
    scorer.check_space(space, spec)
    archs = iter(archs)
    while chunk := list(itertools.islice(archs, batch)):
        buckets = scorer.bucket(chunk)
        for arch, b, score in zip(chunk, buckets, scorer.score(chunk, buckets)):
            yield {**arch.as_dict(), "space": space.name,
                   "pathfilter": {"bucket": int(b), "score": float(score), "filter": scorer.ref.path}}
