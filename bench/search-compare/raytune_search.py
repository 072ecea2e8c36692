#!/usr/bin/env python3
"""The seed-000 architecture search as its users write it today: Ray Tune + PyTorch, one trial per
worker, every network trained from scratch (no reuse).

It trains the networks `strata search` trains for the same space file, with the same recipe:

- networks: Strata's `cnn` family (conv-ReLU-maxpool per layer, `filters` wide, `kernel` with
  same padding; dense ReLU layers of `hidden` units; a linear classifier), built by the PyTorch
  twin in python/strata/twin.py; weights He-normal (std sqrt(2 / fan_in)), biases zero, as
  Strata's `Initializer.heNormal`;
- data: the CIFAR-10 binary batches; validation is the same seeded 10% of the training images as
  Strata's `ImageDataset.split` (its Philox-4x32-10 Fisher-Yates permutation, reimplemented here
  and checked against a Strata checkpoint's normalisation by `--print-split-stats`); images
  scaled to [0, 1] and normalised per channel with the mean and population std of the training
  part; no augmentation (`strata search`'s default);
- training: the space's epochs, optimizer (Adam, PyTorch's defaults = Strata's), lr and batch
  size; shuffled every epoch, the last partial batch dropped; validation after each epoch; the
  trial's validation loss is its best epoch's, its test accuracy that of the epoch with the best
  validation accuracy (Strata's best checkpoint).

What differs, by nature: the random streams (initial weights, batch order) are PyTorch's, seeded
with the trial's seed, not Strata's Philox streams, so losses agree in distribution, not bit for bit.

    python raytune_search.py --space bench/search-measure-space.json --data DIR --output OUT.json \
        [--epochs N] [--workers 2] [--reuse-actors]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

# The PyTorch twins of Strata's models (python/strata/twin.py), for this process and Ray's workers.
PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")

MASK32 = 0xFFFFFFFF
SPLIT_STREAM = 0x5350_4C49_5400_0000  # Shuffle.splitStream, ASCII "SPLIT"


# MARK: Strata's data split and normalisation

def philox_block(seed, counter, index):
    """GPUTensor's Philox.block: 10 rounds of Philox-4x32 on (index, counter) with key seed."""
    c0, c1 = index & MASK32, (index >> 32) & MASK32
    c2, c3 = counter & MASK32, (counter >> 32) & MASK32
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK32, p1 & MASK32, ((p0 >> 32) ^ c3 ^ k1) & MASK32, p0 & MASK32
    return c0, c1, c2, c3


def permutation(count, seed, counter):
    """Shuffle.permutation: Fisher-Yates, step k draws a 64-bit word from Philox elements 2k, 2k+1."""
    order = list(range(count))
    k = 0
    for i in range(count - 1, 0, -1):
        b = philox_block(seed, counter, k >> 1)
        word = (b[0] << 32 | b[1]) if k & 1 == 0 else (b[2] << 32 | b[3])
        j = (word * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
        k += 1
    return order


def read_cifar(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 3,073-byte records")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def load_data(data_dir, seed, validation_fraction=0.1):
    """(train, validation, test) as float32 NCHW normalised tensors and int64 labels."""
    parts = [read_cifar(os.path.join(data_dir, f"data_batch_{i}.bin")) for i in range(1, 6)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    tx, ty = read_cifar(os.path.join(data_dir, "test_batch.bin"))
    n_val = int(np.floor(len(x) * validation_fraction + 0.5))   # Swift's .rounded(): half away from zero
    order = permutation(len(x), seed, SPLIT_STREAM)
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    fit = x[train_idx].astype(np.float64)
    mean = fit.mean(axis=(0, 2, 3)) / 255
    std = np.sqrt(np.maximum((fit ** 2).mean(axis=(0, 2, 3)) - (fit.mean(axis=(0, 2, 3))) ** 2, 0)) / 255

    def norm(images):
        f = images.astype(np.float32) / 255
        return (f - mean.astype(np.float32)[None, :, None, None]) / std.astype(np.float32)[None, :, None, None]

    return ((norm(x[train_idx]), y[train_idx]), (norm(x[val_idx]), y[val_idx]), (norm(tx), ty), (mean, std))


# MARK: One trial

def train_trial(config, data_dir=None):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if PYTHON_DIR not in sys.path:
        sys.path.insert(0, PYTHON_DIR)
    from strata import twin as models
    from ray import tune

    torch.set_num_threads(1)
    seed = int(config["seed"])
    (xtr, ytr), (xva, yva), (xte, yte), _ = load_data(data_dir, seed)
    xtr, ytr, xva, yva, xte, yte = map(torch.from_numpy, (xtr, ytr, xva, yva, xte, yte))
    torch.manual_seed(seed)
    spec = {"family": "cnn", "cnn": {"filters": [config["filters"]] * config["conv_layers"],
                                     "kernel": config["kernel"], "hidden": list(config["hidden"])}}
    model = models.build(spec)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, (2.0 / fan_in) ** 0.5)
            nn.init.zeros_(m.bias)
    lr = float(config["lr"])
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=lr),
           "sgd": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
           "rmsprop": lambda p: torch.optim.RMSprop(p, lr=lr)}[config["optimizer"]](model.parameters())
    batch = int(config["batch_size"])
    eval_batch = max(batch, 256)
    gen = torch.Generator().manual_seed(seed)

    def evaluate(x, y):
        model.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(x), eval_batch):
                out = model(x[i:i + eval_batch])
                loss += F.cross_entropy(out, y[i:i + eval_batch], reduction="sum").item()
                correct += (out.argmax(1) == y[i:i + eval_batch]).sum().item()
        return loss / len(x), correct / len(x)

    best_loss, best_acc, best_state = float("inf"), -1.0, None
    start = time.perf_counter()
    for epoch in range(1, int(config["epochs"]) + 1):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr) - batch + 1, batch):   # the last partial batch is dropped
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        val_loss, val_acc = evaluate(xva, yva)
        best_loss = min(best_loss, val_loss)
        if val_acc > best_acc:
            best_acc, best_state = val_acc, {k: v.clone() for k, v in model.state_dict().items()}
        metrics = {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc, "best_val_loss": best_loss,
                   "seconds": time.perf_counter() - start}
        if epoch == int(config["epochs"]):
            model.load_state_dict(best_state)
            metrics["test_acc"] = evaluate(xte, yte)[1]
        tune.report(metrics)


# MARK: The search

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", required=True, help="a `strata search` space file (model cnn, a grid)")
    ap.add_argument("--data", required=True, help="CIFAR-10 binary batches")
    ap.add_argument("--output", required=True, help="results JSON (one object per trial); must not exist")
    ap.add_argument("--epochs", type=int, help="epochs of every trial (default: the space's)")
    ap.add_argument("--workers", type=int, default=2, help="trials at once (one CPU, one thread each)")
    ap.add_argument("--reuse-actors", action="store_true", help="Ray Tune's reuse_actors=True (default False)")
    ap.add_argument("--print-split-stats", action="store_true", help="print the split's sizes and normalisation, run nothing")
    args = ap.parse_args()
    data_dir = os.path.abspath(args.data)
    with open(args.space) as f:
        space = json.load(f)
    if space.get("model", "cnn") != "cnn":
        sys.exit(f"{args.space}: model '{space['model']}': only the cnn family is covered")
    if args.print_split_stats:
        (xtr, _), (xva, _), (xte, _), (mean, std) = load_data(data_dir, int(space.get("seed", 0)))
        print(json.dumps({"train": len(xtr), "validation": len(xva), "test": len(xte),
                          "mean": mean.tolist(), "std": std.tolist()}))
        return
    if os.path.exists(args.output):
        sys.exit(f"--output {args.output} exists; choose a new file")

    import ray
    from ray import tune

    grid = space["grid"]
    param_space = {k: tune.grid_search(v) for k, v in grid.items()}
    param_space.update(epochs=args.epochs or space.get("epochs", 5), optimizer=space.get("optimizer", "adam"),
                       seed=space.get("seed", 0))
    for key, default in (("kernel", 3), ("filters", 18)):
        param_space.setdefault(key, default)
    ray.init(num_cpus=args.workers)
    storage = os.path.abspath(args.output + ".ray")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_trial, data_dir=data_dir), {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric="best_val_loss", mode="min", reuse_actors=args.reuse_actors),
        run_config=tune.RunConfig(storage_path=storage, name="seed000"))
    results = tuner.fit()
    trials = []
    for r in results:
        m = r.metrics or {}
        c = {k: r.config[k] for k in ("conv_layers", "filters", "kernel", "hidden", "lr", "batch_size", "epochs")}
        trials.append({"config": c, "status": "failed" if r.error else "finished",
                       "validation_loss": m.get("best_val_loss"), "test_accuracy": m.get("test_acc"),
                       "seconds": m.get("seconds")})
    ray.shutdown()
    with open(args.output, "w") as f:
        json.dump({"reuse_actors": args.reuse_actors, "trials": trials}, f, indent=1)
    failed = sum(t["status"] != "finished" for t in trials)
    if failed:
        sys.exit(f"{failed} of {len(trials)} trials failed (Ray's logs: {storage})")


if __name__ == "__main__":
    main()
