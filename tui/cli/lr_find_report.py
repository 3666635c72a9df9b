"""`hypertui lr-find PRESET`: the learning-rate range test, its curves as a table, and a
user preset with the suggested lr."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from hypertui.engine.analysis.export import fmt, write_atomic
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.paths import user_presets_dir
from hypertui.engine.sweeps.lr_find import LrFind, lr_find, lr_preset
from hypertui.engine.sweeps.presets import find_preset
from hypertui.tui.cli.args import parse_sets
from hypertui.tui.cli.exits import EXIT_OK
from hypertui.tui.text.report import describe_point

ROWS = 12  # lr values shown per curve
MAX_CURVES = 6  # columns; more configs are summarised by their suggestions only


def curve_table(result: LrFind) -> Table:
    """The smoothed loss of each config at ~ROWS learning rates spread over the test."""
    curves = result.curves[:MAX_CURVES]
    longest = max(curves, key=lambda c: len(c.lrs))
    picks = sorted({round(i * (len(longest.lrs) - 1) / (ROWS - 1)) for i in range(ROWS)})
    table = Table("lr", *(describe_point(c.point) for c in curves), box=None)
    for i in picks:
        table.add_row(
            f"{longest.lrs[i]:.2g}",
            *(fmt(c.losses[i]) if i < len(c.losses) else "stopped" for c in curves),
        )
    return table


def cmd_lr_find(args) -> int:
    for name, value in (("--start", args.start), ("--end", args.end)):
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{name} {value}: must be a positive learning rate")
    if args.start >= args.end:
        raise ConfigError(f"--start {args.start} must be below --end {args.end}")
    if not 10 <= args.steps <= 10_000:
        raise ConfigError(f"--steps {args.steps}: must be between 10 and 10000")
    if args.spread is not None and args.spread <= 1:
        raise ConfigError(f"--spread {args.spread}: must be above 1 (e.g. 3)")
    preset = find_preset(args.preset).with_overrides(parse_sets(args.sets))
    result = lr_find(preset, args.steps, args.start, args.end, args.data_dir)
    console = Console(highlight=False)
    console.print(
        f"lr range test of {preset.name}: {len(result.curves)} config(s), lr {args.start:g} "
        f"-> {args.end:g} over {args.steps} steps, EMA-smoothed batch loss, "
        f"{result.seconds:.1f} s"
    )
    console.print(curve_table(result))
    for c in result.curves:
        console.print(
            f"  {describe_point(c.point)}: valley {fmt(c.valley, 3)}, "
            f"steepest {fmt(c.steepest, 3)}, stopped after {len(c.lrs)} steps"
        )
    try:
        lr = result.suggestion
    except ValueError as exc:
        raise ConfigError(f"{preset.name}: {exc}") from None
    console.print(f"suggested lr: {lr:.3g} (valley; geometric mean over configs)")
    if args.no_write:
        return EXIT_OK
    name, text = lr_preset(preset, lr, args.spread)
    path = write_atomic(user_presets_dir() / f"{name}.toml", text)
    console.print(f"wrote preset {name} ({path}): run it with `hypertui run {name}`")
    return EXIT_OK
