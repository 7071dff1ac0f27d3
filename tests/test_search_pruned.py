"""`search` on a pruned space (DetOFA Algorithm 1 then 3.3): every arch it returns is one the pruned space
allows; the pruning is judged per batch of candidates, and a path filter that is both the objective and the
pruned space's filter scores each path once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_bad_input, gaia_here
from gaia_cli.pathfilter.accept import Acceptance
from gaia_cli.pathfilter.buckets import bucket_edges
from gaia_cli.pathfilter.filterfile import Scorer, load_filter, save_filter
from gaia_cli.pathfilter.model import PathFilter
from gaia_cli.pathfilter.tokens import Tokenizer
from gaia_cli.space.arch import Arch, preset, read_space

QUICK = ["--classes", "7", "--population", "10", "--generations", "5"]


def _filter(path: Path, seed: int = 0) -> Path:
    """An untrained path filter of the tiny space (3 FLOPs buckets): random but fixed scores."""
    space = preset("tiny")
    torch.manual_seed(seed)
    save_filter(path, Scorer(PathFilter.build(Tokenizer.for_space(space), 3), space, bucket_edges(space, 3, 7), 7), {}, [])
    return path


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> tuple[Path, Path]:
    """(a pruned tiny space: operations removed per bucket and half of each bucket's paths below threshold,
    its filter)."""
    d = tmp_path_factory.mktemp("pruned")
    filt = _filter(d / "filter.h5")
    space = d / "pruned.json"
    proc = gaia_here("prune", "--space", "tiny", "--pathfilter", filt, "--strategy", "flops-score-bucket",
                     "--op-ratio", "0.1", "--path-ratio", "0.5", "--samples", "30", "-o", space)
    assert proc.returncode == 0, proc.stderr
    return space, filt


def _search(*args) -> tuple[list[dict], dict, str]:
    proc = gaia_here("search", *args, *QUICK)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return doc.get("archs", [doc]), doc["search"], proc.stderr


def _refused(space: Path, archs: list[dict]) -> list[str]:
    acceptance = Acceptance(read_space(str(space)))
    return [why for a in archs if (why := acceptance.verdict(Arch.from_dict(a))[0]) is not None]


def test_the_batch_verdicts_are_the_per_path_ones(pruned):
    space = read_space(str(pruned[0]))
    acceptance = Acceptance(space)
    p = acceptance.pruning
    archs = list(space.enumerate())
    rows = np.array([(*a.depth, *a.width, a.scale) for a in archs])
    why, buckets, scores = acceptance.verdict_rows(rows)
    assert buckets.tolist() == [p.bucket(a, space.detector) for a in archs]
    ops = [p.operations_allow(a, p.bucket(a, space.detector)) for a in archs]
    assert p.operations_allow_rows(rows, buckets).tolist() == ops
    assert (why == 1).tolist() == [not ok for ok in ops]
    scored = ~np.isnan(scores)
    assert scored.tolist() == ops  # every bucket has a threshold: each path its operations allow is scored
    expected = acceptance.scorer.score([a for a, ok in zip(archs, ops) if ok])
    np.testing.assert_allclose(scores[scored], expected, rtol=1e-5, atol=1e-6)
    thresholds = np.array(p.thresholds)[buckets]
    assert ((why == 2) == (scored & (scores < thresholds))).all()
    assert 0 < (why == 0).sum() < len(archs) and (why == 2).any()


def test_search_returns_only_archs_the_pruned_space_allows(pruned):
    space, _ = pruned
    archs, settings, stderr = _search("--space", space, "--flops", "0.05", "--top", "8")
    assert len(archs) == 8 and all(a["gflops"] <= 0.05 for a in archs)
    assert _refused(space, archs) == []
    assert settings["pruned"] is True and settings["pruning"]["strategy"] == "flops-score-bucket"
    refused = settings["pruning"]["refused"]
    assert refused["operation"] > 0 and refused["score"] > 0
    lines = [ln for ln in stderr.splitlines() if ln.startswith("pruned space:")]
    assert len(lines) == 1 and f"{refused['operation']:,} for a removed operation" in lines[0]
    # the same search of the space before pruning returns archs the pruning refuses: the check above can fail
    unpruned, settings, stderr = _search("--space", "tiny", "--flops", "0.05", "--top", "8")
    assert settings["pruned"] is False and "pruning" not in settings and "pruned space:" not in stderr
    assert _refused(space, unpruned)


def test_pareto_logs_the_refusals_once_per_budget(pruned):
    space, _ = pruned  # the tiny space's paths take 10.96-11.25 ms on the v100 profile
    archs, settings, stderr = _search("--space", space, "--pareto", "11.05,11.2", "--device", "v100")
    assert len(archs) == 2 and _refused(space, archs) == []
    lines = [ln for ln in stderr.splitlines() if ln.startswith("pruned space:")]
    assert len(lines) == 2
    operation = [int(ln.split("(")[1].split(" for")[0].replace(",", "")) for ln in lines]
    assert sum(operation) == settings["pruning"]["refused"]["operation"]  # each line its own budget's


def test_the_pruned_spaces_own_filter_as_objective_scores_each_path_once(pruned, monkeypatch):
    from gaia_cli.search.evolution import Settings
    from gaia_cli.search.run import SearchRequest, run

    space, filt = pruned
    seen: list[bytes] = []
    score_tokens, bucket_stats = Scorer.score_tokens, Scorer.bucket_stats
    in_stats = [False]

    def counting(self, tokens, buckets, batch=4096):
        if not in_stats[0]:  # the fixed per-bucket sample that standardises scores is scored apart
            seen.extend(t.tobytes() for t in tokens)
        return score_tokens(self, tokens, buckets, batch)

    def stats(self, *args, **kwargs):
        in_stats[0] = True
        try:
            return bucket_stats(self, *args, **kwargs)
        finally:
            in_stats[0] = False

    monkeypatch.setattr(Scorer, "score_tokens", counting)
    monkeypatch.setattr(Scorer, "bucket_stats", stats)
    doc = run(SearchRequest(space=str(space), flops=0.05, pathfilter=str(filt), classes=7, top=5,
                            settings=Settings(population=10, generations=5)))
    archs = doc["archs"]
    assert len(seen) == len(set(seen)) > 0  # no path scored twice (thresholds and objective)
    assert _refused(space, archs) == []
    acceptance = Acceptance(read_space(str(space)))
    monkeypatch.undo()
    scorer = load_filter(str(filt))
    for a in archs:  # the objective is the filter's score standardised within the path's bucket
        assert a["objective"]["name"] == "pathfilter"
        _, bucket, raw = acceptance.verdict(Arch.from_dict(a))
        mean, sd = scorer.bucket_stats()[bucket]
        assert a["objective"]["score"] == pytest.approx((raw - mean) / sd, abs=1e-5)
    assert [a["objective"]["score"] for a in archs] == sorted((a["objective"]["score"] for a in archs), reverse=True)


def test_a_pruned_space_whose_filter_changed_or_went_is_refused(pruned, tmp_path):
    space, filt = pruned
    doc = json.loads(space.read_text())
    moved = tmp_path / "pruned.json"
    doc["pruning"]["filter"]["path"] = str(tmp_path / "filter.h5")
    moved.write_text(json.dumps(doc))
    assert_bad_input(gaia_here("search", "--space", moved, "--flops", "0.05", *QUICK), "is missing")
    _filter(tmp_path / "filter.h5", seed=1)  # another filter in its place
    assert_bad_input(gaia_here("search", "--space", moved, "--flops", "0.05", *QUICK), "changed since it was pruned")
    assert_bad_input(gaia_here("search", "--space", moved, "--flops", "0.05", "--pathfilter", filt, *QUICK),
                     "changed since it was pruned")


def test_without_thresholds_the_filter_is_not_needed_and_a_refused_cheapest_arch_is_a_clear_error(pruned, tmp_path):
    space, _ = pruned
    doc = json.loads(space.read_text())
    for entry in doc["pruning"]["buckets"]:
        entry["threshold"] = None  # operation pruning only (prune --path-ratio 0)
    doc["pruning"]["filter"]["path"] = str(tmp_path / "gone.h5")
    ops_only = tmp_path / "ops.json"
    ops_only.write_text(json.dumps(doc))
    archs, settings, _ = _search("--space", ops_only, "--flops", "0.05", "--top", "5")
    assert _refused(ops_only, archs) == [] and settings["pruning"]["refused"]["score"] == 0
    assert settings["pruning"]["refused"]["operation"] > 0
    doc["pruning"]["buckets"][0]["removed"]["depth"][0] = [1]  # the cheapest arch's first stage
    ops_only.write_text(json.dumps(doc))
    cheapest = preset("tiny").min_arch
    assert _refused(ops_only, [cheapest.as_dict()]) == ["operation"]
    flops = doc["pruning"]["edges"][0] * 1.0001  # only the cheapest arch meets it
    assert_bad_input(gaia_here("search", "--space", ops_only, "--flops", str(flops), *QUICK),
                     "no arch that the pruned space")
