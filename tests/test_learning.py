"""A gaia detector learns: the schedule fits the run, and a short run overfits a few images.

The learning test trains through `gaia train-supernet` (in this process) with its default recipe on a few
toy images and checks what was learned on those same images. A broken loop cannot pass it: the same run
with the labels shuffled among the boxes, or with a learning rate too small to move the weights, is run
beside it and must stay far below.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from gaia_cli.engine.schedule import Phase, describe, effective_warmup, learning_rate

from conftest import gaia_here


# ------------------------------------------------------------------------------------------------ schedule


def test_warmup_takes_at_most_a_tenth_of_a_short_run():
    assert effective_warmup(1000, 480) == 48  # the default 1000 steps would outlast a 480-step run
    assert effective_warmup(50, 4800) == 50  # a long run keeps what was asked
    assert effective_warmup(1000, 5) == 1
    assert effective_warmup(0, 480) == 0


def test_the_rate_reaches_its_base_after_the_capped_warmup_and_decays_at_fractions_of_the_run():
    phase = Phase("tiny", 12, (8, 11))
    per_epoch, base = 40, 0.01
    warmup = effective_warmup(1000, 12 * per_epoch)
    rates = [learning_rate(base, phase, i / per_epoch, i, warmup) for i in range(12 * per_epoch)]
    assert rates[0] == pytest.approx(base * 0.001)
    assert rates[warmup] == pytest.approx(base)
    assert rates[8 * per_epoch - 1] == pytest.approx(base) and rates[8 * per_epoch] == pytest.approx(base / 10)
    assert rates[-1] == pytest.approx(base / 100)
    (entry,) = describe(base, [phase], per_epoch, 1000)
    assert entry["steps"] == 480 and entry["warmup_steps"] == 48
    assert entry["decay"] == {"factor": 0.1, "at_steps": [320, 440]}


def test_every_training_command_logs_its_effective_schedule(shapes, tmp_path):
    proc = gaia_here("train-supernet", "--data", shapes / "val.json", "--space", "tiny", "--epochs", "2",
                     "--batch-size", "8", "--workers", "0", "--device", "cpu", "--stop-after", "1",
                     "-o", tmp_path / "s.h5")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"schedule tiny: \d+ steps from step 1, base rate 0.04, warm-up 1 steps from x0.001, "
                     r"decay x0.1 after steps \d+", proc.stderr), proc.stderr


# ------------------------------------------------------------------------------------------------ learning

# A one-path space: the tiny space's largest depths and widths at 128 px with a box head that can hold 3 shapes.
SPACE = {"kind": "gaia/space", "schema_version": 1, "name": "overfit", "depth": [[2], [2], [2], [2]],
         "width": [[16], [16], [24], [32], [48]], "scale": [128], "anchors": {},
         "detector": {"fpn_channels": 64, "box_head_dim": 256, "proposals": 100, "proposals_train": 256,
                      "roi_samples_per_image": 64, "anchor_sizes": [8, 16, 32, 64, 128]}}


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """6 training images of 128 px with 3 shapes (crowded clusters of tiny shapes left out: this is about
    the loop, not the hardest boxes), and the same images with each box's label shuffled."""
    out = tmp_path_factory.mktemp("few") / "toy"
    proc = gaia_here("toy-data", out, "--images", "12", "--val-images", "1", "--size", "128", "--categories", "3",
                     "--seed", "5", "-q")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "train.json").read_text())
    boxes = {im["id"]: [a for a in data["annotations"] if a["image_id"] == im["id"]] for im in data["images"]}
    images = [im for im in data["images"] if len(boxes[im["id"]]) <= 6 and not any(a["iscrowd"] for a in boxes[im["id"]])]
    images = images[:6]
    assert len(images) == 6
    annotations = [a for im in images for a in boxes[im["id"]]]
    (out / "train.json").write_text(json.dumps({**data, "images": images, "annotations": annotations}))
    labels = [a["category_id"] for a in annotations]
    rng = random.Random(0)
    while labels == [a["category_id"] for a in annotations]:
        rng.shuffle(labels)
    shuffled = {**data, "images": images, "annotations": [{**a, "category_id": c} for a, c in zip(annotations, labels)]}
    (out / "shuffled.json").write_text(json.dumps(shuffled))
    space = out.parent / "space.json"
    space.write_text(json.dumps(SPACE))
    return out, space


def _overfit(few, tmp_path, data: str, *extra) -> tuple[float, float, float]:
    """(first logged loss, mean of the last 3, train-set AP50 on the true labels) of a 120-step run."""
    from gaia_cli.artifacts import H5Artifact

    out, space = few
    model = tmp_path / f"{data}.h5"
    proc = gaia_here("train-supernet", "--data", out / f"{data}.json", "--images", out, "--space", space,
                     "--epochs", "60", "--batch-size", "4", "--lr-per-image", "0.005", "--workers", "0", "--device", "cpu", "--log-every", "2",
                     "-q", "-o", model, *extra)
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(model, "gaia/weights") as art:
        log = art.meta("training")["log"]
    arch = json.dumps({"depth": [2, 2, 2, 2], "width": [16, 16, 24, 32, 48], "scale": 128})
    proc = gaia_here("eval", "--weights", model, "--arch", "-", "--data", out / "train.json", "--recalibrate", "0",
                     "--device", "cpu", "-q", input=arch)
    assert proc.returncode == 0, proc.stderr
    return log[0]["loss"], sum(r["loss"] for r in log[-3:]) / 3, json.loads(proc.stdout)["AP50"]


def test_a_short_run_overfits_a_few_images(few, tmp_path):
    first, last, ap50 = _overfit(few, tmp_path, "train")
    assert last < 0.5 * first, (first, last)
    assert ap50 >= 70, (first, last, ap50)


def test_a_broken_loop_cannot_pass_the_learning_test(few, tmp_path):
    # the same run on shuffled labels memorises some boxes, far from the level
    _, _, shuffled = _overfit(few, tmp_path, "shuffled")
    assert shuffled < 50, shuffled
    # a rate of (nearly) zero leaves the weights, and so the loss, where they started however long it runs:
    # a few steps show it
    first, last, frozen = _overfit(few, tmp_path, "train", "--lr-per-image", "1e-9", "--epochs", "4")
    assert last > 0.5 * first and frozen < 50, (first, last, frozen)
