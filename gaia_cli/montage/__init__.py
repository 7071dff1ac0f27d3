"""Montage pre-training (Montage, sections 3.1-3.3): samples, assembly, and the ERF-adaptive loss.

- `extract`: positive and negative samples cut from detection images, grouped by aspect ratio into S, T
  and W, written to a `gaia/montage-samples` HDF5 file.
- `samples`: reading that file (one h5py handle per process, opened lazily, so DataLoader workers work).
- `assemble`: the template (2 S, 1 T, 1 W sample on four regions) and the montage dataset.
- `loss`: soft labels (global, block, ERF-adaptive), the effective receptive fields they come from, and
  the dense classification loss.
"""

from gaia_cli.nn import HEAD_PREFIX  # noqa: F401  the dense classifier's tensors in a pre-trained backbone file

GROUPS = ("S", "T", "W")  # square: 0.5 <= w/h <= 1.5; tall: w/h < 0.5; wide: w/h > 1.5
TALL, WIDE = 0.5, 1.5


def group_of(width: float, height: float) -> int:
    """The index in GROUPS of a sample `width` x `height` pixels."""
    ratio = width / height
    return 1 if ratio < TALL else 2 if ratio > WIDE else 0
