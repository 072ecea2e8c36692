#!/usr/bin/env python3
"""PyTorch training-step images/s for the twins of Strata's models, timed like `strata bench
train`: synthetic CIFAR-shaped data, SGD (lr 0.1, momentum 0.9, weight decay 1e-4), one
warm-up pass (cuDNN autotuning) and then `--steps` timed steps; each step uploads a batch from
pinned host memory, applies a random 4-pixel shift (one per batch) and per-image horizontal
flips on the GPU, and runs forward, cross-entropy, backward and the update; the clock is read
after a device synchronize.

    python3 bench/torch/bench.py --models resnet20,resnet56,vgg16,cnn --batches 32,128 --json out.json

Layouts: eager NCHW and eager channels-last, both with TF32 (matmul and cuDNN), as PyTorch
users run them. Without torch, or without a GPU, it prints one SKIP line and writes
{"skipped": reason}; the exit status is 0 either way.

Precision (train_step.py): `--amp bf16|fp16` runs forward and loss under torch.autocast (fp16
with a GradScaler), `--compile [MODE]` times the torch.compile'd model (compiling happens in the
warm-up; a compiler that fails prints one SKIP line per configuration, never a crash).
`--device cpu --threads N` runs the same steps on the CPU (bf16 autocast there).

    python3 bench/torch/bench.py --models resnet20 --batches 128 --amp bf16 --compile
    python3 bench/torch/bench.py --device cpu --threads 2 --models cnn --batches 40 --amp bf16
"""
import argparse
import json
import os
import sys
import time

# The twins live in the repository's Python package (python/strata/twin.py); this tree's copy
# goes first, so the script matches the strata built from the same tree.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import train_step  # noqa: E402  (this folder: the script's own directory is on sys.path)


def skip(reason, path):
    print(f"SKIP pytorch benchmark: {reason}")
    if path:
        with open(path, "w") as f:
            json.dump({"skipped": reason}, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet20,resnet56,vgg16,cnn")
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--layouts", default="nchw,channels_last")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--vgg-head", default="single")
    ap.add_argument("--budget", type=float, default=0, help="stop starting new configurations after this many seconds")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--threads", type=int, default=0, help="cpu: torch.set_num_threads (default: torch's own)")
    ap.add_argument("--json")
    train_step.add_arguments(ap)
    args = ap.parse_args()
    start = time.monotonic()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        return skip(f"torch is not installed for {sys.executable} ({e})", args.json)
    if args.device == "cuda" and not torch.cuda.is_available():
        return skip(f"torch {torch.__version__} sees no CUDA GPU", args.json)
    from strata import twin as models

    precision = train_step.describe(args)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        math = f"autocast {args.amp}, TF32 outside it" if args.amp else "TF32"
        out = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
               "gpu": torch.cuda.get_device_name(0)}
        print(f"pytorch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {out['cudnn']}) on {out['gpu']}, {math}"
              + (f", torch.compile {args.compile}" if args.compile else ""))
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        math = f"autocast {args.amp}" if args.amp else "FP32"
        out = {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
        print(f"pytorch {torch.__version__} on the CPU ({out['cpu']}, {out['threads']} threads), {math}"
              + (f", torch.compile {args.compile}" if args.compile else ""))
    out.update({"math": math, "precision": precision, "steps": args.steps, "results": []})
    for name in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            for layout in args.layouts.split(","):
                if args.budget and time.monotonic() - start > args.budget:
                    print(f"SKIP {name} batch {batch} {layout}: over the {args.budget:.0f} s budget")
                    continue
                try:
                    r = run(torch, F, models, name, batch, layout, args, device)
                    print(f"{name} batch {batch} {layout} {precision}: {r['images_per_second']:.1f} images/s, {r['step_ms']:.2f} ms/step")
                except train_step.CompileUnavailable as e:
                    r = {"model": name, "batch_size": batch, "layout": layout, "precision": precision, "skipped": str(e)}
                    print(f"SKIP {name} batch {batch} {layout} torch.compile: {e}")
                except Exception as e:  # one failing configuration does not stop the others
                    r = {"model": name, "batch_size": batch, "layout": layout, "error": str(e)}
                    print(f"FAIL {name} batch {batch} {layout}: {e}")
                out["results"].append(r)
                if args.device == "cuda":
                    torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def run(torch, F, models, name, batch, layout, args, device):
    torch.manual_seed(1)
    model = models.build_named(name, head=args.vgg_head).to(device)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    host = torch.randn(args.steps, batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.steps, batch))
    if device.type == "cuda":
        host, labels = host.pin_memory(), labels.pin_memory()
    train = train_step.Step(torch, F, model, opt, device, args)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(i):
        x = host[i].to(device, non_blocking=True)
        y = labels[i].to(device, non_blocking=True)
        train(train_step.augment(torch, F, x, device, memory_format), y)

    model.train()
    for i in range(args.steps):  # warm-up: autotuning, allocator, torch.compile
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync()
    seconds = time.perf_counter() - t0
    ips = batch * args.steps / seconds
    return {"model": name, "batch_size": batch, "layout": layout, "precision": train_step.describe(args), "images_per_second": ips,
            "step_ms": 1000 * seconds / args.steps}


if __name__ == "__main__":
    sys.exit(main())
