"""Montage pre-training: extraction speed, loader against training step, and compute per sample.

1. Extraction: images/s of `extract-montage` on a generated set (--images images of --size px), in this
   process and with 2 worker processes; samples/s and stored bytes per sample.
2. Loader against step, `tiny` preset, montages of --montage px: montages/s one data-loading process
   assembles (h5py reads, resizes, flips) against montages/s one training step consumes (forward, backward,
   SGD on the space's largest path). The ratio says how many loader workers keep one training process fed;
   it must be above 1 for the default `--workers 4` to leave the step as the bottleneck with room to spare.
3. Compute per sample, ResNet-50 (GAIA's AR50 anchor) at 224 px: a montage carries 4 samples in the pixels
   one warped crop carries 1, so the backbone FLOPs per sample are 1/4 (counted, not assumed); the measured
   training time per sample of montages (dense ERF loss) against plain classification of warped crops says
   what the dense loss and the ERF updates add on top (the ERF update is timed and amortised over
   --erf-every steps).
   The paper's "1/4 of ImageNet pre-training" compares whole schedules (64k steps of 512 montages against
   ImageNet's epochs, 1.73 against 6.80 GPU days): printed as the arithmetic it is. What is not measurable
   here: that the cheaper pre-training transfers as well (the paper's COCO AP), which takes GPU-weeks.

    python benchmarks/bench_montage.py [--images 120] [--size 480] [--montage 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path


def median_step(model, images, targets, steps: int) -> float:
    """Median seconds of a training step (forward, backward, SGD) over `steps`, after one warm-up step."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        model(images, targets)["loss_montage"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def extraction(tmp: Path, images: int, size: int) -> Path:
    from gaia_cli import console
    from gaia_cli.data.toy import make_toy_dataset
    from gaia_cli.montage.extract import ExtractOptions, ExtractRequest, run

    make_toy_dataset(tmp / "toy", images, size, 7, 4, 8, False)
    print(f"1. extraction: {images} images of {size} px (toy shapes)")
    out = None
    for workers in (0, 2):
        out = tmp / f"samples{workers}.h5"
        start = time.perf_counter()
        with console.quietly(), contextlib.redirect_stdout(io.StringIO()):  # the manifest line
            run(ExtractRequest(data=[str(tmp / "toy" / "train.json")], output=out, options=ExtractOptions(),
                               workers=workers))
        seconds = time.perf_counter() - start
        import h5py

        with h5py.File(out, "r") as f:
            n = len(f["tensors/labels"])
            raw = int(f["tensors/offsets"][-1])
        print(f"   workers {workers}: {images / seconds:7.1f} images/s, {n / seconds:7.1f} samples/s "
              f"({n} samples, {out.stat().st_size / n / 1024:.1f} KiB stored per sample, "
              f"gzip keeps {out.stat().st_size / raw:.2f} of the raw pixels)")
    return out


def loader_against_step(samples_path: Path, size: int, batch: int, steps: int) -> None:
    import torch

    from gaia_cli.engine.data import SeededDataset
    from gaia_cli.montage.assemble import MontageDataset, Template
    from gaia_cli.montage.loss import MontageNet
    from gaia_cli.montage.samples import MontageSamples
    from gaia_cli.space.arch import preset

    template = Template(size)
    dataset = SeededDataset(MontageDataset(MontageSamples(samples_path), template, length=10**6), 0)
    for i in range(8):  # warm the file cache and the handle
        dataset[(i, 0)]
    n = batch * steps
    start = time.perf_counter()
    items = [dataset[(i, 1)] for i in range(n)]
    load_rate = n / (time.perf_counter() - start)
    big = SeededDataset(MontageDataset(MontageSamples(samples_path), Template(224), length=10**6), 0)
    start = time.perf_counter()
    for i in range(n):
        big[(i, 1)]
    big_rate = n / (time.perf_counter() - start)

    space = preset("tiny")
    top = space.max_arch
    torch.manual_seed(0)
    model = MontageNet(top.depth, top.width, 9, template).train()
    images = [img for img, _ in items[:batch]]
    targets = [t for _, t in items[:batch]]
    step_rate = batch / median_step(model, images, targets, steps)
    print(f"2. loader against step, tiny preset (largest path), {size} px montages, batch {batch}:")
    print(f"   one loader process assembles {load_rate:7.1f} montages/s; one training step consumes "
          f"{step_rate:7.1f} montages/s ({torch.get_num_threads()} threads)")
    print(f"   ratio loader/step per worker: {load_rate / step_rate:.2f} "
          f"(workers needed to keep the step fed: {max(1, -(-step_rate // load_rate)):.0f})")
    print(f"   at 224 px one loader process assembles {big_rate:7.1f} montages/s: a GPU step that consumes N "
          f"montages/s needs N / {big_rate:.0f} workers (GPU step rates not measured here)")


def compute_per_sample(batch: int, steps: int, erf_every: int, template_size: int = 224) -> None:
    import torch

    from gaia_cli.montage.assemble import Template
    from gaia_cli.montage.loss import MontageNet, masks_tensor, receptive_field_shares
    from gaia_cli.space.arch import Arch, preset
    from gaia_cli.space.flops import backbone_cost

    anchor = preset("ar50").anchors["AR50"]
    arch = Arch(anchor.depth, anchor.width, 224)
    gmacs = backbone_cost(arch)[0].macs / 1e9
    print(f"3. compute per sample, ResNet-50 backbone at 224 px ({gmacs:.2f} GMACs per 224x224 image):")
    # counted for the montage's own size (--size of pretrain), a quarter of it per sample
    per_sample = backbone_cost(Arch(anchor.depth, anchor.width, template_size))[0].macs / 1e9 / 4
    print(f"   FLOPs per sample: montage {per_sample:.3f} GMACs (4 samples in a {template_size} px image), warped "
          f"crop {gmacs:.3f} GMACs: ratio {per_sample / gmacs:.3f}")
    template = Template(224)

    def step_time(mode: str) -> float:
        torch.manual_seed(0)
        model = MontageNet(arch.depth, arch.width, 81, template, mode=mode).train()
        images = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8)
        targets = [{"labels": torch.randint(0, 81, (4,)) if mode == "erf" else torch.full((4,), 5)}
                   for _ in range(batch)]
        return median_step(model, images, targets, steps)

    montage = step_time("erf") / (4 * batch)
    # plain classification of a warped crop: one label for the whole image, global average pooling
    crop = step_time("global") / batch
    torch.manual_seed(0)
    model = MontageNet(arch.depth, arch.width, 81, template).eval()
    images = model.normalise(torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8))
    start = time.perf_counter()
    receptive_field_shares(model.features, images, masks_tensor(template))
    erf_seconds = time.perf_counter() - start
    per_step = montage * 4 * batch
    print(f"   measured training time per sample (batch {batch}, CPU): montage {montage * 1e3:.1f} ms, "
          f"warped crop {crop * 1e3:.1f} ms: ratio {montage / crop:.3f}")
    print(f"   one ERF update (49 positions, 2 montages, one path): {erf_seconds:.1f} s = "
          f"{erf_seconds / per_step:.1f} steps; every {erf_every} steps that adds "
          f"{100 * erf_seconds / (erf_every * per_step):.2f}% (16 montages and 2 paths: x16)")
    imagenet = {90: 90 * 1_281_167, 100: 100 * 1_281_167}
    montages = 64_000 * 512
    print(f"   the paper's schedules: 64k steps x 512 montages = {montages / 1e6:.1f}M images of 224 px; ImageNet "
          + ", ".join(f"{e} epochs = {n / 1e6:.0f}M (ratio {montages / n:.3f})" for e, n in imagenet.items())
          + f"; the paper's GPU days 1.73 / 6.80 = {1.73 / 6.80:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--montage", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--erf-every", type=int, default=5000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        samples = extraction(Path(tmp), args.images, args.size)
        loader_against_step(samples, args.montage, args.batch, args.steps)
    compute_per_sample(4, max(2, args.steps // 2), args.erf_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
