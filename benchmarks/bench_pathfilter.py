"""DetOFA's path filter and pruning on the toy supernet, side by side with baselines, in one run.

1. **Table 3**: `gaia train-supernet` of the `small` space on toy data (the learning benchmark's supernet and
   recipe), then `gaia fit-pathfilter`: M paths measured per FLOPs bucket (BN recalibrated, validation loss
   and AP), the filter fitted on 80% of each bucket. On the held-out 20%: Kendall tau-b within buckets and
   detection of each bucket's weakest 25% (accuracy, precision, recall), beside the baselines fitted on the
   same split (FLOPs alone, once-for-all's MLP predictor, random) and DetOFA's Table 3.
2. **Pruned against unpruned**: `gaia prune` of the space by that filter, and a supernet trained on the
   pruned space from scratch at the same steps as the first (which is the unpruned space's supernet);
   10 uniformly drawn paths of each space evaluated on its supernet (`gaia eval`, BN recalibrated): mean and
   best AP (DetOFA Figure 6: the pruned space's paths are better on average).
3. **Scoring throughput**: 50,000 paths of ar50to101 (45 tokens each), and of `small` (12), scored by a path
   filter (tokens, FLOPs buckets and the network, in batches); target under 5 s on 2 cores.
4. **Evolution loop**: gaia's search loop against once-for-all's EvolutionFinder on ar50to101 at 25 ms on the
   v100 profile, the same budget and settings (population 100, 500 generations, parents 25%, mutants 50%,
   mutation 0.1, scale mutation 0.5) and the same objective (FLOPs, scored per generation in one batch). The
   reference is a re-implementation of once-for-all's `EvolutionFinder.run_evolution_search` loop
   (ofa/nas/search_algorithm/evolution.py), written here for this comparison only: dict samples copied with
   deepcopy, each candidate's efficiency predicted one by one, redrawn until it meets the budget.

    python benchmarks/bench_pathfilter.py --quick                  # ~15 min on 2 CPU cores
    python benchmarks/bench_pathfilter.py --workdir W               # full: 200 measured paths (~1 h on 2 busy cores)
    python benchmarks/bench_pathfilter.py --parts throughput,evolution
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import eval_path, gaia, toy_data, train  # noqa: E402  the learning benchmark's helpers

SCALES = {
    # toy images, val images, px, epochs of each supernet, batch, paths per bucket, BN images, filter epochs
    "quick": {"images": 96, "val_images": 24, "size": 160, "epochs": 8, "batch_size": 8, "per_bucket": 8,
              "recalibrate": 32, "filter_epochs": 150, "paths": 10},
    "full": {"images": 320, "val_images": 80, "size": 160, "epochs": 24, "batch_size": 8, "per_bucket": 40,
             "recalibrate": 64, "filter_epochs": 200, "paths": 10},
}
PAPER = {"with pre-training": {"accuracy": 0.89, "precision": 0.79, "recall": 0.212},
         "without pre-training": {"accuracy": 0.72, "precision": 0.43, "recall": 0.137}}
PRUNE = ["--strategy", "flops-score-all", "--op-ratio-all", "0.1", "--op-ratio-bucket", "0.1", "--path-ratio", "0.25"]
PARTS = ("table3", "pruning", "throughput", "evolution")


def f(x, spec="6.3f") -> str:
    return "   -  " if x is None else format(x, spec)


# -------------------------------------------------------------------------------------------- 1 and 2


def table3(work: Path, cfg: dict, device: str) -> dict:
    toy = toy_data(work, cfg)
    supernet = work / "unpruned.h5"
    if not supernet.is_file():
        seconds, steps = train("small", toy / "train.json", supernet, cfg["epochs"], cfg["batch_size"], device)
        print(f"unpruned supernet: {steps} steps in {seconds:.0f} s", flush=True)
    filt = work / "filter.h5"
    if not filt.is_file():
        start = time.perf_counter()
        gaia("fit-pathfilter", "--weights", supernet, "--data", toy / "val.json", "--recalibrate-data",
             toy / "train.json", "--recalibrate", cfg["recalibrate"], "--paths-per-bucket", cfg["per_bucket"],
             "--epochs", cfg["filter_epochs"], "--device", device, "-q", "-o", filt)
        print(f"fit-pathfilter: {time.perf_counter() - start:.0f} s", flush=True)
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(filt, "gaia/pathfilter") as art:
        rep, table = art.meta("report"), art.meta("measurements")
    print(f"\n1. Table 3: {len(table)} measured paths ({cfg['per_bucket']} per bucket, 5 buckets), "
          f"held out {rep['held_out']}; weakest {rep['path_ratio']:.0%} per bucket")
    print(f"{'method':<26}{'tau-b':>8}{'accuracy':>10}{'precision':>11}{'recall':>8}")
    for name, row in rep["methods"].items():
        w = row["weakest"]
        print(f"{name:<26}{f(row['kendall_tau_b']['mean']):>8}{f(w['accuracy']):>10}{f(w['precision']):>11}"
              f"{f(w['recall']):>8}")
    for name, p in PAPER.items():
        print(f"{'DetOFA ' + name:<26}{'   -  ':>8}{f(p['accuracy']):>10}{f(p['precision']):>11}{f(p['recall']):>8}")
    aps = [r["ap"] for r in table if r["ap"] is not None]
    print(f"measured paths: loss {min(r['loss'] for r in table):.3f}..{max(r['loss'] for r in table):.3f}, "
          f"AP {min(aps):.1f}..{max(aps):.1f}")
    return {"report": rep, "measured": len(table)}


def pruning(work: Path, cfg: dict, device: str) -> dict:
    toy, filt, unpruned = work / "toy", work / "filter.h5", work / "unpruned.h5"
    pruned_space = work / "pruned.json"
    if not pruned_space.is_file():
        gaia("prune", "--space", "small", "--pathfilter", filt, *PRUNE, "-q", "-o", pruned_space)
    pruned = work / "pruned.h5"
    if not pruned.is_file():
        seconds, steps = train(str(pruned_space), toy / "train.json", pruned, cfg["epochs"], cfg["batch_size"], device)
        print(f"pruned supernet: {steps} steps in {seconds:.0f} s", flush=True)
    rows = {}
    for name, space, weights in (("unpruned", "small", unpruned), ("pruned", str(pruned_space), pruned)):
        cache = work / f"paths.{name}.json"
        if cache.is_file():
            rows[name] = json.loads(cache.read_text())
            continue
        archs = gaia("space", "sample", space, "-n", cfg["paths"], "--rule", "uniform", "--seed", 7, "-q").splitlines()
        results = []
        for line in archs:
            arch = json.loads(line)
            m = eval_path(weights, {k: arch[k] for k in ("depth", "width", "scale")}, toy / "val.json",
                          toy / "train.json", device)
            results.append({"arch": {k: arch[k] for k in ("depth", "width", "scale")}, "AP": m["AP"], "AP50": m["AP50"]})
        cache.write_text(json.dumps(results))
        rows[name] = results
    doc = json.loads(pruned_space.read_text())["pruning"]
    removed = sum(len(s) for b in doc["buckets"] for part in ("depth", "width") for s in b["removed"][part])
    print(f"\n2. Pruned against unpruned: prune {' '.join(PRUNE)} removed {removed} operation(s) over 5 buckets; "
          f"each supernet {cfg['epochs']} epochs; {cfg['paths']} uniform paths of each space, gaia eval")
    print(f"{'space':<10}{'mean AP':>9}{'best AP':>9}{'mean AP50':>11}{'best AP50':>11}")
    out = {}
    for name, results in rows.items():
        ap, ap50 = [r["AP"] for r in results], [r["AP50"] for r in results]
        out[name] = {"mean_AP": float(np.mean(ap)), "best_AP": max(ap), "mean_AP50": float(np.mean(ap50)),
                     "best_AP50": max(ap50)}
        print(f"{name:<10}{np.mean(ap):9.2f}{max(ap):9.2f}{np.mean(ap50):11.2f}{max(ap50):11.2f}")
    gain = out["pruned"]["mean_AP"] - out["unpruned"]["mean_AP"]
    print(f"pruned - unpruned mean AP: {gain:+.2f} (DetOFA Figure 6: positive)")
    return out


# ---------------------------------------------------------------------------------------------- 3


def throughput(n: int = 50_000, name: str = "ar50to101") -> dict:
    import torch

    from gaia_cli.pathfilter.buckets import bucket_edges
    from gaia_cli.pathfilter.filterfile import Scorer
    from gaia_cli.pathfilter.model import PathFilter
    from gaia_cli.pathfilter.tokens import Tokenizer
    from gaia_cli.space.arch import preset
    from gaia_cli.space.sampling import sample

    torch.set_num_threads(2)
    space = preset(name)
    torch.manual_seed(0)
    scorer = Scorer(PathFilter.build(Tokenizer.for_space(space), 5), space, bucket_edges(space, 5, 81), 81)
    rng = np.random.default_rng(0)
    archs = [sample(space, "uniform", rng) for _ in range(n)]
    scorer.score(archs[:100])  # warm-up
    start = time.perf_counter()
    scores = scorer.score(archs)
    seconds = time.perf_counter() - start
    assert len(scores) == n
    tokens = Tokenizer.for_space(space).length
    macs = sum(p.numel() for n_, p in scorer.model.named_parameters() if "encoder" in n_ and p.dim() == 2) * tokens
    print(f"\n3. Scoring throughput: {n:,} {name} paths ({tokens} tokens each; tokens, FLOPs buckets, network) in "
          f"{seconds:.2f} s on {torch.get_num_threads()} threads ({n / seconds:,.0f} paths/s); target under 5 s. "
          f"The encoder's matrix products alone are {macs / 1e6:.1f} M MACs a path, {n * macs / 1e12:.2f} T for all")
    return {"space": name, "paths": n, "seconds": seconds, "encoder_macs_per_path": macs}


# ---------------------------------------------------------------------------------------------- 4


class OfaEvolutionFinder:
    """once-for-all's EvolutionFinder loop (run_evolution_search), re-implemented for this comparison: samples
    are dicts {"d": [...], "w": [...], "r": int}; efficiency is predicted one sample at a time; accuracy once
    per generation for the whole child pool."""

    def __init__(self, space, efficiency, accuracy, population=100, generations=500, parent_ratio=0.25,
                 mutation_ratio=0.5, arch_mutate_prob=0.1, resolution_mutate_prob=0.5):
        self.space, self.efficiency, self.accuracy = space, efficiency, accuracy
        self.population_size, self.max_time_budget = population, generations
        self.parent_ratio, self.mutation_ratio = parent_ratio, mutation_ratio
        self.arch_mutate_prob, self.resolution_mutate_prob = arch_mutate_prob, resolution_mutate_prob

    def random_sample_arch(self):
        s = self.space
        return {"d": [random.choice(c) for c in s.depth], "w": [random.choice(c) for c in s.width],
                "r": random.choice(s.scale)}

    def random_valid_sample(self, constraint):
        while True:
            sample = self.random_sample_arch()
            eff = self.efficiency(sample)
            if eff <= constraint:
                return sample, eff

    def mutate_sample(self, sample, constraint):
        while True:
            new = copy.deepcopy(sample)
            if random.random() < self.resolution_mutate_prob:
                new["r"] = random.choice(self.space.scale)
            for i, c in enumerate(self.space.depth):
                if random.random() < self.arch_mutate_prob:
                    new["d"][i] = random.choice(c)
            for i, c in enumerate(self.space.width):
                if random.random() < self.arch_mutate_prob:
                    new["w"][i] = random.choice(c)
            eff = self.efficiency(new)
            if eff <= constraint:
                return new, eff

    def crossover_sample(self, s1, s2, constraint):
        while True:
            new = copy.deepcopy(s1)
            for key in new:
                if not isinstance(new[key], list):
                    new[key] = random.choice([s1[key], s2[key]])
                else:
                    for i in range(len(new[key])):
                        new[key][i] = random.choice([s1[key][i], s2[key][i]])
            eff = self.efficiency(new)
            if eff <= constraint:
                return new, eff

    def run_evolution_search(self, constraint):
        mutation_numbers = int(round(self.mutation_ratio * self.population_size))
        parents_size = int(round(self.parent_ratio * self.population_size))
        best = [-100.0]
        population, pool, effs = [], [], []
        for _ in range(self.population_size):
            sample, eff = self.random_valid_sample(constraint)
            pool.append(sample)
            effs.append(eff)
        accs = self.accuracy(pool)
        population = [(accs[i], pool[i], effs[i]) for i in range(self.population_size)]
        info = None
        for _ in range(self.max_time_budget):
            parents = sorted(population, key=lambda x: x[0])[::-1][:parents_size]
            if parents[0][0] > best[-1]:
                best.append(parents[0][0])
                info = parents[0]
            population, pool, effs = parents, [], []
            for _ in range(mutation_numbers):
                sample, eff = self.mutate_sample(population[np.random.randint(parents_size)][1], constraint)
                pool.append(sample)
                effs.append(eff)
            for _ in range(self.population_size - mutation_numbers):
                sample, eff = self.crossover_sample(population[np.random.randint(parents_size)][1],
                                                    population[np.random.randint(parents_size)][1], constraint)
                pool.append(sample)
                effs.append(eff)
            accs = self.accuracy(pool)
            population = population + [(accs[j], pool[j], effs[j]) for j in range(self.population_size)]
        return best, info


def evolution(repeats: int = 3) -> dict:
    from gaia_cli.latency.profile import v100
    from gaia_cli.search.evolution import Budget, Evolution, Settings
    from gaia_cli.space.arch import Arch, preset
    from gaia_cli.space.flops import _total_gmacs, detector_gflops

    space, profile = preset("ar50to101"), v100()

    def arch_of(s):
        return Arch(tuple(s["d"]), tuple(s["w"]), s["r"])

    def gaia_once() -> float:
        _total_gmacs.cache_clear()
        budget = Budget(25.0, profile, None, 81, space.detector)
        flops = lambda archs: [budget.costs(a)[1] for a in archs]  # noqa: E731
        evo = Evolution(space, budget, lambda a: flops([a])[0], Settings(seed=0), flops)
        start = time.perf_counter()
        evo.run()
        return time.perf_counter() - start

    def ofa_once() -> float:
        _total_gmacs.cache_clear()
        random.seed(0)
        np.random.seed(0)
        finder = OfaEvolutionFinder(space, lambda s: profile.predict(arch_of(s)),
                                    lambda pool: [detector_gflops(arch_of(s), 81, space.detector) for s in pool])
        start = time.perf_counter()
        finder.run_evolution_search(25.0)
        return time.perf_counter() - start

    from gaia_cli import console

    with console.quietly():
        gaia_s = min(gaia_once() for _ in range(repeats))
    ofa_s = min(ofa_once() for _ in range(repeats))
    print(f"\n4. Evolution loop, ar50to101 at 25 ms on v100, population 100, 500 generations (best of {repeats}):")
    print(f"gaia search loop {gaia_s:.2f} s, once-for-all EvolutionFinder loop (re-implemented here) {ofa_s:.2f} s: "
          f"gaia at {ofa_s / gaia_s:.2f}x its speed (target: 1.00x or more)")
    return {"gaia_s": gaia_s, "ofa_s": ofa_s, "speed": ofa_s / gaia_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small size (~15 min on 2 CPU cores)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the files here (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if any(p not in PARTS for p in parts):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    scale = "quick" if args.quick else "full"
    cfg = SCALES[scale]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pathfilter."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale {scale}: {cfg}; device {args.device}; {os.environ.get('OMP_NUM_THREADS', 'all')} threads; in {work}",
          flush=True)
    figures = {"scale": scale, "config": cfg}
    if "table3" in parts or "pruning" in parts:
        figures["table3"] = table3(work, cfg, args.device)
    if "pruning" in parts:
        figures["pruning"] = pruning(work, cfg, args.device)
    if "throughput" in parts:
        figures["throughput"] = [throughput(50_000, "ar50to101"), throughput(50_000, "small")]
    if "evolution" in parts:
        figures["evolution"] = evolution()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
