"""COCO datasets: validation with a report, serving torchvision models, combining, grouping, toy data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gaia_cli.artifacts import json_artifact
from gaia_cli.data.coco import find_image_root, load_coco
from gaia_cli.data.dataset import CombinedDataset, DetectionDataset, collate_detection, default_transforms
from gaia_cli.data.sampler import GroupedBatchSampler, aspect_ratio_groups
from gaia_cli.data.toy import make_toy_dataset
from gaia_cli.errors import BadInput
from gaia_cli.labels.space import LabelSpace

from conftest import assert_bad_input, gaia_here, run_gaia


def _coco(tmp_path: Path, images, annotations, categories=None, make_files=True) -> Path:
    """A hand-made COCO file in tmp_path whose images (40x30) exist unless make_files is False."""
    for im in images:
        if make_files and isinstance(im.get("file_name"), str) and "/" not in im["file_name"]:
            Image.new("RGB", (im.get("width", 40), im.get("height", 30))).save(tmp_path / im["file_name"])
    categories = categories if categories is not None else [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _img(i, **kw):
    return {"id": i, "file_name": f"{i}.png", "width": 40, "height": 30, **kw}


def _ann(i, image_id, bbox, category_id=1, **kw):
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": bbox, **kw}


def test_validation_repairs_and_counts_instead_of_crashing(tmp_path):
    images = [_img(1), _img(2), _img(2), {"id": 3, "file_name": "gone.png", "width": 40, "height": 30}]
    annotations = [
        _ann(1, 1, [5, 5, 10, 10]),               # fine
        _ann(2, 1, [35, 20, 10, 20]),             # reaches outside: clipped to [35, 20, 5, 10]
        _ann(3, 1, [5, 5, 0, 10]),                # zero width: dropped
        _ann(4, 1, [50, 50, 5, 5]),               # wholly outside: dropped, and said so
        _ann(5, 1, [1, 1, 2, 2], category_id=99),  # unknown category
        _ann(6, 9, [1, 1, 2, 2]),                 # unknown image
        _ann(6, 1, [1, 1, 2, 2]),                 # duplicate annotation id
        _ann(7, 3, [1, 1, 2, 2]),                 # its image is missing on disk: dropped silently with it
        _ann(8, 2, [1, 1, "a", 2]),               # not a bbox
    ]
    data = load_coco(_write(tmp_path, images, annotations))
    counts = data.report.counts
    assert counts == {"images_duplicate_id": 1, "images_missing": 1, "boxes_clipped": 1, "boxes_degenerate": 1,
                      "boxes_outside": 1,
                      "annotations_unknown_category": 1, "annotations_unknown_image": 1,
                      "annotations_duplicate_id": 1, "annotations_bad_record": 1}
    assert [a["id"] for a in data.annotations] == [1, 2]
    assert data.annotations[1]["bbox"] == [35.0, 20.0, 5.0, 10.0]
    assert [im["id"] for im in data.images] == [1, 2]
    with pytest.raises(BadInput, match="failed validation"):
        load_coco(tmp_path / "ann.json", strict=True)


def _write(tmp_path, images, annotations, categories=None):
    for im in images:
        if im["file_name"] != "gone.png":
            Image.new("RGB", (40, 30)).save(tmp_path / im["file_name"])
    return _coco(tmp_path, images, annotations, categories, make_files=False)


def test_inspect_reports_problems_and_strict_refuses(tmp_path):
    path = _write(tmp_path, [_img(1), {"id": 2, "file_name": "gone.png", "width": 40, "height": 30}],
                  [_ann(1, 1, [0, 0, 4, 4]), _ann(2, 1, [0, 0, -1, 4])])
    proc = run_gaia("inspect", path)
    assert proc.returncode == 0
    report = json.loads(proc.stdout)["validation"]
    assert report["problems"]["images_missing"]["count"] == 1
    assert report["problems"]["images_missing"]["examples"] == ["gone.png"]
    assert report["problems"]["boxes_degenerate"]["count"] == 1
    assert_bad_input(run_gaia("inspect", "--strict", path), str(path), "failed validation", "not found on disk")


@pytest.mark.parametrize("part,message", [("images", "has no images"), ("annotations", "has no annotations"),
                                          ("categories", "has no categories")])
def test_empty_coco_parts_are_refused(tmp_path, part, message):
    obj = {"images": [_img(1)], "annotations": [_ann(1, 1, [0, 0, 4, 4])], "categories": [{"id": 1, "name": "c"}]}
    obj[part] = []
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(obj))
    Image.new("RGB", (40, 30)).save(tmp_path / "1.png")
    assert_bad_input(run_gaia("inspect", path), str(path), message)


def test_all_images_missing_is_refused(tmp_path):
    path = _coco(tmp_path, [_img(1)], [_ann(1, 1, [0, 0, 4, 4])], make_files=False)
    assert_bad_input(run_gaia("inspect", path), "none of its 1 images", "1.png")


@pytest.mark.parametrize("file_name", ["../secret.png", "/etc/passwd", "a/../../b.png", "C:\\x.png"])
def test_file_name_escaping_the_image_folder_is_refused(tmp_path, file_name):
    path = _coco(tmp_path, [_img(1, file_name=file_name)], [_ann(1, 1, [0, 0, 4, 4])], make_files=False)
    assert_bad_input(run_gaia("inspect", path), "escapes the image folder", repr(file_name))


def test_unreadable_image_found_with_check_images(tmp_path):
    path = _coco(tmp_path, [_img(1), _img(2)], [_ann(1, 1, [0, 0, 4, 4]), _ann(2, 2, [0, 0, 4, 4])])
    (tmp_path / "2.png").write_bytes(b"not a png")
    summary = json.loads(run_gaia("inspect", "--check-images", path).stdout)
    assert summary["validation"]["problems"]["images_unreadable"]["count"] == 1
    assert summary["images"] == 1


def test_conflicting_duplicate_category_ids_are_refused(tmp_path):
    path = _coco(tmp_path, [_img(1)], [_ann(1, 1, [0, 0, 4, 4])],
                 categories=[{"id": 1, "name": "cat"}, {"id": 1, "name": "dog"}])
    assert_bad_input(run_gaia("inspect", path), "category id 1 is used by both")


def test_image_root_follows_coco_layout(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "val2017" / "1.png")
    ann = tmp_path / "annotations" / "instances_val2017.json"
    ann.write_text(json.dumps({"images": [_img(1)], "annotations": [_ann(1, 1, [0, 0, 4, 4])],
                               "categories": [{"id": 1, "name": "cat"}]}))
    assert find_image_root(ann, "1.png") == (tmp_path / "val2017").resolve()
    assert load_coco(ann).image_root == (tmp_path / "val2017").resolve()


def test_dataset_serves_torchvision_targets(toy):
    data = load_coco(toy / "train.json")
    ds = DetectionDataset(data)
    image, target = ds[0]
    record = data.images[0]
    assert image.dtype == torch.float32 and image.shape == (3, record["height"], record["width"])
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1] == 4
    assert type(target["boxes"]) is torch.Tensor
    assert target["labels"].dtype == torch.int64
    assert target["labels"].min() >= 1 and target["labels"].max() <= len(data.categories)
    boxes = target["boxes"]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()  # x1y1x2y2
    first = [a for a in data.annotations_of(record["id"]) if not a["iscrowd"]][0]
    x, y, w, h = first["bbox"]
    assert boxes[0].tolist() == [x, y, x + w, y + h]
    assert ds.num_classes == len(data.categories) + 1


def test_crowd_boxes_left_out_of_training_targets(toy):
    data = load_coco(toy / "train.json")
    crowded = next(im for im in data.images if any(a["iscrowd"] for a in data.annotations_of(im["id"])))
    index = data.images.index(crowded)
    plain = DetectionDataset(data).target(index)
    with_crowd = DetectionDataset(data, include_crowd=True).target(index)
    assert len(with_crowd["boxes"]) == len(plain["boxes"]) + sum(a["iscrowd"] for a in data.annotations_of(crowded["id"]))
    assert plain["iscrowd"].sum() == 0


def test_flip_moves_boxes_with_the_image(toy):
    data = load_coco(toy / "train.json")
    torch.manual_seed(0)
    flipped = DetectionDataset(data, transforms=default_transforms(train=True))
    plain = DetectionDataset(data)
    seen_flip = False
    for _ in range(10):
        img_f, t_f = flipped[1]
        img_p, t_p = plain[1]
        if not torch.equal(img_f, img_p):
            seen_flip = True
            assert torch.equal(img_f, img_p.flip(-1))
            width = img_p.shape[-1]
            expected = torch.stack([width - t_p["boxes"][:, 2], t_p["boxes"][:, 1],
                                    width - t_p["boxes"][:, 0], t_p["boxes"][:, 3]], dim=1)
            assert torch.allclose(t_f["boxes"], expected)
    assert seen_flip


def test_a_torchvision_detector_trains_on_a_batch(toy):
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.rpn import AnchorGenerator

    data = load_coco(toy / "train.json")
    ds = DetectionDataset(data)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU())
    backbone.out_channels = 8
    model = FasterRCNN(backbone, num_classes=ds.num_classes, min_size=96, max_size=96,
                       rpn_anchor_generator=AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)))
    images, targets = collate_detection([ds[i] for i in range(4)])
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()


def test_datasets_combined_through_a_label_map(tmp_path, toy):
    a = load_coco(toy / "train.json")
    # a second dataset that names the same things with other ids, plus one new category
    other = json.loads((toy / "val.json").read_text())
    renumber = {c["id"]: c["id"] * 10 for c in other["categories"]}
    for c in other["categories"]:
        c["id"] = renumber[c["id"]]
    for ann in other["annotations"]:
        ann["category_id"] = renumber[ann["category_id"]]
    other["categories"].append({"id": 999, "name": "blob"})
    (tmp_path / "other.json").write_text(json.dumps(other))
    b = load_coco(tmp_path / "other.json", image_root=toy)
    n = len(a.categories)
    labels = LabelSpace(
        categories=[{"id": i, "name": c["name"]} for i, c in enumerate(a.categories, start=1)]
        + [{"id": n + 1, "name": "blob"}],
        datasets=[
            {"name": "toy", "categories": [{"id": c["id"], "name": c["name"], "unified_id": i}
                                           for i, c in enumerate(a.categories, start=1)]},
            {"name": "other", "categories": [{"id": c["id"] * 10, "name": c["name"], "unified_id": i}
                                             for i, c in enumerate(a.categories, start=1)]
             + [{"id": 999, "name": "blob", "unified_id": n + 1}]},
        ],
        extra={})
    combined = CombinedDataset([(a, None), (b, "other")], labels)
    assert len(combined) == len(a.images) + len(b.images)
    assert combined.num_classes == n + 2
    # the same category name gets the same label in both parts
    _, ta = combined[0]
    name_of_label = {i: c["name"] for i, c in enumerate(a.categories, start=1)}
    b_index = len(a.images)
    _, tb = combined[b_index]
    anns_b = [x for x in b.annotations_of(b.images[0]["id"]) if not x["iscrowd"]]
    names_b = [next(c["name"] for c in b.categories if c["id"] == x["category_id"]) for x in anns_b]
    assert [name_of_label[int(v)] for v in tb["labels"]] == names_b
    # a dataset the label space does not know is refused with the file named
    labels.datasets.pop()
    with pytest.raises(BadInput, match="match none of the datasets"):
        CombinedDataset([(b, None)], labels)


def test_label_map_from_a_labels_file(tmp_path, toy):
    from gaia_cli.labels.space import read_labels

    a = load_coco(toy / "train.json")
    art = json_artifact("gaia/labels", {
        "categories": [{"id": 1, "name": "x"}],
        "datasets": [{"name": "toy", "categories": [{"id": c["id"], "name": c["name"], "unified_id": 1}
                                                    for c in a.categories]}]})
    (tmp_path / "labels.json").write_text(json.dumps(art))
    space = read_labels(tmp_path / "labels.json")
    assert space.map_for(a.categories) == {c["id"]: 1 for c in a.categories}
    art["categories"][0]["id"] = 5
    (tmp_path / "bad.json").write_text(json.dumps(art))
    with pytest.raises(BadInput, match="ids are 1..N"):
        read_labels(tmp_path / "bad.json")


def test_grouped_batches_share_an_aspect_group():
    ratios = [0.75, 1.33, 1.0, 0.75, 1.33, 0.5, 2.0, 0.6, 1.5, 0.9, 1.1]
    groups = aspect_ratio_groups(ratios)
    assert groups == [0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    order = list(reversed(range(len(ratios))))
    sampler = GroupedBatchSampler(order, groups, batch_size=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(ratios)))
    for batch in batches:
        assert len({groups[i] for i in batch}) == 1
        assert len(batch) <= 3
    assert all(len(b) == 3 for b in GroupedBatchSampler(order, groups, 3, drop_last=True))
    filled = list(GroupedBatchSampler(order, groups, 3, fill=True))
    assert len(filled) == len(batches) and all(len(b) == 3 for b in filled)
    assert all(len({groups[i] for i in b}) == 1 for b in filled)
    assert sorted(set(i for b in filled for i in b)) == list(range(len(ratios)))
    # a group smaller than a batch repeats its images
    assert list(GroupedBatchSampler([0, 1], [0, 1], 3, fill=True)) == [[0, 0, 0], [1, 1, 1]]
    assert aspect_ratio_groups([0.4, 1.0, 3.0], bins=(0.5, 1.5)) == [0, 1, 2]


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_toy_data_is_deterministic(tmp_path):
    make_toy_dataset(tmp_path / "a", images=6, size=64, seed=5)
    make_toy_dataset(tmp_path / "b", images=6, size=64, seed=5)
    make_toy_dataset(tmp_path / "c", images=6, size=64, seed=6)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")


def test_toy_data_has_what_detection_needs(tmp_path):
    make_toy_dataset(tmp_path / "t", images=60, size=320, seed=0, categories=6)
    summary = json.loads(run_gaia("inspect", tmp_path / "t" / "train.json").stdout)
    assert summary["validation"]["ok"]
    assert all(c["boxes"] > 0 for c in summary["categories"]) and len(summary["categories"]) == 6
    assert all(v > 0 for v in summary["box_sizes"].values())          # small, medium and large
    assert all(v > 0 for v in summary["box_aspect_groups"].values())  # square, tall and wide
    assert summary["crowd_regions"] > 0
    assert summary["boxes_per_image"]["max"] >= 10                     # crowded images
    widths, heights = summary["image_width"], summary["image_height"]
    assert widths["min"] < widths["max"] and heights["min"] < heights["max"]  # portrait and landscape
    val = json.loads(run_gaia("inspect", tmp_path / "t" / "val.json").stdout)
    assert val["images"] == 15


def test_toy_data_refuses_to_overwrite(tmp_path):
    make_toy_dataset(tmp_path / "t", images=2, size=64, seed=0)
    assert_bad_input(run_gaia("toy-data", tmp_path / "t", "--images", 2), "already exists")
    proc = run_gaia("toy-data", tmp_path / "t", "--images", 3, "--force", "-q")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["train"]["images"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


def test_toy_data_bad_options(tmp_path):
    assert_bad_input(run_gaia("toy-data", tmp_path / "t", "--images", 0), "--images")
    assert_bad_input(run_gaia("toy-data", tmp_path / "t", "--categories", 9), "--categories")


def test_toy_data_classes_by_name_in_the_order_given(tmp_path):
    """Two datasets can share some categories and not others: --classes picks shapes by name."""
    proc = gaia_here("toy-data", tmp_path / "t", "--images", 8, "--size", 64, "--seed", 2,
                     "--classes", "diamond, circle,Square", "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["categories"] == ["diamond", "circle", "square"]
    train = json.loads((tmp_path / "t" / "train.json").read_text())
    assert [(c["id"], c["name"]) for c in train["categories"]] == [(1, "diamond"), (2, "circle"), (3, "square")]
    assert {a["category_id"] for a in train["annotations"]} == {1, 2, 3}
    assert train["info"]["categories"] == 3
    # deterministic, and naming the first N shapes is the same dataset as --categories N
    make_toy_dataset(tmp_path / "again", images=8, size=64, seed=2, classes=["diamond", "circle", "square"])
    assert _tree_digest(tmp_path / "t") == _tree_digest(tmp_path / "again")
    make_toy_dataset(tmp_path / "named", images=3, size=64, seed=1, classes="circle,square,triangle")
    make_toy_dataset(tmp_path / "first", images=3, size=64, seed=1, categories=3)
    assert _tree_digest(tmp_path / "named") == _tree_digest(tmp_path / "first")


def test_toy_data_bad_classes(tmp_path):
    from gaia_cli.data.toy import SHAPES

    known = ", ".join(SHAPES)
    out = tmp_path / "t"
    assert_bad_input(gaia_here("toy-data", out, "--classes", "circle,hexagon"), "--classes", "'hexagon'", known)
    assert_bad_input(gaia_here("toy-data", out, "--classes", "circle,,square"), "--classes", "empty name", known)
    assert_bad_input(gaia_here("toy-data", out, "--classes", "circle,square,circle"), "'circle' twice")
    assert_bad_input(gaia_here("toy-data", out, "--classes", "circle", "--categories", 2), "--categories",
                     "--classes", "not both")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(BadInput, match="unknown classes 'star', 'blob'"):
        make_toy_dataset(out, images=1, size=64, seed=0, classes=["star", "circle", "blob"])


def test_toy_data_help_lists_every_shape():
    import typer

    from gaia_cli.cli.app import app
    from gaia_cli.data.toy import SHAPES

    command = typer.main.get_command(app).commands["toy-data"]
    help_text = next(p.help for p in command.params if p.name == "classes")
    assert help_text.endswith(", ".join(SHAPES) + ".")
