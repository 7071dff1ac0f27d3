"""Is the exported model the model? Its detections against PyTorch's, image by image.

Each PyTorch detection must have a partner among the exported model's detections of the same image: the
same label, every box coordinate within `BOX_TOLERANCE` pixels and the score within `SCORE_TOLERANCE`
(greedy, by descending score); and no exported detection may be left without one. Two kinds of detection
are excused, since a difference far inside the tolerances can move them across a cut: one whose score lies
within `SCORE_TOLERANCE` of the model's score threshold (`box_score_thresh`), and, in an image that holds
the most detections the model keeps (`detections_per_img`), one within `SCORE_TOLERANCE` of the lowest score
kept. The report gives each image's matched and unmatched counts and largest differences; the worst image
is the one with the most unmatched detections, then the largest box difference.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import DetectionDataset
from gaia_cli.data.toy import class_names, render_image
from gaia_cli.errors import RunFailure

BOX_TOLERANCE = 0.05  # pixels of the input image, per coordinate
SCORE_TOLERANCE = 1e-3


def compare_image(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor], score_threshold: float,
                  cap: int) -> dict[str, Any]:
    """Matched and unmatched detections of one image, and the largest differences of the matched ones."""
    used = torch.zeros(len(got["scores"]), dtype=torch.bool)
    box_diff = score_diff = 0.0
    matched = 0
    unmatched_ref = []
    order = torch.argsort(ref["scores"], descending=True)
    for i in order.tolist():
        same = (got["labels"] == ref["labels"][i]) & ~used
        if same.any():
            d_box = (got["boxes"] - ref["boxes"][i]).abs().amax(dim=1)
            d_score = (got["scores"] - ref["scores"][i]).abs()
            ok = same & (d_box <= BOX_TOLERANCE) & (d_score <= SCORE_TOLERANCE)
            if ok.any():
                j = int(torch.nonzero(ok)[torch.argmin(d_box[ok])])
                used[j] = True
                matched += 1
                box_diff, score_diff = max(box_diff, float(d_box[j])), max(score_diff, float(d_score[j]))
                continue
        unmatched_ref.append(float(ref["scores"][i]))
    unmatched_got = got["scores"][~used].tolist()

    def excused(score: float, scores: torch.Tensor) -> bool:
        if abs(score - score_threshold) <= SCORE_TOLERANCE:
            return True
        return len(scores) >= cap and abs(score - float(scores.min())) <= SCORE_TOLERANCE

    bad = [s for s in unmatched_ref if not excused(s, ref["scores"])] + \
          [s for s in unmatched_got if not excused(s, got["scores"])]
    return {"detections": len(ref["scores"]), "exported_detections": len(got["scores"]), "matched": matched,
            "unmatched": len(bad), "excused": len(unmatched_ref) + len(unmatched_got) - len(bad),
            "max_box_diff": round(box_diff, 6), "max_score_diff": round(score_diff, 7)}


def compare(reference: Callable, exported: Callable, images: list[tuple[str, torch.Tensor]], score_threshold: float,
            cap: int) -> dict[str, Any]:
    """Both models on every image; the per-image reports, the worst image, and whether all agree."""
    per_image = []
    with torch.no_grad():
        for name, image in images:
            ref = {k: v.cpu() for k, v in reference([image])[0].items()}
            try:
                got = exported([image])[0]
            except RunFailure as exc:
                raise RunFailure(f"the exported model fails on {name}: {exc.message} (nothing written)") from None
            per_image.append({"image": name, **compare_image(ref, got, score_threshold, cap)})
    worst = max(per_image, key=lambda r: (r["unmatched"], r["max_box_diff"], r["max_score_diff"]))
    return {"ok": all(r["unmatched"] == 0 for r in per_image), "images": len(per_image),
            "detections": sum(r["detections"] for r in per_image),
            "tolerance": {"box_pixels": BOX_TOLERANCE, "score": SCORE_TOLERANCE},
            "max_box_diff": max(r["max_box_diff"] for r in per_image),
            "max_score_diff": max(r["max_score_diff"] for r in per_image), "worst": worst, "per_image": per_image}


def check_images(data: str | None, count: int, size: tuple[int, int] | None, scale: int,
                 seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The images to check on: up to `count` of dataset `data`, else `count` toy images rendered at the arch's
    scale; resized to `size` (height, width) when the export's input size is fixed."""
    import numpy as np
    import torch.nn.functional as F
    from torchvision.transforms.functional import to_tensor

    images: list[tuple[str, torch.Tensor]] = []
    if data is not None:
        coco = load_coco(data)
        dataset = DetectionDataset.images_only(coco)
        for i in range(min(count, len(dataset))):
            images.append((coco.images[i]["file_name"], dataset[i][0]))
    else:
        rng = np.random.default_rng(seed)
        for i in range(count):
            picture, _ = render_image(rng, scale, class_names())
            images.append((f"generated-{i + 1}", to_tensor(picture)))
    if size is not None:
        images = [(n, F.interpolate(im[None], size=size, mode="bilinear", align_corners=False)[0]) for n, im in images]
    return images
