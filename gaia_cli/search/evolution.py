"""Evolutionary search for the best arch under a latency and/or FLOPs budget (DetOFA 3.3, once-for-all's
evolution finder).

A population of archs that meet the budget; each generation keeps the best `parent_ratio` as parents, then
fills the population with mutants (each depth and width gene redrawn with probability `mutate_prob`, the
scale with `scale_mutate_prob`) and crossovers (each gene from one of two parents). A child that breaks the
budget, that a pruned space does not allow (`gaia prune`: judged per batch, `pathfilter.accept.AcceptingRows`),
or that the population already holds, is redrawn, a bounded number of times: duplicates would let
the population collapse onto one arch. Children are made in batches (numpy arrays of genes), costs and
scores are cached per arch, and a batch objective (a path filter) scores a generation at once.
Deterministic for a seed.

The objective is named in the output: a measured one (`supernet-ap`, the supernet path's COCO AP after BN
recalibration) or a proxy (`flops-proxy`, the largest FLOPs under the budget), never one posing as the other.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from gaia_cli import console
from gaia_cli.checks import check_options
from gaia_cli.errors import BadInput
from gaia_cli.latency.profile import LatencyProfile
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.flops import detector_gflops, detector_gflops_rows


@dataclasses.dataclass
class Settings:
    population: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    scale_mutate_prob: float = 0.5
    tries: int = 50  # candidates per child (or initial arch), in all, before its slot is left empty
    seed: int = 0

    def check(self) -> None:
        check_options({"--population": self.population, "--generations": self.generations,
                       "--parent-ratio": self.parent_ratio, "--mutation-ratio": self.mutation_ratio,
                       "--mutate-prob": self.mutate_prob, "--scale-mutate-prob": self.scale_mutate_prob,
                       "--seed": self.seed}, "search")
        if self.tries < 1:
            raise ValueError("tries must be at least 1")


class Budget:
    """Latency (on a device profile) and FLOPs limits, with each arch's costs cached."""

    def __init__(self, latency_ms: float | None, profile: LatencyProfile | None, gflops: float | None,
                 classes: int, detector: dict | None):
        if latency_ms is not None and profile is None:
            raise BadInput("--latency needs --device PROFILE (v100, or a profile file from bench-latency)")
        if latency_ms is None and gflops is None:
            raise BadInput("give a budget: --latency MS --device PROFILE, and/or --flops G")
        self.latency_ms, self.profile, self.gflops = latency_ms, profile, gflops
        self.classes, self.detector = classes, detector
        self._cache: dict[Arch, tuple[float | None, float]] = {}
        self.evaluations = 0

    def costs(self, arch: Arch) -> tuple[float | None, float]:
        """(predicted latency ms or None, detector GFLOPs)."""
        if arch not in self._cache:
            latency = self.profile.predict(arch) if self.profile else None
            self._cache[arch] = (latency, detector_gflops(arch, self.classes, self.detector))
        return self._cache[arch]

    def meets_rows(self, rows: np.ndarray) -> np.ndarray:
        """`meets` of many archs at once, as gene rows [N, 10] (4 depths, 5 widths, the scale): the FLOPs in
        one vectorised closed form, a linear profile's latency from them; a lookup-table profile per arch."""
        self.evaluations += len(rows)
        ok = np.ones(len(rows), dtype=bool)
        if self.gflops is not None:
            ok &= detector_gflops_rows(rows, self.classes, self.detector) <= self.gflops
        if self.latency_ms is not None:
            p = self.profile
            if p.method == "linear":
                latency = p.coefficients["detector_gmacs"] * detector_gflops_rows(rows, p.classes, p.detector) + p.intercept
            else:
                latency = np.array([p.predict(Arch(r[:4], r[4:9], r[9])) for r in rows.tolist()])
            ok &= latency <= self.latency_ms
        return ok

    def meets(self, arch: Arch) -> bool:
        self.evaluations += 1
        latency, gflops = self.costs(arch)
        return (self.latency_ms is None or latency <= self.latency_ms) and (self.gflops is None or gflops <= self.gflops)

    def describe(self, arch: Arch) -> str:
        latency, gflops = self.costs(arch)
        parts = [f"{gflops:.1f} GFLOPs"] + ([f"{latency:.1f} ms"] if latency is not None else [])
        return ", ".join(parts)


Row = tuple[int, ...]  # an arch's genes: 4 depths, 5 widths, the scale


class Evolution:
    """The search loop. Internally an arch is its row of genes (a plain tuple: hashing it is far cheaper than
    hashing an `Arch`); children are made in batches, a generation's mutants (or crossovers) as one numpy
    array, each round redrawing only the slots still empty (at most `tries` candidates a slot in all); the
    score is cached per row, the budget checked for a whole batch at once, and an `Arch` is built once per distinct row."""

    BATCH = 64  # candidates made and checked together

    def __init__(self, space: SearchSpace, budget: Budget, objective: Callable[[Arch], float], settings: Settings,
                 batch_objective: Callable[[list[Arch]], list[float]] | None = None,
                 admit: Callable[[list[Row]], list[bool]] | None = None):
        settings.check()
        self.space, self.budget, self.objective, self.s = space, budget, objective, settings
        self.batch_objective = batch_objective  # scores many archs in one call (a path filter's batches)
        # a pruned space's verdicts on a batch of rows (`pathfilter.accept.AcceptingRows.allows`); None: all allowed
        self.admit = admit
        self.rng = np.random.default_rng(settings.seed)
        self._scores: dict[Row, float] = {}
        self._archs: dict[Row, Arch] = {}
        choices = [c for c in (*space.depth, *space.width, space.scale)]
        self._lengths = np.array([len(c) for c in choices])
        self._table = np.array([c + [c[-1]] * (max(self._lengths) - len(c)) for c in choices], dtype=np.int64)
        self._columns = np.arange(len(choices))
        self._mutate_probs = np.array([settings.mutate_prob] * 9 + [settings.scale_mutate_prob])

    # ------------------------------------------------------------------------------------------ rows

    @staticmethod
    def _row(arch: Arch) -> Row:
        return (*arch.depth, *arch.width, arch.scale)

    def _arch(self, row: Row) -> Arch:
        arch = self._archs.get(row)
        if arch is None:
            arch = self._archs[row] = Arch(row[:4], row[4:9], row[9])
        return arch

    def _score_rows(self, rows: list[Row]) -> None:
        missing = [r for r in dict.fromkeys(rows) if r not in self._scores]
        if not missing:
            return
        archs = [self._arch(r) for r in missing]
        values = self.batch_objective(archs) if self.batch_objective else [self.objective(a) for a in archs]
        self._scores.update(zip(missing, map(float, values)))

    @property
    def scores(self) -> dict[Arch, float]:
        return {self._arch(r): v for r, v in self._scores.items()}

    # -------------------------------------------------------------------------------------- children

    def _fill(self, make: Callable[[int], np.ndarray], count: int, taken: set[Row]) -> list[Row]:
        """Up to `count` new rows that meet the budget, are not taken and (a pruned space) are allowed, from
        batches of `make(k)` rows."""
        found: list[Row] = []
        left = self.s.tries * count  # candidates allowed in all: `tries` a slot
        while len(found) < count and left > 0:
            # a batch of at least BATCH: a vectorised check costs about as much for 64 rows as for 1
            rows = make(min(left, max(count - len(found), self.BATCH)))
            left -= len(rows)
            verdicts = zip(map(tuple, rows.tolist()), self.budget.meets_rows(rows).tolist())
            if self.admit is not None:  # the batch's rows that meet the budget and are new, judged in batches
                verdicts = self._admitted([row for row, ok in verdicts if ok and row not in taken], count - len(found))
            for row, ok in verdicts:
                if ok and row not in taken:
                    found.append(row)
                    taken.add(row)
                    if len(found) == count:
                        break
        return found

    def _admitted(self, rows: list[Row], need: int) -> list[tuple[Row, bool]]:
        """(row, whether the pruned space allows it) for `rows` in order, up to the `need`-th allowed: judged
        a chunk of as many as still needed at a time, so a batch's surplus is not scored by the path filter."""
        rows = list(dict.fromkeys(rows))
        out: list[tuple[Row, bool]] = []
        start = 0
        while start < len(rows) and need > 0:
            chunk = rows[start: start + need]
            start += len(chunk)
            allowed = self.admit(chunk)
            out += zip(chunk, allowed)
            need -= sum(allowed)
        return out

    def _uniforms(self, k: int) -> np.ndarray:
        picks = (self.rng.random((k, len(self._lengths))) * self._lengths).astype(np.int64)
        return self._table[self._columns, picks]

    def _mutants(self, parents: np.ndarray, k: int) -> np.ndarray:
        rows = parents[self.rng.integers(len(parents), size=k)]
        redraw = self.rng.random(rows.shape) < self._mutate_probs
        fresh = self._uniforms(k)
        return np.where(redraw, fresh, rows)

    def _crosses(self, parents: np.ndarray, k: int) -> np.ndarray:
        a = parents[self.rng.integers(len(parents), size=k)]
        b = parents[self.rng.integers(len(parents), size=k)]
        return np.where(self.rng.random(a.shape) < 0.5, a, b)

    def initial(self) -> list[Arch]:
        return [self._arch(r) for r in self._initial()]

    def _initial(self) -> list[Row]:
        cheapest = self.space.min_arch
        if not self.budget.meets(cheapest):
            raise BadInput(f"no arch of space {self.space.name!r} meets the budget: its cheapest, {cheapest}, "
                           f"needs {self.budget.describe(cheapest)}")
        population = self._fill(self._uniforms, self.s.population, set())
        if population:
            return population
        # uniform draws kept missing a tight budget: the cheapest meets it (if a pruned space allows it)
        if self.admit is not None and not self.admit([self._row(cheapest)])[0]:
            raise BadInput(f"no arch that the pruned space {self.space.name!r} allows met the budget in "
                           f"{self.s.tries * self.s.population:,} candidates drawn (loosen the budget, or prune less)")
        return [self._row(cheapest)]

    def run(self) -> list[tuple[float, Arch]]:
        """All archs scored, best first."""
        s = self.s
        population = self._initial()
        n_parents = max(1, int(round(s.population * s.parent_ratio)))
        n_children = s.population - n_parents
        n_mutants = min(int(round(s.population * s.mutation_ratio)), max(n_children, 0))
        scores = self._scores
        with console.progress("evolving", total=s.generations) as bar:
            for _ in range(s.generations):
                self._score_rows(population)
                parents = sorted(population, key=lambda r: (-scores[r], r))[:n_parents]
                genes = np.array(parents, dtype=np.int64)
                taken = set(parents)
                mutants = self._fill(lambda k: self._mutants(genes, k), n_mutants, taken)
                crosses = self._fill(lambda k: self._crosses(genes, k), n_children - n_mutants, taken)
                population = parents + mutants + crosses
                bar.advance()
        self._score_rows(population)
        ranked = sorted(scores.items(), key=lambda t: (-t[1], t[0]))
        return [(v, self._arch(r)) for r, v in ranked]
