"""Building a `lut` latency profile on a local device, and checking a profile against measurements."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from gaia_cli import console
from gaia_cli.latency.measure import environment, measure_model, prepare, time_call
from gaia_cli.latency.profile import LatencyProfile, block_key, fit_linear, stem_key
from gaia_cli.nn.detector import build_static
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.flops import conv_out
from gaia_cli.space.sampling import PathSampler


def distinct_entries(space: SearchSpace) -> tuple[set[tuple[int, int]], dict[str, tuple]]:
    """Every (stem width, scale), and every block key of the space with what it takes to build it."""
    stems, blocks = set(), {}
    for scale in space.scale:
        for w0 in space.width[0]:
            stems.add((w0, scale))
        side = conv_out(conv_out(scale, 7, 2, 3), 3, 2, 1)
        inputs = set(space.width[0])
        for stage, mids in enumerate(space.width[1:]):
            stride = 1 if stage == 0 else 2
            out_side = conv_out(side, 3, stride, 1)
            for mid in mids:
                for c_in in inputs:
                    blocks[block_key(stage, c_in, mid, stride, side, True)] = (stage, c_in, mid, stride, side, True)
                if max(space.depth[stage]) > 1:
                    later = (stage, 4 * mid, mid, 1, out_side, False)
                    blocks[block_key(*later)] = later
            inputs = {4 * m for m in mids}
            side = out_side
    return stems, blocks


def _median_ms(module: nn.Module, x: torch.Tensor, device, warmup: int, runs: int) -> float:
    module = prepare(module, device, False)
    x = x.to(device)
    return statistics.median(time_call(lambda: module(x), device, warmup, runs))


def build_profile(space: SearchSpace, classes: int, device: torch.device, warmup: int, runs: int,
                  fit_archs: int, seed: int, name: str) -> LatencyProfile:
    stems, blocks = distinct_entries(space)
    profile = LatencyProfile(name=name, method="lut", environment=environment(device), classes=classes,
                             detector=space.detector)
    with console.progress("measuring blocks", total=len(stems) + len(blocks) + len(space.scale) + fit_archs) as bar:
        for w0, scale in sorted(stems):
            stem = nn.Sequential(nn.Conv2d(3, w0, 7, 2, 3, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True),
                                 nn.MaxPool2d(3, 2, 1))
            profile.stems[stem_key(w0, scale)] = _median_ms(stem, torch.rand(1, 3, scale, scale), device, warmup, runs)
            bar.advance()
        for key, (stage, c_in, mid, stride, side, first) in sorted(blocks.items()):
            down = nn.Sequential(nn.Conv2d(c_in, 4 * mid, 1, stride, bias=False), nn.BatchNorm2d(4 * mid)) if first else None
            block = Bottleneck(c_in, mid, stride, down)
            profile.blocks[key] = _median_ms(block, torch.rand(1, c_in, side, side), device, warmup, runs)
            bar.advance()
        for scale in space.scale:  # what runs after the backbone, on the smallest arch at this scale
            ref = Arch(space.min_arch.depth, space.min_arch.width, scale)
            m = measure_model(build_static(ref, classes, space.detector), scale, device, warmup, runs)
            profile.fixed[str(scale)] = max(m["detector"]["median"] - m["backbone"]["median"], 0.0)
            bar.advance()
        sampler = PathSampler(space, "uniform", seed)
        archs = [sampler.next() for _ in range(fit_archs)]
        measured = []
        for arch in archs:
            measured.append(measure_model(build_static(arch, classes, space.detector), arch.scale, device,
                                          warmup, runs)["detector"]["median"])
            bar.advance()
    raw = np.array([profile.raw(a) for a in archs])
    measured = np.array(measured)
    profile.correction = fit_linear(raw, measured) if fit_archs >= 2 else (1.0, 0.0)
    a, b = profile.correction
    if a <= 0 or a * profile.raw(space.min_arch) + b <= 0:
        # noise swamped the spread of the fit archs (a busy machine): a line that is not increasing, or one
        # that predicts a non-positive latency for the cheapest arch, is no model; scale the sum instead
        profile.correction = (float(raw @ measured / (raw @ raw)), 0.0) if fit_archs else (1.0, 0.0)
    errors = [abs(profile.predict(a) - t) / t for a, t in zip(archs, measured)]
    profile.calibration = {"space": space.name, "fit_archs": fit_archs, "warmup": warmup, "runs": runs,
                           "fit_mean_error": float(np.mean(errors)) if errors else None,
                           "blocks": len(profile.blocks), "stems": len(profile.stems)}
    return profile


def check_profile(profile: LatencyProfile, archs: list[Arch], device: torch.device, warmup: int, runs: int,
                  space: SearchSpace) -> dict[str, Any]:
    """Predicted against measured latency of `archs` on this device: MAPE and max error."""
    rows = []
    with console.progress("measuring", total=len(archs)) as bar:
        for arch in archs:
            measured = measure_model(build_static(arch, profile.classes, space.detector), arch.scale, device,
                                     warmup, runs)["detector"]["median"]
            predicted = profile.predict(arch)
            rows.append({"arch": arch.as_dict(), "measured_ms": measured, "predicted_ms": predicted,
                         "error": abs(predicted - measured) / measured})
            bar.advance()
    errors = [r["error"] for r in rows]
    return {"profile": profile.name, "archs": len(rows), "mape": float(np.mean(errors)), "max_error": float(np.max(errors)),
            "results": rows}
