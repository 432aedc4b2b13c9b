"""The broker a Celery app consumes from: its transport and visibility timeout.

On Redis and SQS a message a worker has taken but not acknowledged becomes
visible to other workers again after the *visibility timeout* (kombu 5.7.0:
3600 s on Redis, 1800 s on SQS).  A task waiting for its ETA (a retry
``countdown``, an ``apply_async(eta=...)``) or still running with ``acks_late``
is such a message, so anything longer than the timeout runs twice (kombu#337).
RabbitMQ and the other transports have no such timeout.

The transport is read from the app's configuration as Celery reads it:
``broker_transport`` when set (it wins over the URL's scheme), else the scheme
of ``broker_read_url`` or ``broker_url`` (the first of a failover list;
``redis+socket://`` means Redis).  Anything jobaudit cannot read (a URL from the
environment, a transport class) is Unknown, and the rules that use this stay
silent.  The ``CELERY_BROKER_URL`` environment variable, which Celery prefers to
the configuration, is a deployment matter and is not seen.  JOB306 (retry
delays), JOB408 (run time with ``acks_late``) and JOB604 (call-site
``countdown``/``eta``) share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.frameworks.celery import AppConfig, Celery
from jobaudit.model import Job, Location, Resolved
from jobaudit.symbols import seconds
from jobaudit.values import BinOp, Call, Mapping, Seq, Unknown, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

TRANSPORTS = {
    "redis": "redis",
    "rediss": "redis",
    "sentinel": "redis",
    "sqs": "sqs",
    "amqp": "amqp",
    "amqps": "amqp",
    "pyamqp": "amqp",
    "librabbitmq": "amqp",
    "memory": "memory",
    "filesystem": "filesystem",
    "sqla": "sqlalchemy",
    "sqlalchemy": "sqlalchemy",
    "mongodb": "mongodb",
    "zookeeper": "zookeeper",
    "consul": "consul",
    "etcd": "etcd",
    "qpid": "qpid",
    "kafka": "kafka",
    "confluentkafka": "kafka",
    "azurestoragequeues": "azurestoragequeues",
    "azureservicebus": "azureservicebus",
    "gcpubsub": "gcpubsub",
    "pgmq": "pgmq",
    "pyro": "pyro",
    "slmq": "slmq",
}
"""kombu's transport aliases (``kombu.transport.TRANSPORT_ALIASES``), by family."""
VISIBILITY_TIMEOUTS = {"redis": 3600.0, "sqs": 1800.0}
"""Transports with a visibility timeout, and kombu's default for it."""
TITLES = {"redis": "Redis", "sqs": "SQS"}
NOW = frozenset({"now", "utcnow"})


@dataclass(frozen=True)
class Broker:
    """The transport of the app(s) a job runs on, and its visibility timeout."""

    transport: Resolved
    """A transport family (``redis``, ``sqs``, ``amqp``...) or Unknown."""
    visibility_timeout: Resolved
    """Seconds; None when the transport has no visibility timeout; or Unknown."""

    @property
    def title(self) -> str:
        """``Redis`` or ``SQS`` for messages."""
        name = self.transport.value
        return TITLES.get(name, str(name)) if isinstance(name, str) else "broker"

    @property
    def timeout(self) -> float | None:
        """The visibility timeout in seconds when it is known, else None."""
        value = self.visibility_timeout.value
        return value if isinstance(value, float) else None

    def related(self, what: str = "visibility timeout") -> tuple[tuple[Location, str], ...]:
        """Where the transport and the timeout are configured, for a finding's related places."""
        places: list[tuple[Location, str]] = []
        for resolved, label in ((self.transport, "broker"), (self.visibility_timeout, what)):
            if resolved.location is not None:
                places.append((resolved.location, f"{label}: {resolved.source}"))
        return tuple(dict.fromkeys(places))


def app_broker(app: AppConfig, project: Project) -> Broker:
    """The broker of one Celery app, from its configuration."""
    transport = _transport(app, project)
    return Broker(transport, _visibility_timeout(app, transport, project))


def job_broker(job: Job, project: Project) -> Broker:
    """The broker a Celery task is consumed from; Unknown unless every app it may run on agrees.

    A ``shared_task`` runs on any app of the project, so all of them must use
    the same transport and timeout for the answer to be known.
    """
    celery = project.framework("celery")
    apps = celery.app_for(job) if isinstance(celery, Celery) else []
    if not apps:
        unknown = Resolved(Unknown("no Celery app was found in the scanned files"), "broker")
        return Broker(unknown, unknown)
    brokers = [app_broker(app, project) for app in apps]
    first = brokers[0]
    if all(
        b.transport.value == first.transport.value
        and b.visibility_timeout.value == first.visibility_timeout.value
        for b in brokers
    ):
        return first
    unknown = Resolved(Unknown("the project's Celery apps use different brokers"), "broker")
    return Broker(unknown, unknown)


def exceeds(delay: float, broker: Broker) -> bool:
    """Whether a message held ``delay`` seconds outlives the broker's visibility timeout."""
    timeout = broker.timeout
    return timeout is not None and delay > timeout


def scheduled_delay(call: Call, project: Project) -> float | Unknown | None:
    """How long ``countdown=``/``eta=`` of a ``retry()`` or ``apply_async()`` call delays it.

    ``eta=now() + timedelta(...)`` counts as the timedelta; None when neither
    keyword is passed, Unknown when the delay is computed at run time.
    """
    countdown = call.kwarg("countdown")
    if countdown is not None:
        return seconds(project.resolver.evaluate(countdown))
    eta = call.kwarg("eta")
    if eta is None:
        return Unknown("options passed with **") if call.star_kwargs else None
    value = project.resolver.evaluate(eta)
    if isinstance(value, BinOp) and value.op == "+":
        for now, offset in ((value.left, value.right), (value.right, value.left)):
            if isinstance(now, Call) and (dotted(now.func) or "").rpartition(".")[2] in NOW:
                return seconds(offset)
    return Unknown("eta is computed at run time")


def _transport(app: AppConfig, project: Project) -> Resolved:
    chosen = app.get("broker_transport")
    if chosen is not None and chosen.value is not None:
        name = project.resolver.evaluate(chosen.value)  # type: ignore[arg-type]
        if isinstance(name, str) and name.lower() in TRANSPORTS:
            return Resolved(TRANSPORTS[name.lower()], chosen.source, chosen.location)
        return Resolved(
            Unknown("broker_transport is not one of kombu's transport names"),
            chosen.source,
            chosen.location,
        )
    url = app.get("broker_read_url") or app.get("broker_url")
    if url is None:
        return Resolved(
            Unknown("broker_url is not set in the scanned configuration"), "app configuration"
        )
    value = project.resolver.evaluate(url.value)  # type: ignore[arg-type]
    if isinstance(value, Seq) and value.items:
        value = project.resolver.evaluate(value.items[0])
    if not isinstance(value, str):
        reason = value.reason if isinstance(value, Unknown) else "computed at run time"
        return Resolved(Unknown(f"the broker URL is {reason}"), url.source, url.location)
    first = value.split(";", 1)[0].strip()
    scheme, separator, _ = first.partition("://")
    family = TRANSPORTS.get(scheme.partition("+")[0].lower()) if separator else None
    if family is None:
        return Resolved(
            Unknown(f"the broker URL {first!r} names no known transport"), url.source, url.location
        )
    return Resolved(family, url.source, url.location)


def _visibility_timeout(app: AppConfig, transport: Resolved, project: Project) -> Resolved:
    family = transport.value
    if not isinstance(family, str):
        return transport
    default = VISIBILITY_TIMEOUTS.get(family)
    if default is None:
        return Resolved(None, f"the {family} transport has no visibility timeout")
    options = app.get("broker_transport_options")
    if options is None:
        return Resolved(default, "kombu default")
    mapping: Value = project.resolver.evaluate(options.value)  # type: ignore[arg-type]
    if not isinstance(mapping, Mapping):
        return Resolved(
            Unknown("broker_transport_options is computed at run time"),
            options.source,
            options.location,
        )
    if family == "sqs" and mapping.get("predefined_queues") is not None:
        return Resolved(
            Unknown("predefined SQS queues keep the visibility timeout set on them in AWS"),
            options.source,
            options.location,
        )
    given = mapping.get("visibility_timeout")
    if given is None:
        return Resolved(default, "kombu default")
    value = seconds(project.resolver.evaluate(given))
    return Resolved(value, f"{options.source}['visibility_timeout']", options.location)
