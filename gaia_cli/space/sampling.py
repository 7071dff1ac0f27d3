"""Path sampling: GAIA's prescribed rules, drawn at random or cycled, and the plain rules.

Rules: `uniform` (every coordinate uniform over its choices), `max`, `min`, `anchor` (one of the space's
anchors), and GAIA's one-sided rules, which fix one dimension at an extreme and draw the others uniformly:
`max-depth`, `min-depth`, `max-width`, `min-width`, `max-scale`, `min-scale` ("models with the maximum
depth, models with the minimum width and other likenesses", GAIA 4.2.1). `gaia` is the training default,
as the paper has it: "in each iteration ... we randomly pick an available model that obeys one of the
prescribed rules", so each step draws one of those nine rules at random (uniformly), then a path by it.
`gaia-cycle` is the earlier form: the rules in turn, each followed by a uniform sample (half the paths
uniform). `sandwich` is BigNAS's and once-for-all's rule: with K paths a step (`next_step(K)`, K >= 2) each
step trains the largest, the smallest and K - 2 uniform paths, the largest first (the teacher of in-place
distillation); with one path a step it takes max, min and uniform in turn. In a space without anchors (a
space written by hand, a single path) `gaia` and `gaia-cycle` leave the anchor rule out; `anchor` asked for
by name is refused.

A `PathSampler`'s state (its position and its numpy generator) is plain JSON, so a resumed run samples
exactly the paths an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaia_cli.errors import BadInput
from gaia_cli.space.arch import Arch, SearchSpace

ONE_SIDED = ("max-depth", "min-depth", "max-width", "min-width", "max-scale", "min-scale")
RULES = ("uniform", "max", "min", "anchor", *ONE_SIDED)
def _each_then_uniform(rules: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x for rule in rules for x in (rule, "uniform"))


PRESCRIBED = ("max", "min", "anchor", *ONE_SIDED)  # GAIA's prescribed rules
GAIA_CYCLE = _each_then_uniform(PRESCRIBED)
SEQUENCES = {"gaia": PRESCRIBED, "gaia-cycle": GAIA_CYCLE, "sandwich": ("max", "min", "uniform")}
AT_RANDOM = ("gaia",)  # sequences whose rule is drawn at random each step instead of taken in turn


def sample(space: SearchSpace, rule: str, rng: np.random.Generator) -> Arch:
    """One arch of `space` drawn by `rule`."""
    def pick(choices: list[int]) -> int:
        return int(choices[rng.integers(len(choices))])

    depth = [pick(c) for c in space.depth]
    width = [pick(c) for c in space.width]
    scale = pick(space.scale)
    if rule == "uniform":
        pass
    elif rule == "max":
        return space.max_arch
    elif rule == "min":
        return space.min_arch
    elif rule == "anchor":
        if not space.anchors:
            raise BadInput(f"space {space.name!r} has no anchors for the 'anchor' rule")
        names = sorted(space.anchors)
        return space.anchors[names[rng.integers(len(names))]]
    elif rule in ONE_SIDED:
        side, dim = rule.split("-")
        end = -1 if side == "max" else 0
        if dim == "depth":
            depth = [c[end] for c in space.depth]
        elif dim == "width":
            width = [c[end] for c in space.width]
        else:
            scale = space.scale[end]
    else:
        raise BadInput(f"unknown sampling rule {rule!r} (known: {', '.join(RULES)}, or a sequence: "
                       f"{', '.join(SEQUENCES)})")
    return Arch(tuple(depth), tuple(width), scale)


def parse_rules(spec: str) -> tuple[str, ...]:
    """A rule, a named sequence (`gaia`, `gaia-cycle`, `sandwich`), or rules joined by commas."""
    if spec in SEQUENCES:
        return SEQUENCES[spec]
    rules = tuple(r.strip() for r in spec.split(",") if r.strip())
    unknown = [r for r in rules if r not in RULES]
    if not rules or unknown:
        raise BadInput(f"unknown sampling rule {', '.join(unknown) or spec!r} (known: {', '.join(RULES)}, "
                       f"or a sequence: {', '.join(SEQUENCES)})")
    return rules


class PathSampler:
    """Draws archs from `space` by `rules`: one drawn at random each step (`gaia`), or each in turn."""

    def __init__(self, space: SearchSpace, rules: str | tuple[str, ...] = "gaia", seed: int = 0):
        self.space = space
        self.rules = parse_rules(rules) if isinstance(rules, str) else tuple(rules)
        self.at_random = rules in AT_RANDOM
        if rules in ("gaia", "gaia-cycle") and not space.anchors:
            prescribed = tuple(r for r in PRESCRIBED if r != "anchor")
            self.rules = prescribed if self.at_random else _each_then_uniform(prescribed)
        self.rng = np.random.default_rng(seed)
        self.position = 0

    def next_rule(self) -> str:
        """The rule of the next path: drawn at random (`gaia`) or the next in turn."""
        if self.at_random:
            return self.rules[int(self.rng.integers(len(self.rules)))]
        return self.rules[self.position % len(self.rules)]

    def next(self) -> Arch:
        rule = self.next_rule()
        self.position += 1
        return sample(self.space, rule, self.rng)

    def next_step(self, k: int) -> list[Arch]:
        """The `k` paths of one training step: the sandwich rule's largest, smallest and k - 2 uniform
        paths (k >= 2), else `k` draws by the rules."""
        if self.rules == SEQUENCES["sandwich"] and k >= 2:
            self.position += k
            return [self.space.max_arch, self.space.min_arch,
                    *(sample(self.space, "uniform", self.rng) for _ in range(k - 2))]
        return [self.next() for _ in range(k)]

    def state(self) -> dict[str, Any]:
        return {"position": self.position, "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
        self.rng.bit_generator.state = state["rng"]
