"""Cross-validation folds and the split options: which rows go where, folds training as
members of one population (each as its single run), and what a bad split is told."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from hypertui.engine.analysis.compare import compare_sweep, spread_note
from hypertui.engine.analysis.significance import versus_best
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Finished
from hypertui.engine.core.grouping import population_key
from hypertui.engine.data.sources import checked_config
from hypertui.engine.data.splits import choose_parts, fold_parts, random_parts
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run
from hypertui.tui.text.report import comparison_table


def penguins(path, n: int = 120) -> str:
    """A table as a user's: text columns, missing values, three unequal classes."""
    rng = np.random.default_rng(1)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n, p=[0.45, 0.35, 0.2])
    frame = pd.DataFrame(
        {
            "species": species,
            "island": rng.choice(["Biscoe", "Dream", None], n, p=[0.5, 0.45, 0.05]),
            "bill": rng.normal(44, 5, n) + (species == "Gentoo") * 4,
            "mass": rng.normal(4200, 800, n),
            "set": rng.choice(["train", "val", "test"], n, p=[0.7, 0.15, 0.15]),
        }
    )
    frame.loc[[3, 17], "bill"] = np.nan
    frame.to_csv(path, index=False)
    return str(path)


def test_folds_cover_the_rows_outside_the_test_split_once_in_equal_stratified_parts():
    labels = np.array(["a"] * 50 + ["b"] * 29 + ["c"] * 21)
    base = random_parts(100, seed=3)
    folds = [fold_parts(base, 4, f, labels)[0] for f in range(4)]
    vals = [set(v.tolist()) for _, v, _ in folds]
    rest = set(np.concatenate(base[:2]).tolist())
    left = rest - set().union(*vals)
    assert len(left) == len(rest) % 4  # the leftovers of equal folds test...
    for train, val, test in folds:
        assert set(test.tolist()) == set(base[2].tolist()) | left  # ...with the same test
        assert set(train.tolist()) | set(val.tolist()) | left == rest
        assert not set(train.tolist()) & set(val.tolist())
        assert len(val) == len(vals[0]) and len(train) == len(folds[0][0])
    assert sum(len(v) for v in vals) == len(rest) - len(left)
    for cls in "abc":  # stratified: each fold holds its share of every class, +-1
        counts = [int((labels[list(v)] == cls).sum()) for v in vals]
        assert max(counts) - min(counts) <= 1, (cls, counts)


def test_a_fold_count_that_a_class_or_the_rows_cannot_fill_is_refused():
    base = random_parts(20, seed=0)
    with pytest.raises(ConfigError, match="at most 17 folds"):
        fold_parts(base, 18, 0)
    labels = np.array(["x"] * 17 + ["y"] * 3)
    with pytest.raises(ConfigError, match=r"class 'y' has \d rows outside the test split"):
        fold_parts(base, 5, 0, labels)


def test_split_column_and_separate_files_put_the_rows_where_they_say(tmp_path):
    parts, note = choose_parts(
        5, 0, column="set", column_values=["Train", " val", "test", None][:3] + ["train", "TEST"]
    )
    assert [p.tolist() for p in parts] == [[0, 3], [1], [2, 4]] and "column 'set'" in note
    with pytest.raises(ConfigError, match="holds an empty cell, 'dev'"):
        choose_parts(3, 0, column="set", column_values=["train", None, "dev"])
    parts, note = choose_parts(20, 0, n_test=5)  # a test file: the main file trains/validates
    assert parts[2].tolist() == list(range(20, 25)) and len(parts[0]) + len(parts[1]) == 20
    assert "test rows from their own file" in note


def test_table_split_options_are_checked_when_the_preset_loads(tmp_path):
    path = penguins(tmp_path / "p.csv")
    table = {"problem": "table", "path": path, "target": "species"}
    (tmp_path / "test.csv").write_text("species,bill\nAdelie,40\n")
    bad = [
        ({"folds": 40}, "class 'Chinstrap' has"),
        ({"split_column": "sets"}, "did you mean 'set'"),
        ({"split_column": "island"}, "its values are train, val and test"),
        ({"test_path": str(tmp_path / "test.csv")}, "lacks the columns island, mass"),
        ({"folds": 3, "val_path": path}, "leave val_path out"),
        ({"folds": 3, "fold": 3}, "fold = 3 is not one of folds = 3"),
    ]
    for extra, message in bad:
        with pytest.raises(ConfigError, match=message):
            checked_config({**table, **extra})
    with pytest.raises(ConfigError, match="cross-validation is for the house and table"):
        checked_config({"problem": "mnist", "folds": 2})
    with pytest.raises(ConfigError, match="set folds = K in \\[config\\]"):
        parse_preset(
            'description = "d"\n[config]\nproblem = "house"\n[sweep]\nfolds = [1, 5]\n', "f.toml"
        )


def table_folds(path, folds=3, **more):
    base = {"problem": "table", "path": path, "target": "species", "hidden": [8], "lr": 0.01}
    base |= {"epochs": 2, "batch_size": 16, "optimizer": "adam", "folds": folds, **more}
    return [checked_config({**base, "fold": f}) for f in range(folds)]


@pytest.mark.parametrize("target", ["species", "mass"])
def test_folds_train_as_members_of_one_population_each_as_its_single_run(tmp_path, target):
    """Each fold standardises with its own training rows (a regression target too: its
    metrics come back in its units by its fold's std) and ends as its run alone."""
    path = penguins(tmp_path / "p.csv")
    configs = table_folds(path, target=target, **({"loss": "mse"} if target == "mass" else {}))
    assert len({population_key(c) for c in configs}) == 1  # folds: one population
    members = [Member(f"m{f}", c) for f, c in enumerate(configs)]
    pop = [e for e in run_population(members) if isinstance(e, Finished)]
    metric = "val_acc" if target == "species" else "val_mse"
    alone = [[e for e in run(c) if isinstance(e, Finished)][0] for c in configs]
    for p, a in zip(pop, alone, strict=True):
        assert p.final[metric] == pytest.approx(a.final[metric], rel=1e-4, abs=1e-6)
        assert p.test[f"test_{metric[4:]}"] == pytest.approx(a.test[f"test_{metric[4:]}"], rel=1e-4)
        assert p.final["val_loss"] == pytest.approx(a.final["val_loss"], rel=1e-4)
    assert len({p.final["val_loss"] for p in pop}) == 3  # three folds, three validation sets


def test_a_sweep_runs_every_fold_of_every_seed_and_groups_them(tmp_path):
    path = penguins(tmp_path / "p.csv")
    preset = parse_preset(
        f'description = "cv"\nseeds = 2\n[config]\nproblem = "table"\npath = "{path}"\n'
        'target = "species"\nhidden = [8]\nepochs = 1\nbatch_size = 16\nfolds = 3\n'
        "[sweep]\nlr = [0.01, 0.001]\n",
        "cv.toml",
    )
    assert preset.n_trials == 12
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset)
    list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    assert sorted((r.point["lr"], r.replicate) for r in runs) == sorted(
        (lr, (s, f)) for lr in (0.01, 0.001) for s in (0, 1) for f in range(3)
    )
    assert {r.status for r in runs} == {"finished"}
    comp = compare_sweep(store.sweep(sweep_id), runs)
    assert [g.stats["val_acc"].n for g in comp.groups] == [6, 6] and comp.folds == 3
    assert "2 seeds x 3 folds" in spread_note(comp)
    console = Console(width=200, record=True)
    console.print(comparison_table(comp))
    assert "mean±std over 2 seeds x 3 folds" in console.export_text()  # the CLI's caption
    # significance blocks by (seed, fold): 6 blocks of 2 groups, not 2 seeds' last values
    versus = versus_best(comp, runs)[1]
    assert (versus.n, versus.df, versus.test) == (6, 5, "tukey, seed blocks")
