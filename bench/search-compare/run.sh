#!/bin/sh
# `make bench-search-compare`: Ray Tune + PyTorch against `strata search` on one space (compare.py).
# PYTHON names a Python with torch and ray[tune] (bench/search-compare/README.md: how to make one);
# without one this prints a SKIP line and exits 0.
#   bench/search-compare/run.sh [extra compare.py flags]
# Environment: PYTHON, STRATA (.build/release/strata), DATA (CIFAR-10 binary batches or MNIST /
# Fashion-MNIST IDX files), TRAIN_LIMIT (every arm trains on that many of the training images),
# SPACE, ROUNDS (2), EPOCHS (the space's), RESULTS (a file to write the markdown table to).
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
# The formats raytune_search.py reads (Strata reads more): CIFAR-10 batches, IDX raw or gzip.
has_idx=
for f in train-images-idx3-ubyte train-images.idx3-ubyte; do
    if [ -f "$DATA/$f" ] || [ -f "$DATA/$f.gz" ]; then has_idx=1; fi
done
if [ ! -f "$DATA/data_batch_1.bin" ] && [ -z "$has_idx" ]; then
    echo "bench-search-compare: DATA=$DATA has neither CIFAR-10 binary batches (data_batch_1.bin ...) nor IDX files (train-images-idx3-ubyte[.gz] ...)" >&2
    exit 1
fi
set -- --strata "$STRATA" --python "$PYTHON" --data "$DATA" --space "$SPACE" --rounds "$ROUNDS" "$@"
[ -n "${EPOCHS:-}" ] && set -- "$@" --epochs "$EPOCHS"
[ -n "${TRAIN_LIMIT:-}" ] && set -- "$@" --train-limit "$TRAIN_LIMIT"
[ -n "${RESULTS:-}" ] && set -- "$@" --results "$RESULTS"
exec "$PYTHON" bench/search-compare/compare.py "$@"
