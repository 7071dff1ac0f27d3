"""DetOFA's path filter and pruning: tokens, buckets, the FLOPs-bounded loss, fitting, pruning, rejection
sampling, and the commands' refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_bad_input, gaia_here
from gaia_cli.artifacts import H5Artifact, InputRef, sha256_file
from gaia_cli.pathfilter import fit
from gaia_cli.pathfilter.accept import Acceptance, AcceptingSampler, accepting
from gaia_cli.pathfilter.buckets import bucket_edges, gflops, sample_per_bucket
from gaia_cli.pathfilter.filterfile import Scorer, load_filter, save_filter
from gaia_cli.pathfilter.journal import Journal
from gaia_cli.pathfilter.model import PathFilter
from gaia_cli.pathfilter.prune import operations, prune
from gaia_cli.pathfilter.tokens import Tokenizer, sinusoid
from gaia_cli.space.arch import Arch, SearchSpace, preset
from gaia_cli.space.pruning import Pruning, bucket_of
from gaia_cli.space.sampling import PathSampler


def synthetic_loss(arch: Arch) -> float:
    """A known ranking: deeper first and third stages, a wider last stage, and larger inputs are better."""
    return 3.0 - 0.3 * arch.depth[0] - 0.2 * arch.depth[2] - 0.01 * arch.width[4] + 0.004 * arch.width[1] \
        - 0.002 * arch.scale


def synthetic_rows(space: SearchSpace, n: int, noise: float = 0.02, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    archs = list(space.enumerate())
    return [{"arch": archs[k].as_dict(), "loss": synthetic_loss(archs[k]) + float(rng.normal(0, noise)), "ap": None}
            for k in rng.permutation(len(archs))[:n]]


# ------------------------------------------------------------------------------------------- tokens, buckets


def test_a_path_is_tokenised_layer_by_layer_with_skips_beyond_its_depth():
    space = preset("tiny")  # depth [[1,2],[1,2],[1,2,3],[1,2]]: 2+2+3+2 block slots
    tok = Tokenizer.for_space(space)
    assert tok.length == 1 + 9 + 1
    arch = Arch((1, 2, 3, 1), (16, 8, 24, 32, 48), 96)
    t = tok.encode([arch])[0]
    off, sc = tok.offsets, tok.skip
    assert t[0] == off[0] + 1  # the stem's second width
    assert list(t[1:3]) == [off[1] + 0, sc]  # stage 1: one block of width 8, then a skip
    assert list(t[3:5]) == [off[2] + 1, off[2] + 1]  # stage 2: its width repeated for both blocks
    assert list(t[5:8]) == [off[3] + 1] * 3
    assert list(t[8:10]) == [off[4] + 1, sc]
    assert t[10] == sc + 1 + 1  # scale 96 is the second scale
    assert tok.vocab == t.max() + 1 + 1  # the largest scale would be the last token
    assert list(tok.block_index()) == [0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5]
    every = tok.encode(list(space.enumerate()))
    assert len({tuple(row) for row in every}) == space.size()  # no two paths share their tokens


def test_sinusoidal_positional_encodings():
    pe = sinusoid(np.arange(11), 128)
    assert pe.shape == (11, 128)
    assert np.allclose(pe[0, 0::2], 0) and np.allclose(pe[0, 1::2], 1)  # sin 0, cos 0
    assert np.allclose(pe[3, 0], np.sin(3)) and np.allclose(pe[3, 1], np.cos(3))
    assert np.allclose(pe[3, 2], np.sin(3 / 10000 ** (2 / 128)))
    assert len({tuple(np.round(row, 6)) for row in pe}) == 11  # every position told apart


def test_bucket_edges_span_the_space_in_equal_widths():
    space = preset("tiny")
    edges = bucket_edges(space, 5, 7)
    lo, hi = gflops([space.min_arch, space.max_arch], 7, space.detector)
    assert edges[0] == pytest.approx(lo) and edges[-1] == pytest.approx(hi)
    assert np.allclose(np.diff(edges), (hi - lo) / 5)
    assert list(bucket_of([lo, hi, (edges[2] + edges[3]) / 2, edges[1]], edges)) == [0, 4, 2, 1]
    flops = gflops(space.enumerate(), 7, space.detector)
    assert lo == flops.min() and hi == flops.max()  # FLOPs grow with every choice: the extremes are min/max arch
    per = sample_per_bucket(space, edges, 7, 10, np.random.default_rng(0))
    for b, archs in enumerate(per):
        assert len(archs) == 10 and len(set(archs)) == 10
        assert set(bucket_of(gflops(archs, 7, space.detector), edges)) == {b}


def test_the_batched_flops_are_the_closed_form_of_each_arch():
    from gaia_cli.space.flops import detector_gflops, detector_gflops_rows

    for name in ("tiny", "ar50to101"):
        space = preset(name)
        archs = [s for s in (space.min_arch, space.max_arch, *space.anchors.values())]
        rows = [(*a.depth, *a.width, a.scale) for a in archs]
        for classes in (7, 81):
            expected = [detector_gflops(a, classes, space.detector) for a in archs]
            assert detector_gflops_rows(rows, classes, space.detector) == pytest.approx(expected, rel=1e-12)


# -------------------------------------------------------------------------------------------------- the loss


def test_a_cross_bucket_pair_adds_nothing_to_the_loss():
    scores = torch.tensor([0.2, 0.9, 0.5])
    losses = torch.tensor([1.0, 2.0, 0.5])
    apart = fit.pair_loss(scores, losses, torch.tensor([0, 1, 2]))
    assert float(apart) == 0.0
    same = fit.pair_loss(scores[:2], losses[:2], torch.tensor([0, 0]))
    # path 0 has the lower loss, t = +1, g = 0.2 - 0.9: (1 - (-0.7))^2
    assert float(same) == pytest.approx((1 + 0.7) ** 2)
    # adding a path of another bucket, whatever its loss and score, changes nothing
    for other_loss in (0.1, 5.0):
        with_third = fit.pair_loss(scores, torch.tensor([1.0, 2.0, other_loss]), torch.tensor([0, 0, 1]))
        assert float(with_third) == pytest.approx(float(same))
    # a correctly ordered pair beyond the margin costs nothing
    assert float(fit.pair_loss(torch.tensor([2.0, 0.5]), torch.tensor([1.0, 2.0]), torch.tensor([0, 0]))) == 0.0


def test_the_split_keeps_a_fifth_of_each_bucket_and_refuses_too_few():
    buckets = np.repeat([0, 1, 2], [10, 5, 20])
    train, val = fit.split(buckets, 0)
    assert sorted([*train, *val]) == list(range(35)) and not set(train) & set(val)
    assert [int((buckets[val] == b).sum()) for b in range(3)] == [2, 1, 4]
    with pytest.raises(Exception, match="bucket 1 has 4 measured path"):
        fit.split(np.repeat([0, 1], [10, 4]), 0)


def test_a_filter_fitted_on_a_synthetic_ranking_ranks_held_out_paths():
    """Loss a known function of the arch plus noise: Kendall tau-b >= 0.8 on the held-out 20%."""
    space = preset("small")
    rows = synthetic_rows(space, 120)
    archs = [Arch.from_dict(r["arch"]) for r in rows]
    losses = np.array([r["loss"] for r in rows])
    edges = bucket_edges(space, 5, 81)
    buckets = bucket_of(gflops(archs, 81, space.detector), edges)
    train, val = fit.split(buckets, 0)
    tok = Tokenizer.for_space(space)
    tokens = tok.encode(archs)
    torch.manual_seed(0)
    model = PathFilter.build(tok, 5)
    result = fit.fit_filter(model, tokens, buckets, losses, train, val, epochs=25, seed=0)
    assert 1 <= result.best_epoch <= 25
    scores = Scorer(model, space, edges, 81).score_tokens(tokens, buckets)
    tau = fit.kendall_within(scores[val], losses[val], buckets[val])["mean"]
    assert tau >= 0.8, tau
    rep = fit.report(scores.astype(float), gflops(archs, 81, space.detector), tok.one_hot(archs), losses, buckets,
                     train, val, 0.25, 25, 0)
    assert set(rep["methods"]) == {"pathfilter", "flops", "mlp", "random"}
    assert rep["methods"]["pathfilter"]["kendall_tau_b"]["mean"] == pytest.approx(tau)
    assert rep["methods"]["pathfilter"]["weakest"]["precision"] > rep["methods"]["random"]["weakest"]["precision"]


def test_weakest_detection_counts():
    losses = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    buckets = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    perfect = -losses
    w = fit.weakest_detection(perfect, losses, buckets, np.arange(8), 0.25)
    assert w["accuracy"] == 1.0 and w["precision"] == 1.0 and w["recall"] == 1.0 and w["weak"] == 2
    wrong = losses.copy()  # the weakest scored best
    w = fit.weakest_detection(wrong, losses, buckets, np.arange(8), 0.25)
    assert w["precision"] == 0.0 and w["recall"] == 0.0


# ------------------------------------------------------------------------------------------------- pruning


class TableScorer:
    """A hand-made table in place of a fitted filter: the score of a path is the sum of its operations'."""

    def __init__(self, space: SearchSpace, op_scores: dict, buckets: int = 3):
        self.space, self.op_scores = space, op_scores
        self.classes = 7
        self.edges = bucket_edges(space, buckets, self.classes)
        self.buckets = buckets
        self.ref = InputRef("table", "0" * 64)

    def bucket(self, archs):
        return bucket_of(gflops(archs, self.classes, self.space.detector), self.edges)

    def score(self, archs, buckets=None):
        return np.array([sum(self.op_scores.get(op, 0.0) for op in ops_of(a)) for a in archs])


def ops_of(arch: Arch):
    return [("depth", i, d) for i, d in enumerate(arch.depth)] + [("width", j, w) for j, w in enumerate(arch.width)]


def _removed(pruning: Pruning, b: int) -> set:
    return {("depth", i, d) for i, s in enumerate(pruning.removed_depth[b]) for d in s} | \
        {("width", j, w) for j, s in enumerate(pruning.removed_width[b]) for w in s}


def test_flops_score_bucket_prunes_each_buckets_worst_operations():
    space = preset("tiny")
    bad = ("width", 2, 16)  # stage 2's narrow choice scores far below everything
    scorer = TableScorer(space, {bad: -10.0, ("depth", 2, 1): -5.0})
    p = prune(scorer, space, "flops-score-bucket", op_ratio=0.1, path_ratio=0.25, samples=60)
    n_ops = len(operations(space))
    for b in range(scorer.buckets):
        removed = _removed(p, b)
        assert bad in removed and ("depth", 2, 1) in removed
        assert len(removed) <= round(0.1 * n_ops)
        for i, s in enumerate(p.removed_depth[b]):
            assert s < set(space.depth[i])  # never every choice of a stage
        assert p.thresholds[b] is not None


def test_flops_score_all_removes_the_overall_worst_from_every_bucket_then_per_bucket():
    space = preset("tiny")
    scorer = TableScorer(space, {("width", 4, 32): -10.0, ("width", 1, 8): -1.0})
    p = prune(scorer, space, "flops-score-all", op_ratio_all=0.05, op_ratio_bucket=0.1, path_ratio=0.0, samples=60)
    for b in range(scorer.buckets):
        removed = _removed(p, b)
        assert ("width", 4, 32) in removed  # the overall worst, in every bucket
        assert ("width", 1, 8) in removed  # then each bucket's worst left
    assert p.thresholds == [None] * scorer.buckets  # --path-ratio 0: no path pruning
    assert p.settings["strategy"] == "flops-score-all"


class OffsetScorer(TableScorer):
    """The table's scores with a whole bucket shifted, as a filter's bucket embedding may shift it."""

    def score(self, archs, buckets=None):
        buckets = self.bucket(archs) if buckets is None else buckets
        return super().score(archs) + 100.0 * np.asarray(buckets)


def test_flops_score_all_compares_scores_only_within_their_buckets():
    # a filter's scores rank paths only within a bucket: shifting a bucket must not change what is pruned
    space = preset("tiny")
    table = {("width", 4, 32): -10.0, ("width", 1, 8): -1.0, ("depth", 2, 1): -3.0}
    plain = prune(TableScorer(space, table), space, "flops-score-all", op_ratio_all=0.05, op_ratio_bucket=0.1,
                  path_ratio=0.0, samples=60)
    shifted = prune(OffsetScorer(space, table), space, "flops-score-all", op_ratio_all=0.05,
                    op_ratio_bucket=0.1, path_ratio=0.0, samples=60)
    assert [_removed(plain, b) for b in range(3)] == [_removed(shifted, b) for b in range(3)]
    assert all(("width", 4, 32) in _removed(shifted, b) for b in range(3))


def test_search_by_a_pathfilter_compares_scores_only_within_their_buckets(tmp_path, monkeypatch):
    from gaia_cli.search.evolution import Settings
    from gaia_cli.search.run import SearchRequest, run

    space = preset("tiny")
    filt = _random_filter(space, tmp_path / "filter.h5")
    edges = bucket_edges(space, 3, 7)
    request = SearchRequest(space="tiny", flops=edges[2] + 0.5 * (edges[3] - edges[2]), classes=7,
                            pathfilter=str(filt), settings=Settings(population=20, generations=5))
    plain = run(request)
    original = Scorer.score_tokens

    def shifted(self, tokens, buckets, batch=4096):  # the same filter with its last bucket far above the rest
        return original(self, tokens, buckets, batch) + 100.0 * (np.asarray(buckets) == 2)

    monkeypatch.setattr(Scorer, "score_tokens", shifted)
    moved = run(request)
    assert {k: moved[k] for k in ("depth", "width", "scale")} == {k: plain[k] for k in ("depth", "width", "scale")}
    assert moved["objective"]["score"] == pytest.approx(plain["objective"]["score"], abs=1e-4)


def test_flops_prunes_the_same_number_at_random():
    space = preset("tiny")
    scorer = TableScorer(space, {("width", 2, 16): -10.0})
    one = prune(scorer, space, "flops", op_ratio=0.2, path_ratio=0.0, samples=60, seed=1)
    two = prune(scorer, space, "flops", op_ratio=0.2, path_ratio=0.0, samples=60, seed=2)
    counts = [len(_removed(one, b)) for b in range(3)]
    assert all(c >= 1 for c in counts)
    assert [_removed(one, b) for b in range(3)] != [_removed(two, b) for b in range(3)]  # drawn, not ranked


def _random_filter(space: SearchSpace, path: Path, buckets: int = 3) -> Path:
    torch.manual_seed(0)
    tok = Tokenizer.for_space(space)
    scorer = Scorer(PathFilter.build(tok, buckets), space, bucket_edges(space, buckets, 7), 7)
    save_filter(path, scorer, {}, [])
    return path


def test_rejection_sampling_never_yields_a_path_below_its_buckets_threshold(tmp_path):
    space = preset("tiny")
    filt = load_filter(_random_filter(space, tmp_path / "f.h5"))
    pruning = prune(filt, space, "flops-score-bucket", op_ratio=0.1, path_ratio=0.5, samples=60)
    space.pruning = pruning.to_payload()
    sampler = accepting(PathSampler(space, "gaia", 0), log_every=0)
    assert isinstance(sampler, AcceptingSampler)
    archs = [sampler.next() for _ in range(60)]
    buckets = filt.bucket(archs)
    scores = filt.score(archs, buckets)
    for arch, b, s in zip(archs, buckets, scores):
        assert pruning.operations_allow(arch, int(b))
        assert s >= pruning.thresholds[b]
    assert sampler.counts["drawn"] == 60 and sampler.counts["redrawn_score"] > 0
    # the state carries the counts and the draws: a resumed sampler continues identically
    state = json.loads(json.dumps(sampler.state()))
    resumed = accepting(PathSampler(space, "gaia", 0), log_every=0)
    resumed.load_state(state)
    assert [resumed.next() for _ in range(5)] == [sampler.next() for _ in range(5)]
    assert accepting(PathSampler(preset("tiny"), "gaia", 0)).__class__ is PathSampler  # unpruned: untouched


def test_a_pruned_space_whose_filter_changed_is_refused(tmp_path):
    space = preset("tiny")
    path = _random_filter(space, tmp_path / "f.h5")
    pruning = prune(load_filter(path), space, "flops", op_ratio=0.1, path_ratio=0.25, samples=30)
    space.pruning = pruning.to_payload()
    _random_filter(preset("small"), path)  # replaced by another file
    with pytest.raises(Exception, match="changed since it was pruned"):
        Acceptance(space).scorer  # loaded when a path passes the operations and meets a threshold


# ----------------------------------------------------------------------------------------------- the journal


def test_the_journal_resumes_drops_a_cut_line_and_refuses_another_key(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path, {"weights": "a"})
    assert j.open() == []
    j.append({"arch": {"depth": [1, 1, 1, 1], "width": [8, 8, 16, 16, 32], "scale": 64}, "loss": 1.0, "ap": 2.0})
    with open(path, "a") as fh:
        fh.write('{"arch": {"depth": [1, 1')  # killed mid-line
    again = Journal(path, {"weights": "a"})
    assert len(again.open()) == 1
    assert path.read_text().endswith("}\n")
    with pytest.raises(Exception, match="made for other weights"):
        Journal(path, {"weights": "b"}).open()


# ------------------------------------------------------------------------------------------- the commands


def _measurements(tmp_path, space: str, n: int) -> Path:
    path = tmp_path / f"{space}-{n}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(preset(space), n)))
    return path


def test_fit_prune_sample_and_search_chain(tmp_path):
    table = _measurements(tmp_path, "small", 90)
    filt = tmp_path / "filter.h5"
    proc = gaia_here("fit-pathfilter", "--measurements", table, "--space", "small", "--epochs", "3", "-o", filt)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kind"] == "gaia/pathfilter"
    summary = json.loads(gaia_here("inspect", filt).stdout)["summary"]
    assert summary["measured"] == 90 and set(summary["report"]["methods"]) == {"pathfilter", "flops", "mlp", "random"}
    # the report's held-out figures are the saved filter's own: recomputed here from its scores of the held-out
    # paths (scipy's tau-b within each bucket, then the mean), and the FLOPs baseline from the table
    from scipy.stats import kendalltau

    with H5Artifact(filt, "gaia/pathfilter") as art:
        table, rep = art.meta("measurements"), art.meta("report")
    held = [row for row in table if row["split"] == "val"]
    scorer = load_filter(filt)
    scores = scorer.score([Arch.from_dict(row["arch"]) for row in held], np.array([row["bucket"] for row in held]))
    for method, values in (("pathfilter", scores), ("flops", np.array([row["gflops"] for row in held]))):
        taus = []
        for b in sorted({row["bucket"] for row in held}):
            idx = [i for i, row in enumerate(held) if row["bucket"] == b]
            if len(idx) >= 2:
                tau = kendalltau(values[idx], [-held[i]["loss"] for i in idx]).statistic
                taus.append(tau) if np.isfinite(tau) else None
        assert rep["methods"][method]["kendall_tau_b"]["mean"] == pytest.approx(float(np.mean(taus)), abs=1e-5)

    pruned = tmp_path / "pruned.json"
    proc = gaia_here("prune", "--space", "small", "--pathfilter", filt, "--strategy", "flops-score-bucket",
                     "--op-ratio", "0.1", "--samples", "40", "-o", pruned)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(pruned.read_text())
    assert doc["kind"] == "gaia/space" and len(doc["pruning"]["buckets"]) == 5
    assert doc["pruning"]["filter"] == {"path": str(filt.resolve()), "sha256": sha256_file(filt)}
    assert "pruned (flops-score-bucket)" in gaia_here("space", "show", pruned).stderr

    lines = [json.loads(ln) for ln in gaia_here("space", "sample", pruned, "-n", "8", "--rule", "uniform",
                                                 "--pathfilter", filt).stdout.splitlines()]
    thresholds = [b["threshold"] for b in doc["pruning"]["buckets"]]
    for line in lines:
        pf = line["pathfilter"]
        assert pf["score"] >= thresholds[pf["bucket"]]

    proc = gaia_here("search", "--space", "small", "--flops", "0.3", "--pathfilter", filt, "--population", "10",
                     "--generations", "3")
    assert proc.returncode == 0, proc.stderr
    arch = json.loads(proc.stdout)
    assert arch["objective"]["name"] == "pathfilter" and arch["objective"]["measured"] is False
    assert arch["gflops"] <= 0.3


def test_fit_pathfilter_measures_a_supernets_paths_in_shards_resumes_and_fits_from_the_journals(tmp_path, toy):
    from gaia_cli.nn.detector import Supernet
    from gaia_cli.nn.io import save_detector

    classes = ["circle", "square", "triangle", "ring", "pole", "plank"]
    weights = tmp_path / "supernet.h5"
    torch.manual_seed(0)
    save_detector(weights, Supernet(preset("tiny"), len(classes) + 1), classes)
    out = tmp_path / "f.h5"
    args = ("fit-pathfilter", "--weights", weights, "--data", toy / "val.json", "--recalibrate-data",
            toy / "train.json", "--recalibrate", "4", "--buckets", "1", "--paths-per-bucket", "5", "--epochs", "2",
            "--device", "cpu", "-o", out)
    for shard in ("0/2", "1/2"):
        proc = gaia_here(*args, "--shard", shard)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["shard"] == shard and not out.exists()  # measured only
    journals = [tmp_path / "f.shard-0-of-2.jsonl", tmp_path / "f.shard-1-of-2.jsonl"]
    lines = [[json.loads(ln) for ln in j.read_text().splitlines()] for j in journals]
    assert [len(x) - 1 for x in lines] == [3, 2]  # every other planned path, after the header
    assert all(np.isfinite(r["loss"]) and 0 <= r["ap"] <= 100 for x in lines for r in x[1:])
    again = gaia_here(*args, "--shard", "0/2")
    assert again.returncode == 0 and "3 path(s) measured before; 0 to go" in again.stderr
    proc = gaia_here("fit-pathfilter", "--measurements", journals[0], "--measurements", journals[1], "--space", "tiny",
                     "--buckets", "1", "--classes", "7", "--epochs", "2", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(gaia_here("inspect", out).stdout)["summary"]["measured"] == 5


def test_detofa_algorithm_1_runs_end_to_end(tmp_path, toy):
    """DetOFA Algorithm 1 as docs/commands.md's chain: a pre-trained supernet; the full net fine-tuned (line 2); the
    supernet warmed up (3); paths measured and the filter fitted (4-5); the space pruned (6-7); the warmed-up
    supernet trained on on the pruned space, paths drawn uniformly and redrawn below their bucket's threshold
    (8-17); the filter re-fitted and the pruned space searched by it (3.3)."""
    train, val = toy / "train.json", toy / "val.json"
    common = ["--data", train, "--batch-size", "8", "--workers", "0", "--log-every", "1", "--device", "cpu"]

    def step(*args):
        proc = gaia_here(*args)
        assert proc.returncode == 0, proc.stderr
        return proc

    step("train-supernet", *common, "--space", "tiny", "--epochs", "1", "-o", tmp_path / "pre.h5")
    full = step("train-supernet", *common, "--space", "tiny", "--init", tmp_path / "pre.h5", "--rules", "max",
                "--epochs", "1", "-o", tmp_path / "full.h5")
    assert "--init: the whole supernet" in full.stderr
    step("train-supernet", *common, "--space", "tiny", "--init", tmp_path / "full.h5", "--rules", "uniform",
         "--epochs", "1", "-o", tmp_path / "warm.h5")
    measure = ["--data", val, "--recalibrate-data", train, "--recalibrate", "4", "--buckets", "2",
               "--paths-per-bucket", "5", "--epochs", "2", "--device", "cpu"]
    step("fit-pathfilter", "--weights", tmp_path / "warm.h5", *measure, "-o", tmp_path / "f.h5")
    pruned = tmp_path / "pruned.json"
    step("prune", "--space", "tiny", "--pathfilter", tmp_path / "f.h5", "--strategy", "flops-score-bucket",
         "--op-ratio", "0.2", "--path-ratio", "0.5", "--samples", "30", "-o", pruned)
    # the warmed-up supernet goes on over the pruned space (its pruning changes no weight)
    proc = step("train-supernet", *common, "--space", pruned, "--init", tmp_path / "warm.h5", "--epochs", "1",
                "-o", tmp_path / "final.h5")
    assert "drawn uniformly from what it allows" in proc.stderr
    counts = [ln for ln in proc.stderr.splitlines() if ln.startswith("pruned space:")]
    assert counts and "paths drawn" in counts[-1] and "for a score below threshold" in counts[-1]
    # before the search the filter is re-trained (DetOFA 3.3) from the first one, on the final supernet
    step("fit-pathfilter", "--weights", tmp_path / "final.h5", *measure, "--init", tmp_path / "f.h5",
         "-o", tmp_path / "f2.h5")
    edges = bucket_edges(preset("tiny"), 2, 7)
    arch = json.loads(step("search", "--space", pruned, "--pathfilter", tmp_path / "f2.h5", "--classes", "7",
                           "--flops", str(edges[2]), "--population", "10", "--generations", "3").stdout)
    assert arch["objective"]["name"] == "pathfilter"
    acceptance = Acceptance(SearchSpace.from_payload(json.loads(pruned.read_text()), "pruned"))
    assert acceptance.verdict(Arch.from_dict(arch))[0] is None  # an arch the pruned space allows


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    small = _measurements(tmp_path, "small", 30)
    assert_bad_input(gaia_here("fit-pathfilter", "--measurements", small, "--space", "tiny", "-o", tmp_path / "f.h5"),
                     "measurements of another space")
    few = _measurements(tmp_path, "small", 8)
    assert_bad_input(gaia_here("fit-pathfilter", "--measurements", few, "--space", "small", "-o", tmp_path / "f.h5"),
                     "the 80/20 split needs at least 5")
    tiny_filter = _random_filter(preset("tiny"), tmp_path / "tiny.h5")
    assert_bad_input(gaia_here("prune", "--space", "small", "--pathfilter", tiny_filter), "ranks paths of space 'tiny'")
    assert_bad_input(gaia_here("search", "--space", "small", "--flops", "1", "--pathfilter", tiny_filter),
                     "ranks paths of space 'tiny'")
    assert_bad_input(gaia_here("prune", "--space", "tiny", "--pathfilter", tiny_filter, "--strategy", "best"),
                     "unknown --strategy 'best'")
    assert_bad_input(gaia_here("fit-pathfilter", "--weights", "s.h5", "--data", "v.json", "--shard", "5/4",
                               "-o", tmp_path / "f.h5"), "--shard '5/4'")
    assert_bad_input(gaia_here("fit-pathfilter", "--weights", "s.h5", "--data", "v.json", "--shard", "2/2",
                               "-o", tmp_path / "f.h5"), "I must lie in 0..N-1")  # from 0, as rank's
    assert list(p.name for p in tmp_path.iterdir() if p.suffix == ".h5") == ["tiny.h5"]
