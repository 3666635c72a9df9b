#!/usr/bin/env bash
# The halving replay target on a lent GPU: `house-study-grid` in full with 10 seeds (the
# population step costs the same for 72 or 360 members there), then `replay-halving`
# with each seed, and each pair of seeds, on its own. Output in $OUT (or ./gpu-out).
#
#   bash bench/gpu_halving.sh                      # on the GPU machine
#   SEEDS=2 EPOCHS=3 bash bench/gpu_halving.sh     # a dry run of the wiring on a CPU
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SEEDS=${SEEDS:-10}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
HYPERTUI_HOME=$(mktemp -d)
export HYPERTUI_HOME
{
  nvidia-smi --query-gpu=name --format=csv,noheader 2>&1
  t0=$SECONDS
  timeout "${LIMIT:-360}" "$PY" -m hypertui run house-study-grid --seeds "$SEEDS" \
    ${EPOCHS:+--set epochs=$EPOCHS} >"$OUT/grid.log" 2>&1
  echo "house-study-grid --seeds $SEEDS: exit $? after $((SECONDS - t0)) s (wall, CLI)"
  tail -c 600 "$OUT/grid.log"
  id=$("$PY" -c 'from hypertui.engine.core.paths import default_store_path as p
from hypertui.engine.store.store import Store
print(Store(p()).latest_sweep().id)')
  "$PY" -m hypertui replay-halving "$id" --seeds-per-replay 1
  "$PY" -m hypertui replay-halving "$id" --seeds-per-replay 2
  "$PY" -m hypertui replay-halving "$id" --seeds-per-replay 1 --json >"$OUT/replay1.json"
  "$PY" -m hypertui replay-halving "$id" --seeds-per-replay 2 --json >"$OUT/replay2.json"
} 2>&1 | tee "$OUT/halving.log"
