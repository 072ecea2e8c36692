#!/usr/bin/env bash
# `make bench-compare`: Strata against PyTorch on the CPU (and on CUDA where there is one), per
# model and batch size and per precision, in one run.
# Each round runs Strata (`strata bench train`), PyTorch NCHW and PyTorch channels-last on the
# same configuration, in every precision PRECISION names, in an order that rotates every round
# (a shared machine's load bursts hit all arms alike), with THREADS threads each; at the end,
# medians and Strata / best PyTorch per precision.
#   bench/compare.sh [rounds]      (PYTHON=... picks the Python that has torch)
# PRECISION=fp32,bf16 (default; or fp32, bf16, fp16, any list): fp32 is Strata's default against
# PyTorch eager FP32 (TF32 on CUDA); bf16 and fp16 are `strata bench train --precision P` against
# PyTorch under torch.autocast(device, dtype) (fp16 with a GradScaler; bench/torch/train_step.py).
# fp16 is a CUDA precision: the CPU gets no fp16 arms. A strata without --precision gets a SKIP
# line for its reduced-precision arms; the PyTorch arms still run.
# COMPARE_DEVICES=cuda runs only the CUDA arms (a GPU machine's many cores would make the 2-thread
# CPU arms slow and say little); the default, cpu,cuda, runs both where there is a GPU.
# COMPARE_COMPILE=cuda (or cpu, or cpu,cuda; default none) adds a torch.compile arm per precision
# in COMPARE_COMPILE_LAYOUT (default channels_last), reported beside the eager ratio: compiling
# runs in every process's warm-up (cached on disk after the first; a cold CPU compile of a model
# takes minutes on 2 cores); a compiler that fails reads nan with the reason on stderr's SKIP line.
# COMPARE_ARMS=torch runs the PyTorch arms alone (PyTorch's own bf16 / fp32 on this machine);
# COMPARE_MODELS=resnet20,cnn@40 keeps only those rows (a model name, or name@batch).
# Without torch it prints one SKIP line and exits 0. PyTorch runs with OMP_WAIT_POLICY=passive
# (unless set): with libgomp's default spinning it ran 3-4x slower on a machine shared with other
# jobs (a 16->16 conv: 33-38 vs 110-146 GFLOP/s); Strata sets the same policy for its libgomp.
# CUDA arms (Strata --device cuda, PyTorch cuda NCHW and channels-last, TF32 both) join the
# rotation when `nvidia-smi` lists a GPU and a CUDA build of strata exists (STRATA_CUDA, else
# .build-cuda/release/strata or dist/cuda/strata; a debug build would time the wrong thing);
# otherwise one SKIP line.
# Read the ratios from a quiet machine (it prints the load average at the start and the end): at
# load 2-45 the 2-thread PyTorch bf16 arms moved 3-8x between runs (bench/cpu-bf16-torch.md).
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
if [ -n "${COMPARE_MODELS:-}" ]; then
  kept=()
  for config in "${configs[@]}"; do
    IFS='|' read -r name batch _ <<< "$config"
    case ",$COMPARE_MODELS," in *",${name%%-*},"*|*",$name,"*|*",${name%%-*}@$batch,"*|*",$name@$batch,"*) kept+=("$config") ;; esac
  done
  [ ${#kept[@]} -gt 0 ] || { echo "bench-compare: COMPARE_MODELS='$COMPARE_MODELS' keeps no row (resnet20, resnet56, vgg16, cnn, or NAME@BATCH)" >&2; exit 2; }
  configs=("${kept[@]}")
fi
devices=${COMPARE_DEVICES:-cpu,cuda}
case ",$devices," in *,cpu,*|*,cuda,*) ;; *) echo "bench-compare: COMPARE_DEVICES='$devices' names neither cpu nor cuda" >&2; exit 2 ;; esac
precisions=${PRECISION:-fp32,bf16}
for p in ${precisions//,/ }; do
  case $p in fp32|bf16|fp16) ;; *) echo "bench-compare: PRECISION='$precisions': '$p' is not fp32, bf16 or fp16" >&2; exit 2 ;; esac
done
compile=${COMPARE_COMPILE:-none}
compile_layout=${COMPARE_COMPILE_LAYOUT:-channels_last}
case $compile_layout in nchw|channels_last) ;; *) echo "bench-compare: COMPARE_COMPILE_LAYOUT='$compile_layout' is not nchw or channels_last" >&2; exit 2 ;; esac
who=${COMPARE_ARMS:-strata,torch}
case ",$who," in *,strata,*|*,torch,*) ;; *) echo "bench-compare: COMPARE_ARMS='$who' names neither strata nor torch" >&2; exit 2 ;; esac

has_precision() {   # strata binary: does `bench train` take --precision?
  "$1" bench train --help 2>/dev/null | grep -q -- '--precision'
}
# Arms are DEVICE:IMPLEMENTATION:PRECISION; the summary below reads them back.
arms=()
add_arms() {   # device strata-binary
  local device=$1 sbin=$2 p
  for p in ${precisions//,/ }; do
    if [ "$device" = cpu ] && [ "$p" = fp16 ]; then
      echo "note: no CPU fp16 arms (the CPU's reduced precision is bf16: oneDNN AVX-512 BF16)"
      continue
    fi
    if [[ ",$who," == *,strata,* ]]; then
      if [ "$p" = fp32 ] || has_precision "$sbin"; then
        arms+=("$device:strata:$p")
      else
        echo "SKIP bench-compare $device strata $p arm: '$sbin bench train --help' has no --precision (a strata built before the precision work)"
      fi
    fi
    if [[ ",$who," == *,torch,* ]]; then
      arms+=("$device:torch-nchw:$p" "$device:torch-channels-last:$p")
      if [[ ",$compile," == *,$device,* ]]; then arms+=("$device:torch-compile:$p"); fi
    fi
  done
}
case ",$devices," in *,cpu,*) add_arms cpu "$bin" ;; esac
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
elif [[ ",$who," == *,strata,* ]] && { [ -z "$cuda_bin" ] || [ ! -x "$cuda_bin" ]; }; then
  echo "SKIP bench-compare CUDA arms: no CUDA build of strata (make dist-cuda, a release build with --traits CUDA into .build-cuda, or STRATA_CUDA=...)"
else
  "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || echo "note: torch in $python sees no CUDA GPU: the PyTorch CUDA arms will read nan"
  add_arms cuda "$cuda_bin"
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
run_arm() {   # arm batch strata-args torch-args
  local device impl precision batch=$2 sargs=$3 targs=$4 sflags=() tflags=()
  IFS=: read -r device impl precision <<< "$1"
  [ "$precision" = fp32 ] || { sflags=(--precision "$precision"); tflags=(--amp "$precision"); }
  [ "$device" = cpu ] && tflags+=(--threads "$threads")
  # shellcheck disable=SC2086
  case $device:$impl in
    cpu:strata) "$bin" bench train $sargs --batch-size "$batch" --device cpu --threads "$threads" "${sflags[@]}" --json ;;
    cuda:strata) "$cuda_bin" bench train $sargs --batch-size "$batch" --device cuda "${sflags[@]}" --json ;;
    *:torch-nchw) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout nchw --device "$device" "${tflags[@]}" ;;
    *:torch-channels-last) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout channels_last --device "$device" "${tflags[@]}" ;;
    *:torch-compile) "$python" bench/torch/cpu_step.py $targs --batch "$batch" --layout "$compile_layout" --device "$device" --compile "${tflags[@]}" ;;
  esac 2> >(grep '^SKIP' >&2 || true) | "$python" -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["images_per_second"])' 2>/dev/null \
    || echo nan
}
if [ ${#arms[@]} -eq 0 ]; then
  echo "SKIP bench-compare: COMPARE_DEVICES=$devices COMPARE_ARMS=$who PRECISION=$precisions and no arm can run"
  exit 0
fi
load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
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
# Barrier-heavy multi-threaded steps suffer most on a loaded machine (bench/cpu-bf16-torch.md).
echo "load average (1 min): $load_start at the start, $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?') at the end, on $(nproc) cores"
"$python" - "$out" "$rounds" "$threads" "$compile_layout" <<'PY'
import sys, math, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
rounds, threads, compile_layout = sys.argv[2], sys.argv[3], sys.argv[4].replace("_", "-")
by = collections.defaultdict(lambda: collections.defaultdict(list))   # (device, precision) -> what -> impl -> values
arms = collections.defaultdict(set)
whats = []
for arm, what, v in rows:
    device, impl, precision = arm.split(":")
    arms[(device, precision)].add(impl)
    if what not in whats: whats.append(what)
    if not math.isnan(float(v)): by[(device, precision)].setdefault(what, collections.defaultdict(list))[impl].append(float(v))
med = lambda xs: statistics.median(xs) if xs else float("nan")
def best(*vs):
    vs = [v for v in vs if not math.isnan(v)]
    return max(vs) if vs else float("nan")
fmt = lambda v, d=1: "-" if math.isnan(v) else f"{v:.{d}f}"
ratio = {}   # (device, precision, what) -> (Strata / best eager PyTorch, best eager PyTorch)
for device in ("cpu", "cuda"):
    for precision in ("fp32", "bf16", "fp16"):
        if (device, precision) not in arms: continue
        compiled = "torch-compile" in arms[(device, precision)]
        if device == "cpu":
            where = f"{threads} threads each, " + ("FP32" if precision == "fp32" else
                    f"Strata --precision {precision} against torch.autocast(\"cpu\", dtype=torch.bfloat16)")
        else:
            where = "TF32" if precision == "fp32" else f"Strata --precision {precision} against torch.autocast(\"cuda\", dtype=torch.{'bfloat16' if precision == 'bf16' else 'float16'})"
        label = "" if precision == "fp32" else f" {precision}"
        print(f"\n{device.upper()}{label}: images/s, medians of {rounds} interleaved rounds, {where}")
        head = "| model, batch | Strata | PyTorch NCHW | PyTorch channels-last |"
        sep = "|---|---|---|---|"
        if compiled: head += f" PyTorch compiled ({compile_layout}) |"; sep += "---|"
        head += " Strata / best PyTorch |"; sep += "---|"
        if compiled: head += " Strata / compiled |"; sep += "---|"
        print(head); print(sep)
        for what in whats:
            per = by[(device, precision)].get(what, {})
            s, n, c, k = (med(per.get(i, [])) for i in ("strata", "torch-nchw", "torch-channels-last", "torch-compile"))
            b = best(n, c)
            ratio[(device, precision, what)] = (s / b if b else float("nan"), b)
            line = f"| {what} | {fmt(s)} | {fmt(n)} | {fmt(c)} |"
            if compiled: line += f" {fmt(k)} |"
            line += f" {fmt(s / b if b else float('nan'), 2)} |"
            if compiled: line += f" {fmt(s / k if k else float('nan'), 2)} |"
            print(line)
# Issue 25's ratios side by side, each side's own reduced-precision speed-up, and its goals: on the
# CPU at least 1.25x in every precision; on CUDA TF32 at least 1.5x at batch 128 and 3x at batch 32,
# AMP at least 1.25x.
def goal(device, precision, what):
    if device == "cpu" or precision != "fp32": return 1.25
    return 3.0 if what.endswith(" batch 32") else 1.5
for device in ("cpu", "cuda"):
    reduced = [p for p in ("bf16", "fp16") if (device, p) in arms]
    if (device, "fp32") not in arms or not reduced: continue
    goals = "at least 1.25x on every row" if device == "cpu" else "TF32 at least 1.5x (3x at batch 32), AMP at least 1.25x"
    print(f"\n{device.upper()}: Strata / best PyTorch per precision (issue 25's goal: {goals}), and each one's speed-up over its FP32")
    head, sep = "| model, batch | fp32 |", "|---|---|"
    for p in reduced: head += f" {p} | Strata {p}/fp32 | PyTorch {p}/fp32 |"; sep += "---|---|---|"
    print(head); print(sep)
    short = []
    for what in whats:
        f32, t32 = ratio.get((device, "fp32", what), (float("nan"), float("nan")))
        s32 = med(by[(device, "fp32")].get(what, {}).get("strata", []))
        line = f"| {what} | {fmt(f32, 2)} |"
        if not f32 >= goal(device, "fp32", what): short.append(f"{what} fp32")
        for p in reduced:
            r, t = ratio.get((device, p, what), (float("nan"), float("nan")))
            sp = med(by[(device, p)].get(what, {}).get("strata", []))
            line += f" {fmt(r, 2)} | {fmt(sp / s32 if s32 else float('nan'), 2)} | {fmt(t / t32 if t32 else float('nan'), 2)} |"
            if not r >= goal(device, p, what): short.append(f"{what} {p}")
        print(line)
    if any("strata" in arms[(device, p)] for p in ["fp32"] + reduced):
        print(f"rows under the goal (or not measured): {', '.join(short) if short else 'none'}")
    else:
        print("(no Strata arms: PyTorch alone, its own reduced-precision speed-up)")
PY
