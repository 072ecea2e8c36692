#!/usr/bin/env bash
# Runs strata on the bad-input cases of issue 10 (items 3, 5 and 6) and checks that each ends
# with ONE line on stderr naming the flag, file or field, the documented exit code (64 usage,
# 1 runtime) and never a signal.
#   scripts/bad-input-cases.sh [BIN] [DATA]      BIN: .build/release/strata; DATA: a CIFAR-10 dir
#                                                (default: random CIFAR-shaped images made here)
#   REPORT=1 scripts/bad-input-cases.sh BIN      prints "case | exit | message" without checking
# Needs python3 (to write the broken config and checkpoint files).
set -u
BIN=$(realpath "${1:-.build/release/strata}")
DATA=${2:-}
REPORT=${REPORT:-0}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"

# Fixtures: 600 train and 200 test CIFAR images, a copy with an empty test set, a finished run.
mkdir tiny emptytest emptyrun
if [ -n "$DATA" ]; then
    head -c $((3073 * 600)) "$DATA/data_batch_1.bin" > tiny/data_batch_1.bin
    head -c $((3073 * 200)) "$DATA/test_batch.bin" > tiny/test_batch.bin
else
    python3 -c '
import random, sys
r = random.Random(7)
for name, n in (("tiny/data_batch_1.bin", 600), ("tiny/test_batch.bin", 200)):
    open(name, "wb").write(b"".join(bytes([i % 10]) + r.randbytes(3072) for i in range(n)))'
fi
cp tiny/data_batch_1.bin emptytest/ && : > emptytest/test_batch.bin
echo text > afile
SMALL="--model cnn --filters 8 --hidden 16 --data tiny --train-limit 500 --batch-size 50"
"$BIN" train $SMALL --epochs 2 --output run1 --device cpu > run1.log 2>&1 || { echo "fixture run failed"; cat run1.log; exit 1; }
python3 - <<'PY'
import json, struct
c = json.load(open('run1/config.json'))
def conf(name, f):
    d = json.loads(json.dumps(c)); f(d); json.dump(d, open(name, 'w'), indent=1)
conf('bs0.json', lambda d: d.update(batchSize=0))
conf('bsm1.json', lambda d: d.update(batchSize=-1))
conf('hidden4e9.json', lambda d: d['model']['cnn'].update(hidden=[4000000000]))
conf('lrstr.json', lambda d: d['optimizer'].update(learningRate="fast"))
def edit(dst, key, f):
    b = open('run1/best.safetensors', 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); md = h['__metadata__']
    d = json.loads(md[key]); f(d); md[key] = json.dumps(d)
    hb = json.dumps(h, separators=(',', ':')).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    open(dst, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
edit('std0.safetensors', 'strata', lambda d: d.update(normalizationStd=[0, 0, 0]))
edit('ckbs0.safetensors', 'config', lambda d: d.update(batchSize=0, evalBatchSize=0))
edit('ckhidden.safetensors', 'config', lambda d: d['model']['cnn'].update(hidden=[4000000000]))
PY

fail=0
# case NAME EXPECTED_RC REGEX -- COMMAND...   (the command runs under a 3 GB address-space limit)
case_() {
    local name=$1 want=$2 regex=$3; shift 4
    local out err rc
    out=$( (ulimit -v 3000000; timeout 60 "$@") 2>"$W/err" >"$W/out"; echo $?)
    rc=$out
    err=$(grep -v '^$' "$W/err" | head -c 2000)
    local lines
    lines=$(grep -c . "$W/err")
    local first
    first=$(grep -v '^$' "$W/err" | head -1 | cut -c1-220)
    [ -z "$first" ] && first="(stdout) $(grep -v '^$' "$W/out" | tail -1 | cut -c1-200)"
    if [ "$REPORT" = 1 ]; then
        printf '%s | %s | %s%s\n' "$name" "$rc" "$first" "$([ "$lines" -gt 1 ] && echo " [+$((lines - 1)) lines]")"
        return
    fi
    if [ "$rc" != "$want" ] || ! grep -Eq -- "$regex" "$W/err" || [ "$lines" -ne 1 ]; then
        echo "FAIL $name: exit $rc (want $want), $lines stderr lines, want /$regex/:"
        sed 's/^/    /' "$W/err" | head -5
        fail=1
    else
        echo "ok   $name: exit $rc: $first"
    fi
}
S="$BIN"
case_ "3 config batchSize 0" 1 'bs0.json: batchSize must be at least 2' -- "$S" train --config bs0.json --output o1 --device cpu
case_ "3 config batchSize -1" 1 'bsm1.json: batchSize must be at least 2' -- "$S" train --config bsm1.json --output o2 --device cpu
case_ "3 config hidden 4e9" 1 'hidden4e9.json: model.cnn.hidden' -- "$S" train --config hidden4e9.json --output o3 --device cpu
case_ "3 checkpoint config batchSize 0" 1 'ckbs0.safetensors: (metadata )?config: batchSize' -- "$S" eval ckbs0.safetensors --device cpu
case_ "3 checkpoint config hidden 4e9" 1 'ckhidden.safetensors: (metadata )?config: model.cnn.hidden' -- "$S" eval ckhidden.safetensors --device cpu
case_ "3 --batch-size 100000 on 450 images" 64 '--batch-size 100000 is larger than the 450 training images' -- "$S" train $SMALL --batch-size 100000 --epochs 1 --output o4 --device cpu
case_ "3 eval /dev/zero" 1 '/dev/zero: not a regular file' -- "$S" eval /dev/zero --device cpu
case_ "5 --lr nan" 64 '^strata: error: --lr must be a finite number greater than 0, got nan' -- "$S" train $SMALL --lr nan --epochs 1 --output o5 --device cpu
case_ "5 --output under a regular file" 1 'afile is a regular file' -- "$S" train $SMALL --epochs 1 --output afile/run --device cpu
case_ "5 grow --resume on a train run" 1 'run1 is a train run: continue it with strata train --resume' -- "$S" grow --resume run1 --device cpu
case_ "5 --epochs -1" 64 '--epochs must be at least 1, got -1' -- "$S" train $SMALL --epochs -1 --output o6 --device cpu
case_ "5 eval of an empty directory" 1 'emptyrun has no checkpoint' -- "$S" eval emptyrun --device cpu
case_ "5 --data is a regular file" 1 'afile: .*regular file, not a dataset directory' -- "$S" train --data afile --epochs 1 --output o7 --device cpu
case_ "5 eval on an empty test set" 1 'emptytest/test_batch.bin at byte 0: holds no images' -- "$S" eval run1 --data emptytest --device cpu
case_ "5 config value of the wrong type" 1 'lrstr.json: optimizer.learningRate' -- "$S" train --config lrstr.json --output o8 --device cpu
case_ "6 negative --lr" 64 '--lr must be a finite number greater than 0, got -0.1' -- "$S" train $SMALL --lr -0.1 --epochs 1 --output o9 --device cpu
case_ "6 negative --weight-decay" 64 '--weight-decay must be at least 0' -- "$S" train $SMALL --weight-decay -1 --epochs 1 --output o10 --device cpu
case_ "6 negative --warmup" 64 '--warmup must be at least 0' -- "$S" train $SMALL --warmup -2 --epochs 1 --output o11 --device cpu
case_ "6 --kernel 99 on 32x32" 64 '--kernel 99 is larger than the 32x32 images' -- "$S" train $SMALL --kernel 99 --epochs 1 --output o12 --device cpu
case_ "6 empty test set in train" 1 'emptytest/test_batch.bin at byte 0: holds no images' -- "$S" train $SMALL --data emptytest --epochs 1 --output o13 --device cpu
case_ "6 --target-accuracy 7" 64 '--target-accuracy must be in \(0, 1\]' -- "$S" grow $SMALL --target-accuracy 7 --max-epochs 2 --output o14 --device cpu
case_ "6 checkpoint normalisation std 0" 1 'std0.safetensors: .*normalizationStd' -- "$S" eval std0.safetensors --device cpu
case_ "6 --resume finished run, fewer epochs" 64 '--epochs 1 is fewer than the 2 epochs run1 has' -- "$S" train --resume run1 --epochs 1 --device cpu
case_ "6 --momentum 1.5" 64 '--momentum must be in \[0, 1\)' -- "$S" train $SMALL --optimizer sgd --momentum 1.5 --epochs 1 --output o15 --device cpu
case_ "6 --rmsprop-alpha 2" 64 '--rmsprop-alpha must be in \[0, 1\)' -- "$S" train $SMALL --optimizer rmsprop --rmsprop-alpha 2 --epochs 1 --output o16 --device cpu
case_ "6 --proxy lr=fast" 64 '--proxy: lr must be scaled or same, not .fast.' -- "$S" hpo $SMALL --proxy synflow:p=85,lr=fast --trials 1 --output o17 --device cpu
case_ "6 --proxy tied=sideways" 64 '--proxy: tied must be keep or prune, not .sideways.' -- "$S" hpo $SMALL --proxy synflow:tied=sideways --trials 1 --output o18 --device cpu
case_ "6 prune --tied sideways" 64 '--tied must be keep or prune, not .sideways.' -- "$S" prune --model resnet20 --tied sideways
exit $fail
