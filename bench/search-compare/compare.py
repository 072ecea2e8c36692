#!/usr/bin/env python3
"""`make bench-search-compare`: one space searched by Ray Tune + PyTorch (its defaults, and
reuse_actors=True) and by `strata search --reuse none|paper|best-prefix`, on the same machine,
interleaved over rounds (each round runs every arm once; the order rotates by one arm per round,
so slow drift of the machine's load does not favour one arm). Every arm is timed as a whole
command, start-up included. Prints one markdown table; `--results FILE` also writes it there.

    python compare.py --strata .build/release/strata --space bench/search-measure-space.json \
        --data DIR [--train-limit N] [--rounds 2] [--epochs N] [--results bench/search-compare/RESULTS.md]

`--data` is a CIFAR-10 binary-batch folder or an MNIST / Fashion-MNIST IDX folder; `--train-limit N`
goes to every arm (Strata's and Ray's draw the same N images).

Columns: wall time to finish the space (median over rounds, and each round), trials per hour,
training FLOPs executed (Strata's ledger; the Ray Tune arms train the same networks for the same
steps as `--reuse none` without reuse, so their count is that arm's), the best validation loss
and the test accuracy of that trial's best checkpoint (from the first round: Strata's results are
the same every round, PyTorch's differ by thread timing only), and the ratios of Ray Tune's wall
times to each arm's.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ARMS = ["ray-default", "ray-reuse-actors", "strata-none", "strata-paper", "strata-best-prefix"]
LABELS = {"ray-default": "Ray Tune + PyTorch, defaults", "ray-reuse-actors": "Ray Tune + PyTorch, reuse_actors=True",
          "strata-none": "strata search --reuse none", "strata-paper": "strata search --reuse paper",
          "strata-best-prefix": "strata search --reuse best-prefix"}


def command(arm, args, out):
    if arm.startswith("ray"):
        cmd = [args.python, os.path.join(HERE, "raytune_search.py"), "--space", args.space, "--data", args.data,
               "--output", out + ".json", "--workers", str(args.workers)]
        if arm == "ray-reuse-actors":
            cmd.append("--reuse-actors")
    else:
        cmd = [args.strata, "search", "--space", args.space, "--reuse", arm[len("strata-"):], "--data", args.data,
               "--workers", str(args.workers), "--threads", str(args.workers), "--output", out]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.train_limit:
        cmd += ["--train-limit", str(args.train_limit)]
    return cmd


def read_outcome(arm, out):
    """(trials, failed, best validation loss, its test accuracy, executed FLOPs or None)."""
    if arm.startswith("ray"):
        with open(out + ".json") as f:
            rows = [{"loss": t["validation_loss"], "test": t["test_accuracy"], "ok": t["status"] == "finished"}
                    for t in json.load(f)["trials"]]
        flops = None
    else:
        last = {}
        with open(os.path.join(out, "journal.jsonl")) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    # StudyEvent lines ("format": 1: trial, event) or the older trial records (id, status).
                    last[r.get("trial", r.get("id"))] = r
        rows = [{"loss": r.get("validation_loss"), "test": r.get("test_accuracy"),
                 "ok": r.get("event", r.get("status")) == "finished",
                 "flops": r.get("flops_executed", 0)} for r in last.values()]
        flops = sum(r["flops"] for r in rows)
    done = [r for r in rows if r["ok"] and r["loss"] is not None]
    best = min(done, key=lambda r: r["loss"]) if done else None
    return (len(rows), len(rows) - len(done), best["loss"] if best else None,
            best["test"] if best else None, flops)


def table(arms, walls, outcomes, args, rounds_done):
    ray = {a: statistics.median(walls[a]) for a in ("ray-default", "ray-reuse-actors") if walls.get(a)}
    none_flops = outcomes.get("strata-none", (0, 0, None, None, None))[4]
    lines = ["| arm | wall time, median (rounds) | trials / hour | training FLOPs | best val. loss | its test acc. "
             "| x faster than Ray defaults | x faster than Ray reuse_actors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for a in arms:
        if not walls.get(a):
            continue
        wall = statistics.median(walls[a])
        trials, failed, loss, test, flops = outcomes[a]
        if flops is None:
            flops_cell = f"{none_flops / 1e12:.3f} T (= none)" if none_flops else "same as none"
        else:
            flops_cell = f"{flops / 1e12:.3f} T"
        ratio = lambda r: f"{ray[r] / wall:.2f}x" if r in ray else "-"
        lines.append(f"| {LABELS[a]} | {wall:.1f} s ({', '.join(f'{w:.1f}' for w in walls[a])}) "
                     f"| {trials * 3600 / wall:.0f} | {flops_cell} "
                     f"| {'-' if loss is None else f'{loss:.4f}'} | {'-' if test is None else f'{100 * test:.1f}%'} "
                     f"| {ratio('ray-default')} | {ratio('ray-reuse-actors')} |"
                     + (f" {failed} failed" if failed else ""))
    # The goal (with the trial-groups work that builds on this engine): the whole search
    # >= 6x faster than Ray Tune's defaults and >= 4x faster than its best settings (the faster
    # Ray arm), with a best validation loss no worse than Ray's best.
    if "ray-default" in ray and ray:
        best_ray = min(ray, key=ray.get)
        ray_loss = min(outcomes[a][2] for a in ray if outcomes[a][2] is not None)
        lines.append("")
        for a in arms:
            if a.startswith("strata") and walls.get(a):
                wall, loss = statistics.median(walls[a]), outcomes[a][2]
                fast_d, fast_b = ray["ray-default"] / wall, ray[best_ray] / wall
                ok = fast_d >= 6 and fast_b >= 4 and loss is not None and loss <= ray_loss
                lines.append(f"- goal for `{a}`: {fast_d:.2f}x Ray's defaults (>= 6), {fast_b:.2f}x its best, {best_ray} (>= 4), "
                             f"best val. loss {loss:.4f} vs Ray's {ray_loss:.4f} (no worse): {'met' if ok else 'not met'}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", default=".build/release/strata")
    ap.add_argument("--python", default=sys.executable, help="a Python with torch and ray[tune] for the Ray arms")
    ap.add_argument("--space", default="bench/search-measure-space.json")
    ap.add_argument("--data", required=True, help="CIFAR-10 binary batches or MNIST / Fashion-MNIST IDX files")
    ap.add_argument("--train-limit", type=int, help="every trial trains on this many of the training images (default: all)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, help="epochs of every trial (default: the space's)")
    ap.add_argument("--workers", type=int, default=2, help="trials at once, one thread each")
    ap.add_argument("--arms", default=",".join(ARMS), help="comma list of " + ", ".join(ARMS))
    ap.add_argument("--work", help="folder for the runs (new; default: a fresh one under /tmp, kept)")
    ap.add_argument("--results", help="also write the table (markdown) to this file")
    args = ap.parse_args()
    arms = args.arms.split(",")
    for a in arms:
        if a not in ARMS:
            sys.exit(f"--arms: '{a}' is not one of {', '.join(ARMS)}")
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    if args.train_limit is not None and args.train_limit < 2:
        sys.exit(f"--train-limit must be at least 2, got {args.train_limit}")
    if args.work:
        if os.path.exists(args.work) and os.listdir(args.work):
            sys.exit(f"--work {args.work} is not empty; choose a new folder")
        os.makedirs(args.work, exist_ok=True)
        work = args.work
    else:
        work = tempfile.mkdtemp(prefix="strata-search-compare-")
    with open(args.space) as f:
        space = json.load(f)
    print(f"work folder {work}; arms {', '.join(arms)}; {args.rounds} round(s)", flush=True)

    walls, outcomes = {a: [] for a in arms}, {}
    for r in range(args.rounds):
        order = arms[r % len(arms):] + arms[:r % len(arms)]
        for a in order:
            out = os.path.join(work, f"round{r + 1}", a)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            cmd = command(a, args, out)
            start = time.monotonic()
            with open(out + ".log", "w") as log:
                rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
            wall = time.monotonic() - start
            if rc != 0:
                sys.exit(f"{a} (round {r + 1}) exited {rc}; see {out}.log")
            walls[a].append(wall)
            if r == 0:
                outcomes[a] = read_outcome(a, out)
            print(f"round {r + 1} {a}: {wall:.1f} s", flush=True)

    trials = outcomes[arms[0]][0]
    grid = space.get("grid", {})
    header = [f"Space `{args.space}` ({trials} trials: " + ", ".join(f"{k} {v}" for k, v in grid.items())
              + f"; {args.epochs or space.get('epochs')} epochs, {space.get('optimizer', 'adam')}, seed {space.get('seed', 0)}), "
              f"data `{args.data}`" + (f" (train limit {args.train_limit})" if args.train_limit else "")
              + f", {args.workers} trials at a time, one thread each, {args.rounds} interleaved round(s); "
              f"{platform.node()}, {os.cpu_count()} CPUs, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.", ""]
    lines = header + table(arms, walls, outcomes, args, args.rounds)
    print("\n".join(lines))
    if args.results:
        with open(args.results, "w") as f:
            f.write("# `make bench-search-compare`\n\n"
                    "Command: `make bench-search-compare PYTHON=... ROUNDS=" + str(args.rounds)
                    + (f" EPOCHS={args.epochs}" if args.epochs else "") + f" SPACE={args.space} DATA={args.data}"
                    + (f" TRAIN_LIMIT={args.train_limit}" if args.train_limit else "") + "`\n\n"
                    + "\n".join(lines) + "\n")
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
