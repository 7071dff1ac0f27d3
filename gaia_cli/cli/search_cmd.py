"""`gaia search`: the best arch under a latency and/or FLOPs budget, by evolution."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import ComputeDevice, Data, Output, Quiet, Recalibrate, RecalibrateData, Seed, Space, Verbose, Weights
from gaia_cli.engine.runcontrol import defaults

RUN = defaults("search")  # its --compute-device and --seed defaults


@command(
    "search",
    inputs=("device", "space", "weights", "data", "recalibrate_data", "pathfilter"), datasets=("data", "recalibrate_data"),
    outputs=("output",),
    epilog=(
        "Examples:\n\n"
        "  gaia search --latency 25 --device v100 > arch.json\n\n"
        "  gaia search --latency 25 --device v100 --weights supernet.h5 --data val.json --generations 20\n\n"
        "  gaia search --pareto 16,20,25,30,40,53 --device v100 > family.json\n\n"
        "  gaia search --flops 60 --top 5 --space ar50"
    ),
)
def search(
    latency: Annotated[Optional[float], typer.Option("--latency", help="Latency budget in ms on --device.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="The deployment target: a latency profile (v100, or a file from bench-latency --build-profile).")] = None,
    flops: Annotated[Optional[float], typer.Option("--flops", help="FLOPs budget in GMACs at [3, S, S].")] = None,
    space: Space("The space to search", "; a pruned one (from prune) is honoured: only archs it allows are returned") = "ar50to101",
    weights: Weights("Score paths by this supernet's COCO AP on --data (measured, slow).") = None,
    data: Data("The validation set of --weights") = None,
    recalibrate: Recalibrate("Images", "each path's", " (--weights)") = 200,
    recalibrate_data: RecalibrateData() = None,
    pathfilter: Annotated[Optional[str], typer.Option("--pathfilter", help="Score paths by this path filter (from fit-pathfilter; DetOFA 3.3), named 'pathfilter' in the output: its score standardised within the path's FLOPs bucket, so paths of different buckets compare.")] = None,
    compute_device: ComputeDevice("--weights paths are evaluated") = RUN.device,
    classes: Annotated[int, typer.Option("--classes", help="Classes, background included, for FLOPs (a supernet gives its own).")] = 81,
    pareto: Annotated[Optional[str], typer.Option("--pareto", help="One arch per latency budget, e.g. 16,20,25,30,40,53 (a gaia/arch-set).")] = None,
    top: Annotated[int, typer.Option("--top", help="The K best archs (a gaia/arch-set when K > 1).")] = 1,
    population: Annotated[int, typer.Option("--population")] = 100,
    generations: Annotated[int, typer.Option("--generations")] = 500,
    parent_ratio: Annotated[float, typer.Option("--parent-ratio")] = 0.25,
    mutation_ratio: Annotated[float, typer.Option("--mutation-ratio")] = 0.5,
    mutate_prob: Annotated[float, typer.Option("--mutate-prob", help="Per-gene mutation probability of depth and width.")] = 0.1,
    scale_mutate_prob: Annotated[float, typer.Option("--scale-mutate-prob")] = 0.5,
    output: Output = None,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Search a space for the best arch under a budget; print it as a gaia/arch.

    The objective is the supernet's measured AP (--weights, --data), a path filter's score (--pathfilter,
    named "pathfilter") or, without either, a proxy that the output names: "flops-proxy", the largest FLOPs
    under the budget. Evolution with once-for-all's defaults
    (population 100, 500 generations, parents 25%, mutants 50%, gene mutation 0.1, scale mutation 0.5).
    """
    from gaia_cli.search.evolution import Settings
    from gaia_cli.search.run import SearchRequest, run

    settings = Settings(population, generations, parent_ratio, mutation_ratio, mutate_prob, scale_mutate_prob, seed=seed)
    result = run(SearchRequest(space, latency, device, flops, weights, data, recalibrate, recalibrate_data,
                               compute_device, classes, pareto, top, settings, pathfilter))
    console.emit_json(result, output)
