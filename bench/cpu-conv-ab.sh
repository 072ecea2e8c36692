#!/usr/bin/env bash
# An A/B measurement of the CPU backend (bench/NOTES.md section 5): interleaved rounds of
# `strata bench ops` and `strata bench train` for each arm, medians per arm at the end.
#   bench/cpu-conv-ab.sh ROUNDS BEFORE-BINARY
# Arms: "before" (a strata binary built from an earlier commit, e.g. a copy of main's) and
# "after" (this tree's .build/release/strata). The arms' order rotates every round, so a burst
# of load elsewhere on a shared machine hits each arm alike.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?rounds}
before=${2:?a strata binary to compare with}
bin=.build/release/strata
out=${OUT_FILE:-/tmp/cpu-conv-ab.tsv}
: > "$out"
arms=(before after)
configs=(
  "resnet20 128 --model resnet20"
  "resnet56 128 --model resnet56"
  "vgg16-single 64 --model vgg16 --head single --steps 5"
  # SGD at lr 0.1 diverges on the synthetic data at batch 128 (before this change too): Adam.
  "cnn-48x3-500,250 40 --model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam"
  "cnn-48x3-500,250 128 --model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam"
)
run_arm() {   # arm, then the strata arguments
  local arm=$1; shift
  case $arm in
    before) "$before" "$@" ;;
    after) "$bin" "$@" ;;
  esac
}
for ((r = 0; r < rounds; r++)); do
  n=${#arms[@]}
  order=()
  for ((i = 0; i < n; i++)); do order+=("${arms[$(((i + r) % n))]}"); done
  for arm in "${order[@]}"; do
    run_arm "$arm" bench ops --device cpu --threads 2 --repeats 3 --json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); [print(sys.argv[1], "ops", o["name"], o["gflops"], sep="\t") for o in d["ops"]]' "$arm" >> "$out"
  done
  for config in "${configs[@]}"; do
    read -r name batch args <<< "$config"
    for arm in "${order[@]}"; do
      # shellcheck disable=SC2086
      ips=$(run_arm "$arm" bench train $args --batch-size "$batch" --device cpu --threads 2 --json \
            | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["images_per_second"])' \
            || echo nan)
      printf '%s\ttrain\t%s batch %s\t%s\n' "$arm" "$name" "$batch" "$ips" | tee -a "$out"
    done
  done
done
python3 - "$out" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
arms = list(dict.fromkeys(r[0] for r in rows))
for kind, unit in (("ops", "GFLOP/s"), ("train", "images/s")):
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    for arm, k, name, v in rows:
        if k == kind: by[name][arm].append(float(v))
    print(f"\n{kind}: median {unit} ({len(next(iter(by.values()))[arms[0]])} rounds)")
    print("| " + " | ".join(["what"] + arms + ["after / before"]) + " |")
    print("|" + "---|" * (len(arms) + 2))
    for name, per in by.items():
        med = {a: statistics.median(per[a]) for a in arms if per[a]}
        ratios = [f"{med['after'] / med['before']:.2f}"]
        print("| " + " | ".join([name] + [f"{med[a]:.1f}" for a in arms] + ratios) + " |")
PY
