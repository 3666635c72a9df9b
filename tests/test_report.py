"""The headless tables: they fit the terminal without cutting a number."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from hypertui.engine.analysis.compare import compare
from hypertui.engine.store.store import Store
from hypertui.tui.text.report import comparison_table, sparkline
from tests.fakes import make_sweep


def render(table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()


def words(text: str) -> str:
    return " ".join(text.split())  # the caption wraps anywhere


def test_at_80_columns_no_number_is_cut_and_dropped_columns_are_named(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    make_sweep(store, "5eed0001", gaussian=True)
    comp = compare(store.runs("5eed0001"), ["lr", "activation"], "house")
    text = render(comparison_table(comp, width=80), 80)
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "0.1420±0.0028" in text  # the best group's val_mse, whole, to the std's digits
    assert "not shown at this width" in words(text)
    wide = render(comparison_table(comp, width=200), 200)
    assert "not shown" not in wide and "val_nll" in wide


def test_a_long_comparison_shows_the_top_rows_and_says_how_many_more(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    make_sweep(store, "5eed0001")
    comp = compare(store.runs("5eed0001"), ["lr", "activation"], "house")
    text = words(render(comparison_table(comp, width=120, top=2), 120))
    assert "4 more groups" in text and "--all" in text
    assert "4 more" not in render(comparison_table(comp, width=120, top=None), 120)


def test_a_sparkline_of_a_diverged_curve_skips_inf_and_nan():
    assert sparkline([1.0, 0.5, float("inf"), float("nan"), 0.25]) == "█▃▁"


def test_a_mean_keeps_its_leading_digits_beside_its_std():
    from hypertui.engine.analysis.compare import Stat
    from hypertui.engine.analysis.export import mean_std

    # 100,300 ± 3,300 printed as 1e+05±3e+03: the mean rounded to the std's one digit.
    runs_like = Stat(100300.0, 3300.0, 2, 97966.5, 102633.5)
    assert mean_std(runs_like, 3, 2, " ± ") == "100300 ± 3300"
    assert mean_std(Stat(0.08234, 0.0041, 3, 0.08, 0.09)) == "0.08234 ± 0.0041"
    assert mean_std(Stat(1.003e7, 3.3e5, 2, 9e6, 1.1e7), 3, 2) == "1.003e7 ± 3.3e5"
    group = Stat(100300.0, 3300.0, 2, 97966.5, 102633.5)
    table = comparison_table_of(group)
    out = io.StringIO()
    Console(file=out, width=80).print(table)
    assert "100300±3300" in out.getvalue()


def comparison_table_of(stat):
    from hypertui.engine.analysis.compare import Comparison, Group

    group = Group({"lr": 0.1}, ("r1", "r2"), 2, 2, 0, 0, 0, {"val_mse": stat})
    return comparison_table(Comparison(["lr"], ["val_mse"], "val_mse", False, [group]), width=80)


NOT_FOR_TABLES = {"channels", "target_scale", "image_size", "model_args", "prune_from"}


def test_a_runs_config_shows_and_exports_only_the_fields_that_apply(tmp_path):
    import pandas as pd

    from hypertui.engine.analysis.export import runs_csv
    from hypertui.tui.app.screens.detail import config_table

    store = Store(tmp_path / "s.sqlite")
    house = store.runs(make_sweep(store, "5eed0001"))[0]
    store.close()
    table = {**house.config, "problem": "table", "path": "/data/prices.csv", "features": []}
    run = dataclasses.replace(house, config=table | {"target": "SalePrice", "task": "regression"})
    shown = set(config_table(run).columns[0]._cells)
    exported = set(pd.read_csv(io.StringIO(runs_csv([run]))).columns)
    for fields in (shown, exported):
        assert {"hidden", "activation", "path", "target", "task", "features"} <= fields
        assert not NOT_FOR_TABLES & fields
    mnist = {**house.config, "problem": "mnist", "model": "cnn"}
    cnn = dataclasses.replace(house, config=mnist, id="cnn-run")
    shown = set(config_table(cnn).columns[0]._cells)
    assert "channels" in shown and not {"hidden", "features", "path", "target_scale"} & shown
    columns = list(pd.read_csv(io.StringIO(runs_csv([house, cnn]))).columns)
    assert columns[:4] == ["problem", "model", "hidden", "channels"]  # fields first, in order


def test_show_lists_only_the_config_fields_that_apply(tmp_path, capsys):
    import re

    from hypertui.tui.cli.main import main

    store = Store(tmp_path / "s.sqlite")
    make_sweep(store, "5eed0001")  # house MLP runs
    run_id = store.runs("5eed0001")[0].id
    store.close()
    assert main(["show", run_id, "--store", str(tmp_path / "s.sqlite")]) == 0
    out = capsys.readouterr().out
    fields = set(re.findall(r"^ (\w+) ", out.split("metrics", 1)[0], re.M))  # config and info
    assert {"hidden", "target_scale", "features", "lr"} <= fields
    assert not {"channels", "image_size", "path", "target", "task", "model_args"} & fields
