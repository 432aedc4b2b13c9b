"""One adapter per job framework; ``build_frameworks`` lists those a run knows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.frameworks.arq import Arq
from jobaudit.frameworks.base import Framework
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.custom import Custom
from jobaudit.frameworks.django_tasks import DjangoTasks
from jobaudit.frameworks.dramatiq import Dramatiq
from jobaudit.frameworks.huey import Huey
from jobaudit.frameworks.rq import RQ
from jobaudit.frameworks.taskiq import Taskiq
from jobaudit.frameworks.temporal import Temporal

if TYPE_CHECKING:
    from jobaudit.config import Config

FRAMEWORK_TITLES = {
    "celery": "Celery",
    "rq": "RQ",
    "dramatiq": "Dramatiq",
    "huey": "Huey",
    "arq": "arq",
    "taskiq": "taskiq",
    "django_tasks": "django.tasks",
    "temporal": "Temporal",
    "custom": "custom",
}


def build_frameworks(config: Config) -> list[Framework]:
    """Fresh adapters for one run (they keep per-project state from ``prepare``)."""
    frameworks: list[Framework] = [
        Celery(),
        RQ(),
        Dramatiq(),
        Huey(),
        Arq(),
        Taskiq(),
        DjangoTasks(),
        Temporal(),
    ]
    custom = config.custom
    if custom.decorators or custom.base_classes or custom.enqueue_functions:
        frameworks.append(Custom(custom))
    return frameworks
