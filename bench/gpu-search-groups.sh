#!/usr/bin/env bash
# Trial groups on one GPU (issue 22, "GPU" done-when): seed000-small (252 trials, 2 epochs each,
# --reuse none so that the three learning rates of each architecture and batch size can share a
# group) on the CIFAR-10 subset, one trial per job (STRATA_TRIAL_GROUPS=off) against groups
# (STRATA_TRIAL_GROUPS=on, what auto does on CUDA), each arm time-boxed and stopped with SIGINT,
# so the figure is trials per hour over what each arm finished. GPU utilisation and memory are
# sampled every 500 ms during each arm (nvidia-smi). Sized for about 3 minutes on an H100;
# scripts/gpu-check.sh may call it as one step.
#
#   bench/gpu-search-groups.sh [--data DIR] [--out DIR]
#
# Environment: STRATA (default dist/cuda/strata, else .build-cuda/debug/strata), STRATA_CHECK_DATA
# (default shared/datasets/cifar10-subset or ../shared/...), GROUPS_ARM_SECONDS (per arm, default
# 75), GROUPS_WORKERS (default 1: the one-trial-at-a-time baseline; groups fill the card instead).
# Writes $OUT (default runs/gpu-search-groups): off/ and on/ (the searches, their stdout/stderr,
# gpu.csv), and groups.json: per arm the finished trials, seconds, trials per hour, mean and
# max GPU utilisation, max memory, groups formed; and on/off, the speedup.
# Exit status: 0 both arms ran; 1 an arm failed; 2 setup problem; 3 no usable GPU.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
data=${STRATA_CHECK_DATA:-}
out=${OUT:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data=${2:-}; shift 2 || shift ;;
        --out) out=${2:-}; shift 2 || shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "gpu-search-groups: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
strata=${STRATA:-}
if [ -z "$strata" ]; then
    for s in "$here/dist/cuda/strata" "$here/.build-cuda/debug/strata" "$here/.build-cuda/release/strata"; do
        [ -x "$s" ] && { strata=$s; break; }
    done
fi
[ -n "$strata" ] && [ -x "$strata" ] || { echo "gpu-search-groups: no strata binary (set STRATA)" >&2; exit 2; }
if [ -z "$data" ]; then
    for d in "$here/shared/datasets/cifar10-subset" "$here/../shared/datasets/cifar10-subset"; do
        [ -d "$d" ] && { data=$d; break; }
    done
fi
[ -n "$data" ] && [ -d "$data" ] || { echo "gpu-search-groups: no dataset (--data DIR or STRATA_CHECK_DATA)" >&2; exit 2; }
out=${out:-$here/runs/gpu-search-groups}
arm_seconds=${GROUPS_ARM_SECONDS:-75}
workers=${GROUPS_WORKERS:-1}
mkdir -p "$out" || exit 2
"$strata" info > "$out/info.txt" 2>&1
grep -qi "cuda" "$out/info.txt" || { echo "gpu-search-groups: strata info shows no CUDA device (see $out/info.txt)" >&2; exit 3; }

status=0
for arm in off on; do
    dir=$out/$arm
    rm -rf "$dir"   # a result of an earlier run of this script: ours to replace
    mkdir -p "$dir"
    smi=
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$dir/gpu.csv" 2> /dev/null &
        smi=$!
    fi
    start=$(date +%s.%N)
    STRATA_TRIAL_GROUPS=$arm "$strata" search --space seed000-small --epochs 2 --reuse none --data "$data" \
        --device cuda --workers "$workers" --output "$dir/search" > "$dir/stdout.txt" 2> "$dir/stderr.txt" &
    pid=$!
    # Time-boxed: SIGINT after the arm's seconds (the search journals what finished and stops).
    ( sleep "$arm_seconds"; kill -INT "$pid" 2> /dev/null ) &
    timer=$!
    wait "$pid"; rc=$?
    end=$(date +%s.%N)
    kill "$timer" 2> /dev/null; wait "$timer" 2> /dev/null
    [ -n "$smi" ] && { kill "$smi" 2> /dev/null; wait "$smi" 2> /dev/null; }
    # 0: finished the space; 130: stopped by the time box. Anything else is a failure.
    if [ "$rc" != 0 ] && [ "$rc" != 130 ]; then status=1; fi
    echo "$rc $start $end" > "$dir/times.txt"
done

python3 - "$out" <<'EOF' || status=1
import json, os, sys
out = sys.argv[1]
res = {}
for arm in ("off", "on"):
    d = os.path.join(out, arm)
    rc, start, end = open(os.path.join(d, "times.txt")).read().split()
    seconds = float(end) - float(start)
    events, groups = [], set()
    try:
        for line in open(os.path.join(d, "search", "journal.jsonl")):
            e = json.loads(line)
            if e.get("event") in ("finished", "failed", "pruned"):
                events.append(e)
                if e.get("group"):
                    groups.add(e["group"]["id"])
    except FileNotFoundError:
        pass
    util, mem = [], []
    try:
        for line in open(os.path.join(d, "gpu.csv")):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3:
                try:
                    util.append(float(parts[1])); mem.append(float(parts[2]))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    finished = sum(1 for e in events if e["event"] == "finished")
    losses = [e["validation_loss"] for e in events if e.get("validation_loss") is not None]
    res[arm] = {
        "exit": int(rc), "seconds": round(seconds, 2), "trials_ended": len(events), "trials_finished": finished,
        "trials_per_hour": round(len(events) / seconds * 3600, 1) if seconds > 0 else None,
        "groups_formed": len(groups), "best_validation_loss": min(losses) if losses else None,
        "gpu_util_mean": round(sum(util) / len(util), 1) if util else None, "gpu_util_max": max(util) if util else None,
        "gpu_mem_max_mib": max(mem) if mem else None,
    }
off, on = res["off"]["trials_per_hour"], res["on"]["trials_per_hour"]
res["speedup_on_over_off"] = round(on / off, 2) if off and on else None
json.dump(res, open(os.path.join(out, "groups.json"), "w"), indent=2, sort_keys=True)
print(json.dumps(res, indent=2, sort_keys=True))
EOF
exit $status
