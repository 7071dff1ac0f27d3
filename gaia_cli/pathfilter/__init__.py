"""DetOFA's FLOPs-bounded path filter and search-space pruning (DetOFA 3.1-3.3, Algorithm 1).

- `buckets`: FLOPs buckets (equal-width intervals between the space's smallest and largest FLOPs) and
  uniform sampling of paths within each bucket.
- `tokens`: layer-wise path tokens (each stage's width repeated over its blocks, skips beyond its depth),
  the input scale, and the sinusoidal layer and block positional encodings.
- `model`: the path filter (embeddings, transformer encoder, two FC layers, sigmoid score) and the
  OFA-style MLP baseline.
- `fit`: the FLOPs-bounded pairwise squared hinge loss, the 80/20 split, fitting, baselines and the report.
- `measure`, `journal`: measuring paths of a supernet (validation loss and AP) into a resumable journal.
- `filterfile`: the `gaia/pathfilter` HDF5 artifact and the scorer read from it.
- `prune`: operation pruning (three strategies) and path thresholds recorded in a gaia/space (the record
  itself, which every reader of a space checks, is `gaia_cli.space.pruning`).
- `accept`: the acceptance filter that makes a sampler draw only paths a pruned space allows.
- `run`: `fit-pathfilter` and `prune` as library calls.
"""
