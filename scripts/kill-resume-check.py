#!/usr/bin/env python3
"""Checks a run directory written by a killed-and-resumed strata run against the same run left
uninterrupted (scripts/kill-resume.sh). Compares TENSORS of the manifest's last and best
checkpoints (names, dtypes, shapes, bytes), not files: a grow checkpoint's metadata holds wall-clock
seconds, so two clean runs already differ byte-wise. Also checks the directory is consistent:
manifest complete, every file it names present and readable, last/best links pointing at them,
every checkpoint file parseable, no temporary file left, metrics equal apart from timings.
With --killed DIR, checks only the directory as the kill left it (before resuming).
With --search DIR REF, checks a stopped-and-resumed search directory against an uninterrupted one:
per trial (last journal line) its status, validation loss and accuracy, test accuracy, the donor it
used and the layers it reused; no trial failed; the last session ended complete.
Prints one line; exit 0 when identical, 1 when it differs, 2 when corrupt or lost."""
import json, os, struct, sys

TIMING_KEYS = {"seconds", "imagesPerSecond", "totalSeconds"}

def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if end > len(body) or b > end:
            raise ValueError(f"{path}: tensor {name} runs past the end of the file")
        out[name] = (e["dtype"], tuple(e["shape"]), body[b:end])
    return out, header.get("__metadata__", {})

def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in TIMING_KEYS}
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o

def metrics(d):
    p = os.path.join(d, "metrics.jsonl")
    return [strip(json.loads(l)) for l in open(p)] if os.path.exists(p) else []

def check(run, ref):
    m = json.load(open(os.path.join(run, "manifest.json")))
    r = json.load(open(os.path.join(ref, "manifest.json")))
    if m["status"] != "complete":
        return 2, f"manifest status {m['status']}"
    for key in ("last", "best"):
        if (m.get(key) is None) != (r.get(key) is None):
            return 2, f"manifest {key}: {m.get(key)} vs reference {r.get(key)}"
        if m.get(key) is None:
            continue
        path = os.path.join(run, m[key]["file"])
        if not os.path.exists(path):
            return 2, f"{key} checkpoint {m[key]['file']} is missing"
        link = os.path.join(run, key + ".safetensors")
        if os.path.islink(link) and os.readlink(link) != m[key]["file"]:
            return 2, f"{key}.safetensors -> {os.readlink(link)}, manifest says {m[key]['file']}"
        if m[key]["epoch"] != r[key]["epoch"]:
            return 1, f"{key} is epoch {m[key]['epoch']}, reference {r[key]['epoch']}"
        a, _ = tensors(path)
        b, _ = tensors(os.path.join(ref, r[key]["file"]))
        if a.keys() != b.keys():
            return 1, f"{key}: tensor names differ"
        for name in a:
            if a[name] != b[name]:
                return 1, f"{key}: tensor {name} differs"
    for name in os.listdir(run):
        if ".tmp-" in name:
            return 2, f"temporary file {name} left"
        if name.endswith(".safetensors"):
            try:
                tensors(os.path.join(run, name))
            except Exception as e:  # a torn or corrupt checkpoint
                return 2, f"{name} is corrupt: {e}"
    if metrics(run) != metrics(ref):
        return 1, "metrics.jsonl differs (timings aside)"
    return 0, f"identical (last epoch {m['last']['epoch']}, best epoch {(m.get('best') or {}).get('epoch')})"

def check_killed(run):
    """The directory right after the kill, before any resume: the manifest (if the run got that
    far) parses, every checkpoint it names exists and parses, and holds the epoch it says."""
    mp = os.path.join(run, "manifest.json")
    if not os.path.exists(mp):
        ckpts = [n for n in os.listdir(run) if n.startswith("epoch-")] if os.path.isdir(run) else []
        return 0, f"no manifest yet ({len(ckpts)} unnamed checkpoint files)"
    m = json.load(open(mp))
    for key in ("last", "best"):
        ref = m.get(key)
        if ref is None:
            continue
        path = os.path.join(run, ref["file"])
        if not os.path.exists(path):
            return 2, f"{key} checkpoint {ref['file']} named by the manifest is lost"
        _, meta = tensors(path)
        epoch = json.loads(meta["strata"])["epoch"]
        if epoch != ref["epoch"]:
            return 2, f"{key}: {ref['file']} holds epoch {epoch}, the manifest says {ref['epoch']}"
    return 0, f"manifest at epoch {m['epoch']} consistent"

# A journal's StudyEvent lines ("format": 1) as the trial records of the format before them.
EVENT_STATUS = {"proposed": "running", "started": "running", "rung": "running"}

def search_record(r):
    if "format" not in r:
        return r
    return dict(r, id=r["trial"], status=EVENT_STATUS.get(r["event"], r["event"]))

def search_results(path):
    last = {}
    with open(os.path.join(path, "journal.jsonl")) as f:
        for line in f:
            if line.endswith("\n"):
                r = search_record(json.loads(line))
                last[r["id"]] = r
    # A search with --pruner: a trial's rungs and validation loss per epoch too.
    keys = ("status", "validation_loss", "validation_accuracy", "test_accuracy", "donor", "reuse_layers", "epochs",
            "values", "rungs")
    return {i: tuple(r.get(k) for k in keys) for i, r in last.items()}

def check_search(run, ref):
    got, want = search_results(run), search_results(ref)
    if set(got) != set(want):
        return 2, f"trials {sorted(set(want) - set(got))} lost, {sorted(set(got) - set(want))} extra"
    failed = [i for i, r in got.items() if r[0] not in ("finished", "pruned")]
    if failed:
        return 1, f"{len(failed)} trials not finished: {failed[:3]}"
    sessions = [json.loads(l) for l in open(os.path.join(run, "sessions.jsonl"))]
    if not sessions or sessions[-1].get("end", "complete") != "complete":
        return 2, f"the last session did not end complete: {sessions[-1:] }"
    diff = [i for i in want if got[i] != want[i]]
    if diff:
        i = diff[0]
        return 1, f"{len(diff)} of {len(want)} trials differ, e.g. {i}: {got[i]} vs {want[i]}"
    ends = ",".join(s.get("end", "complete") for s in sessions)
    return 0, f"identical ({len(want)} trials, donors included; sessions {ends})"

if __name__ == "__main__":
    try:
        if sys.argv[1] == "--killed":
            code, text = check_killed(sys.argv[2])
        elif sys.argv[1] == "--search":
            code, text = check_search(sys.argv[2], sys.argv[3])
        else:
            code, text = check(sys.argv[1], sys.argv[2])
    except Exception as e:
        code, text = 2, f"unreadable: {e}"
    print(text)
    sys.exit(code)
