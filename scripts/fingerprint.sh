#!/usr/bin/env bash
# Results fingerprint for refactors (docs/architecture.md, Determinism): trains the quickstart (with
# and without the native addon), every config in configs/models/ and one ablation, and prints one line
# per run with short hashes of metrics.json, history.csv (timing column dropped) and the model files.
# Run it before and after a change and diff the two outputs: a refactor must not change a hash.
#   bash scripts/fingerprint.sh > before.txt; ...; bash scripts/fingerprint.sh > after.txt; diff before.txt after.txt
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The quickstart with relu layers too: the models above use prelu, so only this run takes the native
# training program and the stacked objective (src/models/dense-program-train.ts, src/train/losses.ts).
sed -e 's/^name: quickstart/name: quickstart-relu/' -e 's/activation: prelu/activation: relu/' \
  -e "s#\.\./datasets/#$PWD/datasets/#" configs/quickstart.yaml > "$tmp/quickstart-relu.yaml"
for cfg in configs/quickstart.yaml "$tmp/quickstart-relu.yaml" configs/models/*.yaml configs/ablation/residual-none.yaml; do
  node bin/resflow.js --quiet train "$cfg" --runs-dir "$tmp/native" > /dev/null
done
RESFLOW_NO_NATIVE=1 node bin/resflow.js --quiet train configs/quickstart.yaml --runs-dir "$tmp/js" > /dev/null
short() { sha256sum | cut -c1-16; }
for metrics in $(find "$tmp" -name metrics.json | sort); do
  run=$(dirname "$metrics")
  name=$(echo "${run#"$tmp"/}" | sed -E 's#/[0-9]{8}-[0-9]{6}-.*##')
  echo "$name metrics=$(short < "$metrics") history=$(cut -d, -f1-3,5- "$run/history.csv" | short)" \
    "embeddings=$(short < "$run/model/embeddings.bin") weights=$(short < "$run/model/weights.bin")"
done
