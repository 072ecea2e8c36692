"""The Ray side of `strata search --engine ray` and `strata hpo --engine ray`.

The Swift search starts `python -m strata_ray.driver --address ADDR --strata BIN --slots N` and talks
to it in JSON lines:

  stdin   {"op": "submit", "job": <TrialJob>, "files": {"<relative path>": "<base64>"}}
  stdout  {"op": "ready", "slots": N}
          {"op": "done", "id": ID, "outcome": <TrialOutcome> | null, "error": TEXT | null,
           "wall": SECONDS, "files": {"<relative path>": "<base64>"}}

Warm (the default): trials run on Ray actors, one per worker slot (num_cpus = the job's threads,
num_gpus = --gpus-per-trial), each holding a long-lived `strata search-worker` process that it
sends job paths to over a socket at the worker's descriptor 3, exactly as the local engine's
ProcessExecutor does (see Sources/Trainer/Worker/WarmWorker.swift): the decoded dataset, its
split, the backends' plans and compiled kernels stay warm from trial to trial on a node. An actor
whose worker dies records the trial as a cold worker dying the same way would be recorded, and
starts a new worker for its next trial. A frozen prefix is kept in the actor's own cache folder
(by its key, the few most recently used), so its cached activations (`<key>.activations`) serve
the next trial on that actor that freezes the same prefix.
Cold (`STRATA_COLD_WORKERS=1` in the search's environment): each trial is one Ray task running
`strata search-trial job.json`, as before warm workers.

Either way a trial runs in a temporary folder on whichever node Ray picks: the files sent with
the job (the donor's frozen prefix as `prefix.safetensors`, and the run directory of an
interrupted trial) are written there first, and every file the trial wrote comes back in the
answer, except activation caches (`*.activations`: large, and rebuilt where needed), so the
driver and the workers need no shared file system; prefixes and checkpoints travel in Ray's object
store as task arguments and results.
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
import socket
import subprocess
import sys
import tempfile
import threading
import time

import ray

# Files a trial folder never sends back: the job (the driver has it), the donor's prefix (sent
# in), and activation caches (big; a later trial on any node rebuilds what it needs).
KEPT_BACK = ("job.json", "prefix.safetensors")
# Prefixes (and their activation caches) an actor keeps between trials.
PREFIXES_KEPT = 4


def sent_back(rel):
    """Whether the file at `rel` (relative to the trial folder) goes back to the search."""
    name = os.path.basename(rel)
    return rel not in KEPT_BACK and not name.startswith(".") and not name.endswith(".activations")


def prepare(job, files, folder, prefix_path=None):
    """Writes the job's files into `folder` and its job.json; returns the job.json path."""
    for rel, b64 in files.items():
        if rel == "prefix.safetensors" and prefix_path:
            continue
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(b64))
    job = dict(job)
    job["directory"] = folder
    if prefix_path:
        job["prefixPath"] = prefix_path
    elif "prefix.safetensors" in files:
        job["prefixPath"] = os.path.join(folder, "prefix.safetensors")
    path = os.path.join(folder, "job.json")
    with open(path, "w") as f:
        json.dump(job, f)
    return path


def collect(folder, returncode):
    """(outcome or None, error or None, files to send back) of a trial that ran in `folder`."""
    outcome, error = None, None
    try:
        with open(os.path.join(folder, "outcome.json")) as f:
            outcome = json.load(f)
    except OSError:
        try:
            with open(os.path.join(folder, "stderr.log"), "rb") as f:
                tail = f.read()[-600:].decode("utf-8", "replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        error = f"worker {how}" + (": " + " | ".join(tail) if tail else "")
    back = {}
    for root, _, names in os.walk(folder):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), folder)
            if not sent_back(rel):
                continue
            with open(os.path.join(root, name), "rb") as f:
                back[rel] = base64.b64encode(f.read()).decode("ascii")
    return outcome, error, back


def run_trial(job, files, strata):
    """Cold: runs one trial in a fresh folder with a fresh `strata search-trial` process;
    returns (outcome or None, error or None, wall, files)."""
    start = time.monotonic()
    folder = tempfile.mkdtemp(prefix="strata-trial-")
    try:
        job_path = prepare(job, files, folder)
        binary = os.environ.get("STRATA_BIN", strata)
        with open(os.path.join(folder, "stdout.log"), "ab") as out, open(os.path.join(folder, "stderr.log"), "ab") as err:
            rc = subprocess.run([binary, "search-trial", job_path], stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
        outcome, error, back = collect(folder, rc)
        return outcome, error, time.monotonic() - start, back
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_status_to_returncode(status):
    """A waitpid status as subprocess's returncode (negative: killed by that signal)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


class TrialWorker:
    """A Ray actor's body: one warm `strata search-worker` process, serving trial after trial."""

    def __init__(self, strata):
        self.binary = os.environ.get("STRATA_BIN", strata)
        self.pid = None
        self.socket = None
        self.started = 0
        self.prefixes = tempfile.mkdtemp(prefix="strata-prefixes-")
        self.recent = []   # prefix keys, least recently used first

    def start(self):
        """Starts the worker with its end of a new socket pair as descriptor 3."""
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        extra = None
        if fd == 3:   # dup2(3, 3) would keep close-on-exec: move it first
            extra = os.dup(fd)
            fd = extra
        env = dict(os.environ)
        env["STRATA_SEARCH_PARENT"] = str(os.getpid())   # the worker ends with this actor
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fd, 3)]
        try:
            self.pid = os.posix_spawn(self.binary, [self.binary, "search-worker"], env, file_actions=actions)
        finally:
            theirs.close()
            if extra is not None:
                os.close(extra)
        self.socket = mine
        self.started += 1

    def retire(self):
        """Closes the socket and reaps the worker; its returncode (None when none ran)."""
        if self.pid is None:
            return None
        self.socket.close()
        _, status = os.waitpid(self.pid, 0)
        self.pid, self.socket = None, None
        return wait_status_to_returncode(status)

    def prefix_path(self, job, files):
        """The job's frozen prefix in this actor's cache (written there once per key), or None."""
        key = job.get("prefixKey")
        if "prefix.safetensors" not in files or not key or "/" in key or key.startswith("."):
            return None
        path = os.path.join(self.prefixes, key + ".safetensors")
        if not os.path.exists(path):
            partial = path + ".partial"
            with open(partial, "wb") as f:
                f.write(base64.b64decode(files["prefix.safetensors"]))
            os.replace(partial, path)
        if key in self.recent:
            self.recent.remove(key)
        self.recent.append(key)
        for old in self.recent[:-PREFIXES_KEPT]:
            for suffix in (".safetensors", ".activations"):
                try:
                    os.remove(os.path.join(self.prefixes, old + suffix))
                except OSError:
                    pass
        self.recent = self.recent[-PREFIXES_KEPT:]
        return path

    def run(self, job, files):
        """Runs one trial on the warm worker; (outcome or None, error or None, wall, files, workers started)."""
        start = time.monotonic()
        folder = tempfile.mkdtemp(prefix="strata-trial-")
        try:
            job_path = prepare(job, files, folder, self.prefix_path(job, files))
            returncode = None
            # A worker found dead when handed the job is replaced once, as locally.
            for _ in range(2):
                if self.pid is None:
                    self.start()
                try:
                    self.socket.sendall((job_path + "\n").encode(), socket.MSG_NOSIGNAL)
                except OSError:
                    self.retire()
                    continue
                answer = b""
                while not answer.endswith(b"\n"):
                    try:
                        chunk = self.socket.recv(256)
                    except InterruptedError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    answer += chunk
                if answer.startswith(b"done ") and answer.endswith(b"\n"):
                    try:
                        returncode = int(answer[5:].strip())
                    except ValueError:
                        returncode = 1
                else:
                    # The worker died with the trial: the trial gets a dead cold worker's outcome,
                    # the next trial a new worker.
                    returncode = self.retire()
                break
            if returncode is None:
                returncode = 1
                with open(os.path.join(folder, "stderr.log"), "ab") as err:
                    err.write(b"strata: the warm worker ended as soon as it started\n")
            outcome, error, back = collect(folder, returncode)
            return outcome, error, time.monotonic() - start, back, self.started
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class ActorPool:
    """Warm actors, one per trial running at once: an idle one with the job's resources takes the
    next job; idle ones of other sizes are let go first so their CPUs (hpo's final job asks for all
    of them) are free for the new one."""

    def __init__(self, strata, gpus_per_trial):
        self.actor_class = ray.remote(TrialWorker)
        self.strata = strata
        self.gpus = gpus_per_trial
        self.idle = []   # (actor, threads)
        self.busy = {}   # ref -> (actor, threads)

    def submit(self, job, files):
        threads = max(1, int(job.get("threads", 1)))
        actor = None
        for i, (a, t) in enumerate(self.idle):
            if t == threads:
                actor = a
                del self.idle[i]
                break
        if actor is None:
            for a, _ in self.idle:
                ray.kill(a)
            self.idle = []
            actor = self.actor_class.options(num_cpus=threads, num_gpus=self.gpus).remote(self.strata)
        ref = actor.run.remote(job, files)
        self.busy[ref] = (actor, threads)
        return ref

    def finished(self, ref, ok):
        actor, threads = self.busy.pop(ref)
        if ok:
            self.idle.append((actor, threads))
        else:
            ray.kill(actor)   # lost (node gone, actor crashed): the next job gets a new one


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="local", help="HOST:PORT of a Ray cluster, or 'local' (a Ray started here)")
    parser.add_argument("--strata", required=True, help="the strata binary on the workers")
    parser.add_argument("--slots", type=int, default=1, help="trials at once")
    parser.add_argument("--cpus", type=int, default=None,
                        help="local: CPUs of the Ray started here (default --slots); at least the most threads a job asks for")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0,
                        help="the GPU share of each trial (1/N: N trials per GPU, Ray's fractional num_gpus)")
    args = parser.parse_args()
    warm = os.environ.get("STRATA_COLD_WORKERS") != "1"

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
    # The search's ray.log says how trials run.
    print(f"strata_ray: {args.slots} slots, " + ("warm actors (strata search-worker)" if warm else "a Ray task per trial (strata search-trial)"),
          file=sys.stderr, flush=True)
    send({"op": "ready", "slots": args.slots, "warm": warm})
    pool = ActorPool(args.strata, args.gpus_per_trial) if warm else None
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
                files = message.get("files", {})
                if warm:
                    ref = pool.submit(job, files)
                else:
                    task = ray.remote(num_cpus=max(1, int(job.get("threads", 1))), num_gpus=args.gpus_per_trial)(run_trial)
                    ref = task.remote(job, files, args.strata)
                running[ref] = job["id"]
        except queue.Empty:
            pass
        if not running:
            continue
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        for ref in ready:
            trial = running.pop(ref)
            try:
                outcome, error, wall, files = ray.get(ref)[:4]
                ok = True
            except Exception as e:  # the task or actor itself failed (node lost, ...)
                outcome, error, wall, files = None, f"Ray task failed: {e}", 0.0, {}
                ok = False
            if warm:
                pool.finished(ref, ok)
            send({"op": "done", "id": trial, "outcome": outcome, "error": error, "wall": wall, "files": files})
    ray.shutdown()


if __name__ == "__main__":
    main()
