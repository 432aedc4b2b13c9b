"""Benchmark jobaudit against the parse floor, ruff and flake8 on any tree.

    python bench/run.py PATH [--runs 5] [--jobs]

Each figure is the median wall time of whole processes (``time.perf_counter``
around ``subprocess.run``) and their peak memory (``resource.getrusage`` of the
children, per run); ratios are taken within one run of this script, so machine
noise cancels.  The parse floor is "read and ``ast.parse`` every ``.py`` file",
the cost any Python tool that parses everything must pay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import ast, sys, os, warnings
warnings.simplefilter("ignore")
count = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d not in {"node_modules", "venv"}]
    for name in files:
        if name.endswith(".py"):
            try:
                ast.parse(open(os.path.join(root, name), "rb").read())
                count += 1
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                pass
print(count)
"""


PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(
    command: list[str], runs: int, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``runs`` runs after one warm-up.

    Each run goes through a small wrapper process so that the children's peak
    memory it reports belongs to that one command.
    """
    walls: list[float] = []
    peaks: list[float] = []
    for index in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PEAK, *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if index:
            walls.append(elapsed)
            peaks.append(int(done.stdout.strip() or 0) / 1024)
    return statistics.median(walls), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tree = str(args.path.resolve())
    python = sys.executable
    jobaudit = [python, "-m", "jobaudit", "check", tree, "--exit-zero", "--quiet"]
    cases: list[tuple[str, list[str]]] = [
        ("parse floor (read + ast.parse)", [python, "-c", FLOOR, tree]),
        ("jobaudit check", jobaudit),
    ]
    if shutil.which("ruff"):
        cases.append(
            (
                "ruff check --no-cache",
                ["ruff", "check", "--no-cache", "--exit-zero", "--quiet", tree],
            )
        )
    if shutil.which("flake8"):
        cases.append(
            ("flake8 -j1 --select JOB", ["flake8", "-j1", "--select", "JOB", "--exit-zero", tree])
        )
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        results = [(name, *measure(command, args.runs, env)) for name, command in cases]
    floor = results[0][1]
    print(f"{'what':<34} {'wall (median)':>14} {'x floor':>8} {'peak MiB':>9}")
    for name, wall, peak in results:
        print(f"{name:<34} {wall:>12.2f} s {wall / floor:>8.2f} {peak:>9.0f}")


if __name__ == "__main__":
    main()
