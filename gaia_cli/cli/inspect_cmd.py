"""`gaia inspect`: a JSON summary of any gaia artifact or COCO dataset."""

from __future__ import annotations

from typing import Annotated

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Images, Quiet, Verbose


@command(
    "inspect",
    epilog=(
        "Examples:\n\n"
        "  gaia inspect toy/train.json                 # a COCO dataset: counts, sizes, validation report\n\n"
        "  gaia inspect -v --strict toy/val.json       # a table on stderr; exit 2 on any problem\n\n"
        "  cat toy/train.json | gaia inspect -         # stdin; a manifest line is followed to its file"
    ),
)
def inspect(
    file: Annotated[str, typer.Argument(help="An artifact (JSON or HDF5), a COCO annotations file, a manifest line, or - for stdin.")],
    images: Images("a COCO file") = None,
    check_images: Annotated[bool, typer.Option("--check-images", help="Decode every image of a COCO dataset (slow).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 2 if a COCO dataset has any validation problem.")] = False,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Summarise a file: its kind, header and contents as JSON on stdout (a table on stderr with -v)."""
    from gaia_cli.describe import describe, table

    summary = describe(file, None if images is None else str(images), check_images, strict)
    if console.verbose():
        console.show(table(summary))
    console.emit_json(summary)
