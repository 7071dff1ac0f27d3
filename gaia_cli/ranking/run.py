"""`rank` as a library call: the candidates, the two stages (and the 1x reference), shards, merging, the
gaia/ranking artifact, and `--compare`.

Stage 1 evaluates every candidate directly. Stage 2 keeps the best of each (scale, depth range) group, then
the top `keep` of those group bests (rounded up, at least one), fine-tunes each with `schedule`, and the best
after fine-tuning wins. With `reference` every candidate is also fine-tuned with that schedule (1x), and stage
2's schedule is run on every candidate too, so that both rankings can be set against it (Kendall tau-b and
Spearman); the selection still uses only the kept ones.

With `-o`, each finished candidate goes to the journal OUTPUT.journal.jsonl at once. `shard` (I/N, I from 0)
runs the candidates of a stage whose position in it is I modulo N; a run that finds a stage unfinished (by
other shards) writes a partial ranking (`complete: false`) and stops. `merge` joins the journals of such
runs (same command line), and the run continues with the next stage.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from gaia_cli import console
from gaia_cli.artifacts import json_artifact, read_input, read_json_artifact
from gaia_cli.checks import check_options, parse_shard
from gaia_cli.data.coco import load_coco
from gaia_cli.devices import resolve as resolve_device
from gaia_cli.engine.metrics import label_map
from gaia_cli.engine.recipes import RECIPES
from gaia_cli.engine.schedule import FINETUNE_SCHEDULES
from gaia_cli.errors import BadInput
from gaia_cli.latency.profile import load_profile
from gaia_cli.nn.io import read_header
from gaia_cli.ranking.candidates import (Candidate, DepthRanges, groups, keep_count, read_candidates,
                                         sample_in_groups)
from gaia_cli.ranking.correlation import correlation
from gaia_cli.ranking.journal import STAGES, Journal, differences, journal_for, journal_path, read, work_folder
from gaia_cli.ranking.settings import DEPTH_RANGES, Settings
from gaia_cli.ranking.stages import Target, evaluate_candidate
from gaia_cli.ranking.workers import Pool
from gaia_cli.search.evolution import Budget
from gaia_cli.space.arch import Arch, read_space

METRICS = ("AP", "AP50", "AP75", "loss")  # loss: lower is better
REFERENCES = ("1x",)


@dataclasses.dataclass
class RankRequest:
    settings: Settings = dataclasses.field(default_factory=Settings)  # the candidates' measuring and fine-tuning
    candidates: str | None = None
    latency: float | None = None
    device: str | None = None  # the deployment target: a latency profile (where to compute: settings.run.device)
    flops: float | None = None
    space: str | None = None
    per_group: int = 5
    depth_ranges: int = DEPTH_RANGES  # total depth binned into this many ranges per scale
    keep: float = 0.5
    metric: str = "AP"
    reference: str | None = None
    output: Path | None = None
    shard: str | None = None
    merge: list[str] = dataclasses.field(default_factory=list)
    compare: list[str] = dataclasses.field(default_factory=list)
    devices: str | None = None


# ------------------------------------------------------------------------------------------------ checks


def _check(r: RankRequest) -> None:
    s = r.settings
    check_options({"--per-group": r.per_group, "--depth-ranges": r.depth_ranges, "--keep": r.keep, "--epochs": s.epochs,
                   "--lr-per-image": s.lr_per_image, "--batch-size": s.batch_size, "--warmup-iters": s.warmup_iters,
                   "--workers": s.run.workers, "--recalibrate": s.recalibrate, "--latency": r.latency,
                   "--flops": r.flops, "--seed": s.run.seed}, "rank")

    if s.schedule not in FINETUNE_SCHEDULES:
        raise BadInput(f"--schedule must be one of {', '.join(FINETUNE_SCHEDULES)}")
    if r.metric not in METRICS:
        raise BadInput(f"--metric must be one of {', '.join(METRICS)}")

    if s.recipe not in RECIPES["finetune"]:
        raise BadInput(f"--recipe must be one of {', '.join(RECIPES['finetune'])} (got {s.recipe!r})")
    if r.reference is not None and r.reference not in REFERENCES:
        raise BadInput(f"--reference must be {' or '.join(REFERENCES)} (the full fine-tuning schedule)")
    for name, value in (("--weights", s.weights), ("--data", s.data), ("--val", s.val)):
        if value is None:
            raise BadInput(f"give {name} (or --compare A B to compare two rankings)")
    if s.run.resume and s.run.restart:
        raise BadInput("--resume continues the interrupted ranking and --restart discards it: give one, not both")
    for flag, given in (("--shard", r.shard), ("--resume", s.run.resume), ("--restart", s.run.restart)):
        if given and journal_for(r.output) is None:
            raise BadInput(f"{flag} needs -o FILE: the journal of finished candidates goes beside the output")
    if r.candidates is None and r.latency is None and r.flops is None:
        raise BadInput("give the candidates: --candidates FILE, or a budget (--latency MS --device D, --flops G)")
    if r.latency is not None and r.device is None:
        raise BadInput("--latency needs --device PROFILE (v100, or a profile file from bench-latency)")


def parse_devices(spec: str | None) -> list[str]:
    if spec is None:
        return []
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices:
        raise BadInput("--devices needs a comma list, e.g. cuda:0,cuda:1")
    for d in devices:
        if d != "cpu" and not (d == "cuda" or d.startswith("cuda:")):
            raise BadInput(f"--devices {d!r}: expected cpu, cuda or cuda:N")
    return devices


# ------------------------------------------------------------------------------------------- candidates


@dataclasses.dataclass
class Supernet:
    """What the ranking needs to know of the supernet without loading its weights: its space and file."""

    space: Any
    classes: int
    ref: Any
    detector: dict[str, Any]
    trained: list = dataclasses.field(default_factory=list)  # the sub-spaces its phases trained (GAIA 3.2.1)

    def in_trained(self, arch: Arch) -> bool:
        return not self.trained or any(sub.contains(arch) for sub in self.trained)


def read_supernet(spec: str) -> Supernet:
    header = read_header(spec, ("supernet",), "a supernet (from train-supernet): rank chooses among its paths")
    space, training = header.space, header.meta.get("training") or {}
    return Supernet(space, len(header.classes) + 1, header.ref, space.detector,
                    trained_spaces(space, training.get("phases") or [], str(header.path)))


def trained_spaces(space, phases: list[dict[str, Any]], source: str) -> list:
    """The sub-spaces a supernet's phases trained (its whole space for a one-phase run; ABPS's ar101, ar77 and
    ar50 inside ar50to101): GAIA groups candidates "in each sub search space", and an arch outside all of them
    was never trained. A phase whose space cannot be read again counts as the whole space, with a warning."""
    out = []
    for phase in phases:
        name = phase.get("space") if isinstance(phase, dict) else None
        if name is None or name == space.name:
            return []
        try:
            sub = read_space(name)
        except BadInput:
            console.warn(f"{source}: its phase space {name!r} cannot be read: candidates are drawn from its whole space")
            return []
        if not space.covers(sub):
            return []
        out.append(sub)
    return out


def candidates_of(r: RankRequest, net: Supernet) -> tuple[list[Candidate], dict[str, Any]]:
    """The candidates (from --candidates, or sampled within the budget by GAIA's rule) with their costs."""
    space, seed = net.space, r.settings.run.seed
    if r.space is not None:
        space = read_space(r.space)
        if not net.space.covers(space):
            raise BadInput(f"--space {space.name!r} is not inside the supernet's space {net.space.name!r}")
    profile = load_profile(r.device) if r.device else None
    budget = Budget(r.latency, profile, r.flops, net.classes, net.detector) \
        if (r.latency is not None or r.flops is not None) else None
    about: dict[str, Any] = {"space": space.name}
    ranges = DepthRanges.of(space, r.depth_ranges)  # the union space's ranges, for every sub-space alike
    if r.candidates is not None:
        archs, read_about = read_candidates(r.candidates)
        source = read_about["source"]
        other = (read_about.get("supernet") or {}).get("sha256")
        if other is not None and other != net.ref.sha256:
            raise BadInput(f"is a ranking of another supernet (sha256 {other[:12]}...; --weights is "
                           f"{net.ref.sha256[:12]}...)", source)
        for arch in archs:
            space.check(arch, f"{source}: candidate {arch}")
        untrained = sum(not net.in_trained(a) for a in archs)
        if untrained:
            console.warn(f"{source}: {untrained} of {len(archs)} candidates lie outside every sub-space the "
                         f"supernet's phases trained ({', '.join(s.name for s in net.trained)})")
        if read_about["repeated"]:
            console.warn(f"{source}: {read_about['repeated']} repeated arch(s) ranked once")
        about.update(candidates=source, candidates_ref=read_about["ref"])
        if budget is not None:
            fitting = [a for a in archs if budget.meets(a)]
            if not fitting:
                cheapest = min(archs, key=lambda a: budget.costs(a)[1])
                raise BadInput(f"none of the {len(archs)} candidates meets the budget: the cheapest, {cheapest}, "
                               f"needs {budget.describe(cheapest)}", source)
            archs = fitting
    else:
        if net.trained and r.space is None:  # "in each sub search space" the supernet trained
            archs = list(dict.fromkeys(a for i, sub in enumerate(net.trained)
                                       for a in sample_in_groups(sub, budget.meets, r.per_group, seed + i, ranges)))
            about["within"] = [sub.name for sub in net.trained]
        else:
            archs = sample_in_groups(space, lambda a: net.in_trained(a) and budget.meets(a), r.per_group, seed, ranges)
        if not archs:
            cheapest = space.min_arch
            raise BadInput(f"no arch of space {space.name!r} meets the budget: its cheapest, {cheapest}, needs "
                           f"{budget.describe(cheapest)}")
        about["sampled"] = {"per_group": r.per_group, "seed": seed}
    costs = budget or Budget(None, profile, float("inf"), net.classes, net.detector)
    out = []
    for i, arch in enumerate(archs):
        latency, gflops = costs.costs(arch)
        out.append(Candidate(i, arch, gflops, latency, ranges.of_total(sum(arch.depth))))
    about["depth_ranges"] = {"count": r.depth_ranges, "width": ranges.width, "from": ranges.low}
    return out, about


# ------------------------------------------------------------------------------------------------ scores


def score(metrics: dict[str, Any] | None, metric: str) -> float:
    """Higher is better: the metric, or minus the loss; a missing or undefined value is the worst."""
    value = (metrics or {}).get(metric)
    if value is None:
        return float("-inf")
    return -value if metric == "loss" else value


def best_of(cands: list[Candidate], stage: str, results: dict, metric: str) -> Candidate:
    """The best candidate by `stage`'s metric; a tie goes to the one listed first."""
    return max(cands, key=lambda c: (score(results.get((stage, c.id)), metric), -c.id))


def selection(cands: list[Candidate], results: dict, metric: str, keep: float):
    """GAIA's stage 2 set: (each group's best, the group bests ranked, the kept ones)."""
    bests = {g: best_of(members, "direct", results, metric) for g, members in groups(cands).items()}
    ranked = sorted(bests.values(), key=lambda c: (-score(results.get(("direct", c.id)), metric), c.id))
    return bests, ranked, ranked[:keep_count(len(ranked), keep)]


# ------------------------------------------------------------------------------------------------- run


def rank(r: RankRequest) -> None:
    """`gaia rank`: run, write the ranking (stdout or -o), then, once it is complete and written, remove the
    journal and the work folder (the ranking holds all they did, as a finished training drops its checkpoint)."""
    out = run(r)
    console.emit_json(out, r.output)
    if journal_for(r.output) is not None and not r.compare and out.get("complete"):
        import shutil

        journal_path(r.output).unlink(missing_ok=True)
        shutil.rmtree(work_folder(r.output), ignore_errors=True)


def run(r: RankRequest) -> dict[str, Any]:
    if r.compare:
        return compare(r.compare, r.metric)
    _check(r)
    shard = parse_shard(r.shard)
    devices = parse_devices(r.devices)

    s = r.settings
    net = read_supernet(s.weights)
    cands, about = candidates_of(r, net)
    train, val = load_coco(s.data, s.images), load_coco(s.val)
    label_map([c["name"] for c in train.categories], val)  # val's categories must be the training set's
    if len(train.images) < s.batch_size:
        raise BadInput(f"the training set has {len(train.images)} images, fewer than --batch-size {s.batch_size}",
                       s.data)
    key = run_key(r, net, train, val, cands)
    results, journal = _open_journal(r, key)
    work = work_folder(r.output) if journal_for(r.output) is not None else None
    runner = Runner(dataclasses.replace(s, work=work), s.run.device, devices, journal, results)
    inputs = [net.ref, train.ref, val.ref] + ([about["candidates_ref"]] if "candidates_ref" in about else [])
    build = lambda waiting=None: ranking(r, net, cands, about, results, runner.seconds, inputs, waiting)  # noqa: E731

    console.info(f"ranking {len(cands)} candidates of {about['space']} in {len(groups(cands))} (scale, depth range) "
                 f"groups (total depth in ranges of {about['depth_ranges']['width']}); stage 1: direct evaluation on {val.source}")
    stage_plan: list[tuple[str, Callable[[], list[Candidate]], str]] = [
        ("direct", lambda: cands, "direct"),
        ("finetuned", lambda: _stage2(cands, results, r), s.schedule),
    ]
    if r.reference:
        stage_plan.append(("reference", lambda: cands, r.reference))
    try:
        for stage, wanted, schedule in stage_plan:
            todo = wanted()
            mine = [c for i, c in enumerate(todo) if i % shard[1] == shard[0]]
            runner.run_stage(stage, [c for c in mine if (stage, c.id) not in results], schedule, len(todo))
            missing = [c for c in todo if (stage, c.id) not in results]
            if missing:
                console.info(f"stage {stage}: {len(missing)} candidate(s) are left to other shards; merge the "
                             f"journals with --merge to go on")
                return build({"stage": stage, "candidates": [c.id for c in missing]})
    finally:
        runner.close()
    out = build()
    best = out["best"]
    console.info(f"best: candidate {best['candidate']} {Arch.from_dict(best)} ({r.metric} {_fmt(best['score'])} "
                 f"after {s.schedule} fine-tuning)")
    return out


def _stage2(cands: list[Candidate], results: dict, r: RankRequest) -> list[Candidate]:
    _, ranked, kept = selection(cands, results, r.metric, r.keep)
    console.info(f"stage 2: {len(ranked)} group bests, the top {len(kept)} kept; fine-tuning with --schedule "
                 f"{r.settings.schedule}" + (" (and every other candidate, for --reference)" if r.reference else ""))
    if r.reference:  # the study needs the fast schedule's ranking of every candidate; the kept ones first
        return kept + [c for c in cands if c not in kept]
    return kept


def run_key(r: RankRequest, net: Supernet, train, val, cands: list[Candidate]) -> dict[str, Any]:
    """What a resumed run or a merged part must share with this run."""
    s = r.settings
    return json.loads(json.dumps({
        "weights": net.ref.sha256, "data": train.ref.sha256, "val": val.ref.sha256,
        "labels": read_input(s.labels).ref.sha256 if s.labels else None,
        "candidates": [c.arch.as_dict() for c in cands],
        "settings": {"per_group": r.per_group, "depth_ranges": r.depth_ranges, "keep": r.keep, "schedule": s.schedule, "epochs": s.epochs,
                     "lr_per_image": s.lr_per_image, "recipe": s.recipe, "batch_size": s.batch_size, "warmup_iters": s.warmup_iters,
                     "recalibrate": s.recalibrate, "metric": r.metric, "reference": r.reference, "seed": s.run.seed},
    }))


def _what_differs(keys: list[str]) -> str:
    names = {"weights": "the supernet (--weights)", "data": "--data", "val": "--val", "labels": "--labels",
             "candidates": "the candidates", "settings": "the settings"}
    return ", ".join(names.get(k, k) for k in keys)


def _open_journal(r: RankRequest, key: dict[str, Any]) -> tuple[dict, Journal | None]:
    """The results so far (from --merge parts and a resumed journal) and the journal to append to."""
    results: dict[tuple[str, int], dict[str, Any]] = {}
    records: list[dict[str, Any]] = []

    def take(path: Path, shown: str) -> None:
        part_key, part_records = read(path)
        differs = differences(part_key, key)
        if differs:
            raise BadInput(f"is the journal of another ranking (it differs in {_what_differs(differs)}); merge "
                           f"or resume with the same command line", shown)
        for rec in part_records:
            if (rec["stage"], rec["id"]) not in results and 0 <= rec["id"] < len(key["candidates"]) \
                    and rec.get("arch") == key["candidates"][rec["id"]]:
                results[(rec["stage"], rec["id"])] = rec["metrics"]
                records.append(rec)

    for part in r.merge:
        path = Path(part)
        if not path.name.endswith(".journal.jsonl"):
            path = journal_path(path)  # a partial ranking: its journal lies beside it
        take(path, part)
    path = journal_for(r.output)
    if path is None:
        return results, None
    if path.exists() or path.is_symlink():
        if r.settings.run.restart:
            path.unlink()
            console.info(f"--restart: discarded the journal {path}")
        elif not r.settings.run.resume:
            raise BadInput("holds an interrupted ranking: pass --resume to continue it, or --restart to discard "
                           "it and start over", path)
        else:
            take(path, str(path))
    if r.settings.run.restart and work_folder(r.output).is_dir():
        import shutil

        shutil.rmtree(work_folder(r.output))
    journal = Journal.create(path, key, records)
    if records:
        console.info(f"{len(records)} finished evaluation(s) taken from "
                     f"{'the journal' if not r.merge else 'the merged journals'}")
    return results, journal


class Runner:
    """Runs a stage's candidates here (one process) or on --devices (one worker process each), records each
    finished one in the results and the journal."""

    def __init__(self, settings, compute_device: str, devices: list[str], journal: Journal | None, results: dict):
        self.settings, self.compute_device, self.devices = settings, compute_device, devices
        if len(devices) == 1:  # one device: this process computes there
            self.compute_device = devices[0]
        self.journal, self.results = journal, results
        self.seconds: dict[str, float] = {}
        self._target = None
        self._temp = None
        self._pool = None

    def _work(self) -> None:
        if self.settings.work is None:
            import tempfile

            self._temp = tempfile.TemporaryDirectory(prefix="gaia-rank.")
            self.settings.work = Path(self._temp.name)

    def target(self):
        if self._target is None:
            self._target = Target(self.settings, resolve_device(self.compute_device))
        return self._target

    def record(self, stage: str, cand: Candidate, metrics: dict[str, Any], seconds: float, done: int,
               total: int) -> None:
        rec = {"stage": stage, "id": cand.id, "arch": cand.arch.as_dict(), "metrics": metrics,
               "seconds": round(seconds, 3)}
        if self.journal is not None:
            self.journal.append(rec)
        self.results[(stage, cand.id)] = metrics
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        loss = metrics.get("loss")
        console.info(f"{stage} {done}/{total}: candidate {cand.id} {cand.arch}: AP {metrics['AP']:.2f}, "
                     f"loss {'-' if loss is None else f'{loss:.4f}'} ({seconds:.1f} s)")

    def run_stage(self, stage: str, todo: list[Candidate], schedule: str, total: int) -> None:
        if not todo:
            return
        self._work()
        if len(self.devices) > 1:
            if self._pool is None:
                self._pool = Pool(self.settings, self.devices)
            self._pool.run(stage, schedule, todo,
                           lambda cand, metrics, secs, done: self.record(stage, cand, metrics, secs, done, len(todo)))
            return

        for done, cand in enumerate(todo, start=1):
            start = time.perf_counter()
            metrics = evaluate_candidate(self.target(), stage, cand, schedule)
            self.record(stage, cand, metrics, time.perf_counter() - start, done, len(todo))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._temp is not None:
            self._temp.cleanup()


# ------------------------------------------------------------------------------------------- the artifact


def ranking(r: RankRequest, net: Supernet, cands: list[Candidate], about: dict[str, Any], results: dict,
            seconds: dict[str, float], inputs, waiting: dict[str, Any] | None) -> dict[str, Any]:
    metric = r.metric
    direct_done = all(("direct", c.id) in results for c in cands)
    bests, ranked, kept = selection(cands, results, metric, r.keep) if direct_done else ({}, [], [])
    kept_ids = {c.id for c in kept}
    finetuned_done = direct_done and all(("finetuned", c.id) in results for c in kept)
    winner = best_of(kept, "finetuned", results, metric) if finetuned_done and kept else None
    rows = []
    for c in cands:
        row = {"id": c.id, "arch": c.arch.as_dict(), "group": {"scale": c.group[0], "depth": list(c.group[1])},
               "gflops": c.gflops, "latency_ms": c.latency_ms,
               **{stage: results.get((stage, c.id)) for stage in STAGES}}
        row["stage"], row["why"] = _why(c, results, metric, bests, ranked, kept_ids, winner, r)
        rows.append(row)
    s = r.settings
    payload: dict[str, Any] = {
        "complete": waiting is None,
        "supernet": {**net.ref.as_dict(), "space": net.space.name},
        "space": about["space"],
        "metric": metric,
        "settings": {"per_group": r.per_group, "depth_ranges": about["depth_ranges"], "keep": r.keep,
                     "schedule": s.schedule, "recipe": s.recipe,
                     "recalibrate": s.recalibrate, "reference": r.reference, "within": about.get("within"), "seed": s.run.seed,
                     "budget": {"latency_ms": r.latency, "device": r.device, "gflops": r.flops},
                     "candidates": about.get("candidates") or about.get("sampled")},
        "groups": [{"scale": g[0], "depth": list(g[1]), "candidates": [c.id for c in members],
                    "best": bests[g].id if g in bests else None} for g, members in groups(cands).items()],
        "kept": [c.id for c in kept],
        "candidates": rows,
        "best": None,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    if waiting is not None:
        payload["waiting"] = waiting
    if winner is not None:
        payload["best"] = {**winner.arch.as_dict(), "space": net.space.name, "candidate": winner.id,
                           "metric": metric, "score": (results[("finetuned", winner.id)] or {}).get(metric),
                           "gflops": winner.gflops, "latency_ms": winner.latency_ms}
    if r.reference and waiting is None:
        payload["correlation"] = study(cands, results, metric)
        payload["regret"] = regret(cands, results, metric, winner)
    return json_artifact("gaia/ranking", payload, inputs)


def _span(depths: tuple[int, int]) -> str:
    return str(depths[0]) if depths[0] == depths[1] else f"{depths[0]}-{depths[1]}"


def _why(c, results, metric, bests, ranked, kept_ids, winner, r) -> tuple[str, str]:
    if ("direct", c.id) not in results:
        return "pending", "not evaluated yet"
    if not bests:
        return "direct", "evaluated directly; the other candidates are not yet"
    best = bests[c.group]
    value = lambda cand, stage: (results.get((stage, cand.id)) or {}).get(metric)  # noqa: E731
    if best.id != c.id:
        return "direct", (f"not the best of its group (scale {c.group[0]}, total depth {_span(c.group[1])}): {metric} "
                          f"{_fmt(value(c, 'direct'))} against {_fmt(value(best, 'direct'))} of candidate {best.id}")
    place = [x.id for x in ranked].index(c.id) + 1
    if c.id not in kept_ids:
        return "direct", (f"the best of its group, but {place} of {len(ranked)} group bests: not in the top "
                          f"{r.keep:.0%}")
    if ("finetuned", c.id) not in results:
        return "pending", f"kept ({place} of {len(ranked)} group bests); not fine-tuned yet"
    if winner is not None and winner.id == c.id:
        return "finetuned", f"kept ({place} of {len(ranked)} group bests); the best after fine-tuning ({r.settings.schedule})"
    return "finetuned", (f"kept ({place} of {len(ranked)} group bests); after fine-tuning {metric} "
                         f"{_fmt(value(c, 'finetuned'))} against {_fmt(value(winner, 'finetuned') if winner else None)} "
                         f"of the best")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def study(cands: list[Candidate], results: dict, metric: str) -> dict[str, Any]:
    """Kendall tau-b and Spearman of direct and of fast fine-tuning against the 1x reference (GAIA Fig. 2a)."""
    out = {"metric": metric}
    for stage in ("direct", "finetuned"):
        pairs = [(results[(stage, c.id)].get(metric), results[("reference", c.id)].get(metric)) for c in cands
                 if (stage, c.id) in results and ("reference", c.id) in results]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        out[f"{stage}_vs_reference"] = correlation([a for a, _ in pairs], [b for _, b in pairs])
    return out


def regret(cands: list[Candidate], results: dict, metric: str, winner: Candidate | None) -> dict[str, Any]:
    """The winner's reference score against the best reference score of all candidates."""
    scored = [(score(results.get(("reference", c.id)), metric), c) for c in cands]
    top_score, top = max(scored, key=lambda t: (t[0], -t[1].id))
    value = lambda c: (results.get(("reference", c.id)) or {}).get(metric)  # noqa: E731
    out = {"metric": metric, "best_candidate": top.id, "best": value(top),
           "winner": winner.id if winner else None, "winner_score": value(winner) if winner else None}
    if out["best"] is not None and out["winner_score"] is not None:
        out["regret"] = abs(out["best"] - out["winner_score"])
    return out


# -------------------------------------------------------------------------------------------- --compare


def _stage_spec(spec: str) -> tuple[str, str | None]:
    head, _, tail = spec.rpartition(":")
    if head and tail in STAGES:
        return head, tail
    return spec, None


def compare(specs: list[str], metric: str) -> dict[str, Any]:
    """Kendall tau-b and Spearman between two rankings (FILE or FILE:STAGE) over their common candidates."""
    if len(specs) != 2:
        raise BadInput(f"--compare takes two rankings (FILE or FILE:STAGE, STAGE one of {', '.join(STAGES)}), "
                       f"got {len(specs)}")
    if metric not in METRICS:
        raise BadInput(f"--metric must be one of {', '.join(METRICS)}")
    sides = []
    for spec in specs:
        path, stage = _stage_spec(spec)
        art = read_json_artifact(path, "gaia/ranking")
        rows = art.data.get("candidates")
        if not isinstance(rows, list):
            raise BadInput("a gaia/ranking needs 'candidates', a list", path)
        by_arch = {}
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("arch"), dict):
                by_arch[json.dumps(Arch.from_dict(row["arch"], path).as_dict())] = row
        sides.append((path, stage, by_arch))
    common = [k for k in sides[0][2] if k in sides[1][2]]
    if len(common) < 2:
        raise BadInput(f"{specs[0]} and {specs[1]} have {len(common)} candidate(s) in common; a rank correlation "
                       f"needs at least 2")
    chosen = []
    for path, stage, by_arch in sides:
        if stage is None:  # the deepest stage every common candidate reached
            stage = next((s for s in reversed(STAGES) if all(by_arch[k].get(s) for k in common)), None)
            if stage is None:
                raise BadInput("has no stage that every common candidate reached", path)
        missing = [k for k in common if not by_arch[k].get(stage) or by_arch[k][stage].get(metric) is None]
        if missing:
            raise BadInput(f"{len(missing)} of the {len(common)} common candidates have no {stage} {metric}", path)
        chosen.append((path, stage, [by_arch[k][stage][metric] for k in common]))
    (pa, sa, a), (pb, sb, b) = chosen
    return {"a": {"ranking": pa, "stage": sa}, "b": {"ranking": pb, "stage": sb}, "metric": metric,
            **correlation(a, b)}
