#!/usr/bin/env bash
# Builds the fuzz targets (libFuzzer + AddressSanitizer) and runs each for RUNS inputs, starting
# from the seed corpus in corpus/<reader>; new inputs go to WORK/<reader>, crashes to WORK/.
#   fuzz/run.sh [RUNS] [READER...]      RUNS default 100000; READERs: safetensors cifar10 idx config
#                                       cifar100 numpy image tar cache
#                                       search-journal hpo-journal hpo-space study-report
# Exits non-zero on the first crash, trap, leak, out-of-memory or hang (-timeout seconds per input).
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${1:-100000}; shift || true
READERS=${*:-safetensors cifar10 idx config cifar100 numpy image tar cache search-journal hpo-journal hpo-space study-report}
WORK=${WORK:-.build/fuzz-work}
swift build -c release -Xswiftc -sanitize=fuzzer,address
declare -A TARGET=([safetensors]=FuzzSafeTensors [cifar10]=FuzzCIFAR10 [idx]=FuzzIDX [config]=FuzzConfigJSON
    [cifar100]=FuzzCIFAR100 [numpy]=FuzzNumPy [image]=FuzzImage [tar]=FuzzTar [cache]=FuzzDatasetCache
    [search-journal]=FuzzSearchJournal [hpo-journal]=FuzzHPOJournal [hpo-space]=FuzzHPOSpace [study-report]=FuzzStudyReport)
declare -A MAXLEN=([safetensors]=4096 [cifar10]=12300 [idx]=4096 [config]=4096
    [cifar100]=9300 [numpy]=4096 [image]=4096 [tar]=10240 [cache]=4096
    [search-journal]=4096 [hpo-journal]=4096 [hpo-space]=2048 [study-report]=4096)
for r in $READERS; do
    mkdir -p "$WORK/$r"
    echo "== $r: ${TARGET[$r]} for $RUNS inputs"
    start=$(date +%s)
    ".build/release/${TARGET[$r]}" -runs="$RUNS" -max_len="${MAXLEN[$r]}" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$WORK/$r-" "$WORK/$r" "corpus/$r" 2>"$WORK/$r.log" \
        || { tail -40 "$WORK/$r.log"; exit 1; }
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$WORK/$r.log" | tr '\n' ' '
    echo "($(( $(date +%s) - start )) s, no crash)"
done
