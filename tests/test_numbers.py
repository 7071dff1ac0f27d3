"""Every number a user gives is checked for range and finiteness in one place (gaia_cli.checks), exit 2.

The table of cases is drawn from the CLI itself: every numeric option of every command, each given nan and
inf (a float) and a value just outside its range, must be refused in one line `--option must be ... (got X)`,
with nothing on stdout and nothing written, before any work (the inputs named here do not even exist).
"""

from __future__ import annotations

import functools
import math
import re

import pytest

from conftest import assert_bad_input, gaia_here
from gaia_cli import checks
from gaia_cli.errors import BadInput


@functools.lru_cache(maxsize=1)
def _gaia():
    """The `gaia` click command as main() builds it, numeric checks included."""
    import typer

    from gaia_cli.cli.app import app

    return checks.guard(typer.main.get_command(app))


def _options():
    return checks.numeric_options(_gaia())


def _command(path: str):
    cmd = _gaia()
    for name in path.split():
        cmd = cmd.commands[name]
    return cmd


@functools.lru_cache(maxsize=None)
def _required(path: str) -> tuple[str, ...]:
    """Stand-ins for a command's required arguments and options (never read: the number is refused first)."""
    cmd = _command(path)
    args: list[str] = []
    for param in cmd.params:
        if param.required:
            args += ["missing.json"] if param.param_type_name == "argument" else [param.opts[0], "missing.json"]
    return tuple(args)


def _outside(allowed: checks.Range, is_float: bool) -> list[str]:
    """nan and inf for a float option; 0, -1 and the values just beyond each end, where they are outside."""
    step = 0.5 if is_float else 1
    candidates = [0, -1]
    if allowed.low is not None:
        candidates.append(allowed.low / 2 if allowed.zero else allowed.low - (0 if allowed.low_open else step))
    if allowed.high is not None:
        candidates.append(allowed.high + (0 if allowed.high_open else step))
    values = ["nan", "inf", "-inf"] if is_float else []
    for x in dict.fromkeys(candidates):
        if not allowed.holds(x):
            values.append(f"{x:g}" if is_float else str(int(x)))
    return values


def _cases(first_only: bool):
    cases = []
    for path, param in _options():
        name = checks.option_name(param)
        allowed = checks.rule(name, path)
        if allowed is None:
            continue  # test_every_numeric_option_has_a_range reports it
        values = _outside(allowed, param.type_descriptor.annotation is float)
        for value in values[:1] if first_only else values:
            cases.append(pytest.param(path, name, value, id=f"{path} {name} {value}"))
    return cases


def test_every_numeric_option_has_a_range_and_its_default_is_in_it():
    missing, bad_defaults = [], []
    for path, param in _options():
        allowed = checks.rule(checks.option_name(param), path)
        if allowed is None:
            missing.append(f"{path} {checks.option_name(param)}")
        elif param.default is not None and not allowed.holds(param.default):
            bad_defaults.append(f"{path} {checks.option_name(param)} {param.default}")
    assert not missing, f"numeric options without a range in gaia_cli.checks.OPTIONS: {missing}"
    assert not bad_defaults, bad_defaults


@pytest.mark.parametrize("path,option,value", _cases(first_only=True))
def test_each_numeric_option_refuses_a_bad_number_in_one_line(path, option, value, tmp_path, monkeypatch):
    """Through `gaia` itself: nan for a float option, the value just outside for an integer, exit 2."""
    monkeypatch.chdir(tmp_path)
    proc = gaia_here(*path.split(), *_required(path), option, value)
    assert_bad_input(proc, f"{option} must be ", f"(got {value})")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path,option,value", _cases(first_only=False))
def test_every_bad_number_is_refused_as_the_command_line_is_parsed(path, option, value):
    """nan, inf, -inf, 0, -1 and the ends of the range wherever they are outside it (parsing alone: fast)."""
    command = _command(path)
    with pytest.raises(BadInput, match=rf"^{re.escape(option)} must be .* \(got {re.escape(value)}\)$"):
        command.make_context(path, [*_required(path), option, value])


# the cases the issue names, as a user types them
@pytest.mark.parametrize("args,message", [
    (["train-supernet", "--data", "t.json", "-o", "s.h5", "--lr-per-image", "nan"], "--lr-per-image must be a finite number (got nan)"),
    (["train-supernet", "--data", "t.json", "-o", "s.h5", "--lr-per-image", "inf"], "--lr-per-image must be a finite number (got inf)"),
    (["predict", "m.h5", "i.png", "--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
    (["predict", "m.h5", "i.png", "--batch-size", "-1"], "--batch-size must be at least 1 (got -1)"),
    (["eval", "--weights", "m.h5", "--data", "v.json", "--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
    (["space", "sample", "tiny", "--seed", "-1"], "--seed must be between 0 and 4294967295 (got -1)"),
    (["space", "sample", "tiny", "--seed", str(2**32)], "--seed must be between 0 and 4294967295 (got 4294967296)"),
    (["space", "sample", "tiny", "-n", "0"], "-n must be at least 1 (got 0)"),
    (["search", "--flops", "nan"], "--flops must be a finite number (got nan)"),
    (["search", "--flops", "-5"], "--flops must be positive (got -5)"),
    (["search", "--latency", "0", "--device", "v100"], "--latency must be positive (got 0)"),
    (["search", "--pareto", "16,nan", "--device", "v100"], "--pareto must be a finite number (got nan)"),
    (["search", "--pareto", "16,inf", "--device", "v100"], "--pareto must be a finite number (got inf)"),
    (["finetune", "--weights", "s.h5", "--data", "t.json", "-o", "m.h5", "--percent", "101"], "--percent must be in (0, 100] (got 101)"),
    (["pretrain", "s.h5", "-o", "b.h5", "--split", "0.9"], "--split must be in [0.1, 0.5] (got 0.9)"),
    (["extract-montage", "--data", "t.json", "-o", "s.h5", "--ratio", "0.05"], "--ratio must be 0 or at least 0.1 (got 0.05)"),
    (["bench-latency", "--runs", "0"], "--runs must be at least 1 (got 0)"),
    (["toy-data", "t", "--size", "100000"], "--size must be between 32 and 4096 (got 100000)"),
])
def test_the_reported_cases(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_bad_input(gaia_here(*args), message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--batch-size", "--seed"])
@pytest.mark.parametrize("value", ["nan", "1.5", "abc"])
def test_an_integer_option_refuses_what_is_not_an_integer(option, value):
    proc = gaia_here("predict" if option == "--batch-size" else "toy-data", "x", "y", option, value)
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert option in proc.stderr


# ------------------------------------------------------------------------------------------ fields of files

ARCH = {"depth": [2, 2, 2, 2], "width": [64, 64, 128, 256, 512], "scale": 800}


@pytest.mark.parametrize("field,value,message", [
    ("scale", 10**30, "'scale' must be between 32 and 8192 (got 1.000e+30)"),
    ("scale", 16, "'scale' must be between 32 and 8192 (got 16)"),
    ("width", [64, 64, 128, 10**6, 512], "'width[3]' must be between 1 and 4096 (got 1000000)"),
    ("depth", [2, 2, 10**4, 2], "'depth[2]' must be between 1 and 100 (got 10000)"),
    ("scale", 800.5, "'scale' must be an integer"),
])
def test_an_absurd_arch_is_refused(field, value, message, write_json):
    path = write_json("arch.json", {**ARCH, field: value})
    assert_bad_input(gaia_here("space", "flops", path), str(path), message)


def test_nan_in_an_arch_file_is_refused(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text('{"depth": [2, 2, 2, 2], "width": [64, 64, 128, 256, 512], "scale": NaN}')
    assert_bad_input(gaia_here("space", "flops", path), "'scale' must be an integer")


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update(scale=[64, 10**9]), "'scale' must be between 32 and 8192 (got 1000000000)"),
    (lambda s: s["width"][4].append(10**5), "'width[4]' must be between 1 and 4096 (got 100000)"),
    (lambda s: s["detector"].update(proposals=10**12), "'detector proposals' must be between 1 and 100000"),
])
def test_an_absurd_space_is_refused(change, message, write_json):
    from gaia_cli.space.arch import preset

    space = preset("tiny").to_payload()
    change(space)
    path = write_json("space.json", {"kind": "gaia/space", "schema_version": 1, **space})
    proc = gaia_here("space", "show", path)
    assert_bad_input(proc, message)


def test_every_preset_space_is_within_the_bounds():
    from gaia_cli.space.arch import PRESETS, preset

    for name in PRESETS:
        preset(name)  # builds and checks it


# ------------------------------------------------------------------------------------------ the one place


def test_library_calls_check_against_the_same_table():
    from gaia_cli.data.toy import MAX_CATEGORIES
    from gaia_cli.tasks.train_supernet import TrainRequest, check_options
    from gaia_cli.search.evolution import Settings

    assert checks.MAX_CATEGORIES == MAX_CATEGORIES
    with pytest.raises(BadInput, match=r"--lr-per-image must be a finite number \(got nan\)"):
        check_options(TrainRequest(data=["t.json"], output="s.h5", lr_per_image=math.nan))
    with pytest.raises(BadInput, match=r"--parent-ratio must be in \(0, 1\) \(got 1\)"):
        Settings(parent_ratio=1.0).check()
    with pytest.raises(BadInput, match="--seed"):
        checks.check_options({"--seed": -1})
    with pytest.raises(KeyError):  # an option without a range is a mistake of gaia's, not the user's
        checks.check_options({"--no-such-option": 1})


@pytest.mark.parametrize("allowed,text", [
    (checks.Range(1), "at least 1"), (checks.POSITIVE, "positive"), (checks.Range(0), "at least 0"),
    (checks.Range(1, 8), "between 1 and 8"), (checks.Range(0, 1, low_open=True), "in (0, 1]"),
    (checks.Range(0, 1, high_open=True), "in [0, 1)"), (checks.Range(0.1, zero=True), "0 or at least 0.1"),
])
def test_ranges_say_what_they_allow(allowed, text):
    assert allowed.describe() == text
    assert not allowed.holds(math.nan) and not allowed.holds(math.inf) and not allowed.holds(-math.inf)


@pytest.mark.parametrize("change,message", [
    (lambda p: p["coefficients"].update(detector_gmacs=math.nan), "'coefficients[detector_gmacs]' must be a finite number (got nan)"),
    (lambda p: p.update(intercept=math.inf), "'intercept' must be a finite number (got inf)"),
    (lambda p: p.update(classes=1), "'classes' must be between 2 and 100000 (got 1)"),
    (lambda p: p.update(method="lut", stems={"stem:64:800": -1.0}, blocks={"b": 1.0}, fixed={"800": 1.0}),
     "'stems[stem:64:800]' must be at least 0 (got -1)"),
])
def test_an_absurd_latency_profile_is_refused(change, message, write_json):
    from gaia_cli.artifacts import json_artifact
    from gaia_cli.latency.profile import KIND, v100

    payload = v100().to_payload()
    change(payload)
    path = write_json("profile.json", json_artifact(KIND, payload))
    assert_bad_input(gaia_here("search", "--latency", "25", "--device", path), str(path.name), message)
