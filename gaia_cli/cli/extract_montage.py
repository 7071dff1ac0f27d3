"""`gaia extract-montage`: positive and negative samples for Montage pre-training (Montage 3.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Datasets, Images, Labels, OutputH5, Quiet, Seed, Verbose
from gaia_cli.engine.runcontrol import defaults
from gaia_cli.errors import BadInput

RUN = defaults("extract-montage")  # its --seed's default


def _pair(text: str) -> tuple[float, float]:
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise BadInput(f"--enlarge {text!r}: expected LOW,HIGH (e.g. 1.0,1.5) or one factor")
    return (parts[0], parts[-1])


@command(
    "extract-montage",
    inputs=("data", "labels", "images"), datasets=("data",), outputs=("output", "preview_out"),
    epilog=(
        "Examples:\n\n"
        "  gaia extract-montage --data train.json -o samples.h5 --preview 16 --preview-out montage.png\n\n"
        "  gaia extract-montage --data coco.json --data o365.json --labels labels.json -o samples.h5 --workers 16\n\n"
        "  gaia extract-montage --data train.json -o samples.h5 | gaia pretrain - --space ar50 -o backbone.h5"
    ),
)
def extract_montage(
    data: Datasets("detection"),
    output: OutputH5,
    labels: Labels("samples are labelled with its unified ids") = None,
    images: Images("a single --data") = None,
    enlarge: Annotated[str, typer.Option("--enlarge", help="LOW,HIGH: each box's sides are scaled by a factor drawn from this range, for context.")] = "1.0,1.5",
    ratio: Annotated[float, typer.Option("--ratio", help="Positives per negative (the paper: 10); 0 for no negatives.")] = 10.0,
    min_size: Annotated[int, typer.Option("--min-size", help="Skip objects whose box is narrower or shorter than this (pixels).")] = 16,
    max_side: Annotated[int, typer.Option("--max-side", help="Shrink crops so their longer side is at most this (pixels).")] = 224,
    # not the run control's --workers (data loading): processes that cut the images, extraction's own
    workers: Annotated[int, typer.Option("--workers", help="Worker processes that cut images (0: in this process).")] = 4,
    preview: Annotated[int, typer.Option("--preview", help="Assemble this many montages from the samples for a look.")] = 0,
    preview_out: Annotated[Optional[Path], typer.Option("--preview-out", help="The picture (.png or .jpg) the preview montages go to.", dir_okay=False)] = None,
    preview_size: Annotated[int, typer.Option("--preview-size", help="Side of each preview montage (pixels).")] = 224,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Cut object and background samples out of detection images into samples.h5 (gaia/montage-samples).

    Positives are the ground-truth boxes (not crowd regions, not smaller than --min-size), each enlarged by a
    random factor from --enlarge and shifted at random while still holding the object, to take in context.
    Negatives are random background boxes of the image's object sizes that overlap no annotated box at all
    (IoU 0), one per --ratio positives. Every crop is grouped by its shape: S (0.5 <= w/h <= 1.5), T (tall,
    < 0.5) and W (wide, > 1.5), and stored as uint8 RGB, at most --max-side pixels long, in a chunked,
    compressed HDF5 file with its label (0 for background), group, source image and box. The same inputs
    and --seed give the same file whatever --workers is. stdout: the manifest line and the counts.
    """
    from gaia_cli.montage.extract import ExtractOptions, ExtractRequest, run

    options = ExtractOptions(enlarge=_pair(enlarge), negative_ratio=ratio, min_size=min_size, max_side=max_side,
                             seed=seed)
    run(ExtractRequest(data=data, output=output, labels=labels, images=images, options=options, workers=workers,
                       preview=preview, preview_out=preview_out, preview_size=preview_size))
