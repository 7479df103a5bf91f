"""Benchmark results as data: one CSV row per run, with the command, commit, machine and date that produced it."""

from __future__ import annotations

import csv
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

# the widest vector or matrix units lscpu's flags name, widest first: what sets a CPU's fp32 and bf16 speed
VECTOR_UNITS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def machine() -> str:
    """lscpu's model name, the number of cores and the widest vector units: a virtual machine's model name may be
    only the maker's ("AMD EPYC" for a Zen 3 without AVX-512 and for a Zen 4 with AVX512-BF16)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {k.strip(): v for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}
        model = fields["Model name"].strip()
        flags = set(fields.get("Flags", "").split())
        units = next((name for flag, name in VECTOR_UNITS if flag in flags), None)
    except (OSError, subprocess.CalledProcessError, KeyError):
        model, units = platform.processor() or platform.machine(), None
    return f"{model} ({os.cpu_count()} cores{', ' + units if units else ''})"


def commit() -> str:
    try:
        here = Path(__file__).resolve().parent  # the repository's commit, from wherever the script runs
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here)
        changed = subprocess.run(  # a result of code (artkit's or a benchmark's) not yet committed says so
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "bench", ":!bench/results"],
            capture_output=True,
            text=True,
            cwd=here.parent,
        )
        return done.stdout.strip() + ("+changes" if changed.stdout.strip() else "")
    except OSError:
        return ""


def invocation() -> str:
    """This process's command line, as it would be typed: ``python bench/x.py ARGS``."""
    return shlex.join(["python", *sys.argv])


def append_row(path: str | Path, command: str, **values: Any) -> dict[str, Any]:
    """Append one result row (with date, commit and machine) to the CSV at ``path``, writing its header first.

    The row follows the file's own header (its columns may have been written by hand): a column the row lacks
    stays empty, and a value for a column the file lacks adds that column."""
    row = {
        "date": datetime.date.today().isoformat(),
        "commit": commit(),
        "machine": machine(),
        "command": command,
        **{k: "" if v is None else v for k, v in values.items()},
    }
    path = Path(path)
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if path.exists():
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        rows, header = list(reader), list(reader.fieldnames or [])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header + [k for k in row if k not in header], lineterminator="\n")
    writer.writeheader()
    writer.writerows([*rows, row])  # the whole file again: a few hundred rows at most
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    return row
