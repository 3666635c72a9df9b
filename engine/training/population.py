"""Population training: many MLP or CNN trials of a sweep as one stacked model.

Trials that differ only in learning rate, momentum, weight decay, seed, activation and
optimizer share every shape and every step count, so K of them train as one model whose
weights are stacked along a leading member axis ([K, out, in]) and whose layers are
batched matmuls. Each member keeps what makes it its own run: its initial weights (built
exactly as a single run builds them, under its seed), its batch order (its own seeded
randperm), its activation, its optimizer, state and hyperparameters. Members that share an
optimizer form a group whose update is a few operations on their rows of one flat buffer.
The updates follow PyTorch's foreach implementations step for step, so a member ends
within floating-point tolerance of the same trial trained alone (tests/test_population.py).
On a 2-core CPU a step for 256 members costs a few times one member's step: the work of a
tiny MLP is dwarfed by per-operation overhead. CNN members (StackedCNN) share grouped
convolutions instead, whose work grows with K: they gain where a device has room to spare.

`run_population` yields the same events as `training.train.run`, member by member, so the
store, CLI, TUI and exports need no special cases; each member's account (final, best,
divergence) is a Ledger, as a single run's is. The stacked models are in stacked.py, their
optimizer in stacked_optimizer.py; this module is the loop.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Collection, Iterator

import torch

from hypertui.engine.core import halving
from hypertui.engine.core.errors import HypertuiError, described, first_line
from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted
from hypertui.engine.training.checkpoint import Checkpoints, progress_meta
from hypertui.engine.training.clock import TrainClock, budget_env
from hypertui.engine.training.devices import check_fits, describe, resolve_device
from hypertui.engine.training.ledger import Ledger
from hypertui.engine.training.losses import (
    analyse_outputs,
    member_loss_gradient,
)
from hypertui.engine.training.member_data import MemberData
from hypertui.engine.training.models import build_model, output_size
from hypertui.engine.training.pbt import draws, exploit_explore
from hypertui.engine.training.schedule import lr_factor, planned_steps
from hypertui.engine.training.stacked import (
    Member,
    StackedCNN,
    StackedMLP,
    evaluate_members,
    stacked_model,
    tune_for,
)
from hypertui.engine.training.stacked_optimizer import StackedOptimizer
from hypertui.engine.training.step import DESCRIBE, PopulationStep, step_mode
from hypertui.engine.training.train import INTERVAL_VAL_N, environment, restore_settings


def run_population(
    members: list[Member],
    should_stop: Callable[[], bool] = lambda: False,
    data_dir=None,
    should_pause: Callable[[], bool] = lambda: False,
    inspect: Callable[[StackedMLP | StackedCNN], None] | None = None,
    skipped: Callable[[], Collection[str]] = tuple,
) -> Iterator[Event]:
    """Train members that share a population_key together; yield each member's events.

    `skipped()`, read before every step, names runs to end now: such a member leaves the
    population as a pruned one does (status cancelled, reason "skipped"), the rest go on."""
    base = members[0].config
    device = resolve_device(base.device)
    mode = step_mode(device)  # today's step, or the static-shape one (step.py)
    # each member's data set: one for all, or each fold's (its size caps a batch's)
    data = MemberData.load([m.config for m in members], device, data_dir)
    rows = max(data.first.sizes.values())
    if why := check_fits(base, device, members=len(members), rows=rows):
        if len(members) == 1 or check_fits(base, device, members=1, rows=rows):
            for m in members:
                yield Failed(m.run_id, why)
            return
        # One member fits and all of them do not: train them in halves, each a population
        # of its own (halving then ranks each half's configs apart).
        half = len(members) // 2
        for part in (members[:half], members[half:]):
            yield from run_population(part, should_stop, data_dir, should_pause, inspect, skipped)
        return
    wall0 = time.perf_counter()
    with restore_settings():
        model = stacked_model(members, device)
        n_params = model.flat.shape[1]
        tune_for(model, device)
        for i, m in enumerate(members):
            yield RunStarted(
                m.run_id,
                m.config.to_dict(),
                str(device),
                describe(device),
                n_params,
                data.of(i).sizes,
                data.of(i).notes,
                {
                    **environment(device),
                    **budget_env(base.time_budget_s, device, len(members)),
                    "step": DESCRIBE[mode],
                },
            )
        ended: set[str] = set()  # members whose Finished went out (pruned, diverged...)
        try:
            for event in _train(
                members, model, data, device, mode, should_stop, should_pause, skipped, wall0
            ):
                if isinstance(event, Finished):
                    ended.add(event.run_id)
                yield event
        except HypertuiError as exc:
            why = str(exc)
        except torch.OutOfMemoryError as exc:  # another job on the device may hold it
            if device.type == "cuda":
                torch.cuda.empty_cache()  # what this population held goes back to the others
            why = (
                f"out of memory on {device} while training ({first_line(exc)}): "
                "fewer --jobs on the device, or a smaller population or batch, would fit"
            )
        except (RuntimeError, ValueError) as exc:
            why = described(exc)
        else:
            why = ""
        if why:  # a member that already ended keeps its result: the rest fail
            for m in members:
                if m.run_id not in ended:
                    yield Failed(m.run_id, why)
        if inspect is not None:
            inspect(model)


def _train(
    members,
    model: StackedMLP | StackedCNN,
    data: MemberData,
    device,
    mode: str,
    should_stop,
    should_pause,
    skipped,
    wall0: float,
) -> Iterator[Event]:
    base = members[0].config
    k = len(members)
    opt = StackedOptimizer(model, [m.config for m in members])
    x = data.first.train.x  # its shape; each member's rows come from data.batch
    n, bs = len(data.first.train), base.batch_size
    total_steps = planned_steps(base.epochs, n, bs)
    clock = TrainClock(device, base.time_budget_s, should_pause, should_stop)
    gens = [torch.Generator(device=device).manual_seed(m.config.seed) for m in members]
    ledgers = [
        Ledger(base.main_metric, patience=base.patience, min_delta=base.min_delta) for _ in members
    ]
    higher = ledgers[0].higher_is_better
    cuts = (
        set(halving.rungs(base.epochs, base.prune_eta, base.prune_from))
        if base.prune == "halving"
        else set()
    )
    configs = [halving.config_key(m.config.to_dict()) for m in members]
    member_loss = functools.partial(member_loss_gradient, base)
    train_step = PopulationStep(mode, model, opt, data, list(range(k)), bs, member_loss, device)

    step = samples = 0
    rows = list(range(k))  # the members in the model: row r is member rows[r]
    # Members that left (pruned, diverged, skipped, out of patience) leave the model at
    # drop_inactive; the static-shape step keeps their rows, frozen, and lists them here.
    dropped: set[int] = set()
    losses: list[torch.Tensor] = []  # [rows] per step since the last report
    active = [True] * k  # False once diverged (frozen), pruned or skipped
    best = model.flat.detach().clone()  # each row's weights at its best full report
    left: set[int] = set()  # members whose Finished went out as they left
    stop = ""
    # Checkpoints: each member's own files, from its rows (engine/training/checkpoint.py)
    ckpts = [Checkpoints.plan(m.config, m.checkpoints) for m in members]
    history: list[list[Progress]] = [[] for _ in members]  # each member's reports so far
    first_epoch = 1
    shapes = [list(x.shape[1:]), output_size(base)]
    names = list(build_model(base, (x.shape[1:], shapes[1])).state_dict())  # one module
    if len(names) != len(model.member_parameters(0)):  # a layout we cannot name: no files
        names = []
    # PBT (engine/training/pbt.py): each member's own steps (its lineage) and the schedule
    # its weights followed, inherited from the members it copied: [epoch, lr, momentum, wd]
    pbt = base.schedule == "pbt"
    lineage: list[list[dict]] = [[] for _ in members]
    followed: list[list[list]] = [
        [[0, m.config.lr, m.config.momentum, m.config.weight_decay]] for m in members
    ]
    pool: dict[str, dict[str, list[float]]] = {}
    for m in members:
        for name in ("lr", "momentum", "weight_decay"):
            values = pool.setdefault(m.config.optimizer, {}).setdefault(name, [])
            if getattr(m.config, name) not in values:
                values.append(getattr(m.config, name))

    def with_pbt(i: int, analysis: dict) -> dict:
        if not pbt:
            return analysis
        return {**analysis, "pbt_schedule": followed[i], "pbt_lineage": lineage[i]}

    def exploit(epoch: int) -> None:
        """PBT's step: the bottom members copy rows of top ones and perturb (pbt.py)."""
        scores = [ledgers[i].score if active[i] else math.nan for i in rows]
        kinds = [(members[i].config.activation, members[i].config.optimizer) for i in rows]
        rng = draws([m.config.seed for m in members], epoch)
        done = exploit_explore(
            model, opt, scores, kinds, higher, base.pbt_quantile, pool, rng, base.pbt_fields
        )
        for e in done:
            i, source = rows[e.row], rows[e.source]
            v = {k: round(x, 12) for k, x in e.values.items()}
            lineage[i].append({"epoch": epoch, "from": members[source].run_id, **v})
            followed[i] = [
                *followed[source],
                [epoch, v["lr"], v["momentum"], v["weight_decay"]],
            ]

    def report(epoch: int, end_of_epoch: bool, full: bool) -> Iterator[Event]:
        nonlocal losses
        stacked = torch.stack(losses)  # [steps, rows]
        for r, v in enumerate(stacked[0].tolist()):
            ledgers[rows[r]].first_batch(v)
        train = stacked.mean(0).tolist()
        losses = []
        val = data.split("val", rows, None if full else INTERVAL_VAL_N)
        metrics, _ = evaluate_members(base, model, val.x, val.y, "val", **each())
        train_s = round(clock.train_s, 6)
        for r, i in enumerate(rows):
            m = members[i]
            if not active[i]:
                continue
            p = Progress(
                m.run_id,
                epoch,
                step,
                samples,
                train_s,
                train[r],
                metrics[r],
                end_of_epoch,
                len(val),
            )
            yield p
            history[i].append(p)
            why = ledgers[i].record(p, full)
            if full and not why and ledgers[i].best_epoch == epoch:
                best[r] = model.flat[r]  # restore-best: its test is of these weights
            if why:  # as a single run: the last full report is final, diverged or not
                active[i] = False
                at = (step, samples, clock.train_s)
                ledgers[i].stop("diverged", why, at=at)
                opt.freeze(r)
                # It ends now, as a single run does: it never reports again, and a viewer
                # (or the store's point buffer) must not wait for it.
                left.add(i)
                yield ledgers[i].finished(m.run_id, n, at, wall(), notes=notes(i))

    def prune(epoch: int) -> Iterator[Event]:
        """Halving's rung: stop the configs outside the best third, and drop their rows."""
        nonlocal rows
        scores: dict[str, list[float]] = {}
        for i in rows:
            if ledgers[i].status != "pruned" and i not in dropped:
                scores.setdefault(configs[i], []).append(ledgers[i].score)
        keep = halving.survivors(scores, higher, base.prune_eta)
        for i in rows:
            if configs[i] not in keep and ledgers[i].status == "finished" and active[i]:
                active[i] = False
                why = f"halving: not in the best 1/{base.prune_eta} at epoch {epoch}"
                ledgers[i].stop("pruned", why, at=(step, samples, clock.train_s))
                left.add(i)
                yield ledgers[i].finished(
                    members[i].run_id, n, (step, samples, clock.train_s), wall(), notes=notes(i)
                )
        drop_inactive()  # diverged members leave too: they are never reported again

    def early_stop() -> Iterator[Event]:
        """Members out of patience end, finished, tested as they are now (as a single run
        is); they leave the model as pruned members do."""
        out = [(r, i) for r, i in enumerate(rows) if active[i] and ledgers[i].out_of_patience()]
        if not out:
            return
        tests, outputs = test_best([r for r, _ in out])
        at = (step, samples, clock.train_s)
        for r, i in out:
            active[i] = False
            ledgers[i].stop("finished", ledgers[i].out_of_patience(), at=at)
            left.add(i)
            analysis = with_pbt(i, analyse_outputs(members[i].config, outputs[r], data.of(i).val.y))
            yield ledgers[i].finished(
                members[i].run_id, n, at, wall(), tests[r], analysis, notes=notes(i)
            )
        drop_inactive()

    def test_best(ending: list[int]) -> tuple[list[dict[str, float]], list[torch.Tensor]]:
        """Every row's test metrics with its best full report's weights (and the last
        epoch's, as last_*), and its validation outputs with the best weights; the rows
        `ending` keep those weights (keep = "best")."""
        test, val = data.split("test", rows), data.split("val", rows)
        last, _ = evaluate_members(base, model, test.x, test.y, "test", **each())
        now = model.flat.detach().clone()
        with torch.no_grad():
            model.flat.copy_(best)
        tests, _ = evaluate_members(base, model, test.x, test.y, "test", **each())
        _, outputs = evaluate_members(base, model, val.x, val.y, "val", keep_outputs=True, **each())
        for tested, at_last in zip(tests, last, strict=True):
            tested |= {f"last_{key}": v for key, v in at_last.items()}
        for r in ending:
            i = rows[r]
            if ledgers[i].best_epoch is not None and names:
                weights = dict(zip(names, model.member_parameters(r), strict=True))
                meta = {"epoch": ledgers[i].best_epoch, "metrics": ledgers[i].best}
                meta |= {"test": tests[r], "shapes": shapes}
                meta["preprocessing"] = data.of(i).preprocessing
                ckpts[i].save_best(weights, meta)
        with torch.no_grad():
            model.flat.copy_(now)
        return tests, outputs

    def save_last(epoch: int) -> None:
        """Each active member's checkpoint: its rows, its generator, its account."""
        start = time.monotonic()
        for r, i in enumerate(rows):
            if active[i]:
                tensors = {"flat": model.flat[r], "best": best[r], "rng": gens[i].get_state()}
                meta = progress_meta(
                    ledgers[i], step, samples, clock.train_s, wall(), history[i]
                ) | {"opt_steps": opt.step_count}
                if pbt:  # its hyperparameters now, and how they came to be
                    tensors |= opt.hyper_state(r)
                    meta |= {"pbt_lineage": lineage[i], "pbt_schedule": followed[i]}
                ckpts[i].save_last(epoch, tensors | opt.member_state(r), meta)
        cost_s = time.monotonic() - start
        for i in rows:  # what the next checkpoint waits for is the cost of all the files
            ckpts[i].cost_s = cost_s

    def resume() -> Iterator[Event]:
        """Go on from the members' checkpoints when every one has one, of the same step
        (the same population, interrupted); otherwise each says why it starts over."""
        nonlocal step, samples, first_epoch, wall0
        found = [c.resume() for c in ckpts]
        if not any(found):
            return
        steps = {meta["step"] for _, meta in filter(None, found)}
        if not all(found) or len(steps) > 1:
            for c in ckpts:
                c.notes.append("not resumed: its population's members were not all saved at once")
            return
        meta = found[0][1]
        step, samples, clock.train_s = meta["step"], meta["samples"], meta["train_s"]
        wall0 -= meta["wall_s"]  # the run's wall time goes on from where it was
        opt.step_count, first_epoch = meta["opt_steps"], meta["epoch"] + 1
        with torch.no_grad():
            for r, (tensors, meta) in enumerate(found):
                model.flat[r] = tensors["flat"].to(device)
                best[r] = tensors["best"].to(device)
                opt.load_member_state(r, {k: v.to(device) for k, v in tensors.items()})
                if pbt and "opt.lr" in tensors:
                    opt.load_hyper_state(r, {k: v.to(device) for k, v in tensors.items()})
                    lineage[r], followed[r] = meta["pbt_lineage"], meta["pbt_schedule"]
                gens[r].set_state(tensors["rng"])
                ledgers[r].restore(meta["ledger"])
                history[r] = [Progress(**p) for p in meta["history"]]
                ckpts[r].notes.append(f"resumed from its checkpoint after epoch {meta['epoch']}")
        for reports in zip(*history, strict=True):  # the curve so far, report by report
            yield from reports

    def skip(gone: Collection[str]) -> Iterator[Event]:
        """Members a viewer skipped end now, cancelled (a resume trains them again)."""
        for i in rows:
            if active[i] and members[i].run_id in gone:
                active[i] = False
                ledgers[i].stop("cancelled", "skipped", at=(step, samples, clock.train_s))
                left.add(i)
                yield ledgers[i].finished(
                    members[i].run_id, n, (step, samples, clock.train_s), wall(), notes=notes(i)
                )

    def drop_inactive() -> list[int]:
        """Rows of members no longer active leave the model, the optimizer and the losses
        not yet reported; returns the rows kept (of the rows before)."""
        nonlocal rows, losses, best
        if train_step.static:  # rows stay, frozen: the step keeps its shape
            for r, i in enumerate(rows):
                if not active[i] and i not in dropped:
                    opt.freeze(r)
                    dropped.add(i)
            return list(range(len(rows)))
        kept = [r for r, i in enumerate(rows) if active[i]]
        if kept and len(kept) < len(rows):  # none left: the epoch loop ends anyway
            at = torch.tensor(kept, device=device)
            model.keep(at)
            best = best[at]
            opt.keep(kept)
            losses = [loss[at] for loss in losses]
            rows = [rows[r] for r in kept]
        return kept

    def wall() -> float:
        return time.perf_counter() - wall0

    def notes(i: int) -> tuple[str, ...]:
        """What member i's run says about itself: its checkpoints', then the step's."""
        return (*ckpts[i].notes, *train_step.notes)

    def each() -> dict:
        """How evaluate_members reads the splits: shared, or each member's fold."""
        return {"each": True, "std": data.target_std(rows)} if data.folded else {}

    yield from resume()
    for epoch in range(first_epoch, base.epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=gens[i], device=device) for i in rows])
        clock.start()
        for i in range(0, n, bs):
            clock.hold_while_paused()
            if should_stop():
                stop = "cancelled"
                break
            if (gone := skipped()) and any(members[i].run_id in gone for i in rows):
                yield from skip(gone)
                if not any(active):
                    stop = "skipped"
                    break
                perms = perms[drop_inactive()]
            idx = perms[:, i : i + bs]
            losses.append(train_step(rows, idx, lr_factor(base.schedule, step, total_steps)))
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
                if not any(active):  # every member diverged: nothing left to train
                    stop = "diverged"
                    break
        clock.stop()
        if stop in ("cancelled", "diverged", "skipped"):
            break
        yield from report(epoch, end_of_epoch=samples == epoch * n, full=True)
        if base.patience is not None:
            yield from early_stop()
        if epoch in cuts and stop != "budget" and any(active):
            yield from prune(epoch)
        if pbt and epoch % base.pbt_interval == 0 and epoch < base.epochs and stop != "budget":
            exploit(epoch)
        clock.reported()
        if stop == "budget" or not any(active):
            break
        if ckpts[rows[0]].due(epoch, last_epoch=epoch == base.epochs):
            save_last(epoch)

    test: list[dict[str, float]] = [{} for _ in range(k)]
    analysis: list[dict[str, list]] = [{} for _ in range(k)]
    if stop not in ("cancelled", "diverged", "skipped"):
        rows_test, out = test_best([r for r, i in enumerate(rows) if i not in dropped])
        for r, i in enumerate(rows):
            test[i] = rows_test[r]
            analysis[i] = with_pbt(i, analyse_outputs(members[i].config, out[r], data.of(i).val.y))
    wall_s = wall()
    now = (step, samples, clock.train_s)
    budget_reason = clock.budget_reason if stop == "budget" else ""
    for i, m in enumerate(members):
        ledger = ledgers[i]
        if i not in left:  # else its Finished went out as it left (pruned, diverged, skipped)
            if stop == "cancelled":
                ledger.stop("cancelled", "stopped by request", ledger.stopped_at)
            elif not ledger.reason:
                ledger.reason = budget_reason
        ckpts[i].ended(ledger.status)
        if i not in left:
            yield ledger.finished(m.run_id, n, now, wall_s, test[i], analysis[i], notes=notes(i))
