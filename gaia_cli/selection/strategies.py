"""GAIA's data selection strategies over the search's best lists, with a budget and a per-category minimum.

- top-k: for each target image and category (each target vector), its k most similar upstream images; under
  a budget, every target vector's best comes before any one's second best, so none is left with nothing.
- most-similar: over all P x Q pairs of a category, the upstream images with the highest similarity to any
  target image of that category, up to the budget.
- random: as many images, uniform among the upstream images of the target's categories (the paper's
  control); each still carries its best similarity and the target vector that gives it.

`choose` turns candidates into images: each image once (its best candidate), first the best
`min_per_category` images of each target category, then the rest by rank up to the budget.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import torch

from gaia_cli.errors import BadInput
from gaia_cli.selection.search import Chunk, Targets, best_per_category, image_keys, top_k

STRATEGIES = ("most-similar", "top-k", "random")


@dataclasses.dataclass
class Candidate:
    """An upstream row proposed for selection: its category, its rank (higher first) and similarity, and the
    target vector that proposed it; `image` is filled in by the caller ((dataset, image id))."""

    row: int
    category: int
    rank: float
    score: float
    target: int
    image: tuple[int, int] | None = None


def candidates(strategy: str, targets: Targets, chunks: Callable[[], Iterable[Chunk]], k: int, budget: int,
               seed: int = 0) -> list[Candidate]:
    """The rows a strategy proposes (at most k per target vector, or `budget` per category)."""
    if strategy not in STRATEGIES:
        raise BadInput(f"--strategy must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    if strategy == "top-k":
        found = top_k(targets, chunks(), k)
        out = []
        for q in range(targets.count):
            c = int(targets.categories[q])
            for j, (score, row) in enumerate(zip(found.scores[q].tolist(), found.rows[q].tolist())):
                if row >= 0:  # ranked by place in its target's list first: a budget takes every target's
                    # best before any target's second (a similarity is within [-1, 1], so 0.25 x it never
                    # crosses a place)
                    out.append(Candidate(row, c, -j + 0.25 * score, score, q))
        return out
    rank = None
    if strategy == "random":
        def rank(chunk: Chunk, local: torch.Tensor) -> torch.Tensor:
            # a key per (dataset, image): rows of one image share it
            return image_keys(chunk.ids[local], seed * 1_000_003 + chunk.dataset)
    best = best_per_category(targets, chunks(), budget, rank)
    return [Candidate(row, c, r, s, t) for c, b in best.items()
            for r, s, t, row in zip(b.rank.tolist(), b.scores.tolist(), b.targets.tolist(), b.rows.tolist())]


def choose(found: list[Candidate], categories: list[int], budget: int | None, min_per_category: int) -> list[Candidate]:
    """Each image once: first up to `min_per_category` best images of each category, then the best of the
    rest, up to `budget` images in all (None: every candidate)."""
    if budget is not None and min_per_category * len(categories) > budget:
        raise BadInput(f"--budget {budget} is less than --min-per-category {min_per_category} x "
                       f"{len(categories)} target categories")
    ordered = sorted(found, key=lambda c: (-c.rank, c.row))
    chosen: dict[tuple[int, int], Candidate] = {}
    for category in categories:
        taken = 0
        for cand in ordered:
            if taken >= min_per_category:
                break
            if cand.category != category:
                continue
            if cand.image not in chosen:
                chosen[cand.image] = cand
                taken += 1
    for cand in ordered:
        if budget is not None and len(chosen) >= budget:
            break
        chosen.setdefault(cand.image, cand)
    return sorted(chosen.values(), key=lambda c: (-c.rank, c.row))
