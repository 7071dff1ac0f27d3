"""Elastic ops: layers that run on their lower-index channels (GAIA's and once-for-all's weight sharing).

An elastic layer holds the weights of its largest configuration. Its output width is `active_out`; its input
width is whatever the input brings. Every sub-network uses the leading slice of each tensor, so paths of
different widths share (and jointly train) the same lower-index channels.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _lead(t: torch.Tensor, *sizes: int) -> torch.Tensor:
    """The leading slice of `t` along its first dims; the tensor itself when nothing is cut."""
    if all(s == n for s, n in zip(sizes, t.shape)):
        return t
    return t[tuple(slice(0, s) for s in sizes)].contiguous()


class ElasticConv2d(nn.Conv2d):
    """A conv whose output channels are the first `active_out` and input channels the first `x.shape[1]`."""

    def __init__(self, in_max: int, out_max: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = False):
        super().__init__(in_max, out_max, kernel_size, stride=stride, padding=padding, bias=bias)
        self.active_out = out_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _lead(self.weight, self.active_out, x.shape[1])
        bias = None if self.bias is None else _lead(self.bias, self.active_out)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the input's channels, using (and updating) the first C of its weights and statistics.

    With `sync` set and a process group running, training batches are normalised with statistics gathered
    over all ranks (sync-BN, which GAIA trains with). torch's `convert_sync_batchnorm` would replace this
    layer with a non-elastic one, hence this mode.
    """

    sync = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        mean, var = self.running_mean[:c], self.running_var[:c]
        weight, bias = _lead(self.weight, c), _lead(self.bias, c)
        if self.training and self.sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            if x.is_cuda:  # torch's fused kernels
                from torch.nn.modules._functions import SyncBatchNorm

                memory = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
                return SyncBatchNorm.apply(x.contiguous(memory_format=memory), weight, bias, mean, var, self.eps,
                                           factor, dist.group.WORLD, dist.get_world_size())
            return _sync_batch_norm(x, weight, bias, mean, var, self.eps, factor)
        return F.batch_norm(x, mean, var, weight, bias, self.training, factor, self.eps)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of each rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _sync_batch_norm(x, weight, bias, running_mean, running_var, eps: float, momentum: float) -> torch.Tensor:
    """Batch norm over the batches of all ranks, for devices without torch's sync-BN kernels (CPUs, gloo).

    Two passes, as torch's kernels do: the global mean first, then the global mean squared deviation from it
    (E[x^2] - E[x]^2 in float32 loses the variance of large-mean channels). Both sums are all-reduced
    differentiably, so gradients flow through the global statistics as in torch's SyncBatchNorm.
    """
    c = x.shape[1]
    dims = [d for d in range(x.dim()) if d != 1]
    shape = [1, c] + [1] * (x.dim() - 2)
    # ranks pad their batches to their own image sizes: the element count is summed too
    first = _AllReduceSum.apply(torch.cat([x.sum(dim=dims), x.new_tensor([x.numel() / c])]))
    count = first[-1].detach()
    mean = first[:c] / count
    centred = x - mean.view(shape)
    var = _AllReduceSum.apply((centred * centred).sum(dim=dims)) / count
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
        running_var.mul_(1 - momentum).add_(momentum * var.detach() * count / (count - 1).clamp_min(1.0))
    return centred * torch.rsqrt(var.view(shape) + eps) * weight.view(shape) + bias.view(shape)
