"""The Ray side of `strata search --engine ray`.

The Swift search starts `python -m strata_ray.driver --address ADDR --strata BIN --slots N` and talks
to it in JSON lines:

  stdin   {"op": "submit", "job": <TrialJob>, "files": {"<relative path>": "<base64>"}}
  stdout  {"op": "ready", "slots": N}
          {"op": "done", "id": ID, "outcome": <TrialOutcome> | null, "error": TEXT | null,
           "wall": SECONDS, "files": {"<relative path>": "<base64>"}}

Each trial is one Ray task (num_cpus = the job's threads). It runs `strata search-trial job.json` in a
temporary folder on whichever node Ray picks: the files sent with the job (the donor's frozen prefix
as `prefix.safetensors`, and the run directory of an interrupted trial) are written there first, and
every file the trial wrote comes back in the answer, so the driver and the workers need no shared
file system; prefixes and checkpoints travel in Ray's object store as task arguments and results.
`strata hpo --engine ray` sends its trials the same way: a job whose "train" holds the trial's training
config and "untilEpoch" the rung to stop at; a promoted trial's next job carries its run directory
(`run/...`) and continues it from the checkpoint on whichever node Ray picks.
Every node needs the strata binary at --strata (or $STRATA_BIN) and the dataset at the path of the
search's data config.
"""
import argparse
import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import ray


def run_trial(job, files, strata):
    """Runs one trial in a fresh folder; returns (outcome or None, error or None, wall, files)."""
    start = time.monotonic()
    folder = tempfile.mkdtemp(prefix="strata-trial-")
    try:
        for rel, b64 in files.items():
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(base64.b64decode(b64))
        job = dict(job)
        job["directory"] = folder
        if "prefix.safetensors" in files:
            job["prefixPath"] = os.path.join(folder, "prefix.safetensors")
        with open(os.path.join(folder, "job.json"), "w") as f:
            json.dump(job, f)
        binary = os.environ.get("STRATA_BIN", strata)
        with open(os.path.join(folder, "stdout.log"), "ab") as out, open(os.path.join(folder, "stderr.log"), "ab") as err:
            rc = subprocess.run([binary, "search-trial", os.path.join(folder, "job.json")],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
        outcome, error = None, None
        try:
            with open(os.path.join(folder, "outcome.json")) as f:
                outcome = json.load(f)
        except OSError:
            with open(os.path.join(folder, "stderr.log"), "rb") as f:
                tail = f.read()[-600:].decode("utf-8", "replace").strip().splitlines()[-3:]
            how = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
            error = f"worker {how}" + (": " + " | ".join(tail) if tail else "")
        back = {}
        for root, _, names in os.walk(folder):
            for name in names:
                rel = os.path.relpath(os.path.join(root, name), folder)
                if rel in ("job.json", "prefix.safetensors") or name.startswith("."):
                    continue
                with open(os.path.join(root, name), "rb") as f:
                    back[rel] = base64.b64encode(f.read()).decode("ascii")
        return outcome, error, time.monotonic() - start, back
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="local", help="HOST:PORT of a Ray cluster, or 'local' (a Ray started here)")
    parser.add_argument("--strata", required=True, help="the strata binary on the workers")
    parser.add_argument("--slots", type=int, default=1, help="trials at once")
    parser.add_argument("--cpus", type=int, default=None,
                        help="local: CPUs of the Ray started here (default --slots); at least the most threads a job asks for")
    args = parser.parse_args()

    # Ray and its workers print to stderr only: stdout carries the protocol.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    if args.address == "local":
        # Each task asks for its job's threads: a Ray with fewer CPUs would never schedule it.
        ray.init(num_cpus=max(args.slots, args.cpus or 0), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    else:
        ray.init(address=args.address, log_to_driver=False, logging_level="ERROR")

    def send(message):
        real_stdout.write(json.dumps(message) + "\n")
        real_stdout.flush()

    inbox = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            if line.strip():
                inbox.put(json.loads(line))
        inbox.put({"op": "close"})

    threading.Thread(target=read_stdin, daemon=True).start()
    send({"op": "ready", "slots": args.slots})
    running = {}
    closing = False
    while not closing or running:
        try:
            while True:
                message = inbox.get(timeout=0 if running else 0.2)
                if message["op"] == "close":
                    closing = True
                    break
                job = message["job"]
                task = ray.remote(num_cpus=max(1, int(job.get("threads", 1))))(run_trial)
                running[task.remote(job, message.get("files", {}), args.strata)] = job["id"]
        except queue.Empty:
            pass
        if not running:
            continue
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        for ref in ready:
            trial = running.pop(ref)
            try:
                outcome, error, wall, files = ray.get(ref)
            except Exception as e:  # the task itself failed (node lost, ...)
                outcome, error, wall, files = None, f"Ray task failed: {e}", 0.0, {}
            send({"op": "done", "id": trial, "outcome": outcome, "error": error, "wall": wall, "files": files})
    ray.shutdown()


if __name__ == "__main__":
    main()
