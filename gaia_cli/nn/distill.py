"""In-place distillation for a detection supernet (BigNAS, once-for-all; for Faster R-CNN as below).

Each training step of the sandwich rule runs the largest path first, on the ground truth; the other paths of
the step learn from it as well as from the ground truth. A `Distiller` hooks into a torchvision Faster R-CNN
(a `Supernet`) and, while a path runs as the teacher, keeps (detached):

- the RPN's objectness logits at every FPN level;
- the RoI head's sampled proposals (in the teacher's resized image) with its class logits and box deltas.

While a path runs as a student, it adds three losses to the path's own:

- `loss_distill_rpn`: the binary KL divergence of the student's objectness from the teacher's soft
  objectness (sigmoid of its logits), at every anchor of every level. Paths at another input scale have
  feature maps of another size: the teacher's logits are resized to the student's bilinearly (anchors are
  the same at each position; they then cover a slightly different share of the image, an approximation);
- `loss_distill_cls`: KL(teacher || student) of the class distributions on the teacher's proposals, mapped
  into the student's resized image, run through the student's RoI pooling, box head and predictor;
- `loss_distill_box`: smooth L1 (beta 1/9, torchvision's) between the student's and the teacher's box deltas
  of the teacher's class, on the proposals the teacher calls an object, summed over those and divided by all
  proposals (torchvision's normalisation of its box loss). Box deltas are relative to the proposal, so they do
  not depend on the input scale.

Each is multiplied by the distillation weight. The KL terms are zero when the student equals the teacher.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DISTILL_LOSSES = ("loss_distill_rpn", "loss_distill_cls", "loss_distill_box")


def _binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over elements of KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s)))."""
    p = torch.sigmoid(teacher_logits)
    cross = F.binary_cross_entropy_with_logits(student_logits, p, reduction="mean")
    entropy = F.binary_cross_entropy_with_logits(teacher_logits, p, reduction="mean")
    return cross - entropy


def map_boxes(boxes: list[torch.Tensor], from_sizes: list[tuple[int, int]],
              to_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Boxes (x1y1x2y2) of each image resized to `from_sizes` (h, w), in that image resized to `to_sizes`."""
    return [b * b.new_tensor([wt / wf, ht / hf, wt / wf, ht / hf])
            for b, (hf, wf), (ht, wt) in zip(boxes, from_sizes, to_sizes)]


class Distiller:
    """Hooks on `model` that keep what a teacher path computed and turn it into a student path's losses.

    Use: `start("teacher")`, run the teacher's training forward, `keep_teacher()`; then for each student
    `start("student")`, its training forward, `losses.update(student_losses(weight))`. Between those the hooks
    record nothing, so evaluation and other forwards are untouched.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.role: str | None = None
        self.seen: dict[str, Any] = {}
        self.teacher: dict[str, Any] | None = None
        self.handles = [
            model.transform.register_forward_hook(self._on_transform),
            model.backbone.register_forward_hook(self._on_backbone),
            model.rpn.head.register_forward_hook(self._on_rpn_head),
            model.roi_heads.box_roi_pool.register_forward_pre_hook(self._on_roi_pool),
            model.roi_heads.box_predictor.register_forward_hook(self._on_predictor),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    # ------------------------------------------------------------------------------------------- hooks

    def _on_transform(self, module, inputs, output) -> None:
        if self.role:
            self.seen["image_sizes"] = list(output[0].image_sizes)

    def _on_backbone(self, module, inputs, output) -> None:
        if self.role:
            self.seen["features"] = output

    def _on_rpn_head(self, module, inputs, output) -> None:
        if self.role:
            self.seen["objectness"] = list(output[0])

    def _on_roi_pool(self, module, inputs) -> None:
        if self.role:
            self.seen["proposals"] = [p.detach() for p in inputs[1]]

    def _on_predictor(self, module, inputs, output) -> None:
        if self.role:
            self.seen["class_logits"], self.seen["box_regression"] = output

    # ------------------------------------------------------------------------------------------- roles

    def start(self, role: str) -> None:
        if role not in ("teacher", "student"):
            raise ValueError(f"role must be teacher or student, not {role!r}")
        if role == "student" and self.teacher is None:
            raise RuntimeError("a student path ran before any teacher path in this step")
        self.role, self.seen = role, {}

    def keep_teacher(self) -> None:
        """What the teacher's forward computed, detached, for this step's students."""
        s = self.seen
        self.teacher = {"image_sizes": s["image_sizes"], "objectness": [o.detach().float() for o in s["objectness"]],
                        "proposals": s["proposals"], "class_logits": s["class_logits"].detach().float(),
                        "box_regression": s["box_regression"].detach().float()}
        self.role, self.seen = None, {}

    def end_step(self) -> None:
        self.role, self.seen, self.teacher = None, {}, None

    def student_losses(self, weight: float) -> dict[str, torch.Tensor]:
        """The student's distillation losses (times `weight`), from what its forward just computed."""
        t, s = self.teacher, self.seen
        self.role = None  # the RoI pass below is the distiller's own: not recorded
        rpn = []
        for so, to in zip(s["objectness"], t["objectness"]):
            if to.shape[-2:] != so.shape[-2:]:
                to = F.interpolate(to, size=so.shape[-2:], mode="bilinear", align_corners=False)
            rpn.append(_binary_kl(so.float(), to))
        proposals = map_boxes(t["proposals"], t["image_sizes"], s["image_sizes"])
        heads = self.model.roi_heads
        pooled = heads.box_roi_pool(s["features"], proposals, s["image_sizes"])
        logits, deltas = heads.box_predictor(heads.box_head(pooled))
        logits, deltas = logits.float(), deltas.float()
        cls = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(t["class_logits"], dim=1), log_target=True,
                       reduction="batchmean")
        label = t["class_logits"].argmax(dim=1)
        fg = torch.nonzero(label > 0).squeeze(1)
        n = len(label)
        student_box = deltas.reshape(n, -1, 4)[fg, label[fg]]
        teacher_box = t["box_regression"].reshape(n, -1, 4)[fg, label[fg]]
        box = F.smooth_l1_loss(student_box, teacher_box, beta=1 / 9, reduction="sum") / max(n, 1)
        self.seen = {}
        return {"loss_distill_rpn": weight * torch.stack(rpn).mean(), "loss_distill_cls": weight * cls,
                "loss_distill_box": weight * box}
