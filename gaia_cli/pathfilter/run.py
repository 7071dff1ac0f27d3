"""`fit-pathfilter` and `prune` as library calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from gaia_cli import console, devices
from gaia_cli.artifacts import check_output_path, json_artifact
from gaia_cli.checks import check_options, parse_shard
from gaia_cli.data.coco import load_coco
from gaia_cli.errors import BadInput
from gaia_cli.montage.samples import MontageSamples
from gaia_cli.nn.io import load_detector
from gaia_cli.pathfilter import fit
from gaia_cli.pathfilter.buckets import bucket_edges, gflops, sample_per_bucket
from gaia_cli.pathfilter.filterfile import Scorer, load_filter, save_filter
from gaia_cli.pathfilter.journal import Journal, read_measurements
from gaia_cli.pathfilter.measure import PathMeter
from gaia_cli.pathfilter.model import PathFilter
from gaia_cli.pathfilter.montage import MEASURED_MONTAGES, MontageMeter, load_montage_net
from gaia_cli.pathfilter.prune import STRATEGIES, prune
from gaia_cli.pathfilter.report import report_lines
from gaia_cli.pathfilter.tokens import Tokenizer
from gaia_cli.space.arch import Arch, read_space
from gaia_cli.space.pruning import bucket_of


@dataclasses.dataclass
class FitRequest:
    output: Path
    weights: str | None = None
    data: str | None = None
    recalibrate_data: str | None = None
    recalibrate: int = 200
    paths_per_bucket: int = 50
    buckets: int = 5
    measurements: list[str] = dataclasses.field(default_factory=list)
    space: str | None = None
    classes: int = 81
    init: str | None = None
    epochs: int = 200
    path_ratio: float = 0.25
    journal: Path | None = None
    shard: str | None = None
    batch_size: int = 4
    device: str = "auto"
    seed: int = 0


def journal_path(output: Path, shard: str | None = None) -> Path:
    """OUTPUT.journal.jsonl (OUTPUT.shard-I-of-N.jsonl for one shard of a job array)."""
    stem = output.name.removesuffix(".h5")
    if shard:
        i, n = parse_shard(shard)
        return output.with_name(f"{stem}.shard-{i}-of-{n}.jsonl")
    return output.with_name(f"{stem}.journal.jsonl")


def check(r: FitRequest) -> None:
    check_options({"--recalibrate": r.recalibrate, "--paths-per-bucket": r.paths_per_bucket, "--buckets": r.buckets,
                   "--classes": r.classes, "--epochs": r.epochs, "--path-ratio": r.path_ratio,
                   "--batch-size": r.batch_size, "--seed": r.seed}, "fit-pathfilter")
    if r.measurements and r.weights:
        raise BadInput("give --weights and --data (measure paths) or --measurements (fit from a table), not both")
    if r.measurements and not r.space:
        raise BadInput("--measurements needs --space (the space the measured paths belong to)")
    if not r.measurements and (r.weights is None or r.data is None):
        raise BadInput("give --weights SUPERNET and --data VAL.json to measure paths, or --measurements FILE.jsonl")
    if r.shard and r.measurements:
        raise BadInput("--shard splits the measuring; --measurements fits from a table already measured")
    if r.shard:
        parse_shard(r.shard)


def is_montage_samples(spec: str) -> bool:
    """Whether --data is an HDF5 file (montage samples from extract-montage) rather than a COCO file."""
    from pathlib import Path

    path = Path(spec)
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _sub_space(r: FitRequest, space):
    if r.space:
        sub = read_space(r.space)
        if not space.covers(sub):
            raise BadInput(f"--space {sub.name!r} is not inside the supernet's space {space.name!r}")
        return sub
    return space


def _detection_source(r: FitRequest) -> tuple[Any, Any, list, int, dict[str, Any], str]:
    """A supernet measured on a COCO validation set: (space, meter, refs, classes, journal key, what)."""
    model, meta = load_detector(r.weights)
    if meta["role"] != "supernet":
        raise BadInput("--weights must be a supernet (role supernet): the filter ranks its paths", r.weights)
    space = _sub_space(r, meta["space"])
    classes = len(meta["classes"]) + 1
    val = load_coco(r.data)
    calibration = val if r.recalibrate_data is None else load_coco(r.recalibrate_data)
    device = devices.resolve(r.device)
    model.to(device)
    meter = PathMeter(model, meta["classes"], val, calibration, r.recalibrate, device, r.batch_size, r.seed)
    refs = [meta["ref"], val.ref] + ([calibration.ref] if calibration is not val else [])
    key = {"weights": meta["ref"].sha256, "data": val.ref.sha256, "recalibrate_data": calibration.ref.sha256}
    return space, meter, refs, classes, key, f"{len(val.images)} images"


def _montage_source(r: FitRequest) -> tuple[Any, Any, list, int, dict[str, Any], str]:
    """A Montage-pretrained backbone measured on montages of a samples file (same tuple)."""
    if r.recalibrate_data is not None:
        raise BadInput("--recalibrate-data is for COCO --data; with montage samples BN is recalibrated on montages")
    model, meta = load_montage_net(r.weights)
    samples = MontageSamples(r.data)
    if samples.classes != meta["classes"]:
        raise BadInput("the samples' classes are not those the backbone was pre-trained on", r.data)
    space = _sub_space(r, meta["space"])
    meter = MontageMeter(model, samples, r.recalibrate, devices.resolve(r.device), r.batch_size, r.seed)
    key = {"weights": meta["ref"].sha256, "data": samples.ref.sha256, "source": "montage"}
    return space, meter, [meta["ref"], samples.ref], len(meta["classes"]) + 1, key, f"{MEASURED_MONTAGES} montages"


def measure(r: FitRequest) -> tuple[Any, list[dict[str, Any]], list, int, str]:
    """Measure the planned paths of the supernet (those of this shard), through the journal.
    Returns (space, rows, input refs, classes, journal path)."""
    import torch

    source = _montage_source if is_montage_samples(r.data) else _detection_source
    space, meter, refs, classes, key, what = source(r)
    edges = bucket_edges(space, r.buckets, classes)
    plan = [a for bucket in sample_per_bucket(space, edges, classes, r.paths_per_bucket, np.random.default_rng(r.seed))
            for a in bucket]
    key = {**key, "recalibrate": r.recalibrate, "space": space.to_payload(), "buckets": r.buckets,
           "paths_per_bucket": r.paths_per_bucket, "seed": r.seed, "shard": r.shard}
    path = r.journal or journal_path(r.output, r.shard)
    journal = Journal(path, key)
    done = {Arch.from_dict(rec["arch"]) for rec in journal.open()}
    if r.shard:
        i, n = parse_shard(r.shard)
        plan = [a for k, a in enumerate(plan) if k % n == i]
    todo = [a for a in plan if a not in done]
    if done:
        console.info(f"{path}: {len(done)} path(s) measured before; {len(todo)} to go")
    console.info(f"measuring {len(todo)} paths of {space.name!r} ({r.paths_per_bucket} per FLOPs bucket, "
                 f"{r.buckets} buckets) on {what}, BN recalibrated on {r.recalibrate}")
    flops = dict(zip(todo, gflops(todo, classes, space.detector)))
    with torch.no_grad(), console.progress("measuring paths", total=len(todo)) as bar:
        for arch in todo:
            measured = meter(arch)
            journal.append({"arch": arch.as_dict(), **measured, "gflops": float(flops[arch])})
            bar.advance()
    rows = [{"arch": Arch.from_dict(rec["arch"]), "loss": rec["loss"], "ap": rec.get("ap")} for rec in journal.records]
    return space, rows, refs, classes, str(path)


def fit_pathfilter(r: FitRequest) -> dict[str, Any] | None:
    """Measure (or read) paths, fit the filter, judge it, write gaia/pathfilter. With --shard: measure only,
    and return a summary of the journal (the fit comes after, from every shard's journal)."""
    check(r)
    check_output_path(r.output)
    init = load_filter(r.init) if r.init else None
    if r.measurements:
        space = read_space(r.space)
        if space.pruning is not None:
            space.pruning = None  # the filter ranks paths of the space's choices
        rows, refs = read_measurements(r.measurements, space)
        classes, source = (init.classes if init else r.classes), "measurements"
    else:
        space, rows, refs, classes, journal = measure(r)
        source = "montage" if is_montage_samples(r.data) else "supernet"
        if r.shard:
            return {"journal": journal, "measured": len(rows), "shard": r.shard}
    if init is not None:
        init.check_space(space, r.init)
        if init.buckets != r.buckets:
            raise BadInput(f"the filter to fine-tune has {init.buckets} FLOPs buckets, not --buckets {r.buckets}", r.init)
        refs = [*refs, init.ref]
    if not rows:
        raise BadInput("no measured paths to fit the filter on")
    edges = bucket_edges(space, r.buckets, classes)
    archs = [row["arch"] for row in rows]
    flops = gflops(archs, classes, space.detector)
    buckets = bucket_of(flops, edges)
    losses = np.array([row["loss"] for row in rows], dtype=np.float64)
    train, val = fit.split(buckets, r.seed)
    tokenizer = Tokenizer.for_space(space)
    tokens = tokenizer.encode(archs)
    model = PathFilter.build(tokenizer, r.buckets)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    console.info(f"fitting the path filter on {len(train)} paths, judging it on {len(val)} "
                 f"({', '.join(str(int((buckets == b).sum())) for b in range(r.buckets))} per bucket)")
    result = fit.fit_filter(model, tokens, buckets, losses, train, val, r.epochs, r.seed)
    scorer = Scorer(model, space, edges, classes)
    scores = scorer.score_tokens(tokens, buckets)
    rep = fit.report(scores.astype(np.float64), flops, tokenizer.one_hot(archs), losses, buckets, train, val,
                     r.path_ratio, r.epochs, r.seed)
    for line in report_lines(rep):
        console.info(line)
    held = set(val.tolist())
    table = [{"arch": a.as_dict(), "loss": float(row["loss"]), "ap": row["ap"], "gflops": float(f), "bucket": int(b),
              "split": "val" if k in held else "train"}
             for k, (a, row, f, b) in enumerate(zip(archs, rows, flops, buckets))]
    training = {"epochs": r.epochs, "best_epoch": result.best_epoch, "history": result.history, "seed": r.seed,
                "source": source, "init": init.ref.as_dict() if init else None}
    return save_filter(r.output, scorer, {"measurements": table, "report": rep, "training": training}, refs)


@dataclasses.dataclass
class PruneRequest:
    space: str
    pathfilter: str
    strategy: str = "flops-score-all"
    op_ratio: float = 0.1
    op_ratio_all: float = 0.1
    op_ratio_bucket: float = 0.3
    path_ratio: float = 0.25
    samples: int = 200
    seed: int = 0


def prune_space(r: PruneRequest) -> dict[str, Any]:
    check_options({"--op-ratio": r.op_ratio, "--op-ratio-all": r.op_ratio_all, "--op-ratio-bucket": r.op_ratio_bucket,
                   "--path-ratio": r.path_ratio, "--samples": r.samples, "--seed": r.seed}, "prune")
    if r.strategy not in STRATEGIES:
        raise BadInput(f"unknown --strategy {r.strategy!r} (known: {', '.join(STRATEGIES)})")
    space = read_space(r.space)
    if space.pruning is not None:
        raise BadInput("this space is pruned already: prune the space it came from", r.space)
    scorer = load_filter(r.pathfilter)
    scorer.check_space(space, r.pathfilter)
    pruning = prune(scorer, space, r.strategy, r.op_ratio, r.op_ratio_all, r.op_ratio_bucket, r.path_ratio,
                    r.samples, r.seed)
    pruning.filter_path = str(Path(scorer.ref.path).resolve())
    console.info(f"pruned {space.name}: {pruning.removed_count()} operation(s) removed over {pruning.buckets} "
                 f"FLOPs buckets ({r.strategy}); path thresholds at the {r.path_ratio:g} quantile")
    space.pruning = pruning.to_payload()
    return json_artifact("gaia/space", space.to_payload(), [scorer.ref])
