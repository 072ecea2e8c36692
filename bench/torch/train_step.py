"""The training step that bench.py and cpu_step.py time, with the precision arms users try:
`--amp bf16|fp16` (torch.autocast around forward and loss; fp16 backward through a GradScaler,
its dynamic loss scaling) and `--compile [MODE]` (torch.compile of the model; backward through
AOTAutograd, the optimizer eager). Without either flag the step is the eager FP32/TF32 one.
"""
import argparse
import contextlib

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def add_arguments(ap):
    ap.add_argument("--amp", choices=sorted(AMP_DTYPES),
                    help="mixed precision: torch.autocast(device, dtype) around forward and loss "
                         "(bf16 on the CPU needs AVX-512 BF16 or AMX to be fast); fp16 adds a GradScaler")
    ap.add_argument("--compile", nargs="?", const="default", metavar="MODE",
                    help="torch.compile the model (MODE: default, reduce-overhead, max-autotune); "
                         "a compiler that fails prints a SKIP line")


def describe(args):
    """'fp32', 'amp-bf16', ... plus '+compile' when compiled: the label a result carries."""
    label = f"amp-{args.amp}" if args.amp else "fp32"
    if args.compile:
        label += "+compile" if args.compile == "default" else f"+compile-{args.compile}"
    return label


class CompileUnavailable(Exception):
    """torch.compile failed (no C++ compiler, an unsupported op, an old torch): a SKIP, not a crash."""


def augment(torch, F, x, device, memory_format):
    """One random 4-pixel shift per batch and per-image horizontal flips, as `strata bench train`."""
    dx, dy = torch.randint(-4, 5, (2,)).tolist()
    x = torch.roll(F.pad(x, (4, 4, 4, 4)), shifts=(dy, dx), dims=(2, 3))[:, :, 4:36, 4:36]
    flip = torch.rand(x.shape[0], device=device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x).contiguous(memory_format=memory_format)


class Step:
    """step(x, y): forward and cross-entropy (under autocast with --amp), backward, update."""

    def __init__(self, torch, F, model, opt, device, args: argparse.Namespace):
        self.torch, self.F, self.opt, self.args = torch, F, opt, args
        self.forward, self.missing = model, None
        if args.compile and not hasattr(torch, "compile"):
            self.missing = f"torch {torch.__version__} has no torch.compile"  # raised by the first step
        elif args.compile:
            self.forward = torch.compile(model, mode=None if args.compile == "default" else args.compile)
        dtype = getattr(torch, AMP_DTYPES[args.amp]) if args.amp else None
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
        self.scaler = torch.amp.GradScaler(device.type) if args.amp == "fp16" else None
        self.compiled = False

    def __call__(self, x, y):
        if self.missing:
            raise CompileUnavailable(self.missing)
        if self.args.compile and not self.compiled:
            try:  # compiling happens on the first call (and on backward's first call)
                self._step(x, y)
            except Exception as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise CompileUnavailable(f"{type(e).__name__}: {first[:300]}") from e
            self.compiled = True
            return
        self._step(x, y)

    def _step(self, x, y):
        with self.autocast():
            loss = self.F.cross_entropy(self.forward(x), y)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
