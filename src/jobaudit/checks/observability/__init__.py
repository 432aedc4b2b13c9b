"""Observability rules (JOB5xx): failures are reported and measured."""
