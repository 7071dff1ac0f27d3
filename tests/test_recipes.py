"""--recipe: GAIA's training setting as one switch (head loss x5, IoU-balanced sampling, its rules and ABPS), for
train-supernet and finetune; an option given wins over the recipe."""

from __future__ import annotations

import json

import pytest
import torch

from gaia_cli.artifacts import H5Artifact
from gaia_cli.engine.recipes import choose, describe, resolve
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import save_detector
from gaia_cli.space.arch import preset

from conftest import assert_bad_input, gaia_here

UNSET = {"lr_per_image": None, "head_loss_weight": None, "iou_balanced": None, "rules": None, "epochs": None,
         "phases": None, "abps": False, "paths_per_step": None, "distill": None, "lr_steps": None}


def test_gaia_recipe_sets_what_the_paper_sets_and_an_option_given_wins():
    values, applied = resolve("train-supernet", "gaia", UNSET)
    assert values["head_loss_weight"] == 5 and values["iou_balanced"] is True and values["rules"] == "gaia"
    assert values["lr_per_image"] == 0.00125 and values["abps"] is True
    given = {**UNSET, "head_loss_weight": 2.0, "iou_balanced": False, "epochs": 3}
    values, applied = resolve("train-supernet", "gaia", given)
    assert values["head_loss_weight"] == 2.0 and values["iou_balanced"] is False  # the user's
    assert values["abps"] is False and values["epochs"] == 3 and "abps" not in applied  # --epochs: no ABPS
    default, _ = resolve("train-supernet", "pretrained", UNSET)
    assert (default["head_loss_weight"], default["iou_balanced"], default["epochs"], default["abps"]) == (1.0, False, 12, False)
    scratch, _ = resolve("train-supernet", "scratch", UNSET)
    assert scratch["lr_per_image"] == 4 * default["lr_per_image"]
    tuned, _ = resolve("finetune", "gaia", {"lr_per_image": None, "head_loss_weight": None, "iou_balanced": None})
    assert tuned == {"lr_per_image": 0.0001875, "head_loss_weight": 5.0, "iou_balanced": True}


def test_help_says_what_each_recipe_sets():
    import typer

    from gaia_cli.cli.app import app

    commands = typer.main.get_command(app).commands
    for command, names in (("train-supernet", ("pretrained", "gaia", "scratch")), ("finetune", ("default", "gaia"))):
        text = next(p.help for p in commands[command].params if p.name == "recipe")
        for name in names:
            assert f"{name}" in text and describe(command, name) in text, (command, name)
    assert "--head-loss-weight 5" in describe("train-supernet", "gaia") and "--iou-balanced" in describe("finetune", "gaia")


def test_unknown_recipe_and_abps_outside_its_space_are_refused(toy, tmp_path):
    common = ["train-supernet", "--data", toy / "train.json", "--space", "tiny", "-o", tmp_path / "s.h5"]
    assert_bad_input(gaia_here(*common, "--recipe", "fast"), "--recipe must be one of auto, pretrained, gaia, scratch")
    assert_bad_input(gaia_here(*common, "--recipe", "gaia"), "--recipe gaia trains GAIA's ABPS", "--epochs")


def test_auto_picks_scratch_without_init_and_gaias_rate_with_it():
    assert choose("auto", None)[0] == "scratch" and choose("auto", "backbone.h5")[0] == "pretrained"
    assert choose("gaia", None) == ("gaia", None)  # a recipe named is the recipe used
    scratch, _ = resolve("train-supernet", "scratch", UNSET)
    pretrained, _ = resolve("train-supernet", "pretrained", UNSET)
    assert scratch["lr_per_image"] > pretrained["lr_per_image"] == 0.00125
    assert scratch["lr_steps"] == "late" and pretrained["lr_steps"] is None  # GAIA's 2/3 and 7/8 with --init


def test_late_drops_keep_the_rate_high_longer_and_a_phase_takes_them(tmp_path):
    from gaia_cli.engine.schedule import default_steps, late_steps
    from gaia_cli.space.arch import read_space
    from gaia_cli.tasks.requests import TrainRequest
    from gaia_cli.tasks.train_supernet import resolve_phases

    assert late_steps(24) == (20, 23) and default_steps(24) == (16, 21)
    assert late_steps(12) == (10, 11) and late_steps(1) == ()  # never a drop at the last epoch
    space = read_space("tiny")
    (phase, _), = resolve_phases(TrainRequest(data=[], output=tmp_path / "s.h5", space="tiny", epochs=24,
                                              lr_steps="late"), space)
    assert phase.steps == (20, 23)
    (phase, _), = resolve_phases(TrainRequest(data=[], output=tmp_path / "s.h5", space="tiny", epochs=24), space)
    assert phase.steps == (16, 21)


@pytest.mark.parametrize("init", [False, True])
def test_train_supernet_logs_the_recipe_auto_picked_and_why(toy, tmp_path, init):
    extra = []
    if init:
        torch.manual_seed(0)
        names = [c["name"] for c in json.loads((toy / "train.json").read_text())["categories"]]
        save_detector(tmp_path / "init.h5", Supernet(preset("tiny"), len(names) + 1), names)
        extra = ["--init", tmp_path / "init.h5"]
    proc = gaia_here("train-supernet", "--data", toy / "train.json", "--space", "tiny", "--epochs", 1, *extra,
                     "--stop-after", 1, "--workers", 0, "-o", tmp_path / "s.h5")
    assert proc.returncode == 0, proc.stderr
    picked = "pretrained" if init else "scratch"
    assert f"--recipe auto: {picked} (" in proc.stderr and ("--init" if init else "no --init") in proc.stderr
    values, _ = resolve("train-supernet", picked, UNSET)
    options = _run_key(tmp_path / "s.ckpt.h5")["options"]
    assert options["lr_per_image"] == values["lr_per_image"] and options["paths_per_step"] == values["paths_per_step"]


def _run_key(checkpoint) -> dict:
    with H5Artifact(checkpoint, "gaia/checkpoint") as art:
        return art.meta("state")["run"]


def test_train_supernet_with_the_gaia_recipe_trains_with_its_settings(toy, tmp_path):
    proc = gaia_here("train-supernet", "--data", toy / "train.json", "--space", "tiny", "--recipe", "gaia",
                    "--epochs", 1, "--stop-after", 1, "--workers", 0, "-o", tmp_path / "s.h5")
    assert proc.returncode == 0, proc.stderr
    assert "--recipe gaia: --lr-per-image 0.00125, --head-loss-weight 5, --iou-balanced, --rules gaia" in proc.stderr
    run = _run_key(tmp_path / "s.ckpt.h5")
    assert run["options"]["head_loss_weight"] == 5 and run["iou_balanced"] is True and run["options"]["rules"] == "gaia"


def test_finetune_with_the_gaia_recipe_trains_as_its_supernet(toy, tmp_path):
    names = [c["name"] for c in json.loads((toy / "train.json").read_text())["categories"]]
    torch.manual_seed(0)
    save_detector(tmp_path / "sn.h5", Supernet(preset("tiny"), len(names) + 1), names)
    arch = json.dumps(preset("tiny").min_arch.as_dict())
    proc = gaia_here("finetune", "--weights", tmp_path / "sn.h5", "--arch", "-", "--data", toy / "train.json",
                    "--recipe", "gaia", "--head-loss-weight", 3, "--schedule", "custom", "--epochs", 1,
                    "--stop-after", 1, "--recalibrate", 2, "--workers", 0, "-o", tmp_path / "m.h5", input=arch)
    assert proc.returncode == 0, proc.stderr
    assert "--recipe gaia: --lr-per-image 0.0001875, --iou-balanced" in proc.stderr  # the weight was given: 3
    run = _run_key(tmp_path / "m.ckpt.h5")
    assert run["options"]["head_loss_weight"] == 3 and run["iou_balanced"] is True


@pytest.mark.parametrize("value", ["0", "nan"])
def test_head_loss_weight_is_checked_in_finetune_too(toy, tmp_path, value):
    proc = gaia_here("finetune", "--weights", tmp_path / "x.h5", "--data", toy / "train.json", "--head-loss-weight",
                     value, "-o", tmp_path / "m.h5")
    assert_bad_input(proc, "--head-loss-weight must be")


def test_the_head_losses_are_weighted_in_the_step_itself(toy, tmp_path, monkeypatch):
    # the RoI head's losses x5 (GAIA 4.2.2) in the loss each training step minimises, not only in its options
    import gaia_cli.engine.train as train
    from gaia_cli.engine.runcontrol import RunControl
    from gaia_cli.tasks.train_supernet import TrainRequest, run

    losses = {"loss_objectness": torch.tensor(1.0), "loss_rpn_box_reg": torch.tensor(2.0),
              "loss_classifier": torch.tensor(3.0), "loss_box_reg": torch.tensor(4.0), "distill_note": torch.tensor(9.0)}
    assert float(train.weighted_loss(losses, 5.0)) == pytest.approx(1 + 2 + 5 * (3 + 4))
    assert float(train.weighted_loss(losses, 1.0)) == pytest.approx(10.0)
    weights = []
    real = train.weighted_loss
    monkeypatch.setattr(train, "weighted_loss", lambda l, w: weights.append(w) or real(l, w))
    run(TrainRequest(data=[str(toy / "train.json")], output=tmp_path / "s.h5", space="tiny", recipe="gaia",
                     epochs=1, batch_size=4, run=RunControl(stop_after=2, workers=0, device="cpu")))
    assert weights == [5.0, 5.0]


def test_abps_shrinks_ar101_then_ar77_then_ar50_each_shrink_warmed_up():
    # GAIA 4.2.2: AR101 24 epochs, then AR77 and AR50 13 each, "a single epoch of warm-up" at each shrink
    from gaia_cli.engine.schedule import learning_rate
    from gaia_cli.tasks.train_supernet import TrainRequest, resolve_phases

    phases = resolve_phases(TrainRequest(data=[], output="x.h5", abps=True), preset("ar50to101"))
    assert [(p.space, sub.name, p.epochs, p.warmup_epochs, p.steps) for p, sub in phases] == [
        ("ar101", "ar101", 24, 0, (16, 21)), ("ar77", "ar77", 13, 1, (8, 11)), ("ar50", "ar50", 13, 1, (8, 11))]
    for phase, _ in phases[1:]:  # each shrink starts near 0 and reaches the base rate after one epoch
        assert learning_rate(1.0, phase, 0.0, 0, 1000) == pytest.approx(phase.warmup_factor)
        assert learning_rate(1.0, phase, 0.5, 50, 1000) == pytest.approx(phase.warmup_factor + (1 - phase.warmup_factor) / 2)
        assert learning_rate(1.0, phase, 1.0, 100, 1000) == pytest.approx(1.0)
        assert learning_rate(1.0, phase, 1.0 + 8, 900, 1000) == pytest.approx(0.1)


def test_the_fast_schedule_is_two_epochs_a_warm_up_then_a_tenth_of_the_rate():
    # GAIA 4.2.3 as its authors configure it: 2 epochs in all, a warm-up epoch, the rate /10 after the first
    from gaia_cli.tasks.finetune import FinetuneRequest, phases_for
    from gaia_cli.engine.schedule import learning_rate

    (phase,) = phases_for(FinetuneRequest(weights="w", data="d", output="o", schedule="fast"))
    assert phase.total_epochs == 2 and phase.warmup_epochs == 1
    assert learning_rate(1.0, phase, 0.0, 0, 100) == pytest.approx(phase.warmup_factor)
    assert learning_rate(1.0, phase, 1.0, 10, 100) == pytest.approx(0.1)
    assert learning_rate(1.0, phase, 1.9, 19, 100) == pytest.approx(0.1)
