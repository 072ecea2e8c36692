#!/usr/bin/env python3
"""Proxy HPO against the usual HPO as procedures: every winner's final training repeated with the
same seeds R (default 1 2 3: init, split, shuffling), so that all winners of all searches are
scored on the same three trainings, then averaged over the search seeds S.

    bench/hpo/procedures.py full=runs/a runs/b  scaled=runs/c runs/d  same=runs/e runs/f --seeds 0 1 2 3 4 5 6 7

Each NAME=DIR... lists the directories of bench/hpo/proxy-vs-full.sh output (OUT) that hold that
arm for some seeds: `full` reads sS/full, the others sS/proxy (the first directory that has the
seed wins). A winner's accuracy at R is its hpo's own final when R == S, else final-seedR.
Prints each arm's per-seed means and the mean over seeds, its difference to `full`, the standard
error of that difference (paired by seed), and the spread between two full searches (pairs of
seeds), which says how far apart two searches of the same procedure land."""
import argparse, itertools, json, os, statistics, sys

ap = argparse.ArgumentParser()
ap.add_argument("arms", nargs="+")
ap.add_argument("--seeds", nargs="+", required=True)
ap.add_argument("--repeats", nargs="+", default=["1", "2", "3"])
ap.add_argument("--margin", type=float, default=0.5, help="the goal's accuracy margin, in points")
a = ap.parse_args()

def t95(df):
    """Student t's 95th percentile (Cornish-Fisher from the normal's; within 0.01 from df = 3)."""
    z = 1.6448536
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))
arms, name = {}, None
for x in a.arms:
    if "=" in x: name, x = x.split("=", 1); arms[name] = []
    arms[name].append(x)

def finals(dirs, side, s):
    for d in dirs:
        base = f"{d}/s{s}/{side}"
        if not os.path.isdir(base): continue
        # A directory of finals only (no search of its own, e.g. another choice among a search's
        # trials) has final-seedR for every R and no summary.json.
        summary = json.load(open(f"{base}/summary.json")) if os.path.exists(f"{base}/summary.json") else {}
        accs = []
        for r in a.repeats:
            path = f"{base}/final-seed{r}/summary.json"
            if os.path.exists(path): accs.append(json.load(open(path))["testAccuracy"])
            elif r == s and "finalTestAccuracy" in summary: accs.append(summary["finalTestAccuracy"])
            else: return None
        cpu = summary.get("searchCPUSeconds")
        return statistics.mean(accs) * 100, cpu
    return None

table = {n: {s: finals(dirs, "full" if n == "full" else "proxy", s) for s in a.seeds} for n, dirs in arms.items()}
print("| arm | " + " | ".join(f"S={s}" for s in a.seeds) + " | mean | minus full (paired s.e.) | CPU time saved |")
print("|---|" + "---|" * (len(a.seeds) + 3))
full = table["full"]
for n, row in table.items():
    cells = [f"{row[s][0]:.2f}" if row[s] else "-" for s in a.seeds]
    seeds = [s for s in a.seeds if row[s] and full[s]]
    m = statistics.mean(row[s][0] for s in seeds)
    if n == "full":
        extra = "- | -"
    else:
        d = [row[s][0] - full[s][0] for s in seeds]
        se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        cpu = [1 - row[s][1] / full[s][1] for s in seeds if row[s][1] and full[s][1]]
        extra = f"{statistics.mean(d):+.2f} ({se:.2f}) | " + (f"{statistics.mean(cpu)*100:.1f}%" if cpu else "-")
    print(f"| {n} ({len(seeds)} seeds) | " + " | ".join(cells) + f" | {m:.2f} | {extra} |")
fm = [full[s][0] for s in a.seeds if full[s]]
pairs = [abs(x - y) for x, y in itertools.combinations(fm, 2)]
print(f"\ntwo full searches (all {len(pairs)} pairs of seeds): |difference| mean {statistics.mean(pairs):.2f}, "
      f"median {statistics.median(pairs):.2f} pts, within 0.5 in {sum(p <= 0.5 for p in pairs)} of {len(pairs)}; "
      f"full winners' spread (s.d. over seeds) {statistics.stdev(fm):.2f} pts")
for n, row in table.items():
    if n == "full": continue
    d = [row[s][0] - full[s][0] for s in a.seeds if row[s] and full[s]]
    ad = [abs(x) for x in d]
    print(f"{n} against the full search of its seed: |difference| mean {statistics.mean(ad):.2f}, median {statistics.median(ad):.2f}, "
          f"within 0.5 in {sum(x <= 0.5 for x in ad)} of {len(ad)}")
    if len(d) > 2:
        m, se = statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5
        lo, hi = m - t95(len(d) - 1) * se, m + t95(len(d) - 1) * se
        verdict = ("shown: the interval lies above" if lo > -a.margin else
                   "outside: the interval lies below" if hi < -a.margin else "not decided: the interval straddles")
        print(f"{n} minus full: {m:+.2f} points, 90% interval [{lo:+.2f}, {hi:+.2f}] (t, {len(d) - 1} df); "
              f"within {a.margin} points: {verdict} -{a.margin}")

