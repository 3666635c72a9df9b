"""One run: `run(config) -> Iterator[Event]`, the training loop written out.

    for event in run(make_config(lr=0.01)):
        print(event)

The loop is zero_grad -> forward -> loss -> backward -> step on tensors already on the
device, batches by `randperm` indexing. Nothing reads a value back from the device inside
a step; losses are gathered at report time. Reports come at the end of every epoch and,
inside long epochs, every `hypertui.engine.training.clock.REPORT_EVERY_S` seconds.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from hypertui.engine.core.config import MODELS, Config
from hypertui.engine.core.errors import ConfigError, HypertuiError, described
from hypertui.engine.core.events import Event, Failed, Progress, RunStarted
from hypertui.engine.core.ids import new_id
from hypertui.engine.data.dataset import Dataset
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training import checkpoint
from hypertui.engine.training.checkpoint import Checkpoints
from hypertui.engine.training.clock import TrainClock, budget_env
from hypertui.engine.training.devices import check_fits, describe, resolve_device
from hypertui.engine.training.ledger import Ledger
from hypertui.engine.training.losses import analyse, evaluate, make_loss
from hypertui.engine.training.models import (
    build_model,
    build_optimizer,
    count_parameters,
    output_size,
)
from hypertui.engine.training.schedule import lr_factor, planned_steps

INTERVAL_VAL_N = 2000  # validation examples behind an interval report (full set at epoch end)
TINY_WORK = 1_000_000  # parameters x batch size under which a CPU MLP run uses one thread


def own_model_notes(config: Config) -> tuple[str, ...]:
    """A user model trains alone (no population): the run says so."""
    if config.model in MODELS:
        return ()
    from hypertui.engine.training.usermodel import NOTE

    return (f"model {config.model}: {NOTE}",)


def new_run_id() -> str:
    return new_id(12)


def environment(device: torch.device) -> dict[str, str]:
    env = {"python": platform.python_version(), "torch": str(torch.__version__)}
    if device.type == "cuda":
        env["cuda"] = str(torch.version.cuda)
    return env


def run(
    config: Config,
    should_stop: Callable[[], bool] = lambda: False,
    run_id: str | None = None,
    data_dir: Path | None = None,
    should_pause: Callable[[], bool] = lambda: False,
    inspect: Callable[[torch.nn.Module], None] | None = None,
    checkpoints: Path | None = None,
) -> Iterator[Event]:
    """Train one model and yield its events: RunStarted, Progress..., Finished or Failed.

    A device or data problem the user must fix raises HypertuiError before RunStarted;
    anything that goes wrong during training is reported as Failed, never raised.
    `should_stop` is polled before every step; when it returns True the run ends within
    one batch with status "cancelled". While `should_pause` returns True the run waits
    between two steps, and the wait does not count against a time budget. `checkpoints`,
    the run's folder, keeps its weights (engine/training/checkpoint.py) and, when it holds
    a checkpoint of this config, the run goes on from there: its curve so far comes again
    first, then the epochs after it, as the uninterrupted run's would (bit for bit on a CPU).
    """
    run_id = run_id or new_run_id()
    device = resolve_device(config.device)
    data = load_dataset(config, device, data_dir)
    wall0 = time.perf_counter()
    rows = max(data.sizes.values())
    if why := check_fits(config, device, rows=rows):  # before building: an OOM is a traceback
        yield Failed(run_id, why)
        return
    ckpt = Checkpoints.plan(config, checkpoints)
    resumed = ckpt.resume()
    with restore_settings():
        torch.manual_seed(config.seed)
        model = build_model(config).to(device)
        n_params = count_parameters(model)
        if config.model == "mlp":
            _use_one_thread_if_tiny(device, n_params * config.batch_size)
        elif device.type == "cuda":  # fixed-shape convolutions: let cuDNN pick the fastest
            torch.backends.cudnn.benchmark = True  # (GPU results are not bit-exact anyway)
        yield RunStarted(
            run_id=run_id,
            config=config.to_dict(),
            device=str(device),
            device_name=describe(device),
            n_params=n_params,
            sizes=data.sizes,
            notes=data.notes
            + own_model_notes(config)
            + precision_notes(config, device)
            + resume_notes(resumed),
            env={**environment(device), **budget_env(config.time_budget_s, device)},
        )
        try:
            yield from _train(
                config, model, data, device, should_stop, should_pause, run_id, wall0, ckpt, resumed
            )
        except HypertuiError as exc:
            yield Failed(run_id, str(exc))
        except (RuntimeError, ValueError) as exc:  # e.g. CUDA out of memory
            yield Failed(run_id, described(exc))
        if inspect is not None:  # tests compare trained weights (population vs single)
            inspect(model)


def _train(
    config: Config,
    model: torch.nn.Module,
    data: Dataset,
    device: torch.device,
    should_stop: Callable[[], bool],
    should_pause: Callable[[], bool],
    run_id: str,
    wall0: float,
    ckpt: Checkpoints,
    resumed: tuple[dict[str, torch.Tensor], dict] | None,
) -> Iterator[Event]:
    opt = build_optimizer(config, model.parameters())
    loss_fn = make_loss(config)
    x, y = data.train.x, data.train.y
    n, bs = len(data.train), config.batch_size
    total_steps = planned_steps(config.epochs, n, bs)
    precision = autocast(config, device)
    clock = TrainClock(device, config.time_budget_s, should_pause, should_stop)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    ledger = Ledger(config.main_metric, patience=config.patience, min_delta=config.min_delta)
    # A user's model was checked on a batch in eval mode; in train mode (dropout, a branch
    # on self.training) it may answer another shape, which a loss would broadcast.
    expected = output_size(config) if config.model not in MODELS else 0

    step = samples = 0
    losses: list[torch.Tensor] = []  # detached batch losses since the last report
    stop = ""  # why training ended early: cancelled | budget | diverged
    best: dict[str, torch.Tensor] | None = None  # the weights of the best full report
    history: list[Progress] = []  # the reports so far: a resume yields them again
    first_epoch = 1
    if resumed is not None:  # where the checkpoint left off, bit for bit
        tensors, meta = resumed
        model.load_state_dict(checkpoint.unprefixed("model", tensors))
        checkpoint.load_optimizer(opt, tensors, meta["optimizer"])
        gen.set_state(tensors["rng.batches"].to(gen.get_state().device))
        torch.set_rng_state(tensors["rng.torch"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        best = checkpoint.unprefixed("best", tensors) or None
        ledger.restore(meta["ledger"])
        step, samples, clock.train_s = meta["step"], meta["samples"], meta["train_s"]
        wall0 -= meta["wall_s"]  # the run's wall time goes on from where it was
        first_epoch = meta["epoch"] + 1
        history = [Progress(**p) for p in meta["history"]]
        yield from history

    def report(epoch: int, end_of_epoch: bool, full: bool) -> Progress:
        nonlocal losses
        stacked = torch.stack(losses)
        ledger.first_batch(stacked[0].item())  # the untrained model's loss, once
        train_loss = stacked.mean().item()
        losses = []
        val = data.val if full else data.val.head(INTERVAL_VAL_N)
        metrics = evaluate(config, model, val.x, val.y, "val")
        return Progress(
            run_id,
            epoch,
            step,
            samples,
            round(clock.train_s, 6),
            train_loss,
            metrics,
            end_of_epoch,
            len(val),
        )

    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen, device=device)
        clock.start()
        for i in range(0, n, bs):
            clock.hold_while_paused()
            if should_stop():
                stop = "cancelled"
                ledger.stop("cancelled", "stopped by request")
                break
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            with precision():
                out = model(x[idx])
            if expected and getattr(out, "shape", None) != (len(idx), expected):  # no sync
                raise ConfigError(wrong_output(config, out, len(idx), expected))
            loss = loss_fn(out.float(), y[idx])
            loss.backward()
            if config.schedule != "constant":
                for group in opt.param_groups:
                    group["lr"] = config.lr * lr_factor(config.schedule, step, total_steps)
            opt.step()
            losses.append(loss.detach())
            step += 1
            samples += len(idx)
            due = clock.after_step(step, last_batch=i + bs >= n)
            if due == "budget":
                stop = "budget"
                ledger.stop("finished", clock.budget_reason)
                break
            if due == "report":
                clock.stop()
                p = report(epoch, end_of_epoch=False, full=False)
                yield p
                clock.reported()
                clock.start()
                history.append(p)
                if why := ledger.record(p, full=False):
                    stop = "diverged"
                    ledger.stop("diverged", why)
                    break
        clock.stop()
        if stop in ("cancelled", "diverged"):
            break
        p = report(epoch, end_of_epoch=samples == epoch * n, full=True)
        yield p
        history.append(p)
        clock.reported()
        if why := ledger.record(p, full=True):
            stop = "diverged"
            ledger.stop("diverged", why)
            break
        if ledger.best_epoch == epoch:  # restore-best: the test is of these weights
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if why := ledger.out_of_patience():  # early stopping: finished, tested as it is
            ledger.stop("finished", why)
            break
        if stop == "budget":
            break
        if ckpt.due(epoch, last_epoch=epoch == config.epochs):
            tensors, optimizer = checkpoint.optimizer_tensors(opt)
            tensors |= checkpoint.prefixed("model", model.state_dict())
            tensors |= checkpoint.prefixed("best", best or {})
            tensors["rng.batches"] = gen.get_state()
            tensors["rng.torch"] = torch.get_rng_state()
            if device.type == "cuda":
                tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
            wall_s = time.perf_counter() - wall0
            meta = checkpoint.progress_meta(ledger, step, samples, clock.train_s, wall_s, history)
            ckpt.save_last(epoch, tensors, meta | {"optimizer": optimizer})

    test: dict[str, float] = {}
    analysis: dict[str, list] = {}
    if ledger.status == "finished":
        last = evaluate(config, model, data.test.x, data.test.y, "test")
        now = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if best is not None:  # the best epoch's weights, which a user would pick
            model.load_state_dict(best)
        test = evaluate(config, model, data.test.x, data.test.y, "test")
        test |= {f"last_{k}": v for k, v in last.items()}  # the last epoch's stay too
        analysis = analyse(config, model, data.val.x, data.val.y)
        model.load_state_dict(now)  # the model ends as it trained
    if best is not None and ledger.status != "cancelled":
        meta = {"epoch": ledger.best_epoch, "metrics": ledger.best, "test": test}
        meta["preprocessing"] = data.preprocessing  # a table's: `hypertui predict` encodes as this
        meta["shapes"] = [list(data.train.x.shape[1:]), output_size(config)]
        ckpt.save_best(best, meta)
    ckpt.ended(ledger.status)
    now = (step, samples, clock.train_s)
    wall_s = time.perf_counter() - wall0
    yield ledger.finished(run_id, n, now, wall_s, test, analysis, notes=tuple(ckpt.notes))


def resume_notes(resumed: tuple[dict, dict] | None) -> tuple[str, ...]:
    if resumed is None:
        return ()
    return (f"resumed from its checkpoint after epoch {resumed[1]['epoch']}",)


def wrong_output(config: Config, out: object, rows: int, expected: int) -> str:
    shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    return (
        f"model = {config.model!r}: in train mode its output for a batch of {rows} is "
        f"{shape}, expected [{rows}, {expected}]"
    )


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 arithmetic is native here: GPUs, and CPUs with AVX512-BF16 or AMX.
    Elsewhere torch emulates it: the study CNN at batch 256 took 1.30 s a step under bf16
    autocast against 0.105 s in fp32 on an AVX2-only CPU (2 threads)."""
    if device.type != "cpu":
        return True
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def precision_notes(config: Config, device: torch.device) -> tuple[str, ...]:
    if config.precision == "bf16" and not native_bf16(device):
        return ("precision: fp32, not bf16: this CPU has no native bf16 (emulated, ~12x slower)",)
    return ()


def autocast(
    config: Config, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    """A fresh context for each forward pass: bf16 autocast where bf16 is native, or
    nothing (fp32; the run's notes say so when bf16 was asked for)."""
    if config.precision == "bf16" and native_bf16(device):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@contextlib.contextmanager
def restore_settings():
    """Restore the torch settings a run may change (threads, cudnn autotuning) after it."""
    threads, autotune = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = autotune


def _use_one_thread_if_tiny(device: torch.device, work: int) -> None:
    # On a 2-core box a 4x10 MLP step took 0.6 ms with one thread alone but 5.8 ms with two
    # threads while the other core was busy: thread hand-off costs more than the arithmetic.
    # The CNN is not tiny even at batch 8 (convolutions over 28x28 maps): two threads took
    # 5.0-6.2 ms per step against 6.8-7.9 ms for one, so only MLPs come here.
    if device.type == "cpu" and work < TINY_WORK:
        torch.set_num_threads(1)
