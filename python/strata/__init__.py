"""Strata's results in Python: run, search and hpo directories as pandas DataFrames, checkpoints
as numpy arrays (no `safetensors` package needed) and, with torch, as the PyTorch twin model.

    import strata
    run = strata.load_run("runs/x")          # .metrics (DataFrame), .summary, .config, .checkpoints
    search = strata.load_search("runs/s1")   # .trials: one row per trial, params_* columns
    hpo = strata.load_hpo("runs/hpo")        # .trials, .final, .learning_curves()
    ckpt = strata.read_checkpoint("runs/x/best.safetensors")   # .tensors {name: ndarray}, .model, .epoch
    model = strata.load_twin("runs/x/best.safetensors")        # torch.nn.Module, loaded strictly

Submodules are imported on first use, so `strata.twin` (and the bench scripts that use it)
needs neither pandas nor numpy.
"""
import importlib

__version__ = "0.1.0"

# name -> submodule that defines it
_EXPORTS = {
    "load_run": "run", "Run": "run",
    "load_search": "search", "load_searches": "search", "load_hpo": "hpo",
    "Search": "search", "HPO": "hpo",
    "read_checkpoint": "checkpoint", "read_raw": "checkpoint", "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "load_twin": "twin",
    "StrataFileError": "_json",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'strata' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
