"""Smoke test of the benchmark scripts: they run and print a table (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_generate_is_deterministic_and_run_prints_ratios(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        subprocess.run(
            [
                sys.executable,
                str(BENCH / "generate.py"),
                str(out),
                "--modules",
                "30",
                "--job-modules",
                "3",
            ],
            check=True,
        )
    files = sorted(p.relative_to(first) for p in first.rglob("*.py"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.py"))
    assert all((first / f).read_text() == (second / f).read_text() for f in files)
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), str(first), "--runs", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    rows = [line.split("|")[1].strip() for line in lines if line.startswith("| ")]
    assert rows[:3] == ["what", "parse floor (read + ast.parse)", "jobaudit cold -j 1"]
    assert "jobaudit warm (cache)" in rows
    assert "jobaudit cold, filling cache" in rows
    assert any(line.startswith("- cold filling the cache / cold: ") for line in lines)
    assert "- findings and jobs identical without the prefilter: yes" in lines
    assert not any(first.rglob(".jobaudit_cache"))
