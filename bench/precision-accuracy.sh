#!/usr/bin/env bash
# `make bench-precision-accuracy`: does training in bf16 reach FP32's test accuracy? Issue 25's
# bound: bf16 within 0.3 points of FP32, mean of 3 seeds, on two tasks:
#   cnn       the demo's CNN (Makefile DEMO_FLAGS: filters 16,32,64, hidden 128, Adam) on
#             Fashion-MNIST, CNN_TRAIN_LIMIT images (default 60000, all) for CNN_EPOCHS (default
#             4): about 1-3 min a run on 2 cores (a demo cnn ran 1,200 img/s at load 11)
#   resnet20  ResNet-20 (SGD lr 0.1, augmentation on) on the CIFAR-10 subset (5,085 train, 1,017
#             test), RESNET_EPOCHS (default 8): about 1.5-3 min a run on 2 cores (195 img/s at load 11)
# both with a cosine schedule: the last epochs settle, so a run's end measures the precision more
# than where a constant learning rate happened to leave the weights.
# Each task runs `strata train --precision P` for P in PRECISIONS (default fp32,bf16) and seeds SEEDS
# (default 1,2,3), THREADS threads (default 2). Prints per-run test accuracy (the best-by-
# validation checkpoint's, summary.json's testAccuracy, as `strata eval` reports) and one markdown
# table: the mean per precision and the difference in points against the bound.
#   bench/precision-accuracy.sh [--data CIFAR10_DIR] [--fashion FASHION_MNIST_DIR] [--tasks cnn,resnet20] [--output DIR]
# Runs go to a new folder (--output DIR must not exist; default a fresh /tmp/precision-accuracy.*)
# and stay there. A strata whose `train` has no --precision gets one SKIP line (exit 0) unless
# PRECISIONS is fp32 alone; a dataset that is missing skips its task with one SKIP line.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${STRATA:-.build/release/strata}
fashion=${FASHION:-/usr/share/datasets/fashion-mnist}
cifar=${CIFAR:-/work/shared/datasets/cifar10-subset}
tasks=cnn,resnet20
output=""
usage() { echo "usage: bench/precision-accuracy.sh [--data CIFAR10_DIR] [--fashion FASHION_MNIST_DIR] [--tasks cnn,resnet20] [--output NEW_DIR]" >&2; exit 64; }
while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || usage; cifar=$2; shift 2 ;;
    --fashion) [ $# -ge 2 ] || usage; fashion=$2; shift 2 ;;
    --tasks) [ $# -ge 2 ] || usage; tasks=$2; shift 2 ;;
    --output) [ $# -ge 2 ] || usage; output=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-precision-accuracy: unknown argument '$1'" >&2; usage ;;
  esac
done
precisions=${PRECISIONS:-fp32,bf16}
seeds=${SEEDS:-1,2,3}
threads=${THREADS:-2}
cnn_limit=${CNN_TRAIN_LIMIT:-60000}
cnn_epochs=${CNN_EPOCHS:-4}
resnet_epochs=${RESNET_EPOCHS:-8}
for p in ${precisions//,/ }; do
  case $p in fp32|bf16|fp16) ;; *) echo "bench-precision-accuracy: PRECISIONS='$precisions': '$p' is not fp32, bf16 or fp16" >&2; exit 64 ;; esac
done
for t in ${tasks//,/ }; do
  case $t in cnn|resnet20) ;; *) echo "bench-precision-accuracy: --tasks '$tasks': '$t' is not cnn or resnet20" >&2; exit 64 ;; esac
done
for s in ${seeds//,/ }; do
  [[ $s =~ ^[0-9]+$ ]] || { echo "bench-precision-accuracy: SEEDS='$seeds': '$s' is not a whole number" >&2; exit 64; }
done
[ -x "$bin" ] || { echo "bench-precision-accuracy: no strata at $bin (make build, or STRATA=/path/to/strata)" >&2; exit 1; }
if [ "$precisions" != fp32 ] && ! "$bin" train --help 2>/dev/null | grep -q -- '--precision'; then
  echo "SKIP bench-precision-accuracy: '$bin train --help' has no --precision (a strata built before the precision work; PRECISIONS=fp32 runs the FP32 half alone)"
  exit 0
fi
if [ -z "$output" ]; then
  output=$(mktemp -d /tmp/precision-accuracy.XXXXXX)
elif [ -e "$output" ]; then
  echo "bench-precision-accuracy: --output $output already exists (runs are never written over; name a new folder)" >&2
  exit 64
else
  mkdir -p "$output"
fi
echo "runs in $output"

results=$output/results.tsv
: > "$results"
for task in ${tasks//,/ }; do
  case $task in
    cnn)
      data=$fashion
      args=(--model cnn --filters 16,32,64 --hidden 128 --optimizer adam --train-limit "$cnn_limit" --epochs "$cnn_epochs" --schedule cosine) ;;
    resnet20)
      data=$cifar
      args=(--model resnet20 --optimizer sgd --lr 0.1 --epochs "$resnet_epochs" --schedule cosine) ;;
  esac
  if [ ! -d "$data" ]; then
    echo "SKIP $task: no dataset at $data ($([ $task = cnn ] && echo '--fashion DIR; scripts/install-deps.sh --dataset' || echo '--data DIR'))"
    continue
  fi
  # Seeds outside, precisions inside: a load burst on the shared machine slows both alike.
  for seed in ${seeds//,/ }; do
    for p in ${precisions//,/ }; do
      run=$output/$task-$p-seed$seed
      flags=()
      [ "$p" = fp32 ] || flags=(--precision "$p")
      start=$(date +%s)
      if ! "$bin" train "${args[@]}" --data "$data" --seed "$seed" --threads "$threads" "${flags[@]}" \
           --output "$run" > "$run.log" 2>&1; then
        echo "FAIL $task $p seed $seed: strata train exited non-zero; the last lines of $run.log:"
        tail -3 "$run.log" | sed 's/^/  /'
        printf '%s\t%s\t%s\tnan\n' "$task" "$p" "$seed" >> "$results"
        continue
      fi
      acc=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])).get("testAccuracy"); print("nan" if a is None else 100*a)' "$run/summary.json")
      printf '%s %s seed %s: test accuracy %.2f%% (%ss)\n' "$task" "$p" "$seed" "$acc" "$(( $(date +%s) - start ))"
      printf '%s\t%s\t%s\t%s\n' "$task" "$p" "$seed" "$acc" >> "$results"
    done
  done
done
python3 - "$results" "$precisions" <<'PY'
import sys, math, statistics, collections
bound = 0.3
precisions = sys.argv[2].split(",")
acc = collections.defaultdict(list)   # (task, precision) -> test accuracies in %
tasks = []
for line in open(sys.argv[1]):
    task, p, seed, a = line.rstrip("\n").split("\t")
    if task not in tasks: tasks.append(task)
    acc[(task, p)].append(float(a))
names = {"cnn": "Fashion-MNIST cnn 16,32,64/128", "resnet20": "CIFAR-10 subset ResNet-20"}
mean = lambda xs: statistics.mean(xs) if xs and not any(math.isnan(x) for x in xs) else float("nan")
reduced = [p for p in precisions if p != "fp32"] if "fp32" in precisions else []
if not tasks:
    sys.exit("no task ran (see the SKIP lines above)")
print(f"\nTest accuracy (%), mean of the seeds; issue 25's bound: within {bound} points of FP32")
cols = ["task"] + [f"{p} mean" for p in precisions]
cols += sum(([f"{p} - fp32 (points)", f"within {bound}"] for p in reduced), [])
cols += [f"{p} per seed" for p in precisions]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for task in tasks:
    cells = [names.get(task, task)] + [f"{mean(acc[(task, p)]):.2f}" for p in precisions]
    for p in reduced:
        d = mean(acc[(task, p)]) - mean(acc[(task, "fp32")])
        cells += [f"{d:+.2f}", "-" if math.isnan(d) else ("yes" if abs(d) <= bound else "no")]
    cells += [", ".join(f"{x:.2f}" for x in acc[(task, p)]) for p in precisions]
    print("| " + " | ".join(cells) + " |")
PY
