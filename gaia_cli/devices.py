"""`--device auto|cpu|cuda|cuda:N`: where a command computes."""

from __future__ import annotations

import os

from gaia_cli.errors import BadInput


def resolve(spec: str):
    """A torch.device for `spec`; under torchrun, `cuda` means this process's GPU (LOCAL_RANK)."""
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BadInput(f"--device {spec}: CUDA is not available here (torch {torch.__version__}, "
                           f"built for CUDA {torch.version.cuda}); use --device cpu")
        index = int(os.environ.get("LOCAL_RANK", "0")) if spec == "cuda" else _index(spec)
        if index >= torch.cuda.device_count():
            raise BadInput(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    raise BadInput(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")


def _index(spec: str) -> int:
    try:
        return int(spec.split(":", 1)[1])
    except ValueError:
        raise BadInput(f"--device {spec!r}: expected cuda:N with N a number") from None
