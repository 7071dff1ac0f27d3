"""`bench-latency` as a library call."""

from __future__ import annotations

import dataclasses
from typing import Any

from gaia_cli import console, devices
from gaia_cli.artifacts import json_artifact
from gaia_cli.checks import check_options
from gaia_cli.errors import BadInput
from gaia_cli.latency.build import build_profile, check_profile
from gaia_cli.latency.measure import environment, measure_exported, measure_model
from gaia_cli.latency.profile import load_profile
from gaia_cli.nn.detector import build_static
from gaia_cli.nn.exported import open_exported
from gaia_cli.nn.io import load_detector
from gaia_cli.space.arch import read_space
from gaia_cli.space.archfile import read_archs
from gaia_cli.space.sampling import PathSampler


@dataclasses.dataclass
class BenchRequest:
    archs: list[str]
    space: str = "ar50to101"
    sample: int = 0
    model: str | None = None
    device: str = "auto"
    predict: bool = False
    build_profile: bool = False
    check: str | None = None
    fit_archs: int = 20
    classes: int = 81
    warmup: int = 10
    runs: int = 50
    precision: str = "fp32"
    channels_last: bool = False
    name: str | None = None
    seed: int = 0
    exported: str | None = None  # an exported file (gaia export), measured beside --model


def load_model(spec: str):
    """(model, meta) of `--model`: a static model, not a supernet."""
    model, meta = load_detector(spec)
    if meta["role"] != "model":
        raise BadInput("--model takes a static model; for a supernet path, give its arch", spec)
    return model, meta


def measure_export(r: BenchRequest, device) -> dict[str, Any]:
    """An exported file's latency, beside the PyTorch model it came from (`--model`) when given."""
    exported = open_exported(r.exported, device)
    if exported is None:
        raise BadInput("is not an exported model (gaia export writes ONNX or TorchScript)", r.exported)
    model = None
    if r.model:
        model, meta = load_model(r.model)
        if meta["arch"].as_dict() != exported.meta["arch"]:
            raise BadInput(f"is the path {meta['arch']}, the export holds another ({exported.meta['arch']})", r.model)
    size = tuple(exported.meta["input_size"])
    result = measure_exported(exported, model, size, device, r.warmup, r.runs, r.seed)
    line = f"{exported.format} ({', '.join(exported.providers)}): median {result['exported']['median']:.1f} ms, " \
           f"p90 {result['exported']['p90']:.1f} ms"
    if model is not None:
        line += f"; PyTorch: median {result['pytorch']['median']:.1f} ms, p90 {result['pytorch']['p90']:.1f} ms; " \
                f"ratio x{result['ratio_median']:.2f} (median), x{result['ratio_p90']:.2f} (p90)"
    console.info(line)
    return json_artifact("gaia/latency", {"environment": environment(device), "arch": exported.meta["arch"],
                                          "exported_file": str(exported.path), "export": result})


def run(r: BenchRequest) -> dict[str, Any]:
    if r.exported is not None and (r.archs or r.sample or r.predict or r.build_profile or r.check is not None
                                   or r.precision != "fp32" or r.channels_last):
        raise BadInput("--exported measures one exported file (and --model beside it) in fp32: give no archs, "
                       "--sample, --predict, --build-profile, --check, --precision or --channels-last")
    if sum([r.predict, r.build_profile, r.check is not None]) > 1:
        raise BadInput("--predict, --build-profile and --check are separate modes: give one")

    check_options({"--sample": r.sample, "--fit-archs": r.fit_archs, "--classes": r.classes, "--warmup": r.warmup,
                   "--runs": r.runs, "--seed": r.seed}, "bench-latency")
    if r.predict:
        profile = load_profile(r.device)  # an unknown name lists the known ones before anything else
    archs = [arch for spec in r.archs for arch in read_archs(spec)[0]]  # repeats are measured again
    space = read_space(r.space)  # its detector settings (FPN width, proposals, anchors) are measured too
    if r.sample:
        sampler = PathSampler(space, "uniform", r.seed)
        archs += [sampler.next() for _ in range(r.sample)]

    if r.predict:
        if not archs:
            raise BadInput("--predict needs archs (files, -, or --sample N --space S)")
        return {"profile": profile.name, "method": profile.method, "calibration": profile.calibration,
                "predictions": [{"arch": a.as_dict(), "latency_ms": profile.predict(a)} for a in archs]}

    import torch

    device = devices.resolve(r.device)
    torch.manual_seed(r.seed)
    method = {"batch": 1, "warmup": r.warmup, "runs": r.runs, "precision": r.precision,
              "channels_last": r.channels_last, "timer": "cuda events" if device.type == "cuda" else "perf_counter",
              "input": "[3, S, S] uniform noise", "classes": r.classes}
    if r.build_profile:
        profile = build_profile(space, r.classes, device, r.warmup, r.runs, r.fit_archs, r.seed,
                                r.name or environment(device)["name"])
        console.info(f"profile {profile.name}: {len(profile.blocks)} blocks, {len(profile.stems)} stems; "
                     f"fit error {profile.calibration['fit_mean_error']:.1%} on {r.fit_archs} archs")
        return json_artifact("gaia/latency-profile", profile.to_payload())
    if r.check is not None:
        profile = load_profile(r.check)
        if not archs:
            raise BadInput("--check needs held-out archs (--sample N, files or -)")
        report = check_profile(profile, archs, device, r.warmup, r.runs, space)
        console.info(f"profile {profile.name} on {len(archs)} archs: MAPE {report['mape']:.1%}, max {report['max_error']:.1%}")
        return json_artifact("gaia/latency", {"method": method, "environment": environment(device), "check": report})

    if r.exported is not None:
        return {**measure_export(r, device), "method": {**method, "input": "[3, H, W] uniform noise, H, W the "
                                                        "export's input size", "rounds": 5}}

    results = []
    models = []
    if r.model:
        net, meta = load_model(r.model)
        models.append((meta["arch"], net))
    models += [(a, build_static(a, r.classes, space.detector)) for a in archs]
    if not models:
        raise BadInput("nothing to measure: give archs, --sample N, or --model FILE")
    with console.progress("measuring", total=len(models)) as bar:
        for arch, net in models:
            m = measure_model(net, arch.scale, device, r.warmup, r.runs, r.precision, r.channels_last, r.seed)
            results.append({"arch": arch.as_dict(), **m})
            bar.advance()
    return json_artifact("gaia/latency", {"method": method, "environment": environment(device), "results": results})
