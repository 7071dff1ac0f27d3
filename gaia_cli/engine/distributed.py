"""Data parallelism under `torchrun`: process group set-up, and exact gradient averaging.

Each rank computes gradients on its own batches; `average_gradients` all-reduces them in one flat buffer
(a parameter a path did not use counts as a zero gradient), so every rank takes the same step. gaia does
this itself rather than through `DistributedDataParallel`, whose reducer expects one backward pass and one
fixed set of used parameters per step: a weight-sharing supernet uses a different subset at every step and,
with the sandwich rule, runs several backward passes before one step. Batch norm syncs across ranks through
`ElasticBatchNorm2d.sync`. Backend: NCCL on CUDA, gloo on CPU. Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gaia_cli.errors import RunFailure


def world() -> tuple[int, int]:
    """(rank, world size), from an initialised process group or 0, 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group `torchrun` describes in the environment, if any."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return world()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    return world()[0] == 0


def broadcast_params(model: nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    if world()[1] > 1:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, 0)


def broadcast_object(obj: Any) -> Any:
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, 0)
    return box[0]


def average_gradients(params: list[nn.Parameter]) -> None:
    """All-reduce the mean gradient of the parameters some rank has a gradient for.

    A parameter no rank used keeps no gradient, as in a single process, so the optimizer leaves it alone
    (a zero gradient would still move it through momentum and weight decay). One used elsewhere but not
    here counts as zero here.
    """
    size = world()[1]
    if size == 1:
        return
    device = params[0].device
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=device)
    dist.all_reduce(used, op=dist.ReduceOp.MAX)
    chosen = [p for p, u in zip(params, used.tolist()) if u]
    if not chosen:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in chosen]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for p, g in zip(chosen, grads):
        n = g.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n


def gather_object(obj: Any) -> list[Any]:
    """`obj` of every rank, in rank order."""
    if world()[1] == 1:
        return [obj]
    everyone: list[Any] = [None] * world()[1]
    dist.all_gather_object(everyone, obj)
    return everyone


def all_true(flag: bool, device: torch.device) -> bool:
    """True only if `flag` holds on every rank."""
    if world()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def weights_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_replicas(model: nn.Module) -> str:
    """The weights' sha256, checked equal on every rank (a diverged replica stops the run)."""
    mine = weights_digest(model)
    if world()[1] == 1:
        return mine
    everyone: list[Any] = [None] * world()[1]
    dist.all_gather_object(everyone, mine)
    if len(set(everyone)) != 1:
        raise RunFailure(f"data-parallel replicas diverged: weight digests {sorted(set(everyone))}")
    return mine
