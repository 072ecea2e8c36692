"""Shared helpers: the strata binary (for tests that make real run, search and hpo directories),
a tiny synthetic CIFAR-10 directory, and a hand-written safetensors writer."""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(HERE, "fixtures")

# The tree's package first, so the tests check this checkout even where an older one is
# installed; with STRATA_TEST_INSTALLED=1 (CI, after `pip install ./python`) the installed copy
# is tested instead, which checks the packaging too (test_package.py).
if not os.environ.get("STRATA_TEST_INSTALLED"):
    sys.path.insert(0, os.path.join(REPO, "python"))


def strata_binary():
    """$STRATA_BIN, else the release build of this checkout; None when neither is there."""
    for candidate in (os.environ.get("STRATA_BIN"), os.path.join(REPO, ".build", "release", "strata")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def strata_bin():
    binary = strata_binary()
    if binary is None:
        pytest.skip("no strata binary (build it with `swift build -c release` or set STRATA_BIN)")
    return binary


def run_strata(binary, *args, cwd=None):
    """Runs `strata ARGS`; fails the test with its output when it exits non-zero."""
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)
    if done.returncode != 0:
        pytest.fail(f"strata {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def write_cifar(directory, train=240, test=60, seed=0):
    """A CIFAR-10 binary directory of random images whose label is readable from the image
    (class c: a brighter band in row block c), so a tiny model learns something."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for name, count in (("data_batch_1.bin", train), ("test_batch.bin", test)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 128, size=(count, 3, 32, 32), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, :, 3 * c:3 * c + 3, :] += 120
        records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(count, -1)], axis=1)
        records.tofile(os.path.join(directory, name))
    return directory


@pytest.fixture(scope="session")
def cifar(tmp_path_factory):
    return write_cifar(str(tmp_path_factory.mktemp("cifar")))


def write_safetensors(path, tensors, metadata=None, header_extra=None):
    """A safetensors file from {name: numpy array} (dtype names from the arrays), written by
    hand so that the reader is checked against the format, not against itself."""
    names = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64", np.dtype("<i4"): "I32",
             np.dtype("u1"): "U8", np.dtype("<f2"): "F16", np.dtype("?"): "BOOL"}
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header.update(header_extra or {})
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def copy_fixture(name, tmp_path):
    """A writable copy of tests/fixtures/NAME."""
    target = os.path.join(str(tmp_path), name)
    shutil.copytree(os.path.join(FIXTURES, name), target)
    return target
