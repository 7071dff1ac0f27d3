"""The path filter's report as text (no torch: `gaia inspect` prints it)."""

from __future__ import annotations

from typing import Any

PAPER_TABLE3 = {"accuracy": 0.89, "precision": 0.79, "recall": 0.212}  # DetOFA Table 3: with pre-training, weakest 25%


def report_lines(rep: dict[str, Any]) -> list[str]:
    """The report as a small table (for stderr and `inspect`)."""
    def f(x):
        return "   -  " if x is None else f"{x:6.3f}"

    r = rep["path_ratio"]
    lines = [f"held-out {rep['held_out']} paths; weakest {r:.0%} per bucket; tau-b within buckets",
             f"{'method':<12}{'tau-b':>8}{'accuracy':>10}{'precision':>11}{'recall':>8}"]
    for name, row in rep["methods"].items():
        w = row["weakest"]
        lines.append(f"{name:<12}{f(row['kendall_tau_b']['mean']):>8}{f(w['accuracy']):>10}{f(w['precision']):>11}"
                     f"{f(w['recall']):>8}")
    p = rep["paper_table3"]
    lines.append(f"{'DetOFA T3':<12}{'   -  ':>8}{f(p['accuracy']):>10}{f(p['precision']):>11}{f(p['recall']):>8}"
                 "   (paper, weakest 25%, with pre-training)")
    return lines
