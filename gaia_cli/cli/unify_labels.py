"""`gaia unify-labels`: one label space over many datasets, by word-vector similarity (GAIA 3.1.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Output, Quiet, Verbose


@command(
    "unify-labels",
    inputs=("sources", "apply", "base", "vectors", "synonyms", "decisions"), outputs=("output", "review"),
    epilog=(
        "Examples:\n\n"
        "  gaia unify-labels coco objects365 my_data.json > labels.json\n\n"
        "  gaia unify-labels voc coco --review review.json > labels.json   # then mark review.json, and:\n\n"
        "  gaia unify-labels voc coco --decisions review.json > labels.json\n\n"
        "  gaia unify-labels --base labels.json kitti > labels2.json        # existing ids never change\n\n"
        "  gaia unify-labels --apply labels.json train.json > train.unified.json"
    ),
)
def unify_labels(
    sources: Annotated[Optional[list[str]], typer.Argument(
        help="Label sources: COCO annotation files, text files (one name per line), or built-in datasets "
             "(coco, voc, objects365, openimages, lvis, kitti, dota, visdrone, argoverse; a file of that name "
             "wins, builtin:NAME forces the built-in). NAME=SOURCE names one.",
        show_default=False)] = None,
    apply: Annotated[Optional[str], typer.Option("--apply", help="Rewrite the one COCO file given into this label space's ids.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="With --apply: the dataset entry to use (default: the one whose categories match).")] = None,
    base: Annotated[Optional[str], typer.Option("--base", help="Extend this label space; its ids never change.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Merge when similarity is at least this.")] = 0.8,
    margin: Annotated[float, typer.Option("--margin", help="Pairs this close to the threshold go to --review.")] = 0.05,
    vectors: Annotated[Optional[Path], typer.Option("--vectors", help="Word vectors: word2vec .bin/.txt, GloVe .txt, fastText .bin or gensim .kv (default: GloVe 6B 50d).", dir_okay=False)] = None,
    vectors_format: Annotated[str, typer.Option("--vectors-format", help="auto, kv, word2vec-bin, word2vec-text, glove or fasttext.")] = "auto",
    synonyms: Annotated[str, typer.Option("--synonyms", help="Synonym sets: lvis (LVIS's synonym lists), none, or a file of a/b/c lines (gaia's own few, e.g. tv/television, apply with each).")] = "lvis",
    review: Annotated[Optional[Path], typer.Option("--review", help="Write every merge made by vectors (riskiest first), refused pairs, borderline pairs and conflicts here, for a person to mark.", dir_okay=False)] = None,
    decisions: Annotated[Optional[str], typer.Option("--decisions", help="A marked review file (or a list of {dataset, category, target, decision}) to apply.")] = None,
    output: Output = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Build one label space over several datasets, or rewrite a dataset into one.

    Starts from the largest label space and maps each category of the others to its most similar unified
    category when the similarity reaches the threshold, else appends it. Similarity: equal names (plurals,
    case and punctuation aside), a shared synonym set, or the cosine of word vectors; a pair found by
    vectors alone merges only if the names agree (same head noun, modifiers that do not contradict, a
    general name taking a specific one only where that is its dataset's class for the thing). Two
    categories of one dataset never share a unified category. Writes a gaia/labels artifact.
    """
    from gaia_cli.artifacts import InputRef, check_output_path, json_artifact, sha256_bytes
    from gaia_cli.errors import BadInput

    for path in (output, review):
        if path is not None:
            check_output_path(path)
    if apply is not None:
        _apply(apply, sources or [], dataset, output)
        return
    if dataset is not None:
        raise BadInput("--dataset goes with --apply")
    if not sources:
        raise BadInput("give at least one label source (or --apply LABELS FILE)")

    from gaia_cli.labels.names import load_synonyms
    from gaia_cli.labels.sources import parse_sources
    from gaia_cli.labels.space import read_labels
    from gaia_cli.labels.unify import unify
    from gaia_cli.labels.vectors import load_vectors

    parsed = parse_sources(sources)
    base_space = read_labels(base) if base else None
    chosen = _read_decisions(decisions) if decisions else None
    syn = load_synonyms(synonyms)
    vecs = load_vectors(vectors, vectors_format)
    result = unify(parsed, vecs, syn, threshold, margin, base_space, chosen)

    inputs = [InputRef(s.origin, sha256_bytes(json.dumps(s.categories, sort_keys=True).encode())) for s in parsed]
    if base_space is not None:
        inputs.append(InputRef(base_space.source, sha256_bytes(json.dumps(base_space.to_payload(), sort_keys=True).encode())))
    _report(result)
    if review is not None:
        console.emit_json(json_artifact("gaia/label-review", {
            "threshold": threshold, "margin": margin,
            "instructions": "Set each entry's decision to 'accept' (merge the category into the target) or "
                            "'reject' (never merge them), then run unify-labels again with --decisions THIS_FILE.",
            "review": result.review}, inputs), review)
    console.emit_json(json_artifact("gaia/labels", result.space.to_payload(), inputs), output)


def _read_decisions(spec: str):
    from gaia_cli.artifacts import check_header, parse_json, read_input
    from gaia_cli.labels.unify import parse_decisions

    src = read_input(spec)
    obj = parse_json(src.data, src.name)
    if isinstance(obj, dict):
        check_header(obj, "gaia/label-review", src.name)
    return parse_decisions(obj, src.name)


def _apply(labels: str, files: list[str], dataset: str | None, output: Optional[Path]) -> None:
    from gaia_cli.artifacts import parse_json, read_input
    from gaia_cli.errors import BadInput
    from gaia_cli.labels.space import read_labels
    from gaia_cli.labels.unify import apply

    if len(files) != 1:
        raise BadInput("--apply rewrites exactly one COCO file: gaia unify-labels --apply labels.json data.json")
    space = read_labels(labels)
    src = read_input(files[0])
    out = apply(space, parse_json(src.data, src.name), dataset, src.name)
    console.info(f"{src.name}: {len(out['annotations'])} annotations in {len(space.categories)} unified categories")
    console.emit_json(out, output)


def _report(result) -> None:
    datasets = result.space.datasets
    counts = {"merged": 0, "new": 0, "decided": 0, "base": 0}
    for entry in datasets:
        for c in entry["categories"]:
            counts[c["how"]] = counts.get(c["how"], 0) + 1
    console.info(f"{len(result.space.categories)} unified categories from {len(datasets)} datasets: "
                 f"{counts['merged'] + counts['decided']} merged, {counts['new']} new, "
                 f"{len(result.conflicts)} conflicts, {sum(r['type'] == 'borderline' for r in result.review)} borderline, "
                 f"{sum(r['type'] == 'merge' for r in result.review)} merged by vectors or decisions (each in --review), "
                 f"{len({(r['dataset'], r['category']) for r in result.review if r['type'] == 'refused'})} "
                 f"with a vector match refused by the name rules")
    for u in result.unknown[:10]:
        console.warn(f"{u['dataset']}:{u['name']!r} has no word in the vectors; it merges only by name or synonym")
    if console.verbose():
        from rich.table import Table

        names = {c["id"]: c["name"] for c in result.space.categories}
        table = Table(title="merges")
        for col in ("dataset", "category", "unified", "similarity", "via"):
            table.add_column(col)
        for entry in datasets:
            for c in entry["categories"]:
                if c["how"] in ("merged", "decided"):
                    table.add_row(entry["name"], c["name"], names[c["unified_id"]], f"{c['similarity']:.3f}", c["via"])
        console.show(table)
