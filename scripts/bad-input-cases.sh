#!/usr/bin/env bash
# Runs strata on the bad-input cases of issues 10 and 24 and checks that each ends with ONE line
# on stderr naming the flag, file or field, the documented exit code (64 usage, 1 runtime) and
# never a signal or a hang; and that the files the refused commands were pointed at are intact.
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

# --- issue 24: outputs, file arguments, exit codes, flags with --resume/--config -------------
# ok NAME REGEX -- COMMAND...: must succeed, with REGEX in its output.
ok_() {
    local name=$1 regex=$2; shift 3
    local rc
    rc=$( (ulimit -v 3000000; timeout 60 "$@") >"$W/out" 2>&1; echo $?)
    if [ "$REPORT" = 1 ]; then printf '%s | %s | %s\n' "$name" "$rc" "$(tail -1 "$W/out" | cut -c1-200)"; return; fi
    if [ "$rc" != 0 ] || ! grep -Eq -- "$regex" "$W/out"; then
        echo "FAIL $name: exit $rc (want 0), want /$regex/:"; sed 's/^/    /' "$W/out" | tail -5; fail=1
    else
        echo "ok   $name: $(grep -E -- "$regex" "$W/out" | head -1 | cut -c1-200)"
    fi
}
mkfifo fifo
ln -s nowhere dangling
ln -s nowhere dangling.npy
mkdir userdir userreport adir.npy somedir
echo '{"mine": 1}' > userdir/summary.json
echo '<p>mine</p>' > userdir/report.html
echo '<p>mine</p>' > userreport/report.html
echo '{"mine": 1}' > somedir/report.json
echo keep > existing.npy
echo keep > existing.json
echo '{"optimizer": {"choices": ["sgd", "lion"]}}' > badopt.json
echo '{"batch_size": {"choices": [1, 64]}}' > bs1.json
python3 -c '
import json; c = json.load(open("run1/config.json")); c["epochz"] = 3; json.dump(c, open("unknownkey.json", "w"))'
sums() { md5sum run1/* userdir/* userreport/* somedir/* existing.npy existing.json afile 2>/dev/null; }
sums > before.md5

# One output policy: what is there is refused, naming the path and what is in it.
case_ "24 search --output a finished train run" 1 '--output run1: is not empty and is not a strata search \(it holds .*config.json' -- "$S" search --space seed000-small --data tiny --output run1 --device cpu
case_ "24 search --output a user's folder" 1 '--output userdir: is not empty and is not a strata search .*report.html.*--overwrite' -- "$S" search --space seed000-small --data tiny --output userdir --device cpu
case_ "24 search --output a regular file" 1 '--output afile: exists and is a regular file' -- "$S" search --space seed000-small --data tiny --output afile --device cpu
case_ "24 search --output a dangling link" 1 '--output dangling: is a dangling symbolic link' -- "$S" search --space seed000-small --data tiny --output dangling --device cpu
case_ "24 search --compare into a user's folder" 1 '--output userreport: is not empty and is not a strata search comparison' -- "$S" search --compare run1 --output userreport
case_ "24 hpo --output a finished train run" 1 '--output run1: is not empty and is not a strata hpo' -- "$S" hpo $SMALL --trials 1 --epochs 1 --output run1 --device cpu
case_ "24 hpo --output a user's folder" 1 '--output userdir: is not empty and is not a strata hpo' -- "$S" hpo $SMALL --trials 1 --epochs 1 --output userdir --device cpu
case_ "24 predict --output an existing file" 1 '--output existing.npy: already exists; pass --overwrite' -- "$S" predict run1 --data tiny --output existing.npy --device cpu
case_ "24 predict --output a dangling link" 1 '--output dangling.npy: is a dangling symbolic link \(to nowhere\)' -- "$S" predict run1 --data tiny --output dangling.npy --device cpu
case_ "24 predict --output a folder" 1 '--output adir.npy: is a folder' -- "$S" predict run1 --data tiny --output adir.npy --device cpu
case_ "24 predict --output missing parent" 1 '--output missing/dir/p.npy: cannot be written: the folder missing/dir does not exist' -- "$S" predict run1 --data tiny --output missing/dir/p.npy --device cpu
case_ "24 prune --output missing parent" 1 '--output missing/dir/x.json: cannot be written: the folder missing/dir does not exist' -- "$S" prune --model cnn --filters 8 --hidden 16 --output missing/dir/x.json
case_ "24 prune --output an existing file" 1 '--output existing.json: already exists' -- "$S" prune --model cnn --filters 8 --hidden 16 --output existing.json
case_ "24 prune --output under a regular file" 1 '--output afile/x.json: cannot be written: afile is not a folder' -- "$S" prune --model cnn --filters 8 --hidden 16 --output afile/x.json
case_ "24 train --output a dangling link" 1 'dangling is a dangling symbolic link \(to nowhere\)' -- "$S" train $SMALL --epochs 1 --output dangling --device cpu
case_ "24 reuse-report --output holding a report" 1 '--output somedir: already holds report.json; pass --overwrite' -- "$S" reuse-report --target run1 --source run1 --data tiny --output somedir --device cpu
case_ "24 grow --output a dangling link" 1 'dangling is a dangling symbolic link' -- "$S" grow $SMALL --max-epochs 2 --output dangling --device cpu
case_ "24 grow --output under a regular file" 1 'afile is a regular file' -- "$S" grow $SMALL --max-epochs 2 --output afile/g --device cpu
case_ "24 reuse-report --output a regular file" 1 '--output afile: exists and is a regular file' -- "$S" reuse-report --target run1 --source run1 --data tiny --output afile --device cpu
case_ "24 hpo --output a dangling link" 1 '--output dangling: is a dangling symbolic link' -- "$S" hpo $SMALL --trials 1 --epochs 1 --output dangling --device cpu
case_ "24 search --reuse a,b --output a user's folder" 1 '--output userdir: is not empty and is not a strata search comparison' -- "$S" search --space seed000-small --reuse none,paper --data tiny --output userdir --device cpu
# --- issue 23: commands that agree ------------------------------------------------------------
case_ "23 --engine ray without a Python" 1 '--engine ray: cannot run --python /nonexistent/python3' -- "$S" search --space seed000-small --data tiny --engine ray --python /nonexistent/python3 --output o23a --device cpu
case_ "23 a renamed flag gets its new name" 64 "Unknown option '--epochs'. Did you mean '--max-epochs'" -- "$S" grow $SMALL --epochs 2 --output o23b --device cpu
case_ "23 an Optuna flag name" 64 "Unknown option '--n-trials'. Did you mean '--trials'" -- "$S" hpo $SMALL --n-trials 2 --output o23c --device cpu
case_ "23 predict --checkpoint on a file" 64 '--checkpoint chooses a checkpoint of a run directory' -- "$S" predict run1/best.safetensors --checkpoint last --output o23d.npy --device cpu
case_ "23 hpo --dry-run with --resume" 64 '--dry-run plans a new search' -- "$S" hpo --resume run1 --dry-run --device cpu
ok_ "23 --version" 'strata [0-9]+\.[0-9]+' -- "$S" --version
ok_ "23 hpo --dry-run writes nothing" 'dry run: nothing trained, nothing written' -- "$S" hpo $SMALL --trials 3 --epochs 2 --output o23e --dry-run --device cpu
if [ "$(id -u)" != 0 ]; then
    mkdir ro && chmod 555 ro
    case_ "24 train --output in a read-only folder" 1 'ro is not writable' -- "$S" train $SMALL --epochs 1 --output ro/run --device cpu
    case_ "24 predict --output in a read-only folder" 1 'ro is not writable' -- "$S" predict run1 --data tiny --output ro/p.npy --device cpu
fi

# One reader for file arguments: regular files only, at once.
case_ "24 search --space /dev/zero" 1 '--space /dev/zero: .*not a regular file' -- "$S" search --space /dev/zero --dry-run
case_ "24 search --space a FIFO" 1 '--space fifo: .*not a regular file' -- "$S" search --space fifo --dry-run
case_ "24 search --space a folder" 1 '--space tiny: .*is a directory' -- "$S" search --space tiny --dry-run
case_ "24 search --space missing" 1 '--space nofile.json: .*does not exist' -- "$S" search --space nofile.json --dry-run
case_ "24 hpo --space /dev/zero" 1 '--space /dev/zero: not a regular file' -- "$S" hpo $SMALL --space /dev/zero --trials 1 --output o20 --device cpu
case_ "24 hpo --space a FIFO" 1 '--space fifo: not a regular file' -- "$S" hpo $SMALL --space fifo --trials 1 --output o21 --device cpu
case_ "24 train --config a FIFO" 1 'fifo: not a regular file' -- "$S" train --config fifo --output o22 --device cpu
case_ "24 train --model-spec /dev/zero" 1 '--model-spec /dev/zero: not a regular file' -- "$S" train --model-spec /dev/zero --data tiny --epochs 1 --output o23 --device cpu
case_ "24 train --model-spec a FIFO" 1 '--model-spec fifo: not a regular file' -- "$S" train --model-spec fifo --data tiny --epochs 1 --output o24 --device cpu
case_ "24 eval a FIFO" 1 'fifo: .*not a regular file' -- "$S" eval fifo --device cpu
case_ "24 predict a FIFO checkpoint" 1 'fifo: .*not a regular file' -- "$S" predict fifo --output o25.npy --device cpu
case_ "24 search-trial /dev/zero" 1 '/dev/zero.*not a regular file' -- "$S" search-trial /dev/zero
case_ "24 search-trial a FIFO" 1 'fifo.*not a regular file' -- "$S" search-trial fifo
case_ "24 reuse-report --source a FIFO" 1 'fifo.*not a regular file' -- "$S" reuse-report --target run1 --source fifo --data tiny --output o26 --device cpu

# Exit codes: flag values are usage errors (64) even when checked against the model or data.
case_ "24 reuse-report --kinds W,XX" 64 "--kinds: unknown kind 'XX'" -- "$S" reuse-report --target run1 --source run1 --kinds W,XX --output o27
case_ "24 train --reuse-layers 5 on a small model" 64 "--reuse-layers is 5, more than the model's 1 block" -- "$S" train $SMALL --reuse-from run1 --reuse-layers 5 --epochs 1 --output o28 --device cpu
case_ "24 bench train --batch-size 0" 64 '--batch-size must be at least 2' -- "$S" bench train --model cnn --batch-size 0 --device cpu
case_ "24 bench train --lr 0" 64 '--lr must be a finite number greater than 0' -- "$S" bench train --model cnn --lr 0 --device cpu
case_ "24 bench train --steps 0" 64 '--steps must be in' -- "$S" bench train --model cnn --steps 0 --device cpu
case_ "24 bench train --optimizer lion" 64 '--optimizer must be sgd, rmsprop, adam or adamw' -- "$S" bench train --model cnn --optimizer lion --device cpu
case_ "24 bench train diverging --lr" 64 '--lr 0.5: non-finite loss on the synthetic data' -- "$S" bench train --model cnn --filters 48,48,48 --hidden 500,250 --batch-size 128 --lr 0.5 --steps 3 --device cpu
case_ "24 train --threads 1000" 64 '--threads 1000 is more than this machine can use: at most [0-9]+ \(4x its [0-9]+ cores\)' -- "$S" train $SMALL --threads 1000 --epochs 1 --output o29 --device cpu
case_ "24 bench train --threads 1000" 64 '--threads 1000 is more than this machine can use' -- "$S" bench train --model cnn --threads 1000 --device cpu
case_ "24 search --workers 1000" 64 '--workers 1000 is more than this machine can use' -- "$S" search --space seed000-small --workers 1000 --dry-run
case_ "24 search --threads 0" 64 '--threads must be at least 1, got 0' -- "$S" search --space seed000-small --threads 0 --dry-run
case_ "24 hpo --workers 1000" 64 '--workers 1000 is more than this machine can use' -- "$S" hpo $SMALL --workers 1000 --output o30 --device cpu
case_ "24 eval --threads 1000" 64 '--threads 1000 is more than this machine can use' -- "$S" eval run1 --threads 1000 --device cpu
case_ "24 predict --batch-size 0" 64 '--batch-size must be at least 1' -- "$S" predict run1 --output o31.npy --batch-size 0 --device cpu
case_ "24 models with an unknown flag" 64 "Unknown option '--bogus'" -- "$S" models --bogus
case_ "24 info with an argument" 64 "Unexpected argument 'extra'" -- "$S" info extra
case_ "24 eval --batch-size 0" 64 '--batch-size must be at least 1, got 0' -- "$S" eval run1 --batch-size 0 --device cpu
case_ "24 eval --checkpoint of a file" 64 '--checkpoint chooses a checkpoint of a run directory' -- "$S" eval run1/best.safetensors --checkpoint last --device cpu
case_ "24 grow --threads 1000" 64 '--threads 1000 is more than this machine can use' -- "$S" grow $SMALL --threads 1000 --output o38 --device cpu
case_ "24 eval of a missing file" 1 'nofile.safetensors' -- "$S" eval nofile.safetensors --device cpu

# Space and config files: values the trainer refuses are refused up front, naming file and key.
case_ "24 hpo --space unknown optimizer" 1 "badopt.json: optimizer choice 'lion' is not one of sgd" -- "$S" hpo $SMALL --space badopt.json --trials 1 --output o32 --device cpu
case_ "24 hpo --space batch_size 1" 1 'bs1.json: batch_size 1 is not a batch size' -- "$S" hpo $SMALL --space bs1.json --trials 1 --output o33 --device cpu
case_ "24 train --config with an unknown key" 1 "unknownkey.json: unknown key 'epochz'" -- "$S" train --config unknownkey.json --output o34 --device cpu

# Flags given with --resume or --config are applied or refused, never ignored.
case_ "24 train --resume with --lr" 64 '--lr cannot be used with --resume' -- "$S" train --resume run1 --lr 0.5 --device cpu
case_ "24 train --config with --lr" 64 '--lr cannot be used with --config' -- "$S" train --config run1/config.json --lr 0.5 --output o35 --device cpu
case_ "24 train --resume with --config" 64 '--resume and --config exclude each other' -- "$S" train --resume run1 --config run1/config.json --device cpu
case_ "24 grow --resume with --max-epochs" 64 '--max-epochs cannot be used with --resume' -- "$S" grow --resume run1 --max-epochs 3 --device cpu
case_ "24 search --resume with --epochs" 64 '--epochs cannot be used with --resume' -- "$S" search --resume nosearch --epochs 3
case_ "24 search --resume with --overwrite" 64 '--resume and --overwrite exclude each other' -- "$S" search --resume nosearch --overwrite
case_ "21 search --pruner unknown" 64 "--pruner must be asha, hyperband or none, not 'median'" -- "$S" search --space seed000-small --pruner median --dry-run
case_ "21 search --strategy unknown" 64 "--strategy must be grid, random, tpe or cmaes, not 'bayes'" -- "$S" search --space seed000-small --strategy bayes --dry-run
case_ "21 search --resume with --pruner" 64 '--pruner cannot be used with --resume' -- "$S" search --resume nosearch --pruner asha
case_ "24 hpo --resume with --trials" 64 '--trials cannot be used with --resume' -- "$S" hpo --resume nohpo --trials 3 --device cpu
# One study-directory policy (StudyDirectory): a folder resumed must hold that kind of study; nothing is written to it.
case_ "21 search --resume a user's folder" 1 'userdir has no search.json: it is not a strata search directory' -- "$S" search --resume userdir
case_ "21 hpo --resume a user's folder" 1 'userdir has no hpo.json: it is not a strata hpo directory' -- "$S" hpo --resume userdir --device cpu
ok_ "24 train --config with --seed applies it" '--seed 11 replaces the seed 0 of run1/config.json' -- "$S" train --config run1/config.json --seed 11 --output o36 --device cpu
ok_ "24 bench train gives a figure where SGD diverged" 'images/s' -- "$S" bench train --model cnn --filters 48,48,48 --hidden 500,250 --batch-size 128 --steps 2 --device cpu
ok_ "24 predict --overwrite says what it replaces" '--overwrite: replacing o37.npy' -- sh -c "echo old > o37.npy && '$S' predict run1 --data tiny --output o37.npy --overwrite --device cpu"

# Nothing lost: every file the refused commands were pointed at is as it was.
if [ "$REPORT" != 1 ]; then
    if sums | cmp -s - before.md5; then echo "ok   24 nothing lost: run1, userdir, userreport, somedir, existing files intact"
    else echo "FAIL 24 nothing lost:"; sums | diff before.md5 - | head; fail=1; fi
fi
exit $fail
