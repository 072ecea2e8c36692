#!/usr/bin/env bash
# Layer fusion A/B (bench/NOTES.md section 10): `strata bench train` with STRATA_FUSE=on, bn-relu
# (batch norm + ReLU only) and off, alternating per round on one machine; prints every run and
# the medians per model and setting.
#   bench/fuse-ab.sh [ROUNDS] [STRATA binary]
# What is measured: images/s, wall clock, 2 threads (the default); or with FUSE_MEASURE=cputime the
# process CPU time (user + sys) of one training step at one thread: the difference between runs of
# 4 and 16 steps over the 12 extra steps, which other processes' load barely changes (wall-clock
# images/s on a loaded 2-core machine varied 2x between identical runs).
set -euo pipefail
rounds=${1:-3}
bin=${2:-.build/release/strata}
measure=${FUSE_MEASURE:-images}
case $measure in images) unit="images/s" ;; cputime) unit="ms CPU per step, one thread" ;;
    *) echo "fuse-ab: FUSE_MEASURE must be images or cputime, not '$measure'" >&2; exit 2 ;; esac
export OMP_WAIT_POLICY=passive
models=("resnet20 --batch-size 128" "resnet56 --batch-size 128" "vgg16 --head single --batch-size 64")
settings=(on bn-relu off)
results=$(mktemp)
cpu() {   # user + sys seconds of one run: FUSE MODEL-ARGS STEPS
    local TIMEFORMAT='%U %S'
    # shellcheck disable=SC2086
    { time STRATA_FUSE=$1 "$bin" bench train --model $2 --device cpu --threads 1 --steps "$3" > /dev/null; } 2>&1 |
        awk '{ print $1 + $2 }'
}
run() {   # one figure: FUSE MODEL-ARGS
    if [ "$measure" = cputime ]; then
        local a b
        a=$(cpu "$1" "$2" 4); b=$(cpu "$1" "$2" 16)
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 12 * 1000 }'
    else
        # shellcheck disable=SC2086
        STRATA_FUSE=$1 "$bin" bench train --model $2 --device cpu --threads 2 --json |
            sed -n 's/.*"images_per_second" *: *\([0-9.]*\).*/\1/p'
    fi
}
for ((r = 1; r <= rounds; r++)); do
    for m in "${models[@]}"; do
        for s in "${settings[@]}"; do
            v=$(run "$s" "$m")
            echo "round $r  ${m%% *}  STRATA_FUSE=$s  $v $unit"
            echo "${m%% *} $s $v" >> "$results"
        done
    done
done
echo "medians over $rounds rounds ($unit):"
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
