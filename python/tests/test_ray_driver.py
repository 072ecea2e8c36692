"""The Ray driver's warm worker (strata_ray.driver.TrialWorker) against a stand-in worker that
speaks the warm protocol (a job path per line on descriptor 3, `done N` back), without a Ray
cluster: one process serves several trials, a crash fails only its trial and the next trial gets a
new process, activation caches never come back, and a frozen prefix is kept per key."""
import base64
import json
import os
import signal
import stat

import pytest

pytest.importorskip("ray")
from strata_ray import driver  # noqa: E402

FAKE_WORKER = r'''#!/usr/bin/env python3
import json, os, signal, sys
channel = os.fdopen(3, "rb", buffering=0)
pending = b""
while True:
    chunk = channel.read(4096)
    if not chunk:
        break
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        path = line.decode()
        folder = os.path.dirname(path)
        with open(path) as f:
            job = json.load(f)
        if job["id"] == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        os.makedirs(os.path.join(folder, "run"), exist_ok=True)
        prefix = job.get("prefixPath")
        seen = {"pid": os.getpid(), "prefixPath": prefix,
                "cached": bool(prefix) and os.path.exists(prefix[:-len(".safetensors")] + ".activations")}
        if prefix:
            with open(prefix[:-len(".safetensors")] + ".activations", "wb") as f:
                f.write(b"big")
        with open(os.path.join(folder, "run", "seen.json"), "w") as f:
            json.dump(seen, f)
        with open(os.path.join(folder, "run", "layer.activations"), "wb") as f:
            f.write(b"big")
        with open(os.path.join(folder, "outcome.json"), "w") as f:
            json.dump({"id": job["id"], "status": "finished"}, f)
        os.write(3, b"done 0\n")
'''


@pytest.fixture
def worker(tmp_path, monkeypatch):
    # $STRATA_BIN (set by CI for the other tests) would win over the stand-in.
    monkeypatch.delenv("STRATA_BIN", raising=False)
    script = tmp_path / "worker.py"
    script.write_text(FAKE_WORKER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return driver.TrialWorker(str(script))


def job(trial, key=None):
    j = {"id": trial, "threads": 1, "directory": "/elsewhere", "device": "cpu"}
    if key:
        j["prefixKey"] = key
    return j


def seen(files):
    return json.loads(base64.b64decode(files["run/seen.json"]))


def test_one_warm_process_serves_trials_and_a_crash_fails_only_its_trial(worker):
    outcome, error, _, files, started = worker.run(job("a"), {})
    assert error is None and outcome == {"id": "a", "status": "finished"}
    assert started == 1
    # Activation caches stay on the node; the trial's other files come back.
    assert "run/layer.activations" not in files and "outcome.json" in files and "job.json" not in files
    first = seen(files)["pid"]
    outcome, error, _, files, started = worker.run(job("b"), {})
    assert outcome["id"] == "b" and started == 1 and seen(files)["pid"] == first

    outcome, error, _, files, started = worker.run(job("crash"), {})
    assert outcome is None and error.startswith(f"worker killed by signal {int(signal.SIGKILL)}")
    outcome, error, _, files, started = worker.run(job("c"), {})
    assert outcome["id"] == "c" and error is None
    assert started == 2 and seen(files)["pid"] != first


def test_a_frozen_prefix_is_kept_with_its_activations_between_trials(worker):
    prefix = {"prefix.safetensors": base64.b64encode(b"weights").decode()}
    _, _, _, files, _ = worker.run(job("a", key="k1"), prefix)
    first = seen(files)
    assert first["prefixPath"] == os.path.join(worker.prefixes, "k1.safetensors") and not first["cached"]
    assert "prefix.safetensors" not in files and not any(name.endswith(".activations") for name in files)
    _, _, _, files, _ = worker.run(job("b", key="k1"), prefix)
    assert seen(files)["cached"], "the second trial on the prefix finds its activation cache"
    # Beyond the few most recent keys, the oldest prefix and its cache go.
    for i in range(2, 2 + driver.PREFIXES_KEPT):
        worker.run(job(f"t{i}", key=f"k{i}"), prefix)
    assert not os.path.exists(os.path.join(worker.prefixes, "k1.safetensors"))
    assert not os.path.exists(os.path.join(worker.prefixes, "k1.activations"))


def test_what_travels_back():
    assert driver.sent_back("run/best.safetensors") and driver.sent_back("stdout.log") and driver.sent_back("outcome.json")
    for rel in ("prefix.activations", "run/x.activations", "job.json", "prefix.safetensors", ".trial.lock"):
        assert not driver.sent_back(rel), rel
