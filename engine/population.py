"""Population training: many MLP trials of a sweep as one stacked model.

Trials that differ only in learning rate, momentum, weight decay and seed share every
shape and every step count, so K of them train as one model whose weights are stacked
along a leading member axis ([K, in, out]) and whose layers are batched matmuls. Each
member keeps what makes it its own run: its initial weights (built exactly as a single run
builds them, under its seed), its batch order (its own seeded randperm), its optimizer
state and hyperparameters. The optimizers below follow PyTorch's foreach implementations
step for step, so a member ends within floating-point tolerance of the same trial trained
alone (tests/test_population.py). On a 2-core CPU a step for 256 members costs a few times
one member's step: the work of a tiny MLP is dwarfed by per-operation overhead.

`run_population` yields the same events as `engine.train.run`, member by member, so the
store, CLI, TUI and exports need no special cases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.clock import TrainClock
from engine.config import Config
from engine.data import load_dataset
from engine.devices import describe, resolve_device
from engine.errors import HypertuiError
from engine.events import Event, Failed, Finished, Progress, RunStarted
from engine.losses import VAR_FLOOR, analyse_outputs
from engine.models import ACTIVATIONS, build_model, count_parameters
from engine.train import INTERVAL_VAL_N, diverged, environment, restore_threads

MEMBER_FIELDS = ("lr", "momentum", "weight_decay", "seed")  # what members may differ in
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam/AdamW defaults
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8  # torch.optim.RMSprop defaults


def population_key(config: Config) -> str | None:
    """Trials with the same key can train together; None: this trial trains alone."""
    if config.model != "mlp":
        return None
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    return repr(sorted(shared.items()))


@dataclass(frozen=True)
class Member:
    run_id: str
    config: Config


class StackedMLP(nn.Module):
    """K MLPs of one shape: x [K, B, features] -> [K, B, outputs]."""

    def __init__(self, models: list[nn.Sequential], activation: str):
        super().__init__()
        linears = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].weight.detach().t() for layers in linears]))
            for i in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].bias.detach() for layers in linears]).unsqueeze(1))
            for i in range(len(linears[0]))
        )
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.act(x)
        return x

    def member_parameters(self, k: int) -> list[torch.Tensor]:
        """Member k's tensors in nn.Linear layout (weight [out, in], bias [out]), in order."""
        out = []
        for w, b in zip(self.weights, self.biases, strict=True):
            out += [w[k].t(), b[k, 0]]
        return out


class StackedOptimizer:
    """SGD, Adam, AdamW or RMSprop over stacked parameters, one set of hyperparameters
    per member. `lr` of a frozen (diverged) member is set to 0, which stops it."""

    def __init__(self, kind: str, params: list[nn.Parameter], configs: list[Config]):
        self.kind = kind
        self.params = params
        device = params[0].device
        self.lr = torch.tensor([c.lr for c in configs], device=device)
        self.momentum = torch.tensor([c.momentum for c in configs], device=device)
        self.wd = torch.tensor([c.weight_decay for c in configs], device=device)
        self.use_wd = any(c.weight_decay for c in configs)
        self.use_momentum = any(c.momentum for c in configs)
        self.step_count = 0
        self.state = [[torch.zeros_like(p) for _ in range(2)] for p in params]

    def freeze(self, k: int) -> None:
        self.lr[k] = 0.0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @staticmethod
    def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        for p, (s1, s2) in zip(self.params, self.state, strict=True):
            g = p.grad
            lr = self._per_member(self.lr, p)
            if self.kind == "adamw" and self.use_wd:
                p.mul_(1 - lr * self._per_member(self.wd, p))
            elif self.use_wd:
                g = g.add(p * self._per_member(self.wd, p))
            if self.kind == "sgd":
                if self.use_momentum:  # torch: buf = momentum * buf + g (buf starts at g)
                    s1.mul_(self._per_member(self.momentum, p)).add_(g)
                    g = s1
                p.sub_(lr * g)
            elif self.kind == "rmsprop":
                s2.mul_(RMSPROP_ALPHA).addcmul_(g, g, value=1 - RMSPROP_ALPHA)
                avg = s2.sqrt().add_(RMSPROP_EPS)
                if self.use_momentum:
                    s1.mul_(self._per_member(self.momentum, p)).addcdiv_(g, avg)
                    p.sub_(lr * s1)
                else:
                    p.sub_(lr * g / avg)
            else:  # adam, adamw
                beta1, beta2 = ADAM_BETAS
                s1.lerp_(g, 1 - beta1)
                s2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                bias1 = 1 - beta1**t
                bias2_sqrt = math.sqrt(1 - beta2**t)
                denom = (s2.sqrt() / bias2_sqrt).add_(ADAM_EPS)
                p.sub_((lr / bias1) * s1 / denom)


def member_losses(config: Config, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean training loss: out [K, B, o], y [K, B, ...] -> [K]."""
    if config.problem == "mnist":
        k, b, c = out.shape
        if config.loss == "cross_entropy":
            return (
                F.cross_entropy(out.reshape(k * b, c), y.reshape(-1), reduction="none")
                .view(k, b)
                .mean(1)
            )
        target = F.one_hot(y, c).to(out.dtype)
        return ((out - target) ** 2).mean(dim=(1, 2))
    if config.loss == "gaussian_nll":
        mean, var = out[..., :1], F.softplus(out[..., 1:]) + VAR_FLOOR
        return F.gaussian_nll_loss(mean, y, var, reduction="none").mean(dim=(1, 2))
    return ((out - y) ** 2).mean(dim=(1, 2))


@torch.no_grad()
def member_metrics(
    config: Config, model: StackedMLP, x: torch.Tensor, y: torch.Tensor, prefix: str
) -> tuple[list[dict[str, float]], torch.Tensor]:
    """Per-member metrics as engine.losses.evaluate names them, and the raw outputs."""
    k = model.weights[0].shape[0]
    out = model(x.unsqueeze(0).expand(k, *x.shape))
    ys = y.unsqueeze(0).expand(k, *y.shape)
    values = {"loss": member_losses(config, out, ys)}
    if config.problem == "mnist":
        values["acc"] = (out.argmax(2) == ys).float().mean(1)
    elif config.loss == "gaussian_nll":
        mean, var = out[..., :1], F.softplus(out[..., 1:]) + VAR_FLOOR
        values |= {
            "mse": ((mean - ys) ** 2).mean(dim=(1, 2)),
            "nll": values["loss"],
            "var": var.mean(dim=(1, 2)),
        }
    else:
        values["mse"] = values["loss"]
    table = torch.stack(list(values.values())).t().tolist()  # one host sync
    return [{f"{prefix}_{n}": v for n, v in zip(values, row, strict=True)} for row in table], out


def run_population(
    members: list[Member],
    should_stop: Callable[[], bool] = lambda: False,
    data_dir=None,
    should_pause: Callable[[], bool] = lambda: False,
    inspect: Callable[[StackedMLP], None] | None = None,
) -> Iterator[Event]:
    """Train members that share a population_key together; yield each member's events."""
    base = members[0].config
    device = resolve_device(base.device)
    data = load_dataset(base, device, data_dir)
    wall0 = time.perf_counter()
    with restore_threads():
        models = []
        for m in members:
            torch.manual_seed(m.config.seed)  # the same initial weights as a single run
            models.append(build_model(m.config))
        n_params = count_parameters(models[0])
        model = StackedMLP(models, base.activation).to(device)
        if device.type == "cpu":
            torch.set_num_threads(1)  # as single tiny runs: 2 threads measured no faster
            # at K=256 (2.8-3.6 ms vs 2.7-4.2 ms a step) and contend with the UI process
        for m in members:
            yield RunStarted(
                m.run_id,
                m.config.to_dict(),
                str(device),
                describe(device),
                n_params,
                data.sizes,
                data.notes,
                environment(device),
            )
        try:
            yield from _train(members, model, data, device, should_stop, should_pause, wall0)
        except HypertuiError as exc:
            for m in members:
                yield Failed(m.run_id, str(exc))
        except (RuntimeError, ValueError) as exc:
            for m in members:
                yield Failed(m.run_id, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        if inspect is not None:
            inspect(model)


def _train(
    members, model: StackedMLP, data, device, should_stop, should_pause, wall0: float
) -> Iterator[Event]:
    base = members[0].config
    k = len(members)
    opt = StackedOptimizer(base.optimizer, list(model.parameters()), [m.config for m in members])
    x, y = data.train.x, data.train.y
    n, bs = len(data.train), base.batch_size
    clock = TrainClock(device, base.time_budget_s, should_pause, should_stop)
    gens = [torch.Generator(device=device).manual_seed(m.config.seed) for m in members]
    main = base.main_metric
    higher = main == "val_acc"

    step = samples = 0
    losses: list[torch.Tensor] = []  # [K] per step since the last report
    first: list[float] | None = None  # each member's untrained first-batch loss
    active = [True] * k  # False once diverged (frozen)
    status = ["finished"] * k
    reasons = [""] * k
    best: list[dict[str, float]] = [{} for _ in range(k)]
    best_epoch: list[int | None] = [None] * k
    final: list[dict[str, float]] = [{} for _ in range(k)]
    stopped_at: list[tuple[int, int, float] | None] = [None] * k  # where a member diverged
    stop = ""

    def report(epoch: int, end_of_epoch: bool, full: bool) -> Iterator[Event]:
        nonlocal losses, first
        stacked = torch.stack(losses)  # [steps, K]
        if first is None:
            first = stacked[0].tolist()
        train = stacked.mean(0).tolist()
        losses = []
        val = data.val if full else data.val.head(INTERVAL_VAL_N)
        metrics, _ = member_metrics(base, model, val.x, val.y, "val")
        train_s = round(clock.train_s, 6)
        for i, m in enumerate(members):
            if not active[i]:
                continue
            p = Progress(
                m.run_id,
                epoch,
                step,
                samples,
                train_s,
                train[i],
                metrics[i],
                end_of_epoch,
                len(val),
            )
            yield p
            why = diverged(p.train_loss, p.metrics, first[i])
            if full:  # as a single run: the last full report is final, diverged or not
                final[i] = {"train_loss": p.train_loss, **p.metrics}
            if full and not why:
                score = p.metrics[main]
                if not best[i] or (score > best[i][main] if higher else score < best[i][main]):
                    best[i], best_epoch[i] = dict(p.metrics), epoch
            if why:
                active[i], status[i], reasons[i] = False, "diverged", why
                stopped_at[i] = (step, samples, clock.train_s)
                opt.freeze(i)

    for epoch in range(1, base.epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=g, device=device) for g in gens])
        clock.start()
        for i in range(0, n, bs):
            clock.hold_while_paused()
            if should_stop():
                stop = "cancelled"
                break
            idx = perms[:, i : i + bs]
            opt.zero_grad()
            loss = member_losses(base, model(x[idx]), y[idx])
            loss.sum().backward()
            opt.step()
            losses.append(loss.detach())
            step += 1
            samples += idx.shape[1]
            due = clock.after_step(step, last_batch=i + bs >= n)
            if due == "budget":
                stop = "budget"
                break
            if due == "report":
                clock.stop()
                yield from report(epoch, end_of_epoch=False, full=False)
                clock.reported()
                clock.start()
        clock.stop()
        if stop == "cancelled":
            break
        yield from report(epoch, end_of_epoch=samples == epoch * n, full=True)
        clock.reported()
        if stop == "budget" or not any(active):
            break

    test: list[dict[str, float]] = [{} for _ in range(k)]
    analysis: list[dict[str, list]] = [{} for _ in range(k)]
    if stop != "cancelled":
        test, _ = member_metrics(base, model, data.test.x, data.test.y, "test")
        _, out = member_metrics(base, model, data.val.x, data.val.y, "val")
        analysis = [analyse_outputs(base, out[i], data.val.y) for i in range(k)]
    wall = round(time.perf_counter() - wall0, 6)
    budget_reason = clock.budget_reason if stop == "budget" else ""
    for i, m in enumerate(members):
        state = "cancelled" if stop == "cancelled" else status[i]
        steps_i, samples_i, train_i = stopped_at[i] or (step, samples, clock.train_s)
        yield Finished(
            run_id=m.run_id,
            status=state,
            epochs_done=round(samples_i / n, 4),
            steps=steps_i,
            samples=samples_i,
            elapsed_s=round(train_i, 6),
            wall_s=wall,
            final=final[i],
            best=best[i],
            best_epoch=best_epoch[i],
            test=test[i] if state == "finished" else {},
            reason="stopped by request" if state == "cancelled" else reasons[i] or budget_reason,
            analysis=analysis[i] if state == "finished" else {},
        )
