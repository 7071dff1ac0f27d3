"""`SearchSpace` and `Arch`: the supernet's dimensions and one point in them (GAIA Table 1).

An `Arch` is `depth` (blocks in each of the 4 ResNet stages), `width` (output channels of the stem, then the
bottleneck mid-channels of each stage; a stage outputs 4x its width) and `scale` (the input's shorter side,
and the side of the [3, S, S] input that FLOPs are counted at).

A `SearchSpace` lists the choices of each: `depth[i]` for stage i, `width[j]` for the stem (j = 0) and stage
j - 1, and `scale`. It also names its anchors (GAIA's model anchors, e.g. AR50) and fixes the detector parts
that are not searched (`detector`: FPN channels, box-head width, proposals counted in FLOPs).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from importlib import resources
from typing import Any, Iterator

from gaia_cli.artifacts import read_json_artifact
from gaia_cli.checks import FIELDS, check_field
from gaia_cli.errors import BadInput
from gaia_cli.space.detector import DEFAULT_DETECTOR
from gaia_cli.space.pruning import Pruning


@dataclasses.dataclass(frozen=True)
class Arch:
    depth: tuple[int, ...]
    width: tuple[int, ...]
    scale: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", tuple(int(d) for d in self.depth))
        object.__setattr__(self, "width", tuple(int(w) for w in self.width))
        object.__setattr__(self, "scale", int(self.scale))

    def as_dict(self) -> dict[str, Any]:
        return {"depth": list(self.depth), "width": list(self.width), "scale": self.scale}

    def __str__(self) -> str:
        return f"d{list(self.depth)} w{list(self.width)} s{self.scale}"

    @classmethod
    def from_dict(cls, obj: Any, source: str = "arch") -> "Arch":
        if not isinstance(obj, dict) or not all(k in obj for k in ("depth", "width", "scale")):
            raise BadInput("an arch needs 'depth' (4 numbers), 'width' (5 numbers) and 'scale'", source)
        depth, width, scale = obj["depth"], obj["width"], obj["scale"]
        if not (isinstance(depth, list) and len(depth) == 4 and all(_posint(d) for d in depth)):
            raise BadInput(f"'depth' must be 4 positive integers (blocks per stage), not {depth!r}", source)
        if not (isinstance(width, list) and len(width) == 5 and all(_posint(w) for w in width)):
            raise BadInput(f"'width' must be 5 positive integers (stem, then 4 stages), not {width!r}", source)
        if not _posint(scale):
            raise BadInput(f"'scale' must be an integer of pixels, not {scale!r}", source)
        _check_sizes([[d] for d in depth], [[w] for w in width], [scale], source)
        return cls(tuple(depth), tuple(width), scale)


def _check_sizes(depth: list[list[int]], width: list[list[int]], scale: list[int], source: str | None) -> None:
    """Depths, widths and scales (each stage's choices) within sane bounds (gaia_cli.checks.FIELDS): a scale
    of 10^30 pixels is no input."""
    for i, choices in enumerate(depth):
        for d in choices:
            check_field(f"depth[{i}]", d, source, "depth")
    for j, choices in enumerate(width):
        for w in choices:
            check_field(f"width[{j}]", w, source, "width")
    for s in scale:
        check_field("scale", s, source)


def _posint(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _choices(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(_posint(v) for v in values) \
        and values == sorted(set(values))


@dataclasses.dataclass
class SearchSpace:
    name: str
    depth: list[list[int]]
    width: list[list[int]]
    scale: list[int]
    anchors: dict[str, Arch] = dataclasses.field(default_factory=dict)
    detector: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_DETECTOR))
    # DetOFA's pruning (`gaia prune`): operations removed per FLOPs bucket, path score thresholds, the filter
    pruning: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problems = []
        if len(self.depth) != 4 or not all(_choices(c) for c in self.depth):
            problems.append("'depth' must be 4 sorted lists of positive integers")
        if len(self.width) != 5 or not all(_choices(c) for c in self.width):
            problems.append("'width' must be 5 sorted lists of positive integers")
        if not _choices(self.scale):
            problems.append("'scale' must be a sorted list of integers of pixels")
        if problems:
            raise BadInput(f"space {self.name!r}: " + "; ".join(problems))
        try:
            _check_sizes(self.depth, self.width, self.scale, None)
        except BadInput as exc:
            raise BadInput(f"space {self.name!r}: {exc.message}") from None
        for name, arch in self.anchors.items():
            self.check(arch, f"anchor {name}")

    # ---------------------------------------------------------------------------------------- membership

    def check(self, arch: Arch, source: str = "arch") -> Arch:
        """`arch` itself if it lies in the space, else BadInput naming the first coordinate that does not."""
        for i, (d, choices) in enumerate(zip(arch.depth, self.depth)):
            if d not in choices:
                raise BadInput(f"depth[{i}]={d} is not a choice of space {self.name!r} {choices}", source)
        for j, (w, choices) in enumerate(zip(arch.width, self.width)):
            if w not in choices:
                part = "stem" if j == 0 else f"stage {j}"
                raise BadInput(f"width[{j}]={w} ({part}) is not a choice of space {self.name!r} {choices}", source)
        if arch.scale not in self.scale:
            raise BadInput(f"scale={arch.scale} is not a choice of space {self.name!r} {self.scale}", source)
        return arch

    def contains(self, arch: Arch) -> bool:
        try:
            self.check(arch)
        except BadInput:
            return False
        return True

    @property
    def max_arch(self) -> Arch:
        return Arch(tuple(c[-1] for c in self.depth), tuple(c[-1] for c in self.width), self.scale[-1])

    @property
    def min_arch(self) -> Arch:
        return Arch(tuple(c[0] for c in self.depth), tuple(c[0] for c in self.width), self.scale[0])

    def size(self) -> int:
        n = len(self.scale)
        for c in [*self.depth, *self.width]:
            n *= len(c)
        return n

    def enumerate(self) -> Iterator[Arch]:
        """Every arch of the space, in a fixed order (lazily: ar50to101 holds millions)."""
        for scale in self.scale:
            for depth in itertools.product(*self.depth):
                for width in itertools.product(*self.width):
                    yield Arch(depth, width, scale)

    def covers(self, other: "SearchSpace") -> bool:
        """Every choice of `other` is a choice here (a sub-space, as the anchor spaces are of ar50to101)."""
        pairs = [*zip(other.depth, self.depth), *zip(other.width, self.width), (other.scale, self.scale)]
        return all(set(a) <= set(b) for a, b in pairs)

    def weights_key(self) -> dict[str, Any]:
        """What decides a supernet's weights over this space: its choices and the detector (not its name,
        anchors or pruning: a pruned space trains the same weights, DetOFA Algorithm 1)."""
        return {"depth": self.depth, "width": self.width, "scale": self.scale, "detector": self.detector}

    def same_weights(self, other: "SearchSpace") -> bool:
        import json

        return json.dumps(self.weights_key(), sort_keys=True) == json.dumps(other.weights_key(), sort_keys=True)

    # ------------------------------------------------------------------------------------------- payload

    def to_payload(self) -> dict[str, Any]:
        payload = {"name": self.name, "depth": self.depth, "width": self.width, "scale": self.scale,
                   "anchors": {k: a.as_dict() for k, a in self.anchors.items()}, "detector": self.detector}
        return payload if self.pruning is None else {**payload, "pruning": self.pruning}

    @classmethod
    def from_payload(cls, data: dict[str, Any], source: str = "space") -> "SearchSpace":
        try:
            anchors = {k: Arch.from_dict(v, f"{source} anchor {k}") for k, v in (data.get("anchors") or {}).items()}
            detector = {**DEFAULT_DETECTOR, **(data.get("detector") or {})}
            space = cls(str(data.get("name", "custom")), data["depth"], data["width"], data["scale"], anchors, detector)
        except KeyError as exc:
            raise BadInput(f"a space needs 'depth', 'width' and 'scale' (missing {exc})", source) from None
        except BadInput as exc:
            raise BadInput(exc.message, exc.path or source) from None

        for key, value in space.detector.items():
            if key == "anchor_ratios":  # optional: height/width of the RPN's anchors (default 0.5, 1, 2)
                if not (isinstance(value, list) and 1 <= len(value) <= 9 and value == sorted(set(value)) and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) and 0.05 <= v <= 20 for v in value)):
                    raise BadInput("detector setting 'anchor_ratios' must be 1 to 9 increasing numbers in "
                                   "[0.05, 20] (anchor height / width)", source)
                continue
            ok = _choices(value) and len(value) == 5 if key == "anchor_sizes" else _posint(value)
            if not ok:
                what = "5 increasing positive integers" if key == "anchor_sizes" else "a positive integer"
                raise BadInput(f"detector setting {key!r} must be {what}", source)
            if key in FIELDS:
                for v in value if isinstance(value, list) else [value]:
                    check_field(f"detector {key}", v, source, key)
        if data.get("pruning") is not None:  # checked here, so a bad one is refused wherever a space is read
            Pruning.from_payload(data["pruning"], space, source)
            space.pruning = data["pruning"]
        return space


def group_by_scale_and_depth(archs: list[Arch]) -> dict[tuple[int, int], list[Arch]]:
    """Archs grouped by (scale, total depth): GAIA compares rankings within such groups (Figure 2c)."""
    groups: dict[tuple[int, int], list[Arch]] = {}
    for arch in archs:
        groups.setdefault((arch.scale, sum(arch.depth)), []).append(arch)
    return dict(sorted(groups.items()))


# ------------------------------------------------------------------------------------------------ presets


def _table1() -> dict[str, Any]:
    with resources.files("gaia_cli.resources").joinpath("gaia_table2_v100.json").open(encoding="utf-8") as fh:
        return json.load(fh)["search_space_table1"]


def _steps(lo: int, hi: int, step: int) -> list[int]:
    return list(range(lo, hi + 1, step))


def _anchor_space(name: str) -> SearchSpace:
    t = _table1()
    a = t[name]
    width = [_steps(lo, hi, s) for lo, hi, s in zip(t["width_min"], t["width_max"], t["width_step"])]
    depth = [_steps(lo, hi, s) for lo, hi, s in zip(a["depth_min"], a["depth_max"], a["depth_step"])]
    anchor = Arch(tuple(a["depth_anchor"]), tuple(t["width_anchor"]), a["scale_anchor"])
    return SearchSpace(name.lower(), depth, width, _steps(a["scale_min"], a["scale_max"], t["scale_step"]),
                       {name: anchor})


def _union_space() -> SearchSpace:
    """ar50to101: every depth between the anchor spaces' extremes ([2,2,4,2]..[4,6,29,4]), their widths and
    scales. Stage depths are taken at step 1 where the anchor spaces' steps differ: GAIA's Table 2 models
    use stage-3 depths 21 and 25, which lie between the anchor spaces' own steps."""
    parts = [_anchor_space(n) for n in ("AR50", "AR77", "AR101")]
    depth = []
    for i in range(4):
        values = sorted({d for p in parts for d in p.depth[i]})
        steps = {b - a for a, b in zip(values, values[1:])}
        depth.append(values if len(steps) <= 1 else list(range(values[0], values[-1] + 1)))
    scale = sorted({s for p in parts for s in p.scale})
    anchors = {k: v for p in parts for k, v in p.anchors.items()}
    return SearchSpace("ar50to101", depth, parts[0].width, scale, anchors)


def _tiny_space() -> SearchSpace:
    """A few channels and 64-128 px inputs: the whole supernet trains in seconds on a CPU (tests, CI)."""
    return SearchSpace(
        "tiny",
        depth=[[1, 2], [1, 2], [1, 2, 3], [1, 2]],
        width=[[8, 16], [8, 16], [16, 24], [16, 32], [32, 48]],
        scale=[64, 96, 128],
        anchors={"T1": Arch((1, 2, 2, 1), (16, 16, 16, 32, 32), 96)},
        detector={"fpn_channels": 32, "box_head_dim": 64, "proposals": 100, "proposals_train": 256,
                  "roi_samples_per_image": 64, "anchor_sizes": [8, 16, 32, 64, 128]},
    )


def _small_space() -> SearchSpace:
    """For CPU benchmarks that must learn the toy task (160 px images): inputs of 128-160 px, so the toy
    set's smallest shapes (under 16 px at 160) keep their pixels, and a box head (256) and FPN (64) wide
    enough to tell the shapes apart. A model trains in minutes on 2 cores."""
    return SearchSpace(
        "small",
        depth=[[1, 2], [1, 2], [2, 3], [1, 2]],
        width=[[16], [16, 24], [24, 32], [32, 48], [48, 64]],
        scale=[128, 144, 160],
        anchors={"S1": Arch((2, 2, 3, 2), (16, 16, 24, 32, 48), 144)},
        detector={"fpn_channels": 64, "box_head_dim": 256, "proposals": 100, "proposals_train": 256,
                  "roi_samples_per_image": 128, "anchor_sizes": [8, 16, 32, 64, 128]},
    )


PRESETS = {
    "ar50": lambda: _anchor_space("AR50"),
    "ar77": lambda: _anchor_space("AR77"),
    "ar101": lambda: _anchor_space("AR101"),
    "ar50to101": _union_space,
    "small": _small_space,
    "tiny": _tiny_space,
}


def preset(name: str) -> SearchSpace:
    key = name.lower()
    if key not in PRESETS:
        raise BadInput(f"unknown space preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[key]()


# ------------------------------------------------------------------------------------------------ reading
# (archs are read by gaia_cli.space.archfile: one arch, or a set of them, from any gaia file)


def read_space(spec: str) -> SearchSpace:
    """A preset name, or a `gaia/space` file (`-` and manifest lines work too)."""
    from pathlib import Path

    if spec.lower() in PRESETS and not Path(spec).exists():
        return preset(spec)
    if spec != "-" and not Path(spec).exists() and not spec.lstrip().startswith("{"):
        raise BadInput(f"no such file, and not a space preset (known: {', '.join(PRESETS)})", spec)
    art = read_json_artifact(spec, "gaia/space")
    return SearchSpace.from_payload(art.data, art.source.name)
