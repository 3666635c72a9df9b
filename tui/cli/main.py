"""`hypertui` on the command line: the TUI with no arguments, headless commands otherwise.

Exit codes: 0 success, 2 bad input (one clear line on stderr, never a traceback), 1 a
failure during a run, 130 interrupted (the message says how to resume).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from hypertui import __version__
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.tui.cli.args import add_set_option, parse_sets
from hypertui.tui.cli.exits import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: same exit code as ours
        self.print_usage(sys.stderr)
        print(f"hypertui: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hypertui",
        description="A terminal hyperparameter lab for PyTorch. "
        "Run with no arguments for the interactive app.",
        epilog="Examples: hypertui run quickstart | hypertui runs | hypertui export --out runs.csv",
    )
    parser.add_argument("--version", action="version", version=f"hypertui {__version__}")
    parser.add_argument(
        "--store", type=Path, help="run store file (default: $HYPERTUI_HOME/runs.sqlite)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("presets", help="list the shipped and user presets")
    p.set_defaults(handler=cmd_presets)

    p = sub.add_parser("run", help="run a preset (or a preset file) headless")
    p.add_argument("preset", nargs="?", help="preset name or path to a .toml file")
    add_set_option(p, "fix a config field (repeatable); a swept field stops being swept")
    p.add_argument("--seeds", type=int, help="seeds per point (overrides the preset)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument(
        "--full", action="store_true", help="the preset's full version (its [full] table)"
    )
    p.add_argument("--resume", metavar="SWEEP_ID", help="run the unfinished trials of a sweep")
    p.add_argument(
        "--detach",
        action="store_true",
        help="train in a background runner that outlives this terminal; print how to attach",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run failed trials again too (by default they stay failed)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.add_argument("--data-dir", type=Path, help="MNIST folder (default: $HYPERTUI_DATA)")
    p.add_argument(
        "--no-population",
        dest="population",
        action="store_false",
        help="train trials one by one instead of as stacked populations",
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        help="where trials train: this process (default) or Ray workers (hypertui[ray])",
    )
    p.add_argument(
        "--address",
        help="with --backend ray: an existing cluster (auto | HOST:PORT | ray://HOST:PORT); "
        "default: a local Ray instance on this machine",
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="train N units (populations or trials) at once, each in its own process "
        "(default: the preset's jobs, else one per GPU, one on a CPU)",
    )
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("attach", help="open the app on a running sweep (default: the newest)")
    p.add_argument("sweep_id", nargs="?")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_attach)

    for action, text in (
        ("pause", "hold a running sweep between two steps"),
        ("resume", "go on with a paused sweep (`run --resume` restarts an interrupted one)"),
        ("skip", "end a running trial (or the running unit) of a sweep; it reruns on resume"),
        ("cancel", "stop a sweep; finished trials stay, the rest can be resumed"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("sweep_id")
        if action == "skip":
            p.add_argument(
                "trial",
                nargs="?",
                help="a running trial (its number or run id): it alone ends, its population "
                "goes on; default: everything running now",
            )
        p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(handler=cmd_control, action=action)

    p = sub.add_parser(
        "import-tb", help="read TensorBoard logs into the store (each folder of event files a run)"
    )
    p.add_argument("logdir", type=Path, help="the folder TensorBoard logs to")
    p.add_argument("--name", help="the sweep's name (default: the folder's name)")
    p.add_argument("--metric", help="the tag that ranks the runs (default: a val* tag)")
    p.add_argument("--mode", choices=("min", "max"), help="whether lower or higher is better")
    p.add_argument(
        "--follow", action="store_true", help="keep reading as the logs grow (Ctrl-C stops)"
    )
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_import_tb)

    p = sub.add_parser(
        "export-model", help="write a run's best weights (safetensors) and a JSON of its config"
    )
    p.add_argument("run_id")
    p.add_argument("--out", type=Path, help="file to write (default: $HYPERTUI_HOME/exports/...)")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_export_model)

    p = sub.add_parser("predict", help="a table run's predictions for new rows of a CSV")
    p.add_argument("run_id")
    p.add_argument("data", type=Path, help="a .csv or .parquet file with the model's columns")
    p.add_argument("--out", type=Path, required=True, help="the CSV to write")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("delete", help="delete a sweep with its runs and curves")
    p.add_argument("sweep_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_delete)

    p = sub.add_parser("runs", help="list sweeps, the runs of one, or several compared")
    p.add_argument("sweep_id", nargs="*", metavar="SWEEP_ID", help="two or more: as compare")
    p.add_argument("--all", action="store_true", help="every group of the comparison, not the top")
    p.add_argument("--json", action="store_true", help="one JSON object per sweep or run a line")
    p.add_argument("--tag", help="only the sweeps with this tag")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("compare", help="several sweeps in one comparison table")
    p.add_argument("sweep_ids", nargs="+", metavar="SWEEP_ID", help="two or more sweeps")
    p.add_argument("--all", action="store_true", help="every group, not the top")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("tag", help="tag a sweep, write a note on it, or name it")
    p.add_argument("sweep_id")
    p.add_argument("tags", nargs="*", help="tags to add (letters, digits, _ . : + -)")
    p.add_argument("--remove", nargs="+", default=[], metavar="TAG", help="tags to take away")
    p.add_argument("--note", help='a note on the sweep ("" removes it)')
    p.add_argument("--name", help='what lists call it instead of its preset ("" removes it)')
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_tag)

    p = sub.add_parser("show", help="one run: config, metrics and curve summary")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="the run and its curve as one JSON object")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("export", help="write a sweep's runs (or its comparison) as CSV or Markdown")
    p.add_argument("sweep_id", nargs="?", help="default: the newest sweep")
    p.add_argument(
        "--out", type=Path, help="file to write, - for stdout (default: $HYPERTUI_HOME/exports/...)"
    )
    p.add_argument(
        "--grouped", action="store_true", help="the grouped comparison, not one row per run"
    )
    p.add_argument(
        "--curves",
        action="store_true",
        help="every report of every run (epoch, step, samples, seconds, every metric)",
    )
    p.add_argument(
        "--format",
        choices=("csv", "md"),
        default="csv",
        help="md writes the grouped comparison as a Markdown table",
    )
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("analyze", help="which swept fields matter, slices, top configs, verdicts")
    p.add_argument("sweep_id", nargs="?", help="default: the newest sweep")
    p.add_argument("--metric", help="default: the problem's main metric (val_mse or val_acc)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--scale",
        choices=("linear", "log", "rank"),
        help="read the metric on this scale (default: log when its values span more than "
        "2 orders of magnitude, else linear); the output says which",
    )
    p.add_argument(
        "--pareto",
        action="store_true",
        help="the Pareto front of the preset's objectives (default: the metric and train_s), "
        "over configs: its members as a table",
    )
    p.add_argument(
        "--objectives",
        metavar="A,B",
        help="--pareto of these (e.g. val_mse,params): the ranking metric first, then "
        "train_s, params or other validation metrics",
    )
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("report", help="judge every shipped preset's claim; write a Markdown table")
    p.add_argument("presets", nargs="*", metavar="PRESET", help="default: every shipped preset")
    p.add_argument("--out", type=Path, default=Path("STUDY.md"), help="default: STUDY.md")
    p.add_argument(
        "--force", action="store_true", help="replace --out even if report did not write it"
    )
    p.add_argument(
        "--no-run", dest="run", action="store_false", help="only collect sweeps already stored"
    )
    p.add_argument("--data-dir", type=Path, help="MNIST folder (default: $HYPERTUI_DATA)")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "replay-halving",
        help="what successive halving would have stopped in a sweep that ran in full",
    )
    p.add_argument("sweep_id")
    p.add_argument(
        "--seeds-per-replay",
        type=int,
        metavar="N",
        help="also replay each group of N seeds on its own (10 seeds, N=1: 10 replays)",
    )
    p.add_argument(
        "--from",
        dest="prune_from",
        type=int,
        default=1,
        metavar="EPOCH",
        help="the first rung, as prune_from in a preset (default 1)",
    )
    p.add_argument(
        "--eta",
        dest="prune_eta",
        type=int,
        default=3,
        metavar="N",
        help="keep the best 1/N at each rung, as prune_eta (default 3)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_replay_halving)

    p = sub.add_parser(
        "lr-find", help="learning-rate range test of a preset; writes a preset with the lr"
    )
    p.add_argument("preset", help="preset name or path to a .toml file")
    p.add_argument("--steps", type=int, default=100, help="steps of rising lr (default 100)")
    p.add_argument("--start", type=float, default=1e-7, help="first lr (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last lr (default 10)")
    p.add_argument(
        "--spread",
        type=float,
        help="write lr as a sweep [lr/S, lr, lr*S] instead of one value (e.g. 3)",
    )
    p.add_argument("--no-write", action="store_true", help="print only; write no preset")
    add_set_option(p, "fix a config field first (repeatable)")
    p.add_argument("--data-dir", type=Path, help="MNIST folder (default: $HYPERTUI_DATA)")
    p.set_defaults(handler=cmd_lr_find)
    return parser


_OPENED: list = []  # stores this command opened: their damaged rows are named at the end


def open_store(args, create: bool = False):
    """The run store; only `run` creates one, a read command on a wrong path says so."""
    from hypertui.engine.core.paths import default_store_path
    from hypertui.engine.store.store import Store

    store = Store(args.store or default_store_path(), create=create)
    _OPENED.append(store)
    return store


def warn_damaged() -> None:
    for store in _OPENED:
        for line in dict.fromkeys(store.damaged):
            print(f"hypertui: a damaged row in {store.path}: {line}", file=sys.stderr)


def cmd_presets(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from hypertui.engine.sweeps.presets import catalogue
    from hypertui.tui.text.safe import escape, plain

    cat = catalogue()
    table = Table("name", "problem", "trials", "description", box=None, pad_edge=False)
    for preset in sorted(cat.presets.values(), key=lambda p: (p.problem, p.name)):
        origin = "" if preset.shipped else " (user)"
        table.add_row(
            plain(preset.name + origin),
            preset.problem,
            str(preset.n_trials),
            plain(preset.description),
        )
    console = Console()
    console.print(table)
    for message in cat.errors.values():
        console.print(f"[red]invalid preset[/red] {escape(message)}", highlight=False)
    return EXIT_OK


def cmd_run(args) -> int:
    from hypertui.engine.sweeps.backends import check_backend

    if not args.resume:  # validate before importing torch: a typo answers in a moment
        if args.retry_failed:
            raise ConfigError("--retry-failed goes with --resume SWEEP_ID")
        preset = _preset_for_run(args)
        check_backend(run_options(args))  # before the sweep: no Ray, no sweep
        check_own_model(preset)  # one build in a child process: a wrong model, no sweep
    from hypertui.engine.store.store import refuse_runner
    from hypertui.engine.sweeps.sweep import create_sweep

    gc.freeze()  # torch's objects live as long as we do: no collection need walk them again
    store = open_store(args, create=True)
    if args.resume:
        if args.preset or args.sets or args.seeds or args.full:
            raise ConfigError(
                "--resume runs a sweep as it was created; drop the preset, --set, --seeds"
                " and --full (--device, --no-population and --retry-failed apply)"
            )
        sweep = store.sweep(args.resume)
        refuse_runner(sweep)  # a script's runs: nothing for a runner to resume
        if sweep.running:
            raise HypertuiError(
                f"sweep {sweep.id} is running (process {sweep.pid} on {sweep.host});"
                f" `hypertui attach {sweep.id}` follows it"
            )
        sweep_id = sweep.id
        options = {**sweep.options, **run_options(args, resumed=True)}
        if args.backend == "local":  # back from Ray: the cluster's address goes too
            options.pop("address", None)
        if args.backend == "ray" and args.jobs is None:  # Ray places the units itself
            options.pop("jobs", None)
        check_backend(options)  # Ray missing, no cluster: one line, nothing changed
        store.set_options(sweep_id, options)
        if args.device:
            device = parse_sets([f"device={args.device}"])["device"]
            store.set_device(sweep_id, device, retry_failed=args.retry_failed)
        store.request(sweep_id, "clear")  # a resume is a fresh start: no old cancel holds
    else:
        sweep_id = create_sweep(store, preset, run_options(args))
    if args.detach:
        return detach(store, sweep_id, args.retry_failed)
    from hypertui.tui.cli.headless import run_headless

    return run_headless(store, sweep_id, as_json=args.json, retry_failed=args.retry_failed)


def run_options(args, resumed: bool = False) -> dict:
    """How the sweep's runner trains it, stored with the sweep (a resume may change them)."""
    options: dict = {}
    if not resumed or not args.population:
        options["population"] = args.population
    if not resumed:  # what History shows beside the preset's name
        changed = [*args.sets, *([f"seeds={args.seeds}"] if args.seeds else [])]
        changed += [f"device={args.device}"] if args.device else []
        changed += ["--full"] if args.full else []
        if changed:
            options["overrides"] = " ".join(changed)
    if args.data_dir:
        options["data_dir"] = str(args.data_dir.resolve())
    if args.backend:
        options["backend"] = args.backend
    if args.address:
        options["address"] = args.address
    if args.jobs is not None:
        options["jobs"] = args.jobs
    return options


def detach(store, sweep_id: str, retry_failed: bool) -> int:
    from hypertui.engine.sweeps.runner import launch

    if retry_failed:
        store.reset_failed(sweep_id)
    launched = launch(store.path, sweep_id)
    store_arg = f" --store {store.path}" if store.path != _default_store() else ""
    print(
        f"sweep {sweep_id} runs in the background (runner pid {launched.pid}); it goes on"
        f" when this terminal closes.\n"
        f"  log:     {launched.log}\n"
        f"  attach:  hypertui{store_arg} attach {sweep_id}\n"
        f"  control: hypertui{store_arg} pause|resume|skip|cancel {sweep_id}"
    )
    return EXIT_OK


def _default_store() -> Path:
    from hypertui.engine.core.paths import default_store_path

    return default_store_path()


def cmd_attach(args) -> int:
    store = open_store(args)
    if args.sweep_id:
        sweep = store.sweep(args.sweep_id)
    else:
        running = store.running_sweeps()
        if not running:
            raise HypertuiError(
                f"no sweep is running in {store.path}; `hypertui runs` lists them,"
                " `hypertui attach SWEEP_ID` opens any of them"
            )
        sweep = running[0]
    store.close()
    from hypertui.tui.app.app import HypertuiApp

    return run_app(HypertuiApp(store_path=store.path, attach=sweep.id))


def run_app(app) -> int:
    """Run the app; then say which sweeps go on without it and how to come back."""
    app.run()
    if app.farewell:
        print(app.farewell)
    return EXIT_OK


def cmd_control(args) -> int:
    from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store

    store = Store(args.store or _default_store(), create=False, lock_wait_s=UI_LOCK_WAIT_S * 8)
    sweep = store.sweep(args.sweep_id)
    if not sweep.running:
        hint = f"; `hypertui run --resume {sweep.id}` restarts it" if sweep.resumable else ""
        raise HypertuiError(f"sweep {sweep.id} is not running (it is {sweep.status}){hint}")
    run_id, said = (
        "",
        {
            "pause": "pause requested: the runner holds before its next step",
            "resume": "resume requested: the runner goes on",
            "cancel": "cancel requested: the running trial stops, the rest stay pending",
        }.get(args.action, ""),
    )
    if args.action == "skip":
        run_id, said = _skip(store, sweep, getattr(args, "trial", None))
    store.request(sweep.id, args.action, run_id)
    print(f"sweep {sweep.id}: {said}")
    return EXIT_OK


def check_own_model(preset) -> None:
    """A ConfigError when the preset's own model imports but cannot train: it raises,
    exits, is not a Module or answers the wrong shape (checked on its first config)."""
    from hypertui.engine.core.config import MODELS

    _, config = next(preset.points())
    if preset.problem == "function":  # the user's function: imported once, in a child
        from hypertui.engine.sweeps.apart import check_function

        if why := check_function(config["train"]):
            raise ConfigError(why)
        return
    if config.model in MODELS:
        return
    from hypertui.engine.sweeps.apart import check_build

    if why := check_build(config.to_dict()):
        raise ConfigError(why)


def _skip(store, sweep, trial: str | None) -> tuple[str, str]:
    """The run a skip names ('' for all that run) and what to tell the user."""
    running = [r for r in store.runs(sweep.id, analysis=False) if r.status == "running"]
    if trial is None:
        if len(running) > 1:
            return "", (
                f"skip requested: the {len(running)} running trials end as cancelled and "
                f"rerun on resume (`hypertui skip {sweep.id} TRIAL` ends one alone)"
            )
        return "", "skip requested: the running trial ends as cancelled and reruns on resume"
    runs = store.runs(sweep.id, analysis=False)
    found = [
        r for r in runs if str(r.idx + 1) == trial or (len(trial) >= 4 and r.id.startswith(trial))
    ]
    if len(found) != 1:
        raise HypertuiError(
            f"sweep {sweep.id} has no trial {trial!r}: give its number (1-{len(runs)}) or "
            "run id (`hypertui runs` lists them)"
        )
    run = found[0]
    if run.status != "running":
        raise HypertuiError(f"trial {run.idx + 1} ({run.id}) is not running (it is {run.status})")
    return run.id, (
        f"skip requested: trial {run.idx + 1} ({run.id}) ends as cancelled and reruns on "
        "resume; the rest go on"
    )


def cmd_delete(args) -> int:
    store = open_store(args)
    sweep = store.sweep(args.sweep_id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise HypertuiError(f"delete sweep {sweep.id}: add --yes to confirm (no terminal)")
        answer = input(f"Delete sweep {sweep.id} ({sweep.preset}, {sweep.n_runs} runs)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    store.delete_sweep(sweep.id)
    print(f"deleted sweep {sweep.id} ({sweep.n_runs} runs)")
    return EXIT_OK


def cmd_export_model(args) -> int:
    from hypertui.engine.core.paths import expand_user
    from hypertui.engine.sweeps.model_out import export_model

    out = Path(expand_user(str(args.out), f"--out {args.out}")) if args.out else None
    weights, sidecar = export_model(open_store(args), args.run_id, out)
    print(f"wrote {weights}\nwrote {sidecar}")
    return EXIT_OK


def cmd_predict(args) -> int:
    from hypertui.engine.core.paths import expand_user
    from hypertui.engine.sweeps.model_out import predict

    data = Path(expand_user(str(args.data), str(args.data)))
    out = Path(expand_user(str(args.out), f"--out {args.out}"))
    done = predict(open_store(args), args.run_id, data, out)
    for note in done.notes:
        print(note)
    print(
        f"wrote {done.rows} predictions to {done.path}" + (f" ({done.error})" if done.error else "")
    )
    return EXIT_OK


def _preset_for_run(args):
    from hypertui.engine.sweeps.presets import find_preset

    if not args.preset:
        raise ConfigError("name a preset (`hypertui presets` lists them) or use --resume ID")
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be at least 1")
    preset = find_preset(args.preset)
    if preset.problem == "function":  # its keys are the function's: any plain value
        from hypertui.engine.sweeps.function_preset import parse_plain

        values = {}
        for pair in args.sets:
            key, sep, text = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set lr=0.01")
            values[key.strip()] = parse_plain(text)
        if args.device:
            values["device"] = args.device
    else:
        values = parse_sets(args.sets)
        if args.device:
            values["device"] = parse_sets([f"device={args.device}"])["device"]
    if args.full and not preset.full:
        raise ConfigError(
            f"--full: preset {preset.name!r} has no full version (no [full] table); "
            "run it without --full"
        )
    return preset.with_overrides(values, args.seeds, args.full)


def cmd_import_tb(args) -> int:
    import signal

    from hypertui.engine.tracking.tensorboard import event_loader, import_logdir

    event_loader()  # missing: one line on how to install it, before the store is touched
    store = open_store(args, create=True)
    logdir = args.logdir.expanduser()
    name = args.name or logdir.resolve().name or "tensorboard"
    stop: list[int] = []
    if args.follow:  # Ctrl-C or a kill ends the runs as read so far, never mid-write
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda number, frame: stop.append(number))
        print(f"following {logdir}: Ctrl-C stops (`hypertui attach` watches it)", flush=True)
    sweep_id = import_logdir(
        store,
        logdir,
        name,
        args.metric,
        args.mode,
        args.follow,
        say=lambda text: print(text, flush=True),
        stopped=lambda: bool(stop),
    )
    store_arg = f" --store {store.path}" if store.path != _default_store() else ""
    print(f"  hypertui{store_arg} runs {sweep_id}   ·   hypertui{store_arg} attach {sweep_id}")
    return EXIT_OK


def cmd_runs(args) -> int:
    from hypertui.tui.text.report import TOP_ROWS, print_runs, print_sweeps

    store = open_store(args)
    ids = list(dict.fromkeys(args.sweep_id))
    if args.json:
        rows = [r for i in ids for r in store.runs(store.sweep(i).id)] if ids else store.sweeps()
        rows = [r for r in rows if args.tag is None or ids or args.tag in r.tags]
        for row in rows:
            print(_json_line(row))
    elif len(ids) > 1:  # runs A B: the sweeps in one comparison
        args.sweep_ids = ids
        return cmd_compare(args)
    elif ids:
        print_runs(store, store.sweep(ids[0]), top=None if args.all else TOP_ROWS)
    else:
        print_sweeps(store, args.tag)
    return EXIT_OK


def cmd_compare(args) -> int:
    from rich.console import Console

    from hypertui.engine.analysis.compare import compare_sweeps
    from hypertui.tui.text.report import TOP_ROWS, comparison_table

    store = open_store(args)
    sweeps = [store.sweep(i) for i in dict.fromkeys(args.sweep_ids)]
    if len(sweeps) < 2:
        raise ConfigError("compare takes two sweeps or more (`hypertui runs` lists them)")
    comp, runs = compare_sweeps([(s, store.runs(s.id)) for s in sweeps])
    title = "compared: " + ", ".join(f"{s.id} ({s.title})" for s in sweeps)
    Console().print(comparison_table(comp, title, top=None if args.all else TOP_ROWS, runs=runs))
    return EXIT_OK


def cmd_tag(args) -> int:
    sweep = open_store(args).label(args.sweep_id, args.tags, args.remove, args.note, args.name)
    tags = " ".join(f"#{t}" for t in sweep.tags) or "no tags"
    said = [f"sweep {sweep.id} ({sweep.title}): {tags}"] + [f"note: {sweep.note}"] * bool(
        sweep.note
    )
    print("\n".join(said))
    return EXIT_OK


def cmd_show(args) -> int:
    from hypertui.tui.text.report import print_run

    store = open_store(args)
    if args.json:
        run = store.run(args.run_id)
        print(_json_line(run, points=store.points(run.id)))
        return EXIT_OK
    print_run(store, args.run_id)
    return EXIT_OK


def _json_line(row, **more) -> str:
    """A store record (a sweep or a run) as one line of JSON; NaN and infinities as null."""
    import dataclasses
    import json
    import math

    def plain(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    record = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    return json.dumps(plain({**record, **more}), default=str)


def cmd_export(args) -> int:
    from hypertui.engine.analysis.compare import compare_sweep
    from hypertui.engine.analysis.export import (
        curves_csv,
        grouped_csv,
        grouped_markdown,
        runs_csv,
        write_atomic,
        write_output,
    )
    from hypertui.engine.core.paths import export_path
    from hypertui.engine.core.records import OWN_LOOP_PROBLEMS

    grouped = args.grouped or args.format == "md"
    if args.curves and grouped:
        raise ConfigError("--curves writes every report of every run: not with --grouped or md")
    store = open_store(args)
    sweep = store.sweep(args.sweep_id) if args.sweep_id else store.latest_sweep()
    runs = store.runs(sweep.id)
    if args.curves:
        text = curves_csv(runs, {r.id: store.points(r.id) for r in runs})
    elif grouped:
        comp = compare_sweep(sweep, runs)
        text = grouped_markdown(comp) if args.format == "md" else grouped_csv(comp)
    else:
        text = runs_csv(runs, sweep.problem in OWN_LOOP_PROBLEMS)
    kind = "curves" if args.curves else "grouped" if grouped else "runs"
    if str(args.out) == "-":  # the usual spelling of stdout
        sys.stdout.write(text)
        return EXIT_OK
    if args.out:
        path = write_output(args.out, text)
    else:
        path = write_atomic(export_path(sweep.preset, sweep.id, kind, args.format), text)
    print(f"wrote {path} ({kind}, {len(runs)} runs of sweep {sweep.id})")
    return EXIT_OK


def cmd_analyze(args) -> int:
    from hypertui.tui.cli.analysis_report import print_analysis, print_front

    if args.objectives is not None and not args.pareto:
        raise ConfigError("--objectives names the objectives of --pareto: add --pareto")
    if args.pareto and (args.metric or args.scale):
        raise ConfigError("--pareto reads every objective as it is: no --metric or --scale")
    store = open_store(args)
    sweep = store.sweep(args.sweep_id) if args.sweep_id else store.latest_sweep()
    if args.pareto:
        print_front(store, sweep, args.objectives, args.json)
        return EXIT_OK
    print_analysis(store, sweep, args.metric, args.json, args.scale)
    return EXIT_OK


def cmd_report(args) -> int:
    from hypertui.engine.analysis.export import check_output, write_output
    from hypertui.engine.sweeps.study import TITLE, collect, markdown, study_presets

    target = check_output(args.out)  # before any preset trains
    if target.is_file() and not args.force and not _first_line(target).startswith(TITLE):
        raise ConfigError(
            f"{args.out} exists and was not written by `hypertui report`; "
            "name another file with --out, or replace it with --force"
        )
    presets = study_presets(args.presets)
    store = open_store(args, create=args.run)  # running presets makes a store, like `run`
    rows = collect(store, presets, args.run, lambda line: print(line, flush=True), args.data_dir)
    command = " ".join(["hypertui report", *args.presets, *([] if args.run else ["--no-run"])])
    path = write_output(args.out, markdown(rows, command))
    print(f"wrote {path} ({sum(len(r.verdicts) for r in rows)} checks, {len(rows)} presets)")
    return EXIT_OK


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline()
    except OSError:
        return ""


def cmd_replay_halving(args) -> int:
    from hypertui.tui.cli.halving_report import cmd_replay_halving as replay

    if args.seeds_per_replay is not None and args.seeds_per_replay < 1:
        raise ConfigError(f"--seeds-per-replay {args.seeds_per_replay}: must be at least 1")
    if args.prune_from < 1 or args.prune_eta < 2:
        raise ConfigError("--from must be at least 1 and --eta at least 2")
    return replay(args, open_store(args))


def cmd_lr_find(args) -> int:
    from hypertui.tui.cli.lr_find_report import cmd_lr_find as lr_find

    return lr_find(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from hypertui.tui.app.app import HypertuiApp

            return run_app(HypertuiApp(store_path=args.store))
        code = args.handler(args)
    except HypertuiError as exc:
        from hypertui.tui.text.safe import clean

        print(f"hypertui: {clean(exc)}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # `hypertui runs | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    warn_damaged()
    while _OPENED:  # main() may be called again in this process (tests, scripts)
        _OPENED.pop().close()
    return code
