"""Drawing paths from a pruned space (DetOFA Algorithm 1, lines 11-14).

`accepting(sampler)` wraps a path sampler of a space: for a space without pruning it is the sampler itself;
for a pruned space, a drawn path that an operation removed in its FLOPs bucket allows, or whose score falls
below its bucket's threshold, is redrawn uniformly (with the sampler's own generator, so a resumed run
draws the same paths) until one is allowed. The counts of paths drawn and redrawn (and why) are kept in the
sampler's state, so they survive a checkpoint, and logged every `log_every` paths.
"""

from __future__ import annotations

import os
from typing import Any

from gaia_cli import console
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.space.arch import Arch, SearchSpace

MAX_REDRAWS = 10_000


class Acceptance:
    """Whether a pruned space allows a path: its operations, then its score against its bucket's threshold."""

    def __init__(self, space: SearchSpace):
        from gaia_cli.pathfilter.pruned import Pruning

        self.space = space
        self.pruning = Pruning.from_payload(space.pruning, space, f"space {space.name!r}")
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = load_pruning_filter(self.pruning, self.space)
        return self._scorer

    def verdict(self, arch: Arch) -> tuple[str | None, int, float | None]:
        """(None if allowed, else 'operation' or 'score'; the bucket; the score when one was needed)."""
        b = self.pruning.bucket(arch, self.space.detector)
        if not self.pruning.operations_allow(arch, b):
            return "operation", b, None
        threshold = self.pruning.thresholds[b]
        if threshold is None:
            return None, b, None
        score = float(self.scorer.score([arch], [b])[0])
        return (None if score >= threshold else "score"), b, score


def load_pruning_filter(pruning, space: SearchSpace):
    """The path filter a pruned space names, refused if it is missing or changed since `prune`."""
    from gaia_cli.artifacts import sha256_file
    from gaia_cli.pathfilter.filterfile import load_filter

    path = pruning.filter_path
    if not os.path.isfile(path):
        raise BadInput(f"the pruned space's path filter {path} is missing (its thresholds need it)",
                       f"space {space.name!r}")
    if sha256_file(path) != pruning.filter_sha256:
        raise BadInput(f"the pruned space's path filter {path} changed since it was pruned (sha256 differs)",
                       f"space {space.name!r}")
    scorer = load_filter(path)
    scorer.check_space(space, path)
    return scorer


class AcceptingSampler:
    """A sampler whose paths a pruned space allows (same interface: next, state, load_state)."""

    def __init__(self, sampler, acceptance: Acceptance, log_every: int = 100):
        self.sampler, self.acceptance, self.log_every = sampler, acceptance, log_every
        self.counts = {"drawn": 0, "redrawn_operation": 0, "redrawn_score": 0}

    def __getattr__(self, name: str) -> Any:  # rules, rng, space, position: the wrapped sampler's
        return getattr(self.sampler, name)

    def next(self) -> Arch:
        from gaia_cli.space.sampling import sample

        arch = self.sampler.next()
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
