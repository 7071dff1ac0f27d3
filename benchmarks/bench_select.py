"""select-data: the search's speed and memory at a million upstream images, and the paper's direction on toy data.

**speed** (synthetic unit vectors, one category, so every pair is compared): --rows upstream x --targets
target vectors of --dim dimensions, stored as a real `gaia/features` cache (fp16, written once per workdir by
the same writer as select-data), searched by the same code select-data runs (`gaia_cli.selection.search`):
top-k (k per target) and most-similar (the best --budget rows over all pairs), each in a fresh process whose
wall time and peak resident memory (ru_maxrss, torch's import included) are printed; beside them a
per-target loop (each target streams the upstream, matrix-vector products) timed on a few targets and scaled
to all of them (the ratio); and exactness: both searches against the brute-force matrix on a subsample.
Targets: <= 30 s and <= 2 GB peak for each search at 1,000,000 x 1,000 x 1024 on 2 cores (OMP_NUM_THREADS=2).

**ap** (the paper's Table 6 on toy data): upstream toy datasets of several styles (`toy-data --style`), a
supernet trained on all of them (bench_learning's recipe: train-supernet with its defaults), a target of 10
images of one style (at least 2 per category) and its val images; then for none / random / top-k /
most-similar: the share of selected images from the target's style, and the fine-tuned AP on the target's
val set (finetune --extra-data), mean of --seeds seeds; and "none, same steps": the target alone for as many
steps as the rows with selected images take, to tell more data from more steps. Rows are kept in --workdir.

    OMP_NUM_THREADS=2 python benchmarks/bench_select.py --parts speed              # the full size
    python benchmarks/bench_select.py --quick                                      # both parts, small
    python benchmarks/bench_select.py --parts ap --quick --workdir W               # ~15-20 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import gaia  # noqa: E402  (the learning benchmark's CLI runner)

SPEED = {"full": {"rows": 1_000_000, "targets": 1000, "dim": 1024},
         "quick": {"rows": 100_000, "targets": 200, "dim": 256}}
TARGET_SECONDS, TARGET_BYTES = 30.0, 2 * 2**30


# ---------------------------------------------------------------------------------------------------- speed


def unit_rows(seed: int, n: int, dim: int) -> np.ndarray:
    """n random unit vectors (fp16) from a generator seeded by `seed`: a chunk is made again from its seed."""
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16)


def write_upstream(path: Path, rows: int, dim: int) -> None:
    """A gaia/features cache of `rows` synthetic images (one vector each, category 1), written in blocks."""
    from gaia_cli.selection.features import Identity, update_cache

    block = 16384

    def compute(missing):
        for start in range(0, len(missing), block):
            vecs = unit_rows(1000 + start // block, min(block, len(missing) - start), dim)
            yield [(missing[start + i], np.array([1]), vecs[i:i + 1]) for i in range(len(vecs))]

    identity = Identity({"digest": "synthetic", "weights": "synthetic", "dim": dim, "arch": None},
                        {"name": "synthetic", "path": str(path)}, None, [{"id": 1, "name": "thing"}])
    update_cache(path, identity, list(range(1, rows + 1)), compute)


def search_child(cache: str, targets: int, dim: int, mode: str, k: int, budget: int, chunk_rows: int,
                 loop_targets: int, subsample: int) -> dict:
    """One measurement in this (fresh) process: wall time and peak RSS."""
    import torch

    from gaia_cli.selection.features import Cache
    from gaia_cli.selection.search import Chunk, Targets, best_per_category, brute_force, top_k

    t_vecs = torch.from_numpy(unit_rows(7, targets, dim).astype(np.float32))
    t_cats = torch.ones(targets, dtype=torch.int64)
    out: dict = {"mode": mode}
    with Cache(Path(cache)) as c:
        def chunks(limit: int | None = None, rows: int = chunk_rows):
            for start, ids, cats, vecs in c.chunks(rows):
                if limit is not None and start >= limit:
                    return
                end = len(ids) if limit is None else min(len(ids), limit - start)
                yield Chunk(start, torch.from_numpy(cats[:end]), torch.from_numpy(vecs[:end]))

        start, cpu = time.perf_counter(), time.process_time()
        if mode == "top-k":
            found = top_k(Targets(t_vecs, t_cats), chunks(), k)
            out["checksum"] = float(found.scores[:, 0].sum())
        elif mode == "most-similar":
            found = best_per_category(Targets(t_vecs, t_cats), chunks(), budget)
            out["checksum"] = float(found[1].scores[:10].sum())
        elif mode == "loop":  # each target alone streams the upstream: matrix-vector products
            for q in range(loop_targets):
                best_v = torch.full((k,), float("-inf"))
                best_r = torch.full((k,), -1, dtype=torch.int64)
                t = t_vecs[q]
                for ch in chunks():
                    sims = ch.vectors.float() @ t
                    v, i = sims.topk(min(k, len(sims)))
                    both_v, both_r = torch.cat([best_v, v]), torch.cat([best_r, i + ch.start])
                    best_v, pick = both_v.topk(k)
                    best_r = both_r[pick]
            out["targets_timed"] = loop_targets
        elif mode == "exact":  # both searches against the brute-force matrix on the first `subsample` rows
            ids, cats, vecs = next(c.chunks(subsample))[1:]
            full = brute_force(t_vecs, t_cats, torch.from_numpy(vecs), torch.from_numpy(cats))
            bv, br = full.topk(k, dim=0)
            found = top_k(Targets(t_vecs, t_cats), chunks(subsample, 997), k)  # odd chunks: merges across them
            # exact: the same scores as the brute-force lists, and each row returned really has its score
            # (rows of equal score may come in another order)
            out["top_k_exact"] = bool(torch.allclose(found.scores, bv.T, atol=1e-6)) and bool(torch.allclose(
                full.gather(0, found.rows.T), found.scores.T, atol=1e-6))
            out["top_k_rows_same_order"] = float((found.rows == br.T).float().mean())
            row_best = full.max(dim=1).values
            mv, mr = row_best.topk(budget)
            ms = best_per_category(Targets(t_vecs, t_cats), chunks(subsample, 997), budget)[1]
            out["most_similar_exact"] = bool(torch.allclose(ms.scores, mv, atol=1e-6)) and bool(torch.allclose(
                row_best[ms.rows], ms.scores, atol=1e-6)) and len(set(ms.rows.tolist())) == budget
            out["most_similar_rows_same_order"] = float((ms.rows == mr).float().mean())
            out["subsample"] = subsample
        out["seconds"] = round(time.perf_counter() - start, 2)
        out["cpu_seconds"] = round(time.process_time() - cpu, 2)  # all threads: on a busy machine, the work
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def measure(args, cache: Path, cfg: dict, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps({
        "cache": str(cache), "targets": cfg["targets"], "dim": cfg["dim"], "mode": mode, "k": args.k,
        "budget": args.budget, "chunk_rows": args.chunk_rows, "loop_targets": args.loop_targets,
        "subsample": args.subsample})]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the {mode} measurement failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speed(args, work: Path) -> dict:
    cfg = dict(SPEED["quick" if args.quick else "full"])
    cfg.update({k: v for k, v in (("rows", args.rows), ("targets", args.targets), ("dim", args.dim)) if v})
    cache = work / f"upstream-{cfg['rows']}x{cfg['dim']}.h5"
    if not cache.is_file():
        start = time.perf_counter()
        write_upstream(cache, cfg["rows"], cfg["dim"])
        print(f"wrote {cache} ({cache.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.0f} s",
              flush=True)
    print(f"speed: {cfg['rows']:,} upstream x {cfg['targets']:,} target vectors of {cfg['dim']} dims (fp16 "
          f"storage, fp32 accumulation), chunks of {args.chunk_rows} rows, k {args.k}, budget {args.budget}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'all')}", flush=True)
    results = {}
    for mode in ("top-k", "most-similar", "loop", "exact"):
        results[mode] = r = measure(args, cache, cfg, mode)
        if mode == "loop":
            r["seconds_all_targets"] = round(r["seconds"] / r["targets_timed"] * cfg["targets"], 1)
            r["cpu_seconds_all_targets"] = round(r["cpu_seconds"] / r["targets_timed"] * cfg["targets"], 1)
            print(f"  per-target loop: {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU for {r['targets_timed']} "
                  f"targets -> {r['seconds_all_targets']:.0f} s for {cfg['targets']} (scaled)", flush=True)
        elif mode == "exact":
            print(f"  exact against brute force on {r['subsample']:,} rows: top-k {r['top_k_exact']} (rows in the same "
                  f"order {r['top_k_rows_same_order']:.4f}), most-similar {r['most_similar_exact']} (same order "
                  f"{r['most_similar_rows_same_order']:.4f}; the rest are ties)", flush=True)
        else:
            ok = r["seconds"] <= TARGET_SECONDS and r["peak_rss_bytes"] <= TARGET_BYTES
            print(f"  {mode:<13} {r['seconds']:6.1f} s wall, {r['cpu_seconds']:6.1f} s CPU  peak RSS "
                  f"{r['peak_rss_bytes'] / 2**30:.2f} GiB  ({'within' if ok else 'OUTSIDE'} {TARGET_SECONDS:.0f} s / 2 GiB)",
                  flush=True)
    for mode in ("top-k", "most-similar"):
        results[mode]["loop_ratio"] = round(results["loop"]["seconds_all_targets"] / results[mode]["seconds"], 1)
        results[mode]["loop_cpu_ratio"] = round(results["loop"]["cpu_seconds_all_targets"] / results[mode]["cpu_seconds"], 1)
        print(f"  per-target loop / {mode}: {results[mode]['loop_ratio']:.1f}x wall, "
              f"{results[mode]['loop_cpu_ratio']:.1f}x CPU", flush=True)
    return {"config": {**cfg, "chunk_rows": args.chunk_rows, "k": args.k, "budget": args.budget,
                       "threads": os.environ.get("OMP_NUM_THREADS")}, **results}


# ------------------------------------------------------------------------------------------------------- ap

AP = {"full": {"upstream": 160, "val": 40, "size": 128, "epochs": 16, "space": "small", "ft_epochs": 6, "seeds": 3},
      "quick": {"upstream": 64, "val": 24, "size": 112, "epochs": 24, "space": "tiny", "ft_epochs": 8, "seeds": 3}}
CLASSES = "circle,square,triangle,ring"


def pick_target(coco: dict, count: int, per_category: int, seed: int) -> list[int]:
    """`count` image ids, drawn at random until every category is in at least `per_category` of them."""
    rng = np.random.default_rng(seed)
    cats = [c["id"] for c in coco["categories"]]
    has = {im["id"]: {a["category_id"] for a in coco["annotations"] if a["image_id"] == im["id"] and not a["iscrowd"]}
           for im in coco["images"]}
    for _ in range(10000):
        ids = rng.choice(sorted(has), size=count, replace=False).tolist()
        if all(sum(c in has[i] for i in ids) >= per_category for c in cats):
            return ids
    raise SystemExit("no target of this size has every category twice: make the target style's pool larger")


def subset(coco: dict, ids: list[int]) -> dict:
    keep = set(ids)
    return {**coco, "images": [im for im in coco["images"] if im["id"] in keep],
            "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}


def ap(args, work: Path) -> dict:
    from gaia_cli.data.toy import STYLES

    cfg = dict(AP["quick" if args.quick else "full"])
    for key in ("seeds", "epochs", "ft_epochs", "space", "upstream"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    styles = list(STYLES)
    target_style = args.target_style
    print(f"ap: upstream {len(styles)} styles x {cfg['upstream']} images of {cfg['size']} px ({CLASSES}); target: "
          f"10 {target_style} images, {cfg['val']} val; supernet {cfg['space']} {cfg['epochs']} epochs; fine-tuning "
          f"{cfg['ft_epochs']} epochs, mean of {cfg['seeds']} seeds; in {work}", flush=True)
    up = work / "up"
    up.mkdir(exist_ok=True)
    for i, style in enumerate(styles):
        if not (up / style / "train.json").is_file():
            gaia("toy-data", up / style, "--images", cfg["upstream"], "--val-images", 1, "--size", cfg["size"],
                 "--classes", CLASSES, "--style", style, "--seed", 100 + i, "-q")
    pool = work / "target"
    if not (pool / "train.json").is_file():
        gaia("toy-data", pool, "--images", 40, "--val-images", cfg["val"], "--size", cfg["size"], "--classes",
             CLASSES, "--style", target_style, "--seed", 7, "-q")
    coco = json.loads((pool / "train.json").read_text())
    target = pool / "target10.json"
    target.write_text(json.dumps(subset(coco, pick_target(coco, 10, 2, 0))))
    # one training set of every upstream image (file names relative to up/)
    combined = {"images": [], "annotations": [], "categories": None}
    for style in styles:
        data = json.loads((up / style / "train.json").read_text())
        combined["categories"] = data["categories"]
        base = len(combined["images"])
        remap = {im["id"]: base + n + 1 for n, im in enumerate(data["images"])}
        combined["images"] += [{**im, "id": remap[im["id"]], "file_name": f"{style}/{im['file_name']}"}
                               for im in data["images"]]
        combined["annotations"] += [{**a, "id": len(combined["annotations"]) + n + 1, "image_id": remap[a["image_id"]]}
                                    for n, a in enumerate(data["annotations"])]
    (up / "all.json").write_text(json.dumps(combined))
    sn = work / "supernet.h5"
    if not sn.is_file():
        start = time.perf_counter()
        gaia("train-supernet", "--data", up / "all.json", "--space", cfg["space"], "--epochs", cfg["epochs"],
             "--batch-size", 8, "--workers", 0, "--device", args.device, "--restart", "-q", "-o", sn)
        print(f"  supernet trained in {time.perf_counter() - start:.0f} s", flush=True)
    arch = work / "arch.json"
    arch.write_text(gaia("space", "sample", cfg["space"], "-n", 1, "--rule", "max"))
    upstream = [a for s in styles for a in ("--upstream", f"{s}={up / s / 'train.json'}")]
    budget = args.budget_ap
    rows = []
    key = {**cfg, "styles": styles, "target_style": target_style, "budget": budget, "device": args.device}
    (work / "rows").mkdir(exist_ok=True)
    # "none, same steps": the target alone for as many steps as the rows with selected images take (an epoch
    # of them covers 10 + budget images), so that more data is told apart from more steps
    same_steps = cfg["ft_epochs"] * (10 + budget) // 10
    for strategy in ("none", "none, same steps", "random", "top-k", "most-similar"):
        saved = work / "rows" / f"{strategy.replace(', ', '-').replace(' ', '-')}.json"
        if saved.is_file() and json.loads(saved.read_text())["config"] == key:  # a row this configuration ran
            row = json.loads(saved.read_text())["row"]
        else:
            row = ap_row(args, work, cfg, strategy, sn, arch, target, pool, upstream, budget, target_style, same_steps)
            saved.write_text(json.dumps({"config": key, "row": row}, indent=1))
        rows.append(row)
        share = "" if row["target_style_share"] is None else f"  {target_style} share {row['target_style_share']:.2f}"
        print(f"  {strategy:<17} AP {row['AP']:5.1f}  (seeds {', '.join(f'{s:.1f}' for s in row['AP_per_seed'])})"
              f"  {row['images']:.0f} images, {row['epochs']} epochs{share}", flush=True)
    by = {r["strategy"]: r["AP"] for r in rows}
    order = by["most-similar"] >= by["top-k"] > by["none"] > by["random"]
    same = by["most-similar"] >= by["top-k"] > by["none, same steps"] > by["random"]
    selection = by["most-similar"] >= by["top-k"] > by["random"]
    print(f"  expected most-similar >= top-k > none > random: {'holds' if order else 'does NOT hold'}; with none at "
          f"the same steps: {'holds' if same else 'does NOT hold'}; most-similar >= top-k > random: "
          f"{'holds' if selection else 'does NOT hold'}; random's share is {1 / len(styles):.2f} by chance", flush=True)
    return {"config": key, "rows": rows, "order_holds": order, "order_holds_same_steps": same,
            "selection_order_holds": selection}


def ap_row(args, work: Path, cfg: dict, strategy: str, sn: Path, arch: Path, target: Path, pool: Path,
           upstream: list[str], budget: int, target_style: str, same_steps: int) -> dict:
    """One strategy's row: select (but for none), fine-tune and evaluate, for each seed."""
    scores, shares, counts = [], [], []
    epochs = same_steps if strategy == "none, same steps" else cfg["ft_epochs"]
    for seed in range(cfg["seeds"]):
        extra = []
        if not strategy.startswith("none"):
            sel = work / f"sel-{strategy}-{seed}.json"
            sel.write_text(gaia("select-data", "--weights", sn, "--arch", arch, "--target", target, *upstream,
                                "--strategy", strategy, "--k", 3, "--budget", budget, "--recalibrate", 64,
                                "--workers", 0, "--device", args.device, "--seed", seed, "-q"))
            chosen = json.loads(sel.read_text())["images"]
            shares.append(sum(im["dataset"] == target_style for im in chosen) / len(chosen))
            counts.append(len(chosen))
            extra = ["--extra-data", sel]
        out = json.loads(gaia("finetune", "--weights", sn, "--arch", arch, "--data", target, "--val",
                              pool / "val.json", *extra, "--schedule", "custom", "--epochs", epochs,
                              "--lr-per-image", 0.0025, "--warmup-iters", 10, "--batch-size", 4,
                              "--recalibrate", 64, "--workers", 0, "--device", args.device, "--seed", seed,
                              "-q", "-o", work / f"ft-{strategy.replace(', ', '-').replace(' ', '-')}-{seed}.h5"))
        scores.append(out["metrics"]["AP"])
    return {"strategy": strategy, "AP": round(float(np.mean(scores)), 1), "AP_per_seed": [round(s, 1) for s in scores],
            "target_style_share": round(float(np.mean(shares)), 3) if shares else None,
            "images": round(float(np.mean(counts)), 1) if counts else 0, "epochs": epochs}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(search_child(**json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="speed,ap", help="speed, ap, or both (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="small sizes: 100k x 200 x 256, and a small toy AP run")
    parser.add_argument("--rows", type=int, help="upstream vectors (speed)")
    parser.add_argument("--targets", type=int, help="target vectors (speed)")
    parser.add_argument("--dim", type=int, help="dimensions (speed)")
    parser.add_argument("--k", type=int, default=10, help="top-k's k (speed)")
    parser.add_argument("--budget", type=int, default=10000, help="most-similar's budget (speed)")
    parser.add_argument("--chunk-rows", type=int, default=8192)
    parser.add_argument("--loop-targets", type=int, default=3, help="targets the per-target loop is timed on")
    parser.add_argument("--subsample", type=int, default=20000, help="rows checked against brute force")
    parser.add_argument("--seeds", type=int, help="fine-tuning seeds per strategy (ap; default 3)")
    parser.add_argument("--epochs", type=int, help="supernet epochs (ap; default: the size's)")
    parser.add_argument("--ft-epochs", type=int, help="fine-tuning epochs (ap; default: the size's)")
    parser.add_argument("--space", help="search space of the supernet (ap; default: the size's)")
    parser.add_argument("--upstream", type=int, help="images per upstream style (ap; default: the size's)")
    parser.add_argument("--budget-ap", type=int, default=30, help="images each strategy selects (ap)")
    parser.add_argument("--target-style", default="comic", help="the target's style (ap)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp folder)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_select."))
    work.mkdir(parents=True, exist_ok=True)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    results = {}
    if "speed" in parts:
        results["speed"] = speed(args, work)
    if "ap" in parts:
        results["ap"] = ap(args, work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
