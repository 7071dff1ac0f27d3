"""How a supernet should be trained: GAIA's rules and recipe, the from-scratch recipe, the sandwich rule and
in-place distillation, each the same supernet trained on the same toy data, beside the same archs trained alone.

Rows (`--rows`, comma-separated), each a `gaia train-supernet` run with the same data, space, batch and seed,
differing only in what the row names (every row names its recipe, so a change of default changes no row):

- `rules-gaia`: `--recipe pretrained` (GAIA's rate for pre-trained backbones, 0.00125 per image), `--rules
  gaia` (GAIA 4.1: at each step a model obeying one of the prescribed rules, picked at random);
- `rules-cycle`: the same with `--rules gaia-cycle` (the rules in turn, each followed by a uniform draw);
- `recipe-gaia`: `--recipe gaia` (head losses x5, IoU-balanced RoI sampling; --epochs keeps one phase);
- `lr-x2`: `--recipe pretrained --lr-per-image 0.0025` (twice GAIA's rate), `lr-x4`: 0.005, `lr-x8`: 0.01;
  `lr-x4-2x`, `lr-x8-2x`: the same for twice the epochs (the target's budget: twice the standalone's steps);
- `sandwich`: `--rules sandwich --paths-per-step 3` at four times GAIA's rate (largest, smallest, one uniform path
  a step, gradients accumulated), for two thirds of the epochs (twice the standalone's path-steps);
  `sandwich-long`: all the epochs (three times);
- `distill`, `distill-long`: the same with in-place distillation (`--distill 1`);
- `lr-x4-late`, `lr-x6-late`: four and six times GAIA's rate with the drops late (`--lr-steps` at 5/6 and 23/24
  of the epochs: 20,23 of 24), `lr-x6`: six times at the default drops (2/3 and 7/8);
- `scratch`: `--recipe scratch` as it is now (what `auto` picks without `--init`);
- `only-depth`, `only-width`, `only-scale`: the diagnosis, at `lr-x4`'s rate: a supernet whose space keeps one
  dimension elastic and fixes the others at the largest arch's choices (only the paths inside it evaluated:
  the largest), to tell which kind of sharing costs the largest path its AP;
- `standalone`: each evaluated arch trained alone (a space holding only it) at four times GAIA's rate for
  the epochs given: the reference every row is compared with.

Each supernet's largest, smallest and 3 random paths are evaluated (val AP and AP50, each path's BN
recalibrated on 64 training images, as `gaia eval` does). One table: each path's AP/AP50, the path-steps
(steps x paths a step) against the standalone's, and each row's gap to the standalone of each path (the
target: within 3 AP for all five at no more than twice the standalone's path-steps). Trained supernets and
results are kept in `--workdir`, so rows can be run one at a time or by several processes.

    python benchmarks/bench_recipe.py --quick                              # a few minutes: tiny space, 64 images
    python benchmarks/bench_recipe.py --scale cpu --epochs 24 --workdir W --rows standalone,distill
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

PRE = ["--recipe", "pretrained"]
SANDWICH = [*PRE, "--lr-per-image", "0.005", "--rules", "sandwich", "--paths-per-step", "3"]
# name: (train-supernet's options, the share of --epochs it trains)
ROWS = {"rules-gaia": ([*PRE, "--rules", "gaia"], 1.0), "rules-cycle": ([*PRE, "--rules", "gaia-cycle"], 1.0),
        "recipe-gaia": (["--recipe", "gaia"], 1.0),
        "lr-x2": ([*PRE, "--lr-per-image", "0.0025"], 1.0), "lr-x4": ([*PRE, "--lr-per-image", "0.005"], 1.0),
        "lr-x8": ([*PRE, "--lr-per-image", "0.01"], 1.0), "lr-x4-2x": ([*PRE, "--lr-per-image", "0.005"], 2.0),
        "lr-x8-2x": ([*PRE, "--lr-per-image", "0.01"], 2.0),
        "sandwich": (SANDWICH, 2 / 3), "sandwich-long": (SANDWICH, 1.0),
        "distill": ([*SANDWICH, "--distill", "1"], 2 / 3), "distill-long": ([*SANDWICH, "--distill", "1"], 1.0),
        "scratch": (["--recipe", "scratch"], 1.0),
        # the diagnosis: the same supernet with one dimension elastic, the others fixed at the largest arch's
        "only-depth": ([*PRE, "--lr-per-image", "0.005"], 1.0), "only-width": ([*PRE, "--lr-per-image", "0.005"], 1.0),
        "only-scale": ([*PRE, "--lr-per-image", "0.005"], 1.0),
        # the schedule at 1x steps: the rate kept high longer (drops at 5/6 and 23/24 of the epochs), or higher
        "lr-x4-late": ([*PRE, "--lr-per-image", "0.005", "--lr-steps", "LATE"], 1.0),
        "lr-x6": ([*PRE, "--lr-per-image", "0.0075"], 1.0),
        "lr-x6-late": ([*PRE, "--lr-per-image", "0.0075", "--lr-steps", "LATE"], 1.0)}
LATE = "LATE"  # in a row's options: --lr-steps at 5/6 and 23/24 of its epochs
ONLY = {"only-depth": "depth", "only-width": "width", "only-scale": "scale"}


def only_space(space: dict, keep: str) -> dict:
    """`space` with only `keep` (depth, width or scale) elastic, every other choice fixed at its largest."""
    out = {**space, "name": f"{space['name']}-only-{keep}", "anchors": {}}
    for dim in ("depth", "width"):
        if dim != keep:
            out[dim] = [[max(c)] for c in space[dim]]
    if keep != "scale":
        out["scale"] = [max(space["scale"])]
    return out
STANDALONE = [*PRE, "--lr-per-image", "0.005"]


def train(args: list[str], space: str, train_json: Path, out: Path, epochs: int, cfg: dict, device: str,
          seed: int) -> tuple[float, int, int]:
    """(wall seconds, steps, path-steps) of one train-supernet run."""
    start = time.perf_counter()
    gaia("train-supernet", "--data", train_json, "--space", space, "--epochs", epochs, "--batch-size",
         cfg["batch_size"], *args, "--seed", seed, "--workers", 0, "--device", device, "--restart", "-q", "-o", out)
    seconds = time.perf_counter() - start
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(out, "gaia/weights") as art:
        training = art.meta("training")
    return seconds, training["iterations"], training["iterations"] * training["options"]["paths_per_step"]


def fmt(m: dict) -> str:
    return f"{m['AP']:.1f}/{m['AP50']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu", help="data and schedule sizes (bench_learning's)")
    parser.add_argument("--quick", action="store_true", help="the quick scale (a few minutes on one core)")
    parser.add_argument("--space", help="search space (default: the scale's)")
    parser.add_argument("--epochs", type=int, help="epochs of each training run (default: the scale's)")
    parser.add_argument("--rows", default="standalone,rules-gaia,scratch,distill",
                        help=f"rows to run (standalone, {', '.join(ROWS)}); rows already in --workdir are read back")
    parser.add_argument("--seed", type=int, default=0, help="train-supernet's --seed (the toy data stays seed 0)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    if any(r not in ROWS and r != "standalone" for r in wanted):
        parser.error(f"--rows takes standalone, {', '.join(ROWS)}")
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

    from bench_learning import one_arch_space

    space_payload = json.loads(gaia("space", "show", cfg["space"]))

    def saved_or(name: str, compute):
        saved = work / "rows" / f"{name.replace('/', '.')}.seed{args.seed}.json"
        if saved.is_file() and json.loads(saved.read_text())["config"] == key:
            return json.loads(saved.read_text())["result"]
        if name.split("/")[0] not in wanted:
            return None
        result = compute()
        saved.write_text(json.dumps({"config": key, "result": result}, indent=1))
        return result

    def standalone(p: str, arch: str) -> dict:
        alone = work / f"standalone.{p.replace(' ', '')}.space.json"
        alone.write_text(json.dumps(one_arch_space(space_payload, json.loads(arch))))
        sn = work / f"standalone.{p.replace(' ', '')}.seed{args.seed}.h5"
        seconds, steps, path_steps = train(STANDALONE, str(alone), train_json, sn, cfg["epochs"], cfg, args.device,
                                           args.seed)
        m = eval_path(sn, arch, val_json, train_json, args.device)
        return {"steps": steps, "path_steps": path_steps, "seconds": round(seconds),
                "AP": round(m["AP"], 1), "AP50": round(m["AP50"], 1)}

    alone = {p: saved_or(f"standalone/{p.replace(' ', '')}", lambda p=p, a=a: standalone(p, a)) for p, a in paths}
    if all(alone.values()):
        print(f"  {'standalone':<15} {' '.join(STANDALONE):<60} {alone['max']['steps']} steps each, "
              f"{sum(r['seconds'] for r in alone.values()):5d} s: "
              + "  ".join(f"{p} {fmt(m)}" for p, m in alone.items()) + "  (AP/AP50)", flush=True)

    results: dict[str, dict] = {}
    for name, (row_args, share) in ROWS.items():
        def compute(name=name, row_args=row_args, share=share) -> dict:
            sn = work / f"supernet.{name}.seed{args.seed}.h5"
            epochs = max(1, round(cfg["epochs"] * share))
            space, evaluated = cfg["space"], paths
            if name in ONLY:  # the paths of the reduced space only
                reduced = only_space(space_payload, ONLY[name])
                space = str(work / f"space.{name}.json")
                Path(space).write_text(json.dumps(reduced))
                inside = lambda a: all(x in c for x, c in zip(a["depth"], reduced["depth"])) and all(  # noqa: E731
                    x in c for x, c in zip(a["width"], reduced["width"])) and a["scale"] in reduced["scale"]
                evaluated = [(p, arch) for p, arch in paths if inside(json.loads(arch))]
            row_args = [f"{round(epochs * 5 / 6)},{epochs * 23 // 24}" if a == LATE else a for a in row_args]
            seconds, steps, path_steps = train(row_args, space, train_json, sn, epochs, cfg, args.device,
                                               args.seed)
            per_path = {p: eval_path(sn, arch, val_json, train_json, args.device) for p, arch in evaluated}
            return {"args": row_args, "epochs": epochs, "steps": steps, "path_steps": path_steps,
                    "seconds": round(seconds),
                    "paths": {p: {"AP": round(m["AP"], 1), "AP50": round(m["AP50"], 1)} for p, m in per_path.items()}}

        result = saved_or(name, compute)
        if result is None:
            continue
        results[name] = r = result
        print(f"  {name:<15} {' '.join(r['args']):<60} {r['steps']} steps ({r['path_steps']} path-steps), "
              f"{r['seconds']:5d} s: " + "  ".join(f"{p} {fmt(m)}" for p, m in r["paths"].items()) + "  (AP/AP50)",
              flush=True)
    gaps = {}
    if all(alone.values()):
        for name, r in results.items():
            gap = {p: round(r["paths"][p]["AP"] - alone[p]["AP"], 1) for p in alone if p in r["paths"]}
            ratio = r["path_steps"] / alone["max"]["path_steps"]
            met = all(g >= -3 for g in gap.values()) and ratio <= 2
            gaps[name] = {"AP_minus_standalone": gap, "path_steps_ratio": round(ratio, 2), "target_met": met}
            print(f"  {name} minus standalone, AP: " + ", ".join(f"{p} {g:+.1f}" for p, g in gap.items())
                  + f"; path-steps x{ratio:.2f}; target (all within 3 AP at <= x2): {'met' if met else 'not met'}")
    if args.json:
        args.json.write_text(json.dumps({"config": key, "standalone": alone, "results": results,
                                         "minus_standalone": gaps}, indent=1) + "\n")


if __name__ == "__main__":
    main()
