"""Search and latency prediction, measured side by side in one run.

1. The default search (`gaia search --latency 25 --device v100`: population 100, 500 generations), wall time
   as a user runs it (a fresh process) and in-process; target 5 s or less on this 2-core machine. Then
   candidates/s of the search's cached, closed-form scoring against a naive loop that scores one arch at a
   time with the detailed counter and no cache.
2. The v100 profile's leave-one-out error on GAIA Table 2 (target: 4% mean or less), beside a FLOPs-linear
   fit on the paper's own FLOPs column (about 4.4%).
3. Measurement stability on this machine: p90/p10 of repeated measurements of one arch (tiny preset, CPU).

    python benchmarks/bench_search.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from gaia_cli.latency.measure import measure_model
from gaia_cli.latency.profile import leave_one_out, table2, v100
from gaia_cli.nn.detector import build_static
from gaia_cli.search.evolution import Budget, Evolution, Settings
from gaia_cli.space.arch import Arch, preset
from gaia_cli.space.flops import detector_cost
from gaia_cli.space.sampling import PathSampler

TARGET_S = 5.0


def search_speed() -> None:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "gaia_cli", "search", "--latency", "25", "--device", "v100", "-q"],
                         capture_output=True, text=True, check=True).stdout
    cli = time.perf_counter() - start
    arch = json.loads(out)
    space = preset("ar50to101")
    budget = Budget(25.0, v100(), None, 81, space.detector)
    start = time.perf_counter()
    Evolution(space, budget, lambda a: budget.costs(a)[1], Settings()).run()
    inner = time.perf_counter() - start
    print("1. default search: --latency 25 --device v100 (population 100, 500 generations)")
    print(f"   found {arch['depth']} {arch['width']} @{arch['scale']}: {arch['latency_ms']:.2f} ms, {arch['gflops']:.1f} GFLOPs")
    print(f"   as a user runs it: {cli:.2f} s (target {TARGET_S:.0f} s, ratio {cli / TARGET_S:.2f}); "
          f"in-process: {inner:.2f} s for {budget.evaluations:,} candidate evaluations "
          f"({budget.evaluations / inner:,.0f}/s)")
    sampler = PathSampler(space, "uniform", 1)
    archs = [sampler.next() for _ in range(3000)]
    profile = v100()
    start = time.perf_counter()
    for a in archs:  # naive: the detailed counter, no cache, one arch at a time
        gmacs = sum(p.macs for p in detector_cost(a, 81).values()) / 1e9
        _ = gmacs * profile.coefficients["detector_gmacs"] + profile.intercept <= 25.0
    naive = len(archs) / (time.perf_counter() - start)
    fresh = Budget(25.0, v100(), None, 81, space.detector)
    start = time.perf_counter()
    for a in archs:
        fresh.meets(a)
    fast = len(archs) / (time.perf_counter() - start)
    print(f"   candidates/s, distinct archs: search's scoring {fast:,.0f} vs naive loop {naive:,.0f} "
          f"(ratio {fast / naive:.1f}); repeated archs cost a dictionary lookup")


def loo_table() -> None:
    rows = table2()
    y = np.array([r["latency_ms_v100"] for r in rows], float)
    profile = v100()
    ours = np.array([profile.gmacs(Arch(tuple(r["depth"]), tuple(r["width"]), r["scale"])) for r in rows])
    paper = np.array([r["gflops"] for r in rows])
    err_ours, err_paper = leave_one_out(ours, y), leave_one_out(paper, y)
    print("\n2. v100 profile, leave-one-out on GAIA Table 2")
    print(f"{'model':26s} {'ms':>4s} {'ours err':>9s} {'paper-FLOPs err':>16s}")
    for r, a, b in zip(rows, err_ours, err_paper):
        print(f"{r['name']:26s} {r['latency_ms_v100']:4d} {a:9.1%} {b:16.1%}")
    print(f"mean: ours {err_ours.mean():.2%} (max {err_ours.max():.1%}); FLOPs-linear on the paper's column "
          f"{err_paper.mean():.2%} (max {err_paper.max():.1%}); target 4%")


def stability(repeats: int = 5) -> None:
    arch = preset("tiny").anchors["T1"]
    model = build_static(arch, 7, preset("tiny").detector)
    medians = [measure_model(model, arch.scale, torch.device("cpu"), 3, 20)["detector"]["median"] for _ in range(repeats)]
    p10, p90 = np.percentile(medians, [10, 90])
    print(f"\n3. measurement stability (tiny anchor, CPU, {repeats} measurements of 20 runs): medians "
          f"{min(medians):.2f}-{max(medians):.2f} ms, p90/p10 {p90 / p10:.3f}")


if __name__ == "__main__":
    search_speed()
    loo_table()
    stability()
