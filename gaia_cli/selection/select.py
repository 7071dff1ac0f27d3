"""`select-data` as a library call: features of the target and the upstream datasets, then a strategy.

Steps: read the datasets (each upstream as NAME=PATH) and put their categories in one space (the unified
ids of `--labels`, else the target's categories matched by name); refuse a target that shares no category
with any upstream before any work; load the model (a static model, or a supernet's `--arch` path with its
BN statistics recalibrated on upstream images); bring each dataset's `gaia/features` cache up to date
(only what is missing is computed; under `torchrun` every process takes its share); then search the
upstream vectors chunk by chunk against the target's (`search.py`) and choose the images (`strategies.py`).
The result is a `gaia/selection` (see `extra.py`), which `finetune --extra-data` reads.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from gaia_cli import console, devices
from gaia_cli.artifacts import json_artifact, read_input, resolve_path
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import IGNORE_LABEL, DetectionDataset, collate_detection
from gaia_cli.data.extra import KIND
from gaia_cli.engine import distributed as ddp
from gaia_cli.engine.recalibration import recalibration_batches, select_path
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import keys
from gaia_cli.labels.space import read_labels
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.io import load_detector
from gaia_cli.selection.features import Cache, Identity, cache_path, image_vectors, model_digest, update_cache
from gaia_cli.selection.request import SelectRequest
from gaia_cli.selection.search import Chunk, Targets
from gaia_cli.selection.strategies import STRATEGIES, candidates, choose

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TARGET = "target"
BLOCK = 256  # images per gathered block under torchrun (and per write otherwise)


@dataclasses.dataclass
class Source:
    """A dataset to compute features of: its name, COCO data and category id -> id in the shared space."""

    name: str
    coco: Any
    ids: dict[int, int]  # the dataset's category id -> the id stored in its cache


def parse_upstream(specs: list[str]) -> list[tuple[str, str]]:
    if not specs:
        raise BadInput("give at least one upstream dataset with --upstream NAME=PATH")
    out: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise BadInput(f"--upstream {spec!r}: expected NAME=PATH (e.g. coco=instances_train2017.json)")
        if not NAME.fullmatch(name) or name == TARGET:
            raise BadInput(f"--upstream {spec!r}: NAME must be letters, digits, '_', '.' or '-' (not {TARGET!r})")
        if any(name == n for n, _ in out):
            raise BadInput(f"--upstream names {name!r} twice")
        out.append((name, path))
    return out


def load_dataset(path: str, role: str):
    """A COCO dataset whose image folder must exist: a missing folder is one line, not a warning per image."""
    coco = load_coco(path, check_files=False)
    first = coco.images[0]
    if not coco.image_path(first).is_file():
        raise BadInput(f"{role}: its image folder is missing (no {first['file_name']} under {coco.image_root})", path)
    return load_coco(path, coco.image_root)


def shared_ids(sources_cats: list[list[dict]], names: list[str], labels) -> list[dict[int, int]]:
    """Per dataset, category id -> the id its features are stored under: the unified id with a label
    space (a dataset the space names is mapped as unify-labels mapped it; others by name), else its own."""
    if labels is None:
        return [{c["id"]: c["id"] for c in cats} for cats in sources_cats]
    return [labels.unified_ids(cats, name if name != TARGET else None) for cats, name in zip(sources_cats, names)]


def target_space(target: Source, upstream: list[Source], labels) -> tuple[list[dict[str, Any]], list[dict[int, int]]]:
    """The target's categories [{"id", "name"}] (ids as stored), and per upstream dataset its stored
    category id -> the target's id (categories the target lacks left out)."""
    if labels is not None:
        names = {c["id"]: c["name"] for c in labels.categories}
        cats = [{"id": i, "name": names[i]} for i in sorted(set(target.ids.values()))]
        wanted = {c["id"] for c in cats}
        return cats, [{i: i for i in set(u.ids.values()) if i in wanted} for u in upstream]
    cats = [{"id": c["id"], "name": c["name"]} for c in target.coco.categories]
    by_key: dict[str, int] = {}
    for c in cats:
        for k in keys(c["name"]):
            by_key.setdefault(k, c["id"])
    maps = []
    for u in upstream:
        m = {}
        for c in u.coco.categories:
            hit = next((by_key[k] for k in keys(c["name"]) if k in by_key), None)
            if hit is not None:
                m[c["id"]] = hit
        maps.append(m)
    return cats, maps


def load_model(r: SelectRequest, device: torch.device, recalibration_data: list):
    """The static model that computes fc7, its identity, and the path it is (None for a static model).
    `recalibration_data`: (name, dataset) of every upstream dataset, whose images re-estimate a path's BN."""
    model, meta = load_detector(r.weights)
    static, arch = select_path(model, meta, r.arch, str(meta["ref"].path))
    static.to(device).eval()
    if meta["role"] == "supernet" and r.recalibrate:
        # in one fixed order: the model (and so its caches) is the same whatever --seed the random strategy draws
        # with, and whatever order --upstream names the datasets in (their batches in turn, by dataset name)
        used = recalibrate(static, _in_turn([recalibration_batches(c, r.batch_size, 0) for _, c in
                                             sorted(recalibration_data, key=lambda nc: nc[0])]), r.recalibrate)
        console.info(f"recalibrated the path's BN statistics on {used} images of "
                     + ", ".join(sorted(n for n, _ in recalibration_data)) + " (their batches in turn)")
    static.eval()
    dim = static.roi_heads.box_head.fc7.out_features
    identity = {"digest": model_digest(static), "weights": str(meta["ref"].path), "dim": dim,
                "arch": arch.as_dict() if meta["role"] == "supernet" else None,
                "recalibrate": r.recalibrate if meta["role"] == "supernet" else 0}
    return static, identity, meta["ref"]


def _in_turn(streams: list) -> Iterator:
    """One item of each stream in turn, until all are spent."""
    streams = [iter(s) for s in streams]
    while streams:
        for stream in list(streams):
            try:
                yield next(stream)
            except StopIteration:
                streams.remove(stream)


def compute_blocks(model, source: Source, device: torch.device, batch_size: int, workers: int):
    """`compute(missing)` for `update_cache`: this process's share of the missing images, gathered to rank 0
    in blocks of BLOCK images per process (every process takes the same number of blocks)."""
    from torch.utils.data import DataLoader, Subset

    # a category outside the label space (a class no upstream dataset has) is no evidence: its boxes are ignored
    outside = {cid: IGNORE_LABEL for cid in source.coco.category_ids if cid not in source.ids}
    dataset = DetectionDataset(source.coco, label_of_category={**outside, **source.ids})
    position = {im["id"]: i for i, im in enumerate(source.coco.images)}

    def compute(missing: list[int]) -> Iterator[list[tuple[int, np.ndarray, np.ndarray]]]:
        rank, world = ddp.world()
        mine = [position[i] for i in missing[rank::world]]
        per_rank = -(-len(missing) // world)
        blocks = -(-per_rank // BLOCK)
        loader = iter(DataLoader(Subset(dataset, mine), batch_size=batch_size, collate_fn=collate_detection,
                                 num_workers=workers))
        pending: list[tuple] = []
        with console.progress(f"fc7 of {source.name}", total=len(missing)) as bar:
            for _ in range(blocks):
                block: list[tuple[int, np.ndarray, np.ndarray]] = []
                while len(block) < BLOCK:
                    if not pending:
                        batch = next(loader, None)
                        if batch is None:
                            break
                        images, targets = batch
                        found = image_vectors(model, [im.to(device) for im in images],
                                              [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)}
                                               for t in targets])
                        pending = [(int(t["image_id"]), c.cpu().numpy(),
                                    np.zeros((0, 0), np.float16) if v is None else v.cpu().half().numpy())
                                   for t, (c, v) in zip(targets, found)]
                    block.append(pending.pop(0))
                everyone = ddp.gather_object(block)
                bar.advance(sum(len(b) for b in everyone))
                if rank == 0:
                    yield [item for b in everyone for item in b]
    return compute


def features(r: SelectRequest, sources: list[Source], model, identity: dict[str, Any], ref, folder: Path,
             label_space: dict[str, Any] | None, device: torch.device) -> list[dict[str, Any]]:
    """Bring every dataset's cache up to date; returns what was done for each."""
    rank, _ = ddp.world()
    reports = []
    for source in sources:
        path = cache_path(folder, source.name, source.coco.source)
        names = {c["id"]: c["name"] for c in source.coco.categories}
        stored = sorted({(i, names[c]) for c, i in source.ids.items()})
        ident = Identity(identity, {"name": source.name, "path": str(Path(source.coco.source).resolve())},
                         label_space, [{"id": i, "name": n} for i, n in stored])
        with Cache(path, ident) as cached:
            done = set(cached.done.tolist())
        missing = [im["id"] for im in source.coco.images if im["id"] not in done]
        compute = compute_blocks(model, source, device, r.batch_size, r.run.workers)
        if rank == 0:
            report = update_cache(path, ident, missing, compute, [source.coco.ref, ref])
            console.info(f"{source.name}: {report['computed']} images computed, "
                         f"{report['images'] - report['computed']} cached ({path})")
            reports.append({"dataset": source.name, **report})
        elif missing:
            for _ in compute(missing):
                pass
        ddp.all_true(True, device)  # rank 0 has written this cache before anyone reads it
    return reports


def run(r: SelectRequest) -> dict[str, Any] | None:
    check_options({"--k": r.k, "--budget": r.budget, "--min-per-category": r.min_per_category,
                   "--recalibrate": r.recalibrate, "--batch-size": r.batch_size, "--chunk-rows": r.chunk_rows,
                   "--workers": r.run.workers, "--seed": r.run.seed}, "select-data")
    if r.strategy not in STRATEGIES:
        raise BadInput(f"--strategy must be one of {', '.join(STRATEGIES)} (got {r.strategy!r})")
    upstream_specs = parse_upstream(r.upstream)
    if r.target is None and not r.features_only:
        raise BadInput("give the target's training set with --target (only --features-only goes without)")
    device = devices.resolve(r.run.device)
    labels = read_labels(r.labels) if r.labels else None
    upstream_cocos = [load_dataset(path, f"--upstream {name}") for name, path in upstream_specs]
    names = [n for n, _ in upstream_specs]
    target_coco = load_dataset(r.target, "--target") if r.target is not None else None
    if target_coco is not None:
        names = [TARGET, *names]
        upstream_cocos = [target_coco, *upstream_cocos]
    ids = shared_ids([c.categories for c in upstream_cocos], names, labels)
    sources = [Source(n, c, i) for n, c, i in zip(names, upstream_cocos, ids)]
    target, upstream = (sources[0], sources[1:]) if target_coco is not None else (None, sources)
    cats, maps = None, None
    if target is not None:
        if not target.ids:
            raise BadInput(f"none of its categories is in the label space {labels.source}", r.target)
        cats, maps = target_space(target, upstream, labels)
        new = [c["name"] for c in target.coco.categories if c["id"] not in target.ids]
        if new:  # a class the corpus lacks: nothing upstream to select for it, its boxes make no vector
            console.warn(f"target categories not in the label space {labels.source}, no images selected for them: "
                         + ", ".join(new))
        if not any(maps):
            raise BadInput("shares no category with any upstream dataset ("
                           + "; ".join(f"{u.name}: {', '.join(c['name'] for c in u.coco.categories[:4])}"
                                       + (" ..." if len(u.coco.categories) > 4 else "") for u in upstream) + ")",
                           r.target)
        shared = set().union(*[set(m.values()) for m in maps])
        present = {target.ids[a["category_id"]] for a in target.coco.annotations
                   if not a.get("iscrowd") and a["category_id"] in target.ids} & shared
        if r.budget is not None and r.min_per_category * len(present) > r.budget:  # before any work
            raise BadInput(f"--budget {r.budget} is less than --min-per-category {r.min_per_category} x "
                           f"{len(present)} target categories")
    weights_path = resolve_path(r.weights)
    folder = Path(r.features) if r.features else weights_path.with_name(weights_path.name.removesuffix(".h5") + ".features")
    if folder.exists() and not folder.is_dir():
        raise BadInput("--features must be a folder", folder)

    rank, world = ddp.setup(device)
    try:
        if rank != 0:
            console.set_verbosity(quiet=True)
        if rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(r.run.seed)
        model, identity, ref = load_model(r, device, [(u.name, u.coco) for u in upstream])
        label_space = ({"path": str(labels.source), "sha256": read_labels_sha(r.labels)} if labels else None)
        reports = features(r, sources, model, identity, ref, folder, label_space, device)
        if world > 1:  # every rank's last collective is done before any rank destroys the group
            ddp.barrier()
        if rank != 0:
            return None
        if r.features_only:
            return {"features": reports, "model": identity}
        return select(r, target, upstream, cats, maps, folder, identity, label_space, reports, device,
                      [target.coco.ref, *[u.coco.ref for u in upstream], ref])
    finally:
        ddp.teardown()


def read_labels_sha(spec: str) -> str:
    return read_input(spec).ref.sha256


def select(r: SelectRequest, target: Source, upstream: list[Source], cats: list[dict], maps: list[dict[int, int]],
           folder: Path, identity: dict, label_space, reports, device, refs) -> dict[str, Any]:
    with Cache(cache_path(folder, TARGET, target.coco.source)) as tc:
        t_ids, t_cats, t_vecs = tc.everything()  # a target is small
    t_vecs = torch.from_numpy(t_vecs.astype(np.float32))
    if not len(t_ids):
        raise BadInput("has no boxes to compute represent vectors of", r.target)
    shared = set().union(*[set(m.values()) for m in maps])
    keep = np.isin(t_cats, list(shared))
    t_ids, t_cats, t_vecs = t_ids[keep], t_cats[keep], t_vecs[torch.from_numpy(keep)]
    targets = Targets(t_vecs, torch.from_numpy(t_cats), device)
    count = r.budget if r.budget is not None else r.k * targets.count
    caches = [Cache(cache_path(folder, u.name, u.coco.source)) for u in upstream]
    try:
        offsets = np.cumsum([0] + [c.rows for c in caches])
        lookups = []
        for m in maps:
            size = max([*m.keys(), 0]) + 1
            table = np.full(size, -1, dtype=np.int64)
            for a, b in m.items():
                table[a] = b
            lookups.append(table)

        def chunks() -> Iterator[Chunk]:
            for d, cache in enumerate(caches):
                for start, ids, cs, vs in cache.chunks(r.chunk_rows):
                    table = lookups[d]
                    valid = (cs >= 0) & (cs < len(table))
                    cs = np.where(valid, table[np.where(valid, cs, 0)], -1)
                    yield Chunk(int(offsets[d] + start), torch.from_numpy(cs), torch.from_numpy(vs),
                                torch.from_numpy(ids), d)

        found = candidates(r.strategy, targets, chunks, r.k, count, r.run.seed)
        rows = np.array([c.row for c in found], dtype=np.int64)
        which = np.searchsorted(offsets, rows, side="right") - 1
        for d, cache in enumerate(caches):
            sel = np.nonzero(which == d)[0]
            image_ids, _ = cache.take(rows[sel] - offsets[d])
            for i, image_id in zip(sel.tolist(), image_ids.tolist()):
                found[i].image = (d, int(image_id))
        present = sorted({int(c) for c in t_cats})
        chosen = choose(found, present, None if r.strategy == "top-k" and r.budget is None else count,
                        r.min_per_category)
    finally:
        for c in caches:
            c.close()
    short = [n for n in present if sum(1 for c in chosen if c.category == n) < r.min_per_category]
    name_of = {c["id"]: c["name"] for c in cats}
    if short:
        console.warn(f"fewer than {r.min_per_category} upstream images were found for "
                     f"{', '.join(name_of.get(n, str(n)) for n in short)}")
    images = [{"dataset": upstream[c.image[0]].name, "image_id": c.image[1], "score": round(c.score, 6),
               "category": name_of.get(c.category, str(c.category)), "target_image": int(t_ids[c.target]),
               "target_category": name_of.get(int(t_cats[c.target]), "")} for c in chosen]
    if not images:
        raise BadInput("no upstream image has a represent vector of the target's categories", r.target)
    console.info(f"{r.strategy}: {len(images)} images chosen from "
                 + ", ".join(f"{u.name} {sum(1 for im in images if im['dataset'] == u.name)}" for u in upstream))
    payload = {
        "strategy": r.strategy, "k": r.k, "budget": None if r.strategy == "top-k" and r.budget is None else count, "min_per_category": r.min_per_category, "seed": r.run.seed,
        "target": {"path": str(Path(target.coco.source).resolve()), "images": len(target.coco.images),
                   "vectors": targets.count},
        "model": identity, "label_space": label_space,
        "datasets": [{"name": u.name, "path": str(Path(u.coco.source).resolve()), "images": str(u.coco.image_root)}
                     for u in upstream],
        "features": reports,
        "images": images,
    }
    return json_artifact(KIND, payload, refs)

