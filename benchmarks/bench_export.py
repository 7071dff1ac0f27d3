"""What the search's latency budget becomes after export: each arch as PyTorch runs it (eager) beside its
ONNX Runtime and TorchScript exports, measured in turns in one process, on this machine.

For 5 archs of each space (`small` and `ar50to101` by default; the largest, the smallest and 3 uniform, seed
0), a static model (81 classes for the GAIA spaces, seeded random weights: latency does not depend on what
was learned, except through the detections the post-processing keeps, which both sides share) goes through
the commands a user runs: `gaia export` (checked against PyTorch on generated images) and `gaia
bench-latency --exported FILE --model MODEL` (batch 1, the arch's scale square; median and p90 of each, in
turns). Printed: each arch's GFLOPs, PyTorch's median and p90, each export's, and the ratio export /
PyTorch, with the geometric mean per space and format.

    python benchmarks/bench_export.py                          # both spaces, both formats, CPU
    python benchmarks/bench_export.py --spaces small --runs 20 --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def gaia(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "gaia_cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"gaia {' '.join(map(str, args[:2]))} failed with exit {proc.returncode}")
    return proc.stdout


def archs_of(space_name: str, count: int):
    from gaia_cli.space.arch import preset
    from gaia_cli.space.sampling import PathSampler

    space = preset(space_name)
    sampler = PathSampler(space, "uniform", seed=0)
    return space, [space.max_arch, space.min_arch, *(sampler.next() for _ in range(count - 2))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default="small,ar50to101")
    parser.add_argument("--formats", default="onnx,torchscript")
    parser.add_argument("--archs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    import torch

    from gaia_cli.nn.detector import build_static
    from gaia_cli.nn.io import save_detector
    from gaia_cli.space.flops import detector_gflops

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_export."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"device {args.device}; torch {torch.__version__}; {os.environ.get('OMP_NUM_THREADS', 'all')} threads "
          f"(ONNX Runtime gets as many as torch); {args.runs} runs after {args.warmup}; in {work}", flush=True)
    rows = []
    for space_name in args.spaces.split(","):
        space, archs = archs_of(space_name, args.archs)
        classes = 81 if space_name.startswith("ar") else 7
        names = [f"class{i}" for i in range(1, classes)]
        print(f"\n{space_name}: {'arch':<44} {'GFLOPs':>7} {'PyTorch ms (median/p90)':>24} "
              + "".join(f"{fmt + ' ms':>18} {'ratio':>6}" for fmt in args.formats.split(",")), flush=True)
        for i, arch in enumerate(archs):
            torch.manual_seed(i)
            model = build_static(arch, classes, space.detector)
            weights = work / f"{space_name}.{i}.h5"
            save_detector(weights, model, names, {"arch": arch.as_dict(), "detector": space.detector})
            row = {"space": space_name, "arch": arch.as_dict(),
                   "gflops": round(detector_gflops(arch, classes, space.detector), 2), "formats": {}}
            for fmt in args.formats.split(","):
                out = work / f"{space_name}.{i}.{'onnx' if fmt == 'onnx' else 'pt'}"
                proc = subprocess.run([sys.executable, "-m", "gaia_cli", "export", str(weights), "--format", fmt,
                                       "--check-images", "2", "-q", "-o", str(out)], capture_output=True, text=True)
                if proc.returncode != 0:  # a failed export (its check) is a result too
                    row["formats"][fmt] = {"failed": proc.stderr.strip().splitlines()[-1][:300]}
                    continue
                result = json.loads(gaia("bench-latency", "--exported", out, "--model", weights, "--device",
                                         args.device, "--runs", args.runs, "--warmup", args.warmup, "-q"))["export"]
                row["formats"][fmt] = {"exported": result["exported"], "pytorch": result["pytorch"],
                                       "ratio_median": result["ratio_median"], "ratio_p90": result["ratio_p90"]}
            rows.append(row)
            timed = [f for f in row["formats"].values() if "failed" not in f]
            first = timed[0]["pytorch"] if timed else {"median": float("nan"), "p90": float("nan")}
            print(f"{'':<{len(space_name) + 2}}{str(arch):<44} {row['gflops']:>7} "
                  f"{first['median']:>12.1f} / {first['p90']:<9.1f}"
                  + "".join(f"{'failed':>26}" if "failed" in f else
                            f"{f['exported']['median']:>9.1f} / {f['exported']['p90']:<6.1f} x{f['ratio_median']:.2f}"
                            for f in row["formats"].values()), flush=True)
            for fmt, f in row["formats"].items():
                if "failed" in f:
                    print(f"    {fmt} export failed: {f['failed']}", flush=True)
        for fmt in args.formats.split(","):
            ratios = [r["formats"][fmt]["ratio_median"] for r in rows
                      if r["space"] == space_name and "failed" not in r["formats"][fmt]]
            if not ratios:
                continue
            print(f"  {space_name} {fmt} / PyTorch, geometric mean of the median ratios: "
                  f"x{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "runs": args.runs, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
