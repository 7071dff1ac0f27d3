"""Category names: normalisation, alternatives, plural-insensitive keys, and synonym sets.

A name is lower-cased; `_` and `-` become spaces; other punctuation goes. `A/B` names (Objects365's
`Cabinet/shelf`, LVIS's `sofa/couch/lounge`) are alternatives, compared one by one. Each alternative has a
*key* with every word made singular (`Other Shoes` -> `other shoe`): two names sharing a key are the same
category without asking the vectors.

Synonym sets come from LVIS's category definitions (each LVIS category lists its WordNet synonyms, e.g.
`airplane/aeroplane`), shipped with gaia; `--synonyms FILE` takes one set per line in the same `a/b/c` form.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path

from gaia_cli.errors import BadInput

_PUNCT = re.compile(r"[^\w/ ]+")
_SPACES = re.compile(r"\s+")
# words whose final s is not a plural ending
_NOT_PLURAL = {"bus", "glass", "glasses", "scissors", "pants", "shorts", "jeans", "tennis", "chess", "dress",
               "grass", "gas", "lens", "cactus", "asparagus", "octopus", "hippopotamus", "walrus", "bus",
               "canvas", "trousers", "goggles", "binoculars", "pliers", "tongs", "tweezers", "news",
               "species", "series", "billiards", "mattress", "compass", "harness", "iris", "hummus",
               "swimwear", "sunglasses", "is", "as", "this", "us", "gps", "dvds", "cds"}


def clean(name: str) -> str:
    """Lower case, `_`/`-` as spaces, punctuation other than `/` removed, spaces collapsed."""
    text = name.lower().replace("_", " ").replace("-", " ")
    text = _PUNCT.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


# words that carry no meaning of their own in a category name: left out of phrase vectors and keys
FUNCTION_WORDS = {"a", "an", "the", "of", "for", "and", "or", "in", "on", "with", "to", "at", "by", "from"}


def alternatives(name: str) -> list[list[str]]:
    """The name's alternatives, each a list of words: `Handbag/Satchel` -> [[handbag], [satchel]].

    An alternative that is another one plus a qualifier (LVIS's `beef/beef food`, `iron/iron for clothing`,
    flattened from `beef_(food)`) is dropped: the qualifier says which sense is meant, it is no synonym.
    Function words are left out.
    """
    alts: list[list[str]] = []
    for part in clean(name).split("/"):
        words = [w for w in part.split() if w not in FUNCTION_WORDS] or part.split()
        if words and words not in alts:
            alts.append(words)
    return [a for a in alts if not any(len(b) < len(a) and a[: len(b)] == b for b in alts)]


def singular(word: str) -> str:
    """A plain English singular: enough to match `Sneakers` with `sneaker` and `boxes` with `box`."""
    if word in _NOT_PLURAL or len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if word.endswith("oes") and len(word) > 5:  # tomatoes, potatoes (but not shoes)
        return word[:-2]
    return word[:-1]


def key(words: list[str]) -> str:
    return " ".join(singular(w) for w in words)


def keys(name: str) -> list[str]:
    """Plural-insensitive keys of every alternative, with and without spaces (`hot dog` = `hotdog`)."""
    out: list[str] = []
    for alt in alternatives(name):
        for k in (key(alt), key(alt).replace(" ", "")):
            if k not in out:
                out.append(k)
    return out


class Synonyms:
    """Synonym sets: `group(key)` is the id of the set a key belongs to, or None."""

    def __init__(self, sets: list[list[str]], source: str):
        self.source = source
        self._group: dict[str, int] = {}
        for i, names in enumerate(sets):
            for name in names:
                for k in keys(name):
                    self._group.setdefault(k, i)
        self.size = len(sets)

    def group(self, k: str) -> int | None:
        return self._group.get(k)

    def joined(self, sets: list[list[str]], source: str) -> "Synonyms":
        """These sets and more: a new set sharing a name with an old one joins it (`tv` joins `tv set`)."""
        out = Synonyms([], f"{self.source}+{source}")
        out._group, out.size = dict(self._group), self.size
        for names in sets:
            ks = [k for name in names for k in keys(name)]
            old = sorted({g for k in ks if (g := out._group.get(k)) is not None})
            gid = old[0] if old else out.size
            out.size += not old
            for k in ks:
                out._group.setdefault(k, gid)
        return out


def builtin_label_spaces() -> dict[str, list[str]]:
    with resources.files("gaia_cli.resources").joinpath("label_spaces.json").open(encoding="utf-8") as fh:
        return json.load(fh)


@functools.lru_cache(maxsize=None)
def lvis_synonyms() -> Synonyms:
    sets = [name.split("/") for name in builtin_label_spaces()["lvis"] if "/" in name]
    return Synonyms(sets, "lvis")


def load_synonyms(spec: str) -> Synonyms | None:
    """`lvis` (the default), `none`, or a file with one `a/b/c` set per line (`#` starts a comment)."""
    if spec == "none":
        return None
    if spec == "lvis":
        return lvis_synonyms()
    path = Path(spec)
    if not path.is_file():
        raise BadInput("no such synonyms file (or use 'lvis' or 'none')", path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise BadInput("is not UTF-8 text", path) from None
    sets = [ln.split("#", 1)[0].split("/") for ln in lines]
    sets = [[n.strip() for n in s if n.strip()] for s in sets]
    return Synonyms([s for s in sets if len(s) > 1], str(path))
