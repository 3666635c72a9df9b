"""Per-class precision, recall and F1 from a run's stored confusion matrix.

A finished classification run keeps its validation confusion matrix (rows: true class,
columns: predicted) and, for a table or an image folder, its class names (analysis).
The run detail shows these scores beside the matrix and `hypertui export` writes them,
both from the matrix: nothing more needs storing.

A precision with no row predicted as the class, or a recall with no row of the class, is
0/0: None here (an empty cell, "-" on screen), where scikit-learn's zero_division=0 writes
0. Macro F1 (training/class_metrics.py) counts such a class's F1 as 0, as sklearn does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassScore:
    name: str  # the class name from the data, or its index
    precision: float | None  # of the rows predicted as the class, the share that are
    recall: float | None  # of the class's rows, the share predicted as it
    f1: float | None  # 2 tp / (2 tp + fp + fn); None when the class is neither true nor predicted
    support: int  # the class's rows in the split
    predicted: int  # rows predicted as the class


def class_labels(analysis: dict) -> list[str]:
    """The classes' names in label order: the data's when stored, else 0, 1, 2..."""
    confusion = analysis.get("confusion") or []
    names = [str(c) for c in analysis.get("classes") or []]
    return names if len(names) == len(confusion) else [str(i) for i in range(len(confusion))]


def class_scores(analysis: dict) -> list[ClassScore]:
    """Each class's scores on the validation split ([] without a confusion matrix)."""
    confusion = analysis.get("confusion") or []
    out = []
    for i, name in enumerate(class_labels(analysis)):
        tp = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        out.append(
            ClassScore(
                name,
                tp / predicted if predicted else None,
                tp / support if support else None,
                2 * tp / (support + predicted) if support + predicted else None,
                support,
                predicted,
            )
        )
    return out


def per_class_columns(analysis: dict) -> dict[str, float | None]:
    """`val_precision_<class>` and `val_recall_<class>` for each class, for a CSV row."""
    scores = class_scores(analysis)
    return {f"val_precision_{s.name}": s.precision for s in scores} | {
        f"val_recall_{s.name}": s.recall for s in scores
    }


def positive_class(analysis: dict) -> str | None:
    """The class that ROC AUC and PR AUC score as positive (class 1), with two classes."""
    labels = class_labels(analysis)
    return labels[1] if len(labels) == 2 else None
