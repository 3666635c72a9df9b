#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md in one run (about 9 minutes on an H200), for a lent
# device machine where each minute counts: the CUDA graph step's tests, the population,
# --jobs and telemetry tests on CUDA, `python -m bench step`, NVML's reading, then
# `python -m bench jobs --quick` and `population mnist cnnpop grid`. Output goes to
# $OUT/gpu.log (or ./gpu-out).
#
#   bash bench/gpu.sh            # on the GPU machine, from the repository root
#   QUICK=1 bash bench/gpu.sh    # a dry run of the wiring on a CPU (small sizes)
#
# Needs MNIST in $HYPERTUI_DATA (default ./data: data/MNIST/raw/*-ubyte.gz) and python3
# with torch, rich, pandas and pytest; textual is not needed (the CLI runs headless).
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
quick=${QUICK:+--quick}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HYPERTUI_DATA=${HYPERTUI_DATA:-$PWD/data}
HYPERTUI_HOME=$(mktemp -d)
export HYPERTUI_HOME
step() {  # step SECONDS LABEL COMMAND...: each step has its own time limit, so one slow
  local limit=$1 label=$2  # step cannot eat the time of those after it
  shift 2
  echo "== $label ($(date -u +%H:%M:%S), limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@"
  echo "== $label: exit $? after $((SECONDS - t0)) s"
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  "$PY" -c 'from bench.common import machine; print(machine())'
  step 90 "the recorded (CUDA graph) step against the eager one, on CUDA" \
    "$PY" -m pytest -q -p no:cacheprovider tests/test_static_step.py
  step 150 "population equivalence (the graph step, CUDA's default), --jobs, telemetry" \
    "$PY" -m pytest -q -p no:cacheprovider tests/test_population.py tests/test_jobs.py \
    tests/test_gpus.py
  step 150 "bench step (graph against eager, K = 72, 1024, 8192; bare PyTorch beside)" \
    "$PY" -m bench step $quick
  step 30 "GPU telemetry (NVML; needs nvidia-ml-py)" "$PY" -c \
    'from hypertui.engine.core.gpus import read_gpus, line; g, n = read_gpus(); print([line(x) for x in g] or n or "no GPU")'
  step 240 "bench jobs --quick (--jobs 1 against 2, the grid at 10 epochs)" \
    "$PY" -m bench jobs --quick
  step 150 "bench population" "$PY" -m bench population $quick
  step 90 "bench mnist" "$PY" -m bench mnist $quick
  step 60 "bench cnnpop" "$PY" -m bench cnnpop $quick
  step 220 "bench grid" "$PY" -m bench grid $quick
} 2>&1 | tee "$OUT/gpu.log"
