#!/usr/bin/env bash
# The parameter-reusability study (strata reuse-report) on Fashion-MNIST.
# Datasets A and B are the two disjoint halves of the training set; task 1 is the 10 classes,
# task 2 groups them into 4 (bench/reuse-report/make-datasets.py). For each model family it
# trains A1, A2, B1 and B2 (same architecture, each from its own seed) and reports on target A1
# with sources B1 (other data, same task), A2 (same data, other task) and B2 (both other),
# single swaps of every kind and the cumulative prefix.
# Usage: bench/reuse-report.sh [OUT_DIR]      (needs `make build`; about 25 min on 2 cores)
#   MODELS="cnn resnet20 vgg11"  EPOCHS=3  TEST_LIMIT=1000  SAME_INIT=1 (one seed for all four)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${STRATA:-.build/release/strata}
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
OUT=${1:-runs/bench-reuse-report}
MODELS=${MODELS:-cnn resnet20 vgg11}
EPOCHS=${EPOCHS:-3}
TEST_LIMIT=${TEST_LIMIT:-1000}
mkdir -p "$OUT"
[ -d "$OUT/data/A1" ] || python3 bench/reuse-report/make-datasets.py "$FASHION" "$OUT/data"

for model in $MODELS; do
    case $model in
        cnn) flags=(--model cnn --filters 32,64,128 --hidden 128); limit=${CNN_LIMIT:-20000} ;;
        resnet*) flags=(--model "$model"); limit=${RESNET_LIMIT:-8000} ;;
        vgg*) flags=(--model "$model" --head single); limit=${VGG_LIMIT:-5000} ;;
        *) echo "unknown model $model" >&2; exit 64 ;;
    esac
    seed=0
    for name in A1 A2 B1 B2; do
        seed=$((seed + 1)); [ -n "${SAME_INIT:-}" ] && seed=1
        dir="$OUT/$model/$name"
        [ -f "$dir/summary.json" ] && continue
        rm -rf "$dir"; mkdir -p "$OUT/$model"
        start=$(date +%s)
        $S train "${flags[@]}" --data "$OUT/data/$name" --dataset-kind fashion-mnist --train-limit "$limit" \
            --epochs "$EPOCHS" --optimizer adam --batch-size 128 --seed "$seed" --device cpu --output "$dir" > "$dir.log"
        echo "$model $name: trained in $(( $(date +%s) - start )) s, $(grep -o '"testAccuracy" : [0-9.]*' "$dir/summary.json")"
    done
    start=$(date +%s)
    $S reuse-report --target "$OUT/$model/A1" --source "$OUT/$model/B1" --source "$OUT/$model/A2" \
        --source "$OUT/$model/B2" --cumulative --test-limit "$TEST_LIMIT" --device cpu --overwrite \
        --output "$OUT/$model/report" > "$OUT/$model/report.log"
    echo "$model: report in $(( $(date +%s) - start )) s -> $OUT/$model/report/report.txt"
done
python3 bench/reuse-report/summarize.py "$OUT" | tee "$OUT/summary.txt"
