#!/usr/bin/env bash
# Start, or restart after an interruption, the reference protocol on a CPU machine in the background.
#
#   benchmarks/cpu_protocol.sh [RUN_ROOT]          (RUN_ROOT defaults to ~/runs)
#   VARIANTS="reference augment authors size192" benchmarks/cpu_protocol.sh ~/runs-grid   (the variant grid)
#   benchmarks/cpu_protocol.sh ~/runs-grid --prioritize models/augment/nested_unet/seed0/model.pt
#   TEST_RAW=/path/to/stage1_test_images.zip VARIANTS="..." benchmarks/cpu_protocol.sh ~/runs-grid   (+ test set)
#
# Arguments after RUN_ROOT go to snakemake as they are (for example --prioritize TARGET..., which trains the
# named models first: with two trainings at a time, the order decides which results a session sees).
#
# VARIANTS (default: the clone's params.yaml as committed, i.e. the reference alone) names the protocol
# variants of params.yaml to run: the clone's run_variants and preprocess.sizes are set to them (an edit of the
# clone's params.yaml, so the onsuccess hook still records the run in its dvc.lock).
#
# The run lives outside any working copy used for development: its own clone of this repository
# ($RUN_ROOT/unetpp, made from this checkout's HEAD the first time and never pulled by this script), its
# resume checkpoints ($RUN_ROOT/checkpoints, via UNETPP_CHECKPOINT_DIR) and its logs ($RUN_ROOT/logs).
# Rerunning the script after a kill, a reboot or a new session resumes every training at its last completed
# epoch. It runs the main job's pipeline with two trainings at a time, one thread each (params.yaml
# train.threads: 1; `--resources gpu=2` is Snakemake's count of concurrent trainings, GPU or not).
# RAW may point at the real stage1_train.zip (default: ../shared/data/dsb2018/stage1_train.zip).
# TEST_RAW, if set, is a test set in the Kaggle layout (e.g. stage1_test_images.zip): the clone's params.yaml
# then lists it in test.sets as stage1_test, so every trained model also gets its test-set job (submission.csv).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN_ROOT=${1:-$HOME/runs}
shift || true
CLONE=$RUN_ROOT/unetpp
RAW=${RAW:-$REPO/../shared/data/dsb2018/stage1_train.zip}
mkdir -p "$RUN_ROOT/logs" "$RUN_ROOT/checkpoints"

if [ -f "$RUN_ROOT/snakemake.pid" ] && kill -0 "$(cat "$RUN_ROOT/snakemake.pid")" 2>/dev/null; then
    echo "already running: pid $(cat "$RUN_ROOT/snakemake.pid") (log: $(ls -t "$RUN_ROOT"/logs/snakemake-*.log | head -1))"
    exit 0
fi
[ -f "$RAW" ] || { echo "no raw data at $RAW: set RAW=/path/to/stage1_train.zip" >&2; exit 1; }
[ -d "$CLONE/.git" ] || git clone --quiet "$REPO" "$CLONE"
cd "$CLONE"
echo "run clone at $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-70))"
if [ ! -x .venv/bin/unetpp ]; then
    python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 && .venv/bin/pip install -q -e .
fi
# Link the raw zip only when the link is missing or points elsewhere: a new link has a new mtime, which
# Snakemake takes as new input, rerunning ingest and everything after it on every restart.
TARGET="$(cd "$(dirname "$RAW")" && pwd)/$(basename "$RAW")"
mkdir -p data/raw
[ "$(readlink data/raw/stage1_train.zip 2>/dev/null)" = "$TARGET" ] || ln -sfn "$TARGET" data/raw/stage1_train.zip

if [ -n "${TEST_RAW:-}" ]; then
    [ -f "$TEST_RAW" ] || { echo "no test set at $TEST_RAW" >&2; exit 1; }
    TEST_TARGET="$(cd "$(dirname "$TEST_RAW")" && pwd)/$(basename "$TEST_RAW")"
    [ "$(readlink data/raw/stage1_test_images.zip 2>/dev/null)" = "$TEST_TARGET" ] \
        || ln -sfn "$TEST_TARGET" data/raw/stage1_test_images.zip
    # test.sets: [] -> the one set (an edit of the clone's params.yaml only, as VARIANTS below).
    sed -i -E 's|^  sets: \[\]$|  sets:\n  - name: stage1_test\n    raw: data/raw/stage1_test_images.zip|' params.yaml
fi
if [ -n "${VARIANTS:-}" ]; then
    # run_variants: [*a, *b] (aliases of the declared variants) and their distinct sizes, in the clone only.
    .venv/bin/python - "$VARIANTS" <<'PY'
import re, sys, yaml
names = sys.argv[1].split()
text = open("params.yaml").read()
declared = yaml.safe_load(text)["variants"]
unknown = [n for n in names if n not in declared]
if unknown:
    sys.exit(f"VARIANTS: {', '.join(unknown)} not declared in params.yaml (declared: {', '.join(declared)})")
sizes = list(dict.fromkeys(declared[n]["size"] for n in names))
text = re.sub(r"(?m)^run_variants:\n(?:- .*\n)+", "run_variants:\n" + "".join(f"- *{n}\n" for n in names), text)
text = re.sub(r"(?m)^(  sizes:\n)(?:  - .*\n)+", lambda m: m.group(1) + "".join(f"  - {s}\n" for s in sizes), text)
for n in names:  # an anchor `dvc exp run -S` dropped
    text = re.sub(rf"(?m)^  {re.escape(n)}:\s*$", f"  {n}: &{n}", text)
open("params.yaml", "w").write(text)
print(f"variants: {' '.join(names)}; sizes: {sizes}")
PY
fi
export UNETPP_CHECKPOINT_DIR=$RUN_ROOT/checkpoints
# shellcheck disable=SC1091
. .venv/bin/activate
snakemake --unlock >/dev/null 2>&1 || true  # a killed snakemake leaves its lock behind
# The raw zip is linked from a shared disk whose files may get new mtimes between sessions; Snakemake
# compares the zip by content only up to --max-checksum-file-size (the profiles set 1GB; clones made before
# they did get it here), or it reruns ingest and every training after it.
LOG=$RUN_ROOT/logs/snakemake-$(date -u +%Y%m%dT%H%M%SZ).log
# Higher priority than tests and builds on the same machine (where allowed; otherwise nice warns and goes on).
# With the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled = 1), a process's nice
# value only ranks it within its session: every other terminal session or job still gets an equal share of
# the CPU. So the run gets a session of its own (setsid), and that session's autogroup the same nice value.
nohup setsid nice -n -10 snakemake --cores 2 --resources gpu=2 --rerun-incomplete --max-checksum-file-size 1GB "$@" >"$LOG" 2>&1 &
echo $! >"$RUN_ROOT/snakemake.pid"
sleep 1
echo -10 >"/proc/$!/autogroup" 2>/dev/null || echo "note: could not raise the run's autogroup priority"
echo "started snakemake (pid $!), log $LOG; training logs in $CLONE/logs/train/"
