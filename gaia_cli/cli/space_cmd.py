"""`gaia space`: search spaces (show, sample) and the FLOPs and parameters of an arch."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import files
from gaia_cli.cli.options import Output, Quiet, Seed, Space, SpaceArgument, Verbose
from gaia_cli.engine.runcontrol import defaults

RUN = defaults("space sample")  # its --seed default

space_app = typer.Typer(help="Search spaces and architectures: show a preset, count FLOPs, sample archs.",
                        no_args_is_help=True)


@space_app.command(
    "show",
    epilog=(
        "Examples:\n\n"
        "  gaia space show ar50 > space.json            # GAIA Table 1 around the AR50 anchor; edit freely\n\n"
        "  gaia space show ar50to101 | gaia inspect -"
    ),
)
@files(inputs=("space",), outputs=("output",))
def show(
    space: SpaceArgument,
    output: Output = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Write a search space as a gaia/space artifact: depth, width and scale choices, anchors, detector."""
    from gaia_cli.artifacts import json_artifact
    from gaia_cli.space.arch import read_space

    s = read_space(space)
    console.info(f"space {s.name}: {s.size():,} archs")
    if s.pruning is not None:
        from gaia_cli.space.pruning import describe

        console.info(describe(s))
    console.emit_json(json_artifact("gaia/space", s.to_payload()), output)


@space_app.command(
    "flops",
    epilog=(
        "Examples:\n\n"
        "  gaia space flops arch.json\n\n"
        "  gaia space sample ar50 -n 1 --rule max | gaia space flops -"
    ),
)
def flops(
    arch: Annotated[str, typer.Argument(help="An arch file (gaia/arch or {depth, width, scale}), or - for stdin.")],
    space: Space("Check the arch against this space and use its detector settings") = None,
    classes: Annotated[int, typer.Option("--classes", help="Classes of the box predictor, background included (COCO: 81).")] = 81,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Print an arch's FLOPs (GMACs at input [3, S, S]) and parameters, of the backbone and the detector.

    The detector's cost depends on its heads (FPN channels, box head, proposals), which a space sets: with
    --space, that space's; else the space the arch's record names when it is a preset (`space sample`,
    `search` and `rank` write it), so the figure matches search's; else (a hand-written arch) R50's detector,
    as the ar50 space has it.
    """
    from gaia_cli.space.archfile import arch_flops

    console.emit_json(arch_flops(arch, space, classes))


@space_app.command(
    "sample",
    epilog=(
        "Examples:\n\n"
        "  gaia space sample ar50 -n 5 --rule uniform --seed 1 > archs.jsonl\n\n"
        "  gaia space sample ar50to101 -n 1 --rule anchor > arch.json\n\n"
        "  gaia space sample tiny --all | wc -l           # every arch of the space"
    ),
)
def sample_archs(
    space: SpaceArgument,
    n: Annotated[int, typer.Option("-n", help="How many archs.")] = 1,
    rule: Annotated[str, typer.Option("--rule", help="uniform, max, min, anchor, max-depth, min-depth, max-width, min-width, max-scale, min-scale; a comma list cycles them; 'gaia' draws one of the prescribed rules at random each time, 'gaia-cycle' takes them in turn, each followed by uniform.")] = "uniform",
    every: Annotated[bool, typer.Option("--all", help="Enumerate every arch of the space instead.")] = False,
    pathfilter: Annotated[Optional[str], typer.Option("--pathfilter", help="Add each arch's FLOPs bucket and score by this path filter (from fit-pathfilter).")] = None,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Print archs of a space as JSON lines (one gaia/arch artifact a line).

    A pruned space (from prune) yields only the paths it allows: a drawn path that it does not is redrawn
    uniformly, as train-supernet draws them (--all still lists every arch of its choices).
    """
    from gaia_cli.artifacts import json_artifact
    from gaia_cli.space.arch import read_space
    from gaia_cli.space.sampling import PathSampler

    s = read_space(space)
    sampler = PathSampler(s, rule, seed)
    if s.pruning is not None:
        from gaia_cli.pathfilter.accept import accepting

        sampler = accepting(sampler, log_every=0)
    archs = s.enumerate() if every else (sampler.next() for _ in range(n))
    if pathfilter is not None:
        from gaia_cli.pathfilter.filterfile import scored_lines

        for line in scored_lines(archs, s, pathfilter):
            console.emit_line(json_artifact("gaia/arch", line))
        return
    for a in archs:
        console.emit_line(json_artifact("gaia/arch", {**a.as_dict(), "space": s.name}))
