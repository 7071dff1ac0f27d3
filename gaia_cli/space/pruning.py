"""What a pruned space (a gaia/space with "pruning") no longer allows, read without torch.

The record `gaia prune` (gaia_cli.pathfilter.prune) writes into a space and every reader of a space checks:
it lives here, beside the space, so that reading a space needs nothing of the path filter's package.

`pruning` holds the FLOPs bucket edges (and the classes the FLOPs were counted with), for each bucket the
operations removed there (depth choices per stage, width choices per stem/stage) and the path score
threshold, and the path filter that scores paths (its path and sha256). A path is allowed when none of its
operations is removed in its bucket and (when there are thresholds) its score reaches its bucket's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from gaia_cli.errors import BadInput
from gaia_cli.space.flops import detector_gflops, detector_gflops_rows

if TYPE_CHECKING:  # annotations only: gaia_cli.space.arch imports this module to check a space's record
    import numpy as np

    from gaia_cli.space.arch import Arch, SearchSpace


def bucket_of(flops: np.ndarray | float, edges: list[float]) -> np.ndarray:
    """The bucket index of each FLOPs value (values outside the edges go to the first or last bucket)."""
    import numpy as np

    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, np.asarray(flops, dtype=np.float64), side="right").astype(np.int64)


@dataclasses.dataclass
class Pruning:
    edges: list[float]
    classes: int
    removed_depth: list[list[set[int]]]  # [bucket][stage] -> depths removed there
    removed_width: list[list[set[int]]]  # [bucket][stem/stage] -> widths removed there
    thresholds: list[float | None]
    filter_path: str
    filter_sha256: str
    settings: dict[str, Any]

    @property
    def buckets(self) -> int:
        return len(self.edges) - 1

    def bucket(self, arch: Arch, detector: dict[str, Any]) -> int:
        return int(bucket_of(detector_gflops(arch, self.classes, detector), self.edges))

    def operations_allow(self, arch: Arch, bucket: int) -> bool:
        depth, width = self.removed_depth[bucket], self.removed_width[bucket]
        return not any(d in removed for d, removed in zip(arch.depth, depth)) and \
            not any(w in removed for w, removed in zip(arch.width, width))

    def buckets_of_rows(self, rows: np.ndarray, detector: dict[str, Any]) -> np.ndarray:
        """`bucket` of many paths at once, as gene rows [N, 10] (4 depths, 5 widths, the scale): the FLOPs
        in one vectorised closed form."""
        return bucket_of(detector_gflops_rows(rows, self.classes, detector), self.edges)

    def operations_allow_rows(self, rows: np.ndarray, buckets: np.ndarray) -> np.ndarray:
        """`operations_allow` of many gene rows at once, each in its bucket: a mask per removed choice."""
        import numpy as np

        rows, buckets = np.asarray(rows, dtype=np.int64).reshape(-1, 10), np.asarray(buckets)
        ok = np.ones(len(rows), dtype=bool)
        for b in range(self.buckets):
            removed = [*self.removed_depth[b], *self.removed_width[b]]  # one set per gene column 0-8
            if not any(removed):
                continue
            here = buckets == b
            for column, choices in enumerate(removed):
                if choices:
                    ok &= ~(here & np.isin(rows[:, column], sorted(choices)))
        return ok

    def removed_count(self) -> int:
        return sum(len(s) for b in range(self.buckets) for s in [*self.removed_depth[b], *self.removed_width[b]])

    def to_payload(self) -> dict[str, Any]:
        return {
            **self.settings, "edges": self.edges, "classes": self.classes,
            "filter": {"path": self.filter_path, "sha256": self.filter_sha256},
            "buckets": [{"bucket": b, "removed": {"depth": [sorted(s) for s in self.removed_depth[b]],
                                                  "width": [sorted(s) for s in self.removed_width[b]]},
                         "threshold": self.thresholds[b]} for b in range(self.buckets)],
        }

    @classmethod
    def from_payload(cls, data: Any, space: SearchSpace, source: str) -> "Pruning":
        def bad(what: str) -> BadInput:
            return BadInput(f"its 'pruning' {what}", source)

        if not isinstance(data, dict):
            raise bad("must be an object")
        edges, buckets, filt = data.get("edges"), data.get("buckets"), data.get("filter")
        if not (isinstance(edges, list) and len(edges) >= 2 and all(_number(e) for e in edges)
                and edges == sorted(edges)):
            raise bad("needs 'edges': increasing FLOPs bucket edges")
        classes = data.get("classes")
        if not (isinstance(classes, int) and classes >= 2):
            raise bad("needs 'classes' (at least 2)")
        if not (isinstance(buckets, list) and len(buckets) == len(edges) - 1):
            raise bad(f"needs one entry in 'buckets' per FLOPs bucket ({len(edges) - 1})")
        if not (isinstance(filt, dict) and isinstance(filt.get("path"), str) and isinstance(filt.get("sha256"), str)):
            raise bad("needs 'filter': the path filter's path and sha256")
        depth, width, thresholds = [], [], []
        for b, entry in enumerate(buckets):
            removed = entry.get("removed", {}) if isinstance(entry, dict) else None
            if not isinstance(removed, dict):
                raise bad(f"bucket {b} must be an object with 'removed' and 'threshold'")
            d = _sets(removed.get("depth", [[]] * 4), 4, space.depth, f"bucket {b} depth", bad)
            w = _sets(removed.get("width", [[]] * 5), 5, space.width, f"bucket {b} width", bad)
            threshold = entry.get("threshold")
            if threshold is not None and not _number(threshold):
                raise bad(f"bucket {b} threshold must be a number or null")
            depth.append(d)
            width.append(w)
            thresholds.append(None if threshold is None else float(threshold))
        settings = {k: v for k, v in data.items() if k not in ("edges", "classes", "buckets", "filter")}
        return cls([float(e) for e in edges], classes, depth, width, thresholds, filt["path"], filt["sha256"], settings)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _sets(value: Any, n: int, choices: list[list[int]], what: str, bad) -> list[set[int]]:
    if not (isinstance(value, list) and len(value) == n and all(isinstance(v, list) for v in value)):
        raise bad(f"{what} must be {n} lists of removed choices")
    out = []
    for removed, allowed in zip(value, choices):
        if not set(removed) <= set(allowed):
            raise bad(f"{what} removes {sorted(set(removed) - set(allowed))}, not choices of the space")
        if set(removed) >= set(allowed):
            raise bad(f"{what} removes every choice {allowed}")
        out.append(set(removed))
    return out


def describe(space: SearchSpace) -> str:
    """One line on what a pruned space removes."""
    p = Pruning.from_payload(space.pruning, space, space.name)
    thresholds = ", ".join("-" if t is None else f"{t:.3f}" for t in p.thresholds)
    return (f"pruned ({p.settings.get('strategy', '?')}): {p.removed_count()} operation(s) removed over "
            f"{p.buckets} FLOPs buckets; score thresholds {thresholds}; filter {p.filter_path}")
