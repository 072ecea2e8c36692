#!/usr/bin/env python3
"""Runs the README's quickstart in tiny form, so that it cannot rot (run by `make test`).

    scripts/quickstart-check.py [BIN] [README]     BIN: .build/release/strata

Every command of the `## Quickstart` section's ```sh blocks runs, in order, in a scratch folder
(with the repository's examples/ beside it), except `make ...` and `alias ...` lines: `strata` is
BIN, and the budgets shrink (--train-limit 600, --epochs and --max-epochs at most 2, --trials at
most 3, --final-epochs 1), so expected lines should not depend on how a tiny run's results fall.
Each must exit 0 (141 is accepted where a pipe's reader stopped early). A ```text
block after a ```sh block is the expected output of that block's last command: each of its lines
must match the start of a line of the command's output, with every number, hexadecimal trial id and run of
spaces taken as a wildcard of its kind. So a renamed flag, a changed message or a command that
now fails breaks `make test` until the README says what the program does.

There is no network here: `strata data fetch cifar10 --dir D` is stood in for by a link from
D/cifar10 to a local copy of CIFAR-10's binary batches ($STRATA_QUICKSTART_CIFAR, else the
CIFAR-10 subset in ../shared/datasets when there is one), and its expected output is not
compared (DataFetchTests download from a local server). Without a local copy the commands that
read it are skipped, and the check says so. HOME is the scratch folder, so `~` stays inside it.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/strata"))
README = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "README.md")

TINY = [
    (r"--train-limit \d+", lambda m: "--train-limit 600"),
    (r"--epochs (\d+)", lambda m: "--epochs %d" % min(int(m.group(1)), 2)),
    (r"--max-epochs \d+", lambda m: "--max-epochs 2"),
    (r"--final-epochs \d+", lambda m: "--final-epochs 1"),
    (r"--trials (\d+)", lambda m: "--trials %d" % min(int(m.group(1)), 3)),
]


def quickstart_blocks(text):
    """[(kind, lines)] of the fenced blocks between '## Quickstart' and the next '## '."""
    start = text.find("\n## Quickstart")
    if start < 0:
        sys.exit("quickstart-check: README has no '## Quickstart' section")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)].split("\n")
    blocks, kind, lines = [], None, []
    for line in section:
        if kind is None and line.startswith("```"):
            kind, lines = line[3:].strip(), []
        elif kind is not None and line.startswith("```"):
            blocks.append((kind, lines))
            kind = None
        elif kind is not None:
            lines.append(line)
    return blocks


def command_lines(lines):
    """Joins continued lines and drops comments, `make` and `alias` lines."""
    out, pending = [], ""
    for line in lines:
        line = pending + line
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or line.startswith("#") or line.startswith("make ") or line.startswith("alias "):
            continue
        out.append(line)
    return out


def pattern(expected):
    """A regex for one expected line: numbers, trial ids and spaces as wildcards."""
    parts = re.split(r"(\b[0-9a-f]{16}\b|\d+(?:\.\d+)?|\s+)", expected.strip())
    regex = ""
    for i, p in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(p)
        elif re.fullmatch(r"[0-9a-f]{16}", p) and not p.isdigit():
            regex += r"[0-9a-f]{16}"
        elif p.isspace():
            regex += r"\s+"
        else:
            regex += r"[0-9]+(?:\.[0-9]+)?"
    return re.compile(regex)


def local_cifar():
    """A folder of CIFAR-10 binary batches to stand in for the download, or None."""
    for path in (os.environ.get("STRATA_QUICKSTART_CIFAR"),
                 os.path.join(ROOT, "..", "shared", "datasets", "cifar10-subset")):
        if path and os.path.isfile(os.path.join(path, "data_batch_1.bin")):
            return os.path.abspath(path)
    return None


FETCH = re.compile(r"^strata data fetch cifar10 --dir (\S+)$")


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"quickstart-check: {BIN} is not an executable strata binary (build it first)")
    blocks = quickstart_blocks(open(README).read())
    work = tempfile.mkdtemp(prefix="strata-quickstart-")
    os.symlink(os.path.join(ROOT, "examples"), os.path.join(work, "examples"))
    os.symlink(os.path.join(ROOT, "scripts"), os.path.join(work, "scripts"))
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(BIN) + os.pathsep + env.get("PATH", "")
    env["HOME"] = work
    failures, ran, checked, skipped = 0, 0, 0, 0
    last_output, last_command = None, None
    cifar, fetched = local_cifar(), []
    try:
        for kind, lines in blocks:
            if kind == "sh":
                for command in command_lines(lines):
                    fetch = FETCH.match(command)
                    if fetch:
                        last_output, last_command = None, command
                        if cifar is None:
                            print(f"skipped (no network, no local CIFAR-10): {command}")
                            skipped += 1
                            continue
                        target = os.path.join(os.path.expanduser(fetch.group(1).replace("~", work, 1)), "cifar10")
                        os.makedirs(target, exist_ok=True)
                        os.symlink(cifar, os.path.join(target, "cifar-10-batches-bin"))
                        fetched.append(fetch.group(1))
                        print(f"stood in (no network): {command} -> a link to {cifar}")
                        continue
                    if cifar is None and "cifar10" in command:
                        print(f"skipped (it reads the CIFAR-10 download): {command}")
                        skipped += 1
                        last_output, last_command = None, command
                        continue
                    tiny = command
                    for find, replace in TINY:
                        tiny = re.sub(find, replace, tiny)
                    tiny = re.sub(r"^strata\b", BIN, tiny)
                    tiny = re.sub(r"\|\s*strata\b", "| " + BIN, tiny)
                    result = subprocess.run(["bash", "-o", "pipefail", "-c", tiny], cwd=work, env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                            timeout=600)
                    ran += 1
                    piped = "|" in tiny
                    if result.returncode != 0 and not (piped and result.returncode == 141):
                        failures += 1
                        print(f"FAIL (exit {result.returncode}): {command}\n  ran: {tiny}\n  "
                              + "\n  ".join(result.stdout.strip().split("\n")[-8:]))
                    else:
                        print(f"ok: {command}")
                    last_output, last_command = result.stdout, command
            elif kind == "text" and last_output is not None:
                out_lines = [l.strip() for l in last_output.split("\n")]
                for expected in lines:
                    if not expected.strip():
                        continue
                    checked += 1
                    if not any(pattern(expected).match(l) for l in out_lines):
                        failures += 1
                        print(f"FAIL: the output of `{last_command}` has no line like\n  {expected.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"quickstart: {ran} commands, {checked} expected lines" + (f", {skipped} skipped" if skipped else "") + ": "
          + ("all as the README says" if failures == 0 else f"{failures} problems"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
