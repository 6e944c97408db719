#!/usr/bin/env bash
# The ASMOL claim on the synthetic funnel: does training on all stages with all-scenario labels
# raise ASH@K over exposure-only training? Three seeds each, then a side-by-side comparison.
#   bash bench/asmol-vs-exposure.sh [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs}
[ -f datasets/small/train.parquet ] || node bin/resflow.js data synth --preset small --seed 1 --out datasets/small
for seed in 1 2 3; do
  node bin/resflow.js -q train configs/prerank-exposure-only.yaml --set runtime.seed=$seed --runs-dir "$runs"
  node bin/resflow.js -q train configs/asmol.yaml --set runtime.seed=$seed --runs-dir "$runs"
done
node bin/resflow.js compare "$runs/prerank" --format md || true
