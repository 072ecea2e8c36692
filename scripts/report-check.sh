#!/bin/sh
# Renders every report Strata writes in headless chromium (Debian's) at 1200 px and FAILS on a
# console message (a script error or a failed load: the pages need neither) or on an element
# wider than the page (a table cut at 1200 px, a figure or title clipped), and takes a
# full-page screenshot of each, to look at:
#   scripts/report-check.sh [SHOTS_DIR]              (default /tmp/report-shots; KEEP_RUNS=1 reuses the runs)
#   scripts/report-check.sh --pages DIR PAGE...      check existing pages (.html or .svg) only
# Without --pages it first makes the reports from tiny runs on Fashion-MNIST into
# runs/report-check/ (a few minutes on 2 cores): a 6-trial search with and without reuse, a
# 6-trial hpo with ASHA, two 2-epoch CNNs and a reuse-report between them, a grow run.
#
# How: each page is copied to a temporary HTML page (an SVG is inlined) that ends with a small
# script measuring every element's box against the window (elements inside a horizontally
# scrolling box are allowed to be wider; the box is not) and every SVG child against its SVG
# (a clipped title); `--dump-dom` prints the result. Console messages come from the original
# page, with `--enable-logging=stderr`. The screenshot's height is the page's, from the same run.
set -eu
STRATA=${STRATA:-.build/release/strata}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
WIDTH=1200
BROWSER=$(command -v chromium || command -v chromium-headless-shell || true)
if [ -z "$BROWSER" ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        BROWSER=$(command -v chromium)
    else
        echo "report-check: needs Debian's chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# check_page PAGE SHOT: 0 when clean, 1 with the reasons on stderr.
check_page() {
    page=$1 shot=$2 name=$(basename "$shot" .png)
    probe=$TMP/$name.html
    case "$page" in
        *.svg) { printf '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:8px}</style></head><body>\n'
                 sed '1{/^<?xml/d}' "$page"; printf '\n'; } > "$probe" ;;
        *) sed 's#</body></html>##' "$page" > "$probe" ;;
    esac
    cat >> "$probe" <<'PROBE'
<script>
(function () {
  var W = document.documentElement.clientWidth, bad = [];
  function name(e) { return e.tagName.toLowerCase() + (e.textContent ? ' "' + e.textContent.trim().slice(0, 40) + '"' : ''); }
  function scrolls(e) {
    for (var p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  }
  var all = document.body.querySelectorAll('*');
  for (var i = 0; i < all.length; i++) {
    var e = all[i];
    if (e.tagName === 'SCRIPT' || e.tagName === 'title' || e.closest('defs, marker, title')) continue;
    var r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (!scrolls(e) && (r.right > W + 0.5 || r.left < -0.5)) bad.push(name(e) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px');
    var svg = e.ownerSVGElement;
    if (svg && (e.tagName === 'text' || e.tagName === 'rect')) {
      var s = svg.getBoundingClientRect();
      if (r.right > s.right + 1 || r.left < s.left - 1 || r.top < s.top - 1 || r.bottom > s.bottom + 1)
        bad.push(name(e) + ' is clipped by its figure (' + Math.round(r.left) + '..' + Math.round(r.right) + ' in ' + Math.round(s.left) + '..' + Math.round(s.right) + ')');
    }
  }
  if (document.documentElement.scrollWidth > W) bad.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px');
  var out = document.createElement('pre');
  var tag = 'REPORT' + '-CHECK';  // split, so that this script's own text does not match
  out.textContent = tag + ' height=' + document.documentElement.scrollHeight + ' problems=' + bad.length + '\n' + bad.slice(0, 15).join('\n') + '\n' + tag + '-END';
  document.body.appendChild(out);
})();
</script></body></html>
PROBE
    flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1"
    # shellcheck disable=SC2086
    "$BROWSER" $flags --window-size=$WIDTH,900 --dump-dom "file://$probe" > "$TMP/$name.dom" 2>/dev/null || true
    result=$(sed -n '/REPORT-CHECK height=/,/REPORT-CHECK-END/p' "$TMP/$name.dom")
    if [ -z "$result" ]; then
        echo "report-check: $page: the measuring script did not run" >&2
        return 1
    fi
    height=$(echo "$result" | sed -n 's/.*height=\([0-9]*\).*/\1/p')
    [ "$height" -gt 16000 ] && height=16000
    [ "$height" -lt 200 ] && height=200
    # The original page, for its console messages and the screenshot.
    real=$(realpath "$page")
    # shellcheck disable=SC2086
    "$BROWSER" $flags --window-size=$WIDTH,$height --enable-logging=stderr --v=0 \
        --screenshot="$shot" "file://$real" 2> "$TMP/$name.log" >/dev/null || { cat "$TMP/$name.log" >&2; return 1; }
    status=0
    if grep -q ":CONSOLE" "$TMP/$name.log"; then
        echo "report-check: $page: console messages:" >&2
        grep ":CONSOLE" "$TMP/$name.log" >&2
        status=1
    fi
    case "$page" in *.svg)
        if ! python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$page" 2> "$TMP/$name.xml"; then
            echo "report-check: $page is not well-formed XML: $(tail -1 "$TMP/$name.xml")" >&2
            status=1
        fi ;;
    esac
    if ! echo "$result" | grep -q "problems=0"; then
        echo "report-check: $page at $WIDTH px:" >&2
        echo "$result" | sed '1d;$d' | sed 's/^/  /' >&2
        status=1
    fi
    [ $status = 0 ] && echo "report-check: ok   $page ($WIDTH x $height px) -> $shot"
    return $status
}

if [ "${1:-}" = "--pages" ]; then
    shift
    SHOTS=$1
    shift
    mkdir -p "$SHOTS"
    failed=0
    for p in "$@"; do check_page "$p" "$SHOTS/$(basename "$(dirname "$p")")-$(basename "$p" | tr . -).png" || failed=1; done
    exit $failed
fi

SHOTS=${1:-/tmp/report-shots}
OUT=runs/report-check
# KEEP_RUNS=1 keeps the runs of an earlier check and makes only what is missing.
[ "${KEEP_RUNS:-0}" = 1 ] || rm -rf "$OUT"
mkdir -p "$OUT" "$SHOTS"
quiet() { "$@" > "$OUT/last.log" 2>&1 || { cat "$OUT/last.log" >&2; echo "report-check: failed: $*" >&2; exit 1; }; }

cat > "$OUT/space.json" <<'SPACE'
{"grid": {"conv_layers": [1, 2, 3], "filters": [8], "hidden": [[50], [250, 50]], "lr": [0.001], "batch_size": [40]}, "epochs": 1}
SPACE
[ -f "$OUT/search/report.html" ] || quiet "$STRATA" search --space "$OUT/space.json" --reuse none,paper --data "$DATA" --train-limit 600 --workers 2 --output "$OUT/search"

cat > "$OUT/hpo-space.json" <<'SPACE'
{"lr": {"low": 1e-4, "high": 0.1, "log": true}, "batch_size": {"choices": [32, 64]}, "optimizer": {"choices": ["adam", "sgd"]}}
SPACE
[ -f "$OUT/hpo/report.html" ] || quiet "$STRATA" hpo --model cnn --filters 4,8 --hidden 16 --data "$DATA" --train-limit 600 --space "$OUT/hpo-space.json" \
    --trials 6 --epochs 3 --pruner asha --final-epochs 1 --workers 2 --output "$OUT/hpo"

for run in A B; do
    [ -f "$OUT/$run/summary.json" ] || quiet "$STRATA" train --model cnn --filters 4,8 --hidden 16 --data "$DATA" --train-limit 600 --epochs 2 \
        --seed "$([ $run = A ] && echo 1 || echo 2)" --output "$OUT/$run"
done
[ -f "$OUT/reuse/heatmap.svg" ] || quiet "$STRATA" reuse-report --target "$OUT/A" --source "$OUT/B" --test-limit 500 --color-scale=-5,5 --output "$OUT/reuse"

[ -f "$OUT/grow/growth.svg" ] || quiet "$STRATA" grow --model cnn --filters 4,8,16 --hidden 16 --data "$DATA" --train-limit 600 --max-epochs 6 --baseline \
    --window 2 --gamma 0.99 --lookahead-epochs 1 --output "$OUT/grow"

failed=0
for p in "$OUT/search/report.html" "$OUT/search/none/report.html" "$OUT/hpo/report.html" \
         "$OUT/reuse/heatmap.svg" "$OUT/reuse/rmse-vs-drop.svg" "$OUT/grow/growth.svg"; do
    if [ ! -f "$p" ]; then echo "report-check: $p was not written" >&2; failed=1; continue; fi
    shot="$SHOTS/$(echo "${p#"$OUT"/}" | tr / - | sed 's/\.[a-z]*$//').png"
    check_page "$p" "$shot" || failed=1
done
[ $failed = 0 ] && echo "report-check: every report renders at $WIDTH px without console messages or overflow; screenshots in $SHOTS"
exit $failed
