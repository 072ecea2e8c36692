#!/bin/sh
# Opens a search's report.html in a real headless browser (Debian's chromium), takes a screenshot,
# and fails on any console message (script errors, failed loads: the report must need neither
# script nor network) or on an empty page.
#   bench/search-report-check.sh [REPORT.html] [SCREENSHOT.png]
# Without REPORT, runs a 6-trial search on Fashion-MNIST (1 epoch, 600 images) into
# runs/search-report-check/ and checks its report.
set -eu
STRATA=${STRATA:-.build/release/strata}
REPORT=${1:-}
SHOT=${2:-runs/search-report-check/report.png}
BROWSER=$(command -v chromium-headless-shell || command -v chromium || true)
if [ -z "$BROWSER" ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null
        BROWSER=$(command -v chromium-headless-shell)
    else
        echo "search-report-check: needs Debian's chromium: sudo apt-get install chromium-headless-shell" >&2
        exit 1
    fi
fi
if [ -z "$REPORT" ]; then
    OUT=runs/search-report-check
    rm -rf "$OUT"
    mkdir -p "$OUT"
    cat > "$OUT/space.json" <<'SPACE'
{"grid": {"conv_layers": [1, 2, 3], "filters": [8], "hidden": [[50], [250, 50]], "lr": [0.001], "batch_size": [40]}, "epochs": 1}
SPACE
    "$STRATA" search --space "$OUT/space.json" --reuse none,paper --data "${DATA:-/usr/share/datasets/fashion-mnist}" \
        --train-limit 600 --workers 2 --output "$OUT" >/dev/null
    REPORT=$OUT/report.html
fi
mkdir -p "$(dirname "$SHOT")"
LOG=$(mktemp)
"$BROWSER" --headless --no-sandbox --disable-gpu --window-size=1200,2400 --enable-logging=stderr --v=0 \
    --screenshot="$SHOT" "file://$(realpath "$REPORT")" 2>"$LOG" || { cat "$LOG" >&2; exit 1; }
if grep -q ":CONSOLE" "$LOG"; then
    echo "search-report-check: console messages in $REPORT:" >&2
    grep ":CONSOLE" "$LOG" >&2
    exit 1
fi
SIZE=$(wc -c < "$SHOT")
[ "$SIZE" -gt 20000 ] || { echo "search-report-check: $SHOT is only $SIZE bytes (blank page?)" >&2; exit 1; }
rm -f "$LOG"
echo "search-report-check: $REPORT renders without console messages; screenshot $SHOT ($SIZE bytes)"
