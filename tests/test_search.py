"""bench-latency and search: profiles, measured latency, evolutionary search under budgets."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from gaia_cli.errors import BadInput
from gaia_cli.latency.profile import leave_one_out, load_profile, table2, v100
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import save_detector
from gaia_cli.search.evolution import Budget, Evolution, Settings
from gaia_cli.space.arch import Arch, preset

from conftest import assert_bad_input, gaia_here, run_gaia

QUICK = ["--population", "20", "--generations", "15"]


def test_v100_profile_ranks_table2_in_published_latency_order():
    profile = v100()
    rows = table2()
    predicted = [profile.predict(Arch(tuple(r["depth"]), tuple(r["width"]), r["scale"])) for r in rows]
    published = [r["latency_ms_v100"] for r in rows]
    assert np.argsort(predicted).tolist() == np.argsort(published).tolist()
    assert profile.calibration["loo_mean_error"] < 0.04  # a FLOPs-linear fit on the paper's column gives 4.4%
    paper = np.array([r["gflops"] for r in rows])
    assert leave_one_out(paper, np.array(published, float)).mean() > profile.calibration["loo_mean_error"]


def test_unknown_device_lists_the_known_ones():
    assert_bad_input(run_gaia("search", "--latency", "25", "--device", "a100"), "unknown device profile 'a100'", "v100")


def _search(*args) -> dict:
    proc = run_gaia("search", *args, "-q")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_search_meets_its_budgets_and_names_its_objective():
    arch = _search("--latency", "25", "--device", "v100", "--flops", "70", *QUICK)
    assert arch["kind"] == "gaia/arch"
    assert arch["latency_ms"] <= 25 and arch["gflops"] <= 70
    assert arch["objective"] == {"name": "flops-proxy", "score": arch["gflops"], "measured": False}
    assert preset("ar50to101").contains(Arch.from_dict(arch))
    assert arch["search"]["population"] == 20
    top = _search("--flops", "50", "--space", "ar50", "--top", "4", *QUICK)
    assert top["kind"] == "gaia/arch-set" and len(top["archs"]) == 4
    assert all(a["gflops"] <= 50 for a in top["archs"])
    assert len({json.dumps([a["depth"], a["width"], a["scale"]]) for a in top["archs"]}) == 4


def test_pareto_gives_one_arch_per_budget():
    family = _search("--pareto", "16,20,30", "--device", "v100", *QUICK)
    budgets = [a["budget"]["latency_ms"] for a in family["archs"]]
    assert budgets == [16, 20, 30]
    assert all(a["latency_ms"] <= a["budget"]["latency_ms"] for a in family["archs"])
    assert family["archs"][0]["gflops"] < family["archs"][-1]["gflops"]


def test_same_seed_same_result():
    a = _search("--latency", "30", "--device", "v100", "--seed", "4", *QUICK)
    b = _search("--latency", "30", "--device", "v100", "--seed", "4", *QUICK)
    assert (a["depth"], a["width"], a["scale"]) == (b["depth"], b["width"], b["scale"])


def test_an_impossible_budget_is_a_clear_error():
    assert_bad_input(run_gaia("search", "--latency", "5", "--device", "v100"), "no arch of space 'ar50to101' meets the budget")
    assert_bad_input(run_gaia("search", "--latency", "20"), "--latency needs --device")
    assert_bad_input(run_gaia("search"), "give a budget")


def test_evolution_beats_random_sampling_at_equal_cost():
    """On an objective that is not the budget itself (a stand-in for a path filter's score: deep, wide at the
    top, small stem and scale), evolution finds better archs than as many uniformly drawn candidates.
    (Under the FLOPs proxy both end within 0.1% of the budget, which shows nothing.)"""
    space = preset("ar50to101")

    def objective(a: Arch) -> float:
        return 2.0 * sum(a.depth) + a.width[4] / 64 - a.scale / 80 + 3.0 * (a.width[0] == 32)

    for seed in range(4):
        budget = Budget(22.0, v100(), None, 81, space.detector)
        best = Evolution(space, budget, objective, Settings(population=20, generations=30, seed=seed)).run()[0][0]
        rng = random.Random(seed)
        random_best = -np.inf
        for _ in range(budget.evaluations):  # the same number of candidates, drawn uniformly
            arch = Arch(tuple(rng.choice(c) for c in space.depth), tuple(rng.choice(c) for c in space.width),
                        rng.choice(space.scale))
            if budget.meets(arch):
                random_best = max(random_best, objective(arch))
        assert best > random_best, (seed, best, random_best)


def test_no_duplicates_in_the_population():
    space = preset("tiny")
    budget = Budget(None, None, 100.0, 7, space.detector)
    evolution = Evolution(space, budget, lambda a: -sum(a.depth), Settings(population=30, generations=5))
    population = evolution.initial()
    assert len(population) == len(set(population)) == 30


@pytest.fixture
def fake_timer(monkeypatch):
    """Deterministic latency: each timed call "takes" 1 ms per GFLOP it computes (torch's FLOP counter).

    Real timings depend on the machine and its load; with this timer the tests check what is measured and
    what is done with the measurements, never how fast anything ran. gaia runs in this process (`gaia_here`)
    so that the timer can be swapped; torch's global seed, which bench-latency sets, is restored afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from gaia_cli.latency import build, measure

    calls = []

    def time_call(fn, device, warmup, runs):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        calls.append(runs)
        return [counter.get_total_flops() / 1e9] * runs

    monkeypatch.setattr(measure, "time_call", time_call)
    monkeypatch.setattr(build, "time_call", time_call)  # build.py imports it by name
    with torch.random.fork_rng():
        yield calls


def test_bench_latency_measures_on_the_cpu(tmp_path):
    # a real measurement: its format and method only (how fast it ran depends on the machine and its load)
    arch = json.dumps(preset("tiny").min_arch.as_dict())
    proc = run_gaia("bench-latency", "-", "--space", "tiny", "--device", "cpu", "--runs", "3", "--warmup", "1",
                    "--classes", "7", input=arch)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kind"] == "gaia/latency" and out["method"]["timer"] == "perf_counter"
    assert out["environment"]["threads"] == torch.get_num_threads() and out["environment"]["torch"] == torch.__version__
    result = out["results"][0]
    for part in ("detector", "backbone"):
        assert 0 < result[part]["p10"] <= result[part]["median"] <= result[part]["p90"] and result[part]["runs"] == 3


def test_bench_latency_times_the_detector_and_its_backbone_apart(fake_timer):
    arch = json.dumps(preset("tiny").min_arch.as_dict())
    proc = gaia_here("bench-latency", "-", "--space", "tiny", "--device", "cpu", "--runs", "3", "--warmup", "1",
                     "--classes", "7", input=arch)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert fake_timer == [3, 3] and result["detector"]["runs"] == result["backbone"]["runs"] == 3
    assert 0 < result["backbone"]["median"] < result["detector"]["median"]  # the backbone is part of the detector


def test_a_measured_profile_predicts_and_checks_and_steers_search(tmp_path, fake_timer):
    profile = tmp_path / "cpu.json"
    proc = gaia_here("bench-latency", "--build-profile", "--space", "tiny", "--device", "cpu", "--runs", "3",
                     "--warmup", "1", "--fit-archs", "4", "--classes", "7", "--name", "test-cpu", "-o", profile, "-q")
    assert proc.returncode == 0, proc.stderr
    loaded = load_profile(str(profile))
    assert loaded.method == "lut" and loaded.name == "test-cpu" and loaded.blocks and loaded.stems
    assert len(fake_timer) == len(loaded.stems) + len(loaded.blocks) + 2 * (len(loaded.fixed) + 4)  # all measured
    assert all(v > 0 for v in loaded.blocks.values())
    small, big = preset("tiny").min_arch, preset("tiny").max_arch
    assert loaded.raw(small) < loaded.raw(big)
    with pytest.raises(BadInput, match="outside the space"):
        loaded.predict(Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 800))
    check = gaia_here("bench-latency", "--check", profile, "--space", "tiny", "--sample", "2", "--device", "cpu",
                      "--runs", "3", "--warmup", "1", "--seed", "9", "-q")
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)["check"]
    assert report["archs"] == 2 and "max_error" in report
    assert report["mape"] < 0.05  # latency that follows FLOPs is what a block table and a linear fit predict well
    predicted = json.loads(gaia_here("bench-latency", "--predict", "--device", profile, "-",
                                     input=json.dumps(small.as_dict())).stdout)
    assert predicted["predictions"][0]["latency_ms"] == pytest.approx(loaded.predict(small))
    budget = loaded.predict(small) * 1.2  # the cheapest arch meets it
    arch = _search("--space", "tiny", "--latency", str(budget), "--device", profile, "--classes", "7", *QUICK)
    assert arch["latency_ms"] <= budget and arch["device"] == "test-cpu"


def test_search_by_the_supernets_measured_ap(tmp_path, toy):
    classes = ["circle", "square", "triangle", "ring", "pole", "plank"]
    weights = tmp_path / "supernet.h5"
    torch.manual_seed(0)
    save_detector(weights, Supernet(preset("tiny"), len(classes) + 1), classes)
    arch = _search("--space", "tiny", "--flops", "1", "--weights", weights, "--data", toy / "val.json",
                   "--recalibrate", "8", "--compute-device", "cpu", "--population", "3", "--generations", "1")
    assert arch["objective"]["name"] == "supernet-ap" and arch["objective"]["measured"] is True
    assert 0 <= arch["objective"]["score"] <= 100


def test_bad_arch_files(tmp_path, write_json):
    wrong = write_json("space.json", {"kind": "gaia/space", "schema_version": 1})
    assert_bad_input(run_gaia("bench-latency", "--predict", "--device", "v100", wrong), "is a gaia/space artifact, expected gaia/arch")
    assert_bad_input(run_gaia("bench-latency", "--predict", "--device", "v100"), "--predict needs archs")
    empty = write_json("set.json", {"kind": "gaia/arch-set", "schema_version": 1, "archs": []})
    assert_bad_input(gaia_here("bench-latency", "--predict", "--device", "v100", empty), "set.json", "holds no archs")


def test_bench_latency_takes_an_arch_set_and_a_rankings_candidates(tmp_path, write_json):
    """What `search --top` writes (a gaia/arch-set) and `rank` writes (a gaia/ranking) name archs to measure."""
    top = run_gaia("search", "--flops", "50", "--space", "ar50", "--top", "3", *QUICK, "-q")
    assert top.returncode == 0, top.stderr
    archs = json.loads(top.stdout)["archs"]
    assert json.loads(top.stdout)["kind"] == "gaia/arch-set" and len(archs) == 3
    proc = gaia_here("bench-latency", "--predict", "--device", "v100", "-", input=top.stdout)
    assert proc.returncode == 0, proc.stderr
    predictions = json.loads(proc.stdout)["predictions"]
    wanted = [Arch.from_dict(a) for a in archs]
    assert [Arch.from_dict(p["arch"]) for p in predictions] == wanted
    assert [p["latency_ms"] for p in predictions] == pytest.approx([v100().predict(a) for a in wanted])
    ranking = write_json("ranking.json", {"kind": "gaia/ranking", "schema_version": 1,
                                          "candidates": [{"arch": a.as_dict()} for a in wanted[:2]]})
    proc = gaia_here("bench-latency", "--predict", "--device", "v100", ranking)
    assert proc.returncode == 0, proc.stderr
    assert [Arch.from_dict(p["arch"]) for p in json.loads(proc.stdout)["predictions"]] == wanted[:2]
