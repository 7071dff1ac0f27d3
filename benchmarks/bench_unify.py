"""unify-labels: precision of the merges made by word vectors, GAIA's matcher against gaia's sound one.

Both matchers run in this one process on the same vectors (GloVe 6B 50d) and LVIS synonym sets:
- old: merge on vector similarity alone (threshold 0.8), as GAIA 3.1.1 states it (`unify(..., rules=False)`);
- new: the same, plus gaia's lexicon and soundness rules (gaia_cli/labels/lexicon.py).

Gold map (benchmarks/gold/vector_merges.json): every merge either matcher makes by vectors in three runs, judged
by hand (right / wrong / unsure), and a few true correspondences neither proposes. Figures per run:
- vector merges: how many; precision = right / (right + wrong), unsure ones left out; unjudged counted apart;
- recall = true correspondences (the right pairs of the gold map) that the run merges, by any route
  (vectors, synonyms, exact) / all of them.
The last run (openimages lvis) was judged after the rules were final. Then COCO -> Objects365 (benchmarks/gold/
coco_to_objects365.json) and VOC -> COCO (voc_to_coco.json): categories mapped as the gold says, out of all.

    python benchmarks/bench_unify.py            # all three runs (about 15 s)
    python benchmarks/bench_unify.py --quick    # the issue's run only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

GOLD = Path(__file__).parent / "gold"


def outcomes(result) -> dict[tuple[str, str], tuple[str | None, str, str]]:
    """(dataset, category) -> (unified name or None, via, how) for every dataset after the first."""
    names = {c["id"]: c["name"] for c in result.space.categories}
    return {(d["name"], c["name"]): (names[c["unified_id"]] if c["how"] != "new" else None, c["via"], c["how"])
            for d in result.space.datasets[1:] for c in d["categories"]}


def score_run(result, gold: list[dict], true: list[dict]) -> dict:
    judged = {(g["dataset"], g["category"], g["target"]): g["correct"] for g in gold}
    out = outcomes(result)
    merges = [(d, c, t) for (d, c), (t, via, how) in out.items() if how == "merged" and via == "vectors"]
    right = [m for m in merges if judged.get(m) is True]
    wrong = [m for m in merges if judged.get(m) is False]
    unsure = [m for m in merges if m in judged and judged[m] is None]
    unjudged = [m for m in merges if m not in judged]
    wanted = [(g["dataset"], g["category"], g["target"]) for g in gold if g["correct"] is True] + \
             [(g["dataset"], g["category"], g["target"]) for g in true]
    found = [w for w in wanted if out.get(w[:2], (None,))[0] == w[2]]
    return {"categories": len(result.space.categories), "merges": len(merges), "right": right, "wrong": wrong,
            "unsure": unsure, "unjudged": unjudged, "found": len(found), "wanted": len(wanted)}


def agreement(result, pairs: dict[str, str | None]) -> tuple[int, list[str]]:
    out = outcomes(result)
    ok, errors = 0, []
    for (dataset, name), (target, via, _) in out.items():
        if pairs.get(name, "?") == target:
            ok += 1
        else:
            errors.append(f"{name} -> {target} (gold {pairs.get(name)}, {via})")
    return ok, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the issue's run (Open Images, Objects365, COCO)")
    args = parser.parse_args()

    from gaia_cli.labels.names import load_synonyms
    from gaia_cli.labels.sources import parse_sources
    from gaia_cli.labels.unify import unify
    from gaia_cli.labels.vectors import load_vectors

    vectors, synonyms = load_vectors(), load_synonyms("lvis")
    doc = json.loads((GOLD / "vector_merges.json").read_text())
    scenarios = list(doc["scenarios"])[: 1 if args.quick else None]
    totals = {"old": [0, 0, 0, 0], "new": [0, 0, 0, 0]}  # right, wrong, found, wanted
    print("merges made by word vectors (GloVe 6B 50d, threshold 0.8, LVIS synonyms), judged on the gold map")
    for scenario in scenarios:
        gold = [g for g in doc["pairs"] if g["scenario"] == scenario]
        true = [g for g in doc["true_unproposed"] if g["scenario"] == scenario]
        sources = parse_sources(scenario.split())
        print(f"\n`gaia unify-labels {scenario}`: {doc['scenarios'][scenario]}")
        print(f"{'matcher':8s} {'categories':>10s} {'merges':>6s} {'right':>5s} {'wrong':>5s} {'unsure':>6s} "
              f"{'unjudged':>8s} {'precision':>9s} {'recall':>13s}")
        runs = {}
        for label, rules in (("old", False), ("new", True)):
            result = unify(sources, vectors, synonyms, rules=rules)
            s = runs[label] = score_run(result, gold, true)
            precision = len(s["right"]) / max(len(s["right"]) + len(s["wrong"]), 1)
            print(f"{label:8s} {s['categories']:10d} {s['merges']:6d} {len(s['right']):5d} {len(s['wrong']):5d} "
                  f"{len(s['unsure']):6d} {len(s['unjudged']):8d} {precision:9.3f} "
                  f"{s['found'] / s['wanted']:6.3f} ({s['found']}/{s['wanted']})")
            t = totals[label]
            t[0] += len(s["right"]); t[1] += len(s["wrong"]); t[2] += s["found"]; t[3] += s["wanted"]
            if label == "new":
                refused = [f"{d}:{c!r} -> {t!r}" for d, c, t in runs["old"]["wrong"] if (d, c, t) not in s["wrong"]]
                print(f"  wrong merges of the old matcher the new one refuses ({len(refused)}): " + ", ".join(refused[:12])
                      + (" ..." if len(refused) > 12 else ""))
                for kind in ("wrong", "unjudged"):
                    if s[kind]:
                        print(f"  new matcher, {kind}: " + ", ".join(f"{d}:{c!r} -> {t!r}" for d, c, t in s[kind]))
                lost = [f"{d}:{c!r} -> {t!r}" for d, c, t in runs["old"]["right"]
                        if outcomes(result).get((d, c), (None,))[0] != t]
                print(f"  right merges of the old matcher the new one does not make ({len(lost)}): " + ", ".join(lost))
    if len(scenarios) > 1:
        print("\nall runs together")
        for label, (r, w, f, n) in totals.items():
            print(f"  {label}: precision {r / max(r + w, 1):.3f} ({r}/{r + w}), recall {f / n:.3f} ({f}/{n})")

    print("\nagreement with the gold correspondences (categories mapped as the gold says)")
    for name, specs, gold_file in (("COCO -> Objects365", ["coco", "objects365"], "coco_to_objects365.json"),
                                   ("VOC -> COCO", ["voc", "coco"], "voc_to_coco.json")):
        pairs = json.loads((GOLD / gold_file).read_text())["pairs"]
        cells = []
        for label, rules in (("old", False), ("new", True)):
            ok, errors = agreement(unify(parse_sources(specs), vectors, synonyms, rules=rules), pairs)
            cells.append(f"{label} {ok}/{len(pairs)}" + (f" (misses: {'; '.join(errors)})" if errors else ""))
        print(f"  {name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
