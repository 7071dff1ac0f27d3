"""A label space that grows (GAIA 3.1.1): `train-supernet --init supernet.h5 --labels grown.json` starts from the
whole supernet; "the last fc layer extends corresponding new ways while the others remain unchanged"."""

from __future__ import annotations

import pytest
import torch

from gaia_cli.artifacts import H5Artifact
from gaia_cli.errors import BadInput
from gaia_cli.labels.space import read_labels
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import init_supernet, save_detector
from gaia_cli.space.arch import preset

from conftest import assert_bad_input, gaia_here

OLD = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def grown(tmp_path_factory, shapes):
    """A supernet over the old classes, its label space, and that space grown by the toy set (unify-labels --base)."""
    tmp = tmp_path_factory.mktemp("grow")
    (tmp / "old.txt").write_text("\n".join(OLD) + "\n")
    first = gaia_here("unify-labels", f"old={tmp / 'old.txt'}", "-o", tmp / "old.json")
    assert first.returncode == 0, first.stderr
    second = gaia_here("unify-labels", "--base", tmp / "old.json", f"toy={shapes / 'train.json'}", "-o", tmp / "grown.json")
    assert second.returncode == 0, second.stderr
    torch.manual_seed(0)
    old_net = Supernet(preset("tiny"), len(OLD) + 1)
    with torch.no_grad():  # trained-looking rows: not the initialisation's zero biases
        for p in old_net.roi_heads.box_predictor.parameters():
            p.normal_()
    save_detector(tmp / "sn.h5", old_net, OLD)
    return tmp, old_net.eval(), read_labels(str(tmp / "grown.json"))


def _class_scores(net, image):
    """(logits, box deltas) of the box predictor for the proposals of `image` (eval mode: deterministic)."""
    images, _ = net.transform([image])
    features = net.backbone(images.tensors)
    proposals, _ = net.rpn(images, features)
    pooled = net.roi_heads.box_roi_pool(features, proposals, images.image_sizes)
    return net.roi_heads.box_predictor(net.roi_heads.box_head(pooled))


def test_old_classes_score_the_same_right_after_the_extension(grown):
    tmp, old_net, labels = grown
    assert labels.names[: len(OLD)] == OLD and len(labels.names) > len(OLD)
    torch.manual_seed(5)  # a different initialisation: everything must come from the file
    net = Supernet(preset("tiny"), len(labels.names) + 1)
    report = init_supernet(net, tmp / "sn.h5", labels.names, labels)
    net.eval()
    assert report["classes"]["kept"] == len(OLD) and report["classes"]["borrowed"] + report["classes"]["new"] == \
        len(labels.names) - len(OLD)
    image = torch.rand(3, 96, 96)
    with torch.no_grad():
        old_logits, old_deltas = _class_scores(old_net, image)
        logits, deltas = _class_scores(net, image)
    k = len(OLD) + 1
    assert torch.equal(logits[:, :k], old_logits) and torch.equal(deltas[:, : 4 * k], old_deltas)
    # each new class borrowed the rows of the old class it is nearest to, by word vectors
    predictor, old_predictor = net.roi_heads.box_predictor, old_net.roi_heads.box_predictor
    borrowed = [s for s in report["surgery"] if s["how"] == "borrowed"]
    assert borrowed, report["surgery"]
    for entry in borrowed:
        row, source = labels.names.index(entry["category"]) + 1, OLD.index(entry["from"]) + 1
        assert torch.equal(predictor.cls_score.weight[row], old_predictor.cls_score.weight[source])
        assert torch.equal(predictor.bbox_pred.weight[4 * row: 4 * row + 4], old_predictor.bbox_pred.weight[4 * source: 4 * source + 4])


def test_a_space_that_renumbers_or_drops_old_classes_is_refused(grown):
    tmp, _, _ = grown
    with pytest.raises(BadInput, match="label 1 is 'circle' in the --init supernet but 'square'"):
        init_supernet(Supernet(preset("tiny"), 4), tmp / "sn.h5", ["square", "circle", "triangle"])
    with pytest.raises(BadInput, match="fewer than the --init supernet's 3"):
        init_supernet(Supernet(preset("tiny"), 3), tmp / "sn.h5", OLD[:2])
    with pytest.raises(BadInput, match="differ from --space 'small''s"):
        init_supernet(Supernet(preset("small"), 7), tmp / "sn.h5", OLD)


def test_train_supernet_starts_from_the_whole_supernet_with_a_grown_label_space(grown, shapes):
    tmp, _, labels = grown
    proc = gaia_here("train-supernet", "--data", shapes / "train.json", "--labels", tmp / "grown.json", "--space", "tiny",
                     "--init", tmp / "sn.h5", "--epochs", 1, "--stop-after", 1, "--workers", 0, "-o", tmp / "s2.h5")
    assert proc.returncode == 0, proc.stderr
    assert "--init: the whole supernet" in proc.stderr and f"{len(OLD)} kept" in proc.stderr
    with H5Artifact(tmp / "s2.ckpt.h5", "gaia/checkpoint") as art:
        assert art.meta("state")["run"]["classes"] == labels.names
    # a supernet over another space is one line, exit 2
    assert_bad_input(gaia_here("train-supernet", "--data", shapes / "train.json", "--labels", tmp / "grown.json",
                               "--space", "small", "--init", tmp / "sn.h5", "-o", tmp / "s3.h5"), "differ from --space 'small''s")
