"""Frozen backbone against full fine-tuning: time per training step and peak memory, as ratios.

Each mode runs in its own process (so its peak memory is its own) on the same arch and batch: the AR50
anchor of GAIA's space (ResNet-50 widths and depths) at --scale, batch --batch. Memory is the process's
peak resident set (CPU) minus what it held after building the model, i.e. what training steps add; on a
GPU, torch.cuda.max_memory_allocated. Target: at least 30% less time and 30% less memory frozen.

    python benchmarks/bench_finetune.py [--scale 400] [--batch 2] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def child(freeze: str, scale: int, batch: int, steps: int, device_name: str) -> dict:
    import torch

    from gaia_cli.tasks.finetune import set_frozen
    from gaia_cli.nn.detector import build_static
    from gaia_cli.space.arch import Arch, preset

    device = torch.device(device_name)
    anchor = preset("ar50").anchors["AR50"]
    arch = Arch(anchor.depth, anchor.width, scale)
    torch.manual_seed(0)
    model = build_static(arch, 21).to(device).train()
    if freeze != "none":
        set_frozen(model, freeze)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    images = [torch.rand(3, scale, int(scale * 1.33), device=device) for _ in range(batch)]
    targets = [{"boxes": torch.tensor([[20.0, 30.0, scale * 0.6, scale * 0.7]], device=device),
                "labels": torch.tensor([3], device=device)} for _ in range(batch)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.manual_seed(i)
        sum(model(images, targets).values()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    return {"freeze": freeze, "step_s": statistics.median(times), "memory_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.scale, args.batch, args.steps, args.device)))
        return
    results = {}
    for mode in ("none", "backbone", "backbone+fpn"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--scale", str(args.scale), "--batch",
                              str(args.batch), "--steps", str(args.steps), "--device", args.device],
                             capture_output=True, text=True, check=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    full = results["none"]
    what = "peak GPU memory" if args.device.startswith("cuda") else "peak RSS added by training"
    print(f"fine-tuning step, AR50 anchor at {args.scale}px, batch {args.batch}, {args.device} (median of {args.steps})")
    print(f"{'freeze':14s} {'step s':>8s} {'time ratio':>11s} {what + ' MiB':>34s} {'memory ratio':>13s}")
    for mode, r in results.items():
        print(f"{mode:14s} {r['step_s']:8.3f} {r['step_s'] / full['step_s']:11.3f} {r['memory_mib']:34.0f} "
              f"{r['memory_mib'] / full['memory_mib']:13.3f}")
    frozen = results["backbone"]
    print(f"backbone frozen: {1 - frozen['step_s'] / full['step_s']:.0%} less time, "
          f"{1 - frozen['memory_mib'] / full['memory_mib']:.0%} less memory (target: 30% each)")


if __name__ == "__main__":
    main()
