#!/usr/bin/env python3
"""Loads a Strata checkpoint into its PyTorch twin (python/strata/twin.py) with strict=True.

    python3 bench/torch/check_load.py runs/x/last.safetensors [--data DIR] [--json OUT.json]

Always: reads the safetensors header (pure Python), builds the twin from the checkpoint's own
model spec and compares every name and shape (optimizer state excluded). With PyTorch: also
`load_state_dict(strict=True)` and, given --data (CIFAR-10 binary batches) and the run's
summary.json next to the checkpoint, the twin's test-set loss and accuracy in eval mode against
Strata's (the loss to 1e-3 relative: this checks the forward, shortcut and pooling included).
Exit status 0 when everything that could be checked matched, 1 otherwise.
"""
import argparse
import json
import os
import sys

# The checkpoint reader and the twins are the repository's Python package (python/strata); this
# tree's copy goes first, so the script matches the strata built from the same tree. Neither
# needs numpy or pandas.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from strata import twin as models  # noqa: E402
from strata.checkpoint import read_raw  # noqa: E402


def read_safetensors(path):
    """(metadata, {name: (dtype, shape, bytes)}) without the safetensors package."""
    return read_raw(path)


def read_cifar_test(directory, limit=None):
    """(images uint8 N*3072 as bytes rows, labels) from test_batch.bin."""
    path = os.path.join(directory, "test_batch.bin")
    with open(path, "rb") as f:
        raw = f.read()
    rows = len(raw) // 3073
    if limit:
        rows = min(rows, limit)
    return [raw[i * 3073 + 1:(i + 1) * 3073] for i in range(rows)], [raw[i * 3073] for i in range(rows)]



def evaluate_twin(torch, twin, strata_meta, data):
    """The twin's (accuracy, mean loss, count) on test_batch.bin in eval mode, the images
    normalised as the checkpoint's Strata metadata says."""
    images, labels = read_cifar_test(data)
    x = torch.frombuffer(bytearray(b"".join(images)), dtype=torch.uint8).float().reshape(-1, 3, 32, 32) / 255
    mean = torch.tensor(strata_meta["normalizationMean"]).reshape(1, 3, 1, 1)
    std = torch.tensor(strata_meta["normalizationStd"]).reshape(1, 3, 1, 1)
    x = (x - mean) / std
    y = torch.tensor(labels)
    twin.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), 256):
            logits = twin(x[i:i + 256]).double()
            correct += int((logits.argmax(1) == y[i:i + 256]).sum())
            loss_sum += float(torch.nn.functional.cross_entropy(logits, y[i:i + 256], reduction="sum"))
    return correct / len(y), loss_sum / len(y), len(y)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="CIFAR-10 binary directory for the accuracy comparison (torch only)")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()

    meta, tensors = read_safetensors(args.checkpoint)
    spec = json.loads(meta["model"])
    result = {"checkpoint": args.checkpoint, "model": spec, "torch": models.HAVE_TORCH}
    twin = models.build(spec)
    expected = models.state_dict_shapes(twin)
    saved = {k: v[1] for k, v in tensors.items()}
    missing, unexpected, wrong = models.shape_mismatches(expected, saved)
    result.update(names=len(expected), missing=missing, unexpected=unexpected,
                  wrong_shape={k: [list(expected[k]), list(saved[k])] for k in wrong})
    ok = not (missing or unexpected or wrong)
    print(f"{'ok  ' if ok else 'FAIL'} names and shapes: {len(expected)} twin tensors, "
          f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong shape")
    for k in missing[:5] + unexpected[:5] + wrong[:5]:
        print(f"     {k}")

    if not models.HAVE_TORCH:
        print("SKIP load_state_dict(strict=True): torch is not installed for " + sys.executable)
    elif ok:
        import torch
        state = models.torch_state_dict(tensors)
        twin.load_state_dict(state, strict=True)
        print("ok   load_state_dict(strict=True)")
        result["strict_load"] = True
        summary_path = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "summary.json")
        strata_meta = json.loads(meta.get("strata", "{}"))
        if args.data and os.path.exists(summary_path) and "normalizationMean" in strata_meta:
            accuracy, loss, count = evaluate_twin(torch, twin, strata_meta, args.data)
            with open(summary_path) as f:
                summary = json.load(f)
            strata_accuracy, strata_loss = summary.get("testAccuracy"), summary.get("testLoss")
            result.update(torch_test_accuracy=accuracy, strata_test_accuracy=strata_accuracy,
                          torch_test_loss=loss, strata_test_loss=strata_loss)
            if strata_accuracy is None or strata_loss is None:
                print(f"SKIP test-set comparison: {summary_path} has no testAccuracy/testLoss (not a train run?)")
            else:
                # The same weights and images in float32 on both sides: the mean loss agrees to
                # rounding, and at most a near-tie or two may flip a prediction.
                same = (abs(accuracy - strata_accuracy) <= 2 / count
                        and abs(loss - strata_loss) <= 1e-3 * max(1.0, abs(strata_loss)))
                print(f"{'ok  ' if same else 'FAIL'} test set in eval mode: twin accuracy {accuracy:.4f} "
                      f"loss {loss:.5f}, strata accuracy {strata_accuracy:.4f} loss {strata_loss:.5f}")
                ok = ok and same
    result["ok"] = ok
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
