#!/bin/sh
# Per-trial overhead of a search's worker processes, a process per trial (STRATA_COLD_WORKERS=1)
# against warm workers, on one small space (bench/warm-workers-space.json: 6 trials, 3 epochs)
# with 2 workers x 1 thread, cold then warm, ROUNDS times. Counts CPU seconds, not wall time
# (the machine is shared): the whole search process tree's (/usr/bin/time: user + sys, every
# worker included, start-up too), the jobs' (journal cpu_seconds) and their training's
# (fit_cpu_seconds in each trial's stdout.log: `TrainingRun.fit`, epochs with validation, checkpoints
# and the test pass). Overhead = search CPU - training CPU, per trial and as a share.
#   bench/warm-workers.sh [DATA] [OUT] [ROUNDS]        (EXTRA="--train-limit 5000": more search flags)
set -eu
DATA=${1:-/work/shared/datasets/cifar10-subset}
OUT=${2:-runs/warm-workers}
ROUNDS=${3:-1}
STRATA=${STRATA:-.build/release/strata}
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
    for mode in cold warm; do
        dir="$OUT/$mode-$round"
        rm -rf "$dir"
        cold=0; [ "$mode" = cold ] && cold=1
        STRATA_COLD_WORKERS=$cold /usr/bin/time -f "%U %S %e" -o "$dir.time" "$STRATA" search \
            --space bench/warm-workers-space.json --reuse none --data "$DATA" --device cpu \
            --workers 2 --threads 2 ${EXTRA:-} --output "$dir" > "$dir.log"
        python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/journal.jsonl")]
def fit_cpu(r):
    lines = [l for l in open(f'{d}/trials/{r["id"]}/stdout.log') if l.startswith("fit_cpu_seconds ")]
    return float(lines[-1].split()[1])
cpu = sum(r["cpu_seconds"] for r in rows); fit = sum(fit_cpu(r) for r in rows); train = sum(r["seconds"] for r in rows)
user, system, wall = (float(x) for x in open(d + ".time").read().split()[-3:])
tree = user + system
per = ", ".join(f'{(r["cpu_seconds"] - fit_cpu(r)) / r["cpu_seconds"] * 100:.1f}%' for r in rows)
print(f"{d}: {len(rows)} trials; CPU s: whole search {tree:.1f}, jobs {cpu:.1f}, fit {fit:.1f}; "
      f"overhead per trial {(tree - fit) / len(rows):.2f} CPU s = {(tree - fit) / tree * 100:.1f}% of the search's CPU "
      f"(within jobs {(cpu - fit) / cpu * 100:.1f}%: {per}); "
      f"wall: search {wall:.1f} s, training {train:.1f} s (cpu_seconds - seconds: {(cpu - train) / cpu * 100:.1f}%)")
PY
    done
done
