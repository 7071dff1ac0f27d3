"""Options and run controls defined once: the run-control fields live in `RunControl` alone (every request holds
one, with its command's defaults), the command line takes its run-control defaults from there, and an option
that several commands share is declared once (gaia_cli.cli.options), with the same help wherever it appears."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import pkgutil
import re
import subprocess
import sys

import gaia_cli
from gaia_cli.engine.runcontrol import RunControl, defaults

from conftest import REPO

RUN_FIELDS = {f.name for f in dataclasses.fields(RunControl)}
# the fields only a run that trains or computes features has; `device` and `seed` other requests have too
RUN_ONLY = RUN_FIELDS - {"device", "seed"}
# extract-montage's --workers are the processes that cut images, not data loading: extraction's own option
NOT_RUN_CONTROL = {("ExtractRequest", "workers")}

# each request that runs a training (or computes features) and the command whose defaults it takes
REQUESTS = {
    "gaia_cli.tasks.finetune.FinetuneRequest": "finetune",
    "gaia_cli.tasks.pretrain.PretrainRequest": "pretrain",
    "gaia_cli.tasks.train_supernet.TrainRequest": "train-supernet",
    "gaia_cli.selection.select.SelectRequest": "select-data",
    "gaia_cli.ranking.settings.Settings": "rank",
}
# option -> RunControl field
RUN_OPTIONS = {"--device": "device", "--compute-device": "device", "--seed": "seed", "--workers": "workers",
               "--amp": "amp", "--checkpoint-every": "checkpoint_every", "--log-every": "log_every",
               "--stop-after": "stop_after", "--resume": "resume", "--restart": "restart"}
# (command, option) where the name means something else: a latency profile, extraction's processes
OTHER_MEANING = {("rank", "--device"), ("search", "--device"), ("extract-montage", "--workers")}


def _dataclasses() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(gaia_cli.__path__, "gaia_cli."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [obj for obj in vars(module).values()
                  if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
    return found


def _class(dotted: str) -> type:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_run_control_fields_live_in_run_control_alone():
    classes = _dataclasses()
    holders = []
    for cls in classes:
        if cls is RunControl:
            continue
        names = {f.name for f in dataclasses.fields(cls)}
        runs = [f.name for f in dataclasses.fields(cls) if f.type in ("RunControl", RunControl)]
        restated = {n for n in names & RUN_ONLY if (cls.__name__, n) not in NOT_RUN_CONTROL}
        assert not restated, f"{cls.__module__}.{cls.__name__} restates {sorted(restated)}: hold a RunControl"
        if runs:
            holders.append(cls)
            assert runs == ["run"] and not names & RUN_FIELDS, (cls, sorted(names & RUN_FIELDS))
    # a request named by its workflow module, which imports it from where it lives (gaia_cli.tasks.requests)
    assert {_class(d) for d in REQUESTS} <= set(holders), {_class(d) for d in REQUESTS} - set(holders)


def test_each_request_defaults_to_its_commands_run_control():
    for dotted, command in REQUESTS.items():
        run = next(f for f in dataclasses.fields(_class(dotted)) if f.name == "run")
        assert run.default == defaults(command), dotted
    from gaia_cli.engine.train import TrainOptions
    from gaia_cli.ranking.run import RankRequest

    assert RankRequest().settings.run == defaults("rank")
    assert TrainOptions().run == RunControl()
    # where a command differs, it says so in DEFAULTS; the others take RunControl's own
    assert defaults("finetune") == defaults("train-supernet") == defaults("select-data") == RunControl()


def test_train_options_run_key_is_what_a_resumed_run_must_share():
    from gaia_cli.engine.train import TrainOptions

    key = TrainOptions(run=RunControl(workers=7, checkpoint_every=3, log_every=2, stop_after=9, device="cpu",
                                      resume=True, amp=True, seed=4)).run_key()
    assert key["amp"] is True and key["seed"] == 4
    assert not {"run", "workers", "checkpoint_every", "log_every", "stop_after", "device", "resume", "restart"} & set(key)


# every RunControl default changed at once: each command's --help shows the new ones, so none is typed twice
_CHANGED = {"device": "cuda:3", "seed": 7, "workers": 5, "amp": True, "checkpoint_every": 77, "log_every": 9,
            "stop_after": 11, "resume": True, "restart": True}
_SCRIPT = f"""
import dataclasses, json
import gaia_cli.engine.runcontrol as rc
changed = {_CHANGED!r}
real = rc.defaults
rc.defaults = lambda command: dataclasses.replace(real(command), **changed)
import typer
from gaia_cli.cli.app import app

def walk(cmd, path):
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from walk(sub, path + [name])
    else:
        yield " ".join(path), cmd

out = {{}}
for name, cmd in walk(typer.main.get_command(app), []):
    out[name] = {{p.opts[0]: p.default for p in cmd.params if p.param_type_name == "option"}}
print(json.dumps(out))
"""


def test_every_command_takes_its_run_control_defaults_from_run_control():
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    commands = json.loads(proc.stdout)
    checked = []
    for command, options in commands.items():
        for option, default in options.items():
            if option in RUN_OPTIONS and (command, option) not in OTHER_MEANING:
                assert default == _CHANGED[RUN_OPTIONS[option]], (command, option, default)
                checked.append((command, option))
    assert len({c for c, _ in checked}) >= 14  # every command with a --seed or a --device
    for command in ("finetune", "pretrain", "train-supernet"):
        assert {o for c, o in checked if c == command} >= {"--amp", "--workers", "--checkpoint-every", "--stop-after",
                                                          "--resume", "--restart", "--device", "--seed"}
    assert {o for c, o in checked if c == "rank"} == {"--compute-device", "--workers", "--resume", "--restart", "--seed"}


# ----------------------------------------------------------------------------------------- shared options


def _declared(path) -> list[str]:
    """The option names a module declares with typer.Option('--name', ...)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Option" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("--"):
                names.append(first.value)
    return names


# an option declared in gaia_cli.cli.options that a command still declares itself, where it means another thing
# there or is the shared one with another type: toy-data's --images is a count; bench-latency's --device is where
# to measure or a profile, rank's and search's a latency profile; extract-montage's --workers cut images;
# train-supernet's --rules and --paths-per-step default to the recipe's (their help is the shared one plus that)
OWN = {("toy_data", "--images"), ("bench_latency", "--device"), ("rank_cmd", "--device"), ("search_cmd", "--device"),
       ("extract_montage", "--workers"), ("train_supernet", "--rules"), ("train_supernet", "--paths-per-step")}


def test_shared_options_are_declared_once():
    cli = REPO / "gaia_cli" / "cli"
    shared = set(_declared(cli / "options.py"))
    assert {"--space", "--data", "--images", "--weights", "--recalibrate", "--seed", "--device", "--workers",
            "--amp", "--checkpoint-every", "--stop-after", "--resume", "--restart"} <= shared
    for path in sorted(cli.glob("*.py")):
        if path.name == "options.py":
            continue
        again = {name for name in _declared(path) if name in shared and (path.stem, name) not in OWN}
        assert not again, f"{path.name} declares {sorted(again)} again: use gaia_cli.cli.options"


SPACE = re.escape("a preset (ar50, ar77, ar101, ar50to101, small, tiny) or a gaia/space file")
# the help each shared option has wherever it appears: one text, or the wording its commands share
SAME_HELP = {
    "--space": rf".+: {SPACE}.*\.",
    "--data": r".+ \(COCO format\).*\.|A COCO \w+ set; repeat for several \(then give --labels\)\.",
    "--images": r"Image folder of .+ \(default: found beside it\)\.",
    "--labels": r"(A|The supernet's) gaia/labels space \(from unify-labels\): .+\.",
    "--arch": r".+; - reads stdin\.",
    "--recalibrate": r"(\w+ )*[Ii]mages to recalibrate (.+ )?BN statistics with.*\.",
    "--recalibrate-data": r"Training images for --recalibrate \(.+\)\.",
    "--compute-device": r"Where .+: auto, cpu, cuda or cuda:N\.",
    "--seed": re.escape("Random seed; the same seed gives the same result."),
    "--device": re.escape("Where to compute: auto, cpu, cuda or cuda:N (auto picks cuda when present)."),
    "--workers": re.escape("Data-loading worker processes."),
    "--amp": re.escape("Mixed precision (fp16 autocast with loss scaling; CUDA only)."),
    "--checkpoint-every": re.escape("Steps between checkpoints (OUTPUT.ckpt.h5)."),
    "--log-every": re.escape("Steps between log lines."),
    "--stop-after": re.escape("Stop after this many steps with a checkpoint (split a run into jobs)."),
    "--resume": r"Continue from OUTPUT\.(ckpt\.h5, exactly where it stopped|journal\.jsonl, skipping the candidates it holds)\.",
    "--restart": r"Discard an interrupted run's OUTPUT\.(ckpt\.h5|journal\.jsonl) and start over \(a new run refuses to replace one\)\.",
    "--batch-size": r"Images per (step on each process|forward pass)\.",
    "--weight-decay": re.escape("SGD weight decay (not on BN and biases)."),
    "--clip-grad": re.escape("Clip the gradient norm to this (0: off)."),
    "--verbose": re.escape("More detail on stderr (tables, tracebacks on error). Repeat for more."),
    "--quiet": re.escape("No progress or info on stderr (errors still show)."),
}
OTHER_HELP = {("toy-data", "--images"), ("bench-latency", "--device"), ("rank", "--device"), ("search", "--device"),
              ("extract-montage", "--workers")}


def test_shared_options_have_the_same_help_in_each_command():
    import typer

    from gaia_cli.cli.app import app

    def walk(cmd, path):
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])
        if not getattr(cmd, "commands", None):
            yield " ".join(path), cmd

    seen: dict[str, set[str]] = {}
    for command, cmd in walk(typer.main.get_command(app), []):
        for param in cmd.params:
            option = param.opts[0]
            if option in SAME_HELP and (command, option) not in OTHER_HELP:
                assert re.fullmatch(SAME_HELP[option], param.help or ""), (command, option, param.help)
                seen.setdefault(option, set()).add(command)
    assert all(len(commands) >= 2 for commands in seen.values()), seen
    assert set(seen) == set(SAME_HELP)
    assert len(seen["--space"]) >= 8 and len(seen["--recalibrate"]) >= 7 and len(seen["--data"]) >= 7


# ------------------------------------------------------------------------------ request defaults, written once

# each command whose request lives in a torch-free module, and the module its command line is in: every option
# that is a field of the request takes the request's default, never a literal of its own
CONVERTED = {
    "finetune": ("gaia_cli.tasks.requests.FinetuneRequest", "finetune_cmd"),
    "train-supernet": ("gaia_cli.tasks.requests.TrainRequest", "train_supernet"),
    "pretrain": ("gaia_cli.tasks.requests.PretrainRequest", "pretrain_cmd"),
    "select-data": ("gaia_cli.selection.request.SelectRequest", "select_data"),
    "eval": ("gaia_cli.tasks.requests.EvalRequest", "eval_cmd"),
    "predict": ("gaia_cli.tasks.requests.PredictRequest", "predict_cmd"),
}


def _commands() -> dict:
    import typer

    from gaia_cli.cli.app import app

    return dict(typer.main.get_command(app).commands)


def test_each_option_takes_its_requests_default():
    commands = _commands()
    for command, (dotted, _) in CONVERTED.items():
        fields = {f.name: f for f in dataclasses.fields(_class(dotted))}
        checked = 0
        for param in commands[command].params:
            field = fields.get(param.name)
            if field is None or field.default is dataclasses.MISSING:
                continue
            assert param.default == field.default and type(param.default) is type(field.default), \
                (command, param.name, param.default, field.default)
            checked += 1
        assert checked >= 5, (command, checked)


def test_command_lines_type_no_default_of_a_request_again():
    """A default in the command's signature that is a request's field is the request's attribute (None, 'not
    given', may stay): a literal there is the same default written twice."""
    for command, (dotted, stem) in CONVERTED.items():
        fields = {f.name for f in dataclasses.fields(_class(dotted))}
        tree = ast.parse((REPO / "gaia_cli" / "cli" / f"{stem}.py").read_text())
        function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and any(
            getattr(d, "func", None) is not None and getattr(d.func, "id", None) == "command" for d in node.decorator_list))
        args = function.args.args
        for arg, default in zip(args[len(args) - len(function.args.defaults):], function.args.defaults):
            if arg.arg in fields:
                literal = not any(isinstance(n, (ast.Name, ast.Attribute, ast.Call)) for n in ast.walk(default))
                assert not literal or (isinstance(default, ast.Constant) and default.value is None), \
                    f"{stem}.py: --{arg.arg.replace('_', '-')} defaults to a literal; take the request's"
