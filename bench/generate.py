"""A deterministic synthetic project for benchmarks: many plain modules, a few job modules.

    python bench/generate.py OUT [--modules 2000] [--job-modules 40]

Real applications are mostly code that defines no job; this keeps that
proportion (about 2 % of modules declare Celery tasks, a few configure the
app) so the benchmark measures what a real tree costs.  The same arguments
always produce the same files.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

PLAIN = '''"""Module {index}: ordinary application code."""

import dataclasses
import json


@dataclasses.dataclass
class Record{index}:
    name: str
    total: int = 0

    def add(self, amount: int) -> int:
        self.total += amount
        return self.total


def load_{index}(text: str) -> list[Record{index}]:
    rows = json.loads(text)
    out = []
    for row in rows:
        if row.get("skip"):
            continue
        out.append(Record{index}(row["name"], int(row.get("total", {seed}))))
    return out
'''

JOBS = '''"""Job module {index}."""

import requests

from app.celery import app


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync_{index}(self, record_id):
    url = "https://api.example.com/{index}"
    response = requests.post(url, json={{"id": record_id}}, timeout=10)
    response.raise_for_status()


@app.task(max_retries={retries})
def cleanup_{index}():
    try:
        requests.delete("https://api.example.com/{index}/old")
    except Exception:
        pass
'''

CELERY = """import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
app = Celery("app")
app.config_from_object("django.conf:settings", namespace="CELERY")
"""

SETTINGS = 'CELERY_BROKER_URL = "redis://localhost:6379/0"\nCELERY_TASK_TIME_LIMIT = 300\n'


def generate(out: Path, modules: int, job_modules: int) -> None:
    rng = random.Random(20261129)
    app = out / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "__init__.py").write_text("")
    (app / "celery.py").write_text(CELERY)
    (app / "settings.py").write_text(SETTINGS)
    job_indices = set(rng.sample(range(modules), job_modules))
    for index in range(modules):
        package = app / f"pkg{index // 100}"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        if index in job_indices:
            text = JOBS.format(index=index, retries=rng.choice([3, 5, "None"]))
        else:
            text = PLAIN.format(index=index, seed=rng.randint(0, 100))
        (package / f"module{index}.py").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--job-modules", type=int, default=40)
    args = parser.parse_args()
    generate(args.out, args.modules, args.job_modules)


if __name__ == "__main__":
    main()
