#!/usr/bin/env bash
# The variant grid on a lent GPU in one device call: what a session with a GPU runs, prepared and tested here.
#
# Prepared on the CPU machine, in the checkout's root (both folders are git-ignored; see docs/pipeline.md):
#   python benchmarks/gpu_bundle.py pack           # .gpu_bundle: the processed 96/192 files, split, val images
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl kornia==0.9.0 kornia_rs==0.2.0   # not on the GPU image
# Then one device call (the `device` tool), from the checkout's root there:
#   UNETPP_SOURCE_COMMIT=<git rev-parse HEAD here> DEADLINE=480 bash benchmarks/gpu_grid_session.sh
#   with carry [".gpu_bundle", ".whl"] and timeout_s 600.
#
# It installs the carried wheels, unpacks and checks the bundle, runs the CUDA-graph tests, then
# benchmarks/gpu_protocol.py with GRID_ARGS (default: the three 96x96 variants, seed 0) and --cuda-graph if those
# tests passed on a GPU, stopping at DEADLINE seconds (the unfinished runs' histories are exported). The
# archive, the tests' output and the GPU's name land in $OUT (the device tool's folder; ./gpu_out elsewhere).
# Run again on the still-warm machine within its idle time, it resumes the unfinished runs from their
# checkpoints (gpu_grid/checkpoints) and skips the finished ones; a fresh machine starts them again.
#
# The whole grid for seeds 0-2 does not fit one lent session (about 10 minutes of device time after the
# machine's start). benchmarks/gpu_grid_estimate.py puts a floor under it from the H200's measured step times
# and the CPU runs' epochs (runs on one GPU take turns, so their GPU-busy times add up): about 26 minutes with
# --cuda-graph, about 33 eager. Per seed: the three 96x96 variants 4.5 minutes at the floor (about 6 eager),
# size192 4.0 (about 5). So one session runs one seed of the 96x96 variants (the default), or of size192
# (GRID_ARGS="--variant size192 --seed 0"); six sessions make seeds 0-2 of the grid.
#
# Environment: OUT, DEADLINE (seconds for the grid, default 480), JOBS (runs at once, default 12),
# GRID_ARGS (gpu_protocol.py's run selection, e.g. "--grid --seed 0 --seed 1 --seed 2" for the whole grid on a
# machine held longer), UNETPP_SOURCE_COMMIT,
# PYTHON (the interpreter with torch, default python3).
set -uo pipefail

OUT=${OUT:-$PWD/gpu_out}
DEADLINE=${DEADLINE:-480}
JOBS=${JOBS:-12}
GRID_ARGS=${GRID_ARGS:---variant reference --variant augment --variant authors --seed 0}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
started=$(date +%s)

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1

(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"

if [ ! -d data/processed ] || [ ! -f data/interim/stage1_train_val.h5 ]; then
    "$PYTHON" benchmarks/gpu_bundle.py unpack .gpu_bundle data || { echo "unpacking .gpu_bundle failed" >&2; exit 1; }
fi

# The CUDA graph's own check: replayed steps against eager capturable ones (skipped without a GPU).
"$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/test_cuda_graph.py >"$OUT/cuda_graph_tests.txt" 2>&1
tests_rc=$?
tail -n 5 "$OUT/cuda_graph_tests.txt"
GRAPH=""
if [ $tests_rc -eq 0 ] && "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    GRAPH=--cuda-graph
fi
echo "training steps: ${GRAPH:-eager} (CUDA graph tests exit status $tests_rc)" | tee -a "$OUT/gpu.txt"

left=$((DEADLINE - ($(date +%s) - started)))
[ "$left" -ge 60 ] || left=60
# shellcheck disable=SC2086  # GRID_ARGS is a list of options
"$PYTHON" benchmarks/gpu_protocol.py $GRID_ARGS --data 'data/processed/dsb2018_{size}.h5' \
    --interim data/interim/stage1_train_val.h5 --split data/processed/split.json \
    --work gpu_grid --archive "$OUT/gpu_grid.tar.gz" --jobs "$JOBS" --threads 1 $GRAPH --deadline "$left" \
    ${UNETPP_SOURCE_COMMIT:+--source-commit "$UNETPP_SOURCE_COMMIT"} 2>&1 | tee "$OUT/gpu_grid.log"
rc=${PIPESTATUS[0]}
echo "grid exit status $rc after $(($(date +%s) - started)) s in all" | tee -a "$OUT/gpu.txt"
exit "$rc"
