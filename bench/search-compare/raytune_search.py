#!/usr/bin/env python3
"""The seed-000 architecture search as its users write it today: Ray Tune + PyTorch, one trial per
worker, every network trained from scratch (no reuse).

It trains the networks `strata search` trains for the same space file, with the same recipe:

- networks: Strata's `cnn` family (conv-ReLU-maxpool per layer, `filters` wide, `kernel` with
  same padding; dense ReLU layers of `hidden` units; a linear classifier), built by the PyTorch
  twin in python/strata/twin.py; weights He-normal (std sqrt(2 / fan_in)), biases zero, as
  Strata's `Initializer.heNormal`;
- data: the CIFAR-10 binary batches or MNIST / Fashion-MNIST IDX files (1x28x28; the cnn twin
  is built for the data's shape); `--train-limit N` keeps the N training images `strata search
  --train-limit N` keeps (the sorted first N of a Philox permutation on the "LIMIT" stream); then
  validation is the same seeded 10% of those as Strata's `ImageDataset.split` (its Philox-4x32-10
  Fisher-Yates permutation, reimplemented here and checked against a Strata checkpoint's
  normalisation by `--print-split-stats`); the whole test set; images scaled to [0, 1] and
  normalised per channel with the mean and population std of the training part; no augmentation
  (`strata search`'s default);
- training: the space's epochs, optimizer (Adam, PyTorch's defaults = Strata's), lr and batch
  size; shuffled every epoch, the last partial batch dropped; validation after each epoch; the
  trial's validation loss is its best epoch's, its test accuracy that of the epoch with the best
  validation accuracy (Strata's best checkpoint).

What differs, by nature: the random streams (initial weights, batch order) are PyTorch's, seeded
with the trial's seed, not Strata's Philox streams, so losses agree in distribution, not bit for bit.

    python raytune_search.py --space bench/search-measure-space.json --data DIR --output OUT.json \
        [--train-limit N] [--epochs N] [--workers 2] [--reuse-actors]
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
LIMIT_STREAM = 0x4C_494D_4954         # RunData.load's --train-limit draw, ASCII "LIMIT"


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


def philox_blocks(seed, counter, count):
    """philox_block(seed, counter, i) for i in 0..<count, vectorised (numpy uint64: every
    product is of two 32-bit words, so nothing overflows); columns c0..c3."""
    c0 = np.arange(count, dtype=np.uint64) & MASK32
    c1 = np.zeros(count, dtype=np.uint64)       # index < 2^32
    c2 = np.full(count, counter & MASK32, dtype=np.uint64)
    c3 = np.full(count, (counter >> 32) & MASK32, dtype=np.uint64)
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    m32, s32 = np.uint64(MASK32), np.uint64(32)
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> s32) ^ c1 ^ np.uint64(k0)) & m32, p1 & m32, ((p0 >> s32) ^ c3 ^ np.uint64(k1)) & m32, p0 & m32
    return c0, c1, c2, c3


def permutation(count, seed, counter):
    """Shuffle.permutation: Fisher-Yates, step k (swapping position i = count-1-k) draws a 64-bit
    word from Philox elements 2k, 2k+1 and maps it to 0...i by multiply-high. The draws are
    vectorised (60,000 images: ~20 ms, not ~0.3 s, so Ray's trials pay no more than a
    `torch.randperm` would); the swaps stay a loop."""
    steps = count - 1
    if steps <= 0:
        return list(range(count))
    c0, c1, c2, c3 = philox_blocks(seed, counter, (steps + 1) // 2)
    hi = np.stack([c0, c2], axis=1).reshape(-1)[:steps]   # step k: block k>>1, (c0,c1) if k even else (c2,c3)
    lo = np.stack([c1, c3], axis=1).reshape(-1)[:steps]
    m = np.arange(count, 1, -1, dtype=np.uint64)          # i + 1 for i = count-1 ... 1
    s32 = np.uint64(32)
    # (word * m) >> 64 with word = hi:lo and m < 2^32: (hi*m + (lo*m >> 32)) >> 32, each below 2^64.
    js = ((hi * m + ((lo * m) >> s32)) >> s32).tolist()
    order = list(range(count))
    for k, j in enumerate(js):
        i = count - 1 - k
        order[i], order[j] = order[j], order[i]
    return order


def read_cifar(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 3,073-byte records")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def idx_file(data_dir, prefix, kind, dims):
    """The spellings Strata's `IDX.find` tries: `train-images-idx3-ubyte` or `train-images.idx3-ubyte`,
    raw or `.gz`; None when there is none."""
    for stem in (f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"):
        for name in (stem, stem + ".gz"):
            if os.path.isfile(os.path.join(data_dir, name)):
                return os.path.join(data_dir, name)
    return None


def read_idx(path, dims):
    """An IDX unsigned-byte file (MNIST, Fashion-MNIST), raw or gzip: images (N, 1, rows, cols)
    for dims 3, int64 labels for dims 1."""
    import gzip
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes, shorter than the {header}-byte IDX header")
    words = [int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(1 + dims)]
    if words[0] != 0x800 + dims:
        raise ValueError(f"{path}: magic number {words[0]:#010x} is not {0x800 + dims:#010x} (IDX unsigned bytes, {dims} dimensions)")
    shape = words[1:]
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes (decompressed), the header declares {expected}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return data[:, None, :, :] if dims == 3 else data.astype(np.int64)


def data_format(data_dir):
    """`cifar10` (binary batches) or `idx` (MNIST / Fashion-MNIST), detected as Strata does
    (CIFAR-10 first); None for neither."""
    if os.path.isfile(os.path.join(data_dir, "data_batch_1.bin")):
        return "cifar10"
    if idx_file(data_dir, "train", "images", 3):
        return "idx"
    return None


def read_dataset(data_dir):
    """(train images, train labels, test images, test labels): uint8 NCHW, int64."""
    fmt = data_format(data_dir)
    if fmt == "cifar10":
        # data_batch_*.bin in numeric order, as Strata's CIFAR10.load (data_batch_10 after _9).
        names = [n for n in os.listdir(data_dir) if n.startswith("data_batch_") and n.endswith(".bin")]
        names.sort(key=lambda n: (int(n[11:-4]) if n[11:-4].isdigit() else float("inf"), n))
        parts = [read_cifar(os.path.join(data_dir, n)) for n in names]
        tx, ty = read_cifar(os.path.join(data_dir, "test_batch.bin"))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), tx, ty
    if fmt == "idx":
        sets = []
        for prefix in ("train", "t10k"):
            images, labels = idx_file(data_dir, prefix, "images", 3), idx_file(data_dir, prefix, "labels", 1)
            if not images or not labels:
                raise ValueError(f"{data_dir}: no {prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]")
            x, y = read_idx(images, 3), read_idx(labels, 1)
            if len(x) != len(y):
                raise ValueError(f"{labels}: {len(y)} labels for the {len(x)} images of {images}")
            sets += [x, y]
        return tuple(sets)
    raise ValueError(f"{data_dir}: neither CIFAR-10 binary batches (data_batch_1.bin ...) nor IDX files "
                     "(train-images-idx3-ubyte[.gz] ...)")


def load_data(data_dir, seed, train_limit=None, validation_fraction=0.1):
    """(train, validation, test, (mean, std)): float32 NCHW normalised tensors and int64 labels,
    as `RunData.load`: `train_limit` keeps that many training images (the sorted first
    `train_limit` of a Philox permutation on the "LIMIT" stream), then the seeded 10% validation
    split; the test set is never limited."""
    x, y, tx, ty = read_dataset(data_dir)
    if train_limit is not None and train_limit < len(x):
        keep = sorted(permutation(len(x), seed, LIMIT_STREAM)[:train_limit])
        x, y = x[keep], y[keep]
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

def train_trial(config, data_dir=None, train_limit=None):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if PYTHON_DIR not in sys.path:
        sys.path.insert(0, PYTHON_DIR)
    from strata import twin as models
    from ray import tune

    torch.set_num_threads(1)
    seed = int(config["seed"])
    (xtr, ytr), (xva, yva), (xte, yte), _ = load_data(data_dir, seed, train_limit)
    channels, height, width = xtr.shape[1:]
    xtr, ytr, xva, yva, xte, yte = map(torch.from_numpy, (xtr, ytr, xva, yva, xte, yte))
    torch.manual_seed(seed)
    spec = {"family": "cnn", "cnn": {"filters": [config["filters"]] * config["conv_layers"],
                                     "kernel": config["kernel"], "hidden": list(config["hidden"])},
            "input": {"channels": channels, "height": height, "width": width}}
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
    ap.add_argument("--data", required=True, help="CIFAR-10 binary batches or MNIST / Fashion-MNIST IDX files")
    ap.add_argument("--train-limit", type=int, help="train on this many images, drawn as `strata search --train-limit` draws them")
    ap.add_argument("--output", required=True, help="results JSON (one object per trial); must not exist")
    ap.add_argument("--epochs", type=int, help="epochs of every trial (default: the space's)")
    ap.add_argument("--workers", type=int, default=2, help="trials at once (one CPU, one thread each)")
    ap.add_argument("--reuse-actors", action="store_true", help="Ray Tune's reuse_actors=True (default False)")
    ap.add_argument("--print-split-stats", action="store_true", help="print the split's sizes and normalisation, run nothing")
    args = ap.parse_args()
    data_dir = os.path.abspath(args.data)
    if data_format(data_dir) is None:
        sys.exit(f"--data {args.data}: neither CIFAR-10 binary batches (data_batch_1.bin ...) nor IDX files "
                 "(train-images-idx3-ubyte[.gz] ...)")
    if args.train_limit is not None and args.train_limit < 2:
        sys.exit(f"--train-limit must be at least 2, got {args.train_limit}")
    with open(args.space) as f:
        space = json.load(f)
    if space.get("model", "cnn") != "cnn":
        sys.exit(f"{args.space}: model '{space['model']}': only the cnn family is covered")
    if args.print_split_stats:
        (xtr, _), (xva, _), (xte, _), (mean, std) = load_data(data_dir, int(space.get("seed", 0)), args.train_limit)
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
        tune.with_resources(tune.with_parameters(train_trial, data_dir=data_dir, train_limit=args.train_limit), {"cpu": 1}),
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
