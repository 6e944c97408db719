#!/usr/bin/env bash
# The GPU check of README.md, "Backends": one short run on a machine with a GPU (about 5 minutes).
#   1. which GPU and Vulkan driver there are (nvidia-smi, the Vulkan loader's driver manifests,
#      vulkaninfo --summary when vulkan-tools is installed);
#   2. which WebGPU adapter Dawn offers resflow (vendor, architecture, description, fallback or not);
#   3. bench:train on webgpu and on wasm at batch sizes 1024 to 65536: training and scoring samples/s;
#   4. bench:step-phases on webgpu: a step's phases, the batch's upload and read-back, the read-ahead.
# Needs a built tree with the optional packages installed (npm ci; webgpu and
# @tensorflow/tfjs-backend-webgpu). Prints everything; exits 0 even when no adapter appears, saying why.
#   bash scripts/gpu-check.sh [BATCH_SIZES]        (default: "1024 4096 16384 65536")
set -uo pipefail
cd "$(dirname "$0")/.."
SIZES=${1:-"1024 4096 16384 65536"}
section() { printf '\n== %s\n' "$*"; }

section "machine"
uname -srm; nproc; cat /proc/loadavg
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi: not found"

section "Vulkan"
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  [[ -d $d ]] && { echo "$d:"; ls "$d"; }
done
ldconfig -p 2> /dev/null | grep -E 'libvulkan\.so|libGLX_nvidia|libnvidia-glcore' || echo "no libvulkan.so / NVIDIA GL libraries in the linker cache"
if command -v vulkaninfo > /dev/null; then
  timeout 60 vulkaninfo --summary 2>&1 | head -60
else
  echo "vulkaninfo: not installed (apt-get install vulkan-tools)"
fi

section "build"
npm run build --silent || { echo "build failed"; exit 1; }

section "Dawn's adapter (auto takes webgpu only for a hardware one)"
node --input-type=module -e "
const { webgpuAdapter, describeAdapter } = await import('./dist/src/kernels/webgpu.js');
const r = await webgpuAdapter();
console.log(r.ok ? 'adapter: ' + describeAdapter(r.adapter) + '\n' + JSON.stringify(r.adapter, null, 2) : 'no adapter: ' + r.reason);
"

section "bench:train, samples/s (model of bench/reference-model.ts)"
for batch in $SIZES; do
  steps=$(( 40 * 1024 / batch )); (( steps < 4 )) && steps=4
  for backend in webgpu wasm; do
    echo "-- $backend, batch $batch, $steps steps x 3 repeats"
    timeout 240 node dist/bench/train.js --backend "$backend" --batch "$batch" --steps "$steps" --repeats 3 2>&1 | grep -v '^Warning: maxDynamic' | tail -6
    echo "(exit $?; load $(cut -d' ' -f1-3 /proc/loadavg))"
  done
done

section "where a webgpu step's time goes: phases, upload and read-back (bench/step-phases.ts)"
for batch in 1024 16384; do
  echo "-- webgpu, batch $batch"
  timeout 180 node dist/bench/step-phases.js --backend webgpu --batch "$batch" --steps 8 2>&1 | grep -v '^Warning: maxDynamic' | tail -14
done
