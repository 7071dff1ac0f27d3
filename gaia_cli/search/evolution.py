"""Evolutionary search for the best arch under a latency and/or FLOPs budget (DetOFA 3.3, once-for-all's
evolution finder).

A population of archs that meet the budget; each generation keeps the best `parent_ratio` as parents, then
fills the population with mutants (each depth and width gene redrawn with probability `mutate_prob`, the
scale with `scale_mutate_prob`) and crossovers (each gene from one of two parents). A child that breaks the
budget, or that the population already holds, is redrawn, a bounded number of times: duplicates would let
the population collapse onto one arch. Costs and scores are cached per arch. Deterministic for a seed.

The objective is named in the output: a measured one (`supernet-ap`, the supernet path's COCO AP after BN
recalibration) or a proxy (`flops-proxy`, the largest FLOPs under the budget), never one posing as the other.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable

from gaia_cli import console
from gaia_cli.errors import BadInput
from gaia_cli.latency.profile import LatencyProfile
from gaia_cli.space.arch import Arch, SearchSpace


@dataclasses.dataclass
class Settings:
    population: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    scale_mutate_prob: float = 0.5
    tries: int = 50  # redraws of one child (or initial arch) before giving up on it
    seed: int = 0

    def check(self) -> None:
        from gaia_cli.checks import check_options

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
            from gaia_cli.space.flops import detector_gflops

            latency = self.profile.predict(arch) if self.profile else None
            self._cache[arch] = (latency, detector_gflops(arch, self.classes, self.detector))
        return self._cache[arch]

    def meets(self, arch: Arch) -> bool:
        self.evaluations += 1
        latency, gflops = self.costs(arch)
        return (self.latency_ms is None or latency <= self.latency_ms) and (self.gflops is None or gflops <= self.gflops)

    def describe(self, arch: Arch) -> str:
        latency, gflops = self.costs(arch)
        parts = [f"{gflops:.1f} GFLOPs"] + ([f"{latency:.1f} ms"] if latency is not None else [])
        return ", ".join(parts)


class Evolution:
    def __init__(self, space: SearchSpace, budget: Budget, objective: Callable[[Arch], float], settings: Settings,
                 batch_objective: Callable[[list[Arch]], list[float]] | None = None):
        settings.check()
        self.space, self.budget, self.objective, self.s = space, budget, objective, settings
        self.batch_objective = batch_objective  # scores many archs in one call (a path filter's batches)
        self.rng = random.Random(settings.seed)  # single draws: far cheaper than numpy's per call
        self.scores: dict[Arch, float] = {}

    def score(self, arch: Arch) -> float:
        if arch not in self.scores:
            self.scores[arch] = float(self.objective(arch))
        return self.scores[arch]

    def score_all(self, archs: list[Arch]) -> None:
        """Score the archs not scored yet, in one batch when there is a batch objective."""
        if self.batch_objective is None:
            return
        missing = list(dict.fromkeys(a for a in archs if a not in self.scores))
        if missing:
            self.scores.update(zip(missing, map(float, self.batch_objective(missing))))

    def _draw(self, make: Callable[[], Arch], taken: set[Arch]) -> Arch | None:
        for _ in range(self.s.tries):
            arch = make()
            if arch not in taken and self.budget.meets(arch):
                return arch
        return None

    def _uniform(self) -> Arch:
        c = self.rng.choice
        return Arch(tuple(c(x) for x in self.space.depth), tuple(c(x) for x in self.space.width), c(self.space.scale))

    def _mutate(self, parent: Arch) -> Arch:
        rng, space = self.rng, self.space
        depth = [rng.choice(c) if rng.random() < self.s.mutate_prob else d for d, c in zip(parent.depth, space.depth)]
        width = [rng.choice(c) if rng.random() < self.s.mutate_prob else w for w, c in zip(parent.width, space.width)]
        scale = rng.choice(space.scale) if rng.random() < self.s.scale_mutate_prob else parent.scale
        return Arch(tuple(depth), tuple(width), scale)

    def _cross(self, a: Arch, b: Arch) -> Arch:
        pick = lambda x, y: x if self.rng.random() < 0.5 else y  # noqa: E731
        return Arch(tuple(pick(x, y) for x, y in zip(a.depth, b.depth)),
                    tuple(pick(x, y) for x, y in zip(a.width, b.width)), pick(a.scale, b.scale))

    def initial(self) -> list[Arch]:
        cheapest = self.space.min_arch
        if not self.budget.meets(cheapest):
            raise BadInput(f"no arch of space {self.space.name!r} meets the budget: its cheapest, {cheapest}, "
                           f"needs {self.budget.describe(cheapest)}")
        population: list[Arch] = []
        taken: set[Arch] = set()
        for _ in range(self.s.population):
            arch = self._draw(self._uniform, taken)
            if arch is None:
                break
            population.append(arch)
            taken.add(arch)
        if not population:
            population = [cheapest]  # uniform draws kept missing a tight budget; the cheapest meets it
        return population

    def run(self) -> list[tuple[float, Arch]]:
        """All archs scored, best first."""
        s = self.s
        population = self.initial()
        n_parents = max(1, int(round(s.population * s.parent_ratio)))
        n_mutants = int(round(s.population * s.mutation_ratio))
        with console.progress("evolving", total=s.generations) as bar:
            for _ in range(s.generations):
                self.score_all(population)
                parents = sorted(population, key=lambda a: (-self.score(a), str(a)))[:n_parents]
                population, taken = list(parents), set(parents)
                for i in range(s.population - len(parents)):
                    if i < n_mutants:
                        make = lambda: self._mutate(self.rng.choice(parents))  # noqa: E731
                    else:
                        make = lambda: self._cross(self.rng.choice(parents), self.rng.choice(parents))  # noqa: E731
                    child = self._draw(make, taken)
                    if child is not None:
                        population.append(child)
                        taken.add(child)
                bar.advance()
        self.score_all(population)
        for arch in population:
            self.score(arch)
        return sorted(((v, a) for a, v in self.scores.items()), key=lambda t: (-t[0], str(t[1])))
