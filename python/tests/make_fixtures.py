#!/usr/bin/env python3
"""Regenerates tests/fixtures/{run,search,hpo} with a strata binary on a tiny synthetic
CIFAR-10 set (conftest.write_cifar), keeping the JSON files and dropping what is large or
machine-specific (checkpoints, logs, reports, locks, cached activations).

    python3 python/tests/make_fixtures.py [.build/release/strata]

The committed fixtures let the readers be tested without a binary; test_binary.py makes the
same kinds of directories afresh, checkpoints included, whenever a binary is there.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from conftest import REPO, write_cifar  # noqa: E402

KEEP = (".json", ".jsonl")

# The commands, shared with test_binary.py: tiny models, a couple of epochs, seconds in all.
TRAIN = ["train", "--model", "cnn", "--filters", "4,4", "--hidden", "8", "--epochs", "2"]
SEARCH_SPACE = ('{"grid": {"conv_layers": [1, 2], "filters": [4], "hidden": [[8]], "lr": [0.01], '
                '"batch_size": [16]}, "epochs": 2}')
SEARCH = ["search", "--reuse", "paper", "--validation-fraction", "0.25", "--workers", "1", "--threads", "1"]
HPO_SPACE = ('{"lr": {"low": 0.001, "high": 0.05, "log": true}, "batch_size": {"choices": [16, 32]}, '
             '"optimizer": {"choices": ["adam", "sgd"]}}')
HPO = ["hpo", "--model", "cnn", "--filters", "4,4", "--hidden", "8", "--trials", "4", "--epochs", "3",
       "--pruner", "asha", "--final-epochs", "1"]


def make_all(strata, work):
    """Runs train, search and hpo in `work`; returns {name: directory}."""
    data = write_cifar(os.path.join(work, "data"))
    with open(os.path.join(work, "search-space.json"), "w") as f:
        f.write(SEARCH_SPACE)
    with open(os.path.join(work, "hpo-space.json"), "w") as f:
        f.write(HPO_SPACE)
    out = {name: os.path.join(work, name) for name in ("run", "search", "hpo")}
    commands = [TRAIN + ["--data", data, "--output", out["run"]],
                SEARCH + ["--space", os.path.join(work, "search-space.json"), "--data", data, "--output", out["search"]],
                HPO + ["--space", os.path.join(work, "hpo-space.json"), "--data", data, "--output", out["hpo"]]]
    for args in commands:
        subprocess.run([strata] + args, check=True, stdout=subprocess.DEVNULL)
    return out


def main():
    strata = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, ".build", "release", "strata")
    with tempfile.TemporaryDirectory() as work:
        for name, source in make_all(strata, work).items():
            target = os.path.join(HERE, "fixtures", name)
            shutil.rmtree(target, ignore_errors=True)
            for root, _, files in os.walk(source):
                for file in files:
                    if file.endswith(KEEP) and not file.startswith("."):
                        rel = os.path.relpath(os.path.join(root, file), source)
                        os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
                        shutil.copyfile(os.path.join(root, file), os.path.join(target, rel))
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
