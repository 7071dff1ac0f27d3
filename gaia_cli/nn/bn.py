"""Batch-norm recalibration for a path (once-for-all's practice).

A supernet's running statistics mix every path it trained; a sub-network's own statistics differ, and direct
evaluation of a path without recalibration is meaningless. `recalibrate` resets every BN layer's statistics
and re-estimates them as a plain (cumulative) average over `num_images` training images, run through the
image transform and the backbone in training mode, without gradients. Only the backbone has BN layers.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from gaia_cli import console


@torch.no_grad()
def recalibrate(model: nn.Module, images: Iterable[list[torch.Tensor]], num_images: int = 2000,
                forward: Callable[[list[torch.Tensor]], object] | None = None) -> int:
    """Re-estimate BN statistics of `model`'s active path from batches of images; return images used.
    `forward` runs a batch through the BN layers (default: a detector's transform and backbone)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    saved = [(m.momentum, m.training) for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts the same
    model.eval()
    for m in norms:
        m.train()
    device = next(model.parameters()).device
    seen = 0
    with console.progress("recalibrating BN", total=num_images) as bar:
        for batch in images:
            batch = [img.to(device) for img in batch][: num_images - seen]
            if forward is not None:
                forward(batch)
            else:
                image_list, _ = model.transform(batch)
                model.backbone(image_list.tensors)
            seen += len(batch)
            bar.advance(len(batch))
            if seen >= num_images:
                break
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)
    return seen
