"""Search spaces, architectures (one path each), sampling rules, FLOPs and parameter counts, and the record of
what a pruned space removes (`pruning`), the detector parts a space does not search (`detector`). Nothing
here needs torch."""
