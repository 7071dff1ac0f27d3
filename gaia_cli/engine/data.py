"""Training batches that are a pure function of (seed, epoch): the same on resume, on any worker count.

Each epoch visits the images in a permutation drawn from (seed, epoch), batched by aspect-ratio group, every
batch full (a group's last batch is filled up with its first images of the epoch).
Under data parallelism rank r takes every world-th batch, cut so all ranks take the same number of steps.
A random transform (the horizontal flip) of image i in epoch e draws from a generator seeded by
(seed, e, i), not from the process's random state, so skipping batches on resume changes nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gaia_cli.data.dataset import collate_detection
from gaia_cli.data.sampler import GroupedBatchSampler
from gaia_cli.errors import BadInput


def item_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


class SeededDataset(Dataset):
    """Wraps a dataset so item `(index, epoch)` is drawn with its own seeded random state."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also (lazily) reseed CUDA's, which fork_rng
            # does not restore, and costs a stack capture per call
            torch.default_generator.manual_seed(item_seed(self.seed, epoch, index))
            return self.dataset[index]


def epoch_batches(group_ids: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int = 0,
                  world: int = 1) -> list[list[tuple[int, int]]]:
    """This rank's batches of epoch `epoch`, as lists of (index, epoch) keys."""
    order = np.random.default_rng([seed, epoch]).permutation(len(group_ids)).tolist()
    batches = list(GroupedBatchSampler(order, group_ids, batch_size, fill=True))
    per_rank = len(batches) // world
    if per_rank == 0:
        raise BadInput(f"{len(group_ids)} images make {len(batches)} batches of {batch_size}: too few for "
                       f"{world} process(es); use a smaller --batch-size")
    mine = batches[rank::world][:per_rank]
    return [[(i, epoch) for i in batch] for batch in mine]


def loader(dataset: SeededDataset, batches: list[list[tuple[int, int]]], workers: int) -> DataLoader:
    # A generator of its own: a DataLoader draws its workers' base seed from it whenever an epoch starts,
    # and drawing from torch's global generator would make a resumed run's random state differ.
    generator = torch.Generator().manual_seed(dataset.seed)
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate_detection, num_workers=workers,
                      generator=generator, worker_init_fn=_leave_signals_to_the_trainer if workers else None)


def _leave_signals_to_the_trainer(worker_id: int) -> None:  # noqa: ARG001
    """Workers inherit the trainer's Ctrl-C handler; only the main process should act on (and report) it.

    SIGTERM too: a scheduler or `timeout` signals the whole process group, and a worker killed by it made the
    trainer fail with "DataLoader worker ... killed by signal" instead of stopping after the step with a
    checkpoint. Workers still end with the trainer (torch shuts them down; they also watch their parent)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
