"""docs/usage.md shows the demo project's output; it must be what jobaudit prints today."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "$ jobaudit check fixtures/projects/demo\n"


def test_the_usage_page_shows_the_demo_output_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    page = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    start = page.index("```console\n" + COMMAND) + len("```console\n" + COMMAND)
    shown = page[start : page.index("```\n", start)]
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "fixtures/projects/demo", "--no-cache"])
    assert result.exit_code == 1
    assert result.output == shown
