"""The path filter network (DetOFA Figure 2) and the OFA-style MLP predictor it is compared with.

PathFilter: path tokens [N, T] and FLOPs bucket indices [N] in, a score in (0, 1) per path out (higher =
lower validation loss). Token and bucket embeddings are concatenated at every position (the bucket's
repeated), the layer and block sinusoidal encodings added, then a `torch.nn.TransformerEncoder` (embedding
128, 3 layers, 4 heads, feed-forward 128), the mean over positions, two FC layers and a sigmoid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gaia_cli.pathfilter.tokens import Tokenizer, sinusoid

ARCHITECTURE = {"dim": 128, "bucket_dim": 32, "layers": 3, "heads": 4, "feedforward": 128, "fc": 128,
                "dropout": 0.0}


class PathFilter(nn.Module):
    def __init__(self, vocab: int, buckets: int, layer_index, block_index, dim: int = 128, bucket_dim: int = 32,
                 layers: int = 3, heads: int = 4, feedforward: int = 128, fc: int = 128, dropout: float = 0.0):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim - bucket_dim)
        self.bucket = nn.Embedding(buckets, bucket_dim)
        position = sinusoid(layer_index, dim) + sinusoid(block_index, dim)
        self.register_buffer("position", torch.from_numpy(position), persistent=False)
        layer = nn.TransformerEncoderLayer(dim, heads, feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(dim, fc), nn.ReLU(), nn.Linear(fc, 1))

    @classmethod
    def build(cls, tokenizer: Tokenizer, buckets: int, settings: dict[str, Any] | None = None) -> "PathFilter":
        return cls(tokenizer.vocab, buckets, tokenizer.layer_index(), tokenizer.block_index(),
                   **{**ARCHITECTURE, **(settings or {})})

    def logits(self, tokens: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        """The score before the sigmoid (what the pair loss compares; see `fit.pair_loss`)."""
        t = tokens.shape[1]
        x = torch.cat([self.tokens(tokens), self.bucket(buckets)[:, None, :].expand(-1, t, -1)], dim=-1)
        h = self.encoder(x + self.position).mean(dim=1)
        return self.head(h).squeeze(-1)

    def forward(self, tokens: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(tokens, buckets))


class MLPPredictor(nn.Module):
    """once-for-all's accuracy predictor: a one-hot arch encoding, 3 hidden layers of 400, one output
    (here the validation loss, regressed)."""

    def __init__(self, inputs: int, hidden: int = 400, layers: int = 3):
        super().__init__()
        parts: list[nn.Module] = []
        width = inputs
        for _ in range(layers):
            parts += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        parts.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
