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
# benchmarks/gpu_protocol.py --grid (seeds 0-2 unless GRID_ARGS says otherwise) with --cuda-graph if those
# tests passed on a GPU, stopping at DEADLINE seconds (the unfinished runs' histories are exported). The
# archive, the tests' output and the GPU's name land in $OUT (the device tool's folder; ./gpu_out elsewhere).
# Run again on the still-warm machine within its idle time, it resumes the unfinished runs from their
# checkpoints (gpu_grid/checkpoints) and skips the finished ones.
#
# The whole grid for three seeds is estimated at about 13 minutes with --cuda-graph and 26 without
# (benchmarks/gpu_protocol.py's docstring says how), more than the 10 or so a 15-minute device session leaves
# after the machine's start: with GRID_ARGS="--variant reference --variant augment --variant authors --seed 0
# --seed 1 --seed 2" (the 96x96 variants, an estimated 6.5 minutes with graphs) a session finishes whole
# variants, and a later one adds size192 (GRID_ARGS="--variant size192 ...": the finished runs are skipped).
#
# Environment: OUT, DEADLINE (seconds for the grid, default 480), JOBS (runs at once, default 12),
# GRID_ARGS (instead of "--grid --seed 0 --seed 1 --seed 2", e.g. for a smaller check), UNETPP_SOURCE_COMMIT,
# PYTHON (the interpreter with torch, default python3).
set -uo pipefail

OUT=${OUT:-$PWD/gpu_out}
DEADLINE=${DEADLINE:-480}
JOBS=${JOBS:-12}
GRID_ARGS=${GRID_ARGS:---grid --seed 0 --seed 1 --seed 2}
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
