import sys

from bench import (
    analysis,
    attach,
    checkpoints,
    cnn_population,
    folds,
    grid,
    grid_populations,
    jobs,
    mnist_fast,
    overhead,
    pareto,
    pbt,
    population,
    step,
    tpe,
    tracking,
    tui_latency,
    ui_stalls,
)
from bench.common import machine

BENCHMARKS = {
    "overhead": overhead.main,
    "population": population.main,
    "tui": tui_latency.main,
    "stalls": ui_stalls.main,
    "grid": grid.main,
    "gridpop": grid_populations.main,
    "cnnpop": cnn_population.main,
    "mnist": mnist_fast.main,
    "analysis": analysis.main,
    "attach": attach.main,
    "tracking": tracking.main,
    "checkpoints": checkpoints.main,
    "folds": folds.main,
    "pareto": pareto.main,
    "pbt": pbt.main,
    "tpe": tpe.main,
    "jobs": jobs.main,
    "step": step.main,
}

names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(BENCHMARKS)
quick = "--quick" in sys.argv
unknown = [n for n in names if n not in BENCHMARKS]
if unknown:
    sys.exit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
print(machine())
for name in names:
    for text in BENCHMARKS[name](quick=quick):
        print(text, flush=True)
