"""INTERN's percentage splits hold P% of each class's instances; the other boxes of their images are ignore
regions, neither object nor background, in the data and in the detector's RPN and RoI heads."""

from __future__ import annotations

import json
import math

import torch

from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import IGNORE_LABEL, DetectionDataset, default_transforms
from gaia_cli.data.split import split
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.ignore import intersection_over_first
from gaia_cli.space.arch import preset

OBJECT = [8.0, 8.0, 40.0, 40.0]
REGION = [56.0, 48.0, 92.0, 90.0]  # the ignore region, apart from the object


def test_split_holds_p_percent_of_each_class_and_reports_real_counts(shapes):
    data = load_coco(shapes / "train.json")
    subset, report = split(data, percent=10, seed=0)
    total = ignored = 0
    for cat in data.categories:
        n = sum(1 for a in data.annotations if a["category_id"] == cat["id"] and not a.get("iscrowd"))
        mine = [a for a in subset["annotations"] if a["category_id"] == cat["id"] and (a.get("ignore") or not a["iscrowd"])]
        kept = [a for a in mine if not a.get("ignore")]
        entry = report["per_category"][cat["name"]]
        assert len(kept) == entry["kept"] == math.floor(n * 0.10)  # exact: not the whole of every chosen image
        assert len(mine) - len(kept) == entry["ignored"]
        assert all(a["iscrowd"] == 1 for a in mine if a.get("ignore"))  # pycocotools' ignore, if evaluated
        total, ignored = total + n, ignored + entry["ignored"]
    assert report["kept"] == sum(math.floor(v["instances"] * 0.10) for v in report["per_category"].values())
    assert report["instances"] == total and report["ignored"] == ignored > 0
    objects = [a for a in subset["annotations"] if not a["iscrowd"]]
    assert report["kept_percent"] <= 10 and report["kept"] == len(objects)
    assert {im["id"] for im in subset["images"]} == {a["image_id"] for a in objects}  # each image: a kept instance


def test_ignore_annotations_reach_the_target_as_label_minus_one_and_flip_with_the_image(write_json, tmp_path):
    from PIL import Image

    Image.new("RGB", (100, 100)).save(tmp_path / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
            "categories": [{"id": 3, "name": "square"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [8, 8, 32, 32], "area": 1024},
                            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [56, 48, 36, 42], "area": 1512,
                             "ignore": 1, "iscrowd": 1},
                            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 60, 10, 10], "area": 100,
                             "iscrowd": 1}]}  # a plain crowd stays out, as before
    data = load_coco(write_json("a.json", coco))
    image, target = DetectionDataset(data)[0]
    assert target["labels"].tolist() == [1, IGNORE_LABEL]
    assert target["boxes"].tolist() == [OBJECT, REGION]
    flipped = DetectionDataset(data, transforms=default_transforms(train=True))
    for i in range(20):  # the flip is random: find one
        _, t = flipped[0]
        if t["boxes"][0, 0] != OBJECT[0]:
            assert t["boxes"][1].tolist() == [100 - REGION[2], REGION[1], 100 - REGION[0], REGION[3]]
            assert t["labels"].tolist() == [1, IGNORE_LABEL]
            break
    else:
        raise AssertionError("no flip in 20 draws")


def _model():
    torch.manual_seed(0)
    return Supernet(preset("tiny"), num_classes=2).train()


def test_rpn_leaves_anchors_inside_an_ignore_region_out_and_keeps_the_rest():
    net = _model()
    images, _ = net.transform([torch.rand(3, 96, 96)])
    features = net.backbone(images.tensors)
    anchors = net.rpn.anchor_generator(images, list(features.values()))
    scale = images.image_sizes[0][0] / 96
    obj = torch.tensor([OBJECT]) * scale
    region = torch.tensor([REGION]) * scale
    with_region = {"boxes": torch.cat([obj, region]), "labels": torch.tensor([1, IGNORE_LABEL])}
    without = {"boxes": obj, "labels": torch.tensor([1])}
    (labels,), _ = net.rpn.assign_targets_to_anchors(anchors, [with_region])
    (plain,), _ = net.rpn.assign_targets_to_anchors(anchors, [without])
    inside = intersection_over_first(anchors[0], region) > 0.5
    assert inside.sum() > 0
    assert (labels[inside & (plain == 0)] == -1).all()  # background inside the region: left out of the loss
    assert torch.equal(labels[~inside], plain[~inside])  # everything else as without the region
    assert torch.equal(labels[plain == 1], plain[plain == 1])  # the object's anchors stay positive


def test_roi_heads_never_sample_a_proposal_inside_an_ignore_region():
    net = _model()
    heads = net.roi_heads
    torch.manual_seed(1)
    xy = torch.rand(400, 2) * 80
    proposals = torch.cat([xy, xy + 4 + torch.rand(400, 2) * 30], dim=1).clamp(max=96)
    gt = torch.tensor([OBJECT, REGION])
    matched, (labels,) = heads.assign_targets_to_proposals([proposals], [gt], [torch.tensor([1, IGNORE_LABEL])])
    _, (plain,) = heads.assign_targets_to_proposals([proposals], [gt[:1]], [torch.tensor([1])])
    inside = intersection_over_first(proposals, gt[1:]) > 0.5
    assert inside.sum() > 20
    assert (labels[inside & (plain == 0)] == -1).all() and torch.equal(labels[~inside], plain[~inside])
    assert (matched[0][labels >= 1] == 0).all()  # positives match the object, never the region
    sampled = heads.subsample([labels])[0]
    assert not inside[sampled][labels[sampled] == 0].any()


def test_a_detector_trains_on_a_target_with_ignore_regions_only_and_mixed():
    net = _model()
    for target in ({"boxes": torch.tensor([OBJECT, REGION]), "labels": torch.tensor([1, IGNORE_LABEL])},
                   {"boxes": torch.tensor([REGION]), "labels": torch.tensor([IGNORE_LABEL])}):
        losses = net([torch.rand(3, 96, 96)], [target])
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()


def test_finetune_percent_reports_the_split_it_trains_on(shapes, tmp_path):
    from conftest import gaia_here
    from gaia_cli.nn.io import save_detector

    names = [c["name"] for c in json.loads((shapes / "train.json").read_text())["categories"]]
    torch.manual_seed(0)
    save_detector(tmp_path / "sn.h5", Supernet(preset("tiny"), len(names) + 1), names)
    arch = json.dumps(preset("tiny").min_arch.as_dict())
    proc = gaia_here("finetune", "--weights", tmp_path / "sn.h5", "--arch", "-", "--data", shapes / "train.json",
                    "--percent", 25, "--schedule", "custom", "--epochs", 1, "--stop-after", 2, "--recalibrate", 4,
                    "--workers", 0, "--batch-size", 2, "-o", tmp_path / "m.h5", input=arch)
    assert proc.returncode == 0, proc.stderr
    split_file = json.loads((tmp_path / "m.split.json").read_text())
    kept = sum(1 for a in split_file["annotations"] if not a["iscrowd"])
    assert f"kept {kept} of " in proc.stderr and "ignore regions" in proc.stderr
