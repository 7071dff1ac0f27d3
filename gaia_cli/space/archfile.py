"""Archs from any gaia file: the one reader every command uses.

`read_arch` takes exactly one arch: a `gaia/arch` file, a hand-written {"depth", "width", "scale"} object, or
the `best` of a `gaia/ranking` (what `finetune --arch`, `eval --arch`, `pretrain --arch` and `space flops`
take). `read_archs` takes one or many: a `gaia/arch`, a `gaia/arch-set` (`search --top` and `--pareto`), a
`gaia/ranking`'s candidates, or JSON lines of archs (`space sample`) (what `rank --candidates` and
`bench-latency` take). Both read `-` (stdin) and manifest lines too; what they refuse is one line (BadInput).
"""

from __future__ import annotations

from typing import Any

from gaia_cli import console
from gaia_cli.artifacts import check_header, loads_json, parse_json, read_input
from gaia_cli.errors import BadInput
from gaia_cli.space.arch import PRESETS, Arch, preset, read_space
from gaia_cli.space.flops import summary

# the kinds read_archs takes, and read_arch
SET_KINDS = ("gaia/arch", "gaia/arch-set", "gaia/ranking")
ONE_KINDS = ("gaia/arch", "gaia/ranking")


def read_arch(spec: str, supernet_sha256: str | None = None) -> Arch:
    """A `gaia/arch` file, a hand-written {"depth", "width", "scale"} object, or a `gaia/ranking` (its best arch;
    refused when `supernet_sha256` is given and the ranking is of another supernet). `-` reads stdin."""
    return read_arch_and_space(spec, supernet_sha256)[0]


def read_arch_and_space(spec: str, supernet_sha256: str | None = None) -> tuple[Arch, str | None]:
    """`read_arch`, and the name of the space the record says the arch is of (the `space` that `space
    sample`, `search` and `rank` write), or None where it names none (a hand-written arch)."""
    src = read_input(spec)
    obj = parse_json(src.data, src.name)
    if isinstance(obj, dict) and "kind" in obj:
        if check_header(obj, ONE_KINDS, src.name) == "gaia/ranking":
            best = obj.get("best")
            named = (best.get("space") if isinstance(best, dict) else None) or obj.get("space")
            return best_of_ranking(obj, src.name, supernet_sha256), named if isinstance(named, str) else None
    named = obj.get("space") if isinstance(obj, dict) else None
    return Arch.from_dict(obj, src.name), named if isinstance(named, str) else None


def best_of_ranking(obj: dict[str, Any], source: str, supernet_sha256: str | None = None) -> Arch:
    """The `best` of a gaia/ranking: what `finetune --arch`, `eval --arch` and `space flops` take from one.

    With `supernet_sha256` (the --weights a command uses), a ranking of another supernet is refused.
    """
    best = obj.get("best")
    if not isinstance(best, dict):
        why = "it is partial (merge its shards first)" if obj.get("complete") is False else "it names no best"
        raise BadInput(f"a gaia/ranking with no best arch: {why}", source)
    ranked = (obj.get("supernet") or {}).get("sha256")
    if supernet_sha256 is not None and ranked is not None and ranked != supernet_sha256:
        raise BadInput(f"is a ranking of another supernet (sha256 {ranked[:12]}...; --weights is "
                       f"{supernet_sha256[:12]}...)", source)
    return Arch.from_dict(best, source)


def read_archs(spec: str, purpose: str | None = None) -> tuple[list[Arch], dict[str, Any]]:
    """Archs from a gaia/arch, a gaia/arch-set, JSON lines of gaia/arch (`space sample`) or a gaia/ranking (its
    candidates), in file order with repeats kept, and what the file says of them: `source` (a name for
    messages), `ref` (its InputRef) and, from a ranking, `supernet` (for a check by the caller).

    `-` reads stdin. A file that holds no archs is refused; `purpose` (e.g. "no candidates to rank") ends
    that message.
    """
    src = read_input(spec)
    try:
        text = src.data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("is not UTF-8 text, expected archs", src.name) from None
    if not text.strip():
        raise BadInput(f"is empty: {purpose}" if purpose else
                       "is empty, expected archs (a JSON arch, an arch-set, a ranking, or JSON lines of archs)",
                       src.name)
    try:
        try:
            objs = [loads_json(text)]  # one (possibly pretty-printed) document
        except ValueError:
            try:
                objs = [loads_json(ln) for ln in text.splitlines() if ln.strip()]  # JSON lines
            except ValueError as exc:
                raise BadInput(f"neither a JSON document nor JSON lines of archs ({exc})", src.name) from None
    except RecursionError:
        raise BadInput("is nested too deeply to hold archs", src.name) from None
    archs: list[Arch] = []
    about: dict[str, Any] = {"source": src.name, "ref": src.ref}
    for obj in objs:
        kind = check_header(obj, SET_KINDS, src.name) if isinstance(obj, dict) and "kind" in obj else None
        if kind == "gaia/arch-set":
            items = obj.get("archs")
            if not isinstance(items, list):
                raise BadInput("a gaia/arch-set needs 'archs', a list of archs", src.name)
            archs += [Arch.from_dict(a, src.name) for a in items]
        elif kind == "gaia/ranking":
            items = obj.get("candidates")
            if not isinstance(items, list):
                raise BadInput("a gaia/ranking needs 'candidates', a list", src.name)
            archs += [Arch.from_dict(c.get("arch") if isinstance(c, dict) else c, src.name) for c in items]
            about["supernet"] = obj.get("supernet")
        else:
            archs.append(Arch.from_dict(obj, src.name))
    if not archs:
        raise BadInput("holds no archs" + (f": {purpose}" if purpose else ""), src.name)
    return archs, about


def arch_flops(spec: str, space: str | None = None, classes: int = 81) -> dict[str, Any]:
    """`space flops`: an arch's FLOPs and parameters with the detector settings of `space` (checked to hold
    the arch), else of the preset the arch's record names, else R50's (a hand-written arch)."""
    arch, named = read_arch_and_space(spec)
    if space is not None:
        s = read_space(space)
    elif named is not None and named.lower() in PRESETS:
        s = preset(named)
    else:
        if named is not None:
            console.warn(f"the arch names space {named!r}, not a preset: R50's detector settings are used "
                         "(--space FILE for that space's)")
        return summary(arch, classes, None)
    s.check(arch, spec)
    if space is None:
        console.info(f"detector settings of space {s.name}, which the arch names (--space to use another's)")
    return summary(arch, classes, s.detector)
