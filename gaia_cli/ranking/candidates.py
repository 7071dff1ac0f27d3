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

from gaia_cli.errors import BadInput
from gaia_cli.space.arch import Arch, SearchSpace

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

    `-` reads stdin. A repeated arch is kept once.
    """
    from gaia_cli.artifacts import check_header, loads_json, read_input

    src = read_input(spec)
    try:
        text = src.data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("is not UTF-8 text, expected archs", src.name) from None
    if not text.strip():
        raise BadInput("is empty: no candidates to rank", src.name)
    try:
        try:
            objs = [loads_json(text)]
        except ValueError:
            try:
                objs = [loads_json(ln) for ln in text.splitlines() if ln.strip()]
            except ValueError as exc:
                raise BadInput(f"neither a JSON document nor JSON lines of archs ({exc})", src.name) from None
    except RecursionError:
        raise BadInput("is nested too deeply to hold archs", src.name) from None
    archs: list[Arch] = []
    about: dict[str, Any] = {"source": src.name, "ref": src.ref}
    for obj in objs:
        kind = check_header(obj, ("gaia/arch", "gaia/arch-set", "gaia/ranking"), src.name) \
            if isinstance(obj, dict) and "kind" in obj else None
        if kind == "gaia/arch-set":
            items = obj.get("archs")
            if not isinstance(items, list):
                raise BadInput("a gaia/arch-set needs 'archs', a list of archs", src.name)
            archs += [Arch.from_dict(a, src.name) for a in items]
        elif kind == "gaia/ranking":
            items = obj.get("candidates")
            if not isinstance(items, list):
                raise BadInput("a gaia/ranking needs 'candidates', a list", src.name)
            archs += [Arch.from_dict(c.get("arch") if isinstance(c, dict) else c, src.name) for c in items]
            about["supernet"] = obj.get("supernet")
        else:
            archs.append(Arch.from_dict(obj, src.name))
    unique = list(dict.fromkeys(archs))
    if not unique:
        raise BadInput("holds no archs: no candidates to rank", src.name)
    about["repeated"] = len(archs) - len(unique)
    return unique, about


def best_of_ranking(obj: dict[str, Any], source: str, supernet_sha256: str | None = None) -> Arch:
    """The `best` of a gaia/ranking: what `finetune --arch`, `eval --arch` and `space flops` take from one.

    With `supernet_sha256` (the --weights a command uses), a ranking of another supernet is refused.
    """
    best = obj.get("best")
    if not isinstance(best, dict):
        why = "it is partial (merge its shards first)" if obj.get("complete") is False else "it names no best"
        raise BadInput(f"a gaia/ranking with no best arch: {why}", source)
    ranked = (obj.get("supernet") or {}).get("sha256")
    if supernet_sha256 is not None and ranked is not None and ranked != supernet_sha256:
        raise BadInput(f"is a ranking of another supernet (sha256 {ranked[:12]}...; --weights is "
                       f"{supernet_sha256[:12]}...)", source)
    return Arch.from_dict(best, source)
