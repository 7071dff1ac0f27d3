"""train-supernet and eval: learning, exact resume, data parallelism, NaN handling, --init, bad inputs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import torch

from gaia_cli.artifacts import H5Artifact, write_h5
from gaia_cli.nn.detector import Supernet, extract
from gaia_cli.nn.io import init_backbone, save_detector
from gaia_cli.nn.resnet import StaticResNet
from gaia_cli.space.arch import preset

from conftest import assert_bad_input, gaia_here, run_gaia

FAST = ["--space", "tiny", "--device", "cpu", "--workers", "0", "--batch-size", "4", "--log-every", "1000", "-q"]
MAX_ARCH = json.dumps(preset("tiny").max_arch.as_dict())




def _tensors(path) -> dict[str, torch.Tensor]:
    with H5Artifact(path, "gaia/weights") as art:
        return art.tensors()


def _evaluate(weights, data, *extra) -> dict:
    proc = run_gaia("eval", "--weights", weights, "--arch", "-", "--data", data, "--device", "cpu", "-q", *extra,
                    input=MAX_ARCH)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_training_lowers_the_loss_and_eval_reports_coco_metrics(shapes, tmp_path):
    # what a run learns is tests/test_learning.py's: here, the artifact, the log and eval's report
    out = tmp_path / "supernet.h5"
    proc = run_gaia("train-supernet", "--data", shapes / "train.json", "-o", out, *FAST, "--rules", "max",
                    "--epochs", "4", "--lr-steps", "3", "--lr-per-image", "0.0025", "--log-every", "8")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["kind"] == "gaia/weights" and manifest["path"] == str(out.resolve())
    with H5Artifact(out, "gaia/weights") as art:
        assert art.meta("role") == "supernet" and art.meta("space")["name"] == "tiny"
        log = art.meta("training")["log"]
        classes = art.meta("classes")
    first, last = log[0]["loss"], sum(r["loss"] for r in log[-3:]) / 3
    assert last < 0.6 * first, (first, last)
    after = _evaluate(out, shapes / "val.json", "--recalibrate", "0")
    assert set(after["per_category"]) == set(classes) and after["recalibration"]["images"] == 0
    recalibrated = _evaluate(out, shapes / "val.json", "--recalibrate-data", shapes / "train.json")
    assert recalibrated["recalibration"]["images"] == 64


def test_resume_ends_with_the_same_weights(shapes, tmp_path):
    common = ["--data", shapes / "val.json", *FAST, "--epochs", "2", "--rules", "gaia", "--paths-per-step", "2",
              "--warmup-iters", "2", "--lr-per-image", "0.002"]
    whole = run_gaia("train-supernet", *common, "-o", tmp_path / "whole.h5")
    assert whole.returncode == 0, whole.stderr
    first = run_gaia("train-supernet", *common, "-o", tmp_path / "split.h5", "--stop-after", "3")
    assert first.returncode == 0 and first.stdout == ""
    assert (tmp_path / "split.ckpt.h5").is_file() and not (tmp_path / "split.h5").exists()
    # resumed with data-loading workers: the batches and flips do not depend on them
    rest = run_gaia("train-supernet", *common[:-6], "--workers", "2", *common[-6:], "-o", tmp_path / "split.h5",
                    "--resume")
    assert rest.returncode == 0, rest.stderr
    a, b = _tensors(tmp_path / "whole.h5"), _tensors(tmp_path / "split.h5")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    assert not (tmp_path / "split.ckpt.h5").exists()  # done: the checkpoint is gone


def test_resume_refuses_another_runs_checkpoint(shapes, tmp_path):
    common = ["--data", shapes / "val.json", *FAST, "--epochs", "1", "-o", tmp_path / "s.h5"]
    assert run_gaia("train-supernet", *common, "--stop-after", "1").returncode == 0
    assert_bad_input(run_gaia("train-supernet", *common, "--lr-per-image", "0.01", "--resume"),
                     "checkpoint is of another run", "options")
    assert_bad_input(run_gaia("train-supernet", *common[:-2], "-o", tmp_path / "other.h5", "--resume"),
                     "no checkpoint to resume from")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(shapes, out, *extra) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "gaia_cli", "train-supernet", "--data", str(shapes / "val.json"),
           "--space", "tiny", "--device", "cpu", "--workers", "0", "--batch-size", "2", "--epochs", "2",
           "--checkpoint-every", "3", "--warmup-iters", "1", "--lr-per-image", "0.002", "-o", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_two_processes_train_identical_replicas_and_resume_exactly(shapes, tmp_path):
    whole = _torchrun(shapes, tmp_path / "ddp.h5")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "all 2 replicas hold identical weights" in whole.stderr
    assert json.loads(whole.stdout.strip().splitlines()[-1])["kind"] == "gaia/weights"  # rank 0 alone writes
    with H5Artifact(tmp_path / "ddp.h5", "gaia/weights") as art:
        assert art.meta("training")["world"] == 2
    stopped = _torchrun(shapes, tmp_path / "split.h5", "--stop-after", "4")
    assert stopped.returncode == 0 and not (tmp_path / "split.h5").exists(), stopped.stderr[-3000:]
    resumed = _torchrun(shapes, tmp_path / "split.h5", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _tensors(tmp_path / "ddp.h5"), _tensors(tmp_path / "split.h5")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(shapes, tmp_path):
    proc = run_gaia("train-supernet", "--data", shapes / "val.json", *FAST, "--epochs", "3", "--lr-per-image", "1e6",
                    "--clip-grad", "0", "--warmup-iters", "0", "--checkpoint-every", "1", "-o", tmp_path / "nan.h5")
    assert proc.returncode == 1, proc.stderr
    assert "not finite" in proc.stderr and "last good checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "nan.h5").exists()
    with H5Artifact(tmp_path / "nan.ckpt.h5", "gaia/checkpoint") as art:
        assert all(torch.isfinite(t).all() for name, t in art.tensors("model/").items() if t.is_floating_point())


def test_init_copies_resnet_weights_into_the_leading_slices(tmp_path):
    anchor = preset("tiny").anchors["T1"]
    torch.manual_seed(3)
    resnet = StaticResNet(anchor)
    source = {**resnet.state_dict(), "fc.weight": torch.zeros(10, 4 * anchor.width[-1])}
    torch.save(source, tmp_path / "resnet.pth")
    net = Supernet(preset("tiny"), 3)
    report = init_backbone(net, tmp_path / "resnet.pth")
    assert report["loaded"] == len(resnet.state_dict()) and report["skipped"] == []
    net.set_arch(anchor)
    body = extract(net, anchor).backbone.body
    for name, tensor in resnet.state_dict().items():
        assert torch.equal(body.state_dict()[name], tensor), name
    # a gaia/weights backbone (what pretrain writes) loads the same way; other roles are refused
    write_h5(tmp_path / "backbone.h5", "gaia/weights", resnet.state_dict(), {"role": "backbone"})
    assert init_backbone(Supernet(preset("tiny"), 3), tmp_path / "backbone.h5")["loaded"] == report["loaded"]
    write_h5(tmp_path / "model.h5", "gaia/weights", resnet.state_dict(), {"role": "model"})
    with pytest.raises(Exception, match="expected a backbone"):
        init_backbone(Supernet(preset("tiny"), 3), tmp_path / "model.h5")


def test_bad_inputs(shapes, tmp_path, write_json):
    out = ["-o", tmp_path / "x.h5"]
    data = ["--data", shapes / "val.json"]
    assert_bad_input(gaia_here("train-supernet", *data, *FAST, "--amp", *out), "--amp needs a CUDA device")
    assert_bad_input(gaia_here("train-supernet", *data, "--space", "tiny", "--device", "cuda", *out), "CUDA is not available")
    arch_file = write_json("arch.json", {"kind": "gaia/arch", "schema_version": 1, **preset("tiny").max_arch.as_dict()})
    assert_bad_input(gaia_here("train-supernet", *data, "--space", arch_file, *out),
                     "is a gaia/arch artifact, expected gaia/space")
    assert_bad_input(gaia_here("train-supernet", *data, "--data", shapes / "train.json", "--space", "tiny", *out),
                     "need --labels")
    labels = write_json("labels.json", {"kind": "gaia/labels", "schema_version": 1,
                                        "categories": [{"id": 1, "name": "cat"}],
                                        "datasets": [{"name": "pets", "categories": [{"id": 1, "name": "cat", "unified_id": 1}]}]})
    assert_bad_input(gaia_here("train-supernet", *data, "--labels", labels, *FAST, *out), "match none of the datasets")
    assert_bad_input(gaia_here("train-supernet", *data, "--phases", "ar50:13", *FAST, *out), "is not inside --space 'tiny'")
    assert_bad_input(gaia_here("train-supernet", *data, "--epochs", "3", "--lr-steps", "5", *FAST, *out), "steps must be")
    assert not (tmp_path / "x.h5").exists()


def test_eval_bad_inputs(shapes, tmp_path, write_json):
    weights = tmp_path / "w.h5"
    classes = ["circle", "square", "triangle", "ring", "pole", "plank"]
    save_detector(weights, Supernet(preset("tiny"), len(classes) + 1), classes)
    outside = write_json("outside.json", {"depth": [9, 1, 1, 1], "width": [8, 8, 16, 16, 32], "scale": 64})
    assert_bad_input(gaia_here("eval", "--weights", weights, "--arch", outside, "--data", shapes / "val.json"),
                     "depth[0]=9 is not a choice")
    assert_bad_input(gaia_here("eval", "--weights", weights, "--data", shapes / "val.json"), "choose one with --arch")
    other = tmp_path / "few.h5"
    save_detector(other, Supernet(preset("tiny"), 3), ["circle", "spaceship"])
    assert_bad_input(gaia_here("eval", "--weights", other, "--arch", "-", "--data", shapes / "val.json", input=MAX_ARCH),
                     "categories the model does not know", "square")
