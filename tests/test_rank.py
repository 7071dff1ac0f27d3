"""gaia rank (GAIA 3.2.1): the grouping and sampling rule, the keep fractions, Kendall tau, the two stages,
the chain into finetune, resume after SIGKILL, shards merged, and bad inputs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from scipy import stats

from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import save_detector
from gaia_cli.ranking.candidates import Candidate, DepthRanges, groups, keep_count, sample_in_groups
from gaia_cli.ranking.correlation import correlation
from gaia_cli.ranking.run import selection
from gaia_cli.space.arch import Arch, SearchSpace, preset

from conftest import assert_bad_input, gaia_here, run_gaia

CLASSES = ["circle", "square", "triangle", "ring", "pole", "plank"]
# a custom schedule of one epoch: the two stages, quickly (the fast schedule is 3 epochs)
QUICK = ["--schedule", "custom", "--epochs", "1", "--batch-size", "4", "--recalibrate", "8", "--warmup-iters", "0", "-q"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """8 train / 4 val toy images of 64 px, an untrained tiny supernet (and a second one), 6 candidates."""
    root = tmp_path_factory.mktemp("rank")
    proc = run_gaia("toy-data", root / "toy", "--images", 8, "--val-images", 4, "--size", 64, "--seed", 3, "-q")
    assert proc.returncode == 0, proc.stderr
    for name, seed in (("supernet.h5", 0), ("other.h5", 1)):
        torch.manual_seed(seed)
        save_detector(root / name, Supernet(preset("tiny"), len(CLASSES) + 1), CLASSES)
    archs = [Arch((1, 1, 1, 1), (8, 8, 16, 16, 32), 64), Arch((1, 1, 1, 1), (16, 16, 24, 32, 48), 64),
             Arch((2, 2, 3, 2), (8, 8, 16, 16, 32), 64), Arch((1, 2, 1, 2), (8, 16, 16, 32, 32), 64),
             Arch((2, 1, 2, 1), (16, 8, 24, 16, 48), 64), Arch((1, 1, 1, 1), (8, 16, 16, 16, 32), 96)]
    (root / "candidates.jsonl").write_text("".join(json.dumps({"kind": "gaia/arch", "schema_version": 1,
                                                               **a.as_dict()}) + "\n" for a in archs))
    return root


def _args(world, *more):
    return ["rank", "--weights", world / "supernet.h5", "--data", world / "toy" / "train.json",
            "--val", world / "toy" / "val.json", "--candidates", world / "candidates.jsonl", *QUICK, *more]


def _rows(ranking: dict) -> list[dict]:
    return ranking["candidates"]


@pytest.fixture(scope="module")
def reference(world):
    """One uninterrupted ranking of the 6 candidates."""
    out = world / "whole.json"
    proc = gaia_here(*_args(world, "-o", out))
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


# ------------------------------------------------------------------------------------------------ the rule


def test_sampling_gives_k_archs_in_every_scale_and_depth_group_within_the_budget():
    space = preset("tiny")
    ranges = DepthRanges.of(space)  # totals 4-9 in 5 ranges: of width 2, so 3 of them
    archs = sample_in_groups(space, lambda a: True, 3, seed=0)
    by_group = groups([Candidate(i, a, 0.0, depths=ranges.of_total(sum(a.depth))) for i, a in enumerate(archs)])
    assert set(by_group) == {(s, t) for s in space.scale for t in ((4, 5), (6, 7), (8, 9))}
    assert all(len(m) == 3 and len({c.arch for c in m}) == 3 for m in by_group.values())
    assert archs == sample_in_groups(space, lambda a: True, 3, seed=0)  # the same seed, the same archs
    assert archs != sample_in_groups(space, lambda a: True, 3, seed=1)
    fits = lambda a: a.scale == 64 and a.width[0] == 8  # noqa: E731  (a budget that only part of the space meets)
    within = sample_in_groups(space, fits, 5, seed=0)
    assert within and all(fits(a) for a in within)
    # a group with fewer archs than K gives all it has: here one depth tuple of each total, 1 width
    small = SearchSpace("s", [[1], [1], [1, 2], [1]], [[8], [8], [8], [8], [8]], [64])
    assert sorted(sum(a.depth) for a in sample_in_groups(small, lambda a: True, 5, seed=0)) == [4, 5]
    # as many ranges as totals (or more): one group per total depth, as GAIA's text reads
    exact = DepthRanges.of(space, 100)
    archs = sample_in_groups(space, lambda a: True, 2, seed=0, ranges=exact)
    totals = {sum(d) for d in itertools.product(*space.depth)}
    assert {(a.scale, sum(a.depth)) for a in archs} == {(s, t) for s in space.scale for t in totals}
    assert len(archs) == 2 * len(space.scale) * len(totals)


def test_total_depth_is_binned_as_the_authors_rules_do():
    # GAIA's sampling rules bin ar50to101's total depth into 11-16, 18-23, 25-30, 32-37 and 39-43 blocks;
    # 5 equal ranges over the space's span (10-43) are within a block of each
    ranges = DepthRanges.of(preset("ar50to101"))
    assert sorted({ranges.of_total(t) for t in range(10, 44)}) == [(10, 16), (17, 23), (24, 30), (31, 37), (38, 43)]
    assert DepthRanges.of(preset("ar50to101"), 1).of_total(25) == (10, 43)  # one range: scale alone groups
    # stage 2 stays small on the paper's space: an ABPS supernet's candidates under a budget in a few groups
    from gaia_cli.ranking.run import RankRequest, Supernet as Net, candidates_of, trained_spaces

    space = preset("ar50to101")
    subs = trained_spaces(space, [{"space": n} for n in ("ar101", "ar77", "ar50")], "test")
    net = Net(space, 81, None, space.detector, subs)
    cands, about = candidates_of(RankRequest(flops=1e9, per_group=5), net)
    binned = groups(cands)
    exact, _ = candidates_of(RankRequest(flops=1e9, per_group=5, depth_ranges=100), net)
    assert about["depth_ranges"] == {"count": 5, "width": 7, "from": 10}
    assert len(binned) <= 5 * len(space.scale) < len(groups(exact))
    assert all(len(m) <= 5 * len(subs) for m in binned.values())  # K per group in each sub-space


def test_candidates_are_drawn_only_in_the_sub_spaces_the_supernet_trained():
    # an ABPS supernet over ar50to101 trained ar101, ar77 and ar50 (GAIA 4.2.2): rank draws in each of them,
    # never in the union's untrained corners; a one-phase supernet draws in its whole space
    from gaia_cli.ranking.run import RankRequest, Supernet as Net, candidates_of, trained_spaces

    space = preset("ar50to101")
    phases = [{"space": name} for name in ("ar101", "ar77", "ar50")]
    subs = trained_spaces(space, phases, "test")
    assert [s.name for s in subs] == ["ar101", "ar77", "ar50"]
    assert trained_spaces(space, [{"space": "ar50to101"}], "test") == []
    net = Net(space, 81, None, space.detector, subs)
    cands, about = candidates_of(RankRequest(flops=1e9, per_group=2), net)
    assert cands and about["within"] == ["ar101", "ar77", "ar50"]
    assert all(any(s.contains(c.arch) for s in subs) for c in cands)
    whole, _ = candidates_of(RankRequest(flops=1e9, per_group=2), Net(space, 81, None, space.detector, []))
    assert sum(not any(s.contains(c.arch) for s in subs) for c in whole) > len(whole) // 2  # what it drew before


def test_keep_fractions_and_the_best_of_each_group():
    assert [keep_count(n, 0.5) for n in (0, 1, 2, 3, 4, 5)] == [0, 1, 1, 2, 2, 3]
    assert keep_count(10, 0.1) == 1 and keep_count(10, 0.01) == 1 and keep_count(3, 1.0) == 3
    a = lambda d, s: Arch(d, (8, 8, 16, 16, 32), s)  # noqa: E731
    cands = [Candidate(0, a((1, 1, 1, 1), 64), 0), Candidate(1, a((1, 1, 1, 1), 96), 0),
             Candidate(2, a((2, 1, 1, 1), 64), 0), Candidate(3, a((1, 1, 1, 1), 64), 0),
             Candidate(4, a((1, 1, 2, 1), 64), 0)]  # groups (64, 4): 0, 3; (96, 4): 1; (64, 5): 2, 4
    ap = {0: 5.0, 1: 9.0, 2: 1.0, 3: 7.0, 4: 1.0}
    results = {("direct", i): {"AP": v, "loss": 10 - v} for i, v in ap.items()}
    bests, ranked, kept = selection(cands, results, "AP", 0.5)
    # a tie: the first listed
    assert {g: c.id for g, c in bests.items()} == {(64, (4, 4)): 3, (96, (4, 4)): 1, (64, (5, 5)): 2}
    assert [c.id for c in ranked] == [1, 3, 2] and [c.id for c in kept] == [1, 3]
    assert [c.id for c in selection(cands, results, "AP", 0.2)[2]] == [1]
    assert [c.id for c in selection(cands, results, "loss", 1.0)[2]] == [1, 3, 2]  # lower loss is better


def test_kendall_tau_b_and_spearman_are_scipys():
    a = [0.5, 3.1, 2.0, 2.0, 7.5, 1.2, 4.4, 4.4]
    b = [1.0, 2.0, 3.5, 2.5, 9.0, 0.5, 4.0, 6.0]
    got = correlation(a, b)
    tau, rho = stats.kendalltau(a, b, variant="b"), stats.spearmanr(a, b)
    assert got["kendall_tau_b"] == pytest.approx(tau.statistic) and got["kendall_p"] == pytest.approx(tau.pvalue)
    assert got["spearman_rho"] == pytest.approx(rho.statistic) and got["spearman_p"] == pytest.approx(rho.pvalue)
    assert correlation([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])["kendall_tau_b"] == pytest.approx(0.8)  # 9 - 1 of 10 pairs
    assert correlation([1, 2, 3], [3, 3, 3])["kendall_tau_b"] is None  # undefined, not NaN in JSON


# ------------------------------------------------------------------------------------------------ the runs


def test_two_stages_the_artifact_and_its_best(world, reference):
    rows = _rows(reference)
    assert reference["kind"] == "gaia/ranking" and reference["complete"] is True
    assert [g["candidates"] for g in reference["groups"]] == [[0, 1], [3, 4], [2], [5]]  # (64, 4), (64, 6), (64, 9), (96, 4)
    assert all(r["direct"] is not None and set(r["direct"]) >= {"AP", "AP50", "loss"} for r in rows)
    kept = reference["kept"]
    assert len(kept) == 2  # the top 50% of 4 group bests
    for r in rows:
        assert (r["finetuned"] is not None) == (r["id"] in kept) and r["reference"] is None
        assert r["stage"] == ("finetuned" if r["id"] in kept else "direct") and r["why"]
    best = reference["best"]
    assert best["candidate"] in kept and {"depth", "width", "scale"} <= set(best)
    finetuned = {r["id"]: r["finetuned"]["AP"] for r in rows if r["finetuned"]}
    assert best["score"] == max(finetuned.values())
    assert not (world / "whole.json.journal.jsonl").exists()  # finished: the ranking holds it all
    # every command that takes an arch takes a ranking's best
    flops = gaia_here("space", "flops", world / "whole.json")
    assert flops.returncode == 0 and json.loads(flops.stdout)["arch"] == {k: best[k] for k in ("depth", "width", "scale")}


def test_the_ranking_chains_into_finetune(world):
    """gaia rank ... | gaia finetune --arch - ...: the winner fine-tuned (stdin given as the pipe would)."""
    rank = gaia_here(*_args(world, "--keep", "0.25"))
    assert rank.returncode == 0, rank.stderr
    out = world / "model.h5"
    finetune = gaia_here("finetune", "--weights", world / "supernet.h5", "--arch", "-", "--data",
                         world / "toy" / "train.json", "--schedule", "custom", "--epochs", "1", "--batch-size", "4",
                         "--recalibrate", "8", "--workers", "0", "-q", "-o", out, input=rank.stdout)
    assert finetune.returncode == 0, finetune.stderr
    from gaia_cli.artifacts import H5Artifact

    with H5Artifact(out, "gaia/weights") as art:
        assert art.meta("role") == "model"
        assert art.meta("arch") == {k: json.loads(rank.stdout)["best"][k] for k in ("depth", "width", "scale")}


def test_stage_2_fine_tunes_with_the_recipe_given(world, tmp_path, monkeypatch):
    # rank --recipe gaia fine-tunes as the supernet trained (head losses x5, IoU-balanced), as finetune would
    import gaia_cli.tasks.finetune as finetune
    from gaia_cli.engine.runcontrol import defaults
    from gaia_cli.ranking.run import RankRequest, run
    from gaia_cli.ranking.settings import Settings

    seen = []
    real = finetune.run
    monkeypatch.setattr(finetune, "run", lambda request: seen.append(request) or real(request))
    settings = Settings(weights=str(world / "supernet.h5"), data=str(world / "toy" / "train.json"),
                        val=str(world / "toy" / "val.json"), schedule="custom", epochs=1, batch_size=4, recalibrate=8,
                        warmup_iters=0, recipe="gaia", run=dataclasses.replace(defaults("rank"), device="cpu"))
    ranking = run(RankRequest(settings=settings, candidates=str(world / "candidates.jsonl"), keep=0.25,
                              output=tmp_path / "r.json"))
    assert seen and all(r.recipe == "gaia" for r in seen)
    assert ranking["settings"]["recipe"] == "gaia"
    assert_bad_input(gaia_here(*_args(world, "--recipe", "nope")), "--recipe must be one of default, gaia")


def test_a_run_killed_with_sigkill_resumes_to_the_same_ranking(world, reference):
    out = world / "killed.json"
    journal = world / "killed.json.journal.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gaia_cli", *map(str, _args(world, "-o", out))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # killed once the first candidate is in the journal
        if journal.is_file() and journal.read_text().count("\n") >= 2:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and journal.is_file(), "the run ended before it could be killed"
    with open(journal, "a") as fh:  # and a record cut short by the kill, as a write stopped midway leaves it
        fh.write('{"stage":"direct","id":5,"arch":{"dep')
    assert_bad_input(gaia_here(*_args(world, "-o", out)), "interrupted ranking", "--resume")
    resumed = gaia_here(*_args(world, "-o", out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(out.read_text())
    assert _rows(again) == _rows(reference) and again["best"] == reference["best"]


def test_two_shards_merged_equal_one_unsharded_run(world, reference):
    """Two shards of stage 1, then --merge goes on with stage 2, here on --devices cpu,cpu: one worker process
    per device (spawned), each taking the next candidate. The ranking equals the unsharded one-process run."""
    parts = []
    for i in (0, 1):
        part = world / f"part{i}.json"
        proc = gaia_here(*_args(world, "--shard", f"{i}/2", "-o", part))
        assert proc.returncode == 0, proc.stderr
        partial = json.loads(part.read_text())
        assert partial["complete"] is False and partial["best"] is None
        assert partial["waiting"]["stage"] == "direct"
        assert [r["id"] for r in partial["candidates"] if r["direct"] is not None] == [i, i + 2, i + 4]
        parts.append(part)
    assert_bad_input(gaia_here("finetune", "--weights", world / "supernet.h5", "--arch", parts[0], "--data",
                               world / "toy" / "train.json", "-o", world / "m.h5"), "no best arch", "partial")
    merged = world / "merged.json"
    assert_bad_input(gaia_here(*_args(world, "--merge", *parts, "--keep", "1", "-o", merged)),
                     "journal of another ranking", "the settings")  # --keep differs from the parts'
    args = [a for a in _args(world, "--merge", *parts, "--devices", "cpu,cpu", "-o", merged) if a != "-q"]
    proc = run_gaia(*args, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "finetuned: 2 candidate(s) on 2 workers (cpu, cpu)" in proc.stderr
    result = json.loads(merged.read_text())
    assert _rows(result) == _rows(reference) and result["best"] == reference["best"]


def test_a_budget_samples_every_group_of_the_space(world, write_json):
    """--latency on a device profile: GAIA's rule over a part of the supernet's space (--space); each candidate
    carries its GMACs and predicted latency."""
    part = write_json("part.json", {"kind": "gaia/space", "schema_version": 1, **{
        **preset("tiny").to_payload(), "name": "part", "depth": [[1], [1], [1, 2], [1]],
        "width": [[8], [8, 16], [16], [16], [32]], "scale": [64], "anchors": {}}})
    proc = gaia_here("rank", "--weights", world / "supernet.h5", "--data", world / "toy" / "train.json", "--val",
                     world / "toy" / "val.json", "--space", part, "--latency", "100", "--device", "v100",
                     "--per-group", "2", *QUICK)
    assert proc.returncode == 0, proc.stderr
    ranking = json.loads(proc.stdout)
    assert [(g["scale"], g["depth"], len(g["candidates"])) for g in ranking["groups"]] == [(64, [4, 4], 2),
                                                                                         (64, [5, 5], 2)]
    assert all(c["latency_ms"] > 0 and c["gflops"] > 0 for c in ranking["candidates"])
    assert len(ranking["kept"]) == 1 and ranking["best"]["candidate"] == ranking["kept"][0]


def test_the_fast_schedule_against_1x_gives_the_study_and_the_regret(world, reference, tmp_path):
    # GAIA Fig. 2a: direct evaluation and fast fine-tuning each against the 1x reference, on every candidate
    three = tmp_path / "three.jsonl"
    three.write_text("".join((world / "candidates.jsonl").read_text().splitlines(keepends=True)[:3]))
    out = tmp_path / "study.json"
    proc = gaia_here("rank", "--weights", world / "supernet.h5", "--data", world / "toy" / "train.json", "--val",
                     world / "toy" / "val.json", "--candidates", three, "--schedule", "fast", "--reference", "1x",
                     "--metric", "loss", "--batch-size", "4", "--recalibrate", "8", "--warmup-iters", "0", "-q",
                     "-o", out)
    assert proc.returncode == 0, proc.stderr
    ranking = json.loads(out.read_text())
    rows = _rows(ranking)
    assert all(r["direct"] and r["finetuned"] and r["reference"] for r in rows)  # every candidate, both schedules
    assert all(r["finetuned"]["schedule"] == "fast" and r["reference"]["schedule"] == "1x" for r in rows)
    assert rows[0]["reference"]["steps"] > rows[0]["finetuned"]["steps"]
    reference = [r["reference"]["loss"] for r in rows]
    for stage in ("direct", "finetuned"):
        tau = stats.kendalltau([r[stage]["loss"] for r in rows], reference, variant="b").statistic
        assert ranking["correlation"][f"{stage}_vs_reference"]["kendall_tau_b"] == pytest.approx(tau)
    regret = ranking["regret"]
    assert regret["best"] == pytest.approx(min(reference))  # loss: lower is better
    winner = next(r for r in rows if r["id"] == regret["winner"])
    assert regret["regret"] == pytest.approx(abs(winner["reference"]["loss"] - min(reference)))
    # --compare of two stages of two rankings: scipy's tau over the candidates they share
    proc = gaia_here("rank", "--compare", f"{out}:reference", world / "whole.json:direct", "--metric", "loss")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    whole = _rows(json.loads((world / "whole.json").read_text()))[:3]
    assert got["n"] == 3 and got["a"]["stage"] == "reference" and got["b"]["stage"] == "direct"
    assert got["kendall_tau_b"] == pytest.approx(stats.kendalltau(reference, [r["direct"]["loss"] for r in whole]).statistic)


@pytest.fixture(scope="module")
def trained(world):
    """The tiny supernet trained 80 steps on world's 8 training images: its paths detect them, each as well
    as its share of the weights allows (ranked on those images, the paths' AP is above 0 and differs)."""
    out = world / "trained.h5"
    proc = gaia_here("train-supernet", "--data", world / "toy" / "train.json", "--space", "tiny", "--epochs", 40,
                     "--batch-size", 4, "--lr-per-image", 0.005, "--workers", 0, "--device", "cpu", "-q", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_trained_supernet_is_ranked_by_what_eval_and_finetune_measure(world, trained, tmp_path):
    """On a supernet that detects something, each stage's score is what the commands a user would run give:
    stage 1 is `gaia eval` of the path (BN recalibrated on the same images), stage 2 `gaia finetune` then
    `gaia eval`; the winner is the best fine-tuned."""
    train = world / "toy" / "train.json"
    three = tmp_path / "three.jsonl"
    three.write_text("".join((world / "candidates.jsonl").read_text().splitlines(keepends=True)[:3]))
    out = tmp_path / "ranking.json"
    proc = gaia_here("rank", "--weights", trained, "--data", train, "--val", train, "--candidates", three,
                     "--keep", 1, *QUICK, "-o", out)
    assert proc.returncode == 0, proc.stderr
    ranking = json.loads(out.read_text())
    rows = _rows(ranking)
    direct = [r["direct"]["AP"] for r in rows]
    assert max(direct) > 0 and len({round(ap, 6) for ap in direct}) == 3, direct  # trained, and the paths differ
    for r in rows:
        proc = gaia_here("eval", "--weights", trained, "--arch", "-", "--data", train, "--recalibrate", 8,
                         "--batch-size", 4, "--device", "cpu", "-q", input=json.dumps(r["arch"]))
        assert proc.returncode == 0, proc.stderr
        assert r["direct"]["AP"] == pytest.approx(json.loads(proc.stdout)["AP"], abs=1e-9), r["arch"]
    finetuned = [r for r in rows if r["finetuned"]]
    assert len(finetuned) == 2  # the two groups' bests, --keep 1
    best = max(finetuned, key=lambda r: r["finetuned"]["AP"])
    assert ranking["best"]["candidate"] == best["id"]
    model = tmp_path / "best.h5"
    proc = gaia_here("finetune", "--weights", trained, "--arch", out, "--data", train, "--schedule", "custom",
                     "--epochs", 1, "--batch-size", 4, "--recalibrate", 8, "--warmup-iters", 0, "--workers", 0,
                     "--device", "cpu", "-q", "-o", model)
    assert proc.returncode == 0, proc.stderr
    proc = gaia_here("eval", "--weights", model, "--data", train, "--batch-size", 4, "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    assert best["finetuned"]["AP"] == pytest.approx(json.loads(proc.stdout)["AP"], abs=1e-9)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_are_one_line_and_exit_2(world, reference, write_json):
    base = ["rank", "--weights", world / "supernet.h5", "--data", world / "toy" / "train.json",
            "--val", world / "toy" / "val.json", "-q"]
    empty = world / "empty.jsonl"
    empty.write_text("")
    assert_bad_input(gaia_here(*base, "--candidates", empty), "empty", "no candidates")
    no_archs = write_json("set.json", {"kind": "gaia/arch-set", "schema_version": 1, "archs": []})
    assert_bad_input(gaia_here(*base, "--candidates", no_archs), "no candidates")
    outside = write_json("outside.json", {"depth": [1, 1, 1, 1], "width": [8, 8, 16, 16, 32], "scale": 80})
    assert_bad_input(gaia_here(*base, "--candidates", outside), "scale=80 is not a choice of space 'tiny'")
    assert_bad_input(gaia_here(*base, "--flops", "0.0001"), "no arch of space 'tiny' meets the budget")
    assert_bad_input(gaia_here(*base, "--candidates", world / "candidates.jsonl", "--flops", "0.0001"),
                     "none of the 6 candidates meets the budget")
    assert_bad_input(gaia_here(*base), "give the candidates")
    other = ["rank", "--weights", world / "other.h5", *base[3:]]
    assert_bad_input(gaia_here(*other, "--candidates", world / "whole.json"), "a ranking of another supernet")
    assert_bad_input(gaia_here("eval", "--weights", world / "other.h5", "--arch", world / "whole.json", "--data",
                               world / "toy" / "val.json"), "a ranking of another supernet")
    part = world / "other-part.json"
    assert gaia_here(*other, "--candidates", world / "candidates.jsonl", *QUICK, "--shard", "0/3",
                     "-o", part).returncode == 0
    assert_bad_input(gaia_here(*_args(world, "--merge", part, "-o", world / "m2.json")),
                     "journal of another ranking", "the supernet")
    assert_bad_input(gaia_here(*base, "--candidates", world / "candidates.jsonl", "--shard", "2/2", "-o",
                               world / "s.json"), "--shard '2/2'")
    assert_bad_input(gaia_here(*base, "--candidates", world / "candidates.jsonl", "--shard", "0/2"), "--shard needs -o")
    assert_bad_input(gaia_here("rank", "--compare", world / "whole.json"), "--compare takes two rankings")
