"""The sandwich rule and in-place distillation (train-supernet --rules sandwich --paths-per-step K --distill W)."""

from __future__ import annotations

import pytest
import torch

from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.distill import DISTILL_LOSSES, Distiller, map_boxes
from gaia_cli.space.arch import Arch, preset
from gaia_cli.space.sampling import PathSampler

from conftest import assert_bad_input, gaia_here


def test_the_sandwich_step_is_the_largest_the_smallest_and_uniform_paths():
    space = preset("tiny")
    sampler = PathSampler(space, "sandwich", seed=0)
    for _ in range(3):
        step = sampler.next_step(4)
        assert step[0] == space.max_arch and step[1] == space.min_arch and len(step) == 4
    randoms = {a for _ in range(20) for a in sampler.next_step(3)[2:]}
    assert len(randoms) > 5  # uniform draws, not a fixed path
    one = PathSampler(space, "sandwich", seed=0)
    assert [a for _ in range(2) for a in one.next_step(1)] == [space.max_arch, space.min_arch]  # in turn
    again = PathSampler(space, "sandwich", seed=0)
    again.load_state(sampler.state())
    assert again.next_step(3) == sampler.next_step(3)  # resumable


def test_boxes_map_between_input_scales():
    boxes = [torch.tensor([[10.0, 20.0, 30.0, 60.0]]), torch.tensor([[0.0, 0.0, 8.0, 4.0]])]
    mapped = map_boxes(boxes, [(100, 200), (64, 64)], [(50, 100), (96, 128)])
    assert torch.equal(mapped[0], torch.tensor([[5.0, 10.0, 15.0, 30.0]]))
    assert torch.equal(mapped[1], torch.tensor([[0.0, 0.0, 16.0, 6.0]]))


def _batch(n: int = 2):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 112, generator=g) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 20.0, 90.0, 40.0]]),
                "labels": torch.tensor([1, 2])} for _ in range(n)]
    return images, targets


def _model() -> Supernet:
    torch.manual_seed(0)
    return Supernet(preset("tiny"), 4).train()


def test_a_student_equal_to_its_teacher_learns_nothing_from_it():
    model = _model()
    distiller = Distiller(model)
    images, targets = _batch()
    model.set_arch(preset("tiny").max_arch)
    distiller.start("teacher")
    model(images, targets)
    distiller.keep_teacher()
    distiller.start("student")
    losses = model(images, targets)
    kd = distiller.student_losses(1.0)
    assert set(kd) == set(DISTILL_LOSSES)
    for name, value in kd.items():
        assert abs(float(value.detach())) < 1e-5, (name, float(value.detach()))
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}


def test_a_smaller_path_at_another_scale_gets_gradients_from_the_teacher():
    space = preset("tiny")
    model = _model()
    distiller = Distiller(model)
    images, targets = _batch()
    model.set_arch(space.max_arch)
    distiller.start("teacher")
    model(images, targets)
    distiller.keep_teacher()
    teacher_proposals = [p.clone() for p in distiller.teacher["proposals"]]
    model.zero_grad()
    model.set_arch(Arch(space.min_arch.depth, space.min_arch.width, 64))
    distiller.start("student")
    model(images, targets)
    kd = distiller.student_losses(2.0)
    assert all(torch.isfinite(v) for v in kd.values())
    assert float(kd["loss_distill_cls"].detach()) > 0 and float(kd["loss_distill_rpn"].detach()) > 0
    sum(kd.values()).backward()
    stem = next(model.backbone.body.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0  # through the student's features
    assert model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0
    # the teacher's record is detached and untouched by the student's pass
    assert all(not p.requires_grad for p in distiller.teacher["proposals"])
    assert all(torch.equal(a, b) for a, b in zip(teacher_proposals, distiller.teacher["proposals"]))
    distiller.end_step()
    with pytest.raises(RuntimeError, match="before any teacher"):
        distiller.start("student")
    distiller.remove()


def test_distill_needs_the_sandwich_several_paths_a_step_and_a_weight_of_0_or_more(toy, tmp_path):
    common = ["train-supernet", "--data", toy / "train.json", "--space", "tiny", "--epochs", 1, "-o", tmp_path / "s.h5"]
    assert_bad_input(gaia_here(*common, "--distill", 1, "--rules", "sandwich", "--paths-per-step", 1),
                     "--distill 1 needs --paths-per-step 2")
    assert_bad_input(gaia_here(*common, "--distill", 1, "--rules", "gaia", "--paths-per-step", 3),
                     "--distill 1 needs --rules sandwich")
    assert_bad_input(gaia_here(*common, "--distill", -1, "--paths-per-step", 3), "--distill must be")
    assert not (tmp_path / "s.h5").exists()


def test_train_supernet_trains_the_sandwich_with_distillation(toy, tmp_path):
    from gaia_cli.artifacts import H5Artifact

    proc = gaia_here("train-supernet", "--data", toy / "train.json", "--space", "tiny", "--epochs", 1,
                     "--batch-size", 4, "--rules", "sandwich", "--paths-per-step", 3, "--distill", 0.5,
                     "--log-every", 1, "--stop-after", 2, "--workers", 0, "-o", tmp_path / "s.h5")
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(tmp_path / "s.ckpt.h5", "gaia/checkpoint") as art:
        state = art.meta("state")
    assert state["run"]["options"]["distill"] == 0.5 and state["run"]["options"]["paths_per_step"] == 3
    space = preset("tiny")
    for record in state["log"]:
        assert record["archs"][0] == space.max_arch.as_dict() and record["archs"][1] == space.min_arch.as_dict()
        assert all(name in record for name in DISTILL_LOSSES), record
