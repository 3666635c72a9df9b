"""A run's weights on disk, in safetensors files (tensors and a JSON header: no pickle, so a
checkpoint can be shared and opened without running anyone's code).

Each run of a sweep has a folder, `checkpoints/SWEEP/RUN/` beside the store:

    best.safetensors   the weights of its best epoch (by its main metric), under the names
                       of its nn.Module's state_dict, with its config in the header
    last.safetensors   while it trains: everything a resume needs (weights, optimizer,
                       random generators, the best weights so far, the run's account and
                       curve), written every `save_every` epochs or
                       `save_minutes`, whichever comes first

What a run keeps when it ends is its config's `keep`: "best" (the default), "best+last" or
"none". A cancelled or failed run keeps its last checkpoint whatever `keep` says: a resume
goes on from there. Writes go to a temporary file renamed over the old one (a kill leaves
the old checkpoint or the new, never half of one). A full disk, a sweep's disk budget
reached or a damaged file never stops training: the run goes on without that checkpoint
and its notes say why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hypertui.engine.core.config import Config
from hypertui.engine.core.errors import HypertuiError, first_line

FORMAT = "hypertui-checkpoint/1"
# Bytes of checkpoints in each sweep's folder, as this process counts them: one walk of the
# folder, then what it writes and removes (a walk per write cost 6.8 ms a file at K=256).
_USED: dict[Path, int] = {}
COST_FACTOR = 100  # a checkpoint waits at least this many times what the last one took
BEST, LAST = "best.safetensors", "last.safetensors"


def write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> int:
    """Write `tensors` and `meta` atomically to `path`; return the bytes written."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # safetensors refuses tensors that share memory (tied weights) or are not contiguous
    plain = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    try:
        save_file(plain, tmp, metadata={"format": FORMAT, "meta": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and header of a checkpoint we wrote, or a HypertuiError that says in
    one line what is wrong with the file (missing, truncated, not ours)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    if not path.is_file():
        raise HypertuiError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        if header.get("format") != FORMAT:
            raise HypertuiError(f"{path}: not a hypertui checkpoint (no {FORMAT} header)")
        meta = json.loads(header["meta"])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise HypertuiError(f"{path}: unreadable checkpoint ({first_line(exc)})") from None
    return tensors, meta


def size_of(folder: Path) -> int:
    """Bytes of the checkpoints under `folder` (a sweep's, for its budget)."""
    total = 0
    for path in folder.rglob("*.safetensors"):
        try:
            total += path.stat().st_size
        except OSError:  # removed meanwhile
            pass
    return total


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as named tensors plus the JSON of the rest (its param groups
    and any non-tensor state), for `load_optimizer`."""
    state = opt.state_dict()
    tensors, plain = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict):
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, values in rest["plain"].items():
        state.setdefault(int(index), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


def progress_meta(ledger, step: int, samples: int, train_s: float, wall_s: float, history) -> dict:
    """Where a run stands, as its last checkpoint's header says it (single runs and
    population members alike): its ledger's account, its counters and its reports so far."""
    return {
        "ledger": ledger.state(),
        "step": step,
        "samples": samples,
        "train_s": train_s,
        "wall_s": wall_s,
        "history": [dataclasses.asdict(h) for h in history],
    }


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


@dataclass
class Checkpoints:
    """One run's checkpoints: when the last is due, writing both within the sweep's
    budget, and what the run keeps at its end. `folder` None: nothing is written."""

    folder: Path | None
    config: dict[str, Any]  # the run's config: a checkpoint of another config is not resumed
    keep: str = "best"
    every_epochs: int = 10
    every_s: float = 300.0
    budget_bytes: int = 2 * 1024**3  # for the sweep's folder, every run's files together
    notes: list[str] = field(default_factory=list)  # what went wrong, once each
    saved_epoch: int = 0
    saved_at: float = field(default_factory=time.monotonic)
    cost_s: float = 0.0  # what the last checkpoint took (a population's: all its files)

    @classmethod
    def plan(cls, config: Config, folder: Path | None) -> Checkpoints:
        """A run's checkpoints as its config asks (none without a folder)."""
        return cls(
            folder,
            config.to_dict(),
            keep=config.keep,
            every_epochs=config.save_every,
            every_s=60 * config.save_minutes,
            budget_bytes=int(config.disk_budget_mb * 1024**2),
        )

    @property
    def on(self) -> bool:
        return self.folder is not None

    def due(self, epoch: int, last_epoch: bool) -> bool:
        """Whether the last checkpoint is due after `epoch` (never after the last one:
        the run ends there)."""
        if not self.on or last_epoch:
            return False
        waited = time.monotonic() - self.saved_at
        if waited < COST_FACTOR * self.cost_s:  # checkpoints never take over 1% of the time
            return False
        return epoch - self.saved_epoch >= self.every_epochs or waited >= self.every_s

    def save_last(self, epoch: int, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        start = time.monotonic()
        self._write(LAST, tensors, {**meta, "config": self.config, "epoch": epoch})
        self.saved_epoch, self.saved_at = epoch, time.monotonic()
        self.cost_s = self.saved_at - start

    def save_best(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if self.on and "best" in self.keep:
            self._write(BEST, tensors, {**meta, "config": self.config})

    def resume(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The last checkpoint to go on from, or None (none, or one that cannot be used:
        the notes say why and the run starts from epoch 0)."""
        if not self.on or not (self.folder / LAST).exists():
            return None
        try:
            tensors, meta = read(self.folder / LAST)
        except HypertuiError as exc:
            self.notes.append(f"not resumed: {exc}; trained from the start")
            return None
        if meta.get("config") != self.config:
            self.notes.append("not resumed: its last checkpoint is of another config")
            return None
        self.saved_epoch = meta["epoch"]
        return tensors, meta

    def ended(self, status: str) -> None:
        """The run ended: its last checkpoint stays only where `keep` asks for it, or where
        a resume will need it (cancelled, failed)."""
        last = self.folder / LAST if self.on else None
        if last and "last" not in self.keep and status not in ("cancelled", "failed"):
            with contextlib.suppress(OSError):
                size = last.stat().st_size
                last.unlink()
                if self.folder.parent in _USED:
                    _USED[self.folder.parent] -= size

    def _write(self, name: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        path = self.folder / name
        need = sum(t.numel() * t.element_size() for t in tensors.values())
        old = path.stat().st_size if path.exists() else 0
        sweep = self.folder.parent
        if sweep not in _USED:  # counted once a process; then kept up to date as it writes
            _USED[sweep] = size_of(sweep)
        if _USED[sweep] - old + need > self.budget_bytes:
            self._note(
                f"checkpoint {name} not written: the sweep's checkpoints would pass its"
                f" budget of {self.budget_bytes / 1024**2:.3g} MB (disk_budget_mb)"
            )
            return
        try:
            _USED[sweep] += write(path, tensors, meta) - old
        except OSError as exc:  # a full disk, a read-only folder
            self._note(f"checkpoint {name} not written: {exc.strerror or exc}")

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
