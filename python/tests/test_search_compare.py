"""The yardstick's data path (bench/search-compare/raytune_search.py): its Philox permutation, its
IDX reader and its `--train-limit` draw + validation split, the last against a real `strata
search` checkpoint's normalisation (which is computed from exactly the training images)."""
import glob
import gzip
import json
import os
import sys

import numpy as np
import pytest

from conftest import REPO, run_strata, write_cifar

sys.path.insert(0, os.path.join(REPO, "bench", "search-compare"))
import raytune_search as ys  # noqa: E402  (numpy only at import; torch and ray inside functions)

from strata.checkpoint import read_raw  # noqa: E402


def scalar_permutation(count, seed, counter):
    """Shuffle.permutation step by step with the scalar Philox block (the vectorised one must equal it)."""
    order = list(range(count))
    for k, i in enumerate(range(count - 1, 0, -1)):
        b = ys.philox_block(seed, counter, k >> 1)
        word = (b[0] << 32 | b[1]) if k % 2 == 0 else (b[2] << 32 | b[3])
        j = (word * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
    return order


@pytest.mark.parametrize("count", [0, 1, 2, 3, 8, 101, 2000])
@pytest.mark.parametrize("seed", [0, 3, (1 << 40) + 5])
def test_vectorised_permutation_equals_the_scalar_one(count, seed):
    for stream in (ys.SPLIT_STREAM, ys.LIMIT_STREAM):
        order = ys.permutation(count, seed, stream)
        assert order == scalar_permutation(count, seed, stream)
        assert sorted(order) == list(range(count))


def test_philox_known_answer():
    # Random123's published known-answer vector for Philox-4x32-10 (counter 0, key 0):
    # the index (c0, c1) and counter (c2, c3) are all zero here.
    assert ys.philox_block(0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def write_idx(path, array, compress):
    dims = array.ndim
    header = (0x800 + dims).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with open(path + (".gz" if compress else ""), "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


def write_mnist_like(directory, train=300, test=50, size=8, seed=0, compress=True):
    """A tiny IDX directory whose class is readable from the image (a bright row block)."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, size=count)
        images = rng.integers(0, 100, size=(count, size, size), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, c % size, :] += 150
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), images, compress)
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), labels, compress)
    return directory


def test_idx_reader_raw_and_gzip_and_bad_magic(tmp_path):
    a = write_mnist_like(str(tmp_path / "gz"), compress=True)
    b = write_mnist_like(str(tmp_path / "raw"), compress=False)
    assert ys.data_format(a) == ys.data_format(b) == "idx"
    xa, ya, ta, la = ys.read_dataset(a)
    xb, yb, tb, lb = ys.read_dataset(b)
    assert xa.shape == (300, 1, 8, 8) and ta.shape == (50, 1, 8, 8) and ya.dtype == np.int64
    for u, v in ((xa, xb), (ya, yb), (ta, tb), (la, lb)):
        assert np.array_equal(u, v)
    assert ys.data_format(str(tmp_path)) is None
    bad = str(tmp_path / "raw" / "t10k-labels-idx1-ubyte")
    with open(bad, "r+b") as f:
        f.write((0x803).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="magic number 0x00000803 is not 0x00000801"):
        ys.read_dataset(b)


def test_train_limit_draws_a_sorted_seeded_subset(tmp_path):
    d = write_mnist_like(str(tmp_path / "d"))
    (xtr, _), (xva, _), (xte, _), _ = ys.load_data(d, seed=0, train_limit=120)
    assert (len(xtr), len(xva), len(xte)) == (108, 12, 50)   # the test set is never limited
    (xtr, _), (xva, _), _, _ = ys.load_data(d, seed=0, train_limit=300)   # not below the count: all
    assert (len(xtr), len(xva)) == (270, 30)


def split_cifar(directory):
    """data_batch_1.bin cut into batches 1, 2 and 10: Strata reads them in numeric order (1, 2, 10),
    not by name (1, 10, 2), and the split's indices depend on that order."""
    path = os.path.join(directory, "data_batch_1.bin")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    for n, part in zip((1, 2, 10), np.array_split(records, 3)):
        part.tofile(os.path.join(directory, f"data_batch_{n}.bin"))
    return directory


def checkpoint_normalisation(run_dir):
    path = glob.glob(os.path.join(run_dir, "trials", "*", "run", "best.safetensors"))
    assert len(path) == 1, path
    meta = json.loads(read_raw(path[0])[0]["strata"])
    return meta["normalizationMean"], meta["normalizationStd"], meta["optimizerSteps"]


@pytest.mark.parametrize("kind,limit,seed", [("idx", 123, 0), ("idx", 200, 3), ("idx", None, 1), ("cifar", 150, 2)])
def test_split_equals_strata_search(strata_bin, tmp_path, kind, limit, seed):
    data = write_mnist_like(str(tmp_path / "data")) if kind == "idx" else split_cifar(write_cifar(str(tmp_path / "data")))
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"model": "cnn", "grid": {"conv_layers": [1], "filters": [4], "kernel": [3],
                                                           "hidden": [[8]], "lr": [0.001], "batch_size": [10]},
                                 "epochs": 1, "optimizer": "adam", "seed": seed}))
    out = str(tmp_path / "search")
    run_strata(strata_bin, "search", "--space", space, "--reuse", "none", "--data", data, "--workers", 1,
               "--threads", 1, "--output", out, *(["--train-limit", limit] if limit else []))
    mean, std, steps = checkpoint_normalisation(out)
    (xtr, _), _, _, (ys_mean, ys_std) = ys.load_data(data, seed, limit)
    # Exact integer sums on both sides, rounded to float32 by Strata: a different draw would show.
    # (Strata writes the shortest decimal of each float32, which reads back as that float32.)
    assert np.array_equal(np.float32(ys_mean), np.array(mean, dtype=np.float32)), (ys_mean, mean)
    assert np.array_equal(np.float32(ys_std), np.array(std, dtype=np.float32)), (ys_std, std)
    assert steps == len(xtr) // 10   # the last partial batch dropped
