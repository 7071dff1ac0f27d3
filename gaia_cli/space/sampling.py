"""Path sampling: GAIA's prescribed rules cycled with uniform samples, and the plain rules.

Rules: `uniform` (every coordinate uniform over its choices), `max`, `min`, `anchor` (one of the space's
anchors), and GAIA's one-sided rules, which fix one dimension at an extreme and draw the others uniformly:
`max-depth`, `min-depth`, `max-width`, `min-width`, `max-scale`, `min-scale` ("models with the maximum
depth, models with the minimum width and other likenesses", GAIA 4.2.1). `gaia` is the training default:
those rules in turn, each followed by a uniform sample. In a space without anchors (a space written by
hand, a single path) the `gaia` sequence leaves the anchor rule out; `anchor` asked for by name is refused.

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


GAIA_CYCLE = _each_then_uniform(("max", "min", "anchor", *ONE_SIDED))
SEQUENCES = {"gaia": GAIA_CYCLE, "sandwich": ("max", "min", "uniform")}


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
    """A rule, a named sequence (`gaia`, `sandwich`), or rules joined by commas."""
    if spec in SEQUENCES:
        return SEQUENCES[spec]
    rules = tuple(r.strip() for r in spec.split(",") if r.strip())
    unknown = [r for r in rules if r not in RULES]
    if not rules or unknown:
        raise BadInput(f"unknown sampling rule {', '.join(unknown) or spec!r} (known: {', '.join(RULES)}, "
                       f"or a sequence: {', '.join(SEQUENCES)})")
    return rules


class PathSampler:
    """Draws archs from `space` by cycling through `rules`."""

    def __init__(self, space: SearchSpace, rules: str | tuple[str, ...] = "gaia", seed: int = 0):
        self.space = space
        self.rules = parse_rules(rules) if isinstance(rules, str) else tuple(rules)
        if rules == "gaia" and not space.anchors:
            self.rules = _each_then_uniform(("max", "min", *ONE_SIDED))
        self.rng = np.random.default_rng(seed)
        self.position = 0

    def next(self) -> Arch:
        rule = self.rules[self.position % len(self.rules)]
        self.position += 1
        return sample(self.space, rule, self.rng)

    def state(self) -> dict[str, Any]:
        return {"position": self.position, "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
        self.rng.bit_generator.state = state["rng"]
