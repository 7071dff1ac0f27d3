"""Search spaces, architectures (one path each), sampling rules, FLOPs and parameter counts."""
