"""`gaia fit-pathfilter` and `gaia prune`: DetOFA's path filter and search-space pruning (DetOFA 3.1-3.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import (
    BatchSize, Data, Device, Output, OutputH5, Quiet, Recalibrate, RecalibrateData, Seed, Space, Verbose, Weights)
from gaia_cli.engine.runcontrol import defaults

FIT_RUN, PRUNE_RUN = defaults("fit-pathfilter"), defaults("prune")  # their --device and --seed defaults


def journal(args: dict[str, Any]) -> list[tuple[str, Path]]:
    """`implied` of fit-pathfilter: the measurement journal it appends to (none when fitting from a table)."""
    from gaia_cli.pathfilter.run import journal_path

    if args.get("measurements") or args.get("output") is None:
        return []
    if args.get("journal") is not None:
        return [("the journal", Path(args["journal"]))]
    try:
        return [("the journal", journal_path(Path(args["output"]), args.get("shard")))]
    except Exception:  # a bad --shard: the command says so itself
        return []


@command(
    "fit-pathfilter",
    inputs=("weights", "data", "recalibrate_data", "measurements", "init", "space"),
    datasets=("data", "recalibrate_data"), outputs=("output",), implied=journal,
    epilog=(
        "Examples:\n\n"
        "  gaia fit-pathfilter --weights supernet.h5 --data val.json --recalibrate-data train.json \\\n"
        "      --paths-per-bucket 50 -o filter.h5          # measure 250 paths, fit, report\n\n"
        "  gaia fit-pathfilter --weights supernet.h5 --data val.json --paths-per-bucket 50 --shard 3/8 -o filter.h5\n\n"
        "  gaia fit-pathfilter --measurements filter.shard-*.jsonl --space ar50to101 -o filter.h5\n\n"
        "  gaia fit-pathfilter --weights backbone.h5 --data samples.h5 -o pretrained.h5   # montage paths\n\n"
        "  gaia fit-pathfilter --weights det.h5 --data val.json --init pretrained.h5 -o filter.h5   # fine-tune"
    ),
)
def fit_pathfilter(
    output: OutputH5,
    weights: Weights("The supernet whose paths are measured (or a backbone from pretrain, with montage --data).") = None,
    data: Data("The validation set each path's loss and AP are measured on", ", or montage samples (from extract-montage) for a --weights backbone from pretrain: pretrain's dense loss, no AP") = None,
    recalibrate_data: RecalibrateData() = None,
    recalibrate: Recalibrate("Images", "each path's") = 200,
    paths_per_bucket: Annotated[int, typer.Option("--paths-per-bucket", help="Paths measured in each FLOPs bucket (m in DetOFA's Algorithm 1).")] = 50,
    buckets: Annotated[int, typer.Option("--buckets", help="FLOPs buckets: equal-width intervals between the space's smallest and largest FLOPs.")] = 5,
    measurements: Annotated[Optional[list[str]], typer.Option("--measurements", help="Fit from measured paths instead (JSON lines {arch, loss, ap}; journals too); repeat for several files.")] = None,
    space: Space("The space of --measurements, or a sub-space of the supernet's to measure") = None,
    classes: Annotated[int, typer.Option("--classes", help="Classes, background included, for FLOPs with --measurements (a supernet gives its own).")] = 81,
    init: Annotated[Optional[str], typer.Option("--init", help="Fine-tune this filter (fitted before, e.g. on another task) instead of starting afresh.")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of fitting; the one of best held-out loss is kept.")] = 200,
    path_ratio: Annotated[float, typer.Option("--path-ratio", help="The weakest fraction per bucket the report judges detection of (DetOFA: 0.25).")] = 0.25,
    journal_file: Annotated[Optional[Path], typer.Option("--journal", help="The measurement journal (default: OUTPUT.journal.jsonl; a run that finds it continues).", dir_okay=False)] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="I/N (I from 0, as rank --shard): measure only every N-th path, from the I-th, into OUTPUT.shard-I-of-N.jsonl; fit later with --measurements.")] = None,
    batch_size: BatchSize = 4,
    device: Device = FIT_RUN.device,
    seed: Seed = FIT_RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Measure paths of a supernet per FLOPs bucket and fit DetOFA's path filter; write filter.h5 (gaia/pathfilter).

    Each path is extracted, its BN recalibrated, and its validation loss (the target) and AP measured, into a
    journal (JSON lines) that a stopped run continues. The filter (a transformer over path tokens and the
    FLOPs bucket) is fitted with the FLOPs-bounded pairwise squared hinge loss on 80% of each bucket; the
    report on the other 20% (Kendall tau-b within buckets, detection of the weakest --path-ratio) sits
    beside baselines fitted on the same split (FLOPs alone, once-for-all's MLP predictor, random).
    """
    from gaia_cli.pathfilter.run import FitRequest, fit_pathfilter as run

    result = run(FitRequest(output=output, weights=weights, data=data, recalibrate_data=recalibrate_data,
                            recalibrate=recalibrate, paths_per_bucket=paths_per_bucket, buckets=buckets,
                            measurements=measurements or [], space=space, classes=classes, init=init,
                            epochs=epochs, path_ratio=path_ratio, journal=journal_file, shard=shard,
                            batch_size=batch_size, device=device, seed=seed))
    console.emit_line(result)


@command(
    "prune",
    inputs=("space", "pathfilter"), outputs=("output",),
    epilog=(
        "Examples:\n\n"
        "  gaia prune --space ar50to101 --pathfilter filter.h5 --strategy flops-score-all > pruned.json\n\n"
        "  gaia prune --space small --pathfilter filter.h5 --strategy flops --op-ratio 0.2 --path-ratio 0.25 -o pruned.json\n\n"
        "  gaia train-supernet --data train.json --space pruned.json -o supernet.h5   # Algorithm 1, lines 8-17"
    ),
)
def prune(
    space: Space("The space to prune"),
    pathfilter: Annotated[str, typer.Option("--pathfilter", help="A path filter of that space (from fit-pathfilter).")],
    strategy: Annotated[str, typer.Option("--strategy", help="Operation pruning: flops (random per bucket), flops-score-bucket (worst per bucket), flops-score-all (worst overall, then per bucket).")] = "flops-score-all",
    op_ratio: Annotated[float, typer.Option("--op-ratio", help="Fraction of each bucket's operations pruned (flops, flops-score-bucket).")] = 0.1,
    op_ratio_all: Annotated[float, typer.Option("--op-ratio-all", help="Fraction of all operations pruned from every bucket first (flops-score-all).")] = 0.1,
    op_ratio_bucket: Annotated[float, typer.Option("--op-ratio-bucket", help="Then the fraction of each bucket's remaining operations (flops-score-all).")] = 0.3,
    path_ratio: Annotated[float, typer.Option("--path-ratio", help="Each bucket's score threshold at this quantile: paths below it are redrawn (0: none).")] = 0.25,
    samples: Annotated[int, typer.Option("--samples", help="Paths sampled to score each operation, and per bucket for the thresholds.")] = 200,
    output: Output = None,
    seed: Seed = PRUNE_RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Prune a search space with a path filter: operations per FLOPs bucket, and path score thresholds.

    Writes a gaia/space that records, for each FLOPs bucket, the depth and width choices it no longer
    allows and its score threshold, and the filter (path and sha256). train-supernet draws paths uniformly
    from it and redraws those it does not allow; space show and space sample honour it.
    """
    from gaia_cli.pathfilter.run import PruneRequest, prune_space

    result = prune_space(PruneRequest(space, pathfilter, strategy, op_ratio, op_ratio_all, op_ratio_bucket,
                                      path_ratio, samples, seed))
    console.emit_json(result, output)
