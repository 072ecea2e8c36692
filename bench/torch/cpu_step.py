#!/usr/bin/env python3
"""PyTorch CPU training-step images/s for one twin of a Strata model, timed like `strata bench
train`: synthetic CIFAR-shaped data, `--steps` steps of warm-up and then `--steps` timed steps,
each a random 4-pixel shift (one per batch) and per-image horizontal flips, forward,
cross-entropy, backward and the optimizer update (SGD lr 0.1, momentum 0.9, weight decay 1e-4,
or Adam lr 1e-3 as Strata's defaults). One configuration per process, so that bench/compare.sh
can interleave it with Strata's runs. Prints one JSON line; exit status 3 without torch (or,
with --device cuda, without a CUDA GPU that torch sees), and with a torch.compile that fails (one
SKIP line on stderr, then a JSON line with "skipped" and no images_per_second).
--amp bf16|fp16 and --compile [MODE]: train_step.py (autocast, GradScaler, torch.compile).

    python3 bench/torch/cpu_step.py --model resnet20 --batch 128 --layout channels_last --threads 2
    python3 bench/torch/cpu_step.py --model resnet20 --batch 128 --amp bf16   (autocast on the CPU)
    python3 bench/torch/cpu_step.py --model resnet20 --batch 128 --device cuda   (TF32, as bench.py)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="resnet20, resnet56, vgg16, cnn")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--layout", default="nchw", choices=["nchw", "channels_last"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--vgg-head", default="single")
    ap.add_argument("--filters", default="48,48,48", help="cnn: filters per conv layer")
    ap.add_argument("--hidden", default="500,250", help="cnn: hidden dense units")
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: the step on the GPU with TF32 and cudnn.benchmark, timed after a synchronize")
    train_step.add_arguments(ap)
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"SKIP torch is not installed for {sys.executable} ({e})")
        return 3
    from strata import twin as models

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"SKIP torch {torch.__version__} sees no CUDA GPU")
        return 3
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.model == "cnn":
        model = models.build({"family": "cnn", "classes": 10, "cnn": {
            "filters": [int(v) for v in args.filters.split(",")],
            "hidden": [int(v) for v in args.hidden.split(",") if v]}})
    else:
        model = models.build_named(args.model, head=args.vgg_head)
    memory_format = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    host = torch.randn(args.steps, args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.steps, args.batch))
    if args.device == "cuda":
        host, labels = host.pin_memory(), labels.pin_memory()

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    run = train_step.Step(torch, F, model, opt, device, args)

    def step(i):
        x = host[i].to(device, non_blocking=True)
        y = labels[i].to(device, non_blocking=True)
        run(train_step.augment(torch, F, x, device, memory_format), y)

    model.train()
    try:
        for i in range(args.steps):
            step(i)
    except train_step.CompileUnavailable as e:
        print(f"SKIP torch.compile on {args.device}: {e}", file=sys.stderr)
        print(json.dumps({"torch": torch.__version__, "model": args.model, "batch_size": args.batch,
                          "precision": train_step.describe(args), "skipped": str(e)}))
        return 3
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync()
    seconds = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "model": args.model, "batch_size": args.batch,
                      "layout": args.layout, "threads": args.threads, "device": args.device,
                      "precision": train_step.describe(args),
                      "images_per_second": args.batch * args.steps / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
