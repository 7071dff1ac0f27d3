"""The elastic supernet: weight sharing, static extraction, BN recalibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaia_cli.errors import BadInput
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.detector import Supernet, build_static, extract
from gaia_cli.space.arch import Arch, preset
from gaia_cli.space.flops import detector_cost
from gaia_cli.space.sampling import sample


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    net = Supernet(preset("tiny"), num_classes=7)
    # move BN statistics and weights away from their initial values, so that slicing errors would show
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return net.eval()


def test_extracted_model_equals_the_supernet_path(supernet):
    rng = np.random.default_rng(0)
    torch.manual_seed(1)
    images = [torch.rand(3, 100, 120), torch.rand(3, 128, 90)]
    for _ in range(20):
        arch = sample(supernet.space, "uniform", rng)
        supernet.set_arch(arch)
        static = extract(supernet, arch).eval()
        with torch.no_grad():
            ours, theirs = supernet(images), static(images)
        for a, b in zip(ours, theirs):
            assert a["boxes"].shape == b["boxes"].shape
            assert torch.allclose(a["boxes"], b["boxes"], atol=1e-5)
            assert torch.allclose(a["scores"], b["scores"], atol=1e-5)
            assert torch.equal(a["labels"], b["labels"])
        assert sum(p.numel() for p in static.parameters()) == \
            sum(c.params for c in detector_cost(arch, 7, supernet.space.detector).values())


def test_extracted_model_needs_nothing_from_the_supernet(supernet):
    arch = Arch((2, 1, 3, 2), (16, 8, 24, 16, 48), 96)
    supernet.set_arch(arch)
    static = extract(supernet, arch).eval()
    fresh = build_static(arch, 7, supernet.space.detector).eval()
    fresh.load_state_dict(static.state_dict())
    assert not any("Elastic" in type(m).__name__ for m in fresh.modules())
    image = [torch.rand(3, 96, 96)]
    with torch.no_grad():
        assert torch.equal(fresh(image)[0]["scores"], static(image)[0]["scores"])


def test_paths_share_the_lower_index_weights(supernet):
    """A small path trains the leading channels and first blocks only; the rest gets no gradient."""
    net = Supernet(preset("tiny"), num_classes=3).train()
    small = Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 64)
    net.set_arch(small)
    target = {"boxes": torch.tensor([[10.0, 10.0, 40.0, 50.0]]), "labels": torch.tensor([1])}
    sum(net([torch.rand(3, 64, 64)], [target]).values()).backward()
    body = net.backbone.body
    assert body.layer3[1].conv1.weight.grad is None  # the second block of stage 3 was not on the path
    grad = body.layer1[0].conv1.weight.grad
    assert grad[8:].abs().sum() == 0 and grad[:8].abs().sum() > 0  # only the first 8 output channels
    lateral = net.backbone.fpn.inner_blocks[3][0].weight.grad
    assert lateral[:, 128:].abs().sum() == 0 and lateral[:, :128].abs().sum() > 0  # 4 x 32 inputs of C5


def test_set_arch_refuses_an_arch_outside_the_space(supernet):
    with pytest.raises(BadInput, match="not a choice"):
        supernet.set_arch(Arch((5, 1, 1, 1), (8, 8, 16, 16, 32), 64))
    supernet.set_arch(Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 128))
    assert supernet.transform.min_size == (128,)


def test_recalibration_estimates_the_paths_own_statistics():
    torch.manual_seed(0)
    arch = Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 64)
    model = build_static(arch, 3, preset("tiny").detector).eval()
    batches = [[torch.rand(3, 64, 64) * (i + 1) for _ in range(2)] for i in range(3)]
    used = recalibrate(model, batches, num_images=6)
    assert used == 6 and not model.training
    # the stem BN's running mean is the average of the three batches' means (a cumulative average)
    expected = []
    with torch.no_grad():
        for batch in batches:
            x = model.transform(batch)[0].tensors
            expected.append(model.backbone.body.conv1(x).mean(dim=(0, 2, 3)))
    assert torch.allclose(model.backbone.body.bn1.running_mean, torch.stack(expected).mean(0), atol=1e-5)
    assert model.backbone.body.bn1.momentum == 0.1  # restored


def test_recalibration_stops_at_the_image_budget():
    model = build_static(Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 64), 3, preset("tiny").detector)
    batches = ([torch.rand(3, 64, 64) for _ in range(4)] for _ in range(100))
    assert recalibrate(model, batches, num_images=10) == 10
    assert model.backbone.body.bn1.num_batches_tracked == 3  # 4 + 4 + 2 images


def test_iou_balanced_sampling_spreads_negatives_over_iou_ranges():
    from gaia_cli.nn.sampling import iou_balanced_choice

    torch.manual_seed(0)
    # 900 easy negatives (IoU < 1/6), 60 medium, 40 hard: uniform sampling would take mostly easy ones
    ious = torch.cat([torch.rand(900) * 0.16, 0.17 + torch.rand(60) * 0.15, 0.34 + torch.rand(40) * 0.15])
    indices = torch.arange(1000)
    picked = iou_balanced_choice(indices, ious, 90, high=0.5)
    assert len(picked) == len(set(picked.tolist())) == 90
    counts = torch.bincount(torch.bucketize(ious[picked], torch.tensor([0.5 / 3, 1.0 / 3]), right=True), minlength=3)
    assert counts.tolist() == [30, 30, 30]
    short = iou_balanced_choice(indices[:910], ious[:910], 90, high=0.5)  # 10 medium only: filled from the rest
    assert len(short) == 90 and (ious[short] >= 0.5 / 3).sum() == 10


def test_iou_balanced_bins_run_to_the_largest_iou_of_the_images_proposals():
    # Libra R-CNN's sampler (floor_thr -1): bins over [0, the largest IoU of all proposals), here 1 (an
    # object's own box); negatives at IoU 0.2-0.3 share the first bin with the easy ones, not a bin of their own
    from gaia_cli.nn.sampling import IoUBalancedSampler

    torch.manual_seed(0)
    ious = torch.cat([torch.tensor([1.0]), torch.rand(900) * 0.1, 0.2 + torch.rand(100) * 0.1])
    labels = torch.cat([torch.tensor([1]), torch.zeros(1000, dtype=torch.int64)])
    sampler = IoUBalancedSampler(64, 0.25)
    sampler.set_ious([ious])
    pos, neg = sampler([labels])
    assert pos[0].sum() == 1 and neg[0].sum() == 63
    medium = int(((ious >= 0.2) & (neg[0] > 0)).sum())
    assert medium < 15  # about a tenth, as at random; bins of [0, 0.5) in thirds would take 21 or more
    # the hard negatives of the second bin [1/3, 2/3) come in a third of the count
    hard = torch.cat([torch.tensor([1.0]), torch.rand(900) * 0.1, 0.34 + torch.rand(100) * 0.15])
    sampler.set_ious([hard])
    _, neg = sampler([labels])
    assert int(((hard >= 0.34) & (neg[0] > 0)).sum()) >= 21


def test_iou_balanced_roi_heads_train():
    from gaia_cli.nn.sampling import IoUBalancedSampler, use_iou_balanced_sampling

    net = Supernet(preset("tiny"), num_classes=3).train()
    use_iou_balanced_sampling(net)
    assert isinstance(net.roi_heads.fg_bg_sampler, IoUBalancedSampler)
    target = {"boxes": torch.tensor([[10.0, 10.0, 40.0, 50.0], [50.0, 20.0, 90.0, 60.0]]), "labels": torch.tensor([1, 2])}
    losses = net([torch.rand(3, 96, 96)], [target])
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_a_weights_header_is_read_without_its_tensors_and_its_role_checked(tmp_path, monkeypatch):
    """nn.io.read_header: role, classes, space or arch from the meta alone; a role not asked for is one line."""
    from gaia_cli.artifacts import h5file
    from gaia_cli.errors import BadInput
    from gaia_cli.nn.io import read_header, save_detector

    out = tmp_path / "s.h5"
    save_detector(out, Supernet(preset("tiny"), 3), ["a", "b"], {"training": {"phases": [{"space": "tiny"}]}})
    monkeypatch.setattr(h5file.H5Artifact, "tensors", lambda self: pytest.fail("a header read loaded tensors"))
    header = read_header(out)
    assert header.role == "supernet" and header.classes == ["a", "b"] and header.space == preset("tiny")
    assert header.arch is None and header.meta["training"] == {"phases": [{"space": "tiny"}]}
    with pytest.raises(BadInput, match="holds a supernet, expected a model"):
        read_header(out, ("model",))
