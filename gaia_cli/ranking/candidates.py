"""The candidates of a ranking: read from a file, or sampled within a budget by GAIA's rule; their groups.

GAIA (3.2.1) samples K (usually 5) archs within the budget for each combination of input scale and total
depth (the sum of the blocks of the 4 stages), evaluates them directly, keeps the best of each group, then
the top 50% of those. Groups are keyed (scale, total depth), as in Figure 2c.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable

import numpy as np

from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.archfile import read_archs

TRIES_PER_ARCH = 50  # draws per wanted arch of a group before the group settles for fewer


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One arch to rank: its index in the candidate list, its group, and its costs."""

    id: int
    arch: Arch
    gflops: float
    latency_ms: float | None = None

    @property
    def group(self) -> tuple[int, int]:
        return group_of(self.arch)


def group_of(arch: Arch) -> tuple[int, int]:
    """(input scale, total depth): the groups GAIA samples and compares within."""
    return arch.scale, sum(arch.depth)


def sample_in_groups(space: SearchSpace, fits: Callable[[Arch], bool], per_group: int, seed: int,
                     tries: int = TRIES_PER_ARCH) -> list[Arch]:
    """Up to `per_group` distinct archs that `fits` accepts in every (scale, total depth) group of `space`.

    Within a group, each draw takes a depth tuple uniformly among those of that total and every width
    uniformly; a group whose draws keep missing the budget settles for fewer after `tries` draws per arch.
    Groups come in order of scale, then total depth; the same seed gives the same archs.
    """
    rng = np.random.default_rng(seed)
    depths: dict[int, list[tuple[int, ...]]] = {}
    for depth in itertools.product(*space.depth):
        depths.setdefault(sum(depth), []).append(depth)
    found: list[Arch] = []
    for scale in space.scale:
        for total in sorted(depths):
            options, chosen, seen = depths[total], [], set()
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


def groups(candidates: list[Candidate]) -> dict[tuple[int, int], list[Candidate]]:
    """Candidates by (scale, total depth), groups in that order, candidates in list order within each."""
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
