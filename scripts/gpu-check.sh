#!/usr/bin/env bash
# The one-command GPU check: everything worth knowing about Strata on a GPU machine, in one call
# of about 5 minutes, on a machine without Swift (NVIDIA driver, CUDA 13 libraries, PyTorch in
# a Python venv) with the static binary of `make dist-cuda` carried over in dist/cuda.
#
#   scripts/gpu-check.sh [--data DIR] [--out DIR]       (or: make gpu-check)
#
# Steps, each time-boxed with `timeout` (one failing step does not stop the others; the whole
# stays under GPU_CHECK_BUDGET seconds, default 340), most important first:
#   1. strata info (+ nvidia-smi)             -- stops here, exit 3, when no GPU is usable
#   1b. the second round's start-up checks (a few seconds each): `strata info` with an empty
#      kernel cache and again with the cache it filled (kernel-cache-{cold,warm}.txt: wall_ms,
#      kernel-cache-files.txt); bin/strata without the wrapper, STRATA_CUDA_LIBS only and the
#      kernel cache off, so NVRTC must find its builtins through the loader (nvrtc-builtins-bare)
#   1c. (after step 2) `selftest --filter "optimizer multi"` (the one-launch SGD/Adam steps
#      against the per-tensor ones, bit for bit: selftest-multi-tensor.txt) and `selftest
#      --filter "cuda graph"` with STRATA_CUDA_GRAPHS=on (selftest-cuda-graph.txt); uploads: bench
#      train at batch 32 (nchw) of resnet20 and cnn, the default staging ring (bench-train/) and
#      STRATA_CUDA_UPLOAD=sync, where each upload waits as before the ring
#      (bench-train-upload-sync/), one after the other
#   2. strata selftest --device cuda with STRATA_CUDA_LAYOUT=nhwc (our channels-last batch norm
#      and bias backward kernels against the CPU oracle)
#   3. bench train --profile (20 steps, per-kernel ms per call) of vgg16 (single head) and
#      resnet20 at batch 128, in nchw and nhwc (bench-profile/)
#   4. bench train TF32: nhwc at batch 128 and 32 (bench-train-nhwc/), nchw at 128 (bench-train/),
#      nhwc with cuDNN's batch norm (STRATA_CUDA_BN=cudnn) at 128 for comparison (bench-train-nhwc-cudnn/)
#   5. strata selftest --device cuda in NCHW (STRATA_CUDA_LAYOUT=nchw); bench train at batch 32 in
#      nhwc and nchw; nhwc with STRATA_FUSE=off (no layer fusion) at 128 (bench-train-nhwc-nofuse/)
#   6. ResNet-20 on the CIFAR-10 subset, 3 epochs, cuda nhwc, and its checkpoint in PyTorch (strict)
#   7. bench/compare.sh's CUDA arms, one round (COMPARE_DEVICES=cuda)
# GPU_CHECK_PRECISION=1 runs the reduced-precision check instead (issue 25; about 7 minutes,
# GPU_CHECK_BUDGET 420, sized to fit one device call with its start-up in 15 minutes), each
# step writing its results as it finishes, most important first:
#   P1. selftest --device cuda --precision bf16 (all), then fp16 (--filter cross-device: the
#       float64 suite runs strict FP32 in both); the cross-device suite holds the float64-bound,
#       rounded-input and CPU-bf16 comparisons of Verification/CUDAPrecisionChecks.swift;
#   P2. bench train --precision bf16 (bench-train-precision/MODEL-bBATCH-bf16): resnet20 and
#       resnet56 at 128 and 32, vgg16 single head at 128 and 64, the seed cnn at 128 and 40;
#       PyTorch eager AMP bf16 on the same shapes (torch-amp-bf16*.json, bench.py --amp bf16);
#   P3. the same in fp16 (PyTorch: --amp fp16);
#   P4. Strata TF32 at batch 128 (MODEL-b128-tf32), the baseline on this card;
#   P5. torch.compile with AMP bf16 at batch 128 (torch-compile-bf16.json, bench.py --compile),
#       where the card's PyTorch has it.
# GPU_CHECK_FULL=1 runs the earlier full check instead (about 8 minutes, GPU_CHECK_BUDGET 470):
#   selftest in three settings; bench train for resnet20, resnet56, vgg16, cnn at batch 32 and
#   128, TF32 and --strict-fp32, nhwc, nhwc + persistent BN; PyTorch on the same card; training
#   on cuda, cpu and cuda nhwc with the strict loads; strata grow; bench ops.
# Writes to $OUT (default runs/gpu-check): log.txt (everything), one .txt per step, JSON per
# figure, and gpu-check.json (all figures, step statuses, Strata/PyTorch ratios).
#
# Environment: STRATA (the binary; default dist/cuda/strata), STRATA_CHECK_DATA (the dataset;
# default ../shared/datasets/cifar10-subset or shared/datasets/cifar10-subset when present),
# PYTHON (a python with torch; default: the first of python3/python on PATH and the venvs found
# under /opt, /root, /home, /venv that imports torch), GPU_CHECK_BUDGET (seconds).
#
# Exit status: 0 every step ran and passed; 1 a step failed or timed out (see gpu-check.json);
# 2 setup problem (no strata binary, bad arguments); 3 no usable GPU (stopped after `strata info`
# at the first GPU step, with the reason).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
full=${GPU_CHECK_FULL:-0}
precision_mode=${GPU_CHECK_PRECISION:-0}
budget=${GPU_CHECK_BUDGET:-$([ "$full" = 1 ] && echo 470 || { [ "$precision_mode" = 1 ] && echo 420 || echo 340; })}
deadline=$((start + budget))
data=${STRATA_CHECK_DATA:-}
out=${OUT:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data=${2:-}; shift 2 || shift ;;
        --out) out=${2:-}; shift 2 || shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
# Paths given by the caller are relative to where it was called from; defaults to the checkout.
[ -n "$data" ] && { data=$(cd "$data" 2>/dev/null && pwd) || { echo "gpu-check: no dataset folder '$data'" >&2; exit 2; }; }
[ -n "${STRATA:-}" ] && [ -e "$STRATA" ] && STRATA=$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")
mkdir -p "${out:-$here/runs/gpu-check}" || { echo "gpu-check: cannot create ${out:-$here/runs/gpu-check}" >&2; exit 2; }
OUT=$(cd "${out:-$here/runs/gpu-check}" && pwd)
cd "$here"
log="$OUT/log.txt"
steps="$OUT/steps.jsonl"
: > "$log"; : > "$steps"
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

say() { echo "$*"; echo "$*" >> "$log"; }

# step NAME SECONDS COMMAND...: runs COMMAND with its output in $OUT/NAME.txt and the log, at most
# SECONDS (less when the overall budget is nearly spent), and records its status.
failed=0
step() {
    local name=$1 box=$2; shift 2
    local now left rc t0 t1 status
    now=$(date +%s); left=$((deadline - now))
    if [ "$left" -lt 10 ]; then
        say "== $name: SKIPPED (the ${budget}s budget is spent)"
        echo "{\"step\": \"$name\", \"status\": \"skipped\", \"seconds\": 0}" >> "$steps"
        failed=1; return 1
    fi
    [ "$box" -gt "$left" ] && box=$left
    say "== $name (at most ${box}s): $*"
    t0=$(date +%s)
    timeout -k 5 "$box" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    t1=$(date +%s)
    cat "$OUT/$name.txt" >> "$log"
    tail -n "${show_lines:-3}" "$OUT/$name.txt" | sed 's/^/   | /'
    case $rc in
        0) status=ok ;;
        124|137) status=timeout; failed=1 ;;
        *) status=failed; failed=1 ;;
    esac
    say "== $name: $status (exit $rc, $((t1 - t0))s)"
    echo "{\"step\": \"$name\", \"status\": \"$status\", \"exit\": $rc, \"seconds\": $((t1 - t0))}" >> "$steps"
    return $rc
}

# The report (gpu-check.json) is assembled by any python3; the PyTorch steps need one with torch.
report() {
    local py
    py=$(command -v python3 || command -v python || echo "${PYTHON:-}")
    if [ -n "$py" ]; then
        if "$py" scripts/gpu-check-report.py "$OUT" "$1" > "$OUT/report.txt" 2>&1; then
            cat "$OUT/report.txt" | tee -a "$log"
            say "figures: $OUT/gpu-check.json"
        else
            cat "$OUT/report.txt" >> "$log"
            say "gpu-check: could not assemble $OUT/gpu-check.json (see $OUT/report.txt)"
        fi
    else
        echo "gpu-check: no python: figures are in $OUT/*.json, no gpu-check.json"
    fi
}

# MARK: Setup

STRATA=${STRATA:-dist/cuda/strata}
if [ ! -x "$STRATA" ]; then
    say "gpu-check: no strata binary at $STRATA (build it with \`make dist-cuda\` and carry dist/cuda over, or set STRATA)"
    exit 2
fi
if [ -z "$data" ]; then
    for d in ../shared/datasets/cifar10-subset shared/datasets/cifar10-subset; do
        [ -e "$d/test_batch.bin" ] && { data=$d; break; }
    done
fi
if [ -n "$data" ] && [ -e "$data/test_batch.bin" ]; then data=$(cd "$data" && pwd); else
    say "gpu-check: no CIFAR-10 dataset (--data DIR or STRATA_CHECK_DATA); the training, load and grow steps will be skipped"
    data=""
fi

# A python that imports torch (the GPU machines keep PyTorch in a venv).
find_python() {
    local candidates p
    candidates="${PYTHON:-} $(command -v python3 2>/dev/null) $(command -v python 2>/dev/null)"
    candidates="$candidates $(find /opt /root /home /venv /usr/local -maxdepth 5 -path '*/bin/python3' 2>/dev/null | head -20)"
    for p in $candidates; do
        [ -x "$p" ] && timeout 60 "$p" -c 'import torch' >/dev/null 2>&1 && { echo "$p"; return 0; }
    done
    command -v python3 2>/dev/null || command -v python 2>/dev/null
}
python=$(find_python)

# The CUDA libraries: PyTorch's NVIDIA wheels first (the wrapper searches further when needed).
if [ -z "${STRATA_CUDA_LIBS:-}" ] && [ -n "$python" ]; then
    site=$("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
    found=$(find $site \( -name 'libcudnn.so.9' -o -name 'libcublas.so.13' -o -name 'libcudart.so.13' \
             -o -name 'libnvrtc.so.13' \) 2>/dev/null)
    # Only when all four are there; otherwise the wrapper searches the machine.
    if [ "$(echo "$found" | xargs -r -n1 basename | sort -u | wc -l)" = 4 ]; then
        export STRATA_CUDA_LIBS=$(echo "$found" | xargs -r -n1 dirname | sort -u | paste -sd: -)
    fi
fi

say "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ): strata $STRATA, data ${data:-none}, python ${python:-none}, out $OUT"
say "STRATA_CUDA_LIBS=${STRATA_CUDA_LIBS:-(unset: the wrapper searches)}"

# MARK: 1. Info and the GPU gate

if command -v nvidia-smi >/dev/null; then
    step nvidia-smi 20 nvidia-smi
else
    say "nvidia-smi: not installed"
fi
show_lines=20 step info 60 "$STRATA" info
if ! grep -q '^  cuda:0: ' "$OUT/info.txt"; then
    reason=$(grep -m1 '^  cuda' "$OUT/info.txt" | sed 's/^ *//')
    say "STOP: no usable GPU, so no GPU step runs: ${reason:-strata info did not run}"
    echo "{\"step\": \"gpu\", \"status\": \"unavailable\", \"reason\": \"$(echo "$reason" | tr -d '"\\' | tr '\n' ' ')\"}" >> "$steps"
    report no-gpu
    exit 3
fi

# MARK: The reduced-precision check (GPU_CHECK_PRECISION=1)

if [ "$precision_mode" = 1 ]; then
    # P1. Every family's selftest in each precision: the float64 suite runs on a strict-FP32
    # backend, the cross-device suite (with the precision checks) on the bf16 / fp16 one.
    # fp16 runs the cross-device suite only: the float64 one runs on a strict-FP32 backend in
    # both, so the bf16 run has already checked it.
    show_lines=8 step selftest-bf16 100 "$STRATA" selftest --device cuda --precision bf16 --quiet
    show_lines=8 step selftest-fp16 60 "$STRATA" selftest --device cuda --precision fp16 --filter cross-device --quiet
    # The shapes of issue 25: resnet20/56 at 128 and 32, vgg16 (single head) at 128 and 64, cnn at 128 and 40.
    shapes="resnet20:128 resnet56:128 vgg16:128 cnn:128 resnet20:32 resnet56:32 vgg16:64 cnn:40"
    mkdir -p "$OUT/bench-train-precision"
    strata_arms() {   # strata_arms PRECISION [SHAPES]: bench train on every shape, JSON last line
        local p=$1 shape model batch head flag
        for shape in ${2:-$shapes}; do
            model=${shape%%:*}; batch=${shape##*:}
            head=""; [ "$model" = vgg16 ] && head="--head single"
            flag=""; [ "$p" != tf32 ] && flag="--precision $p"
            step "bench-train-precision/$model-b$batch-$p" 25 \
                "$STRATA" bench train --model "$model" $head --batch-size "$batch" --steps 20 --device cuda $flag --json
        done
    }
    torch_amp() {   # torch_amp NAME SECONDS EXTRA...: bench.py on the three batch groups, best of both layouts
        local name=$1 box=$2; shift 2
        show_lines=6 step "$name-resnet" "$box" "${python:-python3}" bench/torch/bench.py --models resnet20,resnet56 \
            --batches 32,128 --layouts nchw,channels_last --steps 20 --budget $((box - 10)) "$@" --json "$OUT/$name-resnet.json"
        show_lines=6 step "$name-vgg16" "$box" "${python:-python3}" bench/torch/bench.py --models vgg16 --vgg-head single \
            --batches 64,128 --layouts nchw,channels_last --steps 20 --budget $((box - 10)) "$@" --json "$OUT/$name-vgg16.json"
        show_lines=6 step "$name-cnn" 30 "${python:-python3}" bench/torch/bench.py --models cnn \
            --batches 40,128 --layouts nchw,channels_last --steps 20 --budget 20 "$@" --json "$OUT/$name-cnn.json"
    }
    # P2, P3. Strata against PyTorch eager AMP, precision by precision, each measured in one stretch.
    for p in bf16 fp16; do
        strata_arms $p
        torch_amp "torch-amp-$p" 50 --amp $p
    done
    # P4. TF32 on this card (the ratio AMP/TF32 is what the precision is worth).
    strata_arms tf32 "resnet20:128 resnet56:128 vgg16:128 cnn:128"
    # P5. torch.compile (AMP bf16, batch 128): what a speed-conscious user tries next.
    show_lines=6 step torch-compile-bf16 90 "${python:-python3}" bench/torch/bench.py --models resnet20,vgg16,cnn \
        --vgg-head single --batches 128 --layouts channels_last --steps 20 --budget 80 --amp bf16 --compile \
        --json "$OUT/torch-compile-bf16.json"
    report gpu
    say "gpu-check (precision): done in $(( $(date +%s) - start ))s, $([ $failed = 0 ] && echo 'every step passed' || echo 'some steps failed (see gpu-check.json)')"
    exit $failed
fi

# MARK: 1b. Start-up: the kernel cache and NVRTC's builtins

# "${timed[@]}" COMMAND...: runs it and prints its wall time in ms as the last line ("wall_ms: N")
# (a bash -c, not a function, because `step` runs it under `timeout`).
timed=(bash -c 't0=$(date +%s%N); "$@"; rc=$?; echo "wall_ms: $(( ($(date +%s%N) - t0) / 1000000 ))"; exit $rc' timed)
kernel_cache="$work/kernel-cache"
step kernel-cache-cold 60 "${timed[@]}" env STRATA_KERNEL_CACHE="$kernel_cache" "$STRATA" info
ls -l --time-style=+%s.%N "$kernel_cache" > "$OUT/kernel-cache-files.txt" 2>&1
step kernel-cache-warm 60 "${timed[@]}" env STRATA_KERNEL_CACHE="$kernel_cache" "$STRATA" info
ls -l --time-style=+%s.%N "$kernel_cache" >> "$OUT/kernel-cache-files.txt" 2>&1
# The loader alone (no wrapper, no LD_LIBRARY_PATH to the CUDA libraries) must find NVRTC 13.0's
# builtins: before, every compile failed here with "failed to open libnvrtc-builtins".
bare="$(dirname "$STRATA")/bin/strata"
if [ -n "${STRATA_CUDA_LIBS:-}" ] && [ -x "$bare" ]; then
    show_lines=6 step nvrtc-builtins-bare 60 env -u LD_LIBRARY_PATH LD_LIBRARY_PATH="$(dirname "$STRATA")/lib" \
        STRATA_KERNEL_CACHE=off "$bare" info
else
    say "nvrtc-builtins-bare: SKIP (needs STRATA_CUDA_LIBS from the python's wheels and dist/cuda/bin/strata)"
fi

# MARK: The focused check (default): channels-last batch norm, profiles, the nhwc arms

bench_arm() {   # bench_arm FOLDER MODEL BATCH [ENV...]: one TF32 bench train, JSON last line
    local folder=$1 model=$2 batch=$3; shift 3
    local head=""; [ "$model" = vgg16 ] && head="--head single"
    step "$folder/$model-b$batch-tf32" 25 env "$@" \
        "$STRATA" bench train --model "$model" $head --batch-size "$batch" --steps 20 --device cuda --json
}

if [ "$full" != 1 ]; then
    show_lines=6 step selftest-nhwc 90 env STRATA_CUDA_LAYOUT=nhwc "$STRATA" selftest --device cuda --quiet
    # The multi-tensor optimizer steps (one launch per step) against the per-tensor ones, bit for
    # bit; fails when the check did not run (a backend without them returns no result).
    show_lines=20 step selftest-multi-tensor 40 bash -c 'set -o pipefail; "$0" selftest --device cuda \
        --filter "optimizer multi" | tee /dev/stderr | grep "sgdUpdateAll" > /dev/null' "$STRATA"
    # CUDA graph capture (prepared, STRATA_CUDA_GRAPHS=on; the trainer does not use it yet): a
    # captured add + scale replayed twice with new inputs.
    show_lines=6 step selftest-cuda-graph 40 bash -c 'set -o pipefail; STRATA_CUDA_GRAPHS=on "$0" selftest --device cuda \
        --filter "cuda graph" | tee /dev/stderr | grep "CUDA graph replay 2" > /dev/null' "$STRATA"
    # 1c. Uploads that wait for the previous one (as before the staging ring), against the
    # default arms at batch 32 in nchw below.
    mkdir -p "$OUT/bench-train-upload-sync"
    for model in resnet20 cnn; do
        bench_arm bench-train $model 32 STRATA_CUDA_LAYOUT=nchw
        bench_arm bench-train-upload-sync $model 32 STRATA_CUDA_LAYOUT=nchw STRATA_CUDA_UPLOAD=sync
    done
    mkdir -p "$OUT/bench-profile" "$OUT/bench-train" "$OUT/bench-train-nhwc" "$OUT/bench-train-nhwc-cudnn"
    for model in vgg16 resnet20; do
        head=""; [ $model = vgg16 ] && head="--head single"
        for layout in nchw nhwc; do
            show_lines=40 step "bench-profile/$model-b128-$layout" 30 env STRATA_CUDA_LAYOUT=$layout \
                "$STRATA" bench train --model $model $head --batch-size 128 --steps 20 --device cuda --profile
        done
    done
    for model in resnet20 resnet56 vgg16 cnn; do bench_arm bench-train-nhwc $model 128 STRATA_CUDA_LAYOUT=nhwc; done
    for model in resnet20 resnet56 vgg16 cnn; do bench_arm bench-train $model 128 STRATA_CUDA_LAYOUT=nchw; done
    for model in resnet20 vgg16; do
        bench_arm bench-train-nhwc-cudnn $model 128 STRATA_CUDA_LAYOUT=nhwc STRATA_CUDA_BN=cudnn
    done
    step selftest 90 env STRATA_CUDA_LAYOUT=nchw "$STRATA" selftest --device cuda --quiet
    for model in resnet20 resnet56 vgg16 cnn; do bench_arm bench-train-nhwc $model 32 STRATA_CUDA_LAYOUT=nhwc; done
    # Batch 32 in NCHW next to the nhwc arms above: which layout small batches should get.
    for model in resnet56 vgg16; do bench_arm bench-train $model 32 STRATA_CUDA_LAYOUT=nchw; done   # resnet20, cnn: 1c
    # Layer fusion (batch norm + ReLU, + the residual add) against none, nhwc: what it is worth on a GPU.
    mkdir -p "$OUT/bench-train-nhwc-nofuse"
    for model in resnet20 vgg16; do
        bench_arm bench-train-nhwc-nofuse $model 128 STRATA_CUDA_LAYOUT=nhwc STRATA_FUSE=off
    done
    if [ -n "$data" ]; then
        step train-cuda-nhwc 60 env STRATA_CUDA_LAYOUT=nhwc "$STRATA" train --model resnet20 --data "$data" --epochs 3 \
            --seed 1 --device cuda --output "$work/train-cuda-nhwc"
        mkdir -p "$OUT/train-cuda-nhwc"
        cp "$work/train-cuda-nhwc"/{metrics.jsonl,summary.json,config.json} "$OUT/train-cuda-nhwc/" 2>/dev/null
        if [ -e "$work/train-cuda-nhwc/last.safetensors" ]; then
            show_lines=4 step check-load-nhwc 60 "${python:-python3}" bench/torch/check_load.py \
                "$work/train-cuda-nhwc/last.safetensors" --data "$data" --json "$OUT/check-load-nhwc.json"
        fi
    fi
    # bench/compare.sh's CUDA arms (Strata and PyTorch NCHW / channels-last, one round, TF32 only:
    # the AMP arms are GPU_CHECK_PRECISION=1's, so this step keeps its time).
    show_lines=12 step bench-compare-cuda 150 env COMPARE_DEVICES=cuda PRECISION=fp32 STRATA_CUDA="$STRATA" PYTHON="${python:-python3}" \
        bash bench/compare.sh 1
    report gpu
    say "gpu-check: done in $(( $(date +%s) - start ))s, $([ $failed = 0 ] && echo 'every step passed' || echo 'some steps failed (see gpu-check.json)')"
    exit $failed
fi

# MARK: The full check (GPU_CHECK_FULL=1)

# MARK: 2. Selftest

step selftest 90 env STRATA_CUDA_LAYOUT=nchw "$STRATA" selftest --device cuda --quiet
# The channels-last CUDA layout (CUDALayout.swift) against the same CPU oracle.
step selftest-nhwc 90 env STRATA_CUDA_LAYOUT=nhwc "$STRATA" selftest --device cuda --quiet
step selftest-nhwc-pbn 90 env STRATA_CUDA_LAYOUT=nhwc STRATA_CUDA_BN=persistent "$STRATA" selftest --device cuda --quiet

# MARK: 3. Strata training steps, TF32 and strict

mkdir -p "$OUT/bench-train"
for mode in tf32 strict; do
    flag=""; [ $mode = strict ] && flag="--strict-fp32"
    for model in resnet20 resnet56 vgg16 cnn; do
        head=""; [ $model = vgg16 ] && head="--head single"
        for batch in 32 128; do
            step "bench-train/$model-b$batch-$mode" 25 env STRATA_CUDA_LAYOUT=nchw \
                "$STRATA" bench train --model $model $head --batch-size $batch --steps 20 --device cuda $flag --json
        done
    done
done
# The channels-last layout, TF32 only (its strict-FP32 arm would add little: NHWC is for tensor cores).
mkdir -p "$OUT/bench-train-nhwc"
for model in resnet20 resnet56 vgg16 cnn; do
    head=""; [ $model = vgg16 ] && head="--head single"
    for batch in 32 128; do
        step "bench-train-nhwc/$model-b$batch-tf32" 25 env STRATA_CUDA_LAYOUT=nhwc \
            "$STRATA" bench train --model $model $head --batch-size $batch --steps 20 --device cuda --json
    done
done
mkdir -p "$OUT/bench-train-nhwc-pbn"
for model in resnet20 resnet56 vgg16 cnn; do
    head=""; [ $model = vgg16 ] && head="--head single"
    step "bench-train-nhwc-pbn/$model-b128-tf32" 25 env STRATA_CUDA_LAYOUT=nhwc STRATA_CUDA_BN=persistent \
        "$STRATA" bench train --model $model $head --batch-size 128 --steps 20 --device cuda --json
done

# MARK: 4. PyTorch on the same card

show_lines=20 step torch-bench 100 "${python:-python3}" bench/torch/bench.py --models resnet20,resnet56,vgg16 --batches 32,128 \
    --layouts nchw,channels_last --steps 20 --vgg-head single --budget 80 --json "$OUT/torch-bench.json"
# (cnn separately, so a slow start of the big models cannot squeeze it out)
show_lines=6 step torch-bench-cnn 30 "${python:-python3}" bench/torch/bench.py --models cnn --batches 32,128 \
    --layouts nchw,channels_last --steps 20 --json "$OUT/torch-bench-cnn.json"

# MARK: 5-7. Real training, the checkpoint in PyTorch, growth

if [ -n "$data" ]; then
    for device in cuda cpu; do
        box=60; [ $device = cpu ] && box=100
        step "train-$device" $box "$STRATA" train --model resnet20 --data "$data" --epochs 3 --seed 1 \
            --device $device --output "$work/train-$device"
        mkdir -p "$OUT/train-$device"
        cp "$work/train-$device"/{metrics.jsonl,summary.json,config.json} "$OUT/train-$device/" 2>/dev/null
    done
    # The same run in the channels-last layout: its checkpoint must still be PyTorch's (logical) order.
    step train-cuda-nhwc 60 env STRATA_CUDA_LAYOUT=nhwc "$STRATA" train --model resnet20 --data "$data" --epochs 3 --seed 1 \
        --device cuda --output "$work/train-cuda-nhwc"
    mkdir -p "$OUT/train-cuda-nhwc"
    cp "$work/train-cuda-nhwc"/{metrics.jsonl,summary.json,config.json} "$OUT/train-cuda-nhwc/" 2>/dev/null
    if [ -e "$work/train-cuda/last.safetensors" ]; then
        show_lines=4 step check-load 60 "${python:-python3}" bench/torch/check_load.py "$work/train-cuda/last.safetensors" \
            --data "$data" --json "$OUT/check-load.json"
    fi
    if [ -e "$work/train-cuda-nhwc/last.safetensors" ]; then
        show_lines=4 step check-load-nhwc 60 "${python:-python3}" bench/torch/check_load.py "$work/train-cuda-nhwc/last.safetensors" \
            --data "$data" --json "$OUT/check-load-nhwc.json"
    fi
    step grow-cuda 75 "$STRATA" grow --model resnet20 --data "$data" --train-limit 1024 --window 2 --gamma 0.99 \
        --lookahead-epochs 1 --max-epochs 16 --device cuda --output "$work/grow-cuda"
    mkdir -p "$OUT/grow-cuda"
    cp "$work/grow-cuda"/{metrics.jsonl,summary.json,config.json,growth.svg} "$OUT/grow-cuda/" 2>/dev/null
fi

# MARK: 8. Kernel throughput, CPU and GPU

step bench-ops 60 "$STRATA" bench ops --device cpu,cuda --repeats 3 --json

report gpu
say "gpu-check: done in $(( $(date +%s) - start ))s, $([ $failed = 0 ] && echo 'every step passed' || echo 'some steps failed (see gpu-check.json)')"
exit $failed
