#!/usr/bin/env python3
"""Loads given Strata checkpoints into their PyTorch twins with strict=True and compares the
twin's test loss and accuracy with `strata eval` on the same data. Trains nothing.

    python3 bench/torch/strict_load.py CKPT.safetensors [CKPT ...] --data DIR \
        [--strata .build/release/strata] [--device cpu] [--json OUT.json]

DIR is a CIFAR-10 binary directory (test_batch.bin), e.g. /work/shared/datasets/cifar10-subset.
Checkpoints of any twin family work (cnn, resnet20/56, vgg16, ...); make some with e.g.
    strata train --model resnet20 --data DIR --epochs 1 --train-limit 512 --output runs/r20
    python3 bench/torch/strict_load.py runs/r20/last.safetensors --data DIR

Per checkpoint, one line each:
  - names and shapes of the safetensors header against the twin (pure Python, always);
  - `load_state_dict(strict=True)` (torch only);
  - the test set in eval mode: the twin's accuracy and mean loss against what `strata eval
    CKPT --data DIR` prints (accuracy to 2 images, loss to 1e-3 relative plus its print rounding).
Without torch it prints one SKIP line per step it cannot do and exits 0 (names and shapes are
still checked); without the strata binary it skips the eval comparison the same way.
Exit status: 0 when everything that could be checked matched, 1 otherwise.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_load  # noqa: E402  (the CIFAR reader; puts the repository's python/ on sys.path)
from strata import twin as models  # noqa: E402

EVAL_LINE = re.compile(r"test accuracy ([0-9.]+)%, loss (\S+) on (\d+) images")


def say(ok, text):
    """One result line: ok / FAIL / SKIP (ok None)."""
    print(f"{'SKIP' if ok is None else 'ok  ' if ok else 'FAIL'} {text}", flush=True)


def strata_eval(binary, checkpoint, data, device):
    """(accuracy, loss, count) parsed from `strata eval`, or an error string."""
    try:
        run = subprocess.run([binary, "eval", checkpoint, "--data", data, "--device", device],
                             capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"strata eval did not run: {e}"
    m = EVAL_LINE.search(run.stdout)
    if run.returncode != 0 or not m:
        last = (run.stderr.strip() or run.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"strata eval exited {run.returncode}: {last[0]}"
    return float(m.group(1)) / 100, float(m.group(2)), int(m.group(3))


def twin_eval(torch, twin, strata_meta, data):
    """The twin's (accuracy, mean loss, count) over test_batch.bin, normalised as Strata does."""
    return check_load.evaluate_twin(torch, twin, strata_meta, data)

def check(path, args):
    """Checks one checkpoint; returns (ok, result dict)."""
    result = {"checkpoint": path}
    meta, tensors = check_load.read_safetensors(path)
    spec = json.loads(meta["model"])
    result["model"] = spec
    try:
        twin = models.build(spec)
    except ValueError as e:
        say(False, f"{path}: no twin: {e}")
        return False, result
    expected = models.state_dict_shapes(twin)
    missing, unexpected, wrong = models.shape_mismatches(expected, {k: v[1] for k, v in tensors.items()})
    ok = not (missing or unexpected or wrong)
    result.update(missing=missing, unexpected=unexpected, wrong_shape=wrong)
    say(ok, f"{path}: names and shapes, {len(expected)} twin tensors, {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} wrong shape {(missing + unexpected + wrong)[:3] or ''}")
    if not ok:
        return False, result
    if not models.HAVE_TORCH:
        say(None, f"{path}: load_state_dict(strict=True) and the test-set comparison: torch is not installed for {sys.executable}")
        return True, result
    import torch
    state = models.torch_state_dict(tensors)
    try:
        twin.load_state_dict(state, strict=True)
    except RuntimeError as e:
        say(False, f"{path}: load_state_dict(strict=True): {str(e).splitlines()[0]}")
        return False, result
    say(True, f"{path}: load_state_dict(strict=True)")
    result["strict_load"] = True

    strata_meta = json.loads(meta.get("strata", "{}"))
    if not args.data or not os.path.exists(os.path.join(args.data, "test_batch.bin")):
        say(None, f"{path}: test-set comparison: no CIFAR-10 test_batch.bin (--data DIR)")
        return True, result
    if "normalizationMean" not in strata_meta or spec.get("input", {}).get("channels", 3) != 3:
        say(None, f"{path}: test-set comparison: not a CIFAR-10 checkpoint (no RGB normalisation in its metadata)")
        return True, result
    if not (os.path.isfile(args.strata) and os.access(args.strata, os.X_OK)):
        say(None, f"{path}: test-set comparison: no strata binary at {args.strata} (--strata or STRATA)")
        return True, result
    theirs = strata_eval(args.strata, path, args.data, args.device)
    if isinstance(theirs, str):
        say(False, f"{path}: {theirs}")
        return False, result
    accuracy, loss, count = twin_eval(torch, twin, strata_meta, args.data)
    s_accuracy, s_loss, s_count = theirs
    result.update(torch_test_accuracy=accuracy, torch_test_loss=loss,
                  strata_test_accuracy=s_accuracy, strata_test_loss=s_loss, images=count)
    # Same weights and images in float32 on both sides: the mean loss agrees to rounding (strata
    # prints 4 decimals), and at most a near-tie or two may flip a prediction.
    same = (s_count == count and abs(accuracy - s_accuracy) <= 2 / count + 1e-4
            and abs(loss - s_loss) <= 1e-3 * max(1.0, abs(s_loss)) + 5e-5)
    say(same, f"{path}: test set ({count} images) in eval mode: twin accuracy {accuracy:.4f} loss {loss:.4f}, "
              f"strata eval accuracy {s_accuracy:.4f} loss {s_loss:.4f}" + ("" if s_count == count else f" on {s_count} images"))
    return same, result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", help="CIFAR-10 binary directory (test_batch.bin)")
    ap.add_argument("--strata", default=os.environ.get("STRATA", ".build/release/strata"))
    ap.add_argument("--device", default="cpu", help="the device of `strata eval` (cpu, cuda, auto)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if not models.HAVE_TORCH:
        print(f"SKIP strict load: torch is not installed for {sys.executable} (set PYTHON=/path/to/python with torch); "
              "checking names and shapes only")
    results, ok = [], True
    for path in args.checkpoints:
        try:
            good, r = check(path, args)
        except (OSError, ValueError, KeyError) as e:
            say(False, f"{path}: unreadable checkpoint: {e}")
            good, r = False, {"checkpoint": path, "error": str(e)}
        ok = ok and good
        r["ok"] = good
        results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ok": ok, "torch": models.HAVE_TORCH, "results": results}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
