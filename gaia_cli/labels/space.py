"""The unified label space artifact (`gaia/labels`), as `unify-labels` writes it.

Layout (JSON, schema 1), beside the usual header keys:

    "categories": [{"id": 1, "name": "person", "sources": ["coco:1", "voc:15"]}, ...]
        unified ids are 1..N in order (0 is the detector's background); `sources` are "dataset:category_id".
    "datasets": [{"name": "coco", "source": "...", "categories": [
        {"id": 1, "name": "person", "unified_id": 1, "similarity": 1.0, "how": "base"}, ...]}, ...]
        `how` is one of base (the first, largest space), merged (similar enough), new (appended),
        decided (a person's accept/reject decision).
    "threshold": 0.8, "vectors": {...}  (what unify-labels used; free-form for readers)

A detector trained on this space predicts labels 0..N where label k is unified category id k.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from gaia_cli.artifacts import JsonArtifact, read_json_artifact
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import clean

KIND = "gaia/labels"


@dataclasses.dataclass
class LabelSpace:
    categories: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    extra: dict[str, Any]
    source: str = "<memory>"

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.categories]

    def dataset(self, name: str) -> dict[str, Any]:
        for entry in self.datasets:
            if entry["name"] == name:
                return entry
        known = ", ".join(d["name"] for d in self.datasets)
        raise BadInput(f"has no dataset named {name!r} (it has: {known})", self.source)

    def map_for(self, categories: list[dict[str, Any]], dataset: str | None = None,
                origin: str = "dataset") -> dict[int, int]:
        """Category id -> unified id for a dataset's `categories`.

        With `dataset` given, that entry of the label space is used; otherwise the entry whose (id, name)
        pairs equal the dataset's, or failing that the one whose names do (a built-in `coco` entry numbers
        its categories 1..80, COCO's own files 1..90). Categories are matched by id when the ids agree, else
        by name. Every category must be mapped, or BadInput names the ones that are not.
        """
        pairs = {(c["id"], c["name"]) for c in categories}
        names = {clean(c["name"]) for c in categories}
        if dataset is None:
            matches = [d for d in self.datasets if {(c["id"], c["name"]) for c in d["categories"]} == pairs]
            matches = matches or [d for d in self.datasets if {clean(c["name"]) for c in d["categories"]} == names]
            if not matches:
                raise BadInput(f"its categories match none of the datasets in {self.source} "
                               f"({', '.join(d['name'] for d in self.datasets)}); run unify-labels with it, "
                               f"or name the dataset", origin)
            entry = matches[0]
        else:
            entry = self.dataset(dataset)
        if {(c["id"], c["name"]) for c in entry["categories"]} >= pairs:
            mapping = {c["id"]: c["unified_id"] for c in entry["categories"]}
        else:
            by_name = {clean(c["name"]): c["unified_id"] for c in entry["categories"]}
            mapping = {c["id"]: by_name[clean(c["name"])] for c in categories if clean(c["name"]) in by_name}
        missing = [f"{c['name']} (id {c['id']})" for c in categories if c["id"] not in mapping]
        if missing:
            raise BadInput(f"categories not in label space {entry['name']!r} of {self.source}: "
                           + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""), origin)
        return mapping

    def unified_ids(self, categories: list[dict[str, Any]], dataset: str | None) -> dict[int, int]:
        """Category id -> unified id for a dataset's `categories`: as unify-labels mapped them when the space
        names `dataset`, else by name (case, punctuation and plurals aside); categories it has not are left
        out. What select-data and finetune --extra-data both use, so that they agree."""
        if dataset is not None and any(d["name"] == dataset for d in self.datasets):
            return self.map_for(categories, dataset)
        by_name = {clean(c["name"]): c["id"] for c in self.categories}
        return {c["id"]: by_name[clean(c["name"])] for c in categories if clean(c["name"]) in by_name}

    def to_payload(self) -> dict[str, Any]:
        return {**self.extra, "categories": self.categories, "datasets": self.datasets}


def validate_payload(data: dict[str, Any], source: str) -> None:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise BadInput("gaia/labels has no categories", source)
    for i, cat in enumerate(cats, start=1):
        if not isinstance(cat, dict) or cat.get("id") != i or not isinstance(cat.get("name"), str):
            raise BadInput(f"gaia/labels category {i} must be {{'id': {i}, 'name': ...}} (ids are 1..N in order)",
                           source)
    datasets = data.get("datasets")
    if not isinstance(datasets, list):
        raise BadInput("gaia/labels has no 'datasets' list", source)
    for entry in datasets:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BadInput("gaia/labels dataset entries need a 'name'", source)
        for c in entry.get("categories", []):
            if not isinstance(c, dict) or not all(k in c for k in ("id", "name", "unified_id")):
                raise BadInput(f"gaia/labels dataset {entry['name']!r}: category entries need id, name, unified_id",
                               source)
            if not 1 <= c["unified_id"] <= len(cats):
                raise BadInput(f"gaia/labels dataset {entry['name']!r}: unified_id {c['unified_id']} out of range",
                               source)


def read_labels(spec: str | os.PathLike) -> LabelSpace:
    art: JsonArtifact = read_json_artifact(spec, KIND)
    validate_payload(art.data, art.source.name)
    extra = {k: v for k, v in art.data.items() if k not in ("categories", "datasets")}
    return LabelSpace(art.data["categories"], art.data["datasets"], extra, art.source.name)
