#!/usr/bin/env bash
# Runs a training command in its own scheduling group with OpenBLAS left to pick its kernels (see docs/demo-encoder.md:
# on a shared machine the kernel's autogroup scheduler otherwise gives each session an equal share, whatever its nice).
echo -10 > /proc/self/autogroup 2>/dev/null || true
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n -5 "$@"
