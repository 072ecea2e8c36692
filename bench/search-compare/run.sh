#!/bin/sh
# `make bench-search-compare`: Ray Tune + PyTorch against `strata search` on one space (compare.py).
# PYTHON names a Python with torch and ray[tune] (bench/search-compare/README.md: how to make one);
# without one this prints a SKIP line and exits 0.
#   bench/search-compare/run.sh [extra compare.py flags]
# Environment: PYTHON, STRATA (.build/release/strata), DATA, SPACE, ROUNDS (2), EPOCHS (the space's),
# RESULTS (a file to write the markdown table to).
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-}
STRATA=${STRATA:-.build/release/strata}
DATA=${DATA:-/work/shared/datasets/cifar10-subset}
SPACE=${SPACE:-bench/search-measure-space.json}
ROUNDS=${ROUNDS:-2}
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import torch, ray.tune' >/dev/null 2>&1; then
    echo "SKIP bench-search-compare: PYTHON='${PYTHON}' has no torch and ray[tune] (see bench/search-compare/README.md)"
    exit 0
fi
if [ ! -f "$DATA/data_batch_1.bin" ]; then
    echo "bench-search-compare: DATA=$DATA has no CIFAR-10 binary batches (data_batch_1.bin ...)" >&2
    exit 1
fi
set -- --strata "$STRATA" --python "$PYTHON" --data "$DATA" --space "$SPACE" --rounds "$ROUNDS" "$@"
[ -n "${EPOCHS:-}" ] && set -- "$@" --epochs "$EPOCHS"
[ -n "${RESULTS:-}" ] && set -- "$@" --results "$RESULTS"
exec "$PYTHON" bench/search-compare/compare.py "$@"
