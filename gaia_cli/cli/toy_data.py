"""`gaia toy-data`: a deterministic COCO-format dataset of rendered shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Quiet, Seed, Verbose
from gaia_cli.engine.runcontrol import defaults

RUN = defaults("toy-data")  # its --seed default


def _list_styles(value: bool) -> None:
    if value:
        from gaia_cli.data.toy import STYLES

        console.write_stdout("".join(f"{name}\n" for name in STYLES))
        raise typer.Exit()


@command(
    "toy-data",
    output_folders=("out",),
    epilog=(
        "Examples:\n\n"
        "  gaia toy-data toy --images 64 --size 128 --seed 0\n\n"
        "  gaia toy-data target --images 16 --classes circle,square,triangle,diamond\n\n"
        "  gaia toy-data comic --images 64 --style comic      # another visual domain; --list-styles names them\n\n"
        "  gaia toy-data toy --images 64 | jq -r .train.annotations | xargs gaia inspect"
    ),
)
def toy_data(
    out: Annotated[Path, typer.Argument(help="Folder to create (must not exist, or be empty).")],
    images: Annotated[int, typer.Option("--images", help="Training images.")] = 64,
    val_images: Annotated[Optional[int], typer.Option("--val-images", help="Validation images (default: a quarter of --images).")] = None,
    size: Annotated[int, typer.Option("--size", help="Longer image side in pixels.")] = 128,
    categories: Annotated[Optional[int], typer.Option("--categories", help="Number of shape categories (1-8), the first N shapes (default 6).")] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="The shapes by name, comma-separated, in category id order (instead of --categories): circle, square, triangle, ring, pole, plank, cross, diamond.")] = None,
    style: Annotated[str, typer.Option("--style", help="The visual domain: background, palette and outline (see --list-styles; the first is the default).")] = "dim",
    list_styles: Annotated[bool, typer.Option("--list-styles", callback=_list_styles, is_eager=True, help="Print the style names, one a line, the default first, and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Write a toy detection dataset: OUT/train.json, OUT/val.json and their images.

    Shapes of several categories with varied sizes, aspect ratios and counts, some crowded; the same seed
    writes the same bytes. Prints a JSON summary with the paths of both annotation files.
    """
    from gaia_cli.data.toy import make_toy_dataset

    summary = make_toy_dataset(out, images, size, seed, val_images, categories, force, classes, style)
    console.info(f"wrote {summary['train']['images']} train and {summary['val']['images']} val images to {out}")
    console.emit_json(summary)
