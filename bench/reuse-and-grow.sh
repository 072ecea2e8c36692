#!/usr/bin/env bash
# The measurements of the reuse-and-growth issue, on the CIFAR-10 subset in ../shared:
#  1. ResNet-20: grow with look-ahead vs random init vs the full network from scratch
#     (test accuracy and cumulative training FLOPs, from each summary.json);
#  2. a 3-conv seed CNN trained from scratch vs with its first 2 conv layers reused (frozen)
#     from a trained 2-conv CNN, with the activation cache on and off (seconds per run).
# Usage: bench/reuse-and-grow.sh [OUT_DIR]   (needs `make build` first; ~20-30 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
S=.build/release/strata
DATA=${DATA:-../shared/datasets/cifar10-subset}
OUT=${1:-runs/bench-reuse-grow}
EPOCHS=${EPOCHS:-10}
mkdir -p "$OUT"

common=(--data "$DATA" --device cpu --seed 1 --batch-size 128 --overwrite)   # reruns replace the last measurement
grow=(--model resnet20 --optimizer rmsprop --lr 1e-3 --max-epochs "$EPOCHS" --window 2 --gamma 0.8 --lookahead-epochs 1)
$S grow "${common[@]}" "${grow[@]}" --init lookahead --baseline --output "$OUT/grow-lookahead" | tee "$OUT/grow-lookahead.log"
$S grow "${common[@]}" "${grow[@]}" --init random --output "$OUT/grow-random" | tee "$OUT/grow-random.log"

cnn=(--model cnn --hidden 128 --optimizer adam --epochs 8 --no-augment)
$S train "${common[@]}" "${cnn[@]}" --filters 32,64 --output "$OUT/cnn2" > "$OUT/cnn2.log"
for variant in scratch reuse-cache reuse-nocache; do
    case $variant in
        scratch) extra=() ;;
        reuse-cache) extra=(--reuse-from "$OUT/cnn2" --reuse-layers 2 --freeze) ;;
        reuse-nocache) extra=(--reuse-from "$OUT/cnn2" --reuse-layers 2 --freeze --no-cache) ;;
    esac
    start=$(date +%s%N)
    $S train "${common[@]}" "${cnn[@]}" --filters 32,64,128 "${extra[@]}" --output "$OUT/cnn3-$variant" > "$OUT/cnn3-$variant.log"
    end=$(date +%s%N)
    echo "cnn3 $variant: $(( (end - start) / 1000000 )) ms wall" | tee -a "$OUT/times.txt"
done
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(p): return json.load(open(os.path.join(out, p)))
g = load("grow-lookahead/summary.json"); r = load("grow-random/summary.json")
rows = [("grow look-ahead", g["grow"]), ("grow random", r["grow"])]
print("%-18s %9s %14s %9s" % ("resnet20", "test acc", "train FLOPs", "seconds"))
for name, s in rows:
    print("%-18s %8.2f%% %14.3e %9.1f" % (name, 100 * s["testAccuracy"], s["cumulativeTrainingFlops"], s["seconds"]))
b = g["baseline"]
print("%-18s %8.2f%% %14.3e %9.1f" % ("baseline", 100 * b["testAccuracy"], b["cumulativeTrainingFlops"], b["totalSeconds"]))
for v in ["scratch", "reuse-cache", "reuse-nocache"]:
    s = load("cnn3-%s/summary.json" % v)
    print("cnn3 %-14s test %.2f%%  train %.1fs (epochs)  FLOPs %.3e executed, %.3e skipped" % (
        v, 100 * s["testAccuracy"], s["totalSeconds"], s["cumulativeTrainingFlops"], s["skippedFlops"]))
PY
