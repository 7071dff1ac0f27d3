"""The commands' workflows, each a library call (a request dataclass and `run`): `train_supernet`, `finetune`,
`pretrain`, `evaluate` (`eval`), `predict`.

Each checks its inputs, builds the data and the model, and drives the machinery of gaia_cli.engine (the
training loop, checkpoints, schedules, recipes, recalibration, metrics); the thin modules of gaia_cli.cli
import them lazily. A package below this one never imports it (tests/test_layers.py); rank, which runs
finetune's workflow on its candidates, sits above.
"""
