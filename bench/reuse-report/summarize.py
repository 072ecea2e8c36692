#!/usr/bin/env python3
"""One table over the reports bench/reuse-report.sh wrote: per model and source, the share of
reusable single swaps, the mean accuracy drop per kind, the longest reusable prefix, and the
Spearman correlation of RMSE with the drop per kind (over layers).

    python3 bench/reuse-report/summarize.py runs/bench-reuse-report
"""
import json
import os
import sys

KINDS = ["W", "B", "RM", "RV", "RW", "RB"]


def main():
    root = sys.argv[1]
    print(f"{'model':<9} {'source':<6} {'baseline':>8} {'reusable':>9} {'prefix':>7}  "
          + "  ".join(f"{k + ' drop':>8}" for k in KINDS) + "   Spearman(RMSE, drop) by kind")
    for model in sorted(os.listdir(root)):
        path = os.path.join(root, model, "report", "report.json")
        if not os.path.exists(path):
            continue
        report = json.load(open(path))
        for s in report["sources"]:
            drops = "  ".join(f"{100 * s['mean_drop_by_kind'][k]:8.2f}" if k in s["mean_drop_by_kind"] else f"{'-':>8}"
                              for k in KINDS)
            rho = ", ".join(f"{k} {s['correlation'][k]['spearman']:.2f}" for k in KINDS
                            if s["correlation"].get(k, {}).get("spearman") is not None)
            prefix = s.get("longest_reusable_prefix")
            print(f"{model:<9} {s['source']:<6} {100 * report['baseline_accuracy']:7.2f}% "
                  f"{s['reusable_swaps']:>4}/{s['swaps']:<4} {'-' if prefix is None else prefix:>7}  {drops}   {rho}")


if __name__ == "__main__":
    main()
