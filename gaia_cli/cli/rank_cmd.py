"""`gaia rank`: GAIA's task-specific architecture selection (direct evaluation, then fast fine-tuning)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli.cli.commands import command
from gaia_cli.cli.options import (
    BatchSize, ComputeDevice, Data, Images, Labels, Output, Quiet, Recalibrate, RestartJournal, ResumeJournal, Seed, Space,
    Verbose, Weights, Workers)
from gaia_cli.ranking.settings import DEPTH_RANGES, Settings

DEFAULT = Settings()  # what candidates are measured and fine-tuned with: the options' defaults
RUN = DEFAULT.run  # rank's run control: no data-loading workers by default (gaia_cli.engine.runcontrol)


def _journal(args: dict) -> list[tuple[str, Path]]:
    """What rank writes besides -o: its journal OUTPUT.journal.jsonl."""
    from gaia_cli.ranking.journal import journal_for

    journal = journal_for(args.get("output"))
    return [] if journal is None else [("the journal", journal)]


@command(
    "rank",
    inputs=("weights", "data", "val", "images", "labels", "candidates", "files"), datasets=("data", "val"),
    outputs=("output",), implied=_journal,
    epilog=(
        "Examples:\n\n"
        "  gaia rank --weights supernet.h5 --data target/train.json --val target/val.json --flops 60 -o ranking.json\n\n"
        "  gaia search --flops 60 --top 20 | gaia rank --weights supernet.h5 --data train.json --val val.json --candidates - | gaia finetune --weights supernet.h5 --arch - --data train.json -o model.h5\n\n"
        "  gaia rank ... --shard $SLURM_ARRAY_TASK_ID/8 -o part$SLURM_ARRAY_TASK_ID.json   # then: gaia rank ... --merge part*.json -o ranking.json\n\n"
        "  gaia rank ... --candidates archs.jsonl --reference 1x -o study.json   # Kendall tau of direct and fast against 1x\n\n"
        "  gaia rank --compare study.json:direct study.json:reference --metric AP50"
    ),
)
def rank(
    weights: Weights("The supernet (gaia/weights, role supernet) whose paths are ranked.") = None,
    data: Data("The target training set", ": BN recalibration and fine-tuning") = None,
    val: Annotated[Optional[str], typer.Option("--val", help="The target validation set (COCO format) the candidates are measured on.")] = None,
    images: Images() = None,
    labels: Labels("new categories borrow the rows of their nearest class by word vectors (as finetune does)",
                   "The supernet's") = None,
    candidates: Annotated[Optional[str], typer.Option("--candidates", help="The archs to rank: a gaia/arch-set (search --top/--pareto), gaia/arch JSON lines (space sample) or a gaia/ranking; - reads stdin.")] = None,
    latency: Annotated[Optional[float], typer.Option("--latency", help="Latency budget in ms on --device: sample --per-group archs in every (scale, depth range) group within it.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="The deployment target of --latency: a latency profile (v100, or a file from bench-latency --build-profile).")] = None,
    flops: Annotated[Optional[float], typer.Option("--flops", help="FLOPs budget in GMACs at [3, S, S] (with --candidates: keep those within it).")] = None,
    space: Space("Sample from this part of the supernet's space", " (default: the supernet's)") = None,
    per_group: Annotated[int, typer.Option("--per-group", help="Archs sampled in each (input scale, total depth range) group (GAIA's K).")] = 5,
    depth_ranges: Annotated[int, typer.Option("--depth-ranges", help="Ranges of equal width that total depth is binned into over the space's span, for the groups (the authors' rules: 5, 7 blocks each on ar50to101); as many as the space has totals: one group per total depth.")] = DEPTH_RANGES,
    keep: Annotated[float, typer.Option("--keep", help="Share of the group bests that stage 2 fine-tunes (rounded up, at least one).")] = 0.5,
    schedule: Annotated[str, typer.Option("--schedule", help="Stage 2's fine-tuning: fast (2 epochs: a warm-up epoch, then one at the rate /10), 1x (13 epochs) or custom.")] = DEFAULT.schedule,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of --schedule custom.")] = DEFAULT.epochs,
    lr_per_image: Annotated[float, typer.Option("--lr-per-image", help="Fine-tuning learning rate per image of a step (GAIA: 0.0001875).")] = DEFAULT.lr_per_image,
    recipe: Annotated[str, typer.Option("--recipe", help="Stage 2's fine-tuning recipe, as finetune --recipe: default (head losses x1, uniform RoI sampling) or gaia (head losses x5, IoU-balanced: as GAIA's supernet trained and its later finetune --recipe gaia); --lr-per-image stays rank's.")] = DEFAULT.recipe,
    batch_size: BatchSize = DEFAULT.batch_size,
    warmup_iters: Annotated[int, typer.Option("--warmup-iters", help="Linear warm-up steps of fine-tuning (at most a tenth of the run).")] = DEFAULT.warmup_iters,
    recalibrate: Recalibrate("Target training images", "each path's") = DEFAULT.recalibrate,
    metric: Annotated[str, typer.Option("--metric", help="What ranks the candidates (and --compare compares): AP, AP50, AP75 or loss (the validation loss, lower is better).")] = "AP",
    reference: Annotated[Optional[str], typer.Option("--reference", help="1x: also fine-tune every candidate with the full schedule and report Kendall tau-b and Spearman of direct and of --schedule against it.")] = None,
    files: Annotated[Optional[list[str]], typer.Argument(help="With --merge: the parts (journals, or the partial rankings they lie beside). With --compare: two rankings, each FILE or FILE:STAGE (direct, finetuned, reference).", show_default=False)] = None,
    merge: Annotated[bool, typer.Option("--merge", help="Join the journals of shards (FILES, run with this command line) and go on with the next stage.")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Print Kendall tau-b and Spearman (with p-values) between two rankings (FILES) over their common candidates.")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", help="I/N (I from 0): evaluate every N-th candidate of each stage, from the I-th; needs -o.")] = None,
    devices: Annotated[Optional[str], typer.Option("--devices", help="Run one candidate per device in parallel, e.g. cuda:0,cuda:1 (one worker process each).")] = None,
    compute_device: ComputeDevice("candidates are evaluated and fine-tuned") = RUN.device,
    workers: Workers = RUN.workers,
    output: Output = None,
    resume: ResumeJournal = RUN.resume,
    restart: RestartJournal = RUN.restart,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Rank a supernet's paths for a target task; print the gaia/ranking, whose best arch finetune takes.

    Stage 1 evaluates every candidate directly (AP and validation loss, BN recalibrated on target images);
    stage 2 keeps the best of each (scale, total depth range) group, then the top --keep of those, fine-tunes each
    with --schedule (finetune's engine) and picks the best. Finished candidates go to OUTPUT.journal.jsonl.
    """
    from gaia_cli.errors import BadInput
    from gaia_cli.ranking.run import RankRequest, rank as run

    if merge and compare:
        raise BadInput("--merge and --compare are separate modes: give one")
    if files and not (merge or compare):
        raise BadInput(f"unexpected argument {files[0]!r}: files go with --merge or --compare")
    if (merge or compare) and not files:
        raise BadInput(f"--{'merge' if merge else 'compare'} needs the files to {'merge' if merge else 'compare'}")
    settings = replace(DEFAULT, weights=weights, data=data, val=val, images=images, labels=labels,
                       recalibrate=recalibrate, batch_size=batch_size, schedule=schedule, epochs=epochs,
                       lr_per_image=lr_per_image, recipe=recipe, warmup_iters=warmup_iters,
                       run=replace(RUN, device=compute_device, workers=workers, resume=resume, restart=restart, seed=seed))
    run(RankRequest(
        settings=settings, candidates=candidates, latency=latency, device=device, flops=flops, space=space,
        per_group=per_group, depth_ranges=depth_ranges, keep=keep, metric=metric, reference=reference, output=output, shard=shard,
        merge=list(files or []) if merge else [], compare=list(files or []) if compare else [], devices=devices))
