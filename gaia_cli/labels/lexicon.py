"""When a merge proposed by word vectors is sound: head nouns, phrases, and general against specific names.

Averaged 50-dimensional word vectors rate names of related things as alike (`Fire Truck`/`Bomb` 0.80,
`Eggplant`/`Zucchini` 0.93, `Ring`/`Ring binder` 0.86), so a pair of names whose vectors pass the threshold
is merged only when the names themselves agree. Each name is read as a phrase: its words made singular, a
parenthesised qualifier dropped (`Egg (Food)` -> egg), its *head* the last word (`Kitchen & dining room
table` -> table), or the word before `of`/`for` (`iron for clothing` -> iron). Two phrases agree when:

1. their heads agree: the same word, a spelling variant (`jewelry`/`jewellery`: edit distance at most 2 between
   words of 5 letters or more whose own vectors are alike), or a run-together word ending in the other
   head (`houseplant` = house + plant). Otherwise they name different things, however alike their vectors
   (`Fire Truck`/`Bomb`, `Sneakers`/`Jeans`, `Tissue`/`Facial tissue holder`);
2. their modifiers do not contradict: one's modifiers include the other's (`Dining Table` / `Kitchen &
   dining room table`). Two names with different modifiers are different kinds of the head (`sports ball` /
   `Golf Ball`);
3. a general name absorbs a specific one (`Fruit` / `Kiwi fruit`) only when that is what the datasets
   mean: the specific name is its dataset's residual class (`Other Fish`, `Wild Bird`: a catch-all
   modifier), or its dataset has neither the general thing nor another kind of it, so the specific name
   *is* that dataset's class for it (`Tape` / `Adhesive tape`). A dataset that also has `Apple` and `Banana`
   splits fruit into kinds, and its `Kiwi fruit` is one kind, not fruit. Kinds are other names with the same
   head, words run into it (`hairbrush`), or the kinds that the hypernym table lists for the general word.

The lexicon (gaia_cli/resources/label_lexicon.json) holds the catch-all modifiers, the hypernym table, and
a few synonym sets WordNet has and LVIS's lists lack (`tv`/`television`, `remote`/`remote control`), which
take part as synonyms, not through vectors.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources
from typing import Callable, Iterable

from gaia_cli.labels.names import FUNCTION_WORDS, clean, singular

_QUALIFIER = re.compile(r"\([^)]*\)")
SPELLING_MIN_LEN = 5
SPELLING_MAX_EDITS = 2
SPELLING_MIN_COSINE = 0.6  # jewelry/jewellery 0.92, racket/racquet 0.69; phone/plane 0.52, truck/trunk 0.54


@functools.lru_cache(maxsize=None)
def lexicon() -> dict:
    with resources.files("gaia_cli.resources").joinpath("label_lexicon.json").open(encoding="utf-8") as fh:
        data = json.load(fh)
    hyper = {" ".join(singular(w) for w in clean(k).split()): {_key(v) for v in kinds}
             for k, kinds in data["hypernyms"].items()}
    return {"synonyms": [s.split("/") for s in data["synonyms"]], "catch_all": set(data["catch_all"]),
            "hypernyms": hyper}


def _key(text: str) -> str:
    return " ".join(singular(w) for w in clean(text).split())


@dataclasses.dataclass(frozen=True)
class Phrase:
    """One alternative of a name as the rules read it: singular words, qualifier and function words out."""

    words: tuple[str, ...]

    @property
    def head(self) -> str:
        return self.words[-1]

    @property
    def modifiers(self) -> tuple[str, ...]:
        return self.words[:-1]

    @property
    def key(self) -> str:
        return " ".join(self.words)

    def plain(self, catch_all: set[str]) -> "Phrase":
        """Without catch-all modifiers (`other fish` -> fish)."""
        kept = tuple(w for w in self.modifiers if w not in catch_all)
        return Phrase(kept + (self.head,))


@functools.lru_cache(maxsize=None)
def phrases(name: str) -> tuple[Phrase, ...]:
    """The name's alternatives (`a/b`) as phrases: `Egg (Food)` -> [egg], `iron for clothing` -> [iron]."""
    unqualified = _QUALIFIER.sub(" ", name)
    text = clean(unqualified) if clean(unqualified) else clean(name)
    out: list[Phrase] = []
    for part in text.split("/"):
        words = part.split()
        for sep in ("of", "for"):  # `cup of coffee`: a cup; `iron for clothing`: an iron
            if sep in words[1:-1]:
                words = words[: words.index(sep)]
        words = [singular(w) for w in words if w not in FUNCTION_WORDS] or [singular(w) for w in words]
        if words and Phrase(tuple(words)) not in out:
            out.append(Phrase(tuple(words)))
    return tuple(out)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclasses.dataclass
class Verdict:
    ok: bool
    reason: str
    kind: str = ""  # for a sound pair: same | qualified | general (how much review it deserves)


def _split_head(word: str, head: str, known: Callable[[str], bool]) -> tuple[str, ...] | None:
    """`houseplant` with head `plant` -> (house, plant); None if `word` does not run a word into `head`."""
    if len(word) > len(head) + 2 and word.endswith(head) and known(word[: -len(head)]):
        return (word[: -len(head)], head)
    return None


class Rules:
    """The soundness rules, with what they need: word similarity, word lookup and the datasets' names."""

    def __init__(self, word_cosine: Callable[[str, str], float | None], known: Callable[[str], bool]):
        self.word_cosine, self.known = word_cosine, known
        lex = lexicon()
        self.catch_all: set[str] = lex["catch_all"]
        self.hypernyms: dict[str, set[str]] = lex["hypernyms"]

    def heads_agree(self, a: str, b: str) -> bool:
        if a == b:
            return True
        if min(len(a), len(b)) >= SPELLING_MIN_LEN and a[0] == b[0] and edit_distance(a, b) <= SPELLING_MAX_EDITS:
            cos = self.word_cosine(a, b)
            return cos is not None and cos >= SPELLING_MIN_COSINE
        return False

    def _align(self, a: Phrase, b: Phrase) -> tuple[Phrase, Phrase] | None:
        """The two phrases with agreeing heads, splitting a run-together head if that is what it takes."""
        if self.heads_agree(a.head, b.head):
            return a, b
        split = _split_head(a.head, b.head, self.known)
        if split:
            return Phrase(a.modifiers + split), b
        split = _split_head(b.head, a.head, self.known)
        if split:
            return a, Phrase(b.modifiers + split)
        return None

    def names(self, names: Iterable[str]) -> "DatasetNames":
        return DatasetNames(names, self)

    def judge(self, a: Phrase, b: Phrase, names_a: "DatasetNames", own_a: str, names_b: "DatasetNames",
              own_b: str) -> Verdict:
        """Whether phrase `a` (of name `own_a`, in a dataset with `names_a`) and `b` may be one category."""
        aligned = self._align(a, b)
        if aligned is None:
            return Verdict(False, f"head nouns differ ({a.head} / {b.head})")
        a, b = aligned
        pa, pb = a.plain(self.catch_all), b.plain(self.catch_all)
        ma, mb = set(pa.modifiers), set(pb.modifiers)
        if ma and mb:
            if ma <= mb or mb <= ma:
                return Verdict(True, "same head, modifiers agree", "qualified")
            return Verdict(False, f"different kinds of {b.head} ({' '.join(pa.modifiers)} / {' '.join(pb.modifiers)})")
        if not ma and not mb:
            catch = set(a.modifiers) | set(b.modifiers)
            return Verdict(True, "same head" + (", residual class" if catch else ""), "general" if catch else "same")
        # one general (no modifiers), one specific: is the specific one its dataset's only kind of the thing?
        names, own, general = (names_a, own_a, pb) if ma else (names_b, own_b, pa)
        other = names.kind_of(general.head, own)
        if other is not None:
            return Verdict(False, f"{own!r} is one kind of {general.head} in its dataset (which also has {other!r})")
        return Verdict(True, f"{own!r} is its dataset's only kind of {general.head}", "general")


class DatasetNames:
    """A dataset's names indexed by head and by key, to find its other kinds of a general thing."""

    def __init__(self, names: Iterable[str], rules: Rules):
        self.hypernyms = rules.hypernyms
        self.known = rules.known
        self.by_head: dict[str, list[tuple[str, Phrase]]] = {}
        self.by_key: dict[str, list[str]] = {}
        for name in names:
            for p in phrases(name):
                p = p.plain(rules.catch_all)
                self.by_head.setdefault(p.head, []).append((name, p))
                self.by_key.setdefault(p.key, []).append(name)
        self._cache: dict[tuple[str, str], str | None] = {}

    def kind_of(self, general: str, own: str) -> str | None:
        """A name other than `own` for `general` or a kind of it: the general word itself (`Pen/Pencil` beside
        `Eyeliner Pencil`), the same head with modifiers, a word run into the head (`hairbrush`), or a kind the
        hypernym table lists."""
        if (general, own) not in self._cache:
            mine = clean(own)
            found = [n for n, _ in self.by_head.get(general, [])]
            found += [n for head, named in self.by_head.items() if _split_head(head, general, self.known)
                      for n, _ in named]
            for kind in sorted(self.hypernyms.get(general, ())):
                found += self.by_key.get(kind, []) + [n for n, _ in self.by_head.get(kind, [])]
            self._cache[(general, own)] = next((n for n in found if clean(n) != mine), None)
        return self._cache[(general, own)]
