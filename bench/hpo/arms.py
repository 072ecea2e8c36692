#!/usr/bin/env python3
"""Proxy arms against the full search, per seed, from bench/hpo/proxy-vs-full.sh output directories.

    bench/hpo/arms.py runs/hpo-lrt/same:lr=same runs/hpo-lrt/scaled:lr=scaled --seeds 3 4 5

Each OUT holds sS/proxy (that arm's proxy search) and sS/full (the full search, shared through
FULL_FROM); finals are the hpo's own (seed S) and the repeated ones (final-seedR). Prints, per
seed and arm: the winner, search CPU seconds saved against the full search, and the means of the
winners' finals; then the mean over seeds and the number of seeds meeting the goal (>= 37% of the
search's CPU time saved, mean final accuracy within 0.5 points of the full search's winner)."""
import argparse, json, os, statistics

def side(out, s, name):
    d = f"{out}/s{s}/{name}"
    summary = json.load(open(f"{d}/summary.json"))
    accs = [summary["finalTestAccuracy"]]
    for r in sorted(os.listdir(d)):
        p = f"{d}/{r}/summary.json"
        if r.startswith("final-seed") and r != f"final-seed{s}" and os.path.exists(p):
            accs.append(json.load(open(p))["testAccuracy"])
    params = {k: list(v.values())[0] for k, v in summary["bestParams"].items()}
    return summary, params, accs

ap = argparse.ArgumentParser()
ap.add_argument("arms", nargs="+", help="OUT:label")
ap.add_argument("--seeds", nargs="+", required=True)
a = ap.parse_args()
arms = [x.split(":", 1) for x in a.arms]
print("| seed | arm | winner lr | batch | weight decay | search CPU s | saved (CPU) | finals | mean | diff (pts) | goal |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
totals = {label: [] for _, label in arms}
for s in a.seeds:
    full, fp, fa = side(arms[0][0], s, "full")
    rows = [("full", full, fp, fa)]
    for out, label in arms:
        if os.path.exists(f"{out}/s{s}/proxy/summary.json"):
            rows.append((label,) + side(out, s, "proxy"))
    for label, summ, p, accs in rows:
        cpu = summ.get("searchCPUSeconds") or 0
        saved = 1 - cpu / full["searchCPUSeconds"] if label != "full" else None
        diff = (statistics.mean(accs) - statistics.mean(fa)) * 100 if label != "full" else None
        goal = "" if label == "full" else ("yes" if saved >= 0.37 and diff >= -0.5 else "no")
        if label != "full": totals[label].append((saved, diff, goal == "yes"))
        print(f"| {s} | {label} | {float(p['lr']):.2e} | {p['batch_size']} | {float(p['weight_decay']):.2e} | {cpu:.1f} | "
              + (f"{saved*100:.1f}%" if saved is not None else "-") + " | "
              + " / ".join(f"{x*100:.2f}" for x in accs) + f" | {statistics.mean(accs)*100:.2f} | "
              + (f"{diff:+.2f}" if diff is not None else "-") + f" | {goal} |")
print()
for label, t in totals.items():
    if t:
        print(f"{label}: {len(t)} seeds, mean CPU time saved {statistics.mean(x[0] for x in t)*100:.1f}%, "
              f"mean accuracy difference {statistics.mean(x[1] for x in t):+.2f} pts "
              f"(median {statistics.median(x[1] for x in t):+.2f}), goal met in {sum(x[2] for x in t)} of {len(t)}")
