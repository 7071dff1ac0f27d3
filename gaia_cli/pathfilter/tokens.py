"""Path tokens and positional encodings (DetOFA 3.1.1).

A path is tokenised layer by layer: the stem's width, then for each stage one token per block slot up to
the space's largest depth of that stage: the stage's width choice for a block the path has (block-wise
choices repeated for each block), the skip token SC beyond its depth; last, the input scale. Every token
is an index into one vocabulary: each position kind (stem, stage i, scale) has its own range of choices,
and SC is shared. Each token carries a layer index (its position) and a block index (stem 0, stage i i+1,
scale 5), both given sinusoidal encodings.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from gaia_cli.errors import BadInput
from gaia_cli.space.arch import Arch, SearchSpace


@dataclasses.dataclass
class Tokenizer:
    depth: list[list[int]]
    width: list[list[int]]
    scale: list[int]

    @classmethod
    def for_space(cls, space: SearchSpace) -> "Tokenizer":
        return cls(space.depth, space.width, space.scale)

    # vocabulary: [stem widths][stage 1 widths]...[stage 4 widths][SC][scales]
    @property
    def offsets(self) -> list[int]:
        sizes = [len(c) for c in self.width]
        return list(np.cumsum([0, *sizes]))

    @property
    def skip(self) -> int:
        return self.offsets[-1]

    @property
    def vocab(self) -> int:
        return self.skip + 1 + len(self.scale)

    @property
    def slots(self) -> list[int]:
        """Block slots of each stage: its largest depth."""
        return [c[-1] for c in self.depth]

    @property
    def length(self) -> int:
        return 1 + sum(self.slots) + 1

    def layer_index(self) -> np.ndarray:
        return np.arange(self.length)

    def block_index(self) -> np.ndarray:
        blocks = [0] + [i + 1 for i, n in enumerate(self.slots) for _ in range(n)] + [len(self.slots) + 1]
        return np.array(blocks)

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """[N, length] token indices of `archs` (BadInput for a value that is not a choice of the space)."""
        depth = np.array([a.depth for a in archs], dtype=np.int64).reshape(-1, 4)
        width = np.array([a.width for a in archs], dtype=np.int64).reshape(-1, 5)
        scale = np.array([a.scale for a in archs], dtype=np.int64)
        return self.encode_arrays(depth, width, scale)

    def encode_arrays(self, depth: np.ndarray, width: np.ndarray, scale: np.ndarray) -> np.ndarray:
        n = len(scale)
        out = np.empty((n, self.length), dtype=np.int64)
        w_idx = np.stack([_index(width[:, j], self.width[j], f"width[{j}]") for j in range(5)], axis=1)
        for j in range(4):
            _index(depth[:, j], self.depth[j], f"depth[{j}]")
        offsets = self.offsets
        out[:, 0] = offsets[0] + w_idx[:, 0]
        col = 1
        for i, slots in enumerate(self.slots):
            present = np.arange(slots)[None, :] < depth[:, i: i + 1]
            out[:, col: col + slots] = np.where(present, offsets[i + 1] + w_idx[:, i + 1: i + 2], self.skip)
            col += slots
        out[:, col] = self.skip + 1 + _index(scale, self.scale, "scale")
        return out

    def one_hot(self, archs: Sequence[Arch]) -> np.ndarray:
        """once-for-all's predictor input: each coordinate's choice one-hot, concatenated."""
        parts = []
        depth = np.array([a.depth for a in archs], dtype=np.int64).reshape(-1, 4)
        width = np.array([a.width for a in archs], dtype=np.int64).reshape(-1, 5)
        scale = np.array([a.scale for a in archs], dtype=np.int64)
        for values, choices, name in ([(depth[:, i], self.depth[i], f"depth[{i}]") for i in range(4)]
                                      + [(width[:, j], self.width[j], f"width[{j}]") for j in range(5)]
                                      + [(scale, self.scale, "scale")]):
            parts.append(np.eye(len(choices), dtype=np.float32)[_index(values, choices, name)])
        return np.concatenate(parts, axis=1)


def _index(values: np.ndarray, choices: list[int], name: str) -> np.ndarray:
    table = np.asarray(choices, dtype=np.int64)
    idx = np.clip(np.searchsorted(table, values), 0, len(table) - 1)
    bad = table[idx] != values
    if bad.any():
        raise BadInput(f"{name}={int(values[bad][0])} is not a choice of the path filter's space {choices}")
    return idx


def sinusoid(positions: np.ndarray, dim: int) -> np.ndarray:
    """Standard sine/cosine encodings [len(positions), dim]: P(p, 2i) = sin(p / 10000^(2i/dim)),
    P(p, 2i+1) = cos(...) (DetOFA's Eq. 4; its exponent's denominator is the embedding size here, as in the
    transformer's own, so that every dimension varies with the position)."""
    positions = np.asarray(positions, dtype=np.float64)[:, None]
    i = np.arange(0, dim, 2, dtype=np.float64)[None, :]
    angle = positions / np.power(10000.0, i / dim)
    out = np.zeros((positions.shape[0], dim))
    out[:, 0::2] = np.sin(angle)
    out[:, 1::2] = np.cos(angle[:, : dim // 2])
    return out.astype(np.float32)
