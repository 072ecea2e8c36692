#!/usr/bin/env bash
# Strata's CMA-ES (`strata hpo --sampler cmaes`) against Optuna's CmaEsSampler (defaults; PyPI
# optuna + cmaes in a venv under ~/.cache/strata) on branin, hartmann6 and the mixed
# log/int/categorical space of `strata bench tpe`: the same budget and the same seeds, median and
# mean of the best value per run, with the random samplers of both as the floor.
# A benchmark, not a CI test (needs PyPI the first time; ~1 min for 10 seeds x 50 trials).
# Usage: bench/hpo/cmaes-vs-optuna.sh [TRIALS] [SEEDS] [FUNCTIONS]     (needs `make build`)
#
# 2026-12-07, optuna 5.1.0 + cmaes 0.13.1; best value, median / mean (lower is better):
#   50 trials x 30 seeds   strata cmaes       optuna cmaes       strata random      optuna random
#   branin (0.3979)        0.6211 / 1.0038    0.9006 / 1.6261    1.4892 / 1.6039    1.1638 / 1.5519
#   hartmann6 (-3.3224)   -2.4068 / -2.4046  -2.5922 / -2.5099  -1.8511 / -1.8738  -1.7390 / -1.7431
#   mixed (0)              0.0245 / 0.0717    0.0494 / 0.1070    0.5725 / 0.6566    0.5270 / 0.5959
#   200 trials x 10 seeds
#   branin                 0.3979 / 0.3986    0.3979 / 0.3980    0.5648 / 0.6217    0.4993 / 0.5769
#   hartmann6             -3.2527 / -3.2304  -3.2468 / -3.2330  -2.1883 / -2.3052  -2.1383 / -2.1619
#   mixed                  0.0006 / 0.0046    0.0002 / 0.0179    0.3295 / 0.3684    0.1821 / 0.2497
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${1:-50}
SEEDS=${2:-10}
FUNCTIONS=${3:-branin,hartmann6,mixed}
VENV=${STRATA_BENCH_VENV:-$HOME/.cache/strata/bench-venv}
if ! "$VENV/bin/python" -c "import optuna, cmaes" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q optuna cmaes
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
.build/release/strata bench tpe --functions "$FUNCTIONS" --samplers cmaes,random --trials "$TRIALS" --seeds "$SEEDS" --json > "$out"
# The objectives are optuna_reference.py's (the same formulas as Sources/Trainer/HPO/TestFunctions.swift).
"$VENV/bin/python" - "$TRIALS" "$SEEDS" "$FUNCTIONS" >> "$out" <<'PY'
import json, sys, warnings
sys.path.insert(0, "bench/hpo")
import optuna
import optuna_reference as ref
trials, seeds, functions = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.simplefilter("ignore")  # the independent-sampling notice for the categorical dimension
for name in functions:
    f = getattr(ref, name)
    for label, make in (("optuna-cmaes", lambda s: optuna.samplers.CmaEsSampler(seed=s)),
                        ("optuna-random", lambda s: optuna.samplers.RandomSampler(seed=s))):
        for seed in range(seeds):
            study = optuna.create_study(sampler=make(seed))
            study.optimize(f, n_trials=trials)
            print(json.dumps({"function": name, "sampler": label, "seed": seed, "best": study.best_value}))
PY
"$VENV/bin/python" - "$out" "$TRIALS" "$SEEDS" "$FUNCTIONS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"best value after {sys.argv[2]} trials, {sys.argv[3]} seeds (median / mean; lower is better)")
samplers = ("cmaes", "optuna-cmaes", "random", "optuna-random")
print(f"{'function':<10}" + "".join(f"{'strata ' + s if not s.startswith('optuna') else s.replace('-', ' '):>22}" for s in samplers))
for f in sys.argv[4].split(","):
    cells = []
    for s in samplers:
        v = [r["best"] for r in rows if r["function"] == f and r["sampler"] == s]
        cells.append(f"{statistics.median(v):.4f} / {statistics.mean(v):.4f}")
    print(f"{f:<10}" + "".join(f"{c:>22}" for c in cells))
PY
