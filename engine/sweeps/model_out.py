"""The model out of a run: its best weights as a module, a file, or predictions.

    model = hypertui.load_model("3f2a9c")              # an nn.Module, weights loaded, eval()
    hypertui export-model 3f2a9c --out house.safetensors    (+ house.json: config, encoding)
    hypertui predict 3f2a9c new-rows.csv --out preds.csv

Weights come from the run's best checkpoint (engine/training/checkpoint.py). A table model
predicts new rows with the encoding fitted at training (data/table.py:encode): medians for
missing numbers, categories training never saw as all zeros, said in one line each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError, HypertuiError, first_line
from hypertui.engine.core.paths import checkpoints_dir, export_path
from hypertui.engine.core.records import RunRow
from hypertui.engine.store.store import Store
from hypertui.engine.training import checkpoint
from hypertui.engine.training.models import build_model

PREDICT_CHUNK = 65_536  # rows a forward pass takes at once


@dataclass
class Best:
    run: RunRow
    weights: dict[str, torch.Tensor]
    meta: dict[str, Any]  # config, epoch, metrics, test, preprocessing (tables)


def best_of(store: Store, run_id: str) -> Best:
    """A run's best weights, or a HypertuiError that says why there are none."""
    run = store.run(run_id)
    path = checkpoints_dir(run.sweep_id, run.id) / checkpoint.BEST
    if not path.exists():
        keep = run.config.get("keep", "best")
        why = (
            f"its config says keep = {keep!r}"
            if "best" not in str(keep)
            else f"it is {run.status}"
            if run.status not in ("finished", "diverged", "pruned")
            else "it trained before checkpoints, in a population, or outside a sweep"
        )
        raise HypertuiError(f"run {run.id} kept no weights ({why})")
    weights, meta = checkpoint.read(path)
    return Best(run, weights, meta)


def load_model(run_id: str, store: Store | str | Path | None = None) -> torch.nn.Module:
    """The run's model with its best weights loaded, in eval mode."""
    best = best_of(_store(store), run_id)
    return _module(best)


def export_model(store: Store, run_id: str, out: Path | None = None) -> tuple[Path, Path]:
    """Write the run's best weights (safetensors) and beside them a JSON of its config,
    best epoch, metrics and, for a table, the fitted encoding; return both paths."""
    best = best_of(store, run_id)
    _module(best)  # the weights load into the config's model: checked before writing
    sweep = store.sweep(best.run.sweep_id)
    path = Path(out) if out else export_path(sweep.preset, best.run.id, "model", "safetensors")
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    sidecar = path.with_suffix(".json")
    info = {"run": best.run.id, "sweep": sweep.id, "preset": sweep.preset, **best.meta}
    try:
        checkpoint.write(path, best.weights, best.meta)
        sidecar.write_text(json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        raise HypertuiError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path, sidecar


@dataclass
class Predictions:
    path: Path
    rows: int
    notes: list[str]  # what the encoding met (imputed, unseen categories)
    error: str  # the error against the target column, when the CSV has it


def predict(store: Store, run_id: str, data: Path, out: Path) -> Predictions:
    """The run's predictions for a CSV's rows, written as the CSV plus a `prediction`
    column (and one probability column per class for a classifier)."""
    import numpy as np
    import pandas as pd

    from hypertui.engine.data.sources import read_table
    from hypertui.engine.data.table import encode

    best = best_of(store, run_id)
    prep = best.meta.get("preprocessing") or {}
    if not prep:
        problem = best.meta["config"].get("problem")
        raise HypertuiError(f"run {best.run.id} is a {problem} model: predict takes table models")
    table = read_table(str(data))
    missing = [c["name"] for c in prep["inputs"] if c["name"] not in table.columns]
    if missing:
        raise HypertuiError(
            f"{data}: no column {', '.join(map(repr, missing))} (the model's inputs)"
        )
    x, met = encode(table, prep["inputs"])
    model = _module(best)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        out_rows = [model(xt[i : i + PREDICT_CHUNK]) for i in range(0, len(xt), PREDICT_CHUNK)]
        raw = torch.cat(out_rows) if out_rows else torch.zeros(0, 1)
    frame = table.copy()
    target = prep["target"]
    error = ""
    if prep["task"] == "classification":
        probs = torch.softmax(raw, 1).numpy()
        classes = prep["classes"]
        frame["prediction"] = [classes[i] for i in probs.argmax(1)]
        for i, name in enumerate(classes):
            frame[f"p({name})"] = probs[:, i]
        if target in table.columns:
            truth = table[target].astype("string")
            known = truth.notna()
            acc = float((frame["prediction"][known] == truth[known]).mean())
            error = f"accuracy {acc:.4g} on the {int(known.sum())} rows with a {target!r}"
    else:
        frame["prediction"] = raw[:, 0].numpy() * prep["target_std"] + prep["target_mean"]
        if target in table.columns:
            truth = pd.to_numeric(table[target], errors="coerce")
            known = truth.notna()
            mse = float(np.mean((frame["prediction"][known] - truth[known]) ** 2))
            error = f"mse {mse:.6g} on the {int(known.sum())} rows with a {target!r}"
    notes = []
    if met["imputed"]:
        notes.append(f"{met['imputed']} missing numbers imputed with the training median")
    for name, count in met["unseen"].items():
        notes.append(f"{count} values of {name!r} are categories training never saw: all zeros")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    except OSError as exc:
        raise HypertuiError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return Predictions(out, len(frame), notes, error)


def _module(best: Best) -> torch.nn.Module:
    try:
        shape, out = best.meta["shapes"]
        model = build_model(make_config(best.meta["config"]), (tuple(shape), out))
        model.load_state_dict(best.weights)
    except (ConfigError, RuntimeError, KeyError) as exc:
        raise HypertuiError(
            f"run {best.run.id}: its checkpoint does not fit its model ({first_line(exc)})"
        ) from None
    return model.eval()


def _store(store: Store | str | Path | None) -> Store:
    if isinstance(store, Store):
        return store
    from hypertui.engine.core.paths import default_store_path

    return Store(Path(store) if store else default_store_path())
