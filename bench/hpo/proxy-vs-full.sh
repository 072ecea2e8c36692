#!/usr/bin/env bash
# The usual HPO against proxy HPO (issue 13, "Done when" second bullet): `strata hpo --compare-full`
# on the CIFAR-10 subset, cnn 32,64,128 / 128, space lr x weight decay x batch size
# (bench/hpo/space.json), TPE + ASHA, the same sampler, seed and number of trials on the Synflow
# proxy and on the full model, one worker. Per seed: search time (the trials' jobs, summed) and
# the final test accuracy of each side; then each winner's final training repeated with the other
# seeds of REPEATS (not S: that is the hpo's own final), to see how much of an accuracy difference
# is the final training's own noise (three finals per winner with the defaults).
#
#   bench/hpo/proxy-vs-full.sh                       (needs `make build`; resumes what OUT holds)
#   SEEDS="0 1 2" TRIALS=20 EPOCHS=6 FINAL=20 REPEATS="1 2 3" OUT=runs/hpo-bench bench/hpo/proxy-vs-full.sh
#   PROXY=synflow:p=70 FULL_FROM=runs/hpo-bench OUT=runs/hpo-bench-p70 bench/hpo/proxy-vs-full.sh
#       another proxy against the full searches already in FULL_FROM (the full side does not depend
#       on the proxy: same sampler, seed and budget), so only the proxy side runs
#   MODEL_ARGS="--model resnet20" THREADS=1 OUT=runs/hpo-bench-r20 bench/hpo/proxy-vs-full.sh
#       another model (default: --model cnn --filters 32,64,128 --hidden 128)
set -euo pipefail
cd "$(dirname "$0")/../.."
STRATA=${STRATA:-.build/release/strata}
DATA=${DATA:-../shared/datasets/cifar10-subset}
OUT=${OUT:-runs/hpo-bench}
SEEDS=${SEEDS:-"0 1 2"}
TRIALS=${TRIALS:-20}
EPOCHS=${EPOCHS:-6}
FINAL=${FINAL:-20}
HPO_FINAL=${HPO_FINAL:-$FINAL}   # the hpo's own final (seed S); 0 skips it when S is not among REPEATS
PROXY=${PROXY:-synflow:p=85,m=0.15}
REPEATS=${REPEATS-"1 2 3"}   # REPEATS="" runs no repeated finals
THREADS=${THREADS:-2}
# The model, as strata's own flags (word-split): the cnn unless MODEL_ARGS says otherwise.
read -r -a MODEL <<< "${MODEL_ARGS:---model cnn --filters 32,64,128 --hidden 128}"
mkdir -p "$OUT"
log="$OUT/bench.log"
for s in $SEEDS; do
    dir="$OUT/s$s"
    echo "== seed $s $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
    if [ -n "${FULL_FROM:-}" ]; then
        mkdir -p "$dir"
        [ -e "$dir/full" ] || ln -s "$(cd "$FULL_FROM/s$s/full" && pwd)" "$dir/full"
        if [ -f "$dir/proxy/hpo.json" ]; then
            "$STRATA" hpo --resume "$dir/proxy" --workers 1 --threads "$THREADS" | tee -a "$log"
        else
            "$STRATA" hpo "${MODEL[@]}" --data "$DATA" --space bench/hpo/space.json --sampler tpe --pruner asha \
                --trials "$TRIALS" --epochs "$EPOCHS" --schedule cosine --final-epochs "$HPO_FINAL" --proxy "$PROXY" \
                --seed "$s" --workers 1 --threads "$THREADS" --output "$dir/proxy" | tee -a "$log"
        fi
    elif [ -f "$dir/proxy/hpo.json" ]; then
        "$STRATA" hpo --resume "$dir" --workers 1 --threads "$THREADS" | tee -a "$log"
    else
        "$STRATA" hpo "${MODEL[@]}" --data "$DATA" --space bench/hpo/space.json --sampler tpe --pruner asha \
            --trials "$TRIALS" --epochs "$EPOCHS" --schedule cosine --final-epochs "$HPO_FINAL" --proxy "$PROXY" \
            --compare-full --seed "$s" --workers 1 --threads "$THREADS" --output "$dir" | tee -a "$log"
    fi
    echo "   load after seed $s: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
    for side in proxy full; do
        read -r lr wd bs < <(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["bestParams"]
v = lambda k: list(p[k].values())[0]
print(v("lr"), v("weight_decay"), v("batch_size"))' "$dir/$side/summary.json")
        for r in $REPEATS; do
            run="$dir/$side/final-seed$r"
            # The hpo's own final used seed S: that repeat would be the same run, bit for bit.
            [ "$r" = "$s" ] && continue
            [ -f "$run/summary.json" ] && continue
            "$STRATA" train "${MODEL[@]}" --data "$DATA" --epochs "$FINAL" --schedule cosine --lr "$lr" \
                --weight-decay "$wd" --batch-size "$bs" --seed "$r" --threads "$THREADS" --output "$run" > "$run.log" 2>&1
        done
    done
done
python3 - "$OUT" $SEEDS <<'PY'
import json, os, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
print("| seed | proxy search s (CPU s) | full search s (CPU s) | saved (CPU) | proxy final acc | full final acc | diff (pts) | proxy winner, finals (seed S first) | full winner, finals (seed S first) |")
print("|---|---|---|---|---|---|---|---|---|")
saved, diffs, mdiffs = [], [], []
for s in seeds:
    p, f = (json.load(open(f"{out}/s{s}/{side}/summary.json")) for side in ("proxy", "full"))
    def accs(side, first):
        xs = [first]
        for r in sorted(os.listdir(f"{out}/s{s}/{side}")):
            path = f"{out}/s{s}/{side}/{r}/summary.json"
            if r.startswith("final-seed") and r != f"final-seed{s}" and os.path.exists(path):
                xs.append(json.load(open(path))["testAccuracy"])
        return xs
    if p.get("finalTestAccuracy") is None or f.get("finalTestAccuracy") is None:   # HPO_FINAL=0: repeats only
        pa, fa = accs("proxy", None)[1:], accs("full", None)[1:]
        p["finalTestAccuracy"], f["finalTestAccuracy"] = statistics.mean(pa), statistics.mean(fa)
    else:
        pa, fa = accs("proxy", p["finalTestAccuracy"]), accs("full", f["finalTestAccuracy"])
    c = {"searchTimeSaved": 1 - p["searchSeconds"] / f["searchSeconds"],
         "finalAccuracyDifference": (p["finalTestAccuracy"] - f["finalTestAccuracy"]) * 100}
    saved.append(c["searchTimeSaved"]); diffs.append(c["finalAccuracyDifference"])
    mdiffs.append((statistics.mean(pa) - statistics.mean(fa)) * 100)
    fmt = lambda xs: " / ".join(f"{x*100:.2f}" for x in xs) + f" (mean {statistics.mean(xs)*100:.2f})"
    cpu = lambda x: f" ({x['searchCPUSeconds']:.1f})" if x.get("searchCPUSeconds") else ""
    cpusaved = (f" ({(1 - p['searchCPUSeconds'] / f['searchCPUSeconds'])*100:.1f}%)"
                if p.get("searchCPUSeconds") and f.get("searchCPUSeconds") else "")
    print(f"| {s} | {p['searchSeconds']:.1f}{cpu(p)} | {f['searchSeconds']:.1f}{cpu(f)} | {c['searchTimeSaved']*100:.1f}%{cpusaved} | "
          f"{p['finalTestAccuracy']*100:.2f}% | {f['finalTestAccuracy']*100:.2f}% | {c['finalAccuracyDifference']:+.2f} | {fmt(pa)} | {fmt(fa)} |")
print(f"\nmean saved {statistics.mean(saved)*100:.1f}%, mean final-accuracy diff {statistics.mean(diffs):+.2f} pts "
      f"(over the repeated finals: {statistics.mean(mdiffs):+.2f} pts)")
PY
