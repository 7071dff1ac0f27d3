"""Does a gaia detector learn? gaia's training against a plain reference loop, side by side in one run.

On generated toy data (--images train / --val-images val images of --size px, seed 0), one table:

- **reference**: a minimal loop written the way torchvision's detection reference trains (SGD, momentum 0.9,
  0.02 per 16 images, weight decay 1e-4, linear warm-up over a tenth of the run from 0.001, rate / 10 at 2/3
  and 8/9 of the run, horizontal flips), with its own COCO reader. The only gaia code it uses is the model
  (`build_static` of the space's largest arch) and the COCO evaluation (pycocotools, the same for all rows).
- **standalone**: `gaia train-supernet` on a space holding only that arch, with the default recipe.
- **supernet max / min / random k**: `gaia train-supernet --space SPACE` with the default recipe, then
  `gaia eval` of its largest, smallest and 3 random paths, each recalibrated on 64 training images.
- **montage init**: `gaia extract-montage` + `gaia pretrain` on the same training images, then the standalone
  run again starting from that backbone (`--init`), at the same steps as the scratch standalone.

Each row: val AP and AP50, train AP50 (on the first --train-eval training images), steps, wall time. Then
the weight-sharing gap (supernet largest path minus standalone of the same arch, at the same steps), the
Montage gain (montage init minus scratch) and the targets, met or not. Training commands get only data,
space, epochs, batch size and workers: what a new user types.

    python benchmarks/bench_learning.py [--space small] [--epochs 24] [--json out.json]
    python benchmarks/bench_learning.py --workdir W --rows standalone,reference &   # two processes fill
    python benchmarks/bench_learning.py --workdir W --rows supernet,montage; wait    # one table; then this
    python benchmarks/bench_learning.py --workdir W --rows none                      # prints it again
    python benchmarks/bench_learning.py --scale gpu --device cuda --json learning.json   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCALES = {
    # images, val images, px, epochs, batch, space
    "cpu": {"images": 320, "val_images": 80, "size": 160, "epochs": 24, "batch_size": 8, "space": "small"},
    "gpu": {"images": 640, "val_images": 160, "size": 160, "epochs": 12, "batch_size": 16, "space": "small"},
    "quick": {"images": 64, "val_images": 16, "size": 128, "epochs": 2, "batch_size": 8, "space": "tiny"},
}
TARGETS = {"standalone_AP50": 90.0, "standalone_AP": 60.0, "supernet_max_AP50": 85.0, "supernet_min_AP50": 85.0}


def gaia(*args, stdin: str | None = None) -> str:
    """Run the gaia CLI as a user would; stdout (data) back, stderr through to ours on failure."""
    proc = subprocess.run([sys.executable, "-m", "gaia_cli", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env={**os.environ, "NO_COLOR": "1"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"gaia {' '.join(map(str, args[:2]))} failed with exit {proc.returncode}")
    return proc.stdout


def toy_data(work: Path, cfg: dict) -> Path:
    """The benchmarks' toy set (seed 0) in `work`/toy, made once and reused from a --workdir."""
    toy = work / "toy"
    if not (toy / "train.json").is_file():
        gaia("toy-data", toy, "--images", cfg["images"], "--val-images", cfg["val_images"], "--size", cfg["size"],
             "--seed", 0, "-q")
    return toy


# ------------------------------------------------------------------------------------------- reference loop


class CocoBoxes:
    """The reference's own COCO reader: (image [3, H, W] in [0, 1], {"boxes", "labels"}), crowds left out."""

    def __init__(self, annotations: Path, flip: bool):
        data = json.loads(annotations.read_text())
        self.root = annotations.parent
        self.images = data["images"]
        self.label = {c["id"]: i for i, c in enumerate(data["categories"], start=1)}
        self.classes = [c["name"] for c in data["categories"]]
        self.boxes: dict[int, list] = {im["id"]: [] for im in self.images}
        for a in data["annotations"]:
            if not a.get("iscrowd"):
                x, y, w, h = a["bbox"]
                self.boxes[a["image_id"]].append(([x, y, x + w, y + h], self.label[a["category_id"]]))
        self.flip = flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import numpy as np
        import torch
        from PIL import Image

        record = self.images[i]
        with Image.open(self.root / record["file_name"]) as im:
            image = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        pairs = self.boxes[record["id"]]
        boxes = torch.tensor([b for b, _ in pairs], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([lab for _, lab in pairs], dtype=torch.int64)
        if self.flip and random.random() < 0.5:
            image = image.flip(-1)
            boxes = torch.stack([image.shape[-1] - boxes[:, 2], boxes[:, 1], image.shape[-1] - boxes[:, 0],
                                 boxes[:, 3]], dim=1)
        return image, {"boxes": boxes, "labels": labels}


def reference_loop(arch, detector: dict, train_json: Path, steps: int, batch_size: int, device: str, seed: int):
    """torchvision's detection reference recipe on `build_static(arch)`; returns the trained model."""
    import torch
    from torch.utils.data import DataLoader

    from gaia_cli.nn.detector import build_static

    random.seed(seed)
    torch.manual_seed(seed)
    data = CocoBoxes(train_json, flip=True)
    model = build_static(arch, len(data.classes) + 1, detector).to(device).train()
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    base = 0.02 / 16 * batch_size
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=base, momentum=0.9)
    warmup = max(1, steps // 10)
    milestones = (int(steps * 2 / 3), int(steps * 8 / 9))
    step = 0
    while step < steps:
        batches = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True,
                             collate_fn=lambda b: tuple(zip(*b)))
        for images, targets in batches:
            factor = 0.001 + (1 - 0.001) * step / warmup if step < warmup else 1.0
            for group in opt.param_groups:
                group["lr"] = base * factor * 0.1 ** sum(step >= m for m in milestones)
            losses = model([i.to(device) for i in images], [{k: v.to(device) for k, v in t.items()} for t in targets])
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    return model, data.classes


def coco_ap(model, classes, annotations: Path, device: str) -> dict:
    import torch

    from gaia_cli import console
    from gaia_cli.data.coco import load_coco
    from gaia_cli.engine.metrics import evaluate

    with console.quietly():
        return evaluate(model, classes, load_coco(annotations), torch.device(device))


# ---------------------------------------------------------------------------------------------------- rows


def eval_path(weights: Path, arch: dict | str, data: Path, train: Path, device: str) -> dict:
    arch_text = arch if isinstance(arch, str) else json.dumps(arch)
    out = gaia("eval", "--weights", weights, "--arch", "-", "--data", data, "--recalibrate", 64,
               "--recalibrate-data", train, "--device", device, "-q", stdin=arch_text)
    return json.loads(out)


def one_arch_space(space: dict, arch: dict) -> dict:
    return {**space, "name": "standalone", "depth": [[d] for d in arch["depth"]],
            "width": [[w] for w in arch["width"]], "scale": [arch["scale"]], "anchors": {}}


def train(space_spec: str, train_json: Path, out: Path, epochs: int, batch: int, device: str,
          init: Path | None = None) -> tuple[float, int]:
    args = ["train-supernet", "--data", train_json, "--space", space_spec, "--epochs", epochs, "--batch-size", batch,
            "--workers", 0, "--device", device, "--restart", "-q", "-o", out]
    if init is not None:
        args += ["--init", init]
    start = time.perf_counter()
    gaia(*args)
    seconds = time.perf_counter() - start
    return seconds, iterations(out)


def iterations(weights: Path) -> int:
    """The steps a trained weights file records (its training block)."""
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(weights, "gaia/weights") as art:
        return int(art.meta("training")["iterations"])


def row(name: str, val: dict, train: dict, steps: int, seconds: float) -> dict:
    return {"model": name, "AP": round(val["AP"], 1), "AP50": round(val["AP50"], 1),
            "train_AP50": round(train["AP50"], 1), "steps": steps, "seconds": round(seconds)}


ROWS = ("standalone", "reference", "supernet", "montage")


def steps_per_run(train_json: Path, epochs: int, batch_size: int) -> int:
    """The steps gaia's engine takes for `epochs` (the reference loop is given the same number)."""
    from gaia_cli.data.coco import load_coco
    from gaia_cli.data.dataset import DetectionDataset
    from gaia_cli.data.sampler import aspect_ratio_groups
    from gaia_cli.engine.data import epoch_batches

    groups = aspect_ratio_groups(DetectionDataset(load_coco(train_json)).aspect_ratios())
    return epochs * len(epoch_batches(groups, batch_size, 0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu", help="data and schedule sizes")
    parser.add_argument("--space", help="search space (default: the scale's)")
    parser.add_argument("--epochs", type=int, help="epochs of every training run (default: the scale's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-eval", type=int, default=80, help="training images that train AP50 is measured on")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"which rows to run, comma-separated ({', '.join(ROWS)}, or none); rows already in --workdir "
                             "are read back, so separate invocations (in parallel, say) fill one table")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    wanted = [r.strip() for r in args.rows.split(",") if r.strip() and r.strip() != "none"]
    if any(r not in ROWS for r in wanted):
        parser.error(f"--rows takes {', '.join(ROWS)}")
    cfg = dict(SCALES[args.scale])
    cfg["space"] = args.space or cfg["space"]
    cfg["epochs"] = args.epochs or cfg["epochs"]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_learning."))
    (work / "rows").mkdir(parents=True, exist_ok=True)
    print(f"toy data: {cfg['images']} train / {cfg['val_images']} val images of {cfg['size']} px, seed 0; space "
          f"{cfg['space']}; {cfg['epochs']} epochs of batch {cfg['batch_size']}; device {args.device}; "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} threads; in {work}", flush=True)

    toy = toy_data(work, cfg)
    train_json, val_json = toy / "train.json", toy / "val.json"
    data = json.loads(train_json.read_text())
    keep = {im["id"] for im in data["images"][: args.train_eval]}
    subset = {**data, "images": [im for im in data["images"] if im["id"] in keep],
              "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
    train_eval = toy / "train.eval.json"
    train_eval.write_text(json.dumps(subset))

    space = json.loads(gaia("space", "show", cfg["space"]))
    from gaia_cli.space.arch import SearchSpace

    top = SearchSpace.from_payload(space).max_arch
    alone = work / "standalone.space.json"
    alone.write_text(json.dumps(one_arch_space(space, top.as_dict())))
    steps = steps_per_run(train_json, cfg["epochs"], cfg["batch_size"])
    key = {**cfg, "device": args.device}

    def rows_of(name: str, compute) -> list[dict]:
        """The rows of one part: read back from the workdir when this configuration ran them before."""
        path = work / "rows" / f"{name}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved["config"] == key:
                return saved["rows"]
        if name not in wanted:
            return []
        rows = compute()
        path.write_text(json.dumps({"config": key, "rows": rows}, indent=1))
        return rows

    def standalone() -> list[dict]:
        seconds, n = train(str(alone), train_json, work / "standalone.h5", cfg["epochs"], cfg["batch_size"], args.device)
        return [row("gaia standalone", eval_path(work / "standalone.h5", top.as_dict(), val_json, train_json, args.device),
                    eval_path(work / "standalone.h5", top.as_dict(), train_eval, train_json, args.device), n, seconds)]

    def reference() -> list[dict]:
        start = time.perf_counter()
        model, classes = reference_loop(top, space["detector"], train_json, steps, cfg["batch_size"], args.device, 0)
        seconds = time.perf_counter() - start
        return [row("reference loop", coco_ap(model, classes, val_json, args.device),
                    coco_ap(model, classes, train_eval, args.device), steps, seconds)]

    def supernet() -> list[dict]:
        sn = work / "supernet.h5"
        seconds, n = train(cfg["space"], train_json, sn, cfg["epochs"], cfg["batch_size"], args.device)
        paths = [("supernet max", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "max")),
                 ("supernet min", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "min"))]
        paths += [(f"supernet random {i + 1}", line) for i, line in
                  enumerate(gaia("space", "sample", cfg["space"], "-n", 3, "--rule", "uniform", "--seed", 1).splitlines())]
        out = []
        for name, arch in paths:
            r = row(name, eval_path(sn, arch, val_json, train_json, args.device),
                    eval_path(sn, arch, train_eval, train_json, args.device), n, seconds)
            r["arch"] = {k: v for k, v in json.loads(arch).items() if k in ("depth", "width", "scale")}
            out.append(r)
        return out

    def montage() -> list[dict]:
        samples, backbone = work / "samples.h5", work / "backbone.h5"
        start = time.perf_counter()
        gaia("extract-montage", "--data", train_json, "--min-size", 8, "-o", samples, "-q")
        gaia("pretrain", samples, "--space", str(alone), "--size", 128, "--epochs", cfg["epochs"],
             "--batch-size", 16, "--workers", 0, "--device", args.device, "--restart", "-q", "-o", backbone)
        pre_seconds = time.perf_counter() - start
        seconds, n = train(str(alone), train_json, work / "montage.h5", cfg["epochs"], cfg["batch_size"],
                           args.device, init=backbone)
        r = row("montage init", eval_path(work / "montage.h5", top.as_dict(), val_json, train_json, args.device),
                eval_path(work / "montage.h5", top.as_dict(), train_eval, train_json, args.device), n, seconds)
        r["pretrain_seconds"] = round(pre_seconds)
        return [r]

    rows: list[dict] = []
    for name, compute in (("standalone", standalone), ("reference", reference), ("supernet", supernet),
                          ("montage", montage)):
        rows += rows_of(name, compute)
    for r in rows:
        print(f"  {r['model']:<22} AP {r['AP']:5.1f}  AP50 {r['AP50']:5.1f}  train AP50 {r['train_AP50']:5.1f}  "
              f"{r['steps']:5d} steps  {r['seconds']:5d} s", flush=True)

    by = {r["model"]: r for r in rows}
    summary: dict = {"config": key, "rows": rows}
    if "reference loop" in by and "gaia standalone" in by:
        summary["gaia_minus_reference_AP50"] = round(by["gaia standalone"]["AP50"] - by["reference loop"]["AP50"], 1)
        summary["gaia_minus_reference_AP"] = round(by["gaia standalone"]["AP"] - by["reference loop"]["AP"], 1)
    if "supernet max" in by and "gaia standalone" in by:
        summary["weight_sharing_gap_AP50"] = round(by["supernet max"]["AP50"] - by["gaia standalone"]["AP50"], 1)
        summary["weight_sharing_gap_AP"] = round(by["supernet max"]["AP"] - by["gaia standalone"]["AP"], 1)
    if "montage init" in by and "gaia standalone" in by:
        summary["montage_gain_AP50"] = round(by["montage init"]["AP50"] - by["gaia standalone"]["AP50"], 1)
        summary["montage_gain_AP"] = round(by["montage init"]["AP"] - by["gaia standalone"]["AP"], 1)
    figures = {"standalone_AP50": ("gaia standalone", "AP50"), "standalone_AP": ("gaia standalone", "AP"),
               "supernet_max_AP50": ("supernet max", "AP50"), "supernet_min_AP50": ("supernet min", "AP50")}
    summary["targets"] = {k: {"target": t, "measured": by[figures[k][0]][figures[k][1]],
                              "met": by[figures[k][0]][figures[k][1]] >= t}
                          for k, t in TARGETS.items() if figures[k][0] in by}
    summary["met"] = bool(summary["targets"]) and all(v["met"] for v in summary["targets"].values())
    print()
    for k, v in summary.items():
        if k.endswith(("_AP50", "_AP")):
            print(f"  {k.replace('_', ' ')}: {v:+.1f}")
    for k, t in summary["targets"].items():
        print(f"  target {k.replace('_', ' ')} >= {t['target']:.0f}: {t['measured']:.1f} "
              f"({'met' if t['met'] else 'NOT met'})")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
