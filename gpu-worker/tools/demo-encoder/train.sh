#!/usr/bin/env bash
# Retrains the demo encoder end to end (`npm run demo-encoder:train`; ~60 min on 2 cores): collects the public text
# (npm packages in node_modules + Debian packages, see docs/demo-encoder.md), tokenizes it, trains the distributional
# reader, fits the SAE, mines offline labels, builds the offline embedder's lexicon, then installs the artefacts into
# gpu-worker/encoders/demo and writes training-report.json (with the sha256 of the reader the SAE was fitted to).
# Needs: python3 with numpy, scipy, scikit-learn, torch (Debian: python3-numpy python3-scipy python3-sklearn python3-torch),
# and for the full corpus the Debian packages wordnet-base fortunes bible-kjv jargon-text dict-devil python3.11-doc postgresql-doc-15.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-.cache/demo-encoder-train}
TOOLS=gpu-worker/tools/demo-encoder
DEMO=gpu-worker/encoders/demo
HEAVY="$TOOLS/run-heavy.sh"
mkdir -p "$WORK"
t0=$(date +%s)
lap() { echo "[demo-encoder:train] $1 ($(( $(date +%s) - t0 )) s)"; }
"$PY" "$TOOLS/collect_corpus.py" "$WORK/docs.jsonl"; lap 'collected text'
node --import tsx gpu-worker/src/demo-build/tokenize-corpus.ts "$WORK/docs.jsonl" "$WORK"; lap 'tokenized'
"$HEAVY" "$PY" "$TOOLS/train_reader.py" "$WORK" "$WORK/build"; lap 'trained the reader'
"$HEAVY" "$PY" "$TOOLS/train_sae.py" "$WORK" "$WORK/build" "$WORK/sae" --latents 8192 --k 16 --tokens 3000000 --lr 1e-3 --eval-tokens 300000; lap 'fitted the SAE'
"$HEAVY" "$PY" "$TOOLS/mine_labels.py" "$WORK" "$WORK/build" "$WORK/sae" "$DEMO/tokenizer.json" "$WORK/labels.jsonl"; lap 'mined labels'
"$HEAVY" "$PY" "$TOOLS/build_lexicon.py" "$WORK/docs.jsonl" shared/assets/offline-lexicon.txt shared/src/embeddings/offline-lexicon.ts; lap 'built the lexicon'
cp "$WORK/build/reader-weights.safetensors" "$WORK/build/reader.json" "$DEMO/"
mkdir -p "$DEMO/sae"
cp "$WORK/sae/cfg.json" "$WORK/sae/sae_weights.safetensors" "$DEMO/sae/"
cp "$WORK/labels.jsonl" "$DEMO/labels.jsonl"
node --import tsx gpu-worker/src/demo-build/write-report.ts "$WORK" "$(( $(date +%s) - t0 ))"
lap 'installed'
