"""`gaia bench-latency`: measure latency, build a device profile, check one, or predict with one."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Output, Quiet, Seed, Space, Verbose
from gaia_cli.engine.runcontrol import defaults

RUN = defaults("bench-latency")  # its --device (where to measure; with --predict, a profile) and --seed defaults


@command(
    "bench-latency",
    inputs=("archs", "space", "model", "device", "check", "exported"), outputs=("output",),
    epilog=(
        "Examples:\n\n"
        "  gaia space sample ar50 -n 5 | gaia bench-latency - --device cuda --precision fp16\n\n"
        "  gaia bench-latency --build-profile --space ar50to101 --device cuda -o my-gpu.json\n\n"
        "  gaia bench-latency --check my-gpu.json --space ar50to101 --sample 20 --device cuda\n\n"
        "  gaia bench-latency --predict --device v100 arch.json\n\n"
        "  gaia bench-latency --exported model.onnx --model model.h5 --device cpu   # ONNX Runtime beside PyTorch"
    ),
)
def bench_latency(
    archs: Annotated[Optional[list[str]], typer.Argument(help="Arch files (a gaia/arch, a gaia/arch-set from search --top, a gaia/ranking's candidates, or JSON lines of archs), or - for stdin.", show_default=False)] = None,
    space: Space("The space of --sample and --build-profile") = "ar50to101",
    sample: Annotated[int, typer.Option("--sample", help="Measure this many archs sampled from --space.")] = 0,
    model: Annotated[Optional[str], typer.Option("--model", help="Measure a static model file (gaia/weights, role model).")] = None,
    exported: Annotated[Optional[str], typer.Option("--exported", help="Measure an exported model (gaia export: ONNX Runtime, CUDA where present, or TorchScript), beside --model in turns when given: median, p90, ratio.")] = None,
    device: Annotated[str, typer.Option("--device", help="Where to measure (auto, cpu, cuda, cuda:N); with --predict, the profile (v100 or a file).")] = RUN.device,
    predict: Annotated[bool, typer.Option("--predict", help="Print the --device profile's predictions; measure nothing.")] = False,
    build_profile: Annotated[bool, typer.Option("--build-profile", help="Measure every block of --space and write a latency profile.")] = False,
    check: Annotated[Optional[str], typer.Option("--check", help="Compare this profile's predictions with measurements here (MAPE, max).")] = None,
    fit_archs: Annotated[int, typer.Option("--fit-archs", help="Whole-model measurements to fit a built profile's correction on.")] = 20,
    classes: Annotated[int, typer.Option("--classes", help="Classes of the box predictor, background included.")] = 81,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 10,
    runs: Annotated[int, typer.Option("--runs", help="Timed runs (the median is reported).")] = 50,
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 (CUDA) or bf16 autocast.")] = "fp32",
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Run in channels-last memory format.")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="Name of a built profile (default: the device's name).")] = None,
    output: Output = None,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Measure batch-1 latency (whole detector and backbone alone: median, p10, p90, spread), or build,
    check and use latency profiles. The output records the method and the environment."""
    from gaia_cli.latency.run import BenchRequest, run

    result = run(BenchRequest(archs or [], space, sample, model, device, predict, build_profile, check, fit_archs,
                              classes, warmup, runs, precision, channels_last, name, seed, exported))
    console.emit_json(result, output)
