"""fit-pathfilter on montages: a Montage-pretrained supernet backbone's paths measured by pretrain's dense loss."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from gaia_cli.artifacts import H5Artifact
from gaia_cli.montage import HEAD_PREFIX

from conftest import assert_bad_input, gaia_here, run_gaia

PRETRAIN = ["--space", "tiny", "--size", "96", "--batch-size", "8", "--workers", "0", "--device", "cpu",
            "--iterations", "2", "--mode", "block", "-q"]


@pytest.fixture(scope="module")
def pretrained(shapes, tmp_path_factory):
    """Montage samples of the shapes set and the tiny supernet pre-trained on them for two steps."""
    out = tmp_path_factory.mktemp("montage-filter")
    proc = run_gaia("extract-montage", "--data", shapes / "train.json", "--min-size", "8", "-q",
                    "-o", out / "samples.h5")
    assert proc.returncode == 0, proc.stderr
    proc = run_gaia("pretrain", out / "samples.h5", *PRETRAIN, "-o", out / "backbone.h5")
    assert proc.returncode == 0, proc.stderr
    return out / "samples.h5", out / "backbone.h5"


def test_a_filter_fitted_on_montage_paths_has_finite_losses_and_no_ap(pretrained, tmp_path):
    samples, backbone = pretrained
    out = tmp_path / "filter.h5"
    proc = gaia_here("fit-pathfilter", "--weights", backbone, "--data", samples, "--recalibrate", "8",
                     "--buckets", "2", "--paths-per-bucket", "5", "--epochs", "2", "--device", "cpu", "-o", out)
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(out, "gaia/pathfilter") as art:
        table = art.meta("measurements")
        assert art.meta("training")["source"] == "montage"
    assert len(table) == 10 and {row["bucket"] for row in table} == {0, 1}
    losses = np.array([row["loss"] for row in table])
    assert np.all(np.isfinite(losses)) and np.all(losses > 0) and all(row["ap"] is None for row in table)
    assert len(set(losses.round(6))) > 1  # paths differ, so their losses do
    # the same paths measured again (a fresh journal) give the same losses: fixed montages, seeded
    again = tmp_path / "again.h5"
    proc = gaia_here("fit-pathfilter", "--weights", backbone, "--data", samples, "--recalibrate", "8",
                     "--buckets", "2", "--paths-per-bucket", "5", "--epochs", "2", "--device", "cpu", "-o", again)
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(again, "gaia/pathfilter") as art:
        assert [row["loss"] for row in art.meta("measurements")] == pytest.approx(list(losses), rel=1e-5)


def test_a_backbone_without_the_head_is_refused(pretrained, tmp_path):
    samples, backbone = pretrained
    old = tmp_path / "old.h5"
    shutil.copy(backbone, old)
    with h5py.File(old, "r+") as f:
        for name in [n for n in f["tensors"] if n.startswith(HEAD_PREFIX)]:
            del f["tensors"][name]
    assert_bad_input(gaia_here("fit-pathfilter", "--weights", old, "--data", samples, "--device", "cpu",
                               "-o", tmp_path / "f.h5"), "re-run pretrain with this version")
    assert_bad_input(gaia_here("fit-pathfilter", "--weights", backbone, "--data", samples, "--recalibrate-data",
                               samples, "--device", "cpu", "-o", tmp_path / "f.h5"), "--recalibrate-data is for COCO")


def test_train_supernet_init_loads_the_backbone_and_skips_the_head_quietly(pretrained, shapes, tmp_path):
    _, backbone = pretrained
    with H5Artifact(backbone, "gaia/weights") as art:
        saved = art.tensors()
    head = [n for n in saved if n.startswith(HEAD_PREFIX)]
    assert sorted(head) == [HEAD_PREFIX + "bias", HEAD_PREFIX + "weight"]
    train = run_gaia("train-supernet", "--data", shapes / "val.json", "--space", "tiny", "--init", backbone,
                     "--device", "cpu", "--workers", "0", "--batch-size", "4", "--stop-after", "1",
                     "-o", tmp_path / "supernet.h5")
    assert train.returncode == 0, train.stderr
    # every backbone tensor, as before the head was saved, and nothing reported skipped
    assert f"--init: loaded {len(saved) - len(head)} backbone tensors, skipped 0" in train.stderr
    assert "montage_head" not in train.stderr
