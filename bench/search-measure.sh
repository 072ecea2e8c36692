#!/bin/sh
# The issue-9 measurement: one reduced seed-000 space (bench/search-measure-space.json: conv {1,2,3}
# x lr {1e-2,1e-3} x filters 18 x kernel 3 x hidden {[500],[250,50]} x batch {20,40} = 24 trials,
# 16 with 2-3 conv layers, 3 epochs, Adam, no augmentation) searched with reuse none, paper and
# best-prefix on the CIFAR-10 subset, 2 workers. Writes OUT/{none,paper,best-prefix}/ and
# OUT/report.html (the three side by side) and prints one line per strategy.
#   bench/search-measure.sh [DATA] [OUT]
set -eu
DATA=${1:-/work/shared/datasets/cifar10-subset}
OUT=${2:-runs/search-measure}
STRATA=${STRATA:-.build/release/strata}
/usr/bin/time -p "$STRATA" search --space bench/search-measure-space.json --reuse none,paper,best-prefix \
    --data "$DATA" --workers 2 --threads 2 --output "$OUT"
