"""The python side of `benchmarks/gpu_check.sh`: one subcommand per check, and the summary.

Each check drives the gaia CLI (`python -m gaia_cli ...`) on toy data that it makes with `gaia toy-data`,
and writes OUTDIR/checks/NAME.json (figures, target, met) as it goes, so a check stopped by its time limit
still leaves what it measured. `gpu_check.sh` runs each under `timeout` and merges them with `summary`.

    python benchmarks/gpu_check.py env OUTDIR
    python benchmarks/gpu_check.py check NAME OUTDIR --mode gpu|cpu|smoke
    python benchmarks/gpu_check.py cli --record FILE -- GAIA-ARGS...   # one gaia command, steps timed
    python benchmarks/gpu_check.py summary OUTDIR

`cli` runs a gaia command in this process, through the CLI's own entry point, with the training engine's
step (`Trainer._step`) wrapped to time each step (CUDA synchronised) and to read the peak GPU memory from
the first step on (`torch.cuda.max_memory_allocated` lives inside the process, so a subprocess cannot
report it). Modes: `gpu` (a CUDA device: the sizes the targets are about), `cpu` (no CUDA: the elastic
overhead at toy sizes only; the rest is skipped), `smoke` (no CUDA, GPU_CHECK_SMOKE=1: every check at toy
sizes on the CPU, to test this script itself; its figures say nothing about the targets).

Nothing here imports torch or gaia_cli at module level: `summary` must work even where they are broken.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# name -> (letter, what it checks); the order is the order gpu_check.sh runs them in
CHECKS = {
    "amp_supernet": ("a", "train-supernet AMP vs fp32 steps at 320 px"),
    "frozen_finetune": ("c", "finetune --freeze backbone vs --freeze none"),
    "elastic_overhead": ("d", "supernet path vs extracted static model, forward+backward"),
    "latency_profile": ("b", "bench-latency profile of this GPU, predicted vs measured"),
    "learning": ("e", "benchmarks/bench_learning.py --scale gpu"),
}

# Sizes per mode. gpu: an H100/H200 with 16 cores, all five checks within 8 minutes together.
SIZES = {
    "gpu": {
        "toy_images": 96, "toy_size": 320, "workers": 4,
        "a": {"space": "tiny", "scale": 320, "batch": 8, "steps": 40, "warmup_steps": 5, "amp": True},
        "c": {"space": "ar50", "anchor": "AR50", "scale": 400, "batch": 4, "steps": 12, "warmup_steps": 3,
              "recalibrate": 4},
        "d": {"space": "ar50", "batch": 2, "repeats": 10, "warmup": 2, "target": 1.05},
        "b": {"space": "ar50to101", "warmup": 5, "runs": 20, "fit_archs": 20, "sample": 20, "target": 0.05},
    },
    "smoke": {
        "toy_images": 8, "toy_size": 128, "workers": 0,
        "a": {"space": "tiny", "scale": 128, "batch": 2, "steps": 3, "warmup_steps": 1, "amp": False},
        "c": {"space": "tiny", "anchor": "T1", "scale": 96, "batch": 2, "steps": 3, "warmup_steps": 1,
              "recalibrate": 2},
        "d": {"space": "tiny", "batch": 1, "repeats": 5, "warmup": 1, "target": 1.10},
        "b": {"space": "tiny", "warmup": 1, "runs": 3, "fit_archs": 4, "sample": 4, "target": 0.05},
    },
}
SIZES["cpu"] = SIZES["smoke"]
CUDA_ONLY = ("amp_supernet", "frozen_finetune", "latency_profile", "learning")


# ---------------------------------------------------------------------------------------------- helpers


def write_json(path: Path, obj) -> None:
    """Atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def log(msg: str) -> None:
    print(f"[gpu_check] {msg}", file=sys.stderr, flush=True)


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def gaia(*args: str, stdout=None) -> int:
    """Run a gaia command (`python -m gaia_cli`, the same entry point as `gaia`); its output goes to our log."""
    cmd = [sys.executable, "-m", "gaia_cli", *args]
    log("$ gaia " + " ".join(args))
    return subprocess.run(cmd, stdout=stdout if stdout is not None else sys.stderr, cwd=REPO).returncode


def gaia_timed(record: Path, *args: str) -> dict:
    """Run a gaia command through `cli` (steps timed, peak memory) and return its record."""
    record.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "cli", "--record", str(record), "--", *args]
    log("$ gaia " + " ".join(args) + "   (steps timed)")
    rc = subprocess.run(cmd, stdout=sys.stderr, cwd=REPO).returncode
    rec = read_json(record) or {"steps": []}
    rec["rc"] = rec.get("rc", rc) if rc == 0 else rc
    return rec


def ensure_toy(work: Path, name: str, images: int, size: int) -> Path:
    """`gaia toy-data` into work/name (made once, atomically, shared by the checks); returns train.json."""
    out = work / name
    if (out / "train.json").is_file():
        return out / "train.json"
    tmp = work / (name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    rc = gaia("toy-data", str(tmp), "--images", str(images), "--size", str(size), "--seed", "0", "-q",
              stdout=subprocess.DEVNULL)
    if rc != 0:
        raise RuntimeError(f"gaia toy-data exited {rc}")
    os.replace(tmp, out)
    return out / "train.json"


def make_space(work: Path, preset: str, scale: int, anchor: str | None = None) -> Path:
    """A gaia/space file from `gaia space show PRESET` with every scale set to `scale`; with `anchor`,
    only that anchor's choices (a one-path space: the supernet is that static network)."""
    out = work / f"space-{preset}{'-' + anchor if anchor else ''}-{scale}.json"
    raw = work / f"space-{preset}.shown.json"
    with open(raw, "wb") as f:
        if gaia("space", "show", preset, stdout=f) != 0:
            raise RuntimeError(f"gaia space show {preset} failed")
    space = json.loads(raw.read_text())
    space["scale"] = [scale]
    for a in space["anchors"].values():
        a["scale"] = scale
    if anchor:
        a = space["anchors"][anchor]
        space["depth"] = [[d] for d in a["depth"]]
        space["width"] = [[w] for w in a["width"]]
        space["anchors"] = {anchor: a}
        space["name"] = f"{preset}-{anchor}-{scale}"
    else:
        space["name"] = f"{preset}-{scale}"
    write_json(out, space)
    return out


def step_figures(rec: dict, warmup_steps: int) -> dict:
    """Step time (median), steps/s and images/s after `warmup_steps`, peak memory, final losses."""
    steps = rec.get("steps") or []
    timed = steps[warmup_steps:] if len(steps) > warmup_steps else steps
    fig = {"rc": rec.get("rc"), "steps": len(steps), "warmup_steps_excluded": len(steps) - len(timed),
           "wall_s": rec.get("wall_s"), "error": rec.get("error")}
    if timed:
        compute = [s["end"] - s["start"] for s in timed]
        fig["step_s_median"] = statistics.median(compute)
        fig["steps_per_s"] = len(timed) / sum(compute)
        fig["images_per_s"] = sum(s["images"] for s in timed) / sum(compute)
        if len(timed) > 1:  # start to start: data loading and logging included
            fig["loop_steps_per_s"] = (len(timed) - 1) / (timed[-1]["start"] - timed[0]["start"])
    if steps:
        last = steps[-1]
        fig["final_loss"] = last.get("loss")
        fig["final_losses"] = last.get("losses")
        fig["losses_finite"] = all(finite(s.get("loss")) for s in steps) and all(
            finite(v) for v in (last.get("losses") or {}).values())
    fig["peak_gpu_mib"] = rec.get("peak_gpu_mib")
    fig["gpu_mib_before_first_step"] = rec.get("gpu_mib_before_first_step")
    fig["peak_rss_mib"] = rec.get("peak_rss_mib")
    return fig


def ratio(a, b):
    return a / b if finite(a) and finite(b) and b else None


class Check:
    """The JSON of one check, rewritten on every change."""

    def __init__(self, name: str, outdir: Path, mode: str):
        self.path = outdir / "checks" / f"{name}.json"
        letter, title = CHECKS[name]
        self.data = {"check": letter, "name": name, "title": title, "mode": mode, "status": "running",
                     "figures": {}, "target": None, "met": None}
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    def set(self, **kw) -> None:
        self.data.update(kw)
        self.save()

    def figure(self, key: str, value) -> None:
        self.data["figures"][key] = value
        self.save()


# -------------------------------------------------------------------------------------------- the checks


def check_amp_supernet(c: Check, work: Path, sz: dict, mode: str) -> None:
    s = sz["a"]
    cuda = mode == "gpu"
    c.set(target="AMP and fp32 both run all steps with finite final losses (speed and memory reported)")
    train = ensure_toy(work, "toy320", sz["toy_images"], sz["toy_size"])
    space = make_space(work, s["space"], s["scale"])
    c.figure("setup", {"space": f"{s['space']} with scale {s['scale']}", "batch": s["batch"],
                       "steps": s["steps"], "toy_images": sz["toy_images"], "toy_size": sz["toy_size"]})
    runs = [("amp", True), ("fp32", False)] if s["amp"] and cuda else [("fp32", False)]
    if len(runs) == 1:
        c.figure("amp", {"skipped": "no CUDA: --amp needs a CUDA device"})
    for label, amp in runs:
        out = work / f"a-{label}"
        out.mkdir(exist_ok=True)
        args = ["train-supernet", "--data", str(train), "--space", str(space), "--batch-size", str(s["batch"]),
                "--epochs", "1000", "--stop-after", str(s["steps"]), "--warmup-iters", "10",
                "--workers", str(sz["workers"]), "--log-every", "10", "--checkpoint-every", "100000",
                "--device", "cuda" if cuda else "cpu", "--seed", "0", "--restart", "-o", str(out / "supernet.h5")]
        rec = gaia_timed(out / "record.json", *args + (["--amp"] if amp else []))
        c.figure(label, step_figures(rec, s["warmup_steps"]))
        (out / "supernet.ckpt.h5").unlink(missing_ok=True)
    f = c.data["figures"]
    ok = [f[label].get("rc") == 0 and f[label].get("steps") == s["steps"] for label, _ in runs]
    finite_all = all(f[label].get("losses_finite") for label, _ in runs)
    if "amp" in f and "fp32" in f and "steps_per_s" in f["amp"]:
        c.figure("amp_speedup", ratio(f["amp"].get("steps_per_s"), f["fp32"].get("steps_per_s")))
        c.figure("amp_memory_ratio", ratio(f["amp"].get("peak_gpu_mib"), f["fp32"].get("peak_gpu_mib")))
    c.set(status="ran" if all(ok) else "failed", met=bool(all(ok) and finite_all))


def check_frozen_finetune(c: Check, work: Path, sz: dict, mode: str) -> None:
    s = sz["c"]
    cuda = mode == "gpu"
    c.set(target="frozen backbone: step time and peak GPU memory each <= 0.70 of full fine-tuning (30% less)")
    train = ensure_toy(work, "toy320", sz["toy_images"], sz["toy_size"])
    tiny_set = ensure_toy(work, "toy2", 2, sz["toy_size"])
    space = make_space(work, s["space"], s["scale"], s["anchor"])
    anchor = json.loads(space.read_text())["anchors"][s["anchor"]]
    arch = work / f"arch-{s['anchor']}.json"
    write_json(arch, anchor)
    c.figure("setup", {"arch": f"{s['anchor']} anchor of {s['space']} at {s['scale']} px", "batch": s["batch"],
                       "steps": s["steps"], "precision": "fp32"})
    device = "cuda" if cuda else "cpu"
    # the supernet to fine-tune from: a one-path supernet (the anchor's network), one short epoch
    weights = work / "c-supernet.h5"
    if not weights.is_file():
        rc = gaia("train-supernet", "--data", str(tiny_set), "--space", str(space), "--epochs", "1",
                  "--batch-size", "2", "--workers", "0", "--device", device, "--seed", "0", "-q",
                  "-o", str(weights), stdout=subprocess.DEVNULL)
        if rc != 0:
            raise RuntimeError(f"train-supernet for the fine-tuning weights exited {rc}")
    for freeze in ("none", "backbone"):
        out = work / f"c-{freeze}"
        out.mkdir(exist_ok=True)
        rec = gaia_timed(out / "record.json", "finetune", "--weights", str(weights), "--arch", str(arch),
                         "--data", str(train), "--freeze", freeze, "--schedule", "custom", "--epochs", "1000",
                         "--stop-after", str(s["steps"]), "--batch-size", str(s["batch"]),
                         "--recalibrate", str(s["recalibrate"]), "--workers", str(sz["workers"]),
                         "--checkpoint-every", "100000", "--device", device, "--seed", "0", "--restart",
                         "-o", str(out / "model.h5"))
        c.figure(f"freeze_{freeze}", step_figures(rec, s["warmup_steps"]))
        (out / "model.ckpt.h5").unlink(missing_ok=True)
    f = c.data["figures"]
    full, frozen = f["freeze_none"], f["freeze_backbone"]
    memory_key = "peak_gpu_mib" if cuda else "peak_rss_mib"
    time_ratio = ratio(frozen.get("step_s_median"), full.get("step_s_median"))
    memory_ratio = ratio(frozen.get(memory_key), full.get(memory_key))
    c.figure("time_ratio", time_ratio)
    c.figure("memory_ratio", memory_ratio)
    c.figure("memory_measure", "torch.cuda.max_memory_allocated from the first step" if cuda
             else "peak RSS of the whole process (CPU smoke run: not the target's measure)")
    ran = all(r.get("rc") == 0 and r.get("steps") == s["steps"] for r in (full, frozen))
    met = None if not cuda else bool(ran and time_ratio is not None and memory_ratio is not None
                                     and time_ratio <= 0.70 and memory_ratio <= 0.70)
    c.set(status="ran" if ran else "failed", met=met)


def _elastic_batch(scale: int, n: int, device):
    import torch

    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, scale, int(scale * 1.33), generator=g).to(device) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, scale * 0.5, scale * 0.6],
                                       [scale * 0.3, scale * 0.2, scale * 0.9, scale * 0.8]], device=device),
                "labels": torch.tensor([1, 2], device=device)} for _ in range(n)]
    return images, targets


def _elastic_step(model, optimizer, images, targets, device) -> tuple[float, float]:
    """(forward+backward seconds, SGD step seconds), synchronised on CUDA."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    t0 = time.perf_counter()
    sum(model(images, targets).values()).backward()
    sync()
    t1 = time.perf_counter()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync()
    return t1 - t0, time.perf_counter() - t1


def check_elastic_overhead(c: Check, work: Path, sz: dict, mode: str) -> None:
    """benchmarks/bench_supernet.py's elastic overhead, as figures: the same batch, the same RoI sampling
    (seeded), supernet and extracted static model alternating, median of `repeats`; on CUDA with
    cudnn.benchmark as training uses it, in both memory formats (train-supernet trains channels-last)."""
    import torch

    from gaia_cli.nn.detector import Supernet, extract
    from gaia_cli.space.arch import preset

    s = sz["d"]
    cuda = mode == "gpu"
    device = torch.device("cuda" if cuda else "cpu")
    c.set(target=f"supernet / static forward+backward time <= {s['target']} on every path"
                 + ("" if cuda else " (CPU target, as benchmarks/bench_supernet.py; the GPU target is 1.05)"))
    if cuda:
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(1)  # steadier timings on a CPU that other work shares
    space = preset(s["space"])
    anchor = next(iter(space.anchors.values()))
    torch.manual_seed(0)
    supernet = Supernet(space, 11).to(device).train()
    c.figure("setup", {"space": s["space"], "batch": s["batch"], "repeats": s["repeats"], "device": str(device),
                       "paths": "smallest, anchor, largest, each at its own scale"})
    worst = 0.0
    formats = ["contiguous", "channels_last"] if cuda else ["contiguous"]
    for fmt in formats:
        if fmt == "channels_last":
            supernet.to(memory_format=torch.channels_last)
        rows = {}
        for label, arch in (("smallest", space.min_arch), ("anchor", anchor), ("largest", space.max_arch)):
            supernet.set_arch(arch)
            static = extract(supernet, arch).to(device).train()
            if fmt == "channels_last":
                static.to(memory_format=torch.channels_last)
            images, targets = _elastic_batch(arch.scale, s["batch"], device)
            models = (supernet, static)
            opts = [torch.optim.SGD(m.parameters(), lr=1e-5, momentum=0.9) for m in models]
            fb: dict[int, list[float]] = {0: [], 1: []}
            opt_s: dict[int, list[float]] = {0: [], 1: []}
            for _ in range(s["warmup"]):
                for i, m in enumerate(models):
                    _elastic_step(m, opts[i], images, targets, device)
            for _ in range(s["repeats"]):
                for i, m in enumerate(models):
                    torch.manual_seed(1)  # the same RoI sampling for both
                    a, b = _elastic_step(m, opts[i], images, targets, device)
                    fb[i].append(a)
                    opt_s[i].append(b)
            sup, sta = statistics.median(fb[0]), statistics.median(fb[1])
            rows[label] = {"arch": str(arch), "supernet_fwd_bwd_s": sup, "static_fwd_bwd_s": sta,
                           "ratio_fwd_bwd": sup / sta,
                           "ratio_step_with_sgd": (sup + statistics.median(opt_s[0])) / (sta + statistics.median(opt_s[1]))}
            worst = max(worst, sup / sta)
            c.figure(fmt, rows)
            del static, opts
    c.figure("worst_ratio_fwd_bwd", worst)
    c.set(status="ran", met=worst <= s["target"])


def check_latency_profile(c: Check, work: Path, sz: dict, mode: str) -> None:
    s = sz["b"]
    cuda = mode == "gpu"
    device = "cuda" if cuda else "cpu"
    c.set(target=f"MAPE of the built profile on {s['sample']} held-out random archs <= {s['target']:.0%}")
    profile = work.parent / "latency-profile.json"  # kept beside gpu_check.json (the work folder is not)
    checked = work.parent / "latency-check.json"
    common = ["--space", s["space"], "--device", device, "--warmup", str(s["warmup"]), "--runs", str(s["runs"])]
    c.figure("setup", {"space": s["space"], "warmup": s["warmup"], "runs": s["runs"], "fit_archs": s["fit_archs"],
                       "held_out_archs": s["sample"], "precision": "fp32"})
    t0 = time.perf_counter()
    rc = gaia("bench-latency", "--build-profile", *common, "--fit-archs", str(s["fit_archs"]), "--seed", "0",
              "-o", str(profile))
    c.figure("build_s", time.perf_counter() - t0)
    if rc != 0:
        c.set(status="failed", reason=f"bench-latency --build-profile exited {rc}")
        return
    p = read_json(profile) or {}
    cal = p.get("calibration") or {}
    c.figure("profile", {"path": str(profile), "name": p.get("name"), "blocks": cal.get("blocks"),
                         "stems": cal.get("stems"), "fit_mean_error": cal.get("fit_mean_error")})
    t0 = time.perf_counter()
    # --seed 1: other archs than the 20 the correction was fitted on (those are drawn with seed 0)
    rc = gaia("bench-latency", "--check", str(profile), *common, "--sample", str(s["sample"]), "--seed", "1",
              "-o", str(checked))
    c.figure("check_s", time.perf_counter() - t0)
    report = (read_json(checked) or {}).get("check") or {}
    if rc != 0 or "mape" not in report:
        c.set(status="failed", reason=f"bench-latency --check exited {rc}")
        return
    rows = report.get("results") or []
    c.figure("mape", report["mape"])
    c.figure("max_error", report.get("max_error"))
    c.figure("archs", report.get("archs"))
    c.figure("measured_ms_range", [min(r["measured_ms"] for r in rows), max(r["measured_ms"] for r in rows)]
             if rows else None)
    c.figure("check_file", str(checked))
    c.set(status="ran", met=bool(report["mape"] <= s["target"]) if cuda else None)


def check_learning(c: Check, work: Path, sz: dict, mode: str, outdir: Path) -> None:
    script = HERE / "bench_learning.py"
    target_json = outdir / "learning.json"
    c.set(target="as bench_learning.py defines it (its JSON's own 'met', if it has one)")
    if not script.is_file():
        c.set(status="skipped", reason="benchmarks/bench_learning.py does not exist (yet)")
        return
    try:
        help_run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                                  timeout=90, cwd=REPO)
    except subprocess.TimeoutExpired:
        c.set(status="skipped", reason="bench_learning.py --help did not answer within 90 s")
        return
    if help_run.returncode != 0:
        c.set(status="skipped", reason=f"bench_learning.py --help exited {help_run.returncode}: "
                                       f"{(help_run.stderr.strip().splitlines() or [''])[-1][:200]}")
        return
    missing = [flag for flag in ("--device", "--scale", "--json") if flag not in help_run.stdout]
    if missing:
        c.set(status="skipped", reason=f"bench_learning.py does not accept {', '.join(missing)} (per its --help)")
        return
    if mode != "gpu":
        c.set(status="skipped", reason="no CUDA: --device cuda --scale gpu needs a GPU")
        return
    target_json.unlink(missing_ok=True)
    # the rows that fit the check's time: gaia standalone and the supernet's paths (the reference loop and the
    # Montage row double the time; run them with bench_learning.py itself when there is more)
    cmd = [sys.executable, str(script), "--device", "cuda", "--scale", "gpu", "--rows", "standalone,supernet",
           "--workdir", str(work / "learning"), "--json", str(target_json)]
    log("$ " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=sys.stderr, cwd=REPO).returncode
    c.figure("wall_s", time.perf_counter() - t0)
    c.figure("rc", rc)
    result = read_json(target_json)
    c.figure("json", str(target_json))
    if result is not None:
        c.figure("result", result if len(json.dumps(result)) < 20000 else "(large: see the json file)")
    met = result.get("met") if isinstance(result, dict) and isinstance(result.get("met"), bool) else None
    if rc != 0 or result is None:
        c.set(status="failed", reason=f"exited {rc}" + ("" if result is not None else f", no valid {target_json.name}"),
              met=met)
    else:
        c.set(status="ran", met=met)


def cmd_check(args) -> int:
    outdir = Path(args.outdir).resolve()
    work = outdir / "gpu_check_work"
    work.mkdir(parents=True, exist_ok=True)
    c = Check(args.name, outdir, args.mode)
    if args.mode == "cpu" and args.name in CUDA_ONLY and args.name != "learning":  # that one says more itself
        c.set(status="skipped", reason="no CUDA (torch.cuda.is_available() is false): a CUDA-only check")
        return 0
    sz = SIZES[args.mode]
    try:
        if args.name == "learning":
            check_learning(c, work, sz, args.mode, outdir)
        else:
            globals()[f"check_{args.name}"](c, work, sz, args.mode)
    except Exception as exc:  # noqa: BLE001 - the check fails, the script goes on to the next
        import traceback

        traceback.print_exc()
        c.set(status="failed", reason=f"{type(exc).__name__}: {exc}")
        return 1
    return 0 if c.data["status"] in ("ran", "skipped") else 1


# ---------------------------------------------------------------------------------------------- cli runner


def cmd_cli(args) -> int:
    """Run one gaia command in this process with its training steps timed; write the record."""
    import resource

    import torch

    from gaia_cli.cli.app import main
    from gaia_cli.engine import train as engine

    record_path = Path(args.record)
    rec: dict = {"command": ["gaia", *args.gaia], "steps": [], "peak_gpu_mib": None,
                 "gpu_mib_before_first_step": None}
    # the engine's one training step: Trainer._step(images, targets, ...) -> a record with "loss", "loss_*"
    original = getattr(engine.Trainer, "_step", None)
    if original is None:
        raise SystemExit("gpu_check: gaia_cli.engine.train.Trainer._step is gone; update the `cli` runner")

    def save():
        rec["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        write_json(record_path, rec)

    def timed_step(self, *a, **kw):
        images = a[0] if a else kw.get("images", [])
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            if not rec["steps"]:  # peak memory of training: from the first step on (model, optimiser, steps)
                torch.cuda.reset_peak_memory_stats(self.device)
                rec["gpu_mib_before_first_step"] = torch.cuda.memory_allocated(self.device) / 2**20
        start = time.perf_counter()
        try:
            out = original(self, *a, **kw)
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
            save()
            raise
        if cuda:
            torch.cuda.synchronize(self.device)
        end = time.perf_counter()
        if cuda:
            rec["peak_gpu_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        rec["steps"].append({"start": start, "end": end, "images": len(images), "loss": out.get("loss"),
                             "losses": {k: v for k, v in out.items() if k.startswith("loss_")}})
        save()
        return out

    engine.Trainer._step = timed_step
    t0 = time.perf_counter()
    rc = 0
    try:
        main(list(args.gaia))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    rec["rc"] = rc
    rec["wall_s"] = time.perf_counter() - t0
    save()
    return rc


# ------------------------------------------------------------------------------------------- env, summary


def cmd_env(args) -> int:
    env = {"python": platform.python_version(), "executable": sys.executable, "host_cpus": os.cpu_count()}
    try:
        import torch

        env.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda=torch.cuda.is_available())
        if env["cuda"]:
            props = torch.cuda.get_device_properties(0)
            env.update(gpu=props.name, gpu_count=torch.cuda.device_count(),
                       gpu_memory_gib=round(props.total_memory / 2**30, 1))
        import gaia_cli

        env["gaia"] = gaia_cli.__version__
    except Exception as exc:  # noqa: BLE001
        env["error"] = f"{type(exc).__name__}: {exc}"
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                           cwd=REPO, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    write_json(Path(args.outdir) / "checks" / "_env.json", env)
    print("cuda" if env.get("cuda") else ("error" if "error" in env else "cpu"))
    return 0


def _fmt(x, spec=".3g"):
    return format(x, spec) if finite(x) else "-"


def _brief(d: dict) -> str:
    """One line of the figures that matter, for the table."""
    f, name = d.get("figures") or {}, d["name"]
    if d.get("status") in ("skipped", "not_run") or not f:
        return ""
    if name == "amp_supernet":
        parts = []
        for k in ("amp", "fp32"):
            r = f.get(k) or {}
            if "steps_per_s" in r:
                parts.append(f"{k} {_fmt(r['steps_per_s'])} st/s {_fmt(r.get('peak_gpu_mib'), '.0f')} MiB "
                             f"loss {_fmt(r.get('final_loss'))}")
        if finite(f.get("amp_speedup")):
            parts.append(f"speedup x{f['amp_speedup']:.2f}")
        return "; ".join(parts)
    if name == "frozen_finetune":
        if "freeze_none" not in f:
            return ""
        return (f"time x{_fmt(f.get('time_ratio'))}, memory x{_fmt(f.get('memory_ratio'))} "
                f"(step {_fmt((f.get('freeze_backbone') or {}).get('step_s_median'))} s vs "
                f"{_fmt((f.get('freeze_none') or {}).get('step_s_median'))} s)")
    if name == "elastic_overhead":
        return f"worst ratio {_fmt(f.get('worst_ratio_fwd_bwd'), '.3f')}" if "worst_ratio_fwd_bwd" in f else ""
    if name == "latency_profile":
        return (f"MAPE {f['mape']:.1%}, max {f.get('max_error', 0):.1%} on {f.get('archs')} archs"
                if finite(f.get("mape")) else "")
    if name == "learning":
        return f"rc {f.get('rc')}, {f.get('json', '')}" if "rc" in f else ""
    return ""


def cmd_summary(args) -> int:
    outdir = Path(args.outdir).resolve()
    checks_dir = outdir / "checks"
    env = read_json(checks_dir / "_env.json") or {}
    checks = {}
    for name, (letter, title) in CHECKS.items():
        d = read_json(checks_dir / f"{name}.json") or {"check": letter, "name": name, "title": title,
                                                       "status": None, "figures": {}, "target": None, "met": None}
        run = read_json(checks_dir / f"{name}.run.json") or {}
        d["run"] = run  # what gpu_check.sh saw: exit code, seconds, limit, log
        rc, status = run.get("rc"), d.get("status")
        if run.get("skipped"):
            d.update(status="skipped", reason=run["skipped"])
        elif run.get("not_run"):
            d.update(status="not_run", reason=run["not_run"])
        elif run.get("interrupted"):
            d.update(status="interrupted", reason="stopped by Ctrl-C or SIGTERM to gpu_check.sh")
        elif rc in (124, 137):
            d.update(status="timed_out", reason=f"stopped by its time limit ({run.get('limit_s')} s)"
                     + ("; partial figures kept" if d.get("figures") else ""))
        elif status in ("running", None) or (rc not in (0, None) and status == "ran"):
            d.update(status="failed", reason=d.get("reason") or f"exited {rc} (see {run.get('log')})")
        if d["status"] != "ran":
            d["met"] = None  # a target is met or not only by a check that ran to its end
        checks[name] = d
    ok = all(d["status"] in ("ran", "skipped") for d in checks.values())
    summary = {"kind": "gaia/gpu-check", "schema_version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "mode": args.mode, "budget_s": args.budget, "elapsed_s": args.elapsed, "environment": env,
               "ok": ok, "checks": checks,
               "skipped": [f"{d['check']} {n}: {d.get('reason')}" for n, d in checks.items() if d["status"] == "skipped"]}
    write_json(outdir / "gpu_check.json", summary)

    where = env.get("gpu") or ("CPU only, no CUDA" if not env.get("cuda") else "?")
    e = sys.stderr
    print(f"\ngaia GPU check: {where}; torch {env.get('torch')}; mode {args.mode}; "
          f"{_fmt(args.elapsed, '.0f')} s of {args.budget} s", file=e)
    print(f"{'':2s}{'check':18s} {'status':10s} {'met':5s} {'secs':>5s}  figures", file=e)
    for name, d in checks.items():
        met = {True: "yes", False: "NO", None: "-"}[d.get("met")]
        secs = _fmt((d.get("run") or {}).get("seconds"), ".0f")
        print(f"{d['check']:2s}{name:18s} {d['status']:10s} {met:5s} {secs:>5s}  {_brief(d)}", file=e)
    for name, d in checks.items():
        if d["status"] != "ran":
            print(f"{d['status']}: {d['check']} {name}: {d.get('reason')}", file=e)
        if d.get("target"):
            print(f"  target {d['check']}: {d['target']}", file=e)
    print(f"summary: {outdir / 'gpu_check.json'}" + ("" if ok else " (some checks did not run: exit 1)"), file=e)
    print(outdir / "gpu_check.json")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("env")
    p.add_argument("outdir")
    p = sub.add_parser("check")
    p.add_argument("name", choices=list(CHECKS))
    p.add_argument("outdir")
    p.add_argument("--mode", choices=list(SIZES), required=True)
    p = sub.add_parser("cli")
    p.add_argument("--record", required=True)
    p.add_argument("gaia", nargs=argparse.REMAINDER)
    p = sub.add_parser("summary")
    p.add_argument("outdir")
    p.add_argument("--mode", default="?")
    p.add_argument("--budget", type=int, default=None)
    p.add_argument("--elapsed", type=int, default=None)
    args = parser.parse_args()
    if args.command == "cli" and args.gaia[:1] == ["--"]:
        args.gaia = args.gaia[1:]
    return {"env": cmd_env, "check": cmd_check, "cli": cmd_cli, "summary": cmd_summary}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
