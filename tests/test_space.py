"""Search spaces, archs, sampling rules, and FLOPs/parameter counts checked against torch's own counters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gaia_cli.errors import BadInput
from gaia_cli.nn.detector import build_static
from gaia_cli.space.arch import Arch, SearchSpace, group_by_scale_and_depth, preset
from gaia_cli.space.flops import detector_cost, detector_gflops, summary
from gaia_cli.space.sampling import GAIA_CYCLE, RULES, PathSampler, sample

from conftest import REPO, assert_bad_input, run_gaia

TABLE = json.loads((REPO / "gaia_cli" / "resources" / "gaia_table2_v100.json").read_text())


def _row_arch(row) -> Arch:
    return Arch(tuple(row["depth"]), tuple(row["width"]), row["scale"])


def test_anchor_spaces_follow_table1():
    ar50, ar77, ar101 = preset("ar50"), preset("ar77"), preset("ar101")
    assert ar50.depth == [[2, 3, 4], [2, 4, 6], [4, 6, 8], [2, 3, 4]]
    assert ar77.depth[2] == [11, 15, 19] and ar101.depth[2] == [17, 23, 29]
    assert ar50.width == [[32, 48, 64], [48, 64, 80], [96, 128, 160], [192, 256, 320], [384, 512, 640]]
    assert ar50.scale == [400, 480, 560, 640, 720] and ar101.scale[-1] == 880
    assert ar50.anchors["AR50"] == Arch((3, 4, 6, 3), (64, 64, 128, 256, 512), 560)
    union = preset("ar50to101")
    assert union.min_arch.depth == (2, 2, 4, 2) and union.max_arch.depth == (4, 6, 29, 4)
    assert all(union.covers(p) for p in (ar50, ar77, ar101))
    assert set(union.anchors) == {"AR50", "AR77", "AR101"}


def test_every_table2_model_lies_in_ar50to101():
    union = preset("ar50to101")
    for row in TABLE["rows"]:
        assert union.contains(_row_arch(row)), row["name"]


def test_arch_validation_names_the_coordinate():
    space = preset("ar77")
    with pytest.raises(BadInput, match=r"depth\[2\]=21 is not a choice of space 'ar77'"):
        space.check(Arch((3, 4, 21, 3), (64, 64, 128, 256, 512), 640))
    with pytest.raises(BadInput, match=r"width\[0\]=40 \(stem\)"):
        space.check(Arch((3, 4, 15, 3), (40, 64, 128, 256, 512), 640))
    with pytest.raises(BadInput, match="scale=400"):
        space.check(Arch((3, 4, 15, 3), (64, 64, 128, 256, 512), 400))
    with pytest.raises(BadInput, match="'depth' must be 4"):
        Arch.from_dict({"depth": [3, 4, 6], "width": [64] * 5, "scale": 800})


def test_space_file_round_trip_and_edits(tmp_path):
    proc = run_gaia("space", "show", "ar50", "-o", tmp_path / "space.json")
    assert proc.returncode == 0
    doc = json.loads((tmp_path / "space.json").read_text())
    doc["depth"][2] = [4, 6]  # a user prunes a choice
    (tmp_path / "pruned.json").write_text(json.dumps(doc))
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"depth": [3, 4, 8, 3], "width": [64, 64, 128, 256, 512], "scale": 560}))
    assert run_gaia("space", "flops", arch, "--space", tmp_path / "space.json").returncode == 0
    assert_bad_input(run_gaia("space", "flops", arch, "--space", tmp_path / "pruned.json"),
                     "depth[2]=8 is not a choice")
    doc["kind"] = "gaia/arch"
    (tmp_path / "wrong.json").write_text(json.dumps(doc))
    assert_bad_input(run_gaia("space", "show", tmp_path / "wrong.json"), "is a gaia/arch artifact, expected gaia/space")
    assert_bad_input(run_gaia("space", "show", "ar42"), "not a space preset")


def test_sample_cli_writes_arch_lines_that_chain_into_flops():
    proc = run_gaia("space", "sample", "tiny", "-n", "5", "--rule", "gaia", "--seed", "2")
    lines = proc.stdout.splitlines()
    assert len(lines) == 5 and all(json.loads(ln)["kind"] == "gaia/arch" for ln in lines)
    flops = run_gaia("space", "flops", "-", "--space", "tiny", input=lines[1])
    assert flops.returncode == 0, flops.stderr
    assert json.loads(flops.stdout)["arch"] == {k: json.loads(lines[1])[k] for k in ("depth", "width", "scale")}
    every = run_gaia("space", "sample", "tiny", "--all")
    assert len(every.stdout.splitlines()) == preset("tiny").size()


def test_flops_of_a_search_pick_use_the_space_the_record_names_as_search_counts_it():
    """`space flops` on an arch that `search` wrote gives search's own figure: the record names its space, whose
    detector (64-channel FPN, 256-wide head, 100 proposals for `small`) differs from R50's. A hand-written arch
    gets R50's detector, a non-preset name is said on stderr, and --space overrides the record."""
    found = run_gaia("search", "--space", "small", "--flops", "0.3", "--population", "10", "--generations", "2")
    assert found.returncode == 0, found.stderr
    pick = json.loads(found.stdout)
    named = run_gaia("space", "flops", "-", input=found.stdout)
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["detector"]["gflops"] == pytest.approx(pick["gflops"], rel=1e-6)
    assert pick["gflops"] <= 0.3
    assert "detector settings of space small" in named.stderr
    bare = {k: pick[k] for k in ("depth", "width", "scale")}
    r50 = json.loads(run_gaia("space", "flops", "-", input=json.dumps(bare)).stdout)["detector"]["gflops"]
    assert r50 == pytest.approx(summary(Arch.from_dict(bare, "arch"), 81)["detector"]["gflops"]) and r50 > 10
    other = run_gaia("space", "flops", "-", input=json.dumps({**bare, "space": "mine"}))
    assert json.loads(other.stdout)["detector"]["gflops"] == pytest.approx(r50) and "'mine', not a preset" in other.stderr
    forced = run_gaia("space", "flops", "-", "--space", "small", input=json.dumps({**bare, "space": "mine"}))
    assert json.loads(forced.stdout)["detector"]["gflops"] == pytest.approx(pick["gflops"], rel=1e-6)
    wrong = run_gaia("space", "flops", "-", input=json.dumps({**bare, "space": "tiny"}))
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1  # the arch is not of the space it names


def test_uniform_sampling_covers_every_choice():
    space = preset("ar50to101")
    rng = np.random.default_rng(0)
    archs = [sample(space, "uniform", rng) for _ in range(3000)]
    for i, choices in enumerate(space.depth):
        assert {a.depth[i] for a in archs} == set(choices)
    for j, choices in enumerate(space.width):
        assert {a.width[j] for a in archs} == set(choices)
    assert {a.scale for a in archs} == set(space.scale)
    assert all(space.contains(a) for a in archs)


def test_rules_do_what_they_say():
    space = preset("ar50")
    rng = np.random.default_rng(1)
    assert sample(space, "max", rng) == space.max_arch and sample(space, "min", rng) == space.min_arch
    assert sample(space, "anchor", rng) == space.anchors["AR50"]
    for _ in range(20):
        assert sample(space, "max-depth", rng).depth == space.max_arch.depth
        assert sample(space, "min-width", rng).width == space.min_arch.width
        assert sample(space, "max-scale", rng).scale == space.scale[-1]
    for rule in RULES:
        assert space.contains(sample(space, rule, rng))
    cycle = PathSampler(space, "gaia-cycle", seed=0)
    drawn = [cycle.next() for _ in range(len(GAIA_CYCLE))]
    assert drawn[0] == space.max_arch and drawn[2] == space.min_arch and drawn[4] == space.anchors["AR50"]


def test_gaia_draws_one_prescribed_rule_at_random_each_step():
    """GAIA 4.1: "in each iteration, we randomly pick an available model that obeys one of the prescribed rules"."""
    from collections import Counter

    from gaia_cli.space.sampling import PRESCRIBED

    sampler = PathSampler(preset("ar50"), "gaia", seed=3)
    rules = [sampler.next_rule() for _ in range(1800)]
    counts = Counter(rules)
    assert set(counts) == set(PRESCRIBED) and "uniform" not in counts  # every path obeys a prescribed rule
    assert all(150 <= c <= 250 for c in counts.values())  # each about 1/9 of the steps
    assert rules[:9] != list(PRESCRIBED)  # not in turn
    anchorless = PathSampler(preset("tiny").__class__("hand", [[1, 2]] * 4, [[8, 16]] * 5, [64, 96]), "gaia", seed=0)
    assert "anchor" not in {anchorless.next_rule() for _ in range(200)}


def test_sampler_state_resumes_the_same_sequence():
    a = PathSampler(preset("tiny"), "gaia", seed=7)
    for _ in range(5):
        a.next()
    state = json.loads(json.dumps(a.state()))  # plain JSON, as a checkpoint keeps it
    b = PathSampler(preset("tiny"), "gaia", seed=999)
    b.load_state(state)
    assert [a.next() for _ in range(20)] == [b.next() for _ in range(20)]


def test_enumeration_and_grouping():
    space = preset("tiny")
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == space.size()
    groups = group_by_scale_and_depth(archs)
    assert sum(len(v) for v in groups.values()) == len(archs)
    assert all(a.scale == s and sum(a.depth) == d for (s, d), v in groups.items() for a in v)


def _measured_macs(model, arch: Arch, proposals: int) -> dict[str, int]:
    """MACs of each detector part by torch's flop counter (which counts 2 FLOPs per MAC)."""
    model.eval()
    parts = {}
    x = torch.rand(1, 3, arch.scale, arch.scale)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            c = model.backbone.body(x)
        parts["backbone"] = counter.get_total_flops() // 2
        with FlopCounterMode(display=False) as counter:
            features = model.backbone.fpn(c)
        parts["fpn"] = counter.get_total_flops() // 2
        with FlopCounterMode(display=False) as counter:
            model.rpn.head(list(features.values()))
        parts["rpn"] = counter.get_total_flops() // 2
        pooled = torch.rand(proposals, model.backbone.out_channels, 7, 7)
        with FlopCounterMode(display=False) as counter:
            model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
        parts["roi_heads"] = counter.get_total_flops() // 2
    return parts


@pytest.mark.parametrize("seed", range(6))
def test_flops_equal_torch_flop_counter_on_the_static_model(seed):
    space = preset("tiny")
    arch = sample(space, "uniform", np.random.default_rng(seed))
    model = build_static(arch, 7, space.detector)
    analytic = detector_cost(arch, 7, space.detector)
    measured = _measured_macs(model, arch, space.detector["proposals"])
    assert {k: v.macs for k, v in analytic.items()} == measured
    assert sum(v.params for v in analytic.values()) == sum(p.numel() for p in model.parameters())


def test_anchor_ratios_set_by_a_space_reach_the_rpn_and_the_counts():
    payload = {**preset("tiny").to_payload(), "detector": {**preset("tiny").detector,
                                                           "anchor_ratios": [0.25, 0.5, 1.0, 2.0, 4.0]}}
    space = SearchSpace.from_payload(payload)
    arch = space.max_arch
    model = build_static(arch, 7, space.detector)
    assert model.rpn.head.cls_logits.out_channels == 5
    analytic = detector_cost(arch, 7, space.detector)
    assert {k: v.macs for k, v in analytic.items()} == _measured_macs(model, arch, space.detector["proposals"])
    assert sum(v.params for v in analytic.values()) == sum(p.numel() for p in model.parameters())
    assert detector_gflops(arch, 7, space.detector) == pytest.approx(sum(v.macs for v in analytic.values()) / 1e9)
    with pytest.raises(BadInput, match="anchor_ratios"):
        SearchSpace.from_payload({**payload, "detector": {"anchor_ratios": [2.0, 1.0]}})


def test_flops_and_params_of_resnet50_fpn():
    arch = Arch((3, 4, 6, 3), (64, 64, 128, 256, 512), 224)
    model = build_static(arch, 91)
    analytic = detector_cost(arch, 91)
    assert {k: v.macs for k, v in analytic.items()} == _measured_macs(model, arch, 1000)
    params = sum(v.params for v in analytic.values())
    # torchvision's fasterrcnn_resnet50_fpn (91 classes) has 41,755,286 parameters with frozen BN; ours trains
    # BN, which adds a weight and a bias for each of ResNet-50's 26,560 BN channels
    assert params == sum(p.numel() for p in model.parameters()) == 41_755_286 + 2 * 26_560
    assert round(analytic["backbone"].macs / 1e9, 2) == 4.09  # ResNet-50's well-known 4.1 GMACs at 224


def test_flops_close_to_gaia_table2():
    """Our counts differ from GAIA's by their counter's unstated details (docs/commands.md); never by much."""
    ratios = [summary(_row_arch(r))["detector"]["gflops"] / r["gflops"] for r in TABLE["rows"]]
    assert all(0.85 < r < 1.15 for r in ratios), ratios


def test_bad_space_payload():
    with pytest.raises(BadInput, match="sorted lists"):
        SearchSpace.from_payload({"depth": [[3, 2], [1], [1], [1]], "width": [[8]] * 5, "scale": [64]})
    with pytest.raises(BadInput, match="anchor_sizes"):
        SearchSpace.from_payload({"depth": [[1]] * 4, "width": [[8]] * 5, "scale": [64],
                                  "detector": {"anchor_sizes": [8, 16]}})
