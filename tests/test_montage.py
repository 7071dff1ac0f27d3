"""extract-montage and pretrain: extraction rules, assembly geometry, ERF weights, learning, --init, bad inputs."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from gaia_cli.artifacts import H5Artifact, manifest
from gaia_cli.errors import BadInput
from gaia_cli.montage import group_of
from gaia_cli.montage.assemble import MontageDataset, Template, assemble, feature_size
from gaia_cli.montage.extract import (
    ExtractOptions, ExtractRequest, enlarge_box, negative_share, random_negatives, run as run_extract)
from gaia_cli.montage.loss import (
    MontageNet, block_weights, erf_weights, masks_tensor, montage_loss, receptive_field_shares)
from gaia_cli.montage.samples import MontageSamples

from conftest import assert_bad_input, gaia_here, run_gaia

ARCH = {"depth": [1, 1, 1, 1], "width": [16, 16, 16, 24, 32], "scale": 96}


@pytest.fixture(scope="module")
def samples(shapes, tmp_path_factory):
    """Samples of the shapes set (objects from 8 px), cut by 2 worker processes, with a preview."""
    out = tmp_path_factory.mktemp("montage")
    proc = run_gaia("extract-montage", "--data", shapes / "train.json", "--min-size", "8", "--workers", "2",
                    "--preview", "6", "--preview-out", out / "preview.png", "--preview-size", "128",
                    "-o", out / "samples.h5")
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["kind"] == "gaia/montage-samples" and line["samples"] > 100
    return out / "samples.h5"


# ------------------------------------------------------------------------------------------ extraction


def test_groups_follow_the_papers_aspect_thresholds():
    assert [group_of(w, 100) for w in (50, 49, 100, 150, 151)] == [0, 1, 0, 0, 2]


def test_negatives_never_overlap_a_box_and_stay_inside_the_image():
    rng = np.random.default_rng(0)
    for trial in range(40):
        width, height = int(rng.integers(60, 300)), int(rng.integers(60, 300))
        xy = rng.uniform(0, [width, height], size=(int(rng.integers(0, 12)), 2))
        wh = rng.uniform(4, 80, size=(len(xy), 2))
        obstacles = np.concatenate([xy, np.minimum(xy + wh, [width, height])], axis=1)
        sizes = [tuple(s) for s in wh[:3]]
        boxes = random_negatives(5, obstacles, sizes, width, height, 8, rng)
        for box in boxes:
            assert 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height
            assert min(box[2] - box[0], box[3] - box[1]) >= 8
        if boxes and len(obstacles):
            iou = box_iou(torch.tensor(boxes, dtype=torch.float64), torch.tensor(obstacles))
            assert float(iou.max()) == 0.0, trial


def test_enlarged_boxes_hold_their_object_and_grow_by_at_most_the_factor():
    rng = np.random.default_rng(1)
    for _ in range(200):
        x1, y1 = rng.uniform(0, 200, size=2)
        box = [x1, y1, x1 + rng.uniform(2, 100), y1 + rng.uniform(2, 100)]
        factor = rng.uniform(1.0, 2.0)
        out = enlarge_box(box, 320, 320, factor, rng)
        assert out[0] <= box[0] and out[1] <= box[1]
        assert out[2] >= min(box[2], 320) and out[3] >= min(box[3], 320)
        assert out[2] - out[0] <= (box[2] - box[0]) * factor + 2
        assert out[3] - out[1] <= (box[3] - box[1]) * factor + 2


def test_negative_shares_are_even_and_complete():
    assert [negative_share(i, 4, 10) for i in range(4)] == [3, 3, 2, 2]
    for images, total in [(7, 0), (7, 100), (1000, 3)]:
        shares = [negative_share(i, images, total) for i in range(images)]
        assert sum(shares) == total and max(shares) - min(shares) <= 1


def test_extracted_samples_keep_the_rules(samples, shapes):
    coco = json.loads((shapes / "train.json").read_text())
    boxes_of: dict[int, list] = {}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        boxes_of.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
    with H5Artifact(samples, "gaia/montage-samples") as art:
        t = {k: v.numpy() for k, v in art.tensors().items() if k != "pixels"}
        counts, options = art.meta("counts"), art.meta("options")
    labels, groups, sizes = t["labels"], t["groups"], t["sizes"]
    positives, negatives = int((labels > 0).sum()), int((labels == 0).sum())
    assert counts["positives"] == positives and counts["negatives"] == negatives
    assert negatives == round(positives / options["negative_ratio"]) - counts["negatives_without_room"]
    assert 8 <= positives / max(negatives, 1) <= 12
    assert (labels <= 6).all() and ((labels == 0) == (t["categories"] == -1)).all()
    assert [group_of(w, h) for h, w in sizes] == groups.tolist()
    assert set(groups.tolist()) == {0, 1, 2}
    assert sizes.max() <= 224 and np.diff(t["offsets"]).tolist() == (sizes[:, 0] * sizes[:, 1] * 3).tolist()
    for i in range(len(labels)):
        x, y, w, h = t["boxes"][i]
        crop = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64)
        gt = torch.tensor(boxes_of.get(int(t["sources"][i, 1]), [[0, 0, 0, 0]]), dtype=torch.float64)
        if labels[i] == 0:  # a negative overlaps no annotation of its image, crowd regions included
            assert float(box_iou(crop, gt).max()) == 0.0
        else:  # a positive's crop holds its whole object
            ox, oy, ow, oh = t["objects"][i]
            assert x <= ox + 1e-3 and y <= oy + 1e-3
            assert x + w >= min(ox + ow, 96) - 1e-3 and y + h >= min(oy + oh, 96) - 1e-3


def test_a_crop_is_the_image_region_it_names(samples, shapes):
    reader = MontageSamples(samples)
    coco = json.loads((shapes / "train.json").read_text())
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    with H5Artifact(samples, "gaia/montage-samples") as art:
        sources, boxes = art.tensors("sources")["sources"], art.tensors("boxes")["boxes"]
    for i in (0, len(reader) // 2, len(reader) - 1):  # 96 px images: no crop was shrunk
        x, y, w, h = (int(v) for v in boxes[i].tolist())
        image = np.asarray(Image.open(shapes / files[int(sources[i, 1])]).convert("RGB"))
        assert np.array_equal(reader.crop(i), image[y:y + h, x:x + w])


def test_extraction_is_deterministic_whatever_the_worker_count(samples, shapes, tmp_path):
    out = tmp_path / "again.h5"
    run_extract(ExtractRequest(data=[str(shapes / "train.json")], output=out,
                               options=ExtractOptions(min_size=8), workers=0))
    with H5Artifact(samples, "gaia/montage-samples") as a, H5Artifact(out, "gaia/montage-samples") as b:
        ta, tb = a.tensors(), b.tensors()
        assert ta.keys() == tb.keys()
        assert all(torch.equal(ta[k], tb[k]) or (ta[k].is_floating_point() and
                   torch.equal(ta[k].nan_to_num(-7), tb[k].nan_to_num(-7))) for k in ta)


def test_the_preview_is_a_grid_of_montages(samples):
    preview = Image.open(samples.parent / "preview.png")
    assert preview.size == (3 * (128 + 4) + 4, 2 * (128 + 4) + 4)


# -------------------------------------------------------------------------------------------- assembly


@pytest.mark.parametrize("size,split", [(224, 1 / 3), (128, 0.4), (96, 0.5), (300, 0.25)])
def test_regions_tile_the_montage_and_masks_partition_it(size, split):
    template = Template(size, split)
    masks = template.masks()
    assert (masks.sum(0) == 1).all()
    assert abs(template.areas().sum() - 1) < 1e-12
    (x1, y1, x2, y2), (a1, b1, a2, b2) = template.regions[1], template.regions[2]
    assert x2 - x1 >= y2 - y1 and b2 - b1 >= a2 - a1  # R2 is wide, R3 tall
    assert template.regions[0][2] - template.regions[0][0] <= template.regions[3][2] - template.regions[3][0]
    regions = template.position_regions()
    assert regions.shape == (feature_size(size),) * 2 and set(regions.ravel().tolist()) == {0, 1, 2, 3}


def test_a_template_without_room_for_a_region_is_refused():
    with pytest.raises(BadInput, match="too small"):
        Template(48)
    with pytest.raises(BadInput, match="--preview-size 40 is too small"):
        Template(40, option="--preview-size")
    with pytest.raises(BadInput, match="--split"):
        Template(224, 0.6)


def test_each_crop_fills_its_region_flipped_or_not():
    template = Template(128)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    crops = [np.full((20 + 7 * i, 30, 3), c, dtype=np.uint8) for i, c in enumerate(colours)]
    for crop in crops:
        crop[:, :15] //= 2  # a darker left half, to see the flips
    flips = [True, False, True, False]
    canvas = assemble(crops, template, flips)
    for (x1, y1, x2, y2), colour, flip in zip(template.regions, colours, flips):
        region = canvas[y1:y2, x1:x2].astype(int)
        assert (region[..., np.array(colour) == 0] == 0).all() and region.max() == 255  # its own crop only
        left, right = region[:, 0].sum(), region[:, -1].sum()
        assert (left > right) == flip


def test_montages_put_each_group_in_its_region(samples):
    reader = MontageSamples(samples)
    dataset = MontageDataset(reader, Template(128))
    for index in range(12):
        torch.manual_seed(index)
        image, target = dataset[index]
        chosen = target["samples"].tolist()
        assert image.shape == (3, 128, 128) and image.dtype == torch.uint8
        assert [int(reader.groups[i]) for i in chosen] == [0, 2, 1, 0]
        assert chosen[0] != chosen[3] and reader.area(chosen[0]) <= reader.area(chosen[3])
        assert target["labels"].tolist() == [int(reader.labels[i]) for i in chosen]


# -------------------------------------------------------------------------------------- soft labels, loss


def test_erf_weights_sum_to_one_and_keep_the_own_region_above_tau():
    regions = torch.as_tensor(Template(224).position_regions())
    shares = torch.distributions.Dirichlet(torch.ones(4)).sample(regions.shape)
    own = block_weights(regions)
    for tau in (0.0, 0.3, 0.7, 1.0):
        w = erf_weights(shares, regions, tau)
        assert torch.allclose(w.sum(-1), torch.ones(regions.shape))
        assert ((w * own).sum(-1) >= tau - 1e-6).all()
        assert (w >= 0).all()
    assert torch.allclose(erf_weights(shares, regions, 0.0), shares)  # the shares themselves
    assert torch.equal(erf_weights(shares, regions, 1.0), own)  # tau = 1 is block-wise classification


def test_erf_loss_at_tau_one_is_the_block_loss():
    regions = torch.as_tensor(Template(128).position_regions())
    logits = torch.randn(3, 7, *regions.shape)
    labels = torch.randint(0, 7, (3, 4))
    areas = torch.as_tensor(Template(128).areas(), dtype=torch.float32)
    shares = torch.distributions.Dirichlet(torch.ones(4)).sample(regions.shape)
    erf = montage_loss(logits, labels, erf_weights(shares, regions, 1.0), regions, "erf", areas)["loss_montage"]
    block = montage_loss(logits, labels, block_weights(regions), regions, "block", areas)["loss_montage"]
    assert torch.equal(erf, block)
    # the block loss is the mean over regions of each region's mean cross-entropy
    ce = torch.nn.functional.cross_entropy(logits, labels[:, regions].view(3, *regions.shape), reduction="none")
    expected = torch.stack([ce[:, regions == i].mean() for i in range(4)]).mean()
    assert torch.allclose(block, expected)


@pytest.mark.parametrize("size", [128, 160, 224])
def test_receptive_fields_are_measured_from_input_gradients(size):
    torch.manual_seed(0)
    template = Template(size)
    net = MontageNet((1, 2, 2, 1), (16, 16, 16, 24, 32), 5, template).eval()
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    shares = receptive_field_shares(net.features, net.normalise(images), masks_tensor(template))
    side = feature_size(size)
    assert torch.allclose(shares.sum(-1), torch.ones(side, side), atol=1e-5)
    # each position is assigned the region its receptive field lies in most
    regions = torch.as_tensor(template.position_regions())
    assert torch.equal(shares.argmax(-1), regions)
    # and positions near a border see across it: that is what the soft labels use
    own = (shares * block_weights(regions)).sum(-1)
    assert own.min() < 0.9


# ------------------------------------------------------------------------------------------ pretraining


PRETRAIN = ["--size", "96", "--batch-size", "8", "--workers", "0", "--device", "cpu", "--warmup-iters", "10",
            "--lr-per-image", "0.005", "--log-every", "8", "-q"]


@pytest.fixture(scope="module")
def backbone(samples, tmp_path_factory):
    """A fixed small arch pre-trained for 12 epochs in the ERF mode (soft labels recomputed every 40 steps)."""
    out = tmp_path_factory.mktemp("pretrain")
    (out / "arch.json").write_text(json.dumps(ARCH))
    line = json.dumps(manifest("gaia/montage-samples", samples))  # as extract-montage prints it, on stdin
    proc = run_gaia("pretrain", "-", "--arch", out / "arch.json", *PRETRAIN, "--epochs", "12", "--workers", "2",
                    "--erf-every", "40", "--log-every", "1", "-o", out / "backbone.h5", input=line)
    assert proc.returncode == 0, proc.stderr
    return out / "backbone.h5", json.loads(proc.stdout)


def test_pretraining_lowers_the_loss_on_toy_data(backbone):
    path, line = backbone
    with H5Artifact(path, "gaia/weights") as art:
        assert art.meta("role") == "backbone" and art.meta("arch") == ARCH
        record = art.meta("pretraining")
    losses = [r["loss"] for r in record["log"]]  # a step each
    first, last = np.mean(losses[:12]), np.mean(losses[-12:])
    assert last < 0.7 * first, (first, last)
    assert np.mean([r["accuracy"] for r in record["log"][-12:]]) > 0.75
    updates = [u["iteration"] for u in record["erf_updates"]]
    assert updates == list(range(0, record["iterations"], 40)) and len(updates) >= 2, (updates, record["iterations"])
    regions = torch.as_tensor(Template(96).position_regions())
    weights = torch.tensor(record["soft_weights"])
    assert torch.allclose(weights.sum(-1), torch.ones(3, 3)) and not torch.equal(weights, block_weights(regions))
    assert line["iterations"] == record["iterations"] and line["loss"] == round(losses[-1], 4)


def test_train_supernet_init_loads_every_backbone_tensor(samples, shapes, tmp_path):
    proc = run_gaia("pretrain", samples, "--space", "tiny", *PRETRAIN, "--size", "128", "--epochs", "1",
                    "--mode", "block", "-o", tmp_path / "backbone.h5")
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(tmp_path / "backbone.h5", "gaia/weights") as art:
        saved = {k: v for k, v in art.tensors().items() if not k.startswith("montage_head.")}  # --init skips the head
    train = run_gaia("train-supernet", "--data", shapes / "val.json", "--space", "tiny", "--init",
                     tmp_path / "backbone.h5", "--device", "cpu", "--workers", "0", "--batch-size", "4",
                     "--stop-after", "1", "-o", tmp_path / "supernet.h5")
    assert train.returncode == 0, train.stderr
    assert f"--init: loaded {len(saved)} backbone tensors, skipped 0" in train.stderr
    with H5Artifact(tmp_path / "supernet.ckpt.h5", "gaia/checkpoint") as art:
        body = art.tensors("model/backbone.body.")
    # one step has moved the weights, but BN's counters show each tensor came from the backbone
    assert body["model/backbone.body.bn1.num_batches_tracked"] == saved["bn1.num_batches_tracked"] + 1


def test_resume_ends_with_the_same_backbone(samples, tmp_path):
    from gaia_cli.engine.runcontrol import defaults
    from gaia_cli.tasks.pretrain import PretrainRequest, run

    common = dict(samples=str(samples), space="tiny", size=96, batch_size=4, warmup_iters=2, lr_per_image=0.005,
                  epochs=2, erf_every=5, erf_images=2)
    here = dataclasses.replace(defaults("pretrain"), workers=0, device="cpu")
    run(PretrainRequest(output=tmp_path / "whole.h5", run=here, **common))
    # stopped on a step where the soft labels are due again; resumed with data-loading workers
    run(PretrainRequest(output=tmp_path / "split.h5", run=dataclasses.replace(here, stop_after=10), **common))
    assert (tmp_path / "split.ckpt.h5").is_file() and not (tmp_path / "split.h5").exists()
    run(PretrainRequest(output=tmp_path / "split.h5", run=dataclasses.replace(here, workers=2, resume=True), **common))
    with H5Artifact(tmp_path / "whole.h5", "gaia/weights") as a, H5Artifact(tmp_path / "split.h5", "gaia/weights") as b:
        ta, tb = a.tensors(), b.tensors()
        ra, rb = a.meta("pretraining"), b.meta("pretraining")
    assert ra["soft_weights"] == rb["soft_weights"]
    assert ra["erf_updates"] == rb["erf_updates"] and [u["iteration"] for u in ra["erf_updates"]][:3] == [0, 5, 10]
    assert all(torch.equal(ta[k], tb[k]) for k in ta), [k for k in ta if not torch.equal(ta[k], tb[k])][:5]


def test_iterations_end_the_run_on_that_step_with_the_cosine_at_zero(samples, tmp_path):
    """Montage 4.1 counts its schedule in iterations (64k at batch 512): --iterations N ends at step N, within an
    epoch, the cosine reaching 0 there; without --epochs or --iterations the run is the paper's compute at this
    batch, said at start."""
    from gaia_cli.engine.runcontrol import defaults
    from gaia_cli.tasks.pretrain import PretrainRequest, paper_iterations, run

    common = dict(samples=str(samples), space="tiny", size=96, batch_size=4, warmup_iters=0, lr_per_image=0.005,
                  mode="block", run=dataclasses.replace(defaults("pretrain"), workers=0, device="cpu", log_every=1))
    run(PretrainRequest(output=tmp_path / "n.h5", iterations=7, **common))
    with H5Artifact(tmp_path / "n.h5", "gaia/weights") as art:
        record = art.meta("pretraining")
    from gaia_cli.montage.assemble import MontageDataset, Template
    from gaia_cli.montage.samples import MontageSamples

    per_epoch = -(-len(MontageDataset(MontageSamples(samples), Template(96))) // 4)
    assert record["iterations"] == len(record["log"]) == 7 and 7 % per_epoch  # not a whole number of epochs
    rates = [r["lr"] for r in record["log"]]
    assert rates[0] == pytest.approx(0.02) and rates == sorted(rates, reverse=True) and rates[-1] < 0.02 * 0.05
    assert paper_iterations(512, 1) == 64_000 and paper_iterations(64, 8) == 64_000 and paper_iterations(8, 1) == 4_096_000
    proc = gaia_here("pretrain", samples, "--space", "tiny", "--size", "96", "--batch-size", "8", "--workers", "0",
                     "--mode", "block", "--stop-after", "1", "-o", tmp_path / "p.h5")
    assert proc.returncode == 0, proc.stderr
    assert "4,096,000 steps of 8 montages (32,768,000 montages, 1x the paper's): the paper's compute" in proc.stderr


def test_two_processes_pretrain_identical_replicas_with_shared_soft_labels(samples, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "gaia_cli", "pretrain", str(samples), "--space", "tiny", "--size", "96",
           "--batch-size", "4", "--epochs", "2", "--erf-every", "5", "--erf-images", "2", "--workers", "0",
           "--device", "cpu", "--warmup-iters", "2", "--lr-per-image", "0.005", "-o", str(tmp_path / "ddp.h5")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the soft labels are a buffer: rank 0 computes them, the others receive them, and the digest covers them
    assert "all 2 replicas hold identical weights and soft labels" in proc.stderr
    with H5Artifact(tmp_path / "ddp.h5", "gaia/weights") as art:
        record = art.meta("pretraining")
    assert record["world"] == 2 and [u["iteration"] for u in record["erf_updates"]][:2] == [0, 5]
    assert record["soft_weights"] != block_weights(torch.as_tensor(Template(96).position_regions())).tolist()


def test_labels_give_every_dataset_the_unified_ids(toy, shapes, tmp_path):
    labels = tmp_path / "labels.json"
    proc = run_gaia("unify-labels", f"toy={toy / 'train.json'}", f"shapes={shapes / 'val.json'}", "-o", labels)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "s.h5"
    proc = run_gaia("extract-montage", "--data", toy / "train.json", "--data", shapes / "val.json", "--labels", labels,
                    "--min-size", "8", "--workers", "0", "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    space = json.loads(labels.read_text())
    unified = {c["name"]: c["id"] for c in space["categories"]}
    names = [{c["id"]: c["name"] for c in json.loads(p.read_text())["categories"]}
             for p in (toy / "train.json", shapes / "val.json")]
    with H5Artifact(out, "gaia/montage-samples") as art:
        assert art.meta("classes") == [c["name"] for c in space["categories"]]
        t = art.tensors()
    seen = set()
    for label, category, (dataset, _) in zip(t["labels"].tolist(), t["categories"].tolist(), t["sources"].tolist()):
        if category >= 0:
            assert label == unified[names[dataset][category]]
            seen.add(dataset)
    assert seen == {0, 1}


# ------------------------------------------------------------------------------------------- bad inputs


def test_extract_bad_inputs(shapes, tmp_path, write_json):
    coco = json.loads((shapes / "train.json").read_text())
    for ann in coco["annotations"]:
        ann["bbox"] = [ann["bbox"][0], ann["bbox"][1], 4, 4]
        ann["area"] = 16
    tiny_boxes = write_json("tiny.json", coco)
    shutil.copytree(shapes / "train", tmp_path / "train")
    out = tmp_path / "s.h5"
    assert_bad_input(gaia_here("extract-montage", "--data", tiny_boxes, "-o", out), "no object boxes",
                     "smaller than --min-size 16")
    no_boxes = write_json("none.json", {**coco, "annotations": []})
    assert_bad_input(gaia_here("extract-montage", "--data", no_boxes, "-o", out), "has no annotations")
    data = ["--data", shapes / "train.json", "-o", out]
    assert_bad_input(gaia_here("extract-montage", *data, "--enlarge", "0.5,1"), "--enlarge")
    assert_bad_input(gaia_here("extract-montage", *data, "--enlarge", "big"), "--enlarge")
    assert_bad_input(gaia_here("extract-montage", *data, "--ratio", "1e-300"), "at least 0.1")
    assert_bad_input(gaia_here("extract-montage", *data, "--enlarge", "1,inf"), "--enlarge")
    assert_bad_input(gaia_here("extract-montage", *data, "--workers", "100000"), "--workers must be between 0 and", "(got 100000)")
    png = tmp_path / "p.png"
    assert_bad_input(gaia_here("extract-montage", "--data", shapes / "train.json", "-o", png, "--preview", "2",
                               "--preview-out", png), "same file")
    assert_bad_input(gaia_here("extract-montage", "--data", tiny_boxes, "-o", tiny_boxes), "never replaces an input")
    assert_bad_input(gaia_here("extract-montage", *data, "--ratio", "-1"), "at least 0.1")
    assert_bad_input(gaia_here("extract-montage", *data, "--preview", "4"), "--preview-out")
    assert_bad_input(gaia_here("extract-montage", *data, "--preview", "4", "--preview-out", tmp_path / "p.gif"),
                     ".png or .jpg")
    assert_bad_input(gaia_here("extract-montage", *data, "--data", shapes / "val.json"), "--labels")
    assert not out.exists()


def test_pretrain_bad_inputs(samples, backbone, tmp_path):
    out = tmp_path / "b.h5"
    assert_bad_input(gaia_here("pretrain", backbone[0], "-o", out), "gaia/weights", "gaia/montage-samples")
    assert_bad_input(gaia_here("pretrain", samples.parent / "preview.png", "-o", out), "not an HDF5 file")
    flat = tmp_path / "flat.h5"
    shutil.copy(samples, flat)
    with h5py.File(flat, "r+") as f:  # every sample made square: no T- or W-samples left
        f["tensors/groups"][...] = 0
    assert_bad_input(gaia_here("pretrain", flat, "--space", "tiny", "-o", out), "group T has 0", "group W has 0")
    with h5py.File(flat, "r+") as f:
        f["tensors/labels"][0] = 99
    assert_bad_input(gaia_here("pretrain", flat, "--space", "tiny", "-o", out), "damaged", "labels outside 0..6")
    same = tmp_path / "same.h5"
    shutil.copy(samples, same)
    assert_bad_input(gaia_here("pretrain", same, "--space", "tiny", "-o", same), "is the input")
    for args, fragment in [(["--mode", "dense"], "--mode"), (["--tau", "1.5"], "--tau"), (["--size", "48"], "too small"),
                           (["--space", "tiny", "--arch", "a.json"], "not both"), (["--epochs", "0"], "at least 1"),
                           (["--space", "ar9"], "not a space preset"), (["--amp", "--device", "cpu"], "CUDA"),
                           (["--iterations", "0"], "at least 1"), (["--epochs", "2", "--iterations", "5"], "not both")]:
        assert_bad_input(gaia_here("pretrain", samples, *args, "-o", out), fragment)
    assert not out.exists()
