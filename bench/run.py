"""Benchmark jobaudit against the parse floor, ruff and flake8 on any trees.

    python bench/run.py PATH [PATH ...] [--runs 5] [--slow-runs 1] [--scaling]

For each tree, each figure is the median wall time of whole processes
(``time.perf_counter`` around ``subprocess.run``) and their peak memory
(``resource.getrusage`` of the children, per run); ratios are taken within one
run of this script, so machine noise mostly cancels.  The rows that are not
slow run in turn, one round after another, so that a host whose speed drifts
over minutes slows every row alike (timed one row after another, a warm run
and ruff came out 15 % apart in either direction on the same tree).  The parse floor is
"read and ``ast.parse`` every ``.py`` file", the cost any Python tool that
parses everything must pay.

Rows: the floor; jobaudit cold (``--no-cache``) with ``-j 1`` and ``-j 2``;
jobaudit cold with an empty cache, which it fills (a first run, or CI on a
fresh checkout: what a default ``jobaudit check`` costs there); jobaudit
warm (the cache filled by a previous run, nothing changed); ruff
(``--no-cache``) and flake8 without the jobaudit plugin, with it and its
cache removed, and with it again on the cache that run filled, when they are
installed.  The slow rows (flake8, and jobaudit without the prefilter) take
turns among themselves too, ``--slow-runs`` rounds with no warm-up round.
Each ratio is the median over rounds of the two rows' ratio within a round:
a flake8 round takes minutes, and when those rows ran one after the other,
the plugin's overhead on saleor moved by ten points between two runs of this
script with no change to the plugin.  Then the project-model share of a cold
run (``--timings``), whether the findings and the jobs inventory are
identical with and without the prefilter, and with
``--scaling`` the cold time on 1, 2 and 4 copies of the tree.
"""

from __future__ import annotations

import argparse
import json
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

FLAKE8_WITHOUT_PLUGIN = """
import sys
import jobaudit.flake8_plugin
jobaudit.flake8_plugin.Plugin.off_by_default = True  # flake8 then lists it as disabled
from flake8.main.cli import main
sys.exit(main(sys.argv[1:]))
"""

Row = tuple[str, float, float]


def once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``.

    The run goes through a small wrapper process so that the children's peak
    memory it reports belongs to that one command.
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return time.perf_counter() - start, int(done.stdout.strip() or 0) / 1024


def measure(command: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``runs`` runs, with no warm-up."""
    timed = [once(command, env) for _ in range(runs)]
    return statistics.median(w for w, _ in timed), statistics.median(p for _, p in timed)


def measure_in_turn(
    commands: list[tuple[list[str], list[str] | None]],
    runs: int,
    env: dict[str, str],
    warm_up: bool = True,
) -> list[list[tuple[float, float]]]:
    """Wall seconds and peak RSS (MiB) of each run of each ``(command, before)``, the
    commands taking turns, round after round; with ``warm_up``, one untimed round first
    (it fills the warm row's cache).  ``before``, when given, runs untimed before each
    run of its command."""
    timed: list[list[tuple[float, float]]] = [[] for _ in commands]
    for index in range(runs + warm_up):
        for position, (command, before) in enumerate(commands):
            if before is not None:
                subprocess.run(before, capture_output=True, env=env, check=False)
            found = once(command, env)
            if index or not warm_up:
                timed[position].append(found)
    return timed


def paired_ratio(top: list[tuple[float, float]], bottom: list[tuple[float, float]]) -> float:
    """The median over rounds of one row's wall time over another's in the same round: a
    host that slows down for a few minutes slows both sides of a round alike."""
    return statistics.median(a / b for (a, _), (b, _) in zip(top, bottom, strict=True))


def jobaudit(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobaudit", *args]


Case = tuple[str, list[str], bool, list[str] | None]
"""Label, command, slow (runs ``--slow-runs`` times, no warm-up), and a command run untimed
before each run (it removes a cache the run must find empty)."""

REMOVE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"


def cases(tree: str, cache: str) -> list[Case]:
    """The commands timed on one tree.

    The CLI's warm run keeps its cache in ``cache``, outside the measured tree, and
    the run that fills a cache (a first run, or CI on a fresh checkout) one beside it;
    the flake8 plugin uses the tree's own, cold (removed first) and then warm.
    """
    check = ["check", tree, "--exit-zero", "--quiet"]
    filled = os.path.join(cache, "filled")
    found: list[Case] = [
        ("parse floor (read + ast.parse)", [sys.executable, "-c", FLOOR, tree], False, None),
        ("jobaudit cold -j 1", jobaudit(*check, "--no-cache", "-j", "1"), False, None),
        ("jobaudit cold -j 2", jobaudit(*check, "--no-cache", "-j", "2"), False, None),
        (
            "jobaudit cold, filling cache",
            jobaudit(*check, "-j", "1", "--cache-dir", filled),
            False,
            [sys.executable, "-c", REMOVE, filled],
        ),
        (
            "jobaudit warm (cache)",
            jobaudit(*check, "-j", "1", "--cache-dir", os.path.join(cache, "warm")),
            False,
            None,
        ),
        ("jobaudit --no-prefilter", jobaudit(*check, "--no-cache", "--no-prefilter"), True, None),
    ]
    ruff = _tool("ruff")
    if ruff is not None:
        command = [ruff, "check", "--no-cache", "--exit-zero", "--quiet", tree]
        found.append(("ruff check --no-cache", command, False, None))
    if _tool("flake8") is not None:
        flake8 = ["-j1", "--exit-zero", tree]
        without = [sys.executable, "-c", FLAKE8_WITHOUT_PLUGIN, *flake8]
        with_plugin = [sys.executable, "-m", "flake8", *flake8]
        found.append(("flake8 -j1 (no jobaudit)", without, True, None))
        found.append(("flake8 -j1 (with jobaudit)", with_plugin, True, jobaudit("clean", tree)))
        found.append(("flake8 -j1 (jobaudit, warm)", with_plugin, True, None))
    return found


def _tool(name: str) -> str | None:
    """A command on PATH or beside this Python (an unactivated virtual environment)."""
    here = os.path.dirname(sys.executable)
    return shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def timings(tree: str, env: dict[str, str]) -> dict[str, float]:
    """Phase times of one cold run, from ``--timings``."""
    done = subprocess.run(
        jobaudit("check", tree, "--exit-zero", "--quiet", "--no-cache", "--timings"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    phases: dict[str, float] = {}
    for line in done.stderr.splitlines():
        name, _, rest = line.partition("  ")
        parts = rest.split()
        if parts and parts[0].replace(".", "", 1).isdigit():
            phases[name.strip()] = float(parts[0])
    return phases


def same_without_prefilter(tree: str, env: dict[str, str]) -> bool:
    """Findings (all rules, preview too) and the jobs inventory, with and without the prefilter."""
    outputs = []
    for extra in ([], ["--no-prefilter"]):
        check = subprocess.run(
            jobaudit(
                "check", tree, "--preview", "--exit-zero", "--format", "json", "--no-cache", *extra
            ),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        inventory = subprocess.run(
            jobaudit("jobs", tree, "--format", "json", "--no-cache", *extra),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        outputs.append((json.loads(check.stdout)["findings"], inventory.stdout))
    return outputs[0] == outputs[1]


def scaling(tree: Path, runs: int, env: dict[str, str]) -> list[tuple[int, float]]:
    """Cold ``-j 1`` time on 1, 2 and 4 copies of the tree side by side."""
    found = []
    with tempfile.TemporaryDirectory(prefix="jobaudit-scaling-") as scratch:
        for copies in (1, 2, 4):
            while len(list(Path(scratch).iterdir())) < copies:
                index = len(list(Path(scratch).iterdir()))
                shutil.copytree(
                    tree, Path(scratch) / f"copy{index}", ignore=shutil.ignore_patterns(".*")
                )
            command = jobaudit("check", scratch, "--exit-zero", "--quiet", "--no-cache")
            found.append((copies, measure(command, runs, env)[0]))
    return found


def commit(tree: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %cs"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "not a git checkout"


def report(tree: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
    path = str(tree.resolve())
    files = sum(1 for _ in tree.rglob("*.py"))
    print(f"\n## {tree.name} ({files} .py files, {commit(tree)})\n")
    with tempfile.TemporaryDirectory(prefix="jobaudit-cache-") as cache:
        found = cases(path, cache)
        runs_of: dict[str, list[tuple[float, float]]] = {}
        for slow in (False, True):
            group = [
                (label, (command, before))
                for label, command, is_slow, before in found
                if is_slow == slow
            ]
            count = args.slow_runs if slow else args.runs
            timed = measure_in_turn([item for _, item in group], count, env, warm_up=not slow)
            runs_of.update(zip([label for label, _ in group], timed, strict=True))
    rows: list[Row] = [
        (
            label,
            statistics.median(wall for wall, _ in runs_of[label]),
            statistics.median(peak for _, peak in runs_of[label]),
        )
        for label, *_ in found
    ]
    subprocess.run(jobaudit("clean", path), capture_output=True, env=env, check=False)
    floor, floor_peak = rows[0][1], rows[0][2]
    header = ("what", "wall (median)", "x floor", "peak MiB", "x floor RSS")
    print("| {:<30} | {:>13} | {:>7} | {:>8} | {:>11} |".format(*header))
    print(f"|{'-' * 32}|{'-' * 15}:|{'-' * 8}:|{'-' * 9}:|{'-' * 12}:|")
    for label, wall, peak in rows:
        print(
            f"| {label:<30} | {wall:>11.2f} s | {wall / floor:>7.2f} | {peak:>8.0f} "
            f"| {peak / (floor_peak or 1):>11.2f} |"
        )
    ratios = [
        ("cold -j 1 / ruff", "jobaudit cold -j 1", "ruff check --no-cache"),
        ("warm / ruff", "jobaudit warm (cache)", "ruff check --no-cache"),
        ("-j 1 / -j 2 (speed-up)", "jobaudit cold -j 1", "jobaudit cold -j 2"),
        ("cold filling the cache / cold", "jobaudit cold, filling cache", "jobaudit cold -j 1"),
        ("flake8 with / without plugin", "flake8 -j1 (with jobaudit)", "flake8 -j1 (no jobaudit)"),
        ("same, plugin cache warm", "flake8 -j1 (jobaudit, warm)", "flake8 -j1 (no jobaudit)"),
    ]
    print()
    for name, top, bottom in ratios:
        if top in runs_of and bottom in runs_of:
            print(f"- {name}: {paired_ratio(runs_of[top], runs_of[bottom]):.2f}")
    phases = timings(path, env)
    total = sum(phases.values()) or 1.0
    print(f"- project-model step: {phases.get('project model', 0.0) / total:.1%} of a cold run")
    same = same_without_prefilter(path, env)
    print(f"- findings and jobs identical without the prefilter: {'yes' if same else 'NO'}")
    if args.scaling:
        grown = scaling(tree, args.slow_runs, env)
        base = grown[0][1]
        print(
            "- scaling (cold -j 1): "
            + ", ".join(f"{copies}x {wall:.2f} s ({wall / base:.2f})" for copies, wall in grown)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", type=Path, nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=1)
    parser.add_argument(
        "--scaling", action="store_true", help="also time 1, 2 and 4 copies (--slow-runs each)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        for tree in args.paths:
            report(tree, args, env)


if __name__ == "__main__":
    main()
