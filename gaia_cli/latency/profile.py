"""Latency profiles (`gaia/latency-profile`): predict an arch's batch-1 detector latency on a device in
microseconds, so that search can call them in its inner loop.

Two methods:

- `lut`, measured on a device by `gaia bench-latency --build-profile`: a lookup table of every distinct
  stem and bottleneck block of a space at every input scale (stage, input/mid/output channels, stride,
  feature-map side), the fixed cost of everything after the backbone (FPN, RPN, RoI heads,
  post-processing) at each scale, and a linear correction `a * sum + b` fitted on whole-model
  measurements of random archs (a sum of isolated blocks misses what runs between them).
- `linear`: `latency = c * detector GMACs + b`. The built-in `v100` profile is this, fitted on the only
  published V100 measurements, GAIA's Table 2 (12 models, batch 1), with GMACs counted by gaia's analytic
  counter: leave-one-out mean error 3.7% (with the paper's own FLOPs column: 4.4%).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gaia_cli.artifacts import read_json_artifact
from gaia_cli.checks import check_field
from gaia_cli.errors import BadInput
from gaia_cli.space.arch import Arch
from gaia_cli.space.flops import conv_out, detector_gflops

KIND = "gaia/latency-profile"
BUILTIN = ("v100",)


def block_key(stage: int, c_in: int, mid: int, stride: int, side: int, first: bool) -> str:
    """stage:in:mid:out:stride:side, and `p` for a stage's first block (it has a projection shortcut)."""
    return f"{stage}:{c_in}:{mid}:{4 * mid}:{stride}:{side}:{'p' if first else 'i'}"


def stem_key(width: int, scale: int) -> str:
    return f"stem:{width}:{scale}"


def arch_blocks(arch: Arch) -> tuple[str, list[tuple[str, int]]]:
    """The arch's stem key, and its (block key, count) pairs: each stage's first block, then the rest."""
    side = conv_out(conv_out(arch.scale, 7, 2, 3), 3, 2, 1)
    c_in = arch.width[0]
    blocks = []
    for stage, (depth, mid) in enumerate(zip(arch.depth, arch.width[1:])):
        stride = 1 if stage == 0 else 2
        blocks.append((block_key(stage, c_in, mid, stride, side, True), 1))
        side = conv_out(side, 3, stride, 1)
        if depth > 1:
            blocks.append((block_key(stage, 4 * mid, mid, 1, side, False), depth - 1))
        c_in = 4 * mid
    return stem_key(arch.width[0], arch.scale), blocks


@dataclasses.dataclass
class LatencyProfile:
    name: str
    method: str  # "lut" or "linear"
    environment: dict[str, Any]
    classes: int = 81
    detector: dict[str, Any] | None = None
    coefficients: dict[str, float] = dataclasses.field(default_factory=dict)  # linear: {"detector_gmacs": c}
    intercept: float = 0.0
    stems: dict[str, float] = dataclasses.field(default_factory=dict)  # lut, ms
    blocks: dict[str, float] = dataclasses.field(default_factory=dict)
    fixed: dict[str, float] = dataclasses.field(default_factory=dict)  # scale -> ms after the backbone
    correction: tuple[float, float] = (1.0, 0.0)
    calibration: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "<memory>"

    def gmacs(self, arch: Arch) -> float:
        return detector_gflops(arch, self.classes, self.detector)

    def raw(self, arch: Arch) -> float:
        """The lookup-table sum before the correction (lut profiles)."""
        stem, blocks = arch_blocks(arch)
        try:
            total = self.stems[stem] + self.fixed[str(arch.scale)]
            for key, count in blocks:
                total += self.blocks[key] * count
        except KeyError as exc:
            raise BadInput(f"profile {self.name!r} has no entry {exc.args[0]} for {arch}: the arch lies "
                           f"outside the space it was measured on", self.source) from None
        return total

    def predict(self, arch: Arch) -> float:
        """Predicted latency in ms."""
        if self.method == "linear":
            return self.coefficients["detector_gmacs"] * self.gmacs(arch) + self.intercept
        a, b = self.correction
        return a * self.raw(arch) + b

    def to_payload(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("source")
        data["correction"] = list(self.correction)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any], source: str) -> "LatencyProfile":
        try:
            profile = cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}},
                          source=source)
        except TypeError as exc:
            raise BadInput(f"not a latency profile ({exc})", source) from None
        if profile.method not in ("lut", "linear"):
            raise BadInput(f"unknown profile method {profile.method!r}", source)
        if profile.method == "linear" and "detector_gmacs" not in profile.coefficients:
            raise BadInput("a linear profile needs a 'detector_gmacs' coefficient", source)
        if profile.method == "lut" and not (profile.stems and profile.blocks and profile.fixed):
            raise BadInput("a lut profile needs stems, blocks and fixed costs", source)
        profile.correction = tuple(profile.correction)
        _check_numbers(profile, source)
        return profile


def _check_numbers(profile: LatencyProfile, source: str) -> None:
    """Every measured time finite and not negative, every coefficient finite (gaia_cli.checks.FIELDS)."""
    for table in ("stems", "blocks", "fixed"):
        for key, ms in getattr(profile, table).items():
            check_field(f"{table}[{key}]", ms, source, "ms")
    for key, value in profile.coefficients.items():
        check_field(f"coefficients[{key}]", value, source, "coefficient")
    check_field("intercept", profile.intercept, source, "coefficient")
    for i, value in enumerate(profile.correction):
        check_field(f"correction[{i}]", value, source, "coefficient")
    check_field("classes", profile.classes, source)


# ---------------------------------------------------------------------------------------- v100 (Table 2)


def table2() -> list[dict[str, Any]]:
    with resources.files("gaia_cli.resources").joinpath("gaia_table2_v100.json").open(encoding="utf-8") as fh:
        return json.load(fh)["rows"]


def fit_linear(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def leave_one_out(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative error of each point predicted by a line fitted on the others."""
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        slope, intercept = fit_linear(x[keep], y[keep])
        errors.append(abs(slope * x[i] + intercept - y[i]) / y[i])
    return np.array(errors)


@functools.lru_cache(maxsize=None)
def v100() -> LatencyProfile:
    rows = table2()
    archs = [Arch(tuple(r["depth"]), tuple(r["width"]), r["scale"]) for r in rows]
    x = np.array([detector_gflops(a, 81) for a in archs])
    y = np.array([r["latency_ms_v100"] for r in rows], dtype=float)
    slope, intercept = fit_linear(x, y)
    loo = leave_one_out(x, y)
    return LatencyProfile(
        name="v100", method="linear", classes=81,
        environment={"name": "NVIDIA Tesla V100", "source": "GAIA Table 2: Faster R-CNN + FPN, batch 1, "
                     "latency over COCO val (the paper's measurement; not re-measured here)"},
        coefficients={"detector_gmacs": slope}, intercept=intercept,
        calibration={"archs": len(rows), "feature": "detector GMACs at [3, S, S], 81 classes, 1000 proposals",
                     "loo_mean_error": float(loo.mean()), "loo_max_error": float(loo.max())},
        source="builtin:v100")


def load_profile(spec: str) -> LatencyProfile:
    """A built-in profile by name, or a `gaia/latency-profile` file."""
    if spec.lower() in BUILTIN and not Path(spec).exists():
        return v100()
    if spec != "-" and not Path(spec).exists() and not spec.lstrip().startswith("{"):
        raise BadInput(f"unknown device profile {spec!r}: known are {', '.join(BUILTIN)}, or a profile file "
                       f"measured with gaia bench-latency --build-profile")
    art = read_json_artifact(spec, KIND)
    return LatencyProfile.from_payload(art.data, art.source.name)
