#!/bin/sh
# A venv for bench/search-compare: torch and ray[tune] from PyPI, pinned to the versions measured.
# PyPI has no CPU-only torch for x86-64 Linux: its wheel (539 MB) pulls CUDA's runtime wheels
# (the venv is ~6 GB) and does not import without them. The benchmark uses the CPU only.
#   bench/search-compare/make-venv.sh [VENV]    (default ~/.cache/strata/search-compare-venv)
# then: make bench-search-compare PYTHON=VENV/bin/python
set -eu
VENV=${1:-$HOME/.cache/strata/search-compare-venv}
if [ -e "$VENV" ] && ! [ -x "$VENV/bin/python" ]; then
    echo "make-venv: $VENV exists and is not a venv; choose another folder" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "torch==2.15.0" "ray[tune]==2.60.0" numpy
"$VENV/bin/python" -c 'import torch, ray.tune; print("torch", torch.__version__, "ray", ray.__version__)'
echo "PYTHON=$VENV/bin/python"
