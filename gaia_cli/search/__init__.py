"""Architecture search: evolution under latency/FLOPs budgets (later: pruning, ranking)."""
