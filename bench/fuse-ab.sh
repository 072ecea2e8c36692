#!/usr/bin/env bash
# Layer fusion A/B (bench/NOTES.md section 10): `strata bench train` with STRATA_FUSE=on, bn-relu
# (batch norm + ReLU only) and off, alternating per round on one machine; prints every run and
# the medians per model and setting.
#   bench/fuse-ab.sh [ROUNDS] [STRATA binary]
set -euo pipefail
rounds=${1:-3}
bin=${2:-.build/release/strata}
export OMP_WAIT_POLICY=passive
models=("resnet20 --batch-size 128" "resnet56 --batch-size 128" "vgg16 --head single --batch-size 64")
settings=(on bn-relu off)
results=$(mktemp)
for ((r = 1; r <= rounds; r++)); do
    for m in "${models[@]}"; do
        for s in "${settings[@]}"; do
            # shellcheck disable=SC2086
            ips=$(STRATA_FUSE=$s "$bin" bench train --model $m --device cpu --threads 2 --json |
                  sed -n 's/.*"images_per_second" *: *\([0-9.]*\).*/\1/p')
            echo "round $r  ${m%% *}  STRATA_FUSE=$s  $ips images/s"
            echo "${m%% *} $s $ips" >> "$results"
        done
    done
done
echo "medians over $rounds rounds (images/s):"
for m in "${models[@]}"; do
    name=${m%% *}
    line="$name"
    for s in "${settings[@]}"; do
        med=$(awk -v n="$name" -v s="$s" '$1 == n && $2 == s { print $3 }' "$results" | sort -n |
              awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        line="$line  $s $med"
    done
    echo "$line"
done
rm -f "$results"
