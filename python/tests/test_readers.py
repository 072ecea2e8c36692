"""The run, search and hpo readers on the committed fixtures (made by make_fixtures.py with a
real strata binary; JSON files only) and on damaged copies of them."""
import json
import math
import os

import pandas as pd
import pytest

import strata
from conftest import FIXTURES, copy_fixture


# MARK: run directories

def test_run_metrics_summary_config_manifest():
    run = strata.load_run(os.path.join(FIXTURES, "run"))
    assert (run.kind, run.status) == ("train", "complete")
    assert list(run.metrics["epoch"]) == [1, 2]
    assert run.metrics["validationAccuracy"].tolist() == pytest.approx([0.20833333333333334, 0.16666666666666666])
    # Nested objects flattened with dots; every epoch's FLOPs add up to its training FLOPs.
    assert "flops.total.forward" in run.metrics.columns
    assert (run.metrics["flops.executed"] == run.metrics["trainingFlops"]).all()
    assert run.metrics["cumulativeTrainingFlops"].iloc[-1] == run.summary["cumulativeTrainingFlops"]
    assert run.summary["testAccuracy"] == pytest.approx(0.21666666666666667)
    assert run.config["model"]["cnn"]["filters"] == [4, 4]
    assert run.manifest["metricsLines"] == 2
    assert run.checkpoints.empty  # the fixture keeps no checkpoint files
    # best and last come from the manifest, as `strata eval RUN --checkpoint best|last`.
    assert os.path.basename(run.checkpoint_path("best")) == "epoch-0001.safetensors"
    assert os.path.basename(run.checkpoint_path("last")) == "epoch-0002.safetensors"
    with pytest.raises(ValueError, match="which"):
        run.checkpoint_path("newest")
    assert "2 epochs" in repr(run)


def test_run_metrics_follow_the_manifest(tmp_path):
    # A line past manifest.metricsLines is an epoch that was never checkpointed (killed run).
    path = copy_fixture("run", tmp_path)
    with open(os.path.join(path, "metrics.jsonl")) as f:
        last = json.loads(f.read().splitlines()[-1])
    last.update(epoch=3, validationLoss="nan", trainLoss="inf")
    with open(os.path.join(path, "metrics.jsonl"), "a") as f:
        f.write(json.dumps(last) + "\n" + '{"epoch": 4, "trainLo')  # and a torn append
    assert len(strata.load_run(path).metrics) == 2
    everything = strata.load_run(path, all_metrics=True).metrics
    assert list(everything["epoch"]) == [1, 2, 3]  # the torn last line is left out
    assert math.isnan(everything["validationLoss"].iloc[2]) and everything["trainLoss"].iloc[2] == math.inf
    assert everything["validationLoss"].dtype == float


def test_run_checkpoints_listed_and_chosen(tmp_path):
    path = copy_fixture("run", tmp_path)
    for epoch in (1, 2):
        open(os.path.join(path, f"epoch-{epoch:04d}.safetensors"), "wb").close()
    run = strata.load_run(path)
    assert run.checkpoints[["epoch", "best", "last"]].values.tolist() == [[1, True, False], [2, False, True]]
    assert run.checkpoint_path(2).endswith("epoch-0002.safetensors")
    with pytest.raises(strata.StrataFileError, match="no checkpoint of epoch 7"):
        run.checkpoint_path(7)


def test_run_without_manifest_uses_the_links(tmp_path):
    path = copy_fixture("run", tmp_path)
    os.remove(os.path.join(path, "manifest.json"))
    run = strata.load_run(path)
    assert run.status is None and len(run.metrics) == 2
    with pytest.raises(strata.StrataFileError, match="no manifest.json, best.safetensors or last.safetensors"):
        run.checkpoint_path()
    open(os.path.join(path, "last.safetensors"), "wb").close()
    assert run.checkpoint_path("best").endswith("last.safetensors")  # no best: the last one


def test_bad_run_directories(tmp_path):
    with pytest.raises(strata.StrataFileError, match="not a directory"):
        strata.load_run(tmp_path / "missing")
    with pytest.raises(strata.StrataFileError, match="not a Strata run directory"):
        strata.load_run(tmp_path)
    path = copy_fixture("run", tmp_path)
    with open(os.path.join(path, "metrics.jsonl"), "r+") as f:
        lines = f.read().splitlines()
        f.seek(0)
        f.write("\n".join([lines[0], "{broken", lines[1]]) + "\n")
    with pytest.raises(strata.StrataFileError, match=r"metrics.jsonl: line 2: not valid JSON"):
        strata.load_run(path)
    with open(os.path.join(path, "summary.json"), "w") as f:
        f.write("{")
    with pytest.raises(strata.StrataFileError, match=r"summary.json: not valid JSON"):
        strata.load_run(path)


# MARK: search directories

def test_search_trials_frame():
    search = strata.load_search(os.path.join(FIXTURES, "search"))
    assert search.reuse == "paper"
    trials = search.trials
    assert len(trials) == 2 and list(trials.columns[:4]) == ["id", "status", "validation_loss", "validation_accuracy"]
    assert (trials["status"] == "finished").all()
    assert trials["params_conv_layers"].tolist() == [1, 2]
    assert trials["params_hidden"].tolist() == [[8], [8]]
    # The two-layer trial reused the one-layer trial's first layer.
    two = trials.set_index("params_conv_layers").loc[2]
    assert two["donor"] == trials.set_index("params_conv_layers").loc[1, "id"] and two["reuse_layers"] == 1
    assert pd.isna(trials.set_index("params_conv_layers").loc[1, "donor"])
    assert (trials["cpu_seconds"] > 0).all()  # from each trial's outcome.json
    assert trials["flops_skipped"].sum() == search.summary["flops_skipped"]
    assert search.best()["id"] == search.summary["best"]["id"]
    run = search.trial_run(two["id"])
    assert run.status == "complete" and len(run.metrics) == 2


def test_search_retries_and_running_trials(tmp_path):
    path = copy_fixture("search", tmp_path)
    journal = os.path.join(path, "journal.jsonl")
    with open(journal) as f:
        first = json.loads(f.readline())
    retried = dict(first, attempt=2, status="failed", error="worker killed by signal 9", validation_loss=None)
    with open(journal, "a") as f:
        f.write(json.dumps(retried) + "\n")
    # A trial started but not journaled: a folder with its job.json only.
    os.makedirs(os.path.join(path, "trials", "00000000000000aa"))
    with open(os.path.join(path, "trials", first["id"], "job.json")) as f:
        job = json.load(f)
    job["trial"]["conv_layers"] = 3
    with open(os.path.join(path, "trials", "00000000000000aa", "job.json"), "w") as f:
        json.dump(job, f)
    search = strata.load_search(path)
    assert len(search.journal) == 3  # every line, both attempts
    trials = search.trials.set_index("id")
    assert trials.loc[first["id"], "attempt"] == 2 and trials.loc[first["id"], "status"] == "failed"
    assert trials.loc["00000000000000aa", "status"] == "running"
    assert trials.loc["00000000000000aa", "params_conv_layers"] == 3
    assert search.best()["id"] != first["id"]  # a failed trial is nobody's best


def test_search_with_a_pruner(tmp_path):
    # `strata search --pruner asha`: started (running, no values), promoted at rung 1 (running),
    # then finished or pruned; the last line is the trial's state.
    path = copy_fixture("search", tmp_path)
    journal = os.path.join(path, "journal.jsonl")
    with open(journal) as f:
        lines = [json.loads(line) for line in f]
    a, b = lines[0], lines[1]
    rows = [dict(a, status="running", values=[], rungs=[], validation_loss=None, epochs=0),
            dict(a, status="running", values=[1.5], rungs=[1], validation_loss=1.5, epochs=1),
            dict(b, status="running", values=[], rungs=[], validation_loss=None, epochs=0),
            dict(b, status="pruned", values=[2.5], rungs=[1], validation_loss=2.5, epochs=1),
            dict(a, status="finished", values=[1.5, 1.25], rungs=[1, 2], validation_loss=1.25, epochs=2)]
    with open(journal, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    search = strata.load_search(path)
    trials = search.trials.set_index("id")
    assert trials.loc[a["id"], "status"] == "finished" and trials.loc[a["id"], "rungs"] == [1, 2]
    assert trials.loc[b["id"], "status"] == "pruned" and trials.loc[b["id"], "epochs"] == 1
    assert search.best()["id"] == a["id"]  # a pruned trial is nobody's best
    assert list(search.journal["status"]) == ["running", "running", "running", "pruned", "finished"]


def test_side_by_side_searches(tmp_path):
    root = tmp_path / "cmp"
    root.mkdir()
    copy_fixture("search", root)
    os.rename(root / "search", root / "paper")
    with pytest.raises(strata.StrataFileError, match="side-by-side search of paper"):
        strata.load_search(root)
    parts = strata.load_searches(root)
    assert list(parts) == ["paper"] and len(parts["paper"].trials) == 2
    with pytest.raises(strata.StrataFileError, match="not a search directory"):
        strata.load_searches(tmp_path)


# MARK: hpo directories

def test_hpo_trials_frame():
    hpo = strata.load_hpo(os.path.join(FIXTURES, "hpo"))
    trials = hpo.trials
    assert trials["number"].tolist() == [0, 1, 2, 3]
    assert trials["status"].tolist() == ["complete", "pruned", "complete", "pruned"]
    # Choices are text in the journal ("16"); numbers come back as numbers.
    assert trials["params_batch_size"].tolist() == [16, 32, 16, 32]
    assert trials["params_optimizer"].tolist() == ["sgd", "sgd", "adam", "adam"]
    assert trials["params_lr"].dtype == float
    assert trials["epochs"].tolist() == [3, 1, 3, 1]
    assert trials["rungs"].tolist() == [[1, 3], [1], [1, 3], [1]]
    # value: minimised (minus the accuracy); score: the accuracy itself.
    assert (trials["score"] == -trials["value"]).all()
    best = trials.loc[trials["status"] == "complete", "score"].idxmax()
    assert trials.loc[best, "number"] == hpo.summary["bestTrial"]
    assert trials.loc[best, "score"] == pytest.approx(hpo.summary["bestScore"])
    assert hpo.best_params == {"batch_size": 16, "lr": pytest.approx(0.0017908273941707015), "optimizer": "adam"}
    assert len(hpo.journal) == 10  # proposed, promoted and ended lines of the four trials
    assert [e["status"] for e in hpo.final] == ["started", "finished"]
    assert hpo.final_state["testAccuracy"] == hpo.summary["finalTestAccuracy"]
    assert hpo.final_run().summary["testAccuracy"] == hpo.summary["finalTestAccuracy"]
    assert len(hpo.trial_run(2).metrics) == 3


def test_hpo_learning_curves():
    hpo = strata.load_hpo(os.path.join(FIXTURES, "hpo"))
    curves = hpo.learning_curves()
    assert len(curves) == hpo.trials["epochs"].sum()
    zero = curves[curves["number"] == 0]
    assert zero["epoch"].tolist() == [1, 2, 3] and zero["rung"].tolist() == [True, False, True]
    assert zero["value"].tolist() == hpo.trials.loc[0, "values"]
    assert (curves["score"] == -curves["value"]).all()  # the objective is accuracy


def test_hpo_running_and_bad_journal(tmp_path):
    path = copy_fixture("hpo", tmp_path)
    journal = os.path.join(path, "journal.jsonl")
    with open(journal) as f:
        lines = f.read().splitlines()
    # Cut after trial 3 was proposed: it is running, nothing final yet.
    with open(journal, "w") as f:
        f.write("\n".join(lines[:9]) + "\n")
    os.remove(os.path.join(path, "summary.json"))
    hpo = strata.load_hpo(path)
    assert hpo.trials.set_index("number").loc[3, "status"] == "running"
    assert math.isnan(hpo.trials.set_index("number").loc[3, "value"])
    assert hpo.final == [] and hpo.final_state is None and hpo.summary is None and hpo.best_params is None
    with open(journal, "a") as f:
        f.write('{"event": "party"}\n')
    with pytest.raises(strata.StrataFileError, match="line 10: unknown event 'party'"):
        strata.load_hpo(path)


def test_not_hpo_directories(tmp_path):
    with pytest.raises(strata.StrataFileError, match="not an hpo directory"):
        strata.load_hpo(tmp_path)
    for part in ("proxy", "full"):
        copy_fixture("hpo", tmp_path)
        os.rename(tmp_path / "hpo", tmp_path / part)
    with pytest.raises(strata.StrataFileError, match="--compare-full directory"):
        strata.load_hpo(tmp_path)


# MARK: the journal's formats

_EVENT = {"finished": "finished", "complete": "finished", "failed": "failed", "pruned": "pruned"}
_SNAKE_HPO = {"validationAccuracy": "validation_accuracy", "validationLoss": "validation_loss",
              "wallSeconds": "wall_seconds", "cpuSeconds": "cpu_seconds", "testAccuracy": "test_accuracy",
              "testLoss": "test_loss", "fromEpoch": "from_epoch"}


def _as_event(line):
    """A line of the journal format before StudyEvent written as the event strata writes now."""
    if "id" in line:  # search
        out = {k: v for k, v in line.items() if k not in ("id", "status")}
        running = "started" if not line.get("values") else "rung"
        out.update(format=1, trial=line["id"], event=_EVENT.get(line["status"], running))
        return out
    out = {_SNAKE_HPO.get(k, k): v for k, v in line.items() if k not in ("trial", "status", "event")}
    out.update(format=1, number=line["trial"], trial=f"trial-{line['trial']:04d}")
    if line.get("event") == "final":
        out["event"] = "final_" + line["status"]
    else:
        out["event"] = _EVENT.get(line["status"], "rung" if line.get("values") else "proposed")
        out["values"] = [None if v == "nan" else v for v in line.get("values", [])]
    return out


@pytest.mark.parametrize("kind", ["search", "hpo"])
def test_event_journal_reads_as_the_older_format(tmp_path, kind):
    # The committed fixtures hold the older format (a state line per event); the same journal
    # as StudyEvent lines ("format": 1) gives the same trials, and a newer format is refused.
    path = copy_fixture(kind, tmp_path)
    load = strata.load_search if kind == "search" else strata.load_hpo
    before = load(path)
    journal = os.path.join(path, "journal.jsonl")
    with open(journal) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    with open(journal, "w") as f:
        f.write("".join(json.dumps(_as_event(line)) + "\n" for line in lines))
    after = load(path)
    columns = ["id", "status", "validation_loss", "test_accuracy", "donor", "attempt"] if kind == "search" else \
        ["number", "status", "value", "score", "epochs", "rungs", "params_lr", "params_optimizer"]
    pd.testing.assert_frame_equal(after.trials[columns], before.trials[columns])
    if kind == "hpo":
        assert [e["status"] for e in after.final] == [e["status"] for e in before.final]
        assert after.final_state["testAccuracy"] == before.final_state["testAccuracy"]
    with open(journal, "a") as f:
        f.write(json.dumps(dict(_as_event(lines[0]), format=2)) + "\n")
    with pytest.raises(strata.StrataFileError, match="format 2 is not one this reader knows"):
        load(path)
