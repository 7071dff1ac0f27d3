"""select-data (GAIA 3.2.2): represent vectors, cosine within a category, top-k and most-similar, the budget,
the features cache, and its refusals."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import MultiScaleRoIAlign

from gaia_cli.artifacts import H5Artifact, sha256_file
from gaia_cli.data.toy import make_toy_dataset
from gaia_cli.errors import BadInput
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import save_detector
from gaia_cli.selection.features import box_features, represent
from gaia_cli.selection.search import Chunk, Targets, best_per_category, brute_force, top_k
from gaia_cli.selection.strategies import Candidate, candidates, choose
from gaia_cli.space.arch import preset

from conftest import assert_bad_input, gaia_here

CLASSES = ["circle", "square", "triangle", "ring"]
MAX_ARCH = json.dumps(preset("tiny").max_arch.as_dict())


def unit(*rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


# ------------------------------------------------------------------------------------------ represent vectors


class SpatialMean(nn.Module):
    """A box head that averages the pooled 7x7 map: fc7 of a box is the mean feature inside it."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_represent_vector_of_a_hand_made_feature_map_is_the_mean_of_its_boxes():
    # a 2-channel map of an 64x64 image: left half (1, 0), right half (0, 3), bottom-right corner (5, 5)
    fmap = torch.zeros(1, 2, 64, 64)
    fmap[0, 0, :, :32] = 1.0
    fmap[0, 1, :, 32:] = 3.0
    fmap[0, :, 48:, 48:] = 5.0
    boxes = torch.tensor([[0.0, 0, 24, 24], [40, 0, 64, 24], [50, 50, 62, 62], [4, 40, 20, 60]])
    labels = torch.tensor([7, 7, 9, 7])
    fc7 = box_features(OrderedDict([("0", fmap)]), [boxes], [(64, 64)],
                       MultiScaleRoIAlign(["0"], 7, 2), SpatialMean())[0]
    assert torch.allclose(fc7, torch.tensor([[1.0, 0], [0, 3], [5, 5], [1, 0]]), atol=1e-5)
    cats, vecs = represent(fc7, labels)
    assert cats.tolist() == [7, 9]
    mean7 = torch.tensor([2 / 3, 1.0])  # the mean of (1, 0), (0, 3), (1, 0)
    assert torch.allclose(vecs[0], mean7 / mean7.norm(), atol=1e-5)
    assert torch.allclose(vecs[1], torch.tensor([1.0, 1.0]) / 2**0.5, atol=1e-5)
    assert torch.allclose(vecs.norm(dim=1), torch.ones(2))


# -------------------------------------------------------------------------------------------------- search


def chunks_of(vectors, categories, size, ids=None):
    def make():
        for start in range(0, len(vectors), size):
            yield Chunk(start, categories[start:start + size], vectors[start:start + size].half(),
                        None if ids is None else ids[start:start + size])
    return make


def test_cosine_only_within_a_category():
    targets = Targets(unit([1, 0, 0]), torch.tensor([1]))
    # row 0 is the target's vector itself, but of category 2; rows 1-2 are category 1 and less alike
    up = unit([1, 0, 0], [0.6, 0.8, 0], [0, 0, 1])
    cats = torch.tensor([2, 1, 1])
    found = top_k(targets, chunks_of(up, cats, 2)(), 3)
    assert found.rows[0].tolist() == [1, 2, -1]  # only two rows share the category; row 0 is never compared
    assert found.scores[0, 0] == pytest.approx(0.6, abs=1e-3)
    best = best_per_category(targets, chunks_of(up, cats, 2)(), 5)
    assert set(best) == {1} and best[1].rows.tolist() == [1, 2]
    assert torch.isinf(brute_force(unit([1, 0, 0]), torch.tensor([1]), up, cats)[0, 0])


def test_top_k_and_most_similar_on_a_hand_made_matrix():
    # two target vectors of category 1 (a, b) and one of category 2 (c)
    t = unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])
    tc = torch.tensor([1, 1, 2])
    up = unit([0.9, 0.1, 0, 0],   # 0: close to a
              [0.15, 0.85, 0, 0],  # 1: close to b, less than 0 is to a
              [0.7, 0.7, 0, 0],   # 2: between a and b
              [1, 0, 0, 0.05],    # 3: closest to a
              [0, 0, 1, 0],       # 4: exactly c
              [0, 0.3, 0.95, 0],  # 5: near c
              [0, 0, 0, 1])       # 6: far from all
    uc = torch.tensor([1, 1, 1, 1, 2, 2, 1])
    for size in (1, 3, 7):  # the chunking never changes the answer
        found = top_k(Targets(t, tc), chunks_of(up, uc, size)(), 2)
        assert found.rows.tolist() == [[3, 0], [1, 2], [4, 5]]
        best = best_per_category(Targets(t, tc), chunks_of(up, uc, size)(), 3)
        assert best[1].rows.tolist() == [3, 0, 1] and best[1].targets.tolist() == [0, 0, 1]
        assert best[2].rows.tolist() == [4, 5] and best[2].targets.tolist() == [2, 2]
        assert best[1].scores[0] == pytest.approx(float(up[3] @ t[0]), abs=1e-3)
    full = brute_force(t, tc, up.half(), uc)
    assert top_k(Targets(t, tc), chunks_of(up, uc, 2)(), 7).scores[0, :5].tolist() == \
        pytest.approx(full[:, 0].sort(descending=True).values[:5].tolist(), abs=1e-6)


def test_search_is_exact_against_brute_force_on_random_vectors():
    g = torch.Generator().manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(12, 16, generator=g), dim=1)
    tc = torch.randint(1, 4, (12,), generator=g)
    up = torch.nn.functional.normalize(torch.randn(500, 16, generator=g), dim=1).half()
    uc = torch.randint(1, 5, (500,), generator=g)
    full = brute_force(t, tc, up, uc)
    found = top_k(Targets(t, tc), chunks_of(up.float(), uc, 37)(), 5)
    assert torch.allclose(found.scores, full.topk(5, dim=0).values.T, atol=1e-6)
    best = best_per_category(Targets(t, tc), chunks_of(up.float(), uc, 37)(), 20)
    for c, b in best.items():
        rows = (uc == c).nonzero().flatten()
        expected = full[rows].max(dim=1).values.topk(min(20, len(rows))).values
        assert torch.allclose(b.scores, expected, atol=1e-6)


# ----------------------------------------------------------------------------------------------- strategies


def cand(image, category, score):
    return Candidate(row=image, category=category, rank=score, score=score, target=0, image=(0, image))


def test_budget_and_per_category_minimum():
    found = [cand(1, 1, 0.9), cand(2, 1, 0.8), cand(3, 1, 0.7), cand(4, 1, 0.6),
             cand(5, 2, 0.3), cand(6, 2, 0.2), cand(7, 2, 0.1), cand(1, 2, 0.95)]
    # no minimum: the four best images, each once (image 1 by its best candidate)
    chosen = choose(found, [1, 2], budget=4, min_per_category=0)
    assert [c.image[1] for c in chosen] == [1, 2, 3, 4]
    assert chosen[0].category == 2 and chosen[0].score == 0.95
    # a minimum of 2 per category: category 2's two best images come in, within the same budget
    chosen = choose(found, [1, 2], budget=4, min_per_category=2)
    images = {c.image[1] for c in chosen}
    assert len(chosen) == 4 and {5}.issubset(images) and sum(c.category == 2 for c in chosen) >= 2
    assert sum(c.category == 1 for c in chosen) >= 2
    # no budget (top-k): every image once
    assert len(choose(found, [1, 2], None, 2)) == 7
    with pytest.raises(BadInput, match="--budget 3 is less than --min-per-category 2 x 2"):
        choose(found, [1, 2], budget=3, min_per_category=2)


# ------------------------------------------------------------------------------------------ the command line


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny supernet over the toy shapes, two upstream datasets of two styles and a target of one."""
    root = tmp_path_factory.mktemp("select")
    torch.manual_seed(0)
    save_detector(root / "supernet.h5", Supernet(preset("tiny"), len(CLASSES) + 1), CLASSES)
    torch.manual_seed(1)
    save_detector(root / "other.h5", Supernet(preset("tiny"), len(CLASSES) + 1), CLASSES)
    make_toy_dataset(root / "dim", 10, 64, 1, 1, classes=CLASSES)
    make_toy_dataset(root / "comic", 10, 64, 2, 1, classes=CLASSES, style="comic")
    make_toy_dataset(root / "target", 4, 64, 3, 1, classes="circle,square", style="comic")
    make_toy_dataset(root / "planks", 3, 64, 4, 1, classes="plank,pole")
    (root / "arch.json").write_text(MAX_ARCH)
    return root


def select_args(w, features, *more):
    return ["select-data", "--weights", w / "supernet.h5", "--arch", w / "arch.json", "--target",
            w / "target/train.json", "--upstream", f"dim={w / 'dim/train.json'}", "--upstream",
            f"comic={w / 'comic/train.json'}", "--features", features, "--recalibrate", 2, "--workers", 0,
            "--device", "cpu", "-q", *more]


@pytest.fixture(scope="module")
def cached(world, tmp_path_factory):
    """The features of the world's three datasets, computed once (one process)."""
    folder = tmp_path_factory.mktemp("cached") / "features"
    proc = gaia_here(*select_args(world, folder, "--features-only"))
    assert proc.returncode == 0, proc.stderr
    assert [r["computed"] for r in json.loads(proc.stdout)["features"]] == [4, 10, 10]
    return folder


def test_select_data_writes_a_selection_and_caches_features(world, tmp_path):
    from gaia_cli.data.extra import extra_datasets

    features = tmp_path / "features"
    first = gaia_here(*select_args(world, features, "--strategy", "top-k", "--k", 2))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["features"][0]["computed"] == 4
    sel = json.loads(first.stdout)
    assert sel["kind"] == "gaia/selection" and sel["strategy"] == "top-k" and sel["images"]
    assert {im["category"] for im in sel["images"]} <= {"circle", "square"}
    for im in sel["images"]:
        assert -1.0 <= im["score"] <= 1.0 and im["target_category"] == im["category"]
        assert im["dataset"] in ("dim", "comic") and isinstance(im["target_image"], int)
    caches = sorted(features.glob("*.h5"))
    assert len(caches) == 3
    with H5Artifact(caches[0], "gaia/features") as art:
        vecs = art.tensors("vectors")["vectors"]
        assert vecs.dtype == torch.float16 and torch.allclose(vecs.float().norm(dim=1), torch.ones(len(vecs)), atol=1e-2)
    digests = {p: sha256_file(p) for p in caches}
    # a second run computes nothing and leaves the caches as they are; another strategy uses them
    # (another --seed: the random strategy's draw, not the model, so the caches still hold)
    second = gaia_here(*select_args(world, features, "--strategy", "most-similar", "--budget", 6, "--seed", 5))
    assert second.returncode == 0, second.stderr
    assert [(f["dataset"], f["computed"], f["images"]) for f in json.loads(second.stdout)["features"]] == \
        [("target", 0, 4), ("dim", 0, 10), ("comic", 0, 10)]
    assert {p: sha256_file(p) for p in caches} == digests
    chosen = json.loads(second.stdout)["images"]
    assert len(chosen) == 6 and sum(im["category"] == "square" for im in chosen) >= 2
    scores = [im["score"] for im in chosen]
    # the selection feeds finetune --extra-data; inspect summarises it
    (tmp_path / "sel.json").write_text(second.stdout)
    parts, report = extra_datasets(str(tmp_path / "sel.json"), [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}])
    assert sum(r["images"] for r in report) == 6
    summary = json.loads(gaia_here("inspect", tmp_path / "sel.json").stdout)["summary"]
    assert summary["images"] == 6 and sum(summary["per_dataset"].values()) == 6
    assert summary["score"]["max"] == pytest.approx(max(scores), abs=1e-4)


def test_features_only_under_two_processes_equals_one(world, cached, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [str(a) for a in select_args(world, tmp_path / "two", "--features-only")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "gaia_cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    report = json.loads(proc.stdout)  # rank 0 alone prints
    assert [r["computed"] for r in report["features"]] == [4, 10, 10] and lines[0] == "{"
    for a in sorted((tmp_path / "two").glob("*.h5")):
        b = cached / a.name
        with H5Artifact(a) as x, H5Artifact(b) as y:
            tx, ty = x.tensors(), y.tensors()
            assert x.meta("model")["digest"] == y.meta("model")["digest"]
        order_x = np.lexsort((tx["category_ids"].numpy(), tx["image_ids"].numpy()))
        order_y = np.lexsort((ty["category_ids"].numpy(), ty["image_ids"].numpy()))
        assert (tx["image_ids"][order_x] == ty["image_ids"][order_y]).all()
        assert torch.allclose(tx["vectors"][order_x].float(), ty["vectors"][order_y].float(), atol=2e-3)


def test_a_target_class_outside_the_label_space_is_left_out_not_refused(world, tmp_path):
    # a target with a class the corpus lacks ('cross'): its boxes make no vector and nothing is selected for
    # it; the shared class still selects (before, the unlabelled category stopped the run with exit 2)
    make_toy_dataset(tmp_path / "new", 4, 64, 5, 1, classes="circle,cross", style="comic")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"kind": "gaia/labels", "schema_version": 1,
                                  "categories": [{"id": i, "name": n} for i, n in enumerate(CLASSES, start=1)],
                                  "datasets": []}))
    args = select_args(world, tmp_path / "features", "--labels", labels, "--strategy", "most-similar",
                       "--budget", 3)
    args[args.index("--target") + 1] = tmp_path / "new/train.json"
    proc = gaia_here(*[a for a in args if a != "-q"])
    assert proc.returncode == 0, proc.stderr
    assert "no images selected for them: cross" in proc.stderr
    chosen = json.loads(proc.stdout)["images"]
    assert chosen and {im["category"] for im in chosen} == {"circle"}


def test_refusals(world, cached, tmp_path):
    features = cached
    # a cache of another model
    args = select_args(world, features)
    args[args.index("--weights") + 1] = world / "other.h5"
    assert_bad_input(gaia_here(*args), "features of another model")
    # a features file of another label space
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"kind": "gaia/labels", "schema_version": 1,
                                  "categories": [{"id": i, "name": n} for i, n in enumerate(CLASSES, start=1)],
                                  "datasets": []}))
    assert_bad_input(gaia_here(*select_args(world, features, "--labels", labels)), "another label space")
    # an unknown strategy
    assert_bad_input(gaia_here(*select_args(world, features, "--strategy", "nearest")), "--strategy must be one of")
    # a target that shares no category with any upstream dataset
    args = select_args(world, features)
    args[args.index("--target") + 1] = world / "planks/train.json"
    assert_bad_input(gaia_here(*args), "shares no category with any upstream dataset")
    # an upstream image folder that is missing
    coco = json.loads((world / "dim/train.json").read_text())
    (tmp_path / "moved.json").write_text(json.dumps(coco))
    args = select_args(world, features)
    args[args.index(f"dim={world / 'dim/train.json'}")] = f"dim={tmp_path / 'moved.json'}"
    assert_bad_input(gaia_here(*args), "--upstream dim: its image folder is missing")
    # the budget below the per-category minimum, and a malformed --upstream
    assert_bad_input(gaia_here(*select_args(world, features, "--budget", 3, "--min-per-category", 2)),
                     "--budget 3 is less than --min-per-category 2 x 2")
    args = select_args(world, features)
    args[args.index(f"dim={world / 'dim/train.json'}")] = str(world / "dim/train.json")
    assert_bad_input(gaia_here(*args), "expected NAME=PATH")


def test_toy_styles_are_distinct_domains(tmp_path):
    from PIL import Image

    from gaia_cli.data.toy import STYLES

    listed = gaia_here("toy-data", "--list-styles")
    assert listed.returncode == 0 and listed.stdout.splitlines() == list(STYLES) and listed.stdout.startswith("dim\n")
    means = {}
    for style in STYLES:
        summary = make_toy_dataset(tmp_path / style, 3, 64, 0, 1, style=style)
        info = json.loads((tmp_path / style / "train.json").read_text())["info"]
        assert info.get("style") == (None if style == "dim" else style) and summary.get("style") == info.get("style")
        pixels = [np.asarray(Image.open(tmp_path / style / f"train/{i:06d}.png").convert("RGB"), dtype=float)
                  for i in (1, 2, 3)]
        means[style] = np.mean([p.reshape(-1, 3).mean(0) for p in pixels], axis=0)
    names = list(STYLES)
    for i, a in enumerate(names):  # every two styles differ in their colours as a whole
        for b in names[i + 1:]:
            assert np.abs(means[a] - means[b]).max() > 20, (a, b, means[a], means[b])
    assert_bad_input(gaia_here("toy-data", tmp_path / "x", "--style", "sepia"), "--style 'sepia'", "dim, paper")


def test_a_cache_grows_by_the_missing_images_only(tmp_path):
    from gaia_cli.selection.features import Cache, Identity, update_cache

    identity = Identity({"digest": "m", "weights": "w.h5", "dim": 4, "arch": None}, {"name": "up", "path": "/up.json"},
                        None, [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}])
    asked = []

    def compute(missing):
        asked.append(list(missing))
        yield [(i, np.array([1, 2]) if i % 2 else np.array([], dtype=np.int64),
                np.full((2 if i % 2 else 0, 4), 0.5, np.float16)) for i in missing]

    path = tmp_path / "up.h5"
    assert update_cache(path, identity, [1, 2], compute)["computed"] == 2
    with Cache(path, identity) as c:
        done = set(c.done.tolist())
        assert done == {1, 2} and c.rows == 2  # image 2 has no box: done, without a row
    report = update_cache(path, identity, [i for i in (1, 2, 3) if i not in done], compute)
    assert asked == [[1, 2], [3]] and report == {"path": str(path), "computed": 1, "rows": 4, "images": 3}
    before = sha256_file(path)
    assert update_cache(path, identity, [], compute)["computed"] == 0 and sha256_file(path) == before
    assert len(asked) == 2  # nothing missing: nothing computed, the file left as it is
    other = Identity({**identity.model, "digest": "n"}, identity.dataset, None, identity.categories)
    with pytest.raises(BadInput, match="another model"):
        update_cache(path, other, [4], compute)


def test_random_selection_is_uniform_among_the_targets_categories():
    from gaia_cli.selection.strategies import candidates

    g = torch.Generator().manual_seed(1)
    t = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    tc = torch.tensor([1, 1, 2, 2])
    up = torch.nn.functional.normalize(torch.randn(2000, 8, generator=g), dim=1)
    uc = torch.randint(1, 4, (2000,), generator=g)  # category 3 is not the target's
    ids = torch.arange(2000)
    chunks = chunks_of(up, uc, 300, ids)
    best = brute_force(t, tc, up.half(), uc).max(dim=1).values
    eligible = (uc != 3).nonzero().flatten()
    median = best[eligible].median()
    picks = {}
    for strategy, seed in (("most-similar", 0), ("random", 0), ("random", 1)):
        found = candidates(strategy, Targets(t, tc), chunks, 5, 200, seed)
        for c in found:
            c.image = (0, c.row)
        chosen = choose(found, [1, 2], 200, 2)
        rows = torch.tensor([c.row for c in chosen])
        assert len(rows) == 200 and len(set(rows.tolist())) == 200 and (uc[rows] != 3).all()
        picks[(strategy, seed)] = rows
        for c in chosen:  # each still carries its best similarity and the target vector that gives it
            assert c.score == pytest.approx(float(best[c.row]), abs=1e-3) and int(tc[c.target]) == int(uc[c.row])
    assert (best[picks[("most-similar", 0)]] > median).all()
    for seed in (0, 1):  # about half above the median, as a uniform draw gives
        assert 0.35 < float((best[picks[("random", seed)]] > median).float().mean()) < 0.65
    assert set(picks[("random", 0)].tolist()) != set(picks[("random", 1)].tolist())


def test_ignore_regions_make_no_vector():
    """A percentage split's unchosen instances (label -1) are no category's evidence."""
    from gaia_cli.nn.detector import extract
    from gaia_cli.selection.features import image_vectors

    space = preset("tiny")
    net = Supernet(space, 3)
    arch = space.anchors["T1"]
    net.set_arch(arch)
    model = extract(net, arch).eval()
    image = torch.rand(3, 96, 96)
    boxes = torch.tensor([[10.0, 10.0, 40.0, 40.0], [50.0, 50.0, 90.0, 80.0]])
    alone = image_vectors(model, [image], [{"boxes": boxes[:1], "labels": torch.tensor([2])}])
    both = image_vectors(model, [image], [{"boxes": boxes, "labels": torch.tensor([2, -1])}])
    assert both[0][0].tolist() == [2]
    assert torch.allclose(both[0][1], alone[0][1])


def test_extra_data_maps_boxes_through_the_label_space_the_selection_used(tmp_path):
    # upstream 'circle' was merged under the unified name 'ball': by name its boxes would be trained as
    # background for a target that calls it 'ball'; through the label space they keep their class
    from gaia_cli.artifacts import json_artifact, sha256_file
    from gaia_cli.data.toy import make_toy_dataset
    from gaia_cli.data.extra import extra_datasets

    make_toy_dataset(tmp_path / "up", 4, 64, 1, 1, classes="circle,square")
    coco = json.loads((tmp_path / "up/train.json").read_text())
    circles = sum(a["category_id"] == 1 for a in coco["annotations"])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(json_artifact("gaia/labels", {
        "categories": [{"id": 1, "name": "ball"}, {"id": 2, "name": "square"}],
        "datasets": [{"name": "up", "categories": [{"id": 1, "name": "circle", "unified_id": 1},
                                                   {"id": 2, "name": "square", "unified_id": 2}]}]})))
    selection = {"datasets": [{"name": "up", "path": str(tmp_path / "up/train.json"), "images": None}],
                 "images": [{"dataset": "up", "image_id": im["id"]} for im in coco["images"]],
                 "label_space": {"path": str(labels), "sha256": sha256_file(labels)}}
    sel = tmp_path / "sel.json"
    sel.write_text(json.dumps(json_artifact("gaia/selection", selection)))
    target = [{"id": 7, "name": "ball"}]
    parts, report = extra_datasets(str(sel), target)
    assert report[0]["boxes"] == circles > 0 and report[0]["categories"] == ["circle"]
    assert all(int(lab) == 1 for i in range(len(parts[0])) for lab in parts[0][i][1]["labels"])
    # a label space changed since the selection is refused; without one, names decide (nothing is a ball)
    labels.write_text(labels.read_text().replace("ball", "sphere"))
    with pytest.raises(BadInput, match="has changed since"):
        extra_datasets(str(sel), target)
    sel.write_text(json.dumps(json_artifact("gaia/selection", {**selection, "label_space": None})))
    with pytest.raises(BadInput, match="no category"):
        extra_datasets(str(sel), target)


def test_the_upstream_order_changes_no_vector(world, tmp_path):
    # a path's BN is re-estimated on every upstream dataset in turn, by name: the same model and caches
    # whichever order --upstream names them in
    def digest(order):
        args = ["select-data", "--weights", world / "supernet.h5", "--arch", world / "arch.json",
                *[a for name in order for a in ("--upstream", f"{name}={world / name / 'train.json'}")],
                "--features", tmp_path / "-".join(order), "--recalibrate", 4, "--batch-size", 2, "--features-only",
                "--workers", 0, "--device", "cpu", "-q"]
        proc = gaia_here(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["model"]["digest"]

    assert digest(["dim", "comic"]) == digest(["comic", "dim"])


def test_top_k_under_a_budget_leaves_no_target_image_with_nothing():
    # target a's two neighbours are closer than target b's best: a budget of 2 must still take b's best
    t = unit([1, 0, 0], [0, 1, 0])
    tc = torch.tensor([1, 1])
    up = unit([1, 0.01, 0], [1, 0.02, 0], [0.3, 1, 0])
    uc = torch.tensor([1, 1, 1])
    found = candidates("top-k", Targets(t, tc), chunks_of(up, uc, 3), 2, 2)
    for c in found:
        c.image = (0, c.row)
    chosen = choose(found, [1], budget=2, min_per_category=0)
    assert sorted(c.target for c in chosen) == [0, 1] and sorted(c.row for c in chosen) == [0, 2]
