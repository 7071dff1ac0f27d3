"""`search` as a library call: the budget, the objective, the evolution, the gaia/arch (or arch-set) out."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from gaia_cli import console, devices
from gaia_cli.artifacts import json_artifact
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco
from gaia_cli.engine.metrics import evaluate, label_map
from gaia_cli.engine.recalibration import recalibration_batches
from gaia_cli.errors import BadInput
from gaia_cli.latency.profile import load_profile
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.detector import extract
from gaia_cli.nn.io import load_detector
from gaia_cli.pathfilter.accept import Acceptance, AcceptingRows
from gaia_cli.pathfilter.filterfile import load_filter
from gaia_cli.search.evolution import Budget, Evolution, Settings
from gaia_cli.space.arch import Arch, read_space
from gaia_cli.space.flops import summary


@dataclasses.dataclass
class SearchRequest:
    space: str = "ar50to101"
    latency: float | None = None
    device: str | None = None
    flops: float | None = None
    weights: str | None = None
    data: str | None = None
    recalibrate: int = 200
    recalibrate_data: str | None = None
    compute_device: str = "auto"
    classes: int = 81
    pareto: str | None = None
    top: int = 1
    settings: Settings = dataclasses.field(default_factory=Settings)
    pathfilter: str | None = None  # score paths by a path filter (DetOFA 3.3) instead


def supernet_objective(r: SearchRequest, space) -> tuple[str, Callable[[Arch], float], int]:
    """COCO AP of each path, extracted and BN-recalibrated (cached by the evolution)."""
    import torch

    if r.data is None:
        raise BadInput("--weights needs --data (the validation set the paths are scored on)")
    device = devices.resolve(r.compute_device)
    model, meta = load_detector(r.weights)
    if meta["role"] != "supernet":
        raise BadInput("--weights must be a supernet (role supernet) to search its paths", r.weights)
    if not meta["space"].covers(space):
        raise BadInput(f"the search space {space.name!r} is not inside the supernet's {meta['space'].name!r}")
    coco = load_coco(r.data)
    label_map(meta["classes"], coco)
    calibration = coco if r.recalibrate_data is None else load_coco(r.recalibrate_data)

    def ap(arch: Arch) -> float:
        model.set_arch(arch)
        static = extract(model, arch).to(device)
        if r.recalibrate:
            recalibrate(static, recalibration_batches(calibration, 4, 0), r.recalibrate)
        with console.quietly():
            return evaluate(static, meta["classes"], coco, device)["AP"]

    torch.set_grad_enabled(False)
    return "supernet-ap", ap, len(meta["classes"]) + 1


def run(r: SearchRequest) -> dict[str, Any]:
    space = read_space(r.space)
    profile = load_profile(r.device) if r.device else None

    check_options({"--latency": r.latency, "--flops": r.flops, "--recalibrate": r.recalibrate,
                   "--classes": r.classes, "--top": r.top}, "search")
    budgets = [r.latency] if r.pareto is None else _parse_pareto(r.pareto)
    if r.pareto is not None and profile is None:
        raise BadInput("--pareto lists latency budgets: give --device PROFILE")
    batch = None
    if r.weights and r.pathfilter:
        raise BadInput("give --weights (measured AP) or --pathfilter (its score), not both")
    scorer = None
    if r.pathfilter:
        scorer = load_filter(r.pathfilter)
        scorer.check_space(space, r.pathfilter)
    pruned, shared = _pruned_rows(space, scorer) if space.pruning is not None else (None, False)
    if scorer is not None:
        name, classes = "pathfilter", r.classes
        # the pruned space's own filter: the scores its thresholds needed are not computed again
        raw = pruned.objective(scorer.score) if shared else scorer.score

        # a score ranks paths only within its bucket: compared across buckets as standardised per bucket
        def batch(archs, raw=raw, scorer=scorer):
            return scorer.standardize(archs, np.asarray(raw(archs))).tolist()

        objective = lambda arch: float(batch([arch])[0])  # noqa: E731
    elif r.weights:
        name, objective, classes = supernet_objective(r, space)
    else:
        name, classes = "flops-proxy", r.classes
        objective = None
    results = []
    refused = {"operation": 0, "score": 0}
    for latency in budgets:
        budget = Budget(latency, profile, r.flops, classes, space.detector)
        score = objective or (lambda arch, b=budget: b.costs(arch)[1])
        evolution = Evolution(space, budget, score, dataclasses.replace(r.settings), batch,
                              pruned.allows if pruned is not None else None)
        ranked = evolution.run()
        console.info(f"budget {_budget_text(latency, r.flops, profile)}: {budget.evaluations:,} candidates, "
                     f"{len(ranked):,} distinct archs scored")
        if pruned is not None:
            c = pruned.take_counts()
            for key in refused:
                refused[key] += c[f"refused_{key}"]
            console.info(f"pruned space: {c['refused_operation'] + c['refused_score']:,} of {c['judged']:,} new candidates "
                         f"within the budget refused ({c['refused_operation']:,} for a removed operation, "
                         f"{c['refused_score']:,} for a score below their bucket's threshold)")
        for value, arch in ranked[: r.top if r.pareto is None else 1]:
            latency_ms, gflops = budget.costs(arch)
            results.append({
                **arch.as_dict(), "space": space.name,
                "latency_ms": latency_ms, "device": profile.name if profile else None,
                "gflops": gflops, "mparams": summary(arch, classes, space.detector)["detector"]["mparams"],
                "objective": {"name": name, "score": value, "measured": name == "supernet-ap"},
                "budget": {"latency_ms": latency, "gflops": r.flops},
            })
    settings = {**dataclasses.asdict(r.settings), "classes": classes, "pruned": pruned is not None}
    if pruned is not None:
        p = pruned.acceptance.pruning
        settings["pruning"] = {"strategy": p.settings.get("strategy"),
                               "filter": {"path": p.filter_path, "sha256": p.filter_sha256}, "refused": refused}
    if len(results) == 1:
        return json_artifact("gaia/arch", {**results[0], "search": settings})
    return json_artifact("gaia/arch-set", {"archs": results, "search": settings})


def _pruned_rows(space, scorer):
    """(The verdicts of a pruned space on the search's candidates, whether they share the objective's
    `scorer`: the same file as the pruned space's filter). The filter, when the thresholds need it, is
    checked now (missing or changed: refused before the search starts)."""
    same = scorer is not None and scorer.ref.sha256 == space.pruning["filter"]["sha256"]
    acceptance = Acceptance(space, scorer if same else None)
    if acceptance.needs_scores:
        acceptance.scorer  # noqa: B018 (loads it)
    return AcceptingRows(acceptance), same


def _parse_pareto(spec: str) -> list[float]:
    try:
        values = sorted(float(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"--pareto {spec!r}: expected latency budgets in ms, such as 16,20,25") from None
    if not values:
        raise BadInput("--pareto needs positive latency budgets")

    for value in values:
        check_options({"--pareto": value}, "search")
    return values


def _budget_text(latency, flops, profile) -> str:
    parts = ([f"{latency:g} ms on {profile.name}"] if latency is not None else []) + ([f"{flops:g} GFLOPs"] if flops else [])
    return " and ".join(parts)
