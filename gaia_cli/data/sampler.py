"""Aspect-ratio grouped batching, as in torchvision's detection references.

Images of similar shape go in the same batch, so the padded batch tensor wastes little. Images are put in
groups by their aspect ratio (width / height); a batch is drawn from one group at a time in the order the
base sampler visits the images, so shuffling and distributed sampling keep working.

Each group ends an epoch with a partial batch. Training fills it up (`fill`), as torchvision's references
do, with the group's first images of the epoch again: the learning rate is set for `batch_size` images, and
a batch of one or two images trained at that rate (and normalised by batch norm over them alone) is a
step of a different recipe. On a large dataset this changes a few batches an epoch; on a small one, whose
groups hold a handful of images, it is most of them.
"""

from __future__ import annotations

import bisect
from typing import Iterator, Sequence

from torch.utils.data import Sampler


def aspect_ratio_groups(ratios: Sequence[float], bins: Sequence[float] = (1.0,)) -> list[int]:
    """Group id of each aspect ratio: the number of bin edges it is at or above (edges sorted).

    The default single edge at 1.0 splits portrait (group 0) from landscape and square (group 1).
    """
    edges = sorted(bins)
    return [bisect.bisect_right(edges, r) for r in ratios]


class GroupedBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size` indices that share a group id.

    Indices come in the order `sampler` yields them; each goes into its group's buffer, and a full buffer
    is a batch. At the end, the partial buffers are yielded too unless `drop_last`; with `fill`, each is
    first topped up to `batch_size` with its group's indices in the order they came (repeated if the group
    holds fewer than a batch).
    """

    def __init__(self, sampler: Sampler[int] | Sequence[int], group_ids: Sequence[int], batch_size: int,
                 drop_last: bool = False, fill: bool = False):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if drop_last and fill:
            raise ValueError("drop_last and fill exclude each other")
        self.sampler = sampler
        self.group_ids = list(group_ids)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.fill = fill

    def __iter__(self) -> Iterator[list[int]]:
        buffers: dict[int, list[int]] = {}
        seen: dict[int, list[int]] = {}
        for index in self.sampler:
            buffer = buffers.setdefault(self.group_ids[index], [])
            buffer.append(index)
            seen.setdefault(self.group_ids[index], []).append(index)
            if len(buffer) == self.batch_size:
                yield buffer
                buffers[self.group_ids[index]] = []
        if not self.drop_last:
            for group in sorted(buffers):
                buffer = buffers[group]
                if buffer and self.fill:
                    order = seen[group]
                    buffer = buffer + [order[i % len(order)] for i in range(self.batch_size - len(buffer))]
                if buffer:
                    yield buffer

    def __len__(self) -> int:
        counts: dict[int, int] = {}
        for index in self.sampler:
            counts[self.group_ids[index]] = counts.get(self.group_ids[index], 0) + 1
        if self.drop_last:
            return sum(n // self.batch_size for n in counts.values())
        return sum(-(-n // self.batch_size) for n in counts.values())
