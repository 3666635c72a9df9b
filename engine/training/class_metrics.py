"""Classification scores beyond accuracy, for K models at once: macro F1, balanced
accuracy and, with two classes, ROC AUC and PR AUC (average precision).

None of them is a mean over rows, so a split evaluated in chunks (a population's
stacked.evaluate_members) cannot average chunk values as it does loss and accuracy:
`ClassTally` adds up each member's confusion counts chunk by chunk, and with two classes
keeps each member's scores; a single run tallies its whole split at once. Both compute
the values from the same counts and scores, so a member and its single run agree.

The conventions are scikit-learn's defaults (zero_division=0):

- macro F1 averages the classes' F1 over the classes that occur in the split's truth or
  predictions (sklearn's `unique_labels`). A class's F1 is 2 tp / (2 tp + fp + fn): 0 for
  a class that is never predicted, or predicted but absent from the split (its precision
  or recall, 0/0, counts as 0). A class in neither is left out, not counted as 0.
- balanced accuracy is the mean recall over the classes present in the split's truth.
- ROC AUC is the Mann-Whitney U statistic of the positive class's scores against the
  negative's, ties counted half. PR AUC is average precision: the sum over thresholds of
  (R_n - R_{n-1}) P_n, tied scores one threshold. The positive class is class 1 (a
  table's second class in sorted order, e.g. 'M' of 'B'/'M', 1 of 0/1); its score is
  out[1] - out[0], the log-odds of class 1 under softmax (any increasing function of it
  ranks alike, and it does not saturate as a probability does). A split without both
  classes has no ROC AUC, and one without a positive no PR AUC: NaN, never an error.
"""

from __future__ import annotations

import torch

UNDEFINED_ON_ONE_CLASS = ("roc_auc", "pr_auc")  # NaN on such a split: not a divergence
BLOCK_ELEMENTS = 2**22  # members x rows sorted at once: the AUCs' int64 temporaries stay bounded


def confusion(pred: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """Each member's confusion counts [K, C, C] (rows: true class, columns: predicted) from
    predictions and labels [K, n]."""
    index = y * classes + pred
    counts = torch.zeros(y.shape[0], classes * classes, dtype=torch.long, device=y.device)
    counts.scatter_add_(1, index, torch.ones_like(index))
    return counts.view(-1, classes, classes)


def macro_f1(counts: torch.Tensor) -> torch.Tensor:
    """[K] from confusion counts [K, C, C] (sklearn's f1_score, average='macro')."""
    tp = counts.diagonal(dim1=1, dim2=2).double()
    seen = (counts.sum(2) + counts.sum(1)).double()  # 2 tp + fp + fn
    present = seen > 0
    f1 = torch.where(present, 2 * tp / seen.clamp(min=1), 0.0)
    return f1.sum(1) / present.sum(1)


def balanced_accuracy(counts: torch.Tensor) -> torch.Tensor:
    """[K] from confusion counts [K, C, C] (sklearn's balanced_accuracy_score)."""
    tp = counts.diagonal(dim1=1, dim2=2).double()
    actual = counts.sum(2).double()
    present = actual > 0
    recall = torch.where(present, tp / actual.clamp(min=1), 0.0)
    return recall.sum(1) / present.sum(1)


def binary_scores(score: torch.Tensor, positive: torch.Tensor) -> dict[str, torch.Tensor]:
    """ROC AUC and PR AUC [K] of scores [K, n] against positive [K, n] (bool), members in
    blocks (sorting K x n at once would hold several int64 copies of it)."""
    block = max(1, BLOCK_ELEMENTS // max(1, score.shape[1]))
    starts = range(0, len(score), block)
    parts = [_aucs(score[i : i + block], positive[i : i + block]) for i in starts]
    return {name: torch.cat([p[name] for p in parts]) for name in ("roc_auc", "pr_auc")}


def _aucs(score: torch.Tensor, positive: torch.Tensor) -> dict[str, torch.Tensor]:
    n = score.shape[1]
    s, order = score.sort(1)
    pos = torch.gather(positive, 1, order)
    below = torch.searchsorted(s, s, side="left")  # rows scored lower than each row
    upto = torch.searchsorted(s, s, side="right")  # ... lower or the same
    n_pos = pos.sum(1)
    n_neg = n - n_pos
    # 1-based ranks, ties averaged: (below + upto + 1) / 2, summed over the positives in int64
    rank_sum = ((below + upto + 1) * pos).sum(1).double() / 2
    u = rank_sum - n_pos.double() * (n_pos.double() + 1) / 2
    roc = u / (n_pos * n_neg).double()
    # precision at each row's threshold (score >= its own): positives at or above / rows
    pos_below = torch.nn.functional.pad(pos.cumsum(1), (1, 0)).gather(1, below)
    precision = (n_pos[:, None] - pos_below).double() / (n - below).double()
    ap = (precision * pos).sum(1) / n_pos.double()
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=score.device)
    return {
        "roc_auc": torch.where((n_pos > 0) & (n_neg > 0), roc, nan),
        "pr_auc": torch.where(n_pos > 0, ap, nan),
    }


class ClassTally:
    """Confusion counts (and, with two classes, scores) of K models' outputs, added chunk
    by chunk; `metrics` gives each model's macro F1, balanced accuracy and AUCs."""

    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None  # [K, C, C]
        self.scores: list[torch.Tensor] = []  # [K, rows] per chunk: class 1's log-odds
        self.positive: list[torch.Tensor] = []  # [K, rows] per chunk: y == 1

    def add(self, out: torch.Tensor, y: torch.Tensor) -> None:
        """Outputs [K, rows, C] and labels [K, rows] of one chunk."""
        classes = out.shape[2]
        counts = confusion(out.argmax(2), y, classes)
        self.counts = counts if self.counts is None else self.counts + counts
        if classes == 2:
            self.scores.append((out[..., 1] - out[..., 0]).float())
            self.positive.append(y == 1)

    def metrics(self) -> dict[str, torch.Tensor]:
        """macro_f1, balanced_acc, and with two classes roc_auc and pr_auc: each [K]."""
        assert self.counts is not None, "nothing tallied"
        values = {"macro_f1": macro_f1(self.counts), "balanced_acc": balanced_accuracy(self.counts)}
        if self.scores:
            values |= binary_scores(torch.cat(self.scores, 1), torch.cat(self.positive, 1))
        return values
