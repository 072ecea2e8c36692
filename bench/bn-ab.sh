#!/usr/bin/env bash
# Batch norm on oneDNN A/B (bench/NOTES.md section 13): `strata bench train` with two binaries,
# alternating per round, 2 threads, images/s; each run plain (whatever else the machine runs) and
# with `chrt -f 50` (SCHED_FIFO: no other process takes a core from it, as on an idle machine).
#   bench/bn-ab.sh ROUNDS OLD-BINARY NEW-BINARY
set -euo pipefail
rounds=${1:-3}; old=${2:?old binary}; new=${3:?new binary}
export OMP_WAIT_POLICY=passive
models=("resnet20 --batch-size 128" "resnet56 --batch-size 128")
ips() {   # MODE BINARY MODEL-ARGS...
    local mode=$1 bin=$2; shift 2
    local pre=(); [ "$mode" = rt ] && pre=(chrt -f 50)
    "${pre[@]}" "$bin" bench train "$@" --device cpu --threads 2 --json |
        sed -n 's/.*"images_per_second" *: *\([0-9.]*\).*/\1/p'
}
for ((r = 1; r <= rounds; r++)); do
    for m in "${models[@]}"; do
        for mode in plain rt; do
            # shellcheck disable=SC2086
            a=$(ips "$mode" "$old" --model $m); b=$(ips "$mode" "$new" --model $m)
            echo "round $r | ${m%% *} | $mode | old $a | new $b | load $(cut -d' ' -f1 /proc/loadavg)"
        done
    done
done
