"""GAIA's task-specific architecture selection (TSAS, GAIA 3.2.1), as `gaia rank`.

Direct evaluation of supernet paths ranks them poorly against their fine-tuned accuracy (the paper's Kendall
tau 0.18), a short fine-tuning well (0.85). So: group the candidates by (input scale, range of total depth), evaluate
each directly (batch norm recalibrated on target images), keep the best of each group, keep the top share of
those, fine-tune each with the fast schedule, and pick the best.

- `candidates`: reading candidate archs, GAIA's grouping and sampling rule, the keep fractions.
- `correlation`: Kendall tau-b and Spearman (scipy.stats) between two stages or two rankings.
- `journal`: finished candidates appended one line at a time, for --resume, --shard and --merge.
- `settings`: what every candidate is measured and fine-tuned with (the request's part the stages need).
- `stages`: direct evaluation (stage 1) and fine-tuning by finetune's engine (stage 2, and the 1x reference).
- `workers`: one worker process per device (--devices), each running `stages.evaluate_candidate`.
- `run`: the driver: stages, shards, merging, the gaia/ranking artifact.
"""
