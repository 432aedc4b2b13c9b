"""Which files are read for worker command lines (``deploy_files``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobaudit.deploy import deploy_files


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("Procfile", True),
        ("Procfile.dev", True),
        ("Dockerfile", True),
        ("Dockerfile.worker", True),
        ("worker.dockerfile", True),
        ("Makefile", True),
        (".env", True),
        (".env.production", True),
        ("celery.env", True),
        ("docker-compose.yml", True),
        ("celeryd", True),
        ("worker.service", True),
        ("README.md", False),
        ("notes.txt", False),
        ("Procfile.md", True),
        ("Makefile.bak", False),
        ("tasks.py", False),
        ("logo.png", False),
    ],
)
def test_deployment_files_by_name(tmp_path: Path, name: str, read: bool) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / name).write_text("worker: celery -A shop worker\n", encoding="utf-8")
    found = [path.name for path in deploy_files(tmp_path, [tmp_path])]
    assert (name in found) is read
