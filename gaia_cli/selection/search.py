"""Exact cosine search between represent vectors of the same category, one chunk of upstream rows at a time.

The target's vectors are few (Q, one per target image and category); the upstream's are many (a million
images or more) and arrive as chunks: `(category ids [n], unit vectors [n, D])`, stored in fp16. Each chunk
is moved to the device as fp32 and multiplied, category by category, with the target vectors of that
category alone (cosine of unit vectors is their dot product; vectors of different categories are never
compared). Running best lists are merged with each chunk's best, so memory is bounded by one chunk and the
lists (k per target vector, or `keep` per category), never by the upstream size. The result is exact: the
same as sorting the full P x Q similarity matrix.

Rows are numbered globally in the order the chunks come (the caller maps them back to images).

- `top_k`: for each target vector, its k most similar upstream rows (GAIA's top-k).
- `best_per_category`: for each category, the `keep` upstream rows whose best similarity to any target
  vector of that category is highest, with that target (GAIA's most-similar, over all P x Q pairs). With
  `rank` a function of the rows, the lists are ranked by it instead (random selection ranks by a hash).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np
import torch

NEG = float("-inf")


@dataclasses.dataclass
class Chunk:
    """Upstream rows `start .. start + n - 1`: their categories [n] (int64) and unit vectors [n, D] (fp16/fp32).

    `ids` [n] (int64, optional) are the rows' image ids, for `rank` functions that key on the image."""

    start: int
    categories: torch.Tensor
    vectors: torch.Tensor
    ids: torch.Tensor | None = None
    dataset: int = 0


class Targets:
    """The target's represent vectors [Q, D] and categories [Q], grouped by category on `device` (fp32)."""

    def __init__(self, vectors: torch.Tensor, categories: torch.Tensor, device: torch.device | str = "cpu"):
        if vectors.dim() != 2 or categories.shape != (vectors.shape[0],):
            raise ValueError("targets: vectors [Q, D] and categories [Q]")
        self.device = torch.device(device)
        self.dim = vectors.shape[1]
        self.count = vectors.shape[0]
        self.categories = categories.to(torch.int64).cpu()
        self.by_category: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for c in self.categories.unique().tolist():
            index = (self.categories == c).nonzero().flatten()
            self.by_category[c] = (index.to(self.device), vectors[index].to(self.device, torch.float32))

    def groups(self, chunk: Chunk, targets_first: bool = False):
        """(category, local rows [m] of the chunk, target indices [q], similarities [m, q] fp32, or [q, m]
        with `targets_first`) for each category that the chunk and the targets share. The layout is the one
        whose next reduction runs along contiguous memory (top-k along rows, the best target along targets):
        on a CPU several times faster than the other."""
        cats = chunk.categories.to(torch.int64)
        for c in cats.unique().tolist():
            if c not in self.by_category:
                continue
            if cats[0] == c and cats[-1] == c and bool((cats == c).all()):
                local, x = torch.arange(cats.numel()), chunk.vectors  # a chunk of one category: used whole
            else:
                local = (cats == c).nonzero().flatten()
                x = chunk.vectors[local]
            index, t = self.by_category[c]
            x = x.to(self.device).to(torch.float32)  # moved as stored (fp16), accumulated in fp32
            sims = t @ x.T if targets_first else x @ t.T
            yield c, local, index, sims


@dataclasses.dataclass
class TopK:
    """For each target vector q: `scores[q]` and global `rows[q]` of its k best upstream rows, best first
    (-inf and -1 where fewer than k rows share its category)."""

    scores: torch.Tensor
    rows: torch.Tensor


def top_k(targets: Targets, chunks: Iterable[Chunk], k: int) -> TopK:
    dev = targets.device
    scores = torch.full((targets.count, k), NEG, device=dev)
    rows = torch.full((targets.count, k), -1, dtype=torch.int64, device=dev)
    for chunk in chunks:
        for _, local, index, sims in targets.groups(chunk, targets_first=True):
            kk = min(k, sims.shape[1])
            v, i = sims.topk(kk, dim=1)  # [q, kk]
            g = local.to(dev)[i] + chunk.start
            both_v = torch.cat([scores[index], v], dim=1)
            both_r = torch.cat([rows[index], g], dim=1)
            best_v, pick = both_v.topk(k, dim=1)
            scores[index] = best_v
            rows[index] = both_r.gather(1, pick)
    return TopK(scores.cpu(), rows.cpu())


@dataclasses.dataclass
class Best:
    """One category's best upstream rows, best first: rank (the similarity, or the `rank` function's key),
    similarity to the best target vector, that target's index, the global row."""

    rank: torch.Tensor
    scores: torch.Tensor
    targets: torch.Tensor
    rows: torch.Tensor


def best_per_category(targets: Targets, chunks: Iterable[Chunk], keep: int,
                      rank: Callable[[Chunk, torch.Tensor], torch.Tensor] | None = None) -> dict[int, Best]:
    """Per category, the `keep` rows ranked highest by their best similarity to a target vector of that
    category (or by `rank(chunk, local rows)` when given), with that similarity and target."""
    dev = targets.device
    best: dict[int, Best] = {}
    for chunk in chunks:
        for c, local, index, sims in targets.groups(chunk):
            score, which = sims.max(dim=1)
            key = score if rank is None else rank(chunk, local).to(dev, torch.float32)
            g = local.to(dev) + chunk.start
            old = best.get(c)
            if old is not None:
                key, score = torch.cat([old.rank, key]), torch.cat([old.scores, score])
                tgt, g = torch.cat([old.targets, index[which]]), torch.cat([old.rows, g])
            else:
                tgt = index[which]
            if key.numel() > keep:
                key, pick = key.topk(keep)
            else:
                key, pick = key.sort(descending=True)
            best[c] = Best(key, score[pick], tgt[pick], g[pick])
    return {c: Best(b.rank.cpu(), b.scores.cpu(), b.targets.cpu(), b.rows.cpu()) for c, b in best.items()}


def brute_force(targets_vectors: torch.Tensor, target_categories: torch.Tensor, vectors: torch.Tensor,
                categories: torch.Tensor) -> torch.Tensor:
    """The full similarity matrix [P, Q] in fp32, -inf between different categories (for checks)."""
    sims = vectors.float() @ targets_vectors.float().T
    same = categories[:, None].to(torch.int64) == target_categories[None, :].to(torch.int64)
    return sims.masked_fill(~same, NEG)


def image_keys(ids: torch.Tensor, seed: int) -> torch.Tensor:
    """A uniform key in [0, 1) for each image id, the same for the same (id, seed): rows of one image share
    it, so ranking by it samples images uniformly without replacement (splitmix64 of id and seed)."""
    mask = (1 << 64) - 1
    x = ids.to(torch.int64).numpy().astype("uint64")
    with np.errstate(over="ignore"):
        x = x + np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) & mask)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return torch.from_numpy((x >> np.uint64(11)).astype(np.float64) / float(1 << 53))
