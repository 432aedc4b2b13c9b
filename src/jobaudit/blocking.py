"""Calls that can block a worker: network clients, subprocesses, sleeps.

Shared knowledge for the rules that care whether a job can hang or hit its
time limit inside a given block of code.
"""

from __future__ import annotations

BLOCKING_PREFIXES = (
    "requests.",
    "httpx.",
    "urllib.request.",
    "urllib3.",
    "http.client.",
    "smtplib.",
    "socket.",
    "subprocess.",
    "redis.",
    "psycopg.",
    "psycopg2.",
    "pymysql.",
    "MySQLdb.",
    "boto3.",
    "botocore.",
    "paramiko.",
    "ftplib.",
    "aiohttp.",
    "pika.",
    "grpc.",
    "pymongo.",
    "elasticsearch.",
    "stripe.",
    "django.core.mail.",
)
BLOCKING_NAMES = frozenset({"time.sleep", "asyncio.sleep", "os.system"})


def is_blocking(name: str | None) -> bool:
    """Whether an external dotted name (``requests.post``) can block on I/O or time."""
    if not name:
        return False
    return name in BLOCKING_NAMES or name.startswith(BLOCKING_PREFIXES)


LOCAL_PREFIXES = ("subprocess.",)
"""Blocking calls that stay on the machine: no other service can fail them for a moment."""


def is_network(name: str | None) -> bool:
    """Whether an external dotted name talks to another service (HTTP, mail, cloud, queue, DB).

    Those are the calls whose failures are often transient (a timeout, a 503,
    a dropped connection), unlike sleeps and subprocesses.
    """
    if not name:
        return False
    return name.startswith(BLOCKING_PREFIXES) and not name.startswith(LOCAL_PREFIXES)
