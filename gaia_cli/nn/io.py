"""Detector weights in `gaia/weights` HDF5 files: a supernet (role `supernet`) or one static path (`model`).

Meta datasets: `role`; `space` (the supernet's search space) or `arch` (the static model's path);
`classes` (label k is classes[k - 1]; 0 is background); and whatever the writer adds (training log, metrics).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from torch import nn

from gaia_cli.artifacts import H5Artifact, InputRef, write_h5
from gaia_cli.errors import BadInput
from gaia_cli.labels.surgery import grow_predictor, vectors_for
from gaia_cli.nn import HEAD_PREFIX
from gaia_cli.nn.detector import Supernet, build_static
from gaia_cli.space.arch import Arch, SearchSpace


ROLES = ("supernet", "model", "backbone")
HEADER_NAMES = ("header", "role", "classes", "space", "arch", "detector")  # what the header's own fields hold


@dataclasses.dataclass(frozen=True)
class WeightsHeader:
    """What a `gaia/weights` file says of itself, read without loading a tensor: its role, classes, the space
    (a supernet's or a backbone's) or the arch and detector settings (a static model's), and the other meta
    datasets by name (the training log, pretraining settings, metrics)."""

    path: Path
    ref: InputRef
    role: str
    classes: list[str]
    space: SearchSpace | None = None
    arch: Arch | None = None
    detector: dict[str, Any] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def weights_header(art: H5Artifact) -> WeightsHeader:
    """The header of an open `gaia/weights` artifact, checked: a known role, classes, its space or arch."""
    role = art.meta("role")
    if role not in ROLES:
        raise BadInput(f"holds weights of role {role!r}; expected one of {', '.join(ROLES)}", art.path)
    names = set(art.meta_names())
    # a backbone needs neither: its tensors are the ResNet's (pretrain writes both, for the Montage meter)
    classes = art.meta("classes") if "classes" in names or role != "backbone" else []
    if role != "backbone" and (not isinstance(classes, list) or not classes):
        raise BadInput("has no classes", art.path)
    space = SearchSpace.from_payload(art.meta("space"), str(art.path)) if "space" in names else None
    arch, detector = None, None
    if role == "model":
        if "arch" not in names or "detector" not in names:
            raise BadInput("is a static model without its arch or detector settings", art.path)
        arch, detector = Arch.from_dict(art.meta("arch"), str(art.path)), art.meta("detector")
    elif role == "supernet" and space is None:
        raise BadInput("is a supernet without its search space", art.path)
    meta = {name: art.meta(name) for name in sorted(names) if name not in HEADER_NAMES}
    return WeightsHeader(Path(art.path), art.ref, role, classes, space, arch, detector, meta)


def read_header(spec: str | os.PathLike, roles: tuple[str, ...] = ROLES, expected: str = "") -> WeightsHeader:
    """The header of a `gaia/weights` file (no tensors loaded), refused unless its role is one of `roles`:
    "holds a ROLE, expected EXPECTED" (by default the roles themselves)."""
    with H5Artifact(spec, "gaia/weights") as art:
        role = art.meta("role")  # the role first: a file of another role is refused for that, whatever it holds
        if role not in roles:
            raise BadInput(f"holds a {role}, expected {expected or ' or '.join(f'a {r}' for r in roles)}", art.path)
        return weights_header(art)


def save_detector(path: str | os.PathLike, model: nn.Module, classes: list[str], extra: dict[str, Any] | None = None,
                  inputs: list[InputRef] | None = None) -> dict[str, str]:
    """Write a supernet or a static model; returns the manifest line."""
    meta: dict[str, Any] = {"classes": classes, **(extra or {})}
    if isinstance(model, Supernet):
        meta.update(role="supernet", space=model.space.to_payload())
    else:
        if "arch" not in meta or "detector" not in meta:
            raise ValueError("a static model needs 'arch' and 'detector' in its meta")
        meta["role"] = "model"
    return write_h5(path, "gaia/weights", model.state_dict(), meta, inputs)


def load_detector(spec: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """A supernet or static model (in eval mode) from a `gaia/weights` file, with its meta and `ref`."""
    with H5Artifact(spec, "gaia/weights") as art:
        header = weights_header(art)
        role, classes = header.role, header.classes
        meta = {"role": role, "classes": classes, "ref": header.ref}
        if role == "supernet":
            model = Supernet(header.space, len(classes) + 1)
            meta["space"] = header.space
        elif role == "model":
            meta["arch"], meta["detector"] = header.arch, header.detector
            model = build_static(header.arch, len(classes) + 1, header.detector)
        else:
            raise BadInput(f"holds weights of role {role!r}; expected a supernet or a model", art.path)
        state = art.tensors()
        meta.update(header.meta)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or wrong:
        raise BadInput(f"weights do not fit the {role} they describe (missing {missing[:3]}, wrong shape {wrong[:3]})",
                       art.path)
    model.load_state_dict(state)
    return model.eval(), meta


def init_backbone(model: Supernet, spec: str | os.PathLike) -> dict[str, Any]:
    """Copy backbone weights into the supernet's leading channels and first blocks.

    `spec` is a `gaia/weights` file of role `backbone` (from `gaia pretrain`), or a torchvision ResNet state
    dict (`.pth`, loaded with `weights_only=True`: no code runs). Names are torchvision's (`conv1.weight`,
    `layer1.0.bn2.running_mean`, ...); the classifier `fc.*` and pretrain's dense head `montage_head.*` are skipped. A tensor larger than the supernet's
    in some dimension, or one the supernet lacks, is reported and skipped. The anchor paths (R50/R101 in the
    GAIA spaces) then start from those weights; the rest of the supernet keeps its initialisation.
    """

    import torch

    path = Path(spec)
    if not path.is_file():
        raise BadInput("no such file", path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    is_h5 = head == b"\x89HDF\r\n\x1a\n"
    # torch.save writes a zip archive (or, before torch 1.6, a pickle): anything else is not a .pth, and
    # torch.load's several lines about unpickling would only hide that
    if not is_h5 and not head.startswith((b"PK\x03\x04", b"\x80")):
        what = "a JSON file" if head.lstrip()[:1] in (b"{", b"[") else "neither HDF5 nor a torch .pth file"
        raise BadInput(f"is {what}; --init takes a backbone .h5 (from gaia pretrain) or a torchvision .pth", path)
    if is_h5:
        read_header(path, ("backbone",), "a backbone (from gaia pretrain), a supernet or a .pth")
        with H5Artifact(path, "gaia/weights") as art:
            source = art.tensors()
    else:
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a file that is not a state dict
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            raise BadInput(f"not a torch state dict ({type(exc).__name__}: {first})", path) from None
        source = source.get("state_dict", source) if isinstance(source, dict) else source
        if not isinstance(source, dict) or not all(torch.is_tensor(v) for v in source.values()):
            raise BadInput("not a state dict of tensors", path)
    body = model.backbone.body.state_dict()
    loaded, skipped = [], []
    with torch.no_grad():
        for name, tensor in source.items():
            target = body.get(name)
            if name.startswith(("fc.", HEAD_PREFIX)):
                continue
            if target is None or tensor.dim() != target.dim() or any(a > b for a, b in zip(tensor.shape, target.shape)):
                skipped.append(name)
                continue
            target[tuple(slice(0, n) for n in tensor.shape)] = tensor.to(target.dtype)
            loaded.append(name)
    model.backbone.body.load_state_dict(body)
    if not loaded:
        raise BadInput("no tensor of it fits the supernet's backbone (are these ResNet weights?)", path)
    return {"path": str(path), "loaded": len(loaded), "skipped": skipped}


def init_weights(model: Supernet, spec: str | os.PathLike, classes: list[str], labels=None) -> dict[str, Any]:
    """`train-supernet --init`: a whole supernet (`init_supernet`) or backbone weights (`init_backbone`)."""
    path = Path(spec)
    if path.is_file():
        with open(path, "rb") as fh:
            is_h5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
        if is_h5 and read_header(path).role == "supernet":
            return init_supernet(model, path, classes, labels)
    return init_backbone(model, path)


def init_supernet(model: Supernet, spec: str | os.PathLike, classes: list[str], labels=None) -> dict[str, Any]:
    """Start `model` from a whole supernet of the same space, its label space grown to `classes`.

    Every tensor is loaded; the box predictor is extended (gaia_cli.labels.surgery.grow_predictor): the old
    classes keep their rows and ids, each new class borrows its nearest old class's rows by the word vectors
    of `labels` (the grown gaia/labels space; without it new rows start fresh).
    """
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    with H5Artifact(spec, "gaia/weights") as art:
        header = weights_header(art)
        state = art.tensors()
    path, old, space = header.path, header.classes, header.space
    if not space.same_weights(model.space):  # a pruned space (or another name) trains the same weights
        raise BadInput(f"is a supernet over space {space.name!r}, whose depth, width, scale choices or detector "
                       f"differ from --space {model.space.name!r}'s: give the same --space, or one pruned from it "
                       f"(a supernet's space: gaia inspect)", path)
    prefix = "roi_heads.box_predictor."
    head = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    rest = {k: v for k, v in state.items() if not k.startswith(prefix)}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}
    wrong = sorted(k for k in expected if k not in rest or rest[k].shape != expected[k].shape)
    if wrong or "cls_score.weight" not in head:
        raise BadInput(f"weights do not fit the supernet of its space (missing or wrong shape: {wrong[:3]})", path)
    old_predictor = FastRCNNPredictor(head["cls_score.weight"].shape[1], len(old) + 1)
    old_predictor.load_state_dict(head)
    vectors = vectors_for(labels) if labels is not None and len(classes) > len(old) else None
    grown, surgery = grow_predictor(old_predictor, old, classes, vectors, str(path))
    model.load_state_dict({**rest, **{prefix + k: v for k, v in grown.state_dict().items()}})
    counts = {h: sum(1 for r in surgery if r["how"] == h) for h in ("kept", "borrowed", "new")}
    return {"path": str(path), "role": "supernet", "loaded": len(state), "skipped": [], "classes": counts,
            "surgery": surgery[len(old):]}
