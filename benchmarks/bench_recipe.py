"""GAIA's training recipe, part by part: path sampling as the paper has it against the cycle, and --recipe gaia
and scratch against the default, each the same supernet trained on the same toy data, side by side.

Rows (`--rows`, comma-separated), each a `gaia train-supernet` run with the same data, space, epochs, batch and
seed, differing only in what the row names:

- `rules-gaia`: the default recipe, `--rules gaia` (GAIA 4.1: at each step a model obeying one of the
  prescribed rules, picked at random);
- `rules-cycle`: the default recipe with `--rules gaia-cycle` (the rules in turn, each followed by a uniform
  draw: half the paths uniform);
- `recipe-gaia`: `--recipe gaia` (head losses x5, IoU-balanced RoI sampling; --epochs keeps one phase);
- `recipe-scratch`: `--recipe scratch` (twice GAIA's rate).

Each supernet's largest, smallest and 3 random paths are evaluated (val AP and AP50, each path's BN
recalibrated on 64 training images, as `gaia eval` does). One table, and each row's mean difference from
`rules-gaia`. Trained supernets and results are kept in `--workdir`, so rows can be run one at a time.

    python benchmarks/bench_recipe.py --quick                              # a few minutes: tiny space, 64 images
    python benchmarks/bench_recipe.py --scale cpu --epochs 12 --workdir W --rows rules-gaia,rules-cycle
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
from bench_learning import SCALES, eval_path, gaia, toy_data  # noqa: E402  (the same toy data and evaluation)

ROWS = {"rules-gaia": ["--rules", "gaia"], "rules-cycle": ["--rules", "gaia-cycle"],
        "recipe-gaia": ["--recipe", "gaia"], "recipe-scratch": ["--recipe", "scratch"]}
BASELINE = "rules-gaia"


def train(args: list[str], space: str, train_json: Path, out: Path, cfg: dict, device: str, seed: int) -> tuple[float, int]:
    start = time.perf_counter()
    gaia("train-supernet", "--data", train_json, "--space", space, "--epochs", cfg["epochs"], "--batch-size",
         cfg["batch_size"], *args, "--seed", seed, "--workers", 0, "--device", device, "--restart", "-q", "-o", out)
    seconds = time.perf_counter() - start
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(out, "gaia/weights") as art:
        steps = art.meta("training")["iterations"]
    return seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu", help="data and schedule sizes (bench_learning's)")
    parser.add_argument("--quick", action="store_true", help="the quick scale (a few minutes on one core)")
    parser.add_argument("--space", help="search space (default: the scale's)")
    parser.add_argument("--epochs", type=int, help="epochs of each training run (default: the scale's)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"rows to run ({', '.join(ROWS)}); rows already "
                                                                 "in --workdir are read back")
    parser.add_argument("--seed", type=int, default=0, help="train-supernet's --seed (the toy data stays seed 0)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    if any(r not in ROWS for r in wanted):
        parser.error(f"--rows takes {', '.join(ROWS)}")
    cfg = dict(SCALES["quick" if args.quick else args.scale])
    cfg["space"] = args.space or cfg["space"]
    cfg["epochs"] = args.epochs or cfg["epochs"]
    key = {**cfg, "device": args.device, "seed": args.seed}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_recipe."))
    (work / "rows").mkdir(parents=True, exist_ok=True)
    print(f"toy data: {cfg['images']} train / {cfg['val_images']} val images of {cfg['size']} px, seed 0; space "
          f"{cfg['space']}; {cfg['epochs']} epochs of batch {cfg['batch_size']}; training seed {args.seed}; device {args.device}; "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} threads; in {work}", flush=True)
    toy = toy_data(work, cfg)
    train_json, val_json = toy / "train.json", toy / "val.json"
    paths = [("max", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "max")),
             ("min", gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "min"))]
    paths += [(f"random {i + 1}", line) for i, line in
              enumerate(gaia("space", "sample", cfg["space"], "-n", 3, "--rule", "uniform", "--seed", 1).splitlines())]

    results: dict[str, dict] = {}
    for name in ROWS:
        saved = work / "rows" / f"{name}.seed{args.seed}.json"
        if saved.is_file() and json.loads(saved.read_text())["config"] == key:
            results[name] = json.loads(saved.read_text())["result"]
        elif name in wanted:
            sn = work / f"supernet.{name}.seed{args.seed}.h5"
            seconds, steps = train(ROWS[name], cfg["space"], train_json, sn, cfg, args.device, args.seed)
            per_path = {p: eval_path(sn, arch, val_json, train_json, args.device) for p, arch in paths}
            results[name] = {"args": ROWS[name], "steps": steps, "seconds": round(seconds),
                             "paths": {p: {"AP": round(m["AP"], 1), "AP50": round(m["AP50"], 1)} for p, m in per_path.items()}}
            saved.write_text(json.dumps({"config": key, "result": results[name]}, indent=1))
        if name in results:
            r = results[name]
            print(f"  {name:<15} {' '.join(r['args']):<20} {r['steps']} steps, {r['seconds']:5d} s: " + "  ".join(
                f"{p} {m['AP']:.1f}/{m['AP50']:.1f}" for p, m in r["paths"].items()) + "  (AP/AP50)", flush=True)
    diffs = {}
    if BASELINE in results:
        base = results[BASELINE]["paths"]
        for name, r in results.items():
            if name == BASELINE:
                continue
            diffs[name] = {}
            for metric in ("AP", "AP50"):
                deltas = [r["paths"][p][metric] - base[p][metric] for p in base]
                diffs[name][metric] = {"mean": round(sum(deltas) / len(deltas), 2), "per_path": [round(d, 1) for d in deltas]}
            print(f"  {name} minus {BASELINE}: mean AP {diffs[name]['AP']['mean']:+.2f}, mean AP50 "
                  f"{diffs[name]['AP50']['mean']:+.2f} (per path AP50 "
                  f"{', '.join(f'{d:+.1f}' for d in diffs[name]['AP50']['per_path'])})")
    if args.json:
        args.json.write_text(json.dumps({"config": key, "results": results, f"minus_{BASELINE}": diffs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
