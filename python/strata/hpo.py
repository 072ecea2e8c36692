"""hpo directories (`strata hpo`: hpo.json, journal.jsonl, summary.json, trials/, final/) as a
DataFrame with one row per trial, like search.py's for `strata search`."""
import math
import os

import pandas as pd

from ._journal import hpo_line
from ._json import StrataFileError, read_json, read_json_lines
from .run import load_run
from .search import _frame, _optional_json, _params_columns


def hpo_value(value):
    """An hpo parameter value from its journal form: {"float": x} and {"int": n} as numbers,
    {"choice": text} as the number the text reads as (strata keeps choices as text, so the
    space's batch size 64 is "64"), else the text. Anything else is returned as it is."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    (kind, x), = value.items()
    if kind in ("float", "int"):
        return x
    if kind == "choice" and isinstance(x, str):
        for number in (int, float):
            try:
                return number(x)
            except ValueError:
                pass
    return x


def hpo_params(params):
    """{name: value} of an hpo journal's or summary's `params`, values decoded by `hpo_value`."""
    return {k: hpo_value(v) for k, v in (params or {}).items()}



class HPO:
    """What `load_hpo` read: `settings` (hpo.json), `journal` (every trial line, a DataFrame: a
    trial appears when proposed, at each promotion and when it ends), `trials` (one row per
    trial, its last line), `final` (the final training's events, a list of dicts, the last one
    its state), `summary` (summary.json, None until the search ends)."""

    def __init__(self, path, settings, journal, trials, final, summary):
        self.path = path
        self.settings = settings
        self.journal = journal
        self.trials = trials
        self.final = final
        self.summary = summary

    @property
    def best_params(self):
        """summary.json's `bestParams`, values decoded as in `trials` (None before the end)."""
        best = (self.summary or {}).get("bestParams")
        return hpo_params(best) if best is not None else None

    @property
    def final_state(self):
        """The final training's last event ({"status": "finished", "testAccuracy": ...}), or None."""
        return self.final[-1] if self.final else None

    def trial_run(self, number):
        """The run directory of trial `number` (as in the `number` column) as a `Run`."""
        return load_run(os.path.join(self.path, "trials", f"trial-{int(number):04d}", "run"))

    def final_run(self):
        """The final training's run directory (`final/run`) as a `Run`."""
        run = os.path.join(self.path, "final", "run")
        return load_run(run if os.path.isdir(run) else os.path.join(self.path, "final"))

    def learning_curves(self):
        """The objective after each epoch of each trial, long form: number, epoch (from 1),
        value (minimised, as in `trials`), score, status, and whether the trial's job ended at
        that epoch (`rung`: where the pruner decided, or the budget)."""
        sign = -1 if (self.settings or {}).get("objective", "accuracy") == "accuracy" else 1
        rows = []
        for _, t in self.trials.iterrows():
            rungs = set(t["rungs"]) if isinstance(t.get("rungs"), list) else set()
            for epoch, value in enumerate(t["values"] if isinstance(t.get("values"), list) else [], 1):
                rows.append({"number": t["number"], "epoch": epoch, "value": value, "score": sign * value,
                             "status": t["status"], "rung": epoch in rungs})
        return pd.DataFrame(rows, columns=["number", "epoch", "value", "score", "status", "rung"])

    def __repr__(self):
        state = (self.final_state or {}).get("status", "none")
        return f"HPO({self.path!r}, {len(self.trials)} trials, final {state})"


HPO_COLUMNS = ("number", "status", "value", "score", "validation_accuracy", "validation_loss", "epochs",
               "seconds", "wall_seconds", "cpu_seconds", "rungs", "values", "error")


def load_hpo(path):
    """Reads a `strata hpo` output directory into an `HPO`.

    `trials` has one row per trial: `number` (as in the journal and `summary.json`'s
    `bestTrial`; the log's "trial 3/4" is number 2), `status` (running, complete, pruned,
    failed), `value` (the objective after its last epoch, minimised as strata minimises it:
    minus the validation accuracy, or the loss), `score` (the same in the objective's own
    sense: the accuracy, or the loss), `params_<name>`,
    validation accuracy and loss, `epochs` trained, seconds (training, wall, CPU), `rungs`
    and `values` (the objective after each epoch). `hpo.learning_curves()` gives the values
    in long form."""
    path = os.fspath(path)
    settings_path = os.path.join(path, "hpo.json")
    if not os.path.exists(settings_path):
        if all(os.path.exists(os.path.join(path, p, "hpo.json")) for p in ("proxy", "full")):
            raise StrataFileError(f"{path}: a --compare-full directory: load_hpo its proxy/ and full/ "
                                  "(comparison.json holds the side-by-side figures)")
        raise StrataFileError(f"{path}: not an hpo directory (no hpo.json)")
    settings = read_json(settings_path)
    trial_lines, final = [], []
    journal_path = os.path.join(path, "journal.jsonl")
    for number, line in enumerate(read_json_lines(journal_path, missing_ok=True), 1):
        line = hpo_line(line, f"{journal_path}: line {number}") if isinstance(line, dict) else line
        event = line.get("event") if isinstance(line, dict) else None
        if event is None and isinstance(line, dict) and "trial" in line:
            trial_lines.append(line)
        elif event == "final":
            final.append(line)
        else:
            raise StrataFileError(f"{journal_path}: line {number}: unknown event {event!r}")
    latest = {}
    for line in trial_lines:
        latest[line["trial"]] = line
    rows = []
    for number in sorted(latest):
        line = latest[number]
        values = line.get("values") or []
        value = values[-1] if values else math.nan
        row = {"number": number, "status": line.get("status"), "value": value,
               "score": -value if settings.get("objective", "accuracy") == "accuracy" else value,
               "epochs": len(values)}
        row.update(_params_columns(hpo_params(line.get("params"))))
        for key, value in line.items():
            if key not in ("trial", "params", "status"):
                row[_snake(key)] = value
        rows.append(row)
    journal = pd.json_normalize(trial_lines, sep=".") if trial_lines else pd.DataFrame()
    trials = _frame(rows, HPO_COLUMNS)
    return HPO(path, settings, journal, trials, final, _optional_json(os.path.join(path, "summary.json")))




def _snake(name):
    """validationAccuracy -> validation_accuracy (the hpo journal's keys are camelCase)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)
