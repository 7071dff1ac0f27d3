"""The candidates of a ranking: read from a file, or sampled within a budget by GAIA's rule; their groups.

GAIA (3.2.1) samples K (usually 5) archs within the budget for each combination of input scale and total
depth (the sum of the blocks of the 4 stages), evaluates them directly, keeps the best of each group, then
the top 50% of those. The authors' sampling rules bin the total depth into 5 ranges (11-16, 18-23, 25-30,
32-37 and 39-43 blocks on their ar50to101), which keeps stage 2 small: a group is (scale, depth range), the
ranges `DepthRanges` equal parts of the space's span of total depths.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable

import numpy as np

from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.ranking.settings import DEPTH_RANGES
from gaia_cli.space.archfile import read_archs

TRIES_PER_ARCH = 50  # draws per wanted arch of a group before the group settles for fewer


@dataclasses.dataclass(frozen=True)
class DepthRanges:
    """`count` ranges of total depth of equal width over a space's span, from its smallest total depth
    (the last range may be narrower). As many ranges as totals or more: each total depth its own group."""

    low: int
    high: int
    count: int = DEPTH_RANGES

    @classmethod
    def of(cls, space: SearchSpace, count: int = DEPTH_RANGES) -> DepthRanges:
        return cls(sum(min(d) for d in space.depth), sum(max(d) for d in space.depth), count)

    @property
    def width(self) -> int:
        return math.ceil((self.high - self.low + 1) / self.count)

    def of_total(self, total: int) -> tuple[int, int]:
        """The range (first, last total depth, inclusive) a total depth falls in."""
        first = self.low + (total - self.low) // self.width * self.width
        return first, min(first + self.width - 1, max(self.high, total))


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One arch to rank: its index in the candidate list, its costs and its group's depth range."""

    id: int
    arch: Arch
    gflops: float
    latency_ms: float | None = None
    depths: tuple[int, int] | None = None  # its depth range; None: its exact total depth

    @property
    def group(self) -> tuple[int, tuple[int, int]]:
        """(input scale, depth range): the groups GAIA samples and compares within."""
        total = sum(self.arch.depth)
        return self.arch.scale, self.depths or (total, total)


def sample_in_groups(space: SearchSpace, fits: Callable[[Arch], bool], per_group: int, seed: int,
                     ranges: DepthRanges | None = None, tries: int = TRIES_PER_ARCH) -> list[Arch]:
    """Up to `per_group` distinct archs that `fits` accepts in every (scale, depth range) group of `space`
    (`ranges`: the space's own 5 by default; give the union space's to sample a sub-space in its groups).

    Within a group, each draw takes a depth tuple uniformly among those in the range and every width
    uniformly; a group whose draws keep missing the budget settles for fewer after `tries` draws per arch.
    Groups come in order of scale, then depth range; the same seed gives the same archs.
    """
    ranges = ranges or DepthRanges.of(space)
    rng = np.random.default_rng(seed)
    depths: dict[tuple[int, int], list[tuple[int, ...]]] = {}
    for depth in itertools.product(*space.depth):
        depths.setdefault(ranges.of_total(sum(depth)), []).append(depth)
    found: list[Arch] = []
    for scale in space.scale:
        for span in sorted(depths):
            options, chosen, seen = depths[span], [], set()
            for _ in range(tries * per_group):
                if len(chosen) == per_group:
                    break
                depth = options[rng.integers(len(options))]
                width = tuple(int(c[rng.integers(len(c))]) for c in space.width)
                arch = Arch(depth, width, scale)
                if arch in seen:
                    continue
                seen.add(arch)
                if fits(arch):
                    chosen.append(arch)
            found += chosen
    return found


def groups(candidates: list[Candidate]) -> dict[tuple[int, tuple[int, int]], list[Candidate]]:
    """Candidates by (scale, depth range), groups in that order, candidates in list order within each."""
    out: dict[tuple[int, int], list[Candidate]] = {}
    for c in candidates:
        out.setdefault(c.group, []).append(c)
    return dict(sorted(out.items()))


def keep_count(n: int, fraction: float) -> int:
    """How many of `n` a keep fraction keeps: the fraction rounded up, at least one (GAIA: the top 50%)."""
    return min(n, max(1, math.ceil(n * fraction - 1e-9))) if n else 0


def read_candidates(spec: str) -> tuple[list[Arch], dict[str, Any]]:
    """Archs from a gaia/arch-set, a gaia/arch, JSON lines of gaia/arch (`space sample`) or a gaia/ranking
    (its candidates), and what the file says of them (the ranking's supernet, for a check by the caller).

    `-` reads stdin. A repeated arch is kept once. (`space.archfile.read_archs`, with rank's messages.)
    """
    archs, about = read_archs(spec, purpose="no candidates to rank")
    unique = list(dict.fromkeys(archs))
    about["repeated"] = len(archs) - len(unique)
    return unique, about
