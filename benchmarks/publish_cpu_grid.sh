#!/usr/bin/env bash
# Publish finished variants of a CPU grid run (benchmarks/cpu_protocol.sh) into a committed folder.
#
#   benchmarks/publish_cpu_grid.sh RUN_ROOT DEST VARIANT [VARIANT...]
#   benchmarks/publish_cpu_grid.sh ~/runs-grid results/cpu_amx_grid authors augment
#
# For each VARIANT, every (arch, seed 0) run must be trained and predicted in the run's clone
# (RUN_ROOT/unetpp). Then, into DEST (relative to this checkout's root):
# - the small files, with the workflow's layout: history.csv and train.json of each model, the val figure
#   (samples.png) and the test-set outputs (submission.csv, predict_test.json) where the clone made them;
# - metrics.json and per_image.csv of each run, evaluated again by this checkout's `unetpp evaluate
#   --interim` from the clone's predictions.h5 (the clone's commit is frozen when its run starts, so this
#   gives every variant the same, current scoring: native size and image kinds);
# - results/variants/<variant>/ by this checkout's `unetpp aggregate`;
# and finally DEST/results/variants.{md,json} by `unetpp compare-variants` over every variant in DEST and, once
# the reference is there, DEST/results/variant_vs_reference.md (benchmarks/variant_vs_reference.py).
# Model weights and predictions are not copied (they are large, and not needed for any figure).
# Every named variant is checked before anything is written, and each is built in a temporary folder inside DEST
# and moved into place only when all of them evaluated and aggregated: a failure leaves DEST as it was. A variant
# published by an earlier call keeps that call's scoring: after a change to evaluate, publish it again too.
# UNETPP: the `unetpp` to run (default: this checkout's .venv/bin/unetpp; its folder's python runs the rest).
set -euo pipefail

RUN_ROOT=${1:?usage: publish_cpu_grid.sh RUN_ROOT DEST VARIANT...}
DEST=${2:?usage: publish_cpu_grid.sh RUN_ROOT DEST VARIANT...}
shift 2
[ $# -gt 0 ] || { echo "name at least one variant" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$RUN_ROOT/unetpp" ] || { echo "$RUN_ROOT/unetpp does not exist: give the RUN_ROOT of benchmarks/cpu_protocol.sh" >&2; exit 1; }
CLONE=$(cd "$RUN_ROOT/unetpp" && pwd)
UNETPP=$(command -v "${UNETPP:-$REPO/.venv/bin/unetpp}") \
    || { echo "${UNETPP:-$REPO/.venv/bin/unetpp} not found: install the checkout (README) or set UNETPP" >&2; exit 1; }
PYTHON=$(dirname "$UNETPP")/python  # the same environment's interpreter
ARCHS="unet nested_unet nested_unet_ds"

# params.yaml of the clone: "<content_sha256> <size of each named variant>", or a message naming what is missing.
info=$(cd "$CLONE" && "$PYTHON" -c "
import sys, yaml
params = yaml.safe_load(open('params.yaml'))
variants = params.get('variants') or {}
missing = [v for v in sys.argv[1:] if v not in variants]
if missing:
    sys.exit(f'$CLONE/params.yaml declares no variant {\", \".join(missing)} (it has {\", \".join(variants)})')
print(params['data']['content_sha256'], *(variants[v]['size'] for v in sys.argv[1:]))
" "$@")
read -r CONTENT_SHA256 SIZES <<<"$info"
read -r -a SIZE_OF <<<"$SIZES"

# Check everything first: a half-published variant would sit beside tables made from the old one.
i=0
for variant in "$@"; do
    size=${SIZE_OF[$i]}; i=$((i + 1))
    for need in "data/processed/dsb2018_$size.h5" data/processed/split.json data/interim/stage1_train.h5; do
        [ -f "$CLONE/$need" ] || { echo "$CLONE/$need does not exist: the clone has not made $variant's data" >&2; exit 1; }
    done
    for arch in $ARCHS; do
        for need in "models/$variant/$arch/seed0/train.json" "models/$variant/$arch/seed0/history.csv" \
                "results/$variant/runs/$arch/seed0/predictions.h5"; do
            [ -f "$CLONE/$need" ] || { echo "$CLONE/$need does not exist: $variant/$arch is not finished" >&2; exit 1; }
        done
    done
done

cd "$REPO"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
STAGE=$(mktemp -d "$DEST/.publish.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

i=0
for variant in "$@"; do
    size=${SIZE_OF[$i]}; i=$((i + 1))
    (cd "$CLONE" && find "models/$variant" "results/$variant" -type f \( -name history.csv -o -name train.json \
        -o -name samples.png -o -name submission.csv -o -name predict_test.json \) -print0 \
        | tar --null -T - -cf -) | tar -C "$STAGE" -xf -
    for arch in $ARCHS; do
        out=$STAGE/results/$variant/runs/$arch/seed0
        OMP_NUM_THREADS=1 "$UNETPP" evaluate --pred "$CLONE/results/$variant/runs/$arch/seed0/predictions.h5" \
            --data "$CLONE/data/processed/dsb2018_$size.h5" --split "$CLONE/data/processed/split.json" \
            --subset val --batch-size 16 --interim "$CLONE/data/interim/stage1_train.h5" \
            --out "$out/metrics.json" --per-image "$out/per_image.csv"
    done
    "$UNETPP" aggregate --models-dir "$STAGE/models/$variant" --results-dir "$STAGE/results/$variant/runs" \
        --arch unet --arch nested_unet --arch nested_unet_ds --seed 0 --content-sha256 "$CONTENT_SHA256" \
        --out "$STAGE/results/variants/$variant"
done
for variant in "$@"; do  # every variant built: replace the published ones
    for part in "models/$variant" "results/$variant" "results/variants/$variant"; do
        rm -rf "${DEST:?}/$part"
        mkdir -p "$(dirname "$DEST/$part")"
        mv "$STAGE/$part" "$DEST/$part"
    done
done

"$UNETPP" compare-variants --variants-dir "$DEST/results/variants" --out "$DEST/results/variants.md" \
    --json "$DEST/results/variants.json"
others=$(cd "$DEST/results/variants" && for v in *; do
    if [ -f "$v/metrics.json" ] && [ "$v" != reference ]; then echo "--variant $v"; fi
done)
if [ -f "$DEST/results/variants/reference/metrics.json" ] && [ -n "$others" ]; then
    # shellcheck disable=SC2086  # one word per option
    "$PYTHON" "$REPO/benchmarks/variant_vs_reference.py" --results "$DEST/results" $others \
        --out "$DEST/results/variant_vs_reference.md" >/dev/null
fi
