#!/usr/bin/env bash
# Layer fusion A/B on a shared machine (bench/NOTES.md section 10): process CPU time (user + sys)
# of `strata bench train --threads 1` at two step counts; the difference over the extra steps is
# the CPU time of one training step, which other processes' load barely changes (wall-clock
# images/s on a loaded 2-core machine varied 2x between identical runs). Arms alternate per round.
#   bench/fuse-cputime.sh [ROUNDS] [STRATA binary]
set -euo pipefail
rounds=${1:-3}
bin=${2:-.build/release/strata}
export OMP_WAIT_POLICY=passive
models=("resnet20 --batch-size 128" "resnet56 --batch-size 128" "vgg16 --head single --batch-size 64")
settings=(on bn-relu off)
short=4 long=16
results=$(mktemp)
cpu() {   # user + sys seconds of one run
    local TIMEFORMAT='%U %S'
    # shellcheck disable=SC2086
    { time STRATA_FUSE=$1 "$bin" bench train --model $2 --device cpu --threads 1 --steps "$3" > /dev/null; } 2>&1 |
        awk '{ print $1 + $2 }'
}
for ((r = 1; r <= rounds; r++)); do
    for m in "${models[@]}"; do
        for s in "${settings[@]}"; do
            a=$(cpu "$s" "$m" "$short"); b=$(cpu "$s" "$m" "$long")
            ms=$(awk -v a="$a" -v b="$b" -v n=$((long - short)) 'BEGIN { printf "%.1f", (b - a) / n * 1000 }')
            echo "round $r  ${m%% *}  STRATA_FUSE=$s  $ms ms CPU per step"
            echo "${m%% *} $s $ms" >> "$results"
        done
    done
done
echo "medians over $rounds rounds (CPU ms per step, one thread):"
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
