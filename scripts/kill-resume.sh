#!/bin/bash
# Kill/resume test: starts `strata train` and `strata grow` runs, SIGKILLs each at a random
# moment (half of the runs under strace with every fsync delayed, which holds most of the run
# inside checkpoint and manifest writes, so kills land mid-write; every TERM_EVERY-th stop is a
# SIGTERM instead, which must end the run with status 143 and its manifest "interrupted"), resumes
# it with --resume until it completes, and compares the result with the same run left uninterrupted
# (scripts/kill-resume-check.py: right after the kill, the manifest and the checkpoints it names;
# after the resume, tensors of the last and best checkpoints, manifest, links, metrics).
# Then SEARCH_KILLS searches (2 workers), each stopped at a random moment, alternately by a SIGTERM
# to the search (status 143, then --resume) and by a SIGKILL to one of its workers alone (the
# search stops with status 1 naming the trial, then --resume --retry-failed); each resumed search
# must equal the uninterrupted one trial by trial, donors included.
# Prints one line per kill and a tally; exits 1 if any run is corrupt, lost or different.
#
#   scripts/kill-resume.sh [KILLS] [WORKDIR]       (make kill-resume; KILLS defaults to 50)
#   STRATA=path/to/strata DATA=cifar10-dir SEARCH_KILLS=4 scripts/kill-resume.sh 10
#   SEARCH_PRUNER=asha SEARCH_KILLS=4 scripts/kill-resume.sh 0      (searches with a pruner only)
set -u
KILLS=${1:-50}
WORK=${2:-$(mktemp -d /tmp/strata-kill-resume.XXXXXX)}
HERE=$(cd "$(dirname "$0")" && pwd)
STRATA=${STRATA:-$HERE/../.build/release/strata}
DATA=${DATA:-$HERE/../../shared/datasets/cifar10-subset}
DELAY_US=${DELAY_US:-40000}   # per fsync, under strace
SEED=${SEED:-$RANDOM}
TERM_EVERY=${TERM_EVERY:-3}   # every n-th stop of a train/grow run is a SIGTERM
SEARCH_KILLS=${SEARCH_KILLS:-8}
RANDOM=$SEED
[ -x "$STRATA" ] || { echo "kill-resume: $STRATA is not built (make build)"; exit 2; }
[ -d "$DATA" ] || { echo "kill-resume: no dataset at $DATA (set DATA=a CIFAR-10 binary directory)"; exit 2; }
command -v strace >/dev/null || { echo "kill-resume: strace is missing (apt-get install strace)"; exit 2; }

COMMON=(--model cnn --filters 8,16 --hidden 32 --data "$DATA" --train-limit 600 --batch-size 50 --device cpu)
TRAIN=(train "${COMMON[@]}" --epochs 4 --optimizer sgd --lr 0.05)
GROW=(grow "${COMMON[@]}" --max-epochs 6 --window 2 --lookahead-epochs 1)
SPACE_JSON='{"model": "cnn", "grid": {"conv_layers": [1,2,3], "filters": [8], "kernel": [3], "hidden": [[32]], "lr": [0.01, 0.003], "batch_size": [50]}, "epochs": 3, "optimizer": "adam"}'
SEARCH_PRUNER=${SEARCH_PRUNER:-none}   # asha or hyperband: the searches stop weak trials at rungs
# A pruner decides on results in the order they arrive: identical searches need one worker then.
SEARCH_WORKERS=${SEARCH_WORKERS:-$([ "$SEARCH_PRUNER" = none ] && echo 2 || echo 1)}
SEARCH=(search --space "$WORK/space.json" --reuse paper --data "$DATA" --train-limit 600 --workers "$SEARCH_WORKERS" --threads 2 --pruner "$SEARCH_PRUNER")
mkdir -p "$WORK"
echo "$SPACE_JSON" > "$WORK/space.json"
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
    sig=KILL; [ $(( (kills + 1) % TERM_EVERY )) -eq 0 ] && sig=TERM
    if [ -n "$victim" ] && kill -0 "$victim" 2>/dev/null; then
        # What the victim is doing at the kill: inside a write when a temporary file exists.
        tmp=$(ls -a "$dir" 2>/dev/null | grep -c '\.tmp-')
        [ "$tmp" -gt 0 ] && midwrite=$((midwrite + 1))
        kill -$sig "$victim" 2>/dev/null && state="$([ $sig = TERM ] && echo SIGTERM || echo killed) after ${wait_ms} ms$([ "$tmp" -gt 0 ] && echo ', during a write')"
    fi
    wait "$outer" 2>/dev/null; status=$?
    if [ $sig = TERM ] && [ "$state" != "(none)" ]; then
        # A SIGTERM stops the run at its next step: status 143 (or 0 if it was already ending),
        # a manifest "interrupted" when there is one, and one line saying how to resume.
        mstatus=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status'])" "$dir/manifest.json" 2>/dev/null || echo none)
        if [ $status -ne 143 ] && [ $status -ne 0 ]; then
            corrupt=$((corrupt + 1)); echo "SIGTERM: $kind exited with status $status, not 143"
        elif [ $status -eq 143 ] && [ "$mstatus" != interrupted ] && [ "$mstatus" != none ]; then
            corrupt=$((corrupt + 1)); echo "SIGTERM: $kind left its manifest '$mstatus', not 'interrupted'"
        fi
        state="$state, exit $status, manifest $mstatus"
    fi
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

# Searches: the uninterrupted reference, then each stopped once and resumed.
s_identical=0; s_different=0; s_corrupt=0; s_stops=0
if [ "$SEARCH_KILLS" -gt 0 ]; then
    t0=$(now_ms)
    "$STRATA" "${SEARCH[@]}" --output "$WORK/ref-search" > "$WORK/ref-search.log" 2>&1 || { echo "reference search failed"; cat "$WORK/ref-search.log"; exit 2; }
    SEARCH_MS=$(( $(now_ms) - t0 ))
    echo "reference search: ${SEARCH_MS} ms"
fi
n=0
while [ $s_stops -lt "$SEARCH_KILLS" ]; do
    n=$((n + 1))
    dir="$WORK/search-$n"
    "$STRATA" "${SEARCH[@]}" --output "$dir" > "$dir.log" 2>&1 &
    pid=$!
    wait_ms=$(( 500 + (RANDOM * 32768 + RANDOM) % (SEARCH_MS - 500 + 1) ))
    sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
    how="(none)"
    if [ $((n % 2)) -eq 1 ]; then
        kill -TERM "$pid" 2>/dev/null && how="SIGTERM to the search"; expect=143; resume=(--resume "$dir")
    else
        # One worker alone: the search must stop (an infrastructure fault), not record a failure.
        worker=""
        for _ in 1 2 3 4 5 6 7 8 9 10; do worker=$(pgrep -P "$pid" | head -1); [ -n "$worker" ] && break; sleep 0.05; done
        [ -n "$worker" ] && kill -KILL "$worker" 2>/dev/null && how="SIGKILL to worker $worker"
        expect=1; resume=(--resume "$dir" --retry-failed)
    fi
    wait "$pid"; status=$?
    if [ "$how" = "(none)" ] || [ $status -eq 0 ]; then rm -rf "$dir" "$dir.log"; continue; fi   # it ended first
    s_stops=$((s_stops + 1))
    note="exit $status"
    if [ $status -ne $expect ]; then s_corrupt=$((s_corrupt + 1)); note="$note (expected $expect): $(tail -1 "$dir.log")"; fi
    if grep -q "FAILED" "$dir.log"; then s_corrupt=$((s_corrupt + 1)); note="$note, a trial was recorded as failed"; fi
    "$STRATA" search "${resume[@]}" > "$dir.resume.log" 2>&1 || note="$note, resume failed: $(tail -1 "$dir.resume.log")"
    result=$(python3 "$HERE/kill-resume-check.py" --search "$dir" "$WORK/ref-search"); code=$?
    case $code in
        0) s_identical=$((s_identical + 1)) ;;
        1) s_different=$((s_different + 1)) ;;
        *) s_corrupt=$((s_corrupt + 1)) ;;
    esac
    printf 'search %2d  %-32s after %5d ms, %-12s -> %s\n' "$s_stops" "$how" "$wait_ms" "$note" "$result"
done
[ "$SEARCH_KILLS" -gt 0 ] && echo "search stops: $s_stops, identical resumed searches: $s_identical/$s_stops, different: $s_different, wrong exit, failure recorded, corrupt or lost: $s_corrupt"
[ $different -eq 0 ] && [ $corrupt -eq 0 ] && [ $s_different -eq 0 ] && [ $s_corrupt -eq 0 ]
