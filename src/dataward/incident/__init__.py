"""Incident response: trace a model's misbehaviour back to records, batches and sources; remediate."""

from dataward.incident.api import (
    PREDICATE_INCIDENT,
    Incident,
    Resolution,
    get_incident,
    list_incidents,
    open_incident,
    resolve_incident,
    story,
)
from dataward.incident.trace import TraceResult, trace

__all__ = [
    "PREDICATE_INCIDENT",
    "Incident",
    "Resolution",
    "TraceResult",
    "get_incident",
    "list_incidents",
    "open_incident",
    "resolve_incident",
    "story",
    "trace",
]
