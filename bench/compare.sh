#!/usr/bin/env bash
# `make bench-compare`: Strata against PyTorch on the CPU (and on CUDA where there is one), per
# model and batch size, in one run.
# Each round runs Strata (`strata bench train`), PyTorch NCHW and PyTorch channels-last on the
# same configuration, in an order that rotates every round (a shared machine's load bursts hit
# all three alike), with THREADS threads each; at the end, medians and Strata / best PyTorch.
#   bench/compare.sh [rounds]      (PYTHON=... picks the Python that has torch)
# COMPARE_DEVICES=cuda runs only the CUDA arms (a GPU machine's many cores would make the 2-thread
# CPU arms slow and say little); the default, cpu,cuda, runs both where there is a GPU.
# Without torch it prints one SKIP line and exits 0. PyTorch runs with OMP_WAIT_POLICY=passive
# (unless set): with libgomp's default spinning it ran 3-4x slower on a machine shared with other
# jobs (a 16->16 conv: 33-38 vs 110-146 GFLOP/s); Strata sets the same policy for its libgomp.
# CUDA arms (Strata --device cuda, PyTorch cuda NCHW and channels-last, TF32 both) join the
# rotation when `nvidia-smi` lists a GPU and a CUDA build of strata exists (STRATA_CUDA, else
# .build-cuda/release/strata or dist/cuda/strata; a debug build would time the wrong thing);
# otherwise one SKIP line.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
python=${PYTHON:-python3}
threads=${THREADS:-2}
bin=${STRATA:-.build/release/strata}
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "SKIP bench-compare: torch is not importable by $python (set PYTHON=/path/to/python with torch)"
  exit 0
fi
out=$(mktemp /tmp/bench-compare.XXXXXX.tsv)
# name | batch | strata arguments | PyTorch arguments. The cnn trains with Adam: SGD at lr 0.1
# diverges on the synthetic data at batch 128 (Strata stops on a non-finite loss).
configs=(
  "resnet20|128|--model resnet20|--model resnet20"
  "resnet56|128|--model resnet56|--model resnet56"
  "vgg16-single|64|--model vgg16 --head single --steps 5|--model vgg16 --vgg-head single --steps 5"
  "cnn-48x3-500,250|40|--model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam|--model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam"
  "cnn-48x3-500,250|128|--model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam|--model cnn --filters 48,48,48 --hidden 500,250 --optimizer adam"
)
devices=${COMPARE_DEVICES:-cpu,cuda}
case ",$devices," in *,cpu,*|*,cuda,*) ;; *) echo "bench-compare: COMPARE_DEVICES='$devices' names neither cpu nor cuda" >&2; exit 2 ;; esac
arms=()
case ",$devices," in *,cpu,*) arms+=(strata torch-nchw torch-channels-last) ;; esac
cuda_bin=${STRATA_CUDA:-}
if [ -z "$cuda_bin" ]; then
  for b in .build-cuda/release/strata dist/cuda/strata; do
    [ -x "$b" ] && { cuda_bin=$b; break; }
  done
fi
if [[ ",$devices," != *,cuda,* ]]; then
  :
elif ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP bench-compare CUDA arms: no GPU (nvidia-smi missing or lists none)"
elif [ -z "$cuda_bin" ] || [ ! -x "$cuda_bin" ]; then
  echo "SKIP bench-compare CUDA arms: no CUDA build of strata (make dist-cuda, a release build with --traits CUDA into .build-cuda, or STRATA_CUDA=...)"
else
  "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || echo "note: torch in $python sees no CUDA GPU: the PyTorch CUDA arms will read nan"
  arms+=(strata-cuda torch-cuda-nchw torch-cuda-channels-last)
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
run_arm() {   # arm batch strata-args torch-args
  local arm=$1 batch=$2 sargs=$3 targs=$4
  # shellcheck disable=SC2086
  case $arm in
    strata) "$bin" bench train $sargs --batch-size "$batch" --device cpu --threads "$threads" --json ;;
    torch-nchw) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout nchw --threads "$threads" ;;
    torch-channels-last) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout channels_last --threads "$threads" ;;
    strata-cuda) "$cuda_bin" bench train $sargs --batch-size "$batch" --device cuda --json ;;
    torch-cuda-nchw) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout nchw --device cuda ;;
    torch-cuda-channels-last) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout channels_last --device cuda ;;
  esac 2>/dev/null | "$python" -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["images_per_second"])' \
    || echo nan
}
if [ ${#arms[@]} -eq 0 ]; then
  echo "SKIP bench-compare: COMPARE_DEVICES=$devices and no arm can run"
  exit 0
fi
for ((r = 0; r < rounds; r++)); do
  for config in "${configs[@]}"; do
    IFS='|' read -r name batch sargs targs <<< "$config"
    for ((i = 0; i < ${#arms[@]}; i++)); do
      arm=${arms[$(((i + r) % ${#arms[@]}))]}
      ips=$(run_arm "$arm" "$batch" "$sargs" "$targs")
      printf '%s\t%s batch %s\t%s\n' "$arm" "$name" "$batch" "$ips" | tee -a "$out"
    done
  done
done
"$python" - "$out" "$rounds" "$threads" <<'PY'
import sys, math, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = collections.defaultdict(lambda: collections.defaultdict(list))
for arm, what, v in rows:
    if not math.isnan(float(v)): by[what][arm].append(float(v))
med = lambda xs: statistics.median(xs) if xs else float("nan")
for device, prefix in (("CPU", ""), ("CUDA", "cuda-")):
    if not any(per.get(f"strata{'-cuda' if prefix else ''}") or per.get(f"torch-{prefix}nchw") for per in by.values()):
        continue
    where = f"{sys.argv[3]} threads each" if device == "CPU" else "TF32"
    print(f"\n{device}: images/s, medians of {sys.argv[2]} interleaved rounds, {where}")
    print("| model, batch | Strata | PyTorch NCHW | PyTorch channels-last | Strata / best PyTorch |")
    print("|---|---|---|---|---|")
    for what, per in by.items():
        s = med(per["strata-cuda" if prefix else "strata"])
        n, c = med(per[f"torch-{prefix}nchw"]), med(per[f"torch-{prefix}channels-last"])
        best = max(v for v in (n, c) if not math.isnan(v)) if not (math.isnan(n) and math.isnan(c)) else float("nan")
        print(f"| {what} | {s:.1f} | {n:.1f} | {c:.1f} | {s / best:.2f} |")
PY
