"""The data set a config trains on, on its device: loaded once and cached per process.

One loader per problem (house.py, mnist.py, table.py, images.py) reads its files into a
`Dataset` on the CPU; this module picks the loader, caches the result by what identifies
the data (a changed file is read again) and moves it to the device.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from hypertui.engine.core.config import Config
from hypertui.engine.core.paths import expand_user
from hypertui.engine.data.dataset import SPLIT_SEED, Dataset
from hypertui.engine.data.splits import SplitPlan


def default_data_dir() -> Path:
    """`$HYPERTUI_DATA`, else the user's cache folder (XDG), where MNIST is looked for."""
    if env := os.environ.get("HYPERTUI_DATA"):
        return Path(expand_user(env, f"$HYPERTUI_DATA = {env!r}"))
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hypertui" / "data"


def load_dataset(config: Config, device: torch.device, data_dir: Path | None = None) -> Dataset:
    """The data set a config trains on, on `device`, with `train_samples` applied."""
    ds = _on_device(_data_key(config, data_dir), str(device))
    if config.train_samples is not None and config.train_samples < len(ds.train):
        ds = Dataset(**{**ds.__dict__, "train": ds.train.head(config.train_samples)})
    return ds


def shapes(config: Config) -> tuple[tuple[int, ...], int]:
    """(one example's input shape, number of classes or 0) of the config's data set."""
    ds = _on_cpu(_data_key(config, None))
    return tuple(ds.train.x.shape[1:]), len(ds.classes)


def target_stats(config: Config) -> tuple[float, float]:
    """(mean, std) that turn a table's standardised target back into its own units."""
    if config.problem != "table":
        return 0.0, 1.0
    ds = _on_cpu(_data_key(config, None))
    return ds.target_mean, ds.target_std


def class_names(config: Config) -> tuple[str, ...]:
    """A classification table's or image set's class names, in label order; () otherwise."""
    if config.problem not in ("table", "images"):
        return ()
    return _on_cpu(_data_key(config, None)).classes


def _data_key(config: Config, data_dir: Path | None) -> tuple:
    plan = SplitPlan.of(config)
    if config.problem == "table":
        # a changed file is read again
        stamp = tuple(_stamp(p) for p in (config.path, plan.val_path, plan.test_path))
        return ("table", config.path, stamp, config.target, config.features, config.task, plan)
    if config.problem == "images":
        return ("images", config.path, _stamp(config.path), config.image_size, plan.seed)
    if config.problem == "house":
        return ("house", config.features, config.target_scale, plan)
    return ("mnist", str((data_dir or default_data_dir()).resolve()))


def _on_device(key: tuple, device: str) -> Dataset:
    return (_small_on_device if key[0] in SMALL else _large_on_device)(key, device)


def _on_cpu(key: tuple) -> Dataset:
    return (_small_on_cpu if key[0] in SMALL else _large_on_cpu)(key)


def _to_device(key: tuple, device: str) -> Dataset:
    return _on_cpu(key).to(torch.device(device))


def _load(key: tuple) -> Dataset:
    if key[0] == "table":
        from hypertui.engine.data.table import load_table

        return load_table(key[1], key[3], key[4], key[5], key[6])
    if key[0] == "images":
        from hypertui.engine.data.images import load_images

        return load_images(Path(key[1]), key[3], seed=key[4])
    if key[0] == "house":
        from hypertui.engine.data.house import load_house

        return load_house(features=key[1], target_scale=key[2], plan=key[3])
    from hypertui.engine.data.mnist import load_mnist

    return load_mnist(Path(key[1]), seed=SPLIT_SEED)


# House and tables are small and come in folds (a population of 5 folds x 3 configs asks
# for 5 data sets at once): more of them are kept than of MNIST and image sets.
SMALL = ("house", "table")
_small_on_cpu = functools.lru_cache(maxsize=32)(_load)
_small_on_device = functools.lru_cache(maxsize=32)(_to_device)
_large_on_cpu = functools.lru_cache(maxsize=4)(_load)
_large_on_device = functools.lru_cache(maxsize=4)(_to_device)


def _stamp(path: str) -> int:
    if not path:
        return 0
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0
