"""An exported detector (from `gaia export`) read back and run: ONNX Runtime for `.onnx`, `torch.jit.load` for TorchScript.

`open_exported(path)` tells the file's format by its bytes (HDF5 is gaia's own weights: None; a zip archive is
TorchScript; otherwise an ONNX protobuf with gaia's metadata) and returns an `ExportedDetector`, which is
called like a torchvision detector in eval mode: a list of [3, H, W] images in, a list of {"boxes",
"labels", "scores"} tensors out (one image at a time: the exported graph takes one; an ONNX graph of a
fixed input size gets each image letterboxed into it: resized by one factor to fit, aspect kept, padded at the
bottom and right; its boxes are mapped back). Its `meta` holds the classes
and the arch the export recorded.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from gaia_cli.artifacts import InputRef, resolve_path, sha256_file
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.nn.io import load_detector
from gaia_cli.space.arch import Arch

META_KEY = "gaia"  # gaia's metadata (JSON): the ONNX model's metadata_props key
EXTRA_FILE = "gaia.json"  # and the TorchScript archive's extra file
EXPORT_HINT = "pip install 'gaia-cli[export]'"


def need_onnx():
    """(onnx, onnxruntime), or BadInput naming the extra that brings them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise BadInput(f"ONNX models need the optional packages onnx and onnxruntime ({exc.name} is missing): "
                       f"{EXPORT_HINT}") from None
    return onnx, onnxruntime

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def exported_format(path: Path) -> str | None:
    """'torchscript', 'onnx', or None for anything else (gaia's HDF5 weights among them)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(HDF5_SIGNATURE) or not head:
        return None
    if zipfile.is_zipfile(path):
        return "torchscript"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # ONNX: field 1 (ir_version), a varint
        return "onnx"
    return None


def _read_meta(text: str | bytes, path: Path) -> dict[str, Any]:
    """gaia's metadata of an exported file, checked for what the readers use."""
    try:
        meta = json.loads(text)
    except ValueError:
        raise BadInput("holds gaia metadata that is not JSON", path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list) or not isinstance(meta.get("arch"), dict) \
            or not isinstance(meta.get("input_size"), list):
        raise BadInput("holds gaia metadata without its classes, arch and input size", path)
    return meta


def letterbox(image: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, float]:
    """`image` [3, h, w] resized by one factor to fit inside `size` (H, W), aspect kept, zero-padded at the
    bottom and right; (the padded image, the factor)."""
    h, w = image.shape[-2:]
    factor = min(size[0] / h, size[1] / w)
    nh, nw = min(size[0], round(h * factor)), min(size[1], round(w * factor))
    resized = torch.nn.functional.interpolate(image[None].float(), size=(nh, nw), mode="bilinear",
                                              align_corners=False)[0]
    out = resized.new_zeros(3, *size)
    out[:, :nh, :nw] = resized
    return out, factor


class ExportedDetector:
    """An exported file as a detector: `__call__(images) -> detections`, `meta`, `format`, `device`."""

    def __init__(self, path: Path, fmt: str, device: torch.device | None = None):
        self.path, self.format = path, fmt
        self.device = device or torch.device("cpu")
        if fmt == "onnx":
            onnx, ort = need_onnx()
            try:
                proto = onnx.load(str(path), load_external_data=False)
            except Exception as exc:  # a protobuf parse error has no common class
                raise BadInput(f"is not a readable ONNX model ({type(exc).__name__})", path) from None
            props = {p.key: p.value for p in proto.metadata_props}
            del proto
            if META_KEY not in props:
                raise BadInput("is an ONNX model without gaia's metadata (export it with gaia export)", path)
            self.meta = _read_meta(props[META_KEY], path)
            providers = ["CPUExecutionProvider"]
            if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch: a fair comparison
            try:
                self.session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:  # onnxruntime's errors share no public base class
                raise BadInput(f"ONNX Runtime cannot run it ({str(exc).splitlines()[0][:160]})", path) from None
            self.providers = self.session.get_providers()
        else:
            import torchvision  # noqa: F401  (registers torchvision::nms and roi_align, which the model calls)

            extra = {EXTRA_FILE: ""}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                    self.module = torch.jit.load(str(path), map_location=self.device, _extra_files=extra)
            except (RuntimeError, ValueError) as exc:
                raise BadInput(f"is not a readable TorchScript model ({str(exc).strip().splitlines()[0][:120]})",
                               path) from None
            if not extra[EXTRA_FILE]:
                raise BadInput("is a TorchScript model without gaia's metadata (export it with gaia export)", path)
            self.meta = _read_meta(extra[EXTRA_FILE], path)
            self.module.eval()
            self.providers = [str(self.device)]

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    def eval(self) -> "ExportedDetector":
        return self

    def to(self, device) -> "ExportedDetector":  # an ONNX session keeps its providers; TorchScript moves
        if self.format == "torchscript":
            self.device = torch.device(device)
            self.module.to(self.device)
        return self

    def fixed_size(self) -> tuple[int, int] | None:
        size = self.meta.get("input_size")
        return None if self.meta.get("dynamic", True) or size is None else (size[0], size[1])

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:
            if self.format == "onnx":
                fixed = self.fixed_size()
                h, w = image.shape[-2:]
                factor = 1.0
                if fixed is not None and (h, w) != fixed:  # letterboxed into the graph's input, boxes mapped back
                    image, factor = letterbox(image, fixed)
                try:
                    boxes, labels, scores = self.session.run(None, {"image": image.detach().cpu().float().numpy()})
                except Exception as exc:  # onnxruntime's errors share no public base class
                    message = str(exc).replace("\n", " ")
                    raise RunFailure(f"ONNX Runtime failed on an image of {h}x{w}: {message[:300]}") from None
                boxes = torch.from_numpy(boxes) / factor
                if factor != 1.0:
                    boxes = torch.minimum(boxes, boxes.new_tensor([w, h, w, h]))
                out.append({"boxes": boxes, "labels": torch.from_numpy(labels).long(),
                            "scores": torch.from_numpy(scores)})
            else:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "RCNN always returns a (Losses, Detections) tuple"
                    _, detections = self.module([image.to(self.device)])
                out.append({k: v.cpu() for k, v in detections[0].items()})
        return out


def open_exported(spec: str | Path, device: torch.device | None = None) -> ExportedDetector | None:
    """The exported detector at `spec`, or None when it is not an exported file (gaia's HDF5 weights)."""
    path = resolve_path(spec)
    fmt = exported_format(path)
    return None if fmt is None else ExportedDetector(path, fmt, device)


def as_model(detector: ExportedDetector) -> tuple[ExportedDetector, dict[str, Any]]:
    """(the detector, a meta like `load_detector`'s for a static model: role, classes, arch, ref, exported)."""
    meta = detector.meta
    return detector, {"role": "model", "classes": meta["classes"], "arch": Arch.from_dict(meta["arch"], str(detector.path)),
                      "detector": meta.get("detector"), "ref": InputRef(str(detector.path), sha256_file(detector.path)),
                      "exported": {k: meta.get(k) for k in ("format", "opset", "input_size", "dynamic", "source")}}


def load_any(spec: str, device: torch.device | None = None):
    """(model, meta) of gaia's weights (`nn.io.load_detector`) or of an exported file (`as_model`)."""
    exported = open_exported(spec, device)
    return as_model(exported) if exported is not None else load_detector(spec)
