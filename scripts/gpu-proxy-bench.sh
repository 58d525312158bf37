#!/usr/bin/env bash
# The GPU check for a machine with PyTorch and CUDA but no network, Node or onnxruntime CUDA build (this workplace's
# lent GPU machines): gpu-worker/tools/gpu_proxy_bench.py, the GPT-2-sized reader alone against reader + SAE + max
# pooling, float16 and float32 SAE products, with and without TF32 in the reader; about a minute on an H100.
# Usage: bash scripts/gpu-proxy-bench.sh [TOKENS]   (prints every figure; with $OUT set, also writes $OUT/gpu-proxy.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${1:-262144}"
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no NVIDIA GPU visible (nvidia-smi failed)"; exit 1; }
log="${OUT:-/tmp}/gpu-proxy.jsonl"
: > "$log"
run() {
  echo "== $*"
  out=$(PYTHONDONTWRITEBYTECODE=1 "$PY" gpu-worker/tools/gpu_proxy_bench.py --device cuda --tokens "$TOKENS" "$@")
  echo "$out"
  echo "$out" | tail -1 >> "$log"
}
# The check first: the timed path against the float64 formulas on the GPU (fails the script when they differ).
run --sae-dtype float16 --tf32 --check
run --sae-dtype float16
run --sae-dtype float32 --tf32
run --sae-dtype float32
# Larger batches (32k tokens each), as a GPU with memory to spare would take them.
run --sae-dtype float16 --tf32 --batch 64 --length 512
echo "figures in $log"
