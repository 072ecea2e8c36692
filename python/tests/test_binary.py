"""Run, search and hpo directories made afresh by the strata binary (skipped without one):
checkpoints read into numpy agree with `strata eval` through a numpy forward pass, and with
torch the twin models load strictly and agree too; the bench scripts still work."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import strata
from strata import twin
from conftest import REPO, run_strata, write_safetensors
from make_fixtures import make_all

EVAL = re.compile(r"test accuracy ([0-9.]+)%, loss (\S+) on (\d+) images")
RESNETS = {"resnet8-A": {"depth": 8, "width": 4, "shortcut": "A"},
           "resnet8-B": {"depth": 8, "width": 4, "shortcut": "B"}}


@pytest.fixture(scope="session")
def made(strata_bin, tmp_path_factory):
    """{"run", "search", "hpo", "data", "resnet8-A", "resnet8-B"}: directories made by the binary."""
    work = str(tmp_path_factory.mktemp("made"))
    out = make_all(strata_bin, work)
    out["data"] = os.path.join(work, "data")
    for name, options in RESNETS.items():
        spec = os.path.join(work, name + ".json")
        with open(spec, "w") as f:
            json.dump({"family": "resnet", "classes": 10, "input": {"channels": 3, "height": 32, "width": 32},
                       "resnet": options}, f)
        out[name] = os.path.join(work, name)
        run_strata(strata_bin, "train", "--model-spec", spec, "--data", out["data"], "--epochs", "1",
                   "--optimizer", "sgd", "--output", out[name])
    return out


def strata_eval(binary, run, data):
    """(accuracy, loss, images) that `strata eval RUN` prints for the run's best checkpoint."""
    m = EVAL.search(run_strata(binary, "eval", run, "--data", data, "--device", "cpu"))
    assert m, "no result line from strata eval"
    return float(m.group(1)) / 100, float(m.group(2)), int(m.group(3))


def cifar_test(data, ckpt):
    """The test images normalised as the checkpoint's metadata says (N, 3, 32, 32), labels."""
    raw = np.fromfile(os.path.join(data, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    mean = np.array(ckpt.strata["normalizationMean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(ckpt.strata["normalizationStd"], dtype=np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std, raw[:, 0].astype(np.int64)


def assert_same_as_strata(logits, labels, theirs):
    """Accuracy within two images (near ties may flip) and mean loss to strata's 4 printed decimals."""
    accuracy, loss, count = theirs
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    ours_loss = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]))
    ours_accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    assert len(labels) == count
    assert abs(ours_accuracy - accuracy) <= 2 / count + 1e-9
    assert abs(ours_loss - loss) <= 1e-3 * max(1.0, abs(loss)) + 5e-5, (ours_loss, loss)


def numpy_cnn(ckpt, x):
    """The cnn family's forward in numpy (conv-ReLU-maxpool per layer, dense layers), from the
    checkpoint's own tensors: a check of the values, their order and layout without torch."""
    t, spec = ckpt.tensors, ckpt.model["cnn"]
    assert spec["padding"] == "same"
    for i in range(len(spec["filters"])):
        w, b = t[f"features.{3 * i}.weight"], t[f"features.{3 * i}.bias"]
        k = w.shape[-1]
        xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
        windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        x = np.maximum(np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None], 0)
        n, c, h, wd = x.shape
        x = x[:, :, :h // 2 * 2, :wd // 2 * 2].reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    x = x.reshape(len(x), -1)
    for j in range(len(spec["hidden"]) + 1):
        x = x @ t[f"classifier.{3 * j}.weight"].T + t[f"classifier.{3 * j}.bias"]
        if j < len(spec["hidden"]):
            x = np.maximum(x, 0)
    return x


def test_checkpoint_is_the_manifests_and_names_match_the_twin(made):
    for name in ("run", "resnet8-A", "resnet8-B"):
        run = strata.load_run(made[name])
        for which in ("best", "last"):
            ckpt = run.checkpoint(which)
            assert ckpt.epoch == run.manifest[which]["epoch"]
            assert ckpt.config["epochs"] == run.config["epochs"]
            expected = twin.state_dict_shapes(twin.build(ckpt.model))
            shapes = {k: v.shape for k, v in ckpt.state_dict().items()}
            assert shapes == {k: tuple(s) for k, s in expected.items()}, name
            assert twin.shape_mismatches(expected, shapes) == ([], [], [])
            assert all(np.isfinite(v).all() for v in ckpt.tensors.values())
            # Every trainable tensor has its optimizer slots beside it.
            trainable = {k for k in shapes if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
            assert set(ckpt.optimizer_state()) == trainable
        if name != "run":
            bn = ckpt.tensors["bn1.num_batches_tracked"]
            assert bn.dtype == np.int64 and bn.shape == () and bn > 0
    # Two epochs, two different checkpoints.
    run = strata.load_run(made["run"])
    assert len(run.checkpoints) == 2
    a, b = (run.checkpoint(e).tensors["features.0.weight"] for e in (1, 2))
    assert not np.array_equal(a, b)


def test_numpy_forward_agrees_with_strata_eval(strata_bin, made):
    ckpt = strata.load_run(made["run"]).checkpoint("best")
    x, labels = cifar_test(made["data"], ckpt)
    assert_same_as_strata(numpy_cnn(ckpt, x), labels, strata_eval(strata_bin, made["run"], made["data"]))


def test_numpy_forward_can_tell_a_wrong_layout(strata_bin, made):
    # The check above must be able to fail: transposed kernels give another loss.
    ckpt = strata.load_run(made["run"]).checkpoint("best")
    ckpt.tensors["features.0.weight"] = ckpt.tensors["features.0.weight"].transpose(0, 1, 3, 2).copy()
    x, labels = cifar_test(made["data"], ckpt)
    with pytest.raises(AssertionError):
        assert_same_as_strata(numpy_cnn(ckpt, x), labels, strata_eval(strata_bin, made["run"], made["data"]))


@pytest.mark.parametrize("name", ["run", "resnet8-A", "resnet8-B"])
def test_twin_loads_strictly_and_agrees_with_strata_eval(strata_bin, made, name):
    torch = pytest.importorskip("torch")
    run = strata.load_run(made[name])
    model = run.twin("best")
    assert isinstance(model, torch.nn.Module) and not model.training
    ckpt = run.checkpoint("best")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ckpt.tensors[key])
    x, labels = cifar_test(made["data"], ckpt)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    assert_same_as_strata(logits, labels, strata_eval(strata_bin, made[name], made["data"]))
    # From a Checkpoint object too (numpy arrays), same weights.
    again = strata.load_twin(ckpt)
    with torch.no_grad():
        np.testing.assert_array_equal(again(torch.from_numpy(x[:4])).numpy(), logits[:4])


def test_twin_refuses_a_checkpoint_that_does_not_match(made, tmp_path):
    pytest.importorskip("torch")
    ckpt = strata.load_run(made["resnet8-B"]).checkpoint("best")
    tensors = dict(ckpt.tensors)
    del tensors["layer2.0.downsample.1.running_var"]
    path = write_safetensors(str(tmp_path / "cut.safetensors"), tensors, ckpt.metadata)
    with pytest.raises(RuntimeError, match="running_var"):
        strata.load_twin(path)
    spec = dict(ckpt.model, resnet=dict(ckpt.model["resnet"], width=8))
    path = write_safetensors(str(tmp_path / "wide.safetensors"), ckpt.tensors, dict(ckpt.metadata, model=json.dumps(spec)))
    with pytest.raises(RuntimeError, match="size mismatch"):
        strata.load_twin(path)


def test_twin_without_torch_says_so():
    if twin.HAVE_TORCH:
        pytest.skip("torch is installed")
    with pytest.raises(ImportError, match="torch"):
        strata.load_twin("any.safetensors")


def bench(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bench", "torch", script), *args],
                          capture_output=True, text=True, timeout=600)


def test_bench_scripts_still_work(strata_bin, made):
    best = os.path.join(made["resnet8-A"], "best.safetensors")
    done = bench("check_load.py", best)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   names and shapes" in done.stdout
    done = bench("strict_load.py", best, "--data", made["data"], "--strata", strata_bin)
    assert done.returncode == 0, done.stdout + done.stderr
    if subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0:
        assert "ok   " + best + ": load_state_dict(strict=True)" in done.stdout
        assert re.search(r"ok   .*test set \(60 images\) in eval mode", done.stdout), done.stdout
    else:
        assert "SKIP" in done.stdout
    # And they can fail: a checkpoint whose spec says another width.
    ckpt = strata.load_run(made["resnet8-A"]).checkpoint("best")
    spec = dict(ckpt.model, resnet=dict(ckpt.model["resnet"], width=8))
    wrong = write_safetensors(os.path.join(made["resnet8-A"], "..", "wide.safetensors"), ckpt.tensors,
                              dict(ckpt.metadata, model=json.dumps(spec)))
    done = bench("check_load.py", wrong)
    assert done.returncode == 1 and "FAIL names and shapes" in done.stdout, done.stdout


def test_search_and_hpo_made_by_the_binary(made):
    search = strata.load_search(made["search"])
    assert len(search.trials) == search.summary["trials"] == 2
    assert (search.trials["status"] == "finished").sum() == search.summary["finished"]
    assert search.best()["id"] == search.summary["best"]["id"]
    for trial_id in search.trials["id"]:
        run = search.trial_run(trial_id)
        assert run.status == "complete" and len(run.checkpoints) >= 1
    hpo = strata.load_hpo(made["hpo"])
    counts = hpo.trials["status"].value_counts()
    assert len(hpo.trials) == hpo.summary["trials"]
    for status in ("complete", "pruned", "failed"):
        assert counts.get(status, 0) == hpo.summary[status]
    assert hpo.trials["epochs"].sum() == hpo.summary["trialEpochs"]
    best = hpo.trials[hpo.trials["status"] == "complete"].sort_values("score", ascending=False).iloc[0]
    assert best["number"] == hpo.summary["bestTrial"]
    assert hpo.best_params == {k[len("params_"):]: best[k] for k in best.index if k.startswith("params_")}
    assert hpo.final_state["status"] == "finished"
    final = hpo.final_run()
    assert final.summary["testAccuracy"] == hpo.summary["finalTestAccuracy"]
    assert final.checkpoint("last").model["family"] == "cnn"


def test_grow_run(strata_bin, made, tmp_path):
    out = str(tmp_path / "grow")
    run_strata(strata_bin, "grow", "--model", "cnn", "--filters", "4,4,4", "--hidden", "8", "--data", made["data"],
               "--max-epochs", "4", "--window", "2", "--output", out)
    run = strata.load_run(out)
    assert run.kind == "grow" and run.status == "complete"
    assert list(run.metrics["epoch"]) == [1, 2, 3, 4]
    assert "metrics.validationAccuracy" in run.metrics.columns  # grow nests each epoch's training metrics
    ckpt = run.checkpoint("last")
    assert isinstance(ckpt.info["grow"], dict) and ckpt.epoch == 4
    active = ckpt.model.get("activeStages")
    if active is not None and active < 3:
        with pytest.raises(ValueError, match="partly grown"):
            twin.build(ckpt.model)
