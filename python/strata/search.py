"""Search directories (`strata search`) as a DataFrame with one row per trial, in the spirit of
Optuna's `study.trials_dataframe()`: hyperparameters flattened to `params_<name>` columns
(Optuna's naming, which keeps a hyperparameter called `epochs` apart from the trial's own
`epochs` column). hpo.py reads `strata hpo` directories the same way."""
import os

import pandas as pd

from ._journal import search_record
from ._json import StrataFileError, read_json, read_json_lines
from .run import load_run

# A side-by-side search (`--reuse none,paper,best-prefix`) keeps each strategy in a subfolder.
REUSE_STRATEGIES = ("none", "paper", "best-prefix")


def _optional_json(path):
    return read_json(path) if os.path.exists(path) else None


def _params_columns(params):
    """{"params_<name>": value}; list values (a search's `hidden`) stay lists."""
    return {f"params_{k}": v for k, v in sorted((params or {}).items())}


def _frame(rows, first):
    """A DataFrame of `rows` whose columns start with `first` (those present), then params_*,
    then the rest in first-seen order."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(first))
    leading = [c for c in first if c in frame.columns]
    params = sorted(c for c in frame.columns if c.startswith("params_"))
    rest = [c for c in frame.columns if c not in leading and c not in params]
    return frame[leading + params + rest]


class Search:
    """What `load_search` read: `settings` (search.json), `journal` (every journal line, a
    DataFrame, attempts of a retried trial included), `trials` (one row per trial: its last
    journal line, plus `running` rows for trials started but not journaled), `summary`
    (summary.json, None until the search ends)."""

    def __init__(self, path, settings, journal, trials, summary):
        self.path = path
        self.settings = settings
        self.journal = journal
        self.trials = trials
        self.summary = summary

    @property
    def reuse(self):
        return (self.settings or {}).get("reuse")

    def trial_run(self, trial_id):
        """The run directory of trial `trial_id` (`trials/<id>/run`) as a `Run`."""
        return load_run(os.path.join(self.path, "trials", str(trial_id), "run"))

    def best(self):
        """The journal row of the finished trial with the lowest validation loss (the search's
        criterion), or None."""
        done = self.trials[self.trials["status"] == "finished"] if not self.trials.empty else self.trials
        if done.empty or done["validation_loss"].isna().all():
            return None
        return done.loc[done["validation_loss"].idxmin()]

    def __repr__(self):
        return f"Search({self.path!r}, reuse {self.reuse}, {len(self.trials)} trials)"


SEARCH_COLUMNS = ("id", "status", "validation_loss", "validation_accuracy", "test_accuracy", "donor",
                  "reuse_layers", "seconds", "wall_seconds", "cpu_seconds", "epochs", "attempt", "rungs")


def load_search(path):
    """Reads a `strata search` output directory into a `Search`.

    A side-by-side search (`--reuse none,paper`) holds one search per strategy in subfolders:
    use `load_searches` for it."""
    path = os.fspath(path)
    settings_path = os.path.join(path, "search.json")
    if not os.path.exists(settings_path):
        parts = [r for r in REUSE_STRATEGIES if os.path.exists(os.path.join(path, r, "search.json"))]
        if parts:
            raise StrataFileError(f"{path}: a side-by-side search of {', '.join(parts)}: "
                                  "use strata.load_searches (or load_search on one of its subfolders)")
        raise StrataFileError(f"{path}: not a search directory (no search.json)")
    settings = read_json(settings_path)
    journal_path = os.path.join(path, "journal.jsonl")
    lines = [search_record(line, f"{journal_path}: line {n}")
             for n, line in enumerate(read_json_lines(journal_path, missing_ok=True), 1)]
    journal = pd.json_normalize(lines, sep=".") if lines else pd.DataFrame()
    latest = {}
    for record in lines:
        # A trial's last line is its state: a --retry-failed attempt replaces the earlier one, and
        # in a search with --pruner a trial's lines go running (started, promoted at a rung), then
        # finished, pruned or failed; `values` (validation loss per epoch) and `rungs` come with them.
        latest[record["id"]] = record
    rows = []
    for record in latest.values():
        row = {k: v for k, v in record.items() if k != "config"}
        row.update(_params_columns(record.get("config")))
        outcome = _optional_json(os.path.join(path, "trials", record["id"], "outcome.json"))
        if isinstance(outcome, dict) and "cpuSeconds" in outcome and "cpu_seconds" not in row:
            row["cpu_seconds"] = outcome["cpuSeconds"]
        rows.append(row)
    # Trials with a folder but no journal line were started and have not ended (or the search
    # was killed): their job.json has the config.
    trials_dir = os.path.join(path, "trials")
    for name in sorted(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else []:
        job_path = os.path.join(trials_dir, name, "job.json")
        if name in latest or not os.path.exists(job_path):
            continue
        job = read_json(job_path)
        row = {"id": name, "status": "running"}
        if isinstance(job.get("trial"), dict):
            row.update(_params_columns(job["trial"]))
        rows.append(row)
    trials = _frame(rows, SEARCH_COLUMNS)
    return Search(path, settings, journal, trials, _optional_json(os.path.join(path, "summary.json")))


def load_searches(path):
    """{reuse strategy: Search} of a side-by-side search (`--reuse none,paper,best-prefix`); a
    plain search directory gives {its strategy: Search}."""
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, "search.json")):
        search = load_search(path)
        return {search.reuse: search}
    parts = {r: load_search(os.path.join(path, r)) for r in REUSE_STRATEGIES
             if os.path.exists(os.path.join(path, r, "search.json"))}
    if not parts:
        raise StrataFileError(f"{path}: not a search directory (no search.json, nor none/, paper/ or best-prefix/ with one)")
    return parts
