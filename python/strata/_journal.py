"""A study's `journal.jsonl` (search and hpo): one typed event per line (`"format": 1`, `event`
proposed, started, rung, pruned, finished, failed, final_started, final_finished,
final_failed). Journals written before that format hold one state line per event instead
(search: a trial record; hpo: a trial line or an `"event": "final"` line); both are read here
into that older state form, which the readers were written for."""
import math

from ._json import StrataFileError

_SEARCH_STATUS = {"finished": "finished", "failed": "failed", "pruned": "pruned",
                  "proposed": "running", "started": "running", "rung": "running"}
_HPO_STATUS = {"finished": "complete", "failed": "failed", "pruned": "pruned",
               "proposed": "running", "started": "running", "rung": "running"}
_FINAL_STATUS = {"final_started": "started", "final_finished": "finished", "final_failed": "failed"}
# The hpo's older lines named these fields in camelCase.
_HPO_KEYS = {"validation_accuracy": "validationAccuracy", "validation_loss": "validationLoss",
             "wall_seconds": "wallSeconds", "cpu_seconds": "cpuSeconds", "test_accuracy": "testAccuracy",
             "test_loss": "testLoss", "from_epoch": "fromEpoch"}


def is_event(line):
    return isinstance(line, dict) and "format" in line


def _check(line, where):
    if line.get("format") != 1:
        raise StrataFileError(f"{where}: format {line.get('format')!r} is not one this reader knows (1): "
                              "a newer strata wrote it")


def search_record(line, where):
    """A search journal line as a trial record (id, status, config, ...); events converted."""
    if not is_event(line):
        return line
    _check(line, where)
    kind = line.get("event")
    if kind not in _SEARCH_STATUS or "config" not in line:
        raise StrataFileError(f"{where}: event {kind!r} is no search trial's")
    out = {k: v for k, v in line.items() if k not in ("format", "trial", "number", "params")}
    out["id"] = line["trial"]
    out["status"] = _SEARCH_STATUS[kind]
    return out


def hpo_line(line, where):
    """An hpo journal line as its older form: a trial line ({"trial": number, "status", ...})
    or a final line ({"event": "final", "status", ...}); events converted."""
    if not is_event(line):
        return line
    _check(line, where)
    kind = line.get("event")
    if "number" not in line:
        raise StrataFileError(f"{where}: event {kind!r} has no trial number: not an hpo journal line")
    out = {_HPO_KEYS.get(k, k): v for k, v in line.items() if k not in ("format", "event", "number", "trial")}
    out["trial"] = line["number"]
    if kind in _FINAL_STATUS:
        out["event"] = "final"
        out["status"] = _FINAL_STATUS[kind]
    elif kind in _HPO_STATUS:
        out["status"] = _HPO_STATUS[kind]
        out["values"] = [math.nan if v is None else v for v in line.get("values") or []]
    else:
        raise StrataFileError(f"{where}: unknown event {kind!r}")
    return out
