"""GAIA's path sampling, the paper's against the cycle: `--rules gaia` and `--rules gaia-cycle` side by side.

The paper (GAIA 4.1) picks, at each step, a model obeying one of the prescribed rules at random (`gaia`);
`gaia-cycle` takes the rules in turn, each followed by a uniform draw (half the paths uniform). Both train the
same supernet on the same toy data with the same seed, schedule and options (only --rules differs); then the
largest, the smallest and 3 random paths of each are evaluated (val AP and AP50, each path's BN recalibrated
on 64 training images, as `gaia eval` does). One table, and the mean differences (gaia minus gaia-cycle).

    python benchmarks/bench_sampling.py --quick            # a few minutes: tiny space, 64 images, 2 epochs
    python benchmarks/bench_sampling.py --scale cpu --epochs 8 --json sampling.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import SCALES, eval_path, gaia  # noqa: E402  (the same toy data and evaluation)

RULES = ("gaia", "gaia-cycle")


def train(rules: str, space: str, train_json: Path, out: Path, cfg: dict, device: str) -> tuple[float, int]:
    start = time.perf_counter()
    gaia("train-supernet", "--data", train_json, "--space", space, "--epochs", cfg["epochs"], "--batch-size",
         cfg["batch_size"], "--rules", rules, "--workers", 0, "--device", device, "--restart", "-q", "-o", out)
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(out, "gaia/weights") as art:
        steps = art.meta("training")["iterations"]
    return time.perf_counter() - start, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu", help="data and schedule sizes (bench_learning's)")
    parser.add_argument("--quick", action="store_true", help="the quick scale (a few minutes on one core)")
    parser.add_argument("--space", help="search space (default: the scale's)")
    parser.add_argument("--epochs", type=int, help="epochs of each training run (default: the scale's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    cfg = dict(SCALES["quick" if args.quick else args.scale])
    cfg["space"] = args.space or cfg["space"]
    cfg["epochs"] = args.epochs or cfg["epochs"]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_sampling."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"toy data: {cfg['images']} train / {cfg['val_images']} val images of {cfg['size']} px, seed 0; space "
          f"{cfg['space']}; {cfg['epochs']} epochs of batch {cfg['batch_size']}; device {args.device}; "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} threads; in {work}", flush=True)
    toy = work / "toy"
    if not (toy / "train.json").is_file():
        gaia("toy-data", toy, "--images", cfg["images"], "--val-images", cfg["val_images"], "--size", cfg["size"],
             "--seed", 0, "-q")
    train_json, val_json = toy / "train.json", toy / "val.json"
    paths = [("max", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "max")),
             ("min", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "min"))]
    paths += [(f"random {i + 1}", line) for i, line in
              enumerate(gaia("space", "sample", cfg["space"], "-n", 3, "--rule", "uniform", "--seed", 1).splitlines())]
    results: dict[str, dict] = {}
    for rules in RULES:
        sn = work / f"supernet.{rules}.h5"
        seconds, steps = train(rules, cfg["space"], train_json, sn, cfg, args.device)
        per_path = {name: eval_path(sn, arch, val_json, train_json, args.device) for name, arch in paths}
        results[rules] = {"steps": steps, "seconds": round(seconds),
                          "paths": {n: {"AP": round(m["AP"], 1), "AP50": round(m["AP50"], 1)} for n, m in per_path.items()}}
        print(f"  --rules {rules:<10} {steps} steps, {seconds:.0f} s: " + "  ".join(
            f"{n} {m['AP']:.1f}/{m['AP50']:.1f}" for n, m in results[rules]["paths"].items()) + "  (AP/AP50)", flush=True)
    diff = {}
    for metric in ("AP", "AP50"):
        deltas = [results["gaia"]["paths"][n][metric] - results["gaia-cycle"]["paths"][n][metric] for n, _ in paths]
        diff[metric] = {"mean": round(sum(deltas) / len(deltas), 2), "per_path": [round(d, 1) for d in deltas]}
    print(f"  gaia minus gaia-cycle: mean AP {diff['AP']['mean']:+.2f}, mean AP50 {diff['AP50']['mean']:+.2f} "
          f"(per path AP50 {', '.join(f'{d:+.1f}' for d in diff['AP50']['per_path'])})")
    if args.json:
        args.json.write_text(json.dumps({"config": {**cfg, "device": args.device}, "results": results,
                                         "gaia_minus_cycle": diff}, indent=1) + "\n")


if __name__ == "__main__":
    main()
