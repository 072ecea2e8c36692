"""Reading Strata's JSON files: non-finite numbers are written as the strings "nan", "inf" and
"-inf" (JSON has no literal for them), so they are turned back into floats here."""
import json
import math

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StrataFileError(ValueError):
    """A Strata file that is missing, unreadable or not what it should be; the message names it."""


def restore_non_finite(value):
    """`value` with every "nan", "inf" and "-inf" string, at any depth, as a float."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: restore_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_non_finite(v) for v in value]
    return value


def loads(text, where):
    """One JSON value from `text`; `where` names its file (and field) in errors."""
    try:
        return restore_non_finite(json.loads(text))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StrataFileError(f"{where}: not valid JSON: {e}") from None


def read_json(path):
    """The JSON value of the file at `path`."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise StrataFileError(f"{path}: cannot read: {e.strerror or e}") from None
    return loads(text, str(path))


def read_json_lines(path, missing_ok=False):
    """The JSON values of a JSON-lines file, one per non-empty line. A last line without its
    newline that does not parse is the trace of a write cut short by a kill (Strata appends and
    then fsyncs each line), and is left out; any other bad line is an error naming its line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise StrataFileError(f"{path}: no such file") from None
    except OSError as e:
        raise StrataFileError(f"{path}: cannot read: {e.strerror or e}") from None
    lines = data.split(b"\n")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(restore_non_finite(json.loads(line)))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if number == len(lines):  # no newline after it: an interrupted append
                break
            raise StrataFileError(f"{path}: line {number}: not valid JSON: {e}") from None
    return out
