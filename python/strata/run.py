"""A run directory of `strata train` or `strata grow` (also each search or hpo trial's `run/`):
config.json, metrics.jsonl, summary.json, manifest.json and epoch-NNNN.safetensors."""
import os
import re

import pandas as pd

from ._json import StrataFileError, read_json, read_json_lines
from .checkpoint import read_checkpoint

_CHECKPOINT_FILE = re.compile(r"^epoch-(\d+)\.safetensors$")


class Run:
    """What `load_run` read.

    - `metrics`: a DataFrame, one row per epoch of metrics.jsonl, nested fields flattened with
      dots (`flops.executed`, ...);
    - `summary`, `config`, `manifest`: the JSON files as dicts (None while not written: a run
      still going has no summary.json yet);
    - `checkpoints`: a DataFrame of the checkpoint files (epoch, file, path, best, last);
    - `status`: the manifest's `running`, `complete` or `diverged` (None without a manifest).
    """

    def __init__(self, path, config, metrics, summary, manifest, checkpoints):
        self.path = path
        self.config = config
        self.metrics = metrics
        self.summary = summary
        self.manifest = manifest
        self.checkpoints = checkpoints

    @property
    def status(self):
        return (self.manifest or {}).get("status")

    @property
    def kind(self):
        """`train` or `grow` (the manifest's kind), None without a manifest."""
        return (self.manifest or {}).get("kind")

    def checkpoint_path(self, which="best"):
        """The path of checkpoint `which`: "best" (highest validation accuracy; the last one when
        the run has no validation set), "last", or an epoch number. The manifest decides, as for
        `strata eval RUN --checkpoint best|last`."""
        m = self.manifest or {}
        if isinstance(which, int) and not isinstance(which, bool):
            hit = self.checkpoints[self.checkpoints["epoch"] == which]
            if hit.empty:
                raise StrataFileError(f"{self.path}: no checkpoint of epoch {which} "
                                      f"(it has {', '.join(map(str, self.checkpoints['epoch'])) or 'none'})")
            return hit["path"].iloc[0]
        if which not in ("best", "last"):
            raise ValueError(f"which: expected 'best', 'last' or an epoch number, got {which!r}")
        if m:
            entry = (m.get("best") if which == "best" else None) or m.get("last")
            if not entry:
                raise StrataFileError(f"{self.path}: has no checkpoint yet (manifest.json names none)")
            return os.path.join(self.path, entry["file"])
        for name in (["best.safetensors"] if which == "best" else []) + ["last.safetensors"]:
            if os.path.exists(os.path.join(self.path, name)):
                return os.path.join(self.path, name)
        raise StrataFileError(f"{self.path}: has no checkpoint (no manifest.json, best.safetensors or last.safetensors)")

    def checkpoint(self, which="best", mmap=False):
        """Checkpoint `which` (see `checkpoint_path`) read into numpy arrays."""
        return read_checkpoint(self.checkpoint_path(which), mmap=mmap)

    def twin(self, which="best", device="cpu"):
        """The PyTorch twin of checkpoint `which`, its weights loaded strictly (needs torch)."""
        from .twin import load_twin
        return load_twin(self.checkpoint_path(which), device=device)

    def __repr__(self):
        return (f"Run({self.path!r}, {self.kind or '?'}, {self.status or 'no manifest'}, "
                f"{len(self.metrics)} epochs, {len(self.checkpoints)} checkpoints)")


def metrics_frame(lines):
    """A DataFrame of metrics lines, nested objects flattened with dots, lists kept as cells."""
    if not lines:
        return pd.DataFrame()
    return pd.json_normalize(lines, sep=".")


def _optional_json(path):
    return read_json(path) if os.path.exists(path) else None


def load_run(path, all_metrics=False):
    """Reads the run directory at `path` (a `strata train` or `strata grow` output, or a trial's
    `run/`) into a `Run`.

    metrics.jsonl keeps only the lines the manifest counts (`metricsLines`): lines past it belong
    to an epoch that was not checkpointed (a run killed or still writing), which `--resume`
    drops; `all_metrics=True` keeps them."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise StrataFileError(f"{path}: not a directory")
    manifest = _optional_json(os.path.join(path, "manifest.json"))
    config = _optional_json(os.path.join(path, "config.json"))
    summary = _optional_json(os.path.join(path, "summary.json"))
    if manifest is None and config is None:
        raise StrataFileError(f"{path}: not a Strata run directory (no manifest.json or config.json)")
    lines = read_json_lines(os.path.join(path, "metrics.jsonl"), missing_ok=True)
    if manifest is not None and not all_metrics and isinstance(manifest.get("metricsLines"), int):
        lines = lines[:manifest["metricsLines"]]
    best = ((manifest or {}).get("best") or {}).get("file")
    last = ((manifest or {}).get("last") or {}).get("file")
    rows = []
    for name in sorted(os.listdir(path)):
        m = _CHECKPOINT_FILE.match(name)
        if m:
            rows.append({"epoch": int(m.group(1)), "file": name, "path": os.path.join(path, name),
                         "best": name == best, "last": name == last})
    checkpoints = pd.DataFrame(rows, columns=["epoch", "file", "path", "best", "last"])
    return Run(path, config, metrics_frame(lines), summary, manifest, checkpoints)
