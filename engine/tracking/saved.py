"""`run.save(state)` and `run.restore()`: your own loop's checkpoint, on the mechanism our
runs use (engine/training/checkpoint.py: safetensors, atomic, no pickle).

    with hypertui.init(name="cifar", config={"lr": 3e-4, "seed": 0}) as run:
        state = run.restore()                    # None, or what the last run saved
        if state:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        for epoch in range(state["epoch"] + 1 if state else 0, epochs):
            ...
            run.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "epoch": epoch})

A state is tensors, numbers, strings, None and lists, tuples and dicts of them (a
state_dict's int keys stay ints). `restore` finds the newest run of the same group and
config that did not finish (killed, Ctrl-C, an exception) and saved something; this run
takes its checkpoint over, so a run killed again resumes from wherever it got. A run that
finishes drops its checkpoint: it was for resuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypertui.engine.core.errors import HypertuiError

LAST = "last.safetensors"  # checkpoint.LAST, named here without importing torch


def flatten(state: Any, tensors: dict, path: str = "") -> Any:
    """The state as JSON, its tensors moved into `tensors` (named by their path)."""
    import torch

    if isinstance(state, torch.Tensor):
        name = path or "value"
        tensors[name] = state
        return {"x": name}
    if isinstance(state, dict):
        pairs = []
        for key, value in state.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"key {key!r} at {path or 'the top'}: keys are strings or ints")
            pairs.append([key, flatten(value, tensors, f"{path}.{key}" if path else str(key))])
        return {"d": pairs}
    if isinstance(state, (list, tuple)):
        items = [flatten(v, tensors, f"{path}[{i}]") for i, v in enumerate(state)]
        return {"t" if isinstance(state, tuple) else "l": items}
    if state is None or isinstance(state, (bool, int, float, str)):
        return {"v": state}
    kind = type(state).__name__
    raise TypeError(
        f"{path or 'the state'} is a {kind}: a state holds tensors, numbers, strings and "
        "lists or dicts of them"
    )


def unflatten(skeleton: Any, tensors: dict) -> Any:
    if "x" in skeleton:
        return tensors[skeleton["x"]]
    if "d" in skeleton:
        return {key: unflatten(value, tensors) for key, value in skeleton["d"]}
    if "l" in skeleton:
        return [unflatten(v, tensors) for v in skeleton["l"]]
    if "t" in skeleton:
        return tuple(unflatten(v, tensors) for v in skeleton["t"])
    return skeleton["v"]


def save(folder: Path, state: dict) -> int:
    """Write the state as the run's checkpoint; the bytes written."""
    from hypertui.engine.training.checkpoint import write

    tensors: dict = {}
    skeleton = flatten(state, tensors)
    return write(folder / LAST, tensors, {"state": skeleton})


def load(path: Path) -> dict:
    from hypertui.engine.training.checkpoint import read

    tensors, meta = read(path)
    try:
        return unflatten(meta["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise HypertuiError(f"{path}: not a saved state ({exc})") from None
