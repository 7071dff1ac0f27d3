"""Drawing paths from a pruned space (DetOFA Algorithm 1, lines 11-14).

`accepting(sampler)` wraps a path sampler of a space: for a space without pruning it is the sampler itself;
for a pruned space, a drawn path that an operation removed in its FLOPs bucket allows, or whose score falls
below its bucket's threshold, is redrawn uniformly (with the sampler's own generator, so a resumed run
draws the same paths) until one is allowed. The counts of paths drawn and redrawn (and why) are kept in the
sampler's state, so they survive a checkpoint, and logged every `log_every` paths.

`AcceptingRows` judges a search's candidates (DetOFA 3.3 on a pruned space) in batches of gene rows: the
buckets from the vectorised FLOPs, the operations by a mask, and only the rows that pass them (and were not
judged before) scored, in one call of the filter per batch.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from gaia_cli import console
from gaia_cli.artifacts import sha256_file
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.pathfilter.filterfile import load_filter
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.pruning import Pruning
from gaia_cli.space.sampling import sample

MAX_REDRAWS = 10_000


REASONS = (None, "operation", "score")  # the codes of `Acceptance.verdict_rows`: 0 allowed, 1, 2 refused


class Acceptance:
    """Whether a pruned space allows a path: its operations, then its score against its bucket's threshold.

    `scorer`: the pruned space's path filter already loaded (a search whose objective is that same file), so
    that it is loaded and each path scored once; its file is still checked against the space's record."""

    def __init__(self, space: SearchSpace, scorer=None):
        self.space = space
        self.pruning = Pruning.from_payload(space.pruning, space, f"space {space.name!r}")
        self._scorer = None
        if scorer is not None:
            if self.needs_scores:
                check_pruning_filter(self.pruning, space)
            scorer.check_space(space, self.pruning.filter_path)
            self._scorer = scorer

    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = load_pruning_filter(self.pruning, self.space)
        return self._scorer

    @property
    def needs_scores(self) -> bool:
        return any(t is not None for t in self.pruning.thresholds)

    def verdict(self, arch: Arch) -> tuple[str | None, int, float | None]:
        """(None if allowed, else 'operation' or 'score'; the bucket; the score when one was needed)."""
        import numpy as np

        why, buckets, scores = self.verdict_rows(np.array([(*arch.depth, *arch.width, arch.scale)], dtype=np.int64))
        score = float(scores[0])
        return REASONS[int(why[0])], int(buckets[0]), None if np.isnan(score) else score

    def verdict_rows(self, rows):
        """`verdict` of many paths at once, as gene rows [N, 10] (4 depths, 5 widths, the scale): (the
        reason codes [N], 0 allowed, 1 a removed operation, 2 a score below threshold; the buckets [N]; the
        scores [N], NaN where none was needed). Buckets from the vectorised FLOPs, operations by a mask, and
        only the rows that pass them in a bucket with a threshold scored, in one batch call."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 10)
        buckets = self.pruning.buckets_of_rows(rows, self.space.detector)
        why = np.where(self.pruning.operations_allow_rows(rows, buckets), 0, 1).astype(np.int8)
        thresholds = np.array([np.nan if t is None else t for t in self.pruning.thresholds])[buckets]
        scores = np.full(len(rows), np.nan)
        need = (why == 0) & ~np.isnan(thresholds)
        if need.any():
            scores[need] = self.scorer.score_rows(rows[need], buckets[need])
            why[np.flatnonzero(need)[~(scores[need] >= thresholds[need])]] = 2
        return why, buckets, scores


def check_pruning_filter(pruning, space: SearchSpace) -> None:
    """Refuse a pruned space whose path filter is missing or changed since `prune`."""
    path = pruning.filter_path
    if not os.path.isfile(path):
        raise BadInput(f"the pruned space's path filter {path} is missing (its thresholds need it)",
                       f"space {space.name!r}")
    if sha256_file(path) != pruning.filter_sha256:
        raise BadInput(f"the pruned space's path filter {path} changed since it was pruned (sha256 differs)",
                       f"space {space.name!r}")


def load_pruning_filter(pruning, space: SearchSpace):
    """The path filter a pruned space names, refused if it is missing or changed since `prune`."""
    check_pruning_filter(pruning, space)
    path = pruning.filter_path
    scorer = load_filter(path)
    scorer.check_space(space, path)
    return scorer


class AcceptingRows:
    """A pruned space's verdicts on the gene rows of a search's candidates, in batches: each distinct row
    judged once (cached), the candidates refused counted (by reason), and the scores that the thresholds
    needed kept, so that a search whose objective is the same path filter scores no path twice (`objective`)."""

    def __init__(self, acceptance: Acceptance):
        self.acceptance = acceptance
        self._why: dict[tuple[int, ...], int] = {}
        self.scores: dict[tuple[int, ...], float] = {}
        self.counts = {"judged": 0, "refused_operation": 0, "refused_score": 0}

    def allows(self, rows: list[tuple[int, ...]]) -> list[bool]:
        """Whether the pruned space allows each row; the rows not judged before are judged in one batch."""
        import numpy as np

        new = [r for r in dict.fromkeys(rows) if r not in self._why]
        if new:
            why, _, scores = self.acceptance.verdict_rows(np.array(new, dtype=np.int64))
            self._why.update(zip(new, why.tolist()))
            self.scores.update((r, s) for r, s in zip(new, scores.tolist()) if s == s)  # s == s: not NaN
        codes = [self._why[r] for r in rows]
        self.counts["judged"] += len(codes)
        self.counts["refused_operation"] += codes.count(1)
        self.counts["refused_score"] += codes.count(2)
        return [c == 0 for c in codes]

    def take_counts(self) -> dict[str, int]:
        """The counts since the last call (one search budget's), reset."""
        counts, self.counts = self.counts, dict.fromkeys(self.counts, 0)
        return counts

    def objective(self, score: Callable[[list[Arch]], Any]) -> Callable[[list[Arch]], list[float]]:
        """`score` (the same path filter's batch scoring) that reuses the scores the thresholds computed."""
        known = self.scores

        def batch(archs: list[Arch]) -> list[float]:
            rows = [(*a.depth, *a.width, a.scale) for a in archs]
            missing = [a for a, r in zip(archs, rows) if r not in known]
            fresh = iter(score(missing).tolist() if missing else ())
            return [known[r] if r in known else next(fresh) for r in rows]

        return batch


class AcceptingSampler:
    """A sampler whose paths a pruned space allows (same interface: next, next_step, state, load_state)."""

    def __init__(self, sampler, acceptance: Acceptance, log_every: int = 100):
        self.sampler, self.acceptance, self.log_every = sampler, acceptance, log_every
        self.counts = {"drawn": 0, "redrawn_operation": 0, "redrawn_score": 0}

    def __getattr__(self, name: str) -> Any:  # rules, rng, space, position: the wrapped sampler's
        return getattr(self.sampler, name)

    def next(self) -> Arch:
        return self._allowed(self.sampler.next())

    def next_step(self, k: int) -> list[Arch]:
        """One step's paths (the wrapped sampler's `next_step`), each refused one redrawn."""
        return [self._allowed(arch) for arch in self.sampler.next_step(k)]

    def _allowed(self, arch: Arch) -> Arch:
        for _ in range(MAX_REDRAWS):
            why, _, _ = self.acceptance.verdict(arch)
            if why is None:
                break
            self.counts[f"redrawn_{why}"] += 1
            arch = sample(self.acceptance.space, "uniform", self.sampler.rng)
        else:
            raise RunFailure(f"the pruned space {self.acceptance.space.name!r} allowed none of {MAX_REDRAWS} "
                             "paths drawn in a row (prune less)")
        self.counts["drawn"] += 1
        if self.log_every and self.counts["drawn"] % self.log_every == 0:
            c = self.counts
            console.info(f"pruned space: {c['drawn']} paths drawn, {c['redrawn_operation']} redrawn for a removed "
                         f"operation, {c['redrawn_score']} for a score below threshold")
        return arch

    def state(self) -> dict[str, Any]:
        return {**self.sampler.state(), "pruning_counts": dict(self.counts)}

    def load_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.counts.update(state.pop("pruning_counts", {}))
        self.sampler.load_state(state)


def accepting(sampler, log_every: int = 100):
    """`sampler` itself for a space without pruning, else an `AcceptingSampler` around it."""
    space = getattr(sampler, "space", None)
    if space is None or getattr(space, "pruning", None) is None:
        return sampler
    return AcceptingSampler(sampler, Acceptance(space), log_every)
