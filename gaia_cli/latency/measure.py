"""Measured latency at batch 1: the whole detector (transform, backbone, FPN, RPN, RoI heads, post-processing)
and the backbone alone, after warm-up runs; CUDA events with synchronisation on a GPU, `perf_counter` on a CPU.

Reported per arch: median, p10, p90 (ms) and spread (p90 / p10), with the method and the environment (device
name, driver, torch and CUDA versions, CPU threads), because a latency is only comparable with one taken the
same way.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any, Callable

import numpy as np
import torch

from gaia_cli.errors import BadInput

PRECISIONS = ("fp32", "fp16", "bf16")


def environment(device: torch.device) -> dict[str, Any]:
    env = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
           "threads": torch.get_num_threads(), "python": platform.python_version(), "machine": platform.machine(),
           "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                   driver=_driver_version(), cudnn=torch.backends.cudnn.version())
    else:
        env["name"] = env["cpu"]
    return env


def _driver_version() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def stats(times_ms: list[float]) -> dict[str, float]:
    p10, p90 = np.percentile(times_ms, [10, 90])
    return {"median": float(statistics.median(times_ms)), "p10": float(p10), "p90": float(p90),
            "spread": float(p90 / p10) if p10 > 0 else float("inf"), "runs": len(times_ms)}


@torch.no_grad()
def time_call(fn: Callable[[], Any], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Milliseconds of each of `runs` calls of `fn`, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    return times


def prepare(model: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return model


def measure_model(model: torch.nn.Module, scale: int, device: torch.device, warmup: int = 10, runs: int = 50,
                  precision: str = "fp32", channels_last: bool = False, seed: int = 0) -> dict[str, Any]:
    """Latency of a static detector on one [3, S, S] image: the whole detector, and its backbone alone."""
    if precision not in PRECISIONS:
        raise BadInput(f"--precision must be one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise BadInput("fp16 autocast needs a CUDA device (use bf16 on a CPU)")
    model = prepare(model, device, channels_last)
    image = torch.rand(3, scale, scale, generator=torch.Generator().manual_seed(seed)).to(device)
    batch = model.transform([image])[0].tensors
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def whole():
        with autocast():
            model([image])

    def backbone():
        with autocast():
            model.backbone.body(batch)

    return {"detector": stats(time_call(whole, device, warmup, runs)),
            "backbone": stats(time_call(backbone, device, warmup, runs))}


def measure_exported(exported, model: torch.nn.Module | None, size: tuple[int, int], device: torch.device,
                     warmup: int = 10, runs: int = 50, seed: int = 0, rounds: int = 5) -> dict[str, Any]:
    """Latency of an exported detector (gaia_cli.nn.exported: ONNX Runtime or TorchScript) on one [3, H, W]
    image, and of the PyTorch `model` it came from on the same image when given: the two are timed in turns
    (`rounds` blocks of runs each), so that a busy machine slows both alike. Whole detector only (an exported
    graph has no separate backbone). ONNX Runtime's run returns when its outputs are on the host, so a
    perf_counter around it is its latency on CUDA too."""
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(seed))
    on_device = image.to(device)
    if model is not None:
        model = prepare(model, device, False)
    per_round = max(1, runs // rounds)
    exported_ms: list[float] = []
    model_ms: list[float] = []
    host = torch.device("cpu") if exported.format == "onnx" else device
    for i in range(rounds):
        exported_ms += time_call(lambda: exported([on_device if exported.format == "torchscript" else image]),
                                 host, warmup if i == 0 else 1, per_round)
        if model is not None:
            model_ms += time_call(lambda: model([on_device]), device, warmup if i == 0 else 1, per_round)
    out: dict[str, Any] = {"exported": {"format": exported.format, "providers": exported.providers,
                                        **stats(exported_ms)}}
    if model is not None:
        out["pytorch"] = stats(model_ms)
        out["ratio_median"] = out["exported"]["median"] / out["pytorch"]["median"]
        out["ratio_p90"] = out["exported"]["p90"] / out["pytorch"]["p90"]
    return out
