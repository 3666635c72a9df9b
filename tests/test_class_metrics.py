"""Macro F1, balanced accuracy, ROC AUC and PR AUC: against plain numpy references (the
conventions of scikit-learn, which is no dependency of ours), chunked as a population
evaluates them, and the same for a member as for its single run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hypertui.engine.core.config import ConfigError, make_config
from hypertui.engine.core.objective import objective
from hypertui.engine.training.class_metrics import ClassTally
from hypertui.engine.training.ledger import Ledger, diverged

# -- references, written out as the definitions read --------------------------------------


def ref_macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's f1_score(average='macro', zero_division=0): the labels in y or pred."""
    scores = []
    for c in np.union1d(y, pred):
        tp = np.sum((pred == c) & (y == c))
        precision = tp / np.sum(pred == c) if np.sum(pred == c) else 0.0
        recall = tp / np.sum(y == c) if np.sum(y == c) else 0.0
        both = precision + recall
        scores.append(2 * precision * recall / both if both else 0.0)
    return float(np.mean(scores))


def ref_balanced_acc(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def ref_roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney: the share of (positive, negative) pairs ranked right, ties half."""
    p, n = score[positive], score[~positive]
    if not len(p) or not len(n):
        return math.nan
    pairs = p[:, None] - n[None, :]
    return float(np.mean((pairs > 0) + 0.5 * (pairs == 0)))


def ref_average_precision(score: np.ndarray, positive: np.ndarray) -> float:
    """Sum over thresholds, high to low, of (R_n - R_{n-1}) P_n."""
    if not positive.any():
        return math.nan
    ap, last_recall = 0.0, 0.0
    for t in np.unique(score)[::-1]:
        chosen = score >= t
        recall = np.sum(chosen & positive) / np.sum(positive)
        ap += (recall - last_recall) * np.sum(chosen & positive) / np.sum(chosen)
        last_recall = recall
    return float(ap)


def tally(out: torch.Tensor, y: torch.Tensor, chunk: int | None = None) -> dict[str, list]:
    t = ClassTally()
    step = chunk or y.shape[1]
    for i in range(0, y.shape[1], step):
        t.add(out[:, i : i + step], y[:, i : i + step])
    return {k: v.tolist() for k, v in t.metrics().items()}


def assert_matches_reference(out: torch.Tensor, y: torch.Tensor, got: dict[str, list]) -> None:
    for k in range(out.shape[0]):
        o, t = out[k].numpy(), y[k].numpy()
        pred = o.argmax(1)
        assert got["macro_f1"][k] == pytest.approx(ref_macro_f1(t, pred), abs=1e-12)
        assert got["balanced_acc"][k] == pytest.approx(ref_balanced_acc(t, pred), abs=1e-12)
        if o.shape[1] == 2:
            score = o[:, 1] - o[:, 0]
            for name, ref in (("roc_auc", ref_roc_auc), ("pr_auc", ref_average_precision)):
                want = ref(score, t == 1)
                assert got[name][k] == pytest.approx(want, abs=1e-12, nan_ok=True), name


def test_binary_scores_with_ties_match_the_references_whole_and_in_chunks():
    g = torch.Generator().manual_seed(0)
    # scores on a coarse grid: many ties, within a class and across the two
    out = (torch.randint(0, 6, (4, 61, 2), generator=g) / 2).float()
    y = (torch.rand(4, 61, generator=g) < 0.37).long()  # imbalanced, as 63/37
    whole = tally(out, y)
    assert_matches_reference(out, y, whole)
    assert tally(out, y, chunk=7) == whole  # a population's chunks add up to the same
    assert sorted(whole) == ["balanced_acc", "macro_f1", "pr_auc", "roc_auc"]


def test_many_classes_one_absent_from_the_split_one_never_predicted():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(3, 40, 5, generator=g)
    out[..., 4] -= 100  # class 4 is never predicted ...
    y = torch.randint(0, 4, (3, 40), generator=g)  # ... and never true: left out of the mean
    y[:, 0] = 3
    out[:, 0] = torch.tensor([0.0, 0, 0, -9, -100])  # class 3 true here, never predicted
    out[..., 3] -= 100
    got = tally(out, y, chunk=9)
    assert_matches_reference(out, y, got)
    assert "roc_auc" not in got  # AUCs need two classes
    # F1 averages over the 4 classes seen (3 of them > 0): class 4 does not count as a 0
    assert all(0 < f <= 3 / 4 for f in got["macro_f1"])


def test_a_split_of_one_class_has_no_auc_and_is_no_divergence():
    out = torch.randn(2, 10, 2)
    got = tally(out, torch.zeros(2, 10, dtype=torch.long))
    assert math.isnan(got["roc_auc"][0]) and math.isnan(got["pr_auc"][0])
    ones = tally(out, torch.ones(2, 10, dtype=torch.long))
    assert math.isnan(ones["roc_auc"][0]) and ones["pr_auc"] == [1.0, 1.0]
    metrics = {"val_loss": 0.5, "val_acc": 0.5, "val_roc_auc": math.nan, "val_pr_auc": math.nan}
    assert diverged(0.5, metrics, 0.7) == ""
    assert diverged(0.5, {**metrics, "val_macro_f1": math.nan}, 0.7)  # but F1 is always defined


def test_a_perfect_and_a_reversed_ranking():
    y = torch.tensor([[0, 0, 1, 1, 1]])
    score = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5]])
    out = torch.stack([torch.zeros_like(score), score], 2)
    assert tally(out, y)["roc_auc"] == [1.0] and tally(out, y)["pr_auc"] == [1.0]
    assert tally(-out, y)["roc_auc"] == [0.0]


# -- ranking by them ------------------------------------------------------------------------


@pytest.fixture
def binary_table(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    label = (x[:, 0] + rng.normal(size=200) > 0.4).astype(int)  # ~35% ones
    path = tmp_path / "binary.csv"
    rows = ["a,b,c,label", *(f"{r[0]},{r[1]},{r[2]},{v}" for r, v in zip(x, label, strict=True))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_ranking_metric_and_its_direction(binary_table):
    from hypertui.engine.data.sources import checked_config

    table = {"problem": "table", "path": str(binary_table), "target": "label"}
    config = checked_config(table, metric="val_roc_auc")
    assert config.main_metric == "val_roc_auc" and Ledger(config.main_metric).higher_is_better
    assert not Ledger(make_config(metric="val_loss").main_metric).higher_is_better
    goal = objective("table", [SimpleNamespace(config=config.to_dict())])  # a run, as stored
    assert (goal.main, goal.higher) == ("val_roc_auc", True)
    assert goal.metrics[:5] == (
        "val_roc_auc",
        "best_val_roc_auc",
        "test_roc_auc",
        "last_test_roc_auc",
        "val_acc",
    )
    assert objective("mnist", []).metrics[0] == "val_acc"  # the default set stays as it was


@pytest.mark.parametrize(
    ("values", "said"),
    [
        (
            {"problem": "mnist", "metric": "val_roc_auc"},
            "needs exactly two classes; this data has 10",
        ),
        ({"metric": "val_macro_f1"}, "it scores classes; this problem is a regression"),
        ({"problem": "mnist", "metric": "val_mse"}, "this problem predicts classes"),
        ({"metric": "val_nll"}, "needs loss = 'gaussian_nll'"),
        ({"problem": "mnist", "metric": "macro_f1"}, "did you mean 'val_macro_f1'"),
    ],
)
def test_a_metric_that_cannot_rank_is_one_line(values, said):
    with pytest.raises(ConfigError, match="cannot rank these runs") as exc:
        make_config(values)
    assert said in str(exc.value) and "\n" not in str(exc.value)


def test_roc_auc_of_a_three_class_table_is_refused(tmp_path):
    from hypertui.engine.data.sources import checked_config

    path = tmp_path / "three.csv"
    path.write_text("a,kind\n" + "".join(f"{i},{'xyz'[i % 3]}\n" for i in range(30)))
    table = {"problem": "table", "path": str(path), "target": "kind"}
    assert checked_config(table, metric="val_macro_f1").main_metric == "val_macro_f1"
    with pytest.raises(ConfigError, match="two classes; this data has 3"):
        checked_config(table, metric="val_pr_auc")


def test_a_member_scores_as_its_single_run(binary_table, monkeypatch):
    """One population evaluated in chunks of a few rows, against each member's own model."""
    import hypertui.engine.training.stacked as stacked
    from hypertui.engine.data.load import load_dataset
    from hypertui.engine.data.sources import checked_config
    from hypertui.engine.training.losses import evaluate
    from hypertui.engine.training.models import build_model

    base = {"problem": "table", "path": str(binary_table), "target": "label", "hidden": [6]}
    configs = [checked_config(base, seed=s, activation=a) for s, a in ((0, "relu"), (1, "tanh"))]
    data = load_dataset(configs[0], torch.device("cpu"))
    model = stacked.stacked_model(
        [stacked.Member(f"m{i}", c) for i, c in enumerate(configs)], "cpu"
    )
    monkeypatch.setattr(stacked, "EVAL_ELEMENTS", 200)  # a few rows a chunk
    members, _ = stacked.evaluate_members(configs[0], model, data.val.x, data.val.y, "val")
    for k, config in enumerate(configs):
        single = build_model(config, (data.val.x.shape[1:], 2))
        with torch.no_grad():
            for p, q in zip(single.parameters(), model.member_parameters(k), strict=True):
                p.copy_(q)
        alone = evaluate(config, single, data.val.x, data.val.y, "val")
        assert {"val_macro_f1", "val_balanced_acc", "val_roc_auc", "val_pr_auc"} <= set(alone)
        assert members[k] == pytest.approx(alone, rel=1e-5)


def test_export_and_detail_read_each_class_from_the_confusion_matrix():
    import dataclasses

    from hypertui.engine.analysis.classes import class_scores, positive_class
    from hypertui.engine.analysis.export import run_record
    from hypertui.engine.core.records import RunRow

    # 63/37: 'M' is class 1; 'B' never predicted wrongly, 'M' half missed
    analysis = {"confusion": [[63, 0], [18, 19]], "classes": ["B", "M"]}
    config = {"problem": "table", "task": "classification", "target": "diagnosis"}
    final = {"val_acc": 0.82, "val_macro_f1": 0.79, "val_roc_auc": 0.93, "val_pr_auc": 0.9}
    empty = {f.name: None for f in dataclasses.fields(RunRow)}
    run = RunRow(**empty | {"id": "r", "sweep_id": "s", "idx": 0, "seed": 0, "config": config})
    run = dataclasses.replace(run, final=final, best={}, test={}, analysis=analysis, point={})
    row = run_record(run)
    assert row["val_precision_M"] == 1.0 and row["val_recall_M"] == pytest.approx(19 / 37)
    assert row["val_precision_B"] == pytest.approx(63 / 81) and row["val_recall_B"] == 1.0
    assert row["val_macro_f1"] == 0.79 and row["val_roc_auc"] == 0.93
    assert "val_balanced_acc" not in row  # not reported by this (older) run: no column
    assert positive_class(analysis) == "M"
    never = class_scores({"confusion": [[5, 0], [3, 0]]})[1]  # class 1 never predicted
    assert never.precision is None and never.recall == 0.0 and never.f1 == 0.0
