"""GAIA's unified label space (section 3.1.1), with conflict resolution and human review.

Start from the largest label space (or from `--base`, an existing space whose ids never change). Map each
category of every other dataset to the most similar unified category when their similarity is at least the
threshold (0.8, as in GAIA), else append it as a new category. Datasets are taken largest first when there is
no base, then in the order given.

Similarity of two categories is the highest over their alternatives (`A/B` names) of:
- 1.0 when their plural-insensitive keys are equal (`Sneakers` = `sneaker`), via "exact";
- 0.99 when a synonym set holds both (LVIS's `sofa/couch/lounge`), via "synonym";
- the cosine of their word vectors otherwise, via "vectors". A name with no known word has no vector and
  is only ever matched exactly or through a synonym set; such names are reported.
A unified category's keys and synonym sets grow with the names merged into it; its vector stays that of
the name that created it. gaia's lexicon adds a few synonym sets LVIS lacks (`tv`/`television`).

A pair found by vectors alone is merged only when the names agree as phrases (`lexicon.Rules`): the same
head noun, modifiers that do not contradict, and a general name absorbing a specific one only where the
specific one is its dataset's class for the thing. Refused pairs are recorded with the reason.

Two categories of one dataset never merge into the same unified category: candidate pairs are taken from
the most similar down, and a unified category taken by one category of a dataset is closed to that
dataset's others, which fall back to their next candidate above the threshold, or become new. Every such
conflict is reported. The review lists every merge made by vectors (none is an exact name or a curated
synonym), riskiest first, then the pairs the rules refused, the pairs within `margin` of the threshold, and
the conflicts; a person's decisions (accept forces a merge, reject forbids it) apply on the next run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gaia_cli.checks import check_options
from gaia_cli.errors import BadInput
from gaia_cli.labels.lexicon import DatasetNames, Rules, Verdict, lexicon, phrases
from gaia_cli.labels.names import Synonyms, alternatives, clean, keys
from gaia_cli.labels.sources import LabelSource
from gaia_cli.labels.space import LabelSpace
from gaia_cli.labels.vectors import WordVectors

EXACT, SYNONYM = 1.0, 0.99
# added to 1 - similarity to rank the merges made by vectors for review: a general name absorbing a specific
# one is the riskiest kind, a name qualified further (`Dining Table` / `Kitchen & dining room table`) next
RISK = {"general": 0.1, "qualified": 0.05, "same": 0.0, "decided": 0.0}


def with_lexicon(synonyms: Synonyms | None) -> Synonyms:
    """The synonym sets given (or none) joined with gaia's lexicon's."""
    sets = lexicon()["synonyms"]
    return (synonyms or Synonyms([], "none")).joined(sets, "gaia")


@dataclasses.dataclass
class Profile:
    """What similarity needs of a name: its keys, synonym sets, and one unit vector per alternative."""

    keys: set[str]
    groups: set[int]
    vectors: np.ndarray  # [k, d], k >= 0
    known: bool  # some alternative has a vector


def profile(name: str, vectors: WordVectors, synonyms: Synonyms | None) -> Profile:
    own = set(keys(name))
    groups = {g for k in own if synonyms and (g := synonyms.group(k)) is not None}
    vecs = [v for a in alternatives(name) if (v := vectors.phrase(a)[0]) is not None]
    dim = vectors.kv.vector_size
    arr = np.stack(vecs) if vecs else np.zeros((0, dim), dtype=np.float32)
    return Profile(own, groups, arr, bool(vecs))


@dataclasses.dataclass
class UnifiedCategory:
    id: int
    name: str
    sources: list[str]
    profile: Profile
    origin: str = ""  # the name of the category that created it, in its own dataset

    def absorb(self, other: Profile, source: str) -> None:
        self.sources.append(source)
        self.profile.keys |= other.keys
        self.profile.groups |= other.groups


def _max_by_owner(sim: np.ndarray, owners: np.ndarray, count: int, axis: int) -> np.ndarray:
    """Reduce rows (axis 0) or columns (axis 1) of `sim` to one per owner by max; owners sorted, -1 if none."""
    out_shape = list(sim.shape)
    out_shape[axis] = count
    out = np.full(out_shape, -1.0, dtype=np.float32)
    if sim.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    reduced = np.maximum.reduceat(sim, starts, axis=axis)
    index = [slice(None)] * 2
    index[axis] = owners[starts]
    out[tuple(index)] = reduced
    return out


def similarity_matrix(rows: list[Profile], cols: list[Profile]) -> tuple[np.ndarray, np.ndarray]:
    """Similarity [len(rows), len(cols)] and how it was found (0 vectors, 1 synonym, 2 exact)."""
    def stack(profiles):
        owners = np.concatenate([np.full(len(p.vectors), i) for i, p in enumerate(profiles)] or [np.zeros(0)])
        vecs = [p.vectors for p in profiles if len(p.vectors)]
        dim = next((p.vectors.shape[1] for p in profiles), 0)
        return (np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32)), owners.astype(int)

    a, a_own = stack(rows)
    b, b_own = stack(cols)
    sim = a @ b.T if len(a) and len(b) else np.zeros((len(a), len(b)), np.float32)
    sim = _max_by_owner(sim, a_own, len(rows), axis=0)
    sim = _max_by_owner(sim, b_own, len(cols), axis=1)
    sim = np.clip(sim, -1.0, 1.0)
    via = np.zeros(sim.shape, dtype=np.int8)
    by_key: dict[str, list[int]] = {}
    by_group: dict[int, list[int]] = {}
    for j, p in enumerate(cols):
        for k in p.keys:
            by_key.setdefault(k, []).append(j)
        for g in p.groups:
            by_group.setdefault(g, []).append(j)
    for i, p in enumerate(rows):
        for g in p.groups:
            for j in by_group.get(g, ()):
                if via[i, j] < 1:
                    sim[i, j], via[i, j] = max(sim[i, j], SYNONYM), 1
        for k in p.keys:
            for j in by_key.get(k, ()):
                sim[i, j], via[i, j] = EXACT, 2
    return sim, via


VIA = {0: "vectors", 1: "synonym", 2: "exact"}


@dataclasses.dataclass
class Decisions:
    """A person's choices: (dataset, category, target) -> accept | reject, names compared cleaned."""

    choices: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)

    def get(self, dataset: str, category: str, target: str) -> str | None:
        return self.choices.get((dataset, clean(category), clean(target)))

    def accepted(self, dataset: str, category: str) -> list[str]:
        return [t for (d, c, t), v in self.choices.items() if d == dataset and c == clean(category) and v == "accept"]


def parse_decisions(entries: Any, source: str) -> Decisions:
    """Decisions from a review file whose entries a person marked, or a plain list of them."""
    if isinstance(entries, dict):
        entries = entries.get("review")
    if not isinstance(entries, list):
        raise BadInput("expected a review file or a list of {dataset, category, target, decision}", source)
    out = Decisions()
    for e in entries:
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("dataset", "category", "target")):
            raise BadInput(f"decision entry {e!r:.80} needs dataset, category and target", source)
        decision = e.get("decision")
        if decision is None:
            continue  # not decided yet
        if decision not in ("accept", "reject"):
            raise BadInput(f"decision must be 'accept', 'reject' or null, not {decision!r}", source)
        out.choices[(e["dataset"], clean(e["category"]), clean(e["target"]))] = decision
    return out


@dataclasses.dataclass
class Result:
    space: LabelSpace
    review: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    unknown: list[dict[str, Any]]


class Unifier:
    def __init__(self, vectors: WordVectors, synonyms: Synonyms | None, threshold: float = 0.8,
                 margin: float = 0.05, decisions: Decisions | None = None, rules: bool = True):
        check_options({"--threshold": threshold, "--margin": margin}, "unify-labels")
        self.vectors, self.synonyms = vectors, synonyms
        self.threshold, self.margin = threshold, margin
        self.decisions = decisions or Decisions()
        self.unified: list[UnifiedCategory] = []
        self.datasets: list[dict[str, Any]] = []
        self.review: list[dict[str, Any]] = []
        self.conflicts: list[dict[str, Any]] = []
        self.unknown: list[dict[str, Any]] = []
        self._profiles: dict[str, Profile] = {}
        self._names: dict[str, list[str]] = {}  # each dataset's category names, for the rules
        self._verdicts: dict[tuple, Verdict] = {}
        self._indexed: dict[str, DatasetNames] = {}
        kv = vectors.kv

        def word_cosine(a: str, b: str) -> float | None:
            fa, fb = vectors.lookup(a), vectors.lookup(b)
            return float(kv.similarity(fa, fb)) if fa and fb else None

        self.rules = Rules(word_cosine, lambda w: vectors.lookup(w) is not None) if rules else None

    def _profile(self, name: str) -> Profile:
        if name not in self._profiles:
            self._profiles[name] = profile(name, self.vectors, self.synonyms)
        p = self._profiles[name]
        return Profile(set(p.keys), set(p.groups), p.vectors, p.known)

    # -------------------------------------------------------------------------------------- the base space

    def start_from(self, base: LabelSpace) -> None:
        """Continue an existing space: its ids, names and maps are kept exactly."""
        named = {f"{d['name']}:{c['id']}": c["name"] for d in base.datasets for c in d["categories"]}
        for cat in base.categories:
            sources = list(cat.get("sources", []))
            origin = named.get(sources[0], cat["name"]) if sources else cat["name"]
            self.unified.append(UnifiedCategory(cat["id"], cat["name"], sources, self._profile(cat["name"]), origin))
        for entry in base.datasets:
            self.datasets.append(entry)
            self._names[entry["name"]] = [c["name"] for c in entry["categories"]]
            for c in entry["categories"]:
                p = self._profile(c["name"])
                u = self.unified[c["unified_id"] - 1].profile
                u.keys |= p.keys
                u.groups |= p.groups

    def add_base(self, source: LabelSource) -> None:
        entries = []
        for cat in source.categories:
            p = self._profile(cat["name"])
            self._note_unknown(source, cat, p)
            uid = len(self.unified) + 1
            self.unified.append(UnifiedCategory(uid, cat["name"], [f"{source.name}:{cat['id']}"], p, cat["name"]))
            entries.append({"id": cat["id"], "name": cat["name"], "unified_id": uid, "similarity": 1.0,
                            "how": "base", "via": "base"})
        self.datasets.append({"name": source.name, "source": source.origin, "categories": entries})
        self._names[source.name] = [c["name"] for c in source.categories]

    def _note_unknown(self, source: LabelSource, cat: dict, p: Profile) -> None:
        if not p.known:
            self.unknown.append({"dataset": source.name, "id": cat["id"], "name": cat["name"]})

    # -------------------------------------------------------------------------------------------- mapping

    def judge(self, source: LabelSource, name: str, j: int) -> Verdict:
        """Whether `name` of `source` and unified category j may merge on vector similarity alone.

        The least risky sound verdict over the two names' alternatives, else the first refusal.
        """
        key = (source.name, name, j)
        if key not in self._verdicts:
            target = self.unified[j]
            origin = target.sources[0].rsplit(":", 1)[0] if target.sources else ""
            theirs = target.origin or target.name
            verdicts = [self.rules.judge(a, b, self._dataset_names(source.name), name,
                                         self._dataset_names(origin), theirs)
                        for a in phrases(name) for b in phrases(theirs)]
            sound = sorted((v for v in verdicts if v.ok), key=lambda v: RISK[v.kind])
            self._verdicts[key] = sound[0] if sound else (verdicts[0] if verdicts else Verdict(False, "no words"))
        return self._verdicts[key]

    def _dataset_names(self, dataset: str) -> DatasetNames:
        if dataset not in self._indexed:
            self._indexed[dataset] = self.rules.names(self._names.get(dataset, []))
        return self._indexed[dataset]

    def add(self, source: LabelSource) -> None:
        """Map one dataset into the unified space (GAIA 3.1.1), resolving conflicts by similarity."""
        existing = next((d for d in self.datasets if d["name"] == source.name), None)
        if existing is not None:
            same = {(c["id"], c["name"]) for c in existing["categories"]} == \
                   {(c["id"], c["name"]) for c in source.categories}
            if not same:
                raise BadInput(f"dataset {source.name!r} is already in the base label space with other categories; "
                               f"name this source differently (NAME={source.origin})", source.origin)
            return  # already mapped: its ids stay as they are
        if not self.unified:
            self.add_base(source)
            return
        cats = source.categories
        self._names[source.name] = [c["name"] for c in cats]
        profiles = [self._profile(c["name"]) for c in cats]
        for cat, p in zip(cats, profiles):
            self._note_unknown(source, cat, p)
        sim, via = similarity_matrix(profiles, [u.profile for u in self.unified])
        names = [u.name for u in self.unified]
        index_of = {clean(n): j for j, n in enumerate(names)}

        # vector pairs near or above the threshold must also agree as names; refused ones are kept aside
        verdicts: dict[tuple[int, int], Verdict] = {}
        refused: dict[int, list[tuple[float, int, str]]] = {}
        low = self.threshold - self.margin
        raw = sim.copy()
        for i, j in zip(*np.nonzero((via == 0) & (sim >= low)) if self.rules else ()):
            i, j = int(i), int(j)
            verdict = verdicts[(i, j)] = self.judge(source, cats[i]["name"], j)
            if not verdict.ok:
                refused.setdefault(i, []).append((float(sim[i, j]), j, verdict.reason))
                sim[i, j] = -1.0  # out of the running, and not anyone's nearest
        for i in refused:
            refused[i].sort(key=lambda r: -r[0])

        candidates = []  # (priority, similarity, category index, unified index)
        for i, cat in enumerate(cats):
            for j in np.flatnonzero(sim[i] >= self.threshold):
                if self.decisions.get(source.name, cat["name"], names[j]) != "reject":
                    candidates.append((0, float(sim[i, j]), i, int(j)))
            for target in self.decisions.accepted(source.name, cat["name"]):
                if target not in index_of:
                    raise BadInput(f"decision for {source.name}:{cat['name']!r} names target {target!r}, "
                                   f"which is not in the unified label space")
                candidates.append((1, float(raw[i, index_of[target]]), i, index_of[target]))
        candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))

        chosen: dict[int, tuple[int, float, str]] = {}
        taken: dict[int, int] = {}
        for priority, s, i, j in candidates:
            if i in chosen:
                continue
            if j in taken:
                winner = taken[j]
                self.conflicts.append({
                    "dataset": source.name, "target": names[j], "target_id": j + 1,
                    "winner": cats[winner]["name"], "winner_similarity": round(chosen[winner][1], 4),
                    "loser": cats[i]["name"], "loser_similarity": round(s, 4)})
                continue
            how = "decided" if priority else "merged"
            chosen[i], taken[j] = (j, s, how), i

        entries = []
        for i, (cat, p) in enumerate(zip(cats, profiles)):
            best = int(np.argmax(sim[i])) if sim.shape[1] else 0
            best_sim = float(sim[i, best])
            entry: dict[str, Any] = {"id": cat["id"], "name": cat["name"]}
            if i in chosen:
                j, s, how = chosen[i]
                self.unified[j].absorb(p, f"{source.name}:{cat['id']}")
                entry.update(unified_id=j + 1, similarity=round(s, 4), how=how, via=VIA[int(via[i, j])])
                outcome = f"merged into {names[j]!r}"
                if how == "decided" or int(via[i, j]) == 0:  # neither an exact name nor a curated synonym
                    verdict = verdicts.get((i, j)) or Verdict(True, "a person's decision", "decided")
                    kind = "decided" if how == "decided" else verdict.kind
                    risk = round(1.0 - s + RISK[kind], 4)
                    if how != "decided":
                        entry.update(rule=verdict.reason)
                    self.review.append({"type": "merge", "dataset": source.name, "category": cat["name"],
                                        "target": names[j], "similarity": round(s, 4), "via": entry["via"],
                                        "risk": risk, "rule": verdict.reason, "outcome": outcome,
                                        "decision": self.decisions.get(source.name, cat["name"], names[j])})
            else:
                uid = len(self.unified) + 1
                name = cat["name"] if clean(cat["name"]) not in index_of else f"{cat['name']} ({source.name})"
                self.unified.append(UnifiedCategory(uid, name, [f"{source.name}:{cat['id']}"], p, cat["name"]))
                entry.update(unified_id=uid, similarity=round(best_sim, 4), how="new", via=VIA[int(via[i, best])],
                             nearest={"id": best + 1, "name": names[best]})
                outcome = "new category"
            above = [r for r in refused.get(i, []) if r[0] > entry["similarity"]]
            if above:
                entry["refused"] = [{"id": j + 1, "name": names[j], "similarity": round(r, 4), "reason": why}
                                    for r, j, why in above]
                for r, j, why in above:
                    self.review.append({"type": "refused", "dataset": source.name, "category": cat["name"],
                                        "target": names[j], "similarity": round(r, 4), "rule": why,
                                        "outcome": outcome,
                                        "decision": self.decisions.get(source.name, cat["name"], names[j])})
            entries.append(entry)
            if abs(best_sim - self.threshold) <= self.margin and int(via[i, best]) == 0:
                self.review.append({"type": "borderline", "dataset": source.name, "category": cat["name"],
                                    "target": names[best], "similarity": round(best_sim, 4), "outcome": outcome,
                                    "decision": self.decisions.get(source.name, cat["name"], names[best])})
        for c in self.conflicts:
            if c["dataset"] == source.name:
                self.review.append({"type": "conflict", "dataset": source.name, "category": c["loser"],
                                    "target": c["target"], "similarity": c["loser_similarity"],
                                    "outcome": f"{c['target']!r} went to {c['winner']!r}",
                                    "decision": self.decisions.get(source.name, c["loser"], c["target"])})
        self.datasets.append({"name": source.name, "source": source.origin, "categories": entries})

    def ordered_review(self) -> list[dict[str, Any]]:
        """Merges by vectors riskiest first, then refused pairs (most similar first), borderline, conflicts."""
        rank = {"merge": 0, "refused": 1, "borderline": 2, "conflict": 3}
        return sorted(self.review, key=lambda e: (rank[e["type"]], -e.get("risk", 0.0), -e["similarity"]))

    def result(self, extra: dict[str, Any]) -> Result:
        categories = [{"id": u.id, "name": u.name, "sources": u.sources} for u in self.unified]
        space = LabelSpace(categories, self.datasets, extra)
        return Result(space, self.ordered_review(), self.conflicts, self.unknown)


def unify(sources: list[LabelSource], vectors: WordVectors, synonyms: Synonyms | None, threshold: float = 0.8,
          margin: float = 0.05, base: LabelSpace | None = None, decisions: Decisions | None = None,
          rules: bool = True) -> Result:
    """The unified label space of `sources` (after `base`, when given).

    `rules=False` merges on vector similarity alone, without gaia's lexicon (GAIA's matcher as the paper
    states it): for comparison in benchmarks/bench_unify.py.
    """
    if not sources:
        raise BadInput("give at least one label source")
    given = synonyms
    synonyms = with_lexicon(synonyms) if rules else synonyms
    unifier = Unifier(vectors, synonyms, threshold, margin, decisions, rules)
    order = list(sources)
    if base is not None:
        unifier.start_from(base)
    else:
        largest = max(range(len(order)), key=lambda i: (len(order[i].categories), -i))
        order.insert(0, order.pop(largest))
    for source in order:
        unifier.add(source)
    extra = {
        "threshold": threshold,
        "margin": margin,
        "order": [s.name for s in order],
        "vectors": vectors.meta(),
        "synonyms": given.source if given else "none",
        "lexicon": "gaia (synonym sets, head-noun rules, hypernym table)" if rules else "none",
        "unknown_names": unifier.unknown,
        "conflicts": unifier.conflicts,
    }
    if base is not None:
        extra["base"] = base.source
    return unifier.result(extra)


def apply(space: LabelSpace, coco: dict[str, Any], dataset: str | None, origin: str) -> dict[str, Any]:
    """A COCO dict rewritten into the unified ids, with every unified category listed."""
    if not isinstance(coco, dict) or not isinstance(coco.get("categories"), list):
        raise BadInput("not a COCO annotations file (no 'categories' list)", origin)
    mapping = space.map_for(coco["categories"], dataset, origin=origin)
    annotations = []
    for ann in coco.get("annotations", []):
        if isinstance(ann, dict) and ann.get("category_id") in mapping:
            ann = {**ann, "category_id": mapping[ann["category_id"]]}
        annotations.append(ann)
    return {**coco, "annotations": annotations,
            "categories": [{"id": c["id"], "name": c["name"]} for c in space.categories]}
