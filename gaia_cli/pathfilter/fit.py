"""Fitting the path filter (DetOFA 3.1.2) and judging it against baselines on the same split (Table 3).

The FLOPs-bounded loss: for every pair of paths in the same FLOPs bucket, t = +1 when the first has the
lower validation loss (-1 when the higher; a tie says nothing), g = score(a) - score(a'), and the squared
hinge max(0, 1 - t g)^2, averaged over the pairs. Pairs across buckets add nothing. The scores compared are
the filter's outputs before its sigmoid: the sigmoid is monotone, so the ranking is the same, but two
sigmoid scores differ by less than 1, so a margin-1 hinge on them could never be met and the sigmoid's
flat ends starve the gradient (on a synthetic ranking, 150 paths and 30 epochs: tau 0.63 on sigmoid
scores at the best rate tried, 0.83 on their logits). The measured paths are
split 80/20 within each bucket; the epoch with the lowest loss on the 20% is kept.

The report, on the held-out 20%: Kendall's tau-b between score and -loss within each bucket (and their
mean), and the detection of each bucket's weakest `path_ratio` (DetOFA Table 3): a path is truly weak when
its loss is at or above the bucket's (1 - r) quantile of all measured losses, predicted weak when its score
is at or below the bucket's r quantile of the scorer's scores of all measured paths (the way `prune` sets
its thresholds); accuracy, precision and recall of that prediction. The same for the baselines, fitted on
the same split: FLOPs alone (more FLOPs, better), once-for-all's MLP predictor, and random scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import torch

from gaia_cli import console
from gaia_cli.errors import BadInput
from gaia_cli.pathfilter.model import MLPPredictor
from gaia_cli.pathfilter.report import PAPER_TABLE3

MIN_PER_BUCKET = 5  # the 80/20 split keeps at least one held-out and four training paths in a bucket


def pair_loss(scores: torch.Tensor, losses: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
    """The FLOPs-bounded pairwise squared hinge loss (mean over same-bucket pairs; 0 with none)."""
    g = scores[:, None] - scores[None, :]
    t = torch.sign(losses[None, :] - losses[:, None])  # +1 where row's loss is lower than the column's
    same = (buckets[:, None] == buckets[None, :]) & (t != 0)
    same = torch.triu(same, diagonal=1)
    if not bool(same.any()):
        return scores.sum() * 0.0
    hinge = torch.clamp(1 - t * g, min=0) ** 2
    return hinge[same].mean()


def split(buckets: np.ndarray, seed: int, held_out: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: `held_out` of each bucket, at least one, held out."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for b in np.unique(buckets):
        idx = np.flatnonzero(buckets == b)
        if len(idx) < MIN_PER_BUCKET:
            raise BadInput(f"FLOPs bucket {int(b)} has {len(idx)} measured path(s): the 80/20 split needs at "
                           f"least {MIN_PER_BUCKET} in every bucket (measure more with --paths-per-bucket)")
        idx = rng.permutation(idx)
        k = max(1, int(round(held_out * len(idx))))
        val += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.array(sorted(train)), np.array(sorted(val))


@dataclasses.dataclass
class FitResult:
    state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]]


def fit_filter(model: torch.nn.Module, tokens: np.ndarray, buckets: np.ndarray, losses: np.ndarray,
               train: np.ndarray, val: np.ndarray, epochs: int, seed: int, lr: float = 2e-3,
               batch_size: int = 32) -> FitResult:
    """Train `model` on the pairs of `train`, keep the epoch of lowest pair loss on `val`."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok, buck, loss = torch.from_numpy(tokens), torch.from_numpy(buckets), torch.from_numpy(losses).float()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best = (float("inf"), -1, None)
    history = []
    with console.progress("fitting the path filter", total=epochs) as bar:
        for epoch in range(epochs):
            model.train()
            running = []
            for chunk in _bucket_batches(train, buckets, batch_size, rng):
                idx = torch.from_numpy(chunk)
                value = pair_loss(model.logits(tok[idx], buck[idx]), loss[idx], buck[idx])
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                running.append(value.item())
            model.eval()
            with torch.no_grad():
                v = torch.from_numpy(val)
                val_loss = float(pair_loss(model.logits(tok[v], buck[v]), loss[v], buck[v]))
            history.append({"epoch": epoch + 1, "train": float(np.mean(running)), "val": val_loss})
            if val_loss < best[0]:
                best = (val_loss, epoch + 1, {k: t.detach().clone() for k, t in model.state_dict().items()})
            bar.advance()
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(best[2], best[1], history)


def _bucket_batches(train: np.ndarray, buckets: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """An epoch's batches, each of one bucket's paths (only same-bucket pairs count), in random order."""
    batches = []
    for b in np.unique(buckets[train]):
        idx = rng.permutation(train[buckets[train] == b])
        batches += np.array_split(idx, max(1, int(np.ceil(len(idx) / size))))
    return [batches[i] for i in rng.permutation(len(batches))]


def fit_mlp(onehot: np.ndarray, losses: np.ndarray, train: np.ndarray, val: np.ndarray, epochs: int,
            seed: int, lr: float = 1e-3) -> Callable[[np.ndarray], np.ndarray]:
    """once-for-all's predictor regressed on the (standardised) loss of `train`; the best epoch on `val`.
    Returns a scorer of one-hot rows: minus the predicted loss."""
    torch.manual_seed(seed)
    mean, std = float(losses[train].mean()), float(losses[train].std()) or 1.0
    x = torch.from_numpy(onehot)
    y = torch.from_numpy((losses - mean) / std).float()
    model = MLPPredictor(onehot.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t, v = torch.from_numpy(train), torch.from_numpy(val)
    best = (float("inf"), None)
    for _ in range(epochs):
        model.train()
        value = torch.nn.functional.mse_loss(model(x[t]), y[t])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(torch.nn.functional.mse_loss(model(x[v]), y[v]))
        if val_loss < best[0]:
            best = (val_loss, {k: p.detach().clone() for k, p in model.state_dict().items()})
    model.load_state_dict(best[1])
    model.eval()

    def score(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return -model(torch.from_numpy(rows)).numpy()

    return score


# ------------------------------------------------------------------------------------------------ the report


def kendall_within(scores: np.ndarray, losses: np.ndarray, buckets: np.ndarray) -> dict[str, Any]:
    """Kendall's tau-b between score and -loss in each bucket (with 2+ paths), and their mean."""
    from scipy.stats import kendalltau

    per = {}
    for b in np.unique(buckets):
        m = buckets == b
        if m.sum() >= 2:
            tau = kendalltau(scores[m], -losses[m]).statistic
            per[int(b)] = None if np.isnan(tau) else float(tau)
    values = [t for t in per.values() if t is not None]
    return {"mean": float(np.mean(values)) if values else None, "per_bucket": per}


def weakest_detection(scores_all: np.ndarray, losses_all: np.ndarray, buckets_all: np.ndarray,
                      judged: np.ndarray, ratio: float) -> dict[str, Any]:
    """Detection of each bucket's weakest `ratio` among the `judged` paths (see the module's note)."""
    truth, predicted = [], []
    for b in np.unique(buckets_all[judged]):
        inb = buckets_all == b
        loss_cut = np.quantile(losses_all[inb], 1 - ratio)
        score_cut = np.quantile(scores_all[inb], ratio)
        j = judged[buckets_all[judged] == b]
        truth += (losses_all[j] >= loss_cut).tolist()
        predicted += (scores_all[j] <= score_cut).tolist()
    truth_a, pred_a = np.array(truth, bool), np.array(predicted, bool)
    tp = int((truth_a & pred_a).sum())
    return {
        "accuracy": float((truth_a == pred_a).mean()) if len(truth_a) else None,
        "precision": tp / int(pred_a.sum()) if pred_a.any() else None,
        "recall": tp / int(truth_a.sum()) if truth_a.any() else None,
        "judged": len(truth_a), "weak": int(truth_a.sum()), "flagged": int(pred_a.sum()),
    }


def judge(scores: np.ndarray, losses: np.ndarray, buckets: np.ndarray, val: np.ndarray, ratio: float) -> dict[str, Any]:
    return {"kendall_tau_b": kendall_within(scores[val], losses[val], buckets[val]),
            "weakest": weakest_detection(scores, losses, buckets, val, ratio)}


def report(filter_scores: np.ndarray, flops: np.ndarray, onehot: np.ndarray, losses: np.ndarray,
           buckets: np.ndarray, train: np.ndarray, val: np.ndarray, ratio: float, epochs: int,
           seed: int) -> dict[str, Any]:
    """The filter and the three baselines judged on the same held-out paths."""
    mlp = fit_mlp(onehot, losses, train, val, epochs, seed)
    random_scores = np.random.default_rng(seed + 1).random(len(losses))
    rows = {
        "pathfilter": judge(filter_scores, losses, buckets, val, ratio),
        "flops": judge(flops, losses, buckets, val, ratio),
        "mlp": judge(mlp(onehot), losses, buckets, val, ratio),
        "random": judge(random_scores, losses, buckets, val, ratio),
    }
    return {"path_ratio": ratio, "held_out": len(val), "trained_on": len(train), "methods": rows,
            "paper_table3": PAPER_TABLE3}
