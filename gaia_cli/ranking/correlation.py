"""Rank correlation of two lists of scores: Kendall tau-b and Spearman's rho with their p-values (scipy.stats).

GAIA (3.2.1, Figure 2a) measures how well a cheap ranking (direct evaluation: tau 0.18; fast fine-tuning:
0.85) predicts the ranking by the full 1x fine-tuning. Ties are counted as tau-b counts them. Where a list is
constant the coefficients are undefined: they come back as None (JSON has no NaN), with the reason.
"""

from __future__ import annotations

import math
from typing import Any, Sequence


def correlation(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Kendall tau-b and Spearman between paired scores `a` and `b` (same length, at least 2)."""
    from scipy import stats

    if len(a) != len(b):
        raise ValueError("paired scores differ in length")
    out: dict[str, Any] = {"n": len(a)}
    if len(a) < 2:
        return {**out, "kendall_tau_b": None, "kendall_p": None, "spearman_rho": None, "spearman_p": None,
                "undefined": "fewer than 2 candidates in common"}
    if len(set(a)) < 2 or len(set(b)) < 2:
        return {**out, "kendall_tau_b": None, "kendall_p": None, "spearman_rho": None, "spearman_p": None,
                "undefined": "every candidate scores the same on one side"}
    tau = stats.kendalltau(a, b, variant="b")
    rho = stats.spearmanr(a, b)
    return {**out, "kendall_tau_b": _number(tau.statistic), "kendall_p": _number(tau.pvalue),
            "spearman_rho": _number(rho.statistic), "spearman_p": _number(rho.pvalue)}


def _number(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
