"""Search spaces, architectures (one path each), sampling rules, FLOPs and parameter counts, and the record of
what a pruned space removes (`pruning`). Nothing here needs torch."""
