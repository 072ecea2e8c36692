"""PyTorch twins of Strata's model zoo (Sources/Trainer/Models/ModelZoo.swift).

Same architectures and the same state-dict names as Strata's checkpoints, so a Strata
checkpoint loads with `load_state_dict(..., strict=True)` (`load_twin`, bench/torch/check_load.py)
and PyTorch can be timed on the same models (bench/torch/bench.py).

    model = load_twin("runs/x/best.safetensors")                  # built from its metadata, loaded strictly
    model = build({"family": "resnet", "resnet": {"depth": 20}})   # or build_named("resnet20")

Without torch the same classes are built against `ShimNN`, a stand-in for torch.nn that only
records parameter and buffer shapes: `state_dict_shapes(model)` then lists the names and shapes
a checkpoint must have, which is how the twins are checked on a machine without PyTorch.
"""

import json

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    HAVE_TORCH = True
except ImportError:  # names-and-shapes mode only
    torch = None
    F = None
    HAVE_TORCH = False


class ShimNN:
    """The few torch.nn pieces the twins use, recording shapes only (no torch needed)."""

    class Module:
        def __init__(self):
            object.__setattr__(self, "_modules", {})
            object.__setattr__(self, "_shapes", {})

        def __setattr__(self, key, value):
            if isinstance(value, ShimNN.Module):
                self._modules[key] = value
            object.__setattr__(self, key, value)

        def add_module(self, key, value):
            self.__setattr__(key, value)

        def _own(self, name, shape):
            self._shapes[name] = tuple(shape)

    class Sequential(Module):
        def __init__(self, *layers):
            super().__init__()
            for i, layer in enumerate(layers):
                self.add_module(str(i), layer)

    class Conv2d(Module):
        def __init__(self, cin, cout, kernel_size, stride=1, padding=0, bias=True):
            super().__init__()
            self._own("weight", (cout, cin, kernel_size, kernel_size))
            if bias:
                self._own("bias", (cout,))

    class Linear(Module):
        def __init__(self, fin, fout, bias=True):
            super().__init__()
            self._own("weight", (fout, fin))
            if bias:
                self._own("bias", (fout,))

    class _BatchNorm(Module):
        def __init__(self, c, eps=1e-5, momentum=0.1):
            super().__init__()
            for n in ("weight", "bias", "running_mean", "running_var"):
                self._own(n, (c,))
            self._own("num_batches_tracked", ())

    BatchNorm2d = _BatchNorm
    BatchNorm1d = _BatchNorm

    class _NoParameters(Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

    ReLU = MaxPool2d = Identity = Dropout = Flatten = AdaptiveAvgPool2d = _NoParameters


if not HAVE_TORCH:
    nn = ShimNN


def state_dict_shapes(model, prefix=""):
    """{name: shape} in state-dict order (torch or shim model)."""
    if HAVE_TORCH and isinstance(model, torch.nn.Module):
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}
    out = {prefix + k: s for k, s in model._shapes.items()}
    for k, m in model._modules.items():
        out.update(state_dict_shapes(m, prefix + k + "."))
    return out


# MARK: ResNet (CIFAR, He et al. 2016): conv1/bn1 stem, layer1-3 of BasicBlocks, fc

class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); option A pads the subsampled input
    with zero channels (offset (planes - in) / 2 on each side), option B projects (downsample)."""

    def __init__(self, in_planes, planes, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True) if HAVE_TORCH else nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.in_planes, self.planes, self.option = stride, in_planes, planes, shortcut
        projects = stride != 1 or in_planes != planes
        if projects and shortcut == "B":
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        else:
            self.downsample = None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            s = self.downsample(x)
        elif self.stride != 1 or self.in_planes != self.planes:
            s = x[:, :, ::self.stride, ::self.stride]
            off = (self.planes - self.in_planes) // 2
            s = F.pad(s, (0, 0, 0, 0, off, self.planes - self.in_planes - off))
        else:
            s = x
        return self.relu(out + s)


class ResNet(nn.Module):
    def __init__(self, depth=20, width=16, shortcut="A", channels=3, classes=10):
        super().__init__()
        assert depth >= 8 and (depth - 2) % 6 == 0, f"resnet depth must be 6n+2, got {depth}"
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True) if HAVE_TORCH else nn.ReLU()
        in_planes = width
        for s in range(3):
            planes = width << s
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(in_planes, planes, (2 if s > 0 else 1) if b == 0 else 1, shortcut))
                in_planes = planes
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# MARK: VGG with batch norm (torchvision vgg*_bn feature indices)

VGG_GROUPS = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class VGG(nn.Module):
    """features.N: conv (bias), BN, ReLU per unit, a 2x2 max-pool closing each group (padding 1
    on odd sizes, as Strata); head `paper` (classifier.0/.3/.6) or `single` (classifier)."""

    def __init__(self, groups, head="paper", hidden=4096, dropout=0.0, channels=3, size=32, classes=10):
        super().__init__()
        layers = []
        for widths in groups:
            for j, w in enumerate(widths):
                layers += [nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w),
                           nn.ReLU(inplace=True) if HAVE_TORCH else nn.ReLU()]
                channels = w
                if j == len(widths) - 1:
                    pad = size % 2
                    layers.append(nn.MaxPool2d(2, 2, padding=pad))
                    size = (size + 2 * pad - 2) // 2 + 1
        self.features = nn.Sequential(*layers)
        features = channels * size * size
        if head == "single":
            self.classifier = nn.Linear(features, classes)
        else:
            cls = []
            fin = features
            for _ in range(2):
                cls += [nn.Linear(fin, hidden), nn.ReLU(inplace=True) if HAVE_TORCH else nn.ReLU(),
                        nn.Dropout(dropout) if dropout > 0 else nn.Identity()]
                fin = hidden
            cls.append(nn.Linear(fin, classes))
            self.classifier = nn.Sequential(*cls)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# MARK: Small CNN: conv-ReLU-maxpool per layer (features.3i), dense layers (classifier.3j)

class CNN(nn.Module):
    def __init__(self, filters=(32, 64), kernel=3, padding="same", hidden=(128,), dropout=0.0,
                 channels=3, height=32, width=32, classes=10):
        super().__init__()
        pad = kernel // 2 if padding == "same" else 0
        layers = []
        h, w = height, width
        for f in filters:
            layers += [nn.Conv2d(channels, f, kernel, padding=pad), nn.ReLU(), nn.MaxPool2d(2)]
            channels = f
            h, w = (h + 2 * pad - kernel + 1) // 2, (w + 2 * pad - kernel + 1) // 2
        self.features = nn.Sequential(*layers)
        cls = []
        fin = channels * h * w
        for units in hidden:
            # Index 3j+2 is Dropout or a placeholder, so the names match Strata's classifier.3j.
            cls += [nn.Linear(fin, units), nn.ReLU(), nn.Dropout(dropout) if dropout > 0 else nn.Identity()]
            fin = units
        cls.append(nn.Linear(fin, classes))
        self.classifier = nn.Sequential(*cls)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def stage_count(spec):
    """Sub-networks of the full model: the partition's, else the family's own (ResNet: the stem
    and three layers; VGG: its groups; CNN: its conv layers)."""
    if spec.get("partition"):
        return len(spec["partition"])
    family = spec["family"]
    if family == "resnet":
        return 4
    if family == "vgg":
        return len(spec.get("vgg", {}).get("groups", VGG_GROUPS["vgg16"]))
    return len(spec.get("cnn", {}).get("filters", [32, 64]))


def build(spec):
    """A twin from a Strata model spec (the `model` JSON of a checkpoint's metadata)."""
    family = spec["family"]
    inp = spec.get("input", {"channels": 3, "height": 32, "width": 32})
    classes = spec.get("classes", 10)
    active = spec.get("activeStages")
    if active is not None and active != stage_count(spec):
        raise ValueError(f"a partly grown model ({active} of {stage_count(spec)} sub-networks) has no twin")
    if family == "resnet":
        o = spec.get("resnet", {})
        return ResNet(o.get("depth", 20), o.get("width", 16), o.get("shortcut", "A").upper(),
                      inp["channels"], classes)
    if family == "vgg":
        o = spec.get("vgg", {})
        return VGG(o.get("groups", VGG_GROUPS["vgg16"]), o.get("head", "paper"), o.get("hidden", 4096),
                   o.get("dropout", 0.0), inp["channels"], inp["height"], classes)
    if family == "cnn":
        o = spec.get("cnn", {})
        return CNN(o.get("filters", [32, 64]), o.get("kernel", 3), o.get("padding", "same"),
                   o.get("hidden", [128]), o.get("dropout", 0.0), inp["channels"], inp["height"], inp["width"], classes)
    raise ValueError(f"unknown family {family!r}")


def build_named(name, head="paper", classes=10):
    """The zoo's names as `strata --model` takes them (vgg16 with `head`)."""
    name = name.lower()
    if name.startswith("resnet"):
        return build({"family": "resnet", "resnet": {"depth": int(name[6:])}, "classes": classes})
    if name in VGG_GROUPS:
        return build({"family": "vgg", "vgg": {"groups": VGG_GROUPS[name], "head": head}, "classes": classes})
    if name == "cnn":
        return build({"family": "cnn", "cnn": {}, "classes": classes})
    raise ValueError(f"unknown model {name!r}")


# MARK: Checkpoints into twins

def shape_mismatches(expected, shapes):
    """(missing, unexpected, wrong shape) names between a twin's {name: shape}
    (`state_dict_shapes`) and a checkpoint's (optimizer state left out); all empty when the
    checkpoint would load strictly."""
    saved = {k: tuple(s) for k, s in shapes.items() if not k.startswith("optimizer.")}
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    wrong = sorted(k for k in set(expected) & set(saved) if tuple(expected[k]) != saved[k])
    return missing, unexpected, wrong


def torch_state_dict(tensors):
    """{name: torch tensor} from `read_raw`'s (dtype, shape, bytes) or `Checkpoint.tensors`'
    numpy arrays, optimizer state left out (needs torch, not numpy for the former)."""
    if not HAVE_TORCH:
        raise ImportError("torch is not installed (pip install torch)")
    codes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}
    state = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            continue
        if isinstance(value, tuple):
            dtype, shape, raw = value
            if dtype not in codes:
                raise ValueError(f"tensor {name!r}: dtype {dtype} has no torch equivalent here")
            t = torch.frombuffer(bytearray(raw), dtype=codes[dtype]) if len(raw) else torch.empty(0, dtype=codes[dtype])
            state[name] = t.reshape(shape)
        else:  # a numpy array
            state[name] = torch.from_numpy(value.copy())
    return state


def load_twin(checkpoint, device="cpu", eval_mode=True):
    """The PyTorch twin of a Strata checkpoint (a path, or a `Checkpoint`), built from the model
    spec in its metadata, its weights and BatchNorm statistics loaded with strict=True: a name
    or shape that differs raises. In eval mode unless `eval_mode=False`. Needs torch only (no
    numpy) when given a path."""
    if not HAVE_TORCH:
        raise ImportError("strata.twin.load_twin needs torch (pip install torch)")
    from .checkpoint import Checkpoint, CheckpointError, read_raw
    if isinstance(checkpoint, Checkpoint):
        path, spec, tensors = checkpoint.path, checkpoint.model, checkpoint.tensors
    else:
        path = str(checkpoint)
        metadata, tensors = read_raw(path)
        if "model" not in metadata:
            raise CheckpointError(f"{path}: no `model` metadata: not a Strata model checkpoint")
        spec = json.loads(metadata["model"])
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: no `model` metadata: not a Strata model checkpoint")
    twin = build(spec)
    twin.load_state_dict(torch_state_dict(tensors), strict=True)
    twin = twin.to(device)
    return twin.eval() if eval_mode else twin
