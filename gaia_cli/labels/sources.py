"""Label sources for `unify-labels`: a dataset's name and its categories (id, name).

A source is given as a COCO annotations file (its `categories`), a text file (one name per line, `#` starts
a comment; ids 1..N in order), or a built-in public dataset by name. `NAME=SOURCE` names it; otherwise a
file's stem names it (`instances_train2017.json` -> `train2017`) and a built-in its canonical name.
A built-in name means the built-in even where a folder of that name exists; a file of that name is read
instead (with a warning), and `builtin:NAME` always means the built-in.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from gaia_cli import console
from gaia_cli.artifacts import parse_json, read_input
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import builtin_label_spaces, clean

# canonical name -> key in resources/label_spaces.json, and the aliases users type
BUILTINS = {
    "coco": ("coco", ()),
    "voc": ("VOC", ("pascal", "pascalvoc")),
    "objects365": ("Objects365", ("o365",)),
    "openimages": ("open-images-v7", ("oid", "openimagesv7")),
    "lvis": ("lvis", ()),
    "kitti": ("kitti", ()),
    "dota": ("DOTAv1", ("dotav1",)),
    "visdrone": ("VisDrone", ()),
    "argoverse": ("Argoverse", ()),
}


@dataclasses.dataclass
class LabelSource:
    name: str
    origin: str  # "builtin:coco", or the file path
    categories: list[dict]  # [{"id": int, "name": str}]

    def __post_init__(self) -> None:
        if not self.categories:
            raise BadInput("has an empty label list", self.origin)
        seen: dict[str, str] = {}
        for cat in self.categories:
            c = clean(cat["name"])
            if not c:
                raise BadInput(f"category {cat['id']} has an empty name", self.origin)
            if c in seen:
                raise BadInput(f"names {seen[c]!r} and {cat['name']!r} are the same category twice in one dataset",
                               self.origin)
            seen[c] = cat["name"]
        ids = [c["id"] for c in self.categories]
        if len(set(ids)) != len(ids):
            raise BadInput("has duplicate category ids", self.origin)


def _builtin_key(text: str) -> str | None:
    wanted = re.sub(r"[^a-z0-9]", "", text.lower())
    for canonical, (_, aliases) in BUILTINS.items():
        if wanted == canonical or wanted in aliases:
            return canonical
    return None


def builtin(name: str) -> LabelSource:
    canonical = _builtin_key(name)
    if canonical is None:
        raise BadInput(f"unknown built-in dataset {name!r} (known: {', '.join(BUILTINS)})")
    names = builtin_label_spaces()[BUILTINS[canonical][0]]
    return LabelSource(canonical, f"builtin:{canonical}",
                       [{"id": i, "name": n} for i, n in enumerate(names, start=1)])


def _from_file(path: Path, name: str | None) -> LabelSource:
    src = read_input(path)
    stem = path.stem.split("instances_", 1)[-1]
    text_start = src.data.lstrip()[:1]
    if path.suffix.lower() == ".json" or text_start in (b"{", b"["):
        obj = parse_json(src.data, src.name)
        cats = obj.get("categories") if isinstance(obj, dict) else None
        if not isinstance(cats, list):
            raise BadInput("has no 'categories' list (expected a COCO annotations file)", path)
        for cat in cats:
            if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
                raise BadInput(f"category {cat!r:.60} needs an integer 'id' and a 'name'", path)
        categories = [{"id": c["id"], "name": c["name"]} for c in cats]
    else:
        try:
            lines = src.data.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise BadInput("is not UTF-8 text (expected one category name per line)", path) from None
        names = [ln.split("#", 1)[0].strip() for ln in lines]
        categories = [{"id": i, "name": n} for i, n in enumerate((n for n in names if n), start=1)]
    return LabelSource(name or stem, str(path), categories)


def parse_source(spec: str) -> LabelSource:
    """`NAME=SOURCE` or `SOURCE`, where SOURCE is a file or a built-in dataset name."""
    name = None
    if "=" in spec and not Path(spec).exists():
        name, spec = spec.split("=", 1)
        if not name:
            raise BadInput(f"empty dataset name in {name}={spec}")
    path = Path(spec)
    forced = spec.startswith("builtin:")
    known = _builtin_key(spec.removeprefix("builtin:"))
    if path.is_file() and not forced:  # a file wins over a built-in name, but not silently
        if known:
            console.warn(f"{spec}: reading the file {spec!r}, not the built-in {known} label space "
                         f"(write builtin:{known} for that)")
        return _from_file(path, name)
    if known:  # a folder named `coco/` in the working directory does not hide the built-in `coco`
        source = builtin(spec.removeprefix("builtin:"))
        return dataclasses.replace(source, name=name) if name else source
    if path.exists():
        return _from_file(path, name)  # a directory or a device: refused there, naming it
    raise BadInput(f"no such file, and not a built-in dataset (known: {', '.join(BUILTINS)})", spec)


def parse_sources(specs: list[str]) -> list[LabelSource]:
    sources = [parse_source(s) for s in specs]
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInput(f"two sources are both named {dupes[0]!r}; name them with NAME=SOURCE")
    return sources
