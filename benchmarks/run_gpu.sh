#!/usr/bin/env bash
# Benchmark 1 on a GPU at the paper's setting (batch 64, 8 cells, 16 channels, 32x32), in one go:
# torch.cuda.max_memory_allocated per pass and CUDA-event timings for DARTS, PC-DARTS, GDAS, ROME K=1 and K=7 over the
# same number of passes, the GDAS and ROME worst-case bounds and the before/after savings, each in a
# fresh process. Writes benchmarks/results/memory_cuda.json and its table in benchmarks/README.md.
# Then the speed benchmark (issue 23) on CUDA: s/iteration NCHW eager vs channels_last vs bf16 for every
# search algorithm, and torch.compile (+ channels_last) for the DARTS-V2 retraining step, with the first-call
# cost: benchmarks/results/speed_cuda.json and its table.
# A few minutes on an H100. Usage: benchmarks/run_gpu.sh [extra `python -m benchmarks memory` options]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export WANDB_MODE=disabled WANDB_SILENT=true
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -m benchmarks memory --device cuda --warmup 2 --passes 28 "$@"
"$PY" -m benchmarks speed --device cuda --compile --bf16
