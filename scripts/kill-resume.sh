#!/bin/bash
# Kill/resume test: starts `strata train` and `strata grow` runs, SIGKILLs each at a random
# moment (half of the runs under strace with every fsync delayed, which holds most of the run
# inside checkpoint and manifest writes, so kills land mid-write), resumes it with --resume until
# it completes, and compares the result with the same run left uninterrupted
# (scripts/kill-resume-check.py: right after the kill, the manifest and the checkpoints it names;
# after the resume, tensors of the last and best checkpoints, manifest, links, metrics). Prints one line per kill and a tally; exits 1 if any run is corrupt, lost or different.
#
#   scripts/kill-resume.sh [KILLS] [WORKDIR]       (make kill-resume; KILLS defaults to 50)
#   STRATA=path/to/strata DATA=cifar10-dir scripts/kill-resume.sh 10
set -u
KILLS=${1:-50}
WORK=${2:-$(mktemp -d /tmp/strata-kill-resume.XXXXXX)}
HERE=$(cd "$(dirname "$0")" && pwd)
STRATA=${STRATA:-$HERE/../.build/release/strata}
DATA=${DATA:-$HERE/../../shared/datasets/cifar10-subset}
DELAY_US=${DELAY_US:-40000}   # per fsync, under strace
SEED=${SEED:-$RANDOM}
RANDOM=$SEED
[ -x "$STRATA" ] || { echo "kill-resume: $STRATA is not built (make build)"; exit 2; }
[ -d "$DATA" ] || { echo "kill-resume: no dataset at $DATA (set DATA=a CIFAR-10 binary directory)"; exit 2; }
command -v strace >/dev/null || { echo "kill-resume: strace is missing (apt-get install strace)"; exit 2; }

COMMON=(--model cnn --filters 8,16 --hidden 32 --data "$DATA" --train-limit 600 --batch-size 50 --device cpu)
TRAIN=(train "${COMMON[@]}" --epochs 4 --optimizer sgd --lr 0.05)
GROW=(grow "${COMMON[@]}" --max-epochs 6 --window 2 --lookahead-epochs 1)
mkdir -p "$WORK"
echo "kill-resume: $KILLS kills, work in $WORK, seed $SEED, strata $STRATA"

now_ms() { date +%s%3N; }
reference() {   # kind -> writes $WORK/ref-kind and its duration (plain and under strace)
    local kind=$1 args
    if [ "$kind" = train ]; then args=("${TRAIN[@]}"); else args=("${GROW[@]}"); fi
    local t0=$(now_ms)
    "$STRATA" "${args[@]}" --output "$WORK/ref-$kind" > "$WORK/ref-$kind.log" 2>&1 || { echo "reference $kind failed"; cat "$WORK/ref-$kind.log"; exit 2; }
    local t1=$(now_ms)
    strace -f -qq -o /dev/null -e trace=fsync -e inject=fsync:delay_enter=$DELAY_US \
        "$STRATA" "${args[@]}" --output "$WORK/ref-$kind-strace" > /dev/null 2>&1
    local t2=$(now_ms)
    echo "$((t1 - t0)) $((t2 - t1))"
}
read TRAIN_MS TRAIN_STRACE_MS < <(reference train)
read GROW_MS GROW_STRACE_MS < <(reference grow)
echo "reference runs: train ${TRAIN_MS} ms (${TRAIN_STRACE_MS} ms with delayed fsync), grow ${GROW_MS} ms (${GROW_STRACE_MS} ms)"

kills=0; identical=0; different=0; corrupt=0; attempts=0; midwrite=0; reruns=0
while [ $kills -lt "$KILLS" ]; do
    attempts=$((attempts + 1))
    if [ $((attempts % 2)) -eq 1 ]; then kind=train; args=("${TRAIN[@]}"); ms=$TRAIN_MS; sms=$TRAIN_STRACE_MS
    else kind=grow; args=("${GROW[@]}"); ms=$GROW_MS; sms=$GROW_STRACE_MS; fi
    dir="$WORK/run-$attempts-$kind"
    traced=$(( (attempts / 2) % 2 ))
    if [ $traced -eq 1 ]; then span=$sms; else span=$ms; fi
    wait_ms=$(( 30 + (RANDOM * 32768 + RANDOM) % (span + 1) ))
    if [ $traced -eq 1 ]; then
        strace -f -qq -o /dev/null -e trace=fsync -e inject=fsync:delay_enter=$DELAY_US \
            "$STRATA" "${args[@]}" --output "$dir" > "$dir.log" 2>&1 &
    else
        "$STRATA" "${args[@]}" --output "$dir" > "$dir.log" 2>&1 &
    fi
    outer=$!
    sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
    victim=$outer
    if [ $traced -eq 1 ]; then victim=$(pgrep -P "$outer" | head -1); fi
    state="(none)"
    if [ -n "$victim" ] && kill -0 "$victim" 2>/dev/null; then
        # What the victim is doing at the kill: inside a write when a temporary file exists.
        tmp=$(ls -a "$dir" 2>/dev/null | grep -c '\.tmp-')
        [ "$tmp" -gt 0 ] && midwrite=$((midwrite + 1))
        kill -KILL "$victim" 2>/dev/null && state="killed after ${wait_ms} ms$([ "$tmp" -gt 0 ] && echo ', during a write')"
    fi
    wait "$outer" 2>/dev/null
    if [ "$state" = "(none)" ]; then rm -rf "$dir" "$dir.log"; continue; fi   # finished before the kill
    kills=$((kills + 1))
    killed=$(python3 "$HERE/kill-resume-check.py" --killed "$dir") || { corrupt=$((corrupt + 1)); echo "kill $kills: $killed"; }
    # Resume until complete. A run killed before it wrote config.json has nothing to resume:
    # rerunning the original command into its (still empty) directory is what a user would do.
    how="resumed"
    for try in 1 2 3; do
        if "$STRATA" "$kind" --resume "$dir" --device cpu > "$dir.resume.log" 2>&1; then break; fi
        if grep -q "no run to resume" "$dir.resume.log"; then
            how="nothing to resume, rerun"; reruns=$((reruns + 1))
            "$STRATA" "${args[@]}" --output "$dir" > "$dir.rerun.log" 2>&1 && break
        fi
    done
    result=$(python3 "$HERE/kill-resume-check.py" "$dir" "$WORK/ref-$kind"); code=$?
    case $code in
        0) identical=$((identical + 1)) ;;
        1) different=$((different + 1)) ;;
        *) corrupt=$((corrupt + 1)) ;;
    esac
    printf 'kill %2d  %-5s %-6s %-40s %-34s %-24s -> %s\n' "$kills" "$kind" "$([ $traced -eq 1 ] && echo strace || echo plain)" "$state" "$killed" "$how" "$result"
done
echo "kills: $kills (of $attempts runs started; $midwrite during a write; $reruns before the run wrote anything, rerun), identical resumed runs: $identical/$kills, different: $different, corrupt or lost: $corrupt"
[ $different -eq 0 ] && [ $corrupt -eq 0 ]
