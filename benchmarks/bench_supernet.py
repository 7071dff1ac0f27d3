"""The supernet's costs, measured side by side in one run.

1. Elastic overhead: one training step (forward + backward + SGD) of the supernet on a path against the
   same step of the static model extracted for that path, on the same batch, alternating, median of
   --repeats each. Target: ratio <= 1.10 on a CPU (1.05 on a GPU). Paths: the smallest, the anchor and the
   largest of --space, at --scale (default: each arch's own scale).
2. FLOPs counter: analytic FLOPs/params of random ar50to101 archs per second (search calls it in a loop).
3. Training throughput on the tiny preset: images/s of supernet steps with GAIA's sampling rules.

    python benchmarks/bench_supernet.py [--space ar50] [--scale 400] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from gaia_cli.nn.detector import Supernet, extract
from gaia_cli.space.arch import Arch, preset
from gaia_cli.space.flops import detector_cost
from gaia_cli.space.sampling import PathSampler, sample


def _batch(scale: int, n: int, device):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, scale, int(scale * 1.33), generator=g).to(device) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, scale * 0.5, scale * 0.6], [scale * 0.3, scale * 0.2, scale * 0.9, scale * 0.8]], device=device),
                "labels": torch.tensor([1, 2], device=device)} for _ in range(n)]
    return images, targets


def _step(model, optimizer, images, targets, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    loss = sum(model(images, targets).values())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def elastic_overhead(space_name: str, scale: int | None, repeats: int, batch: int, device) -> None:
    space = preset(space_name)
    anchor = next(iter(space.anchors.values()))
    print(f"1. elastic overhead: training step, supernet path vs extracted static model ({space_name}, "
          f"batch {batch}, {device}, median of {repeats})")
    print(f"{'path':8s} {'arch':52s} {'supernet s':>10s} {'static s':>9s} {'ratio':>6s}")
    torch.manual_seed(0)
    supernet = Supernet(space, 11).to(device).train()
    for label, arch in (("small", space.min_arch), ("anchor", anchor), ("max", space.max_arch)):
        if scale:
            arch = Arch(arch.depth, arch.width, scale)  # set_arch refuses a scale the space lacks
        supernet.set_arch(arch)
        static = extract(supernet, arch).to(device).train()
        images, targets = _batch(arch.scale, batch, device)
        opts = [torch.optim.SGD(m.parameters(), lr=1e-5, momentum=0.9) for m in (supernet, static)]
        times: dict[int, list[float]] = {0: [], 1: []}
        for i, model in enumerate((supernet, static)):  # warm-up
            _step(model, opts[i], images, targets, device)
        for _ in range(repeats):
            for i, model in enumerate((supernet, static)):
                torch.manual_seed(1)  # the same RoI sampling for both
                times[i].append(_step(model, opts[i], images, targets, device))
        a, b = statistics.median(times[0]), statistics.median(times[1])
        print(f"{label:8s} {str(arch):52s} {a:10.3f} {b:9.3f} {a / b:6.3f}")


def flops_speed(n: int = 20000) -> None:
    space = preset("ar50to101")
    rng = np.random.default_rng(0)
    archs = [sample(space, "uniform", rng) for _ in range(n)]
    start = time.perf_counter()
    for arch in archs:
        detector_cost(arch, 81)
    seconds = time.perf_counter() - start
    print(f"\n2. FLOPs counter: {n / seconds:,.0f} archs/s ({seconds / n * 1e6:.1f} us an arch, ar50to101)")


def table2() -> None:
    import json
    from importlib import resources

    rows = json.loads(resources.files("gaia_cli.resources").joinpath("gaia_table2_v100.json").read_text())["rows"]
    print("\n4. FLOPs against GAIA Table 2 (detector GMACs at [3, S, S], 81 classes, 1000 proposals)")
    print(f"{'model':26s} {'paper':>7s} {'ours':>7s} {'ratio':>6s} {'backbone':>9s} {'RoI head':>9s}")
    ratios = []
    for r in rows:
        arch = Arch(tuple(r["depth"]), tuple(r["width"]), r["scale"])
        parts = detector_cost(arch, 81)
        ours = sum(p.macs for p in parts.values()) / 1e9
        ratios.append(ours / r["gflops"])
        print(f"{r['name']:26s} {r['gflops']:7.1f} {ours:7.1f} {ours / r['gflops']:6.3f} "
              f"{parts['backbone'].macs / 1e9:9.1f} {parts['roi_heads'].macs / 1e9:9.1f}")
    print(f"ratio ours/paper: mean {statistics.mean(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")


def throughput(steps: int, batch: int, device) -> None:
    from gaia_cli.data.toy import make_toy_dataset
    import tempfile
    from pathlib import Path

    from gaia_cli.data.coco import load_coco
    from gaia_cli.data.dataset import DetectionDataset, collate_detection, default_transforms

    with tempfile.TemporaryDirectory() as tmp:
        make_toy_dataset(Path(tmp) / "toy", images=batch * 8, size=128, seed=0)
        data = DetectionDataset(load_coco(Path(tmp) / "toy" / "train.json"), transforms=default_transforms(True))
        batches = [collate_detection([data[(i * batch + j) % len(data)] for j in range(batch)]) for i in range(8)]
    space = preset("tiny")
    model = Supernet(space, 7).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    sampler = PathSampler(space, "gaia", seed=0)
    seconds = 0.0
    for i in range(steps + 2):
        model.set_arch(sampler.next())
        images, targets = batches[i % len(batches)]
        images = [x.to(device) for x in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        spent = _step(model, opt, images, targets, device)
        seconds += spent if i >= 2 else 0.0
    print(f"\n3. training throughput, tiny preset, GAIA rules, batch {batch}: {steps * batch / seconds:.1f} images/s "
          f"({seconds / steps:.3f} s a step, {device}, data loading excluded)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="ar50")
    parser.add_argument("--scale", type=int, default=None,
                        help="input scale for every path, one of the space's (default: each arch's own)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    elastic_overhead(args.space, args.scale, args.repeats, args.batch, device)
    flops_speed()
    table2()
    throughput(30, 4, device)
