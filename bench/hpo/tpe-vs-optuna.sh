#!/usr/bin/env bash
# Strata's TPE against Optuna's TPESampler (PyPI, in a venv under ~/.cache/strata) on branin,
# hartmann6 and a mixed log/int/categorical space: same budget, the same 10 seeds each, median and
# mean of the best value per run. A benchmark, not a CI test (needs PyPI the first time).
# Usage: bench/hpo/tpe-vs-optuna.sh [TRIALS] [SEEDS]     (needs `make build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${1:-50}
SEEDS=${2:-10}
VENV=${STRATA_BENCH_VENV:-$HOME/.cache/strata/bench-venv}
if ! "$VENV/bin/python" -c "import optuna" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q optuna
fi
out=$(mktemp)
.build/release/strata bench tpe --trials "$TRIALS" --seeds "$SEEDS" --json > "$out"
"$VENV/bin/python" bench/hpo/optuna_reference.py --trials "$TRIALS" --seeds "$SEEDS" >> "$out"
"$VENV/bin/python" - "$out" "$TRIALS" "$SEEDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"best value after {sys.argv[2]} trials, {sys.argv[3]} seeds (median / mean; lower is better)")
print(f"{'function':<10} {'strata tpe':>22} {'optuna tpe':>22} {'strata random':>22}")
for f in ("branin", "hartmann6", "mixed"):
    cells = []
    for s in ("tpe", "optuna-tpe", "random"):
        v = [r["best"] for r in rows if r["function"] == f and r["sampler"] == s]
        cells.append(f"{statistics.median(v):.4f} / {statistics.mean(v):.4f}")
    print(f"{f:<10} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
PY
rm -f "$out"
