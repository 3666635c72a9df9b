"""A population's training step: today's eager step, or one of fixed shape that a CUDA
graph records once and replays.

A step of a tiny MLP population is some 75 operations, each launched from Python: on an
H200 a step cost 1.6-1.8 ms whatever K was, where a bare-PyTorch MLP step recorded as a
CUDA graph cost 112 µs against 1,385 µs eager (BENCHMARKS.md, issue 24). A graph replays
fixed operations on fixed memory, so the static-shape step keeps all it touches fixed:

- K is fixed: a member that leaves (pruned, diverged, skipped, out of patience) stays a
  row whose lr is 0 (StackedOptimizer.freeze) instead of leaving the buffers, so halving
  does not record the step again;
- each batch's indices are copied into one [K, batch] buffer; the last, shorter batch is
  padded (with the previous batch's indices) and the loss weighs the padding 0 and the
  real examples batch / b, so it is still their mean;
- the lr factor and Adam's bias corrections are device scalars set before each step
  (StaticScalars); nothing in the step reads the device: losses are read at reports.

Modes, `$HYPERTUI_STEP` or the device's default: "eager" is today's step (the default
off CUDA: there a fixed K only costs, as rows that left would still compute); "static"
runs the static-shape step eagerly (tests hold it to "eager", member by member); "graph"
(CUDA's default) runs WARMUP steps eagerly on a side stream, records the next, checks the
first replay against the same step run eagerly, and replays from then on. A recording
that fails or a replay that differs leaves the static step running eagerly, and a note
on every member says so.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import torch

from hypertui.engine.core.errors import HypertuiError, described
from hypertui.engine.training.member_data import MemberData
from hypertui.engine.training.stacked import StackedCNN, StackedMLP
from hypertui.engine.training.stacked_optimizer import StackedOptimizer, StaticScalars

MODES = ("eager", "static", "graph")
DESCRIBE = {  # what a run's environment says of its step
    "eager": "eager",
    "static": "static shape, eager",
    "graph": "static shape, CUDA graph",
}
WARMUP = 3  # eager steps before recording (lazy library set-up, cuDNN's benchmark picks)
REPLAY_RTOL, REPLAY_ATOL = 1e-4, 1e-6  # a checked replay against the same step eagerly


def step_mode(device: torch.device) -> str:
    """The population step for `device`: `$HYPERTUI_STEP`, else graph on CUDA, else eager."""
    return check_step() or ("graph" if device.type == "cuda" else "eager")


def check_step() -> str:
    """`$HYPERTUI_STEP` when set (a HypertuiError, one line, when it names no step)."""
    mode = os.environ.get("HYPERTUI_STEP", "").strip().lower()
    if mode and mode not in MODES:
        raise HypertuiError(f"$HYPERTUI_STEP = {mode!r}: use one of {', '.join(MODES)}")
    return mode


class CudaGraph:
    """torch's CUDA graph recipe: warm up on a side stream, record, replay."""

    def __init__(self, device: torch.device):
        if device.type != "cuda":
            raise RuntimeError(f"CUDA graphs need a CUDA device, not {device.type}")
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def warm(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        main = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(main)
        with torch.cuda.stream(self.stream):
            out = fn()
        main.wait_stream(self.stream)
        return out

    def capture(self, fn: Callable[[], object]) -> None:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self.stream):
            fn()

    def replay(self) -> None:
        self.graph.replay()


def new_graph(device: torch.device) -> CudaGraph:
    """What records the step (tests put a stand-in here to run the graph path on a CPU)."""
    return CudaGraph(device)


class PopulationStep:
    """One training step of a population: the members' gradients on a batch, then their
    optimizers' update. Called with the rows still in the model (each member's row), the
    batch's indices [rows, b] and the schedule's lr factor; returns the rows' losses."""

    def __init__(
        self,
        mode: str,
        model: StackedMLP | StackedCNN,
        opt: StackedOptimizer,
        data: MemberData,
        members: list[int],
        batch_size: int,
        loss_of: Callable,
        device: torch.device,
    ):
        self.mode, self.model, self.opt, self.data = mode, model, opt, data
        self.static = mode != "eager"
        self.notes: list[str] = []
        self.loss_of = loss_of
        if not self.static:
            return
        k = len(members)
        self.idx = torch.zeros(k, batch_size, dtype=torch.long, device=device)
        self.weights = torch.ones(batch_size, device=device)
        self.width = batch_size  # the real examples the weights are set for
        self.scalars = StaticScalars(device)
        self.batch = data.batcher(members)
        self.loss = torch.zeros(k, device=device)  # a recorded step's losses land here
        # weighed batches: a graph's step weighs every batch; run eagerly, only a short one
        self.weighed = functools.partial(loss_of, weights=self.weights)
        self.graph: CudaGraph | None = None
        self.warmed = 0
        self.recorded: tuple | None = None  # the optimizer's shape_key when recorded
        self.checked = False
        if mode == "graph":
            try:
                self.graph = new_graph(device)
            except Exception as exc:  # noqa: BLE001 - no graph: the static step, eagerly
                self._fall_back(f"no CUDA graph ({described(exc)})")

    def __call__(self, rows: list[int], idx: torch.Tensor, lr_scale: float) -> torch.Tensor:
        if not self.static:
            loss = self.model.gradients(*self.data.batch(rows, idx), self.loss_of)
            self.opt.step(lr_scale)
            return loss
        self._fill(idx)
        self.opt.step_count += 1
        self.scalars.set(lr_scale, self.opt.step_count)
        if self.mode != "graph":
            return self._step()
        if self.recorded is not None and self.recorded != self.opt.shape_key():
            self.recorded = None  # PBT gave a group momentum or weight decay: record again
        if self.recorded is None:
            if self.warmed < WARMUP:
                self.warmed += 1
                return self.graph.warm(self._step)
            return self._record()
        if not self.checked:
            return self._checked_replay()
        self.graph.replay()
        return self.loss.clone()

    def _fill(self, idx: torch.Tensor) -> None:
        """The batch's indices into the static buffer; a shorter batch pads and weighs."""
        b, full = idx.shape[1], self.idx.shape[1]
        (self.idx if b == full else self.idx[:, :b]).copy_(idx)
        if b != self.width:
            self.weights.fill_(1.0 if b == full else 0.0)
            if b < full:
                self.weights[:b] = full / b
            self.width = b

    def _step(self) -> torch.Tensor:
        """The static step's operations: what a graph records."""
        full = self.mode == "static" and self.width == self.idx.shape[1]
        loss = self.model.gradients(*self.batch(self.idx), self.loss_of if full else self.weighed)
        self.opt.update(static=self.scalars)
        return loss

    def _record(self) -> torch.Tensor:
        """Record the step, then run this step eagerly. A CUDA graph's recording runs
        nothing; the state is put back all the same, for recorders that do run it."""
        before = self._snapshot()
        if before is None:
            return self._step()
        try:
            self.graph.capture(lambda: self.loss.copy_(self._step()))
        except Exception as exc:  # noqa: BLE001 - an op that cannot be recorded
            self._fall_back(f"the step could not be recorded ({described(exc)})")
        else:
            self.recorded, self.checked = self.opt.shape_key(), False
        self._restore(before)
        return self._step()

    def _checked_replay(self) -> torch.Tensor:
        """The first replay (of another batch than the recorded one), held to the same step
        run eagerly from the same state: equal, the graph is trusted from now on."""
        before = self._snapshot()
        if before is None:
            return self._step()
        eager = self._step()
        want = self._snapshot()
        if want is None:
            return eager
        self._restore(before)
        self.graph.replay()
        got = self._state()
        if all(_close(a, b) for a, b in zip([*want, eager], [*got, self.loss], strict=True)):
            self.checked = True
            return self.loss.clone()
        self._restore(want)
        self._fall_back("a replay of the recorded step differed from the same step run eagerly")
        return eager

    def _snapshot(self) -> list[torch.Tensor] | None:
        """The state (`_state`), or None where the device has no room for a copy of it:
        the step then runs eagerly, noted (a population sized to the memory it has)."""
        try:
            return self._state()
        except torch.OutOfMemoryError:
            self._fall_back("no memory left to check the recorded step against the eager one")
            return None

    def _fall_back(self, why: str) -> None:
        self.mode, self.graph = "static", None
        self.notes.append(f"trained with the static-shape step run eagerly: {why}")

    def _state(self) -> list[torch.Tensor]:
        """What a step changes: the weights and each optimizer group's state."""
        return [t.clone() for t in (self.model.flat, *self._opt_state())]

    def _restore(self, state: list[torch.Tensor]) -> None:
        for t, saved in zip((self.model.flat, *self._opt_state()), state, strict=True):
            t.copy_(saved)

    def _opt_state(self) -> list[torch.Tensor]:
        return [t for g in self.opt.groups for t in (g.s1, g.s2)]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=REPLAY_RTOL, atol=REPLAY_ATOL, equal_nan=True)
