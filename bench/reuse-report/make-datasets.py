#!/usr/bin/env python3
"""Datasets A and B, tasks 1 and 2, for the parameter-reusability study (strata reuse-report).

From Fashion-MNIST (IDX, gzip): dataset A is the first half of the training set, B the second
half (disjoint images); both keep the full test set. Task 1 is the 10 classes; task 2 groups them
into 4: tops (T-shirt/top, Pullover, Coat, Shirt), long garments (Trouser, Dress), footwear
(Sandal, Sneaker, Ankle boot) and bags. Writes OUT/{A1,A2,B1,B2}/ as IDX directories that
`strata train --data` reads. Standard library only.

    python3 make-datasets.py /usr/share/datasets/fashion-mnist /tmp/reuse-data
"""
import gzip
import os
import struct
import sys

TASK2 = [0, 1, 0, 1, 0, 2, 0, 2, 3, 2]  # Fashion-MNIST label -> group


def read(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        return f.read()


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    sys.exit(f"make-datasets: {directory}/{stem}[.gz] is missing")


def split_images(raw):
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803, "not an IDX image file"
    size = rows * cols
    return (rows, cols), [raw[16 + i * size:16 + (i + 1) * size] for i in range(count)]


def split_labels(raw):
    magic, count = struct.unpack(">II", raw[:8])
    assert magic == 0x801, "not an IDX label file"
    return list(raw[8:8 + count])


def write(directory, prefix, shape, images, labels):
    os.makedirs(directory, exist_ok=True)
    with gzip.open(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), *shape) + b"".join(images))
    with gzip.open(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + bytes(labels))


def main():
    source, out = sys.argv[1], sys.argv[2]
    shape, train_images = split_images(read(find(source, "train-images-idx3-ubyte")))
    train_labels = split_labels(read(find(source, "train-labels-idx1-ubyte")))
    _, test_images = split_images(read(find(source, "t10k-images-idx3-ubyte")))
    test_labels = split_labels(read(find(source, "t10k-labels-idx1-ubyte")))
    half = len(train_images) // 2
    halves = {"A": (train_images[:half], train_labels[:half]), "B": (train_images[half:], train_labels[half:])}
    for name, (images, labels) in halves.items():
        for task, relabel in (("1", lambda y: y), ("2", lambda y: TASK2[y])):
            directory = os.path.join(out, name + task)
            write(directory, "train", shape, images, [relabel(y) for y in labels])
            write(directory, "t10k", shape, test_images, [relabel(y) for y in test_labels])
            print(f"{directory}: {len(images)} train, {len(test_images)} test images, task {task}")


if __name__ == "__main__":
    main()
